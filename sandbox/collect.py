"""Gather a run's on-disk records into one versioned results document.

Renderers read only this document, so any past run can be re-rendered."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sandbox import __version__
from sandbox.classify import classify
from sandbox.matrix import Matrix
from sandbox.plan import Cell
from sandbox.report.document import SCHEMA_VERSION
from sandbox.runner import CellPaths, CellState, load_records
from sandbox.static import GRAPH_FORMATS, GRAPH_LOADERS, TFLITE_FORMATS, static_check, tflite_check


def collect(matrix: Matrix, cells: list[Cell], states: dict[str, CellState], run_dir: Path,
            external: dict[str, Path] | None = None) -> dict[str, Any]:
    """`external`: producers that are not cells (a reporter's model), name ->
    folder of their manifest."""
    registries = {c.id: _registry(CellPaths(run_dir, c.id).registry) for c in cells}
    manifests = [(c.id, CellPaths(run_dir, c.id).manifest) for c in cells]
    manifests += [(name, folder / "manifest.jsonl") for name, folder in (external or {}).items()]
    artifacts = [_artifact(name, r) for name, manifest in manifests for r in load_records(manifest, "artifact")]
    by_key = {(a["producer"], a["probe"], a["format"]): a for a in artifacts}
    loads = [_load(c.id, r, by_key, registries.get(c.id))
             for c in cells for r in load_records(CellPaths(run_dir, c.id).loads, "load")]
    return {
        "schema_version": SCHEMA_VERSION,
        "sandbox_version": __version__,
        "name": matrix.name,
        "matrix": str(matrix.path),
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "probes": list(matrix.probes),
        "formats": list(matrix.formats),
        "tolerances": {p: vars(matrix.tolerance(p)) for p in matrix.probes},
        "cells": [_cell(c, states[c.id], run_dir) for c in cells],
        "artifacts": artifacts,
        "loads": loads,
    }


def _cell(cell: Cell, state: CellState, run_dir: Path) -> dict[str, Any]:
    info = next(iter(load_records(CellPaths(run_dir, cell.id).manifest, "cell")), {})
    return {
        "id": cell.id, "status": state.status, "reason": state.reason, "detail": state.detail,
        "tensorflow": cell.tensorflow or cell.request.tensorflow,
        "python": cell.python_version,
        "image": cell.image, "backend": cell.backend,
        "requirement": " ".join(cell.requirements) or None,  # TF, then any extra packages
        "resolved_as_of": cell.release.exclude_newer if cell.release else None,
        "python_path": str(cell.python.path) if cell.python else None,
        "docker_image": cell.docker_image,
        "environment": {**state.env, **{k: v for k, v in info.items() if k != "kind"}},
        "seconds": state.seconds,
        "has_registry": (CellPaths(run_dir, cell.id).registry).exists(),
    }


def _artifact(producer: str, record: dict[str, Any]) -> dict[str, Any]:
    keep = ("probe", "format", "status", "path", "reason", "error_type", "ops", "op_attrs", "default_attrs",
            "lazy_ops", "lazy_attrs", "tflite_ops", "writer", "trained", "seconds")
    return {"producer": producer, **{k: record.get(k) for k in keep}}


def _load(consumer: str, record: dict[str, Any], artifacts: dict[tuple[str, str, str], dict[str, Any]],
          registry: dict[str, Any] | None) -> dict[str, Any]:
    keep = ("producer", "probe", "format", "loader", "status", "error_type", "error", "reason",
            "max_abs_err", "max_rel_err", "atol", "rtol", "seconds")
    result: dict[str, Any] = {"consumer": consumer, **{k: record.get(k) for k in keep}}
    found = classify(result["status"], result["error"], result["error_type"])
    result["category"] = found.category if found else None
    result["names"] = list(found.names) if found else []
    artifact = artifacts.get((result["producer"], result["probe"], result["format"]))
    graph = (result["format"] in GRAPH_FORMATS and result["loader"] in GRAPH_LOADERS
             and result["status"] != "not-applicable")
    result["static"] = None
    if registry and artifact and artifact.get("op_attrs") is not None and graph:
        result["static"] = static_check(artifact["op_attrs"], registry, artifact.get("default_attrs"),
                                        result["loader"], artifact.get("lazy_ops"),
                                        artifact.get("lazy_attrs")).as_dict()
    elif registry and artifact and artifact.get("tflite_ops") and result["format"] in TFLITE_FORMATS:
        checked = tflite_check(artifact["tflite_ops"], registry)
        result["static"] = checked.as_dict() if checked else None
    return result


def _registry(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
