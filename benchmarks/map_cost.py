"""What the map costs on k CI runners, from measured per-cell figures: the
seconds each cell's exports and loads took (the cells' `seconds` in a
results.json: reports/tf-map's by default) plus what every job pays before
its first item (installing sandbox, building the cell's environment, which
no CI cache holds, starting TensorFlow), measured by bench_cores.py.

The pipeline (matrix.yml, .gitlab-ci.yml) runs an export job per cell, then
a load job per cell, then one merge: with k runners each stage is the jobs
spread over k (longest first), so its time is at least its longest job; the
critical path is slowest export + slowest load + merge on as many runners as
cells. A new release: its export job, then every load job (each consumer
builds its environment to load the new cell's artifacts; the new cell's own
job loads every producer), then merge; every other export job finds its
cell in its cache and builds nothing.

    python benchmarks/map_cost.py [RESULTS.json] [--job SECONDS] [--merge SECONDS] [--runners 1 4 26]
"""

from __future__ import annotations

import argparse
import heapq
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage(jobs: list[float], runners: int) -> float:
    """Wall seconds of one stage: longest job first onto the runner free first."""
    free = [0.0] * min(runners, max(1, len(jobs)))
    for seconds in sorted(jobs, reverse=True):
        heapq.heapreplace(free, free[0] + seconds)
    return max(free)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, default=ROOT / "reports" / "tf-map" / "results.json")
    parser.add_argument("--job", type=float, required=True,
                        help="seconds a job pays before its first item (install sandbox, build the environment, "
                             "start TF): from bench_cores.py's per-cell lines")
    parser.add_argument("--merge", type=float, required=True, help="seconds of the merge job (bench_map.py's report)")
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 4, 26])
    parser.add_argument("--start", type=float, default=5.0, help="seconds an agent takes to start (TF's import)")
    parser.add_argument("--cores", type=int, default=2, help="cores of the one machine `sandbox run` uses")
    args = parser.parse_args()
    cells = [c for c in json.loads(args.results.read_text())["cells"] if c["status"] == "ok"]
    exports = [args.job + c["seconds"]["export"] for c in cells]
    loads = [args.job + c["seconds"]["load"] for c in cells]
    n = len(cells)
    print(f"{n} cells; items: exports {sum(c['seconds']['export'] for c in cells):.0f} s, "
          f"loads {sum(c['seconds']['load'] for c in cells):.0f} s; {args.job:.0f} s per job before its items; "
          f"merge {args.merge:.0f} s")
    for k in args.runners:
        e, l = stage(exports, k), stage(loads, k)
        print(f"  cold, {k:2} runners: exports {minutes(e)} + loads {minutes(l)} + merge {minutes(args.merge)} "
              f"= {minutes(e + l + args.merge)}")
    # a new release: one more cell like the newest; each consumer loads its artifacts (1/(n+1) of its loads)
    newest = cells[-1]["seconds"]
    new_loads = [args.job + c["seconds"]["load"] / (n + 1) for c in cells] + [args.job + newest["load"] * (n + 1) / n]
    export = args.job + newest["export"]
    for k in args.runners:
        l = stage(new_loads, k)
        print(f"  a new release, {k:2} runners: its export {minutes(export)} + loads {minutes(l)} + merge "
              f"{minutes(args.merge)} = {minutes(export + l + args.merge)}; runner time "
              f"{minutes(export + sum(new_loads) + args.merge)}")
    # one machine whose other environments are cached (`sandbox run`): one environment to build, the new
    # cell's exports and its 2N+1 pairs' loads, an agent start in each consumer
    items = newest["export"] + newest["load"] * (n + 1) / n + sum(c["seconds"]["load"] for c in cells) / (n + 1)
    work = args.job + items + (n + 2) * args.start
    print(f"  a new release, one {args.cores}-core machine (sandbox run, other environments cached): "
          f"{minutes(work)} of CPU, about {minutes(work / args.cores)}")


if __name__ == "__main__":
    main()
