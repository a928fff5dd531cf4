"""Gather a run's records (from the results store) into one versioned results document.

Renderers read only this document, so any past run can be re-rendered."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from sandbox import __version__
from sandbox.agent import catalog
from sandbox.check.static import GRAPH_FORMATS, GRAPH_LOADERS, TFLITE_FORMATS, static_check, tflite_check
from sandbox.classify import Classified, classify
from sandbox.matrix import Matrix
from sandbox.records import Artifact, Load, LoadStatus
from sandbox.report.document import SCHEMA_VERSION, ResultsDocument
from sandbox.runner import CellResult


def collect(matrix: Matrix, results: list[CellResult],
            external: list[tuple[str, Artifact]] | None = None) -> ResultsDocument:
    """The results document of a run (or of merged shards: the same input).
    `external`: artifacts of producers that are not cells (a user's model)."""
    registries = {r.state.id: r.registry for r in results}
    artifacts = [_artifact(r.state.id, a) for r in results for _, a in r.artifacts]
    artifacts += [_artifact(producer, a) for producer, a in external or []]
    by_key = {(a["producer"], a["probe"], a["format"]): a for a in artifacts}
    order = _order(matrix, [r.state.id for r in results] + [p for p, _ in external or []])
    loads = [_load(r.state.id, producer, load, by_key, registries.get(r.state.id))
             for r in results for producer, load in sorted(r.loads, key=lambda pl: order(pl[0], pl[1]))]
    return ResultsDocument.from_json({
        "schema_version": SCHEMA_VERSION,
        "sandbox_version": __version__,
        "name": matrix.name,
        "matrix": str(matrix.path),
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **({"related": list(matrix.related)} if matrix.related else {}),
        "probes": list(matrix.probes),
        "formats": list(matrix.formats),
        "tolerances": {p: vars(matrix.tolerance(p)) for p in matrix.probes},
        "cells": [_cell(r) for r in results],
        "artifacts": artifacts,
        "loads": loads,
    })


def _cell(result: CellResult) -> dict[str, Any]:
    state = result.state
    seconds = {"export": sum(a.seconds or 0.0 for _, a in result.artifacts),
               "load": sum(l.seconds or 0.0 for _, l in result.loads)}
    return {
        **result.facts, "status": state.status, "reason": state.reason, "detail": state.detail,
        "environment": result.info,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "has_registry": result.registry is not None,
    }


def _order(matrix: Matrix, producers: list[str]) -> Callable[[str, Load], tuple[int, ...]]:
    """Loads in one order however they were measured (a run, a re-run, shards)."""
    ranks = [{name: i for i, name in enumerate(names)}
             for names in (producers, matrix.probes, matrix.formats, list(catalog.LOADER_FORMATS))]

    def key(producer: str, load: Load) -> tuple[int, ...]:
        values = (producer, load.probe, load.format, load.loader)
        return tuple(rank.get(v, len(rank)) for rank, v in zip(ranks, values))
    return key


def _artifact(producer: str, artifact: Artifact) -> dict[str, Any]:
    data = artifact.to_json()
    data.pop("files_digest", None)
    data.pop("loaders", None)  # what the run loaded it with: the loads say
    # a failed export is classified like a failed load (its error text is its reason)
    found = classify(artifact.status.value, artifact.reason, artifact.error_type, artifact.raised_in,
                     artifact.raised_by)
    data["category"], data["names"] = (found.category, _named(found, artifact.tflite_ops)) if found else (None, [])
    return {"producer": producer, **data}


def _named(found: Classified, tflite_ops: Any) -> list[str]:
    """The culprits; a TFLite op whose kernel fails, at the version the artifact holds ("CONV_2D@v2")."""
    versions = tflite_ops if isinstance(tflite_ops, dict) else {}
    if found.category == "tflite-kernel":
        return [f"{n}@v{versions[n]}" if n in versions else n for n in found.names]
    return list(found.names)


def _load(consumer: str, producer: str, load: Load, artifacts: dict[tuple[str, str, str], dict[str, Any]],
          registry: dict[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {"consumer": consumer, "producer": producer, **load.to_json()}
    found = classify(load.status.value, load.error, load.error_type, load.raised_in, load.raised_by)
    artifact = artifacts.get((producer, load.probe, load.format))
    result["category"] = found.category if found else None
    result["names"] = _named(found, (artifact or {}).get("tflite_ops")) if found else []
    graph = (load.format in GRAPH_FORMATS and load.loader in GRAPH_LOADERS
             and load.status is not LoadStatus.NOT_APPLICABLE)
    result["static"] = None
    if registry and artifact and artifact.get("op_attrs") is not None and graph:
        result["static"] = static_check(artifact["op_attrs"], registry, artifact.get("default_attrs"),
                                        load.loader, artifact.get("lazy_ops"),
                                        artifact.get("lazy_attrs")).as_dict()
    elif (registry and artifact and artifact.get("tflite_ops") and load.format in TFLITE_FORMATS
          and load.status is not LoadStatus.NOT_APPLICABLE):
        checked = tflite_check(artifact["tflite_ops"], registry, load.loader)
        result["static"] = checked.as_dict() if checked else None
    return result
