"""The JSON documents the commands print with --json. Each shape is described
in sandbox/report/cli.schema.json ($defs/<command>) and checked against it in
the tests; change both together (add fields freely, remove or rename none)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.check.verdicts import WILL_FAIL, Verdict
from sandbox.pythons import Discovery

if TYPE_CHECKING:
    from sandbox.matrix import Matrix
    from sandbox.plan import Cell
    from sandbox.report.diff import Change
    from sandbox.report.document import ResultsDocument
    from sandbox.repro import Spec

SCHEMA_FILE = "cli.schema.json"


def plan(mx: Matrix, cells: list[Cell]) -> dict[str, Any]:
    """`sandbox plan --json`: the matrix and every cell it resolves to."""
    rows = [{"id": c.id, "tensorflow": c.tensorflow or c.request.tensorflow, "python": c.python_version,
             "image": c.image, "backend": c.backend, "packages": list(c.request.packages), "skip": c.skip,
             "requirements": list(c.requirements), "install_args": list(c.install_args),
             "python_path": str(c.python.path) if c.python else None, "docker_image": c.docker_image,
             "in_python_image": c.in_python_image} for c in cells]
    return {"matrix": str(mx.path), "name": mx.name, "probes": list(mx.probes),
            "formats": list(mx.formats), "python_image": mx.python_image or None, "cells": rows}


def check(path: Path, description: str, verdicts: list[Verdict]) -> dict[str, Any]:
    """`sandbox check --json`: the model, then one verdict per target release
    and loader."""
    return {"model": str(path), "description": description,
            "will_fail": sum(v.verdict == WILL_FAIL for v in verdicts),
            "targets": [v.as_dict() for v in verdicts]}


def diff(old: Path, new: Path, changes: list[Change], gates: bool) -> dict[str, Any]:
    """`sandbox diff --json`: whether anything changed, every change; `gates`
    is the exit code's reason."""
    return {"old": str(old), "new": str(new), "changed": bool(changes), "newly_failing": gates,
            "changes": [asdict(c) for c in changes]}


def repro(spec: Spec, results: ResultsDocument, outputs: list[Path]) -> dict[str, Any]:
    """`sandbox repro --json`: one row per consumer and loader, the cells that
    did not run, and where the report is."""
    from sandbox.repro import outcome, tried

    rows = []
    for load in tried(results, spec):
        static = load.static or {}
        rows.append({"consumer": load.consumer, "loader": load.loader, "status": load.status.value,
                     "category": load.category, "names": list(load.names),
                     "static_missing": list(static.get("missing_ops") or []) + list(static.get("missing_attrs") or []),
                     "reproduced": None if spec.expect_error is None else outcome(load, spec.expect_error) == "reproduced",
                     "error": load.error})
    cells = [{"id": c.id, "status": c.status.value, "reason": c.reason} for c in results.cells]
    html, md, junit, data = (str(p) for p in outputs)
    return {"spec": str(spec.path), "name": spec.name, "loads": rows, "cells": cells,
            "report": {"html": html, "markdown": md, "junit": junit, "results": data}}


def pythons(found: Discovery) -> dict[str, Any]:
    """`sandbox pythons --json`: the newest interpreter of each minor version."""
    ordered = sorted(found.interpreters.items(), key=lambda kv: tuple(map(int, kv[0].split("."))))
    return {"interpreters": [{"minor": minor, "version": i.full, "source": i.source, "path": str(i.path),
                              "machine": i.machine} for minor, i in ordered],
            "searched": list(found.searched)}
