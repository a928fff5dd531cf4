"""A results document the size of the published map, made from a real one.

The recorded run (tests/data/default-results.json: 6 cells, 3,108 loads) is
scaled to every TF minor from 1.12 to 2.21 (26 cells) plus a tf-keras twin of
2.18, about 50,000 loads. Each new cell is a copy of the recorded cell of its
era (1.13 for <= 1.13, 1.14, 1.15, 2.12 for 2.0 .. 2.15, 2.18 for >= 2.16);
each new pair copies the loads of its era's pair. Error texts name the new
cells (artifact paths, versions), so they vary the way real ones do and the
page cannot lean on every error being one of a few texts. The verdict logic is
not involved: only ids, versions and texts change.

    python tests/scaled_results.py OUT.json [--cells 26] [--probes 7]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).parent / "data" / "default-results.json"
# Every TF minor with a Linux x86_64 CPU wheel from 1.12 to 2.21, each with a patch and Python of its time.
MAP = [("1.12.3", "3.6"), ("1.13.2", "3.7"), ("1.14.0", "3.7"), ("1.15.5", "3.7"), ("2.0.4", "3.7"),
       ("2.1.4", "3.7"), ("2.2.3", "3.8"), ("2.3.4", "3.8"), ("2.4.4", "3.8"), ("2.5.3", "3.9"), ("2.6.5", "3.9"),
       ("2.7.4", "3.9"), ("2.8.4", "3.10"), ("2.9.3", "3.10"), ("2.10.1", "3.10"), ("2.11.1", "3.10"),
       ("2.12.1", "3.11"), ("2.13.1", "3.11"), ("2.14.1", "3.11"), ("2.15.1", "3.11"), ("2.16.2", "3.12"),
       ("2.17.1", "3.12"), ("2.18.1", "3.12"), ("2.19.1", "3.12"), ("2.20.0", "3.13"), ("2.21.0", "3.13")]


PROBES = 7  # of the recording's 10: 26 minors (+ a tf-keras twin) then make about 55,000 loads


def _era(version: str, keras: bool) -> str:
    """The recorded cell a new cell copies."""
    major, minor = map(int, version.split(".")[:2])
    if keras:
        return "tf2.18.1-py3.11-cpu+tf-keras"
    if (major, minor) <= (1, 13):
        return "tf1.13.2-py3.7-cpu"
    if (major, minor) in ((1, 14), (1, 15)):
        return {14: "tf1.14.0-py3.7-cpu", 15: "tf1.15.5-py3.7-cpu"}[minor]
    return "tf2.12.1-py3.11-cpu" if (major, minor) <= (2, 15) else "tf2.18.1-py3.11-cpu"


def scale(results: dict[str, Any], cells: int = len(MAP), probes: int = 0) -> dict[str, Any]:
    """`results` grown to the first `cells` minors of MAP (plus a tf-keras twin of 2.18 when
    it is among them), with the loads of the first `probes` probes of the document."""
    recorded = {c["id"]: c for c in results["cells"]}
    kept = set((results.get("probes") or [])[:probes or PROBES])
    new: list[tuple[str, dict[str, Any]]] = []  # (era, cell)
    for version, python in MAP[:cells]:
        for keras in ((False, True) if version == "2.18.1" else (False,)):
            era = _era(version, keras)
            cell = copy.deepcopy(recorded[era])
            cell["id"] = f"tf{version}-py{python}-cpu" + ("+tf-keras" if keras else "")
            cell["tensorflow"] = version
            cell["python"] = f"{python}.9"
            cell["requirement"] = ("tensorflow" if keras else "tensorflow-cpu") + f"=={version}"
            cell["environment"] = {**(cell.get("environment") or {}), "tensorflow": version, "python": f"{python}.9"}
            new.append((era, cell))
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for load in results["loads"]:
        if load["probe"] in kept:
            by_pair.setdefault((load["producer"], load["consumer"]), []).append(load)
    loads = []
    for p_era, producer in new:
        for c_era, consumer in new:
            for load in by_pair.get((p_era, c_era), []):
                loads.append(_moved(load, (p_era, producer["id"]), (c_era, consumer["id"])))
    artifacts = [{**a, "producer": cell["id"]} for era, cell in new for a in results["artifacts"]
                 if a["producer"] == era and a["probe"] in kept]
    return {**results, "name": "tf-map (scaled)", "cells": [c for _, c in new], "loads": loads,
            "artifacts": artifacts, "probes": [p for p in results["probes"] if p in kept]}


def _moved(load: dict[str, Any], producer: tuple[str, str], consumer: tuple[str, str]) -> dict[str, Any]:
    out = dict(load, producer=producer[1], consumer=consumer[1])
    if out.get("error"):
        # Name the new cells where the recorded error named the old ones (paths, versions).
        out["error"] = out["error"].replace(producer[0], producer[1]).replace(consumer[0], consumer[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cells", type=int, default=len(MAP))
    parser.add_argument("--probes", type=int, default=PROBES)
    args = parser.parse_args()
    scaled = scale(json.loads(RECORDED.read_text()), args.cells, args.probes)
    args.out.write_text(json.dumps(scaled))
    print(f"{args.out}: {len(scaled['cells'])} cells, {len(scaled['loads'])} loads", file=sys.stderr)


if __name__ == "__main__":
    main()
