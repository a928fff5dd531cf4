"""The data of index.html's pair picker: one compact JSON object in the page.

Loads are not listed one by one: each grid keeps one letter per probe per
square (sandbox.report.verdict's outcomes), from which the page computes any
square's verdict for the probes a reader chooses; only loads that did not work
(fail, differ, device-bound, harness error) are listed, by square, with their
error (each distinct text once) and their finding; and the exports that failed.

    {"cells": [[id, label, tensorflow, devices, runtime], ...],  # the healthy cells, oldest first; devices "CPU GPU";
                                                               # runtime "tensorflow", "keras", "ai-edge-litert", "tflite-runtime"
     "probes": [[name, device it needs or "", how that is known], ...],
     "grids": [{"f": format, "l": loader, "p": [cell index of each producer],
                "s": "ooof-...",            # per producer x consumer (row-major), one letter per probe
                }],
     "bad": {"grid,producer,consumer": [[probe, status, finding, error, [predicted names]], ...]},
     "exports": {"producer,format": [[probe, what failed], ...]},
     "sigs": [[title, kind letter], ...], "errors": [text, ...],
     "formats": {name: what it is}, "loaders": {name: what it is},
     "default": [producer, format, consumer, loader]}   # the pair the page opens on
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.agent.texts import shorten
from sandbox.records import LoadStatus
from sandbox.report.document import LoadRow, ResultsDocument
from sandbox.report.findings import Group, export_problem, signature
from sandbox.report.tables import FORMAT_TEXT, LOADER_TEXT, Grid, Pair, healthy, labels, probe_order, runtime
from sandbox.report.verdict import Devices

ERROR_LIMIT = 10_000  # characters of an error kept in the page, head and tail (the agent keeps 4,000); results.json has it whole


def build(results: ResultsDocument, found: list[Grid], grouped: list[Group], devs: Devices,
          default: Pair | None) -> dict[str, Any]:
    """The picker's data: `found` = grids(results), `grouped` = groups(results), `devs` = devices(results)."""
    ids = healthy(results)
    names = labels(results)
    cells = results.cell()
    index = {cell: i for i, cell in enumerate(ids)}
    titles = {g.signature: g.title for g in grouped}
    tables: dict[str, Any] = {"sigs": {}, "errors": {}}
    data: dict[str, Any] = {
        "cells": [[c, names[c], str(cells[c].tensorflow or ""), " ".join(sorted(devs.has[c])),
                   str(runtime(cells[c]).get("name"))] for c in ids],
        "probes": [[p, devs.needs.get(p, ""), devs.why.get(p, "")] for p in probe_order(results)],
        "grids": [_grid(g, index) for g in found],
        "bad": {f"{gi},{index[p]},{index[c]}": [_problem(l, devs, titles, tables) for l in loads]
                for gi, g in enumerate(found) for (p, c), loads in sorted(g.problems.items())},
        "exports": {f"{index[p]},{g.format}": [[a.probe, export_problem(a)] for a in failed]
                    for g in found for p, failed in sorted(g.exports.items())},
    }
    data["sigs"] = [json.loads(key) for key in tables["sigs"]]
    data["errors"] = list(tables["errors"])
    data["formats"] = {f: FORMAT_TEXT.get(f, "") for f in dict.fromkeys(g.format for g in found)}
    data["loaders"] = {g.loader: LOADER_TEXT.get(g.loader or "", "") for g in found}
    data["default"] = list(default) if default else None
    return data


def _grid(grid: Grid, index: dict[str, int]) -> dict[str, Any]:
    empty = "-" * len(grid.probes)
    return {"f": grid.format, "l": grid.loader, "p": [index[p] for p in grid.producers],
            "s": "".join(grid.letters.get((p, c), empty) for p in grid.producers for c in grid.consumers)}


def _problem(load: LoadRow, devs: Devices, titles: dict[Any, str], tables: dict[str, Any]) -> list[Any]:
    sig = signature(load, devs)
    assert sig is not None  # grids list only loads that did not work
    sigs, errors = tables["sigs"], tables["errors"]
    sig_at = sigs.setdefault(json.dumps([titles.get(sig, sig.title), sig.kind]), len(sigs))
    if load.status is LoadStatus.OUTPUTS_DIFFER:
        text = f"max abs err {load.max_abs_err}, max rel err {load.max_rel_err} " \
               f"(atol {load.atol}, rtol {load.rtol})"
    else:
        text = shorten(f"{load.error_type or ''}: {load.error or ''}".lstrip(": "), ERROR_LIMIT)
    error_at = errors.setdefault(text, len(errors))
    static = load.static or {}
    predicted = sorted(set((static.get("missing_ops") or []) + (static.get("missing_attrs") or [])))
    return [load.probe, load.status.value, sig_at, error_at, predicted]


def dumps(data: dict[str, Any]) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
