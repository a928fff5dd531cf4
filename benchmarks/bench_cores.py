"""Does a cold run keep every core busy? The cold run's wall time against its
CPU bound (the CPU seconds it spent, divided by the cores), for a baseline
checkout (main's scheduler, from a git worktree) and this one, in one
invocation.

    python benchmarks/bench_cores.py [MATRIX] [--baseline REF] [--only this|baseline] [-j N]

Cold: an empty environment cache and results store (uv's download cache
stays warm, and the release catalog is copied in: no request to PyPI's
index). CPU seconds are those of the whole process tree (sandbox, uv, every
agent), from getrusage of the children. The machine may be shared: the mean
load average during each run is printed, and the other processes' share of
it (load minus ours) is what made the wall time longer than the bound.
Witnesses are left out (--no-witness): they are a step after the pool, and
the baseline's may differ.
A timeline shows, per tenth of the run, how many cores our process tree used,
how many it could have used (its runnable threads, at most the cores: other
processes' load does not change that, so cores / runnable estimates the
ratio on a quiet machine), and which phases ended.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOG = Path.home() / ".cache" / "sandbox" / "catalog"
PHASE = re.compile(r"^\[\s*(\d+)s\] (\S+)\s+(\S+)\s+(.*)$")
TICK = 1.0


@dataclass
class Sample:
    at: float
    tree_cpu: float  # seconds of CPU our process tree has used so far (live processes only)
    load: float
    runnable: int  # threads of our tree running or waiting for a core (state R)


@dataclass
class Measured:
    label: str
    wall: float
    cpu: float
    cores: int
    samples: list[Sample] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def bound(self) -> float:
        return self.cpu / self.cores

    @property
    def load(self) -> float:
        return sum(s.load for s in self.samples) / max(1, len(self.samples))

    @property
    def demand(self) -> float:
        """Mean cores our tree could have used (runnable threads, at most the
        cores): what other processes' load does not change, unlike wall time."""
        return sum(min(s.runnable, self.cores) for s in self.samples) / max(1, len(self.samples))


def tree(root: int) -> tuple[float, int]:
    """CPU seconds of `root` and its live descendants, and how many of their
    threads are runnable (from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, runnable, todo = 0.0, 0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        runnable += _runnable_threads(pid)
        todo += children.get(pid, [])
    return total, runnable


def _runnable_threads(pid: int) -> int:
    found = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            found += stat[stat.rindex(")") + 2:].startswith("R")
    except OSError:
        pass
    return found


def measure(label: str, checkout: Path, matrix: Path, jobs: int | None, scratch: Path) -> Measured:
    folder = scratch / label
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "cache").mkdir(parents=True)
    if CATALOG.is_dir():
        shutil.copytree(CATALOG, folder / "cache" / "catalog")
    env = {**os.environ, "PYTHONPATH": str(checkout), "SANDBOX_CACHE_DIR": str(folder / "cache"),
           "SANDBOX_STORE_DIR": str(folder / "store")}
    args = [sys.executable, "-m", "sandbox", "run", str(matrix), "--work-dir", str(folder / "runs"),
            "--reports", str(folder / "reports"), "--no-witness", *(["-j", str(jobs)] if jobs else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result = Measured(label, 0.0, 0.0, os.cpu_count() or 1)
    sampler = threading.Thread(target=_sample, args=(proc, start, result.samples), daemon=True)
    sampler.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        result.lines.append(line.rstrip("\n"))
    proc.wait()
    result.wall = time.monotonic() - start
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode == 4:  # the run ended; harness errors are part of its result, not a crash
        print(f"{label}: sandbox exited 4 (harness errors: see its summary)", flush=True)
    elif proc.returncode not in (0, 1):
        sys.exit(f"{label}: sandbox exited {proc.returncode}:\n" + "\n".join(result.lines[-40:]))
    for report in (folder / "reports").glob("*/results.json"):  # per-cell seconds, for the README's cost figures
        shutil.copy(report, scratch / f"{label}-results.json")
    shutil.rmtree(folder, ignore_errors=True)  # ~6 GB of environments
    return result


def _sample(proc: subprocess.Popen[str], start: float, into: list[Sample]) -> None:
    while proc.poll() is None:
        try:
            load = float(Path("/proc/loadavg").read_text().split()[0])
            cpu, runnable = tree(proc.pid)
            into.append(Sample(time.monotonic() - start, cpu, load, runnable))
        except (OSError, ValueError):
            pass
        time.sleep(TICK)


def timeline(m: Measured, parts: int = 10) -> list[str]:
    """Per tenth of the run: cores our tree used, the load, the phases that ended in it."""
    rows = []
    span = m.wall / parts
    ends = [(int(g[1]), f"{_short(g[2])}:{g[3]}") for line in m.lines if (g := PHASE.match(line))]
    for i in range(parts):
        lo, hi = i * span, (i + 1) * span
        inside = [s for s in m.samples if lo <= s.at < hi]
        used = 0.0
        if len(inside) >= 2:
            used = max(0.0, (inside[-1].tree_cpu - inside[0].tree_cpu) / max(1e-9, inside[-1].at - inside[0].at))
        load = sum(s.load for s in inside) / max(1, len(inside))
        demand = sum(min(s.runnable, m.cores) for s in inside) / max(1, len(inside))
        phases = sorted({p for t, p in ends if lo <= t < hi})
        rows.append(f"  {lo:6.0f}-{hi:<6.0f}s  cores used {used:4.2f}  runnable {demand:4.2f}  load {load:5.2f}  "
                    f"ended: {' '.join(phases)}")
    return rows


def _short(cell: str) -> str:
    found = re.match(r"tf(\d+\.\d+)[^+]*(\+.*)?", cell)
    return f"{found[1]}{found[2] or ''}" if found else cell


def worktree(ref: str, scratch: Path) -> Path:
    path = scratch / f"checkout-{re.sub(r'[^A-Za-z0-9]', '-', ref)}"
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref], check=True,
                       capture_output=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("matrix", nargs="?", default=str(ROOT / "matrix.toml"))
    parser.add_argument("--baseline", default="main", help="git ref of the baseline scheduler (default: main)")
    parser.add_argument("--only", choices=("this", "baseline"))
    parser.add_argument("-j", "--jobs", type=int, help="passed to sandbox run (default: its own default)")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "sandbox-bench-cores")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    matrix = Path(args.matrix).resolve()
    variants = [("baseline", lambda: worktree(args.baseline, args.scratch)), ("this", lambda: ROOT)]
    found = []
    for label, checkout in variants:
        if args.only and label != args.only:
            continue
        m = measure(label, checkout(), matrix, args.jobs, args.scratch)
        found.append(m)
        print(f"{label}: wall {m.wall:.1f}s, CPU {m.cpu:.1f}s on {m.cores} cores -> bound {m.bound:.1f}s, "
              f"wall/bound {m.wall / m.bound:.3f}; mean load {m.load:.2f}; runnable {m.demand:.2f} of "
              f"{m.cores} cores on average -> wall/bound on a quiet machine about {m.cores / max(m.demand, 1e-9):.3f}",
              flush=True)
        print("\n".join(timeline(m)), flush=True)
        summary = [line for line in m.lines if line.startswith(("measured", "loads:")) or " cells in " in line]
        print("  " + "\n  ".join(summary), flush=True)
        print("  per cell (the run's own lines):\n    " + "\n    ".join(l for l in m.lines if PHASE.match(l)),
              flush=True)
    if len(found) == 2:
        before, after = found
        print(f"\nwall/bound: baseline {before.wall / before.bound:.3f}, this {after.wall / after.bound:.3f}; "
              f"wall this/baseline {after.wall / before.wall:.3f}; CPU this/baseline {after.cpu / before.cpu:.3f}; "
              f"quiet-machine estimate (cores / runnable): baseline {before.cores / max(before.demand, 1e-9):.3f}, "
              f"this {after.cores / max(after.demand, 1e-9):.3f}")


if __name__ == "__main__":
    main()
