"""Wall time of a matrix run, as ratios against a baseline run in the same
invocation (absolute seconds vary with the machine and its load).

    python benchmarks/bench_matrix.py [matrix.toml] [--cold]

Runs, in order: `cold` (only with --cold: empty uv and sandbox caches, so every
wheel is downloaded and every environment built), `fresh-envs` (warm uv cache,
empty environment cache), `warm -j1` (the baseline: every environment reused,
everything measured again with --fresh, one cell at a time) and `warm`
(reused, --fresh, default jobs)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(label: str, matrix: Path, work: Path, env: dict[str, str], *extra: str) -> float:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "sandbox", "run", str(matrix), "--work-dir", str(work / "runs"),
                           "--reports", str(work / "reports"), *extra], env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"{label}: sandbox run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    print(f"{label:12} {seconds:7.1f}s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("matrix", nargs="?", default="matrix.toml", type=Path)
    parser.add_argument("--cold", action="store_true", help="also time a run with empty download caches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        times = {}
        if args.cold:
            cold_env = {**os.environ, "UV_CACHE_DIR": str(work / "uv"), "SANDBOX_CACHE_DIR": str(work / "cold")}
            times["cold"] = run("cold", args.matrix, work, cold_env)
        fresh_env = {**os.environ, "SANDBOX_CACHE_DIR": str(work / "fresh")}
        times["fresh-envs"] = run("fresh-envs", args.matrix, work, fresh_env)
        # --fresh: measure everything again in the reused environments (else the
        # results store makes a warm run a no-op: bench_store.py times that)
        times["warm -j1"] = run("warm -j1", args.matrix, work, fresh_env, "-j", "1", "--fresh")
        times["warm"] = run("warm", args.matrix, work, fresh_env, "--fresh")
    base = times["warm -j1"]
    print("\nratio to the baseline (warm -j1 = 1.00):")
    for label, seconds in times.items():
        print(f"  {label:12} {seconds / base:5.2f}")


if __name__ == "__main__":
    main()
