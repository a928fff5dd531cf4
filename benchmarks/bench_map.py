"""The published map at its own size, for a baseline checkout (from a git
worktree) and this one, in one invocation: its run replayed from the
committed document (tests/replay.py: the real CLI, runner, store, collect and
renderers; the agent answers from the recording, no TensorFlow), then

  rerun      an unchanged re-run: wall seconds (median of 3), what it
             measured, and whether it rewrote any file of the report
  report     `sandbox report` of the map's document: wall and peak memory
  files      the sizes of results.json and junit.xml

    python benchmarks/bench_map.py [--document reports/tf-map/results.json] [--baseline main] [--only this]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_cores import worktree  # this folder is on sys.path when the script runs

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "tests" / "replay.py"
TALLY = re.compile(r"measured \d+ exports, \d+ loads, \d+ registries")
PEAK = ("import resource, sys; from sandbox import cli; code = cli.main(sys.argv[1:]); "
        "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True); sys.exit(code)")


def stats(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}


def replay(checkout: Path, folder: Path, *args: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), str(ROOT / "tests")]),
           "SANDBOX_STORE_DIR": str(folder / "store")}
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(REPLAY), "run", str(folder), *args], env=env, capture_output=True,
                          text=True)
    seconds = time.monotonic() - start
    if done.returncode not in (0, 1):
        sys.exit(f"replay {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds, done.stdout


def measure(label: str, checkout: Path, document: Path, scratch: Path) -> None:
    folder = scratch / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), str(ROOT / "tests")])}
    subprocess.run([sys.executable, str(REPLAY), "prepare", str(document), str(folder)], env=env, check=True)
    cold, out = replay(checkout, folder, "run", "matrix.toml", "-q")
    tally = TALLY.search(out)
    print(f"{label:9} cold replay  {cold:7.1f}s  {tally[0] if tally else '?'}", flush=True)
    name = json.loads(document.read_text())["name"]
    report = folder / "reports" / name
    before = stats(report)
    times = []
    for _ in range(3):
        seconds, out = replay(checkout, folder, "run", "matrix.toml", "-q")
        times.append(seconds)
    tally = TALLY.search(out)
    rewritten = sorted(n for n, st in stats(report).items() if before.get(n) != st)
    print(f"{label:9} rerun        {statistics.median(times):7.1f}s  (runs: {', '.join(f'{t:.1f}' for t in times)}) "
          f"{tally[0] if tally else '?'}; rewrote: {', '.join(rewritten) or 'nothing'}", flush=True)
    start = time.monotonic()
    # cwd: not this checkout (`python -c` puts the working folder first on sys.path)
    done = subprocess.run([sys.executable, "-c", PEAK, "report", str(document), "--out", str(folder / "rendered")],
                          env=env, capture_output=True, text=True, cwd=folder)
    seconds = time.monotonic() - start
    peak = next((int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("peak ")), 0)
    print(f"{label:9} report       {seconds:7.1f}s  peak {peak / 1024:.0f} MB", flush=True)
    sizes = {n: (folder / "rendered" / n).stat().st_size for n in ("results.json", "junit.xml", "index.html")
             if (folder / "rendered" / n).exists()}
    print(f"{label:9} files        " + ", ".join(f"{n} {s / 1e6:.1f} MB" for n, s in sizes.items()), flush=True)
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--document", type=Path, default=ROOT / "reports" / "tf-map" / "results.json")
    parser.add_argument("--baseline", default="main", help="git ref of the baseline (default: main)")
    parser.add_argument("--only", choices=("this", "baseline"))
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "sandbox-bench-map")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"document {args.document} ({args.document.stat().st_size / 1e6:.0f} MB); load average {load}", flush=True)
    for label, checkout in (("baseline", lambda: worktree(args.baseline, args.scratch)), ("this", lambda: ROOT)):
        if not args.only or args.only == label:
            measure(label, checkout(), args.document.resolve(), args.scratch)


if __name__ == "__main__":
    main()
