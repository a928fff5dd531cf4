"""The data of index.html's pair picker: one compact JSON object in the page.

Loads that are ok or n/a are not listed one by one: each grid keeps one letter
per square (its verdict) and the number of loads behind it; only loads that
fail or differ are listed, by square, with their error (each distinct text
once) and their signature (sandbox.report.findings).

    {"cells": [[id, label, tensorflow, runtime], ...],  # the healthy cells, oldest first (runtime: "tensorflow",
                                                    # "keras", "ai-edge-litert", "tflite-runtime")
     "grids": [{"f": format, "l": loader, "p": [cell index of each producer],
                "v": "oofn-...",                  # verdict per producer x consumer, row-major
                "n": [loads per square, ...]}],
     "bad": {"grid,producer,consumer": [[probe, status, signature, error, [predicted names]], ...]},
     "sigs": [[title, kind], ...], "errors": [text, ...],
     "formats": {name: what it is}, "loaders": {name: what it is}}
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.report.findings import signature
from sandbox.report.tables import (
    DIFFERS,
    FAILS,
    FORMAT_TEXT,
    LOADER_TEXT,
    NA,
    NONE,
    OK,
    Grid,
    Results,
    grids,
    healthy,
    labels,
    runtime,
)

# One letter per verdict in a grid's "v" string.
CODES = {OK: "o", DIFFERS: "d", FAILS: "f", NA: "n", NONE: "-"}
ERROR_LIMIT = 10_000  # characters of an error kept in the page (the agent keeps 4,000); results.json has it whole


def build(results: Results, found: list[Grid] | None = None) -> dict[str, Any]:
    """The picker's data (`found`: grids(results), when the caller has them)."""
    ids = healthy(results)
    names = labels(results)
    cells = {c["id"]: c for c in results["cells"]}
    index = {cell: i for i, cell in enumerate(ids)}
    tables: dict[str, Any] = {"sigs": {}, "errors": {}}
    found = grids(results) if found is None else found
    data: dict[str, Any] = {
        "cells": [[c, names[c], str(cells[c].get("tensorflow") or ""), str(runtime(cells[c]).get("name"))] for c in ids],
        "grids": [_grid(g, index) for g in found],
        "bad": {f"{gi},{index[p]},{index[c]}": [_problem(l, tables) for l in loads]
                for gi, g in enumerate(found) for (p, c), loads in sorted(g.problems.items())},
    }
    data["sigs"] = [json.loads(key) for key in tables["sigs"]]
    data["errors"] = list(tables["errors"])
    present_formats = [g.format for g in found]
    data["formats"] = {f: FORMAT_TEXT.get(f, "") for f in dict.fromkeys(present_formats)}
    data["loaders"] = {g.loader: LOADER_TEXT.get(g.loader, "") for g in found}
    return data


def _grid(grid: Grid, index: dict[str, int]) -> dict[str, Any]:
    squares = [(p, c) for p in grid.producers for c in grid.consumers]
    return {"f": grid.format, "l": grid.loader, "p": [index[p] for p in grid.producers],
            "v": "".join(CODES[grid.cells[key][0]] for key in squares),
            "n": [grid.counts.get(key, 0) for key in squares]}


def _problem(load: dict[str, Any], tables: dict[str, Any]) -> list[Any]:
    sig = signature(load)
    sigs, errors = tables["sigs"], tables["errors"]
    sig_key = json.dumps([sig.title, sig.kind])
    sig_at = sigs.setdefault(sig_key, len(sigs))
    if load["status"] == "outputs-differ":
        text = f"max abs err {load.get('max_abs_err')}, max rel err {load.get('max_rel_err')} " \
               f"(atol {load.get('atol')}, rtol {load.get('rtol')})"
    else:
        text = f"{load.get('error_type') or ''}: {load.get('error') or ''}".lstrip(": ")[:ERROR_LIMIT]
    error_at = errors.setdefault(text, len(errors))
    static = load.get("static") or {}
    predicted = sorted(set((static.get("missing_ops") or []) + (static.get("missing_attrs") or [])))
    return [load["probe"], load["status"], sig_at, error_at, predicted]


def dumps(data: dict[str, Any]) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
