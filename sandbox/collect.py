"""Gather a run's records (from the results store) into one versioned results document.

Renderers read only this document, so any past run can be re-rendered. The
rows are built here from the runner's typed records; only sandbox.report.document
reads and writes their JSON."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from sandbox import __version__
from sandbox.agent import catalog
from sandbox.check.static import GRAPH_FORMATS, GRAPH_LOADERS, TFLITE_FORMATS, static_check, tflite_check
from sandbox.classify import Classified, classify
from sandbox.matrix import Matrix
from sandbox.records import Artifact, CellResult, CellStatus, Load, LoadStatus
from sandbox.report.document import SCHEMA_VERSION, CellRow, ExportRow, LoadRow, ResultsDocument

# What the plan's facts of a cell may lack (a bundle written before they were facts): left out of its row.
_LATER_FACTS = ("docker_image", "runtime", "role")


def collect(matrix: Matrix, results: list[CellResult],
            external: list[tuple[str, Artifact]] | None = None) -> ResultsDocument:
    """The results document of a run (or of merged shards: the same input).
    `external`: artifacts of producers that are not cells (a user's model)."""
    registries = {r.state.id: r.registry for r in results}
    artifacts = [_artifact(r.state.id, a) for r in results for _, a in r.artifacts]
    artifacts += [_artifact(producer, a) for producer, a in external or []]
    by_key = {(a.producer, a.probe, a.format): a for a in artifacts}
    order = _order(matrix, [r.state.id for r in results] + [p for p, _ in external or []])
    loads = [_load(r.state.id, producer, load, by_key, registries.get(r.state.id))
             for r in results for producer, load in sorted(r.loads, key=lambda pl: order(pl[0], pl[1]))]
    return ResultsDocument(
        name=matrix.name, created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        sandbox_version=__version__, matrix=str(matrix.path), probes=list(matrix.probes),
        formats=list(matrix.formats), cells=[_cell(r) for r in results], artifacts=artifacts, loads=loads,
        schema_version=SCHEMA_VERSION, tolerances={p: vars(matrix.tolerance(p)) for p in matrix.probes},
        related=list(matrix.related) if matrix.related else None)


def _cell(result: CellResult) -> CellRow:
    state, facts = result.state, result.facts
    seconds = {"export": sum(a.seconds or 0.0 for _, a in result.artifacts),
               "load": sum(l.seconds or 0.0 for _, l in result.loads)}
    return CellRow(
        id=facts["id"], status=CellStatus(state.status), reason=state.reason, detail=state.detail,
        tensorflow=facts["tensorflow"], python=facts["python"], image=facts["image"], backend=facts["backend"],
        requirement=facts["requirement"], resolved_as_of=facts["resolved_as_of"], python_path=facts["python_path"],
        environment=result.info, seconds={k: round(v, 1) for k, v in seconds.items()},
        has_registry=result.registry is not None, docker_image=facts.get("docker_image"),
        runtime=facts.get("runtime"), role=facts.get("role"),
        absent=frozenset(k for k in _LATER_FACTS if k not in facts))


def _order(matrix: Matrix, producers: list[str]) -> Callable[[str, Load], tuple[int, ...]]:
    """Loads in one order however they were measured (a run, a re-run, shards)."""
    ranks = [{name: i for i, name in enumerate(names)}
             for names in (producers, matrix.probes, matrix.formats, list(catalog.LOADER_FORMATS))]

    def key(producer: str, load: Load) -> tuple[int, ...]:
        values = (producer, load.probe, load.format, load.loader)
        return tuple(rank.get(v, len(rank)) for rank, v in zip(ranks, values))
    return key


def _artifact(producer: str, artifact: Artifact) -> ExportRow:
    """An artifact's row: its record, but for what only the store and the run use
    (its files' digest; the loaders a user's model was loaded with: the loads say)."""
    # a failed export is classified like a failed load (its error text is its reason)
    found = classify(artifact.status.value, artifact.reason, artifact.error_type, artifact.raised_in,
                     artifact.raised_by)
    a = artifact
    return ExportRow(
        producer, a.probe, a.format, a.status, path=a.path, reason=a.reason, error_type=a.error_type, ops=a.ops,
        op_attrs=a.op_attrs, default_attrs=a.default_attrs, lazy_ops=a.lazy_ops, lazy_attrs=a.lazy_attrs,
        tflite_ops=a.tflite_ops, writer=a.writer, trained=a.trained, seconds=a.seconds, device=a.device,
        category=found.category if found else None, names=_named(found, a.tflite_ops) if found else (),
        raised_in=a.raised_in, raised_by=a.raised_by)


def _named(found: Classified, tflite_ops: Any) -> tuple[str, ...]:
    """The culprits; a TFLite op whose kernel fails, at the version the artifact holds ("CONV_2D@v2")."""
    versions = tflite_ops if isinstance(tflite_ops, dict) else {}
    if found.category == "tflite-kernel":
        return tuple(f"{n}@v{versions[n]}" if n in versions else n for n in found.names)
    return tuple(found.names)


def _load(consumer: str, producer: str, load: Load, artifacts: dict[tuple[str, str, str], ExportRow],
          registry: dict[str, Any] | None) -> LoadRow:
    found = classify(load.status.value, load.error, load.error_type, load.raised_in, load.raised_by)
    artifact = artifacts.get((producer, load.probe, load.format))
    return LoadRow(
        consumer, producer, load.probe, load.format, load.loader, load.status,
        category=found.category if found else None,
        names=_named(found, artifact.tflite_ops if artifact else None) if found else (),
        static=_static(load, artifact, registry), error_type=load.error_type, error=load.error, reason=load.reason,
        max_abs_err=load.max_abs_err, max_rel_err=load.max_rel_err, atol=load.atol, rtol=load.rtol,
        seconds=load.seconds, raised_in=load.raised_in, raised_by=load.raised_by)


def _static(load: Load, artifact: ExportRow | None, registry: dict[str, Any] | None) -> dict[str, Any] | None:
    """The static check of a load's artifact against the consumer's registry, where one applies."""
    if not registry or artifact is None or load.status is LoadStatus.NOT_APPLICABLE:
        return None
    if load.format in GRAPH_FORMATS and load.loader in GRAPH_LOADERS and artifact.op_attrs is not None:
        return static_check(artifact.op_attrs, registry, artifact.default_attrs, load.loader, artifact.lazy_ops,
                            artifact.lazy_attrs).as_dict()
    if artifact.tflite_ops and load.format in TFLITE_FORMATS:
        checked = tflite_check(artifact.tflite_ops, registry, load.loader)
        return checked.as_dict() if checked else None
    return None
