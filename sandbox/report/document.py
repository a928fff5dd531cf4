"""The results document (results.json): its typed rows, its schema, and the
one reader and writer of it.

The schema ships with the package (results.schema.json); tests validate every
document they produce against it, and every document read from a file is
validated against it before a renderer sees it (fastjsonschema: compiled
once, fast enough for the largest reports), so a bad file is one clear line
naming the record and key, not a traceback."""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Callable, TypeVar

from sandbox.errors import SandboxError
from sandbox.records import ArtifactStatus, CellStatus, LoadStatus

SCHEMA_VERSION = 3
# Older versions read as the current one. 2 -> 3 added the status harness-error
# and optional fields: a version-2 document is a valid version-3 one whose
# harness errors (there was no word for them) are recorded as failures.
_READS = (2,)
SCHEMA_FILE = "results.schema.json"
RESULTS_FILE = "results.json"
_REQUIRED = {"name": str, "created": str, "sandbox_version": str, "matrix": str, "formats": list,
             "cells": list, "artifacts": list, "loads": list}


# The document's rows. A reader builds them once from the JSON; every renderer, diff,
# summary and merge read them; to_json writes each back as it was read: a key the
# schema makes optional and the source left out stays out (`absent`).

@dataclass(frozen=True, slots=True)
class CellRow:
    """One environment: a TensorFlow build or a runtime beside or instead of it."""

    id: str
    status: CellStatus
    reason: str | None
    detail: str | None
    tensorflow: str
    python: str
    image: str
    backend: str
    requirement: str | None
    resolved_as_of: str | None
    python_path: str | None
    environment: dict[str, Any]  # what the cell reported about itself (results.schema.json)
    seconds: dict[str, float]  # phase -> seconds
    has_registry: bool
    docker_image: str | None = None
    runtime: dict[str, Any] | None = None  # what it runs (documents before runtime cells have none)
    role: str | None = None
    absent: frozenset[str] = frozenset()

    @property
    def ran(self) -> bool:
        return self.status.ran


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One probe saved in one format by one producer (or why it was not)."""

    producer: str
    probe: str
    format: str
    status: ArtifactStatus
    path: str | None = None
    reason: str | None = None
    error_type: str | None = None
    ops: list[str] | None = None
    op_attrs: dict[str, Any] | None = None
    default_attrs: dict[str, Any] | None = None
    lazy_ops: list[str] | None = None
    lazy_attrs: dict[str, Any] | None = None
    tflite_ops: Any = None
    writer: Any = None
    trained: Any = None
    seconds: float | None = None
    device: str | None = None  # the device the probe needs ("GPU"), as the probe declares it
    category: str | None = None  # a failed export, classified like a failed load
    names: tuple[str, ...] = ()
    raised_in: str | None = None
    raised_by: str | None = None
    absent: frozenset[str] = frozenset()

    @property
    def failed(self) -> bool:
        return self.status.failed


@dataclass(frozen=True, slots=True)
class LoadRow:
    """One producer's artifact loaded (and run) with one loader in one consumer."""

    consumer: str
    producer: str
    probe: str
    format: str
    loader: str | None
    status: LoadStatus
    category: str | None  # the classified failure ("op-not-registered")
    names: tuple[str, ...]  # the culprits it names (ops, Op.attrs, kernels, ...)
    static: dict[str, Any] | None  # the static check against the consumer's registry (sandbox.static)
    error_type: str | None = None
    error: str | None = None
    reason: str | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    atol: float | None = None
    rtol: float | None = None
    seconds: float | None = None
    raised_in: str | None = None
    raised_by: str | None = None
    absent: frozenset[str] = frozenset()

    @property
    def pair(self) -> tuple[str, str]:
        return self.producer, self.consumer

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What addresses the load in a document: (producer, consumer, probe, format, loader)."""
        return self.producer, self.consumer, self.probe, self.format, self.loader or ""


class WitnessStatus(str, enum.Enum):
    """What a witness script did (a load's words, and not-run)."""

    OK = "ok"
    OUTPUTS_DIFFER = "outputs-differ"
    LOAD_ERROR = "load-error"
    RUN_ERROR = "run-error"
    CRASH = "crash"
    TIMEOUT = "timeout"
    NOT_RUN = "not-run"

    @property
    def raised(self) -> bool:
        """It ran and did not load cleanly: there is something it raised (or computed otherwise) to show."""
        return self not in (WitnessStatus.OK, WitnessStatus.NOT_RUN)


class WitnessOutcome(str, enum.Enum):
    """Whether a witness reproduced its finding (sandbox.witness.verdict says how it is judged)."""

    REPRODUCED = "reproduced"
    FAILS_OTHERWISE = "fails-otherwise"
    LOADS = "loads"
    BEYOND_REACH = "beyond-reach"
    NOT_RUN = "not-run"

    @property
    def refutes(self) -> bool:
        """The witness did not reproduce its finding: the finding is a bug of ours."""
        return self in (WitnessOutcome.FAILS_OTHERWISE, WitnessOutcome.LOADS)


@dataclass(frozen=True, slots=True)
class WitnessRow:
    """One grouped finding's witness: the load it re-ran, its script, what happened, and the verdict."""

    consumer: str
    producer: str
    probe: str
    format: str
    loader: str | None
    finding: str  # the finding's title (its signature)
    script: str | None  # None when no script could be made
    status: WitnessStatus
    outcome: WitnessOutcome
    usage: str | None = None  # the script's arguments
    error_type: str | None = None
    error: str | None = None
    where: str | None = None  # file:line in function where the error was raised
    reason: str | None = None
    max_abs_err: float | None = None
    seconds: float | None = None
    category: str | None = None  # the class of the witness's failure (sandbox.classify)
    names: tuple[str, ...] = ()
    why: str | None = None  # why, when the outcome is not "reproduced"
    absent: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """The load it re-ran, as LoadRow.key addresses it."""
        return self.producer, self.consumer, self.probe, self.format, self.loader or ""


Row = TypeVar("Row", CellRow, ExportRow, LoadRow, WitnessRow)
# The fields of each row that hold an enum's value in the JSON.
_ENUMS: dict[type[Any], dict[str, Callable[[str], Any]]] = {
    CellRow: {"status": CellStatus}, ExportRow: {"status": ArtifactStatus}, LoadRow: {"status": LoadStatus},
    WitnessRow: {"status": WitnessStatus, "outcome": WitnessOutcome}}
_FIELDS = {cls: tuple(f.name for f in fields(cls) if f.name != "absent") for cls in _ENUMS}
_OPTIONAL = {cls: frozenset(f.name for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING)
             - {"absent"} for cls in _ENUMS}


def read_row(cls: type[Row], data: dict[str, Any]) -> Row:
    """One row of a checked document's JSON."""
    values = {name: data[name] for name in _FIELDS[cls] if name in data}
    for name, kind in _ENUMS[cls].items():
        values[name] = kind(data[name])
    if "names" in values:
        values["names"] = tuple(values["names"])
    missing = _OPTIONAL[cls] - data.keys() if len(values) < len(_FIELDS[cls]) else _NOTHING
    return cls(**values, absent=missing)


def row_json(row: CellRow | ExportRow | LoadRow | WitnessRow) -> dict[str, Any]:
    """The row's JSON object, as it was read."""
    out = {name: getattr(row, name) for name in _FIELDS[type(row)] if name not in row.absent}
    for name in _ENUMS[type(row)]:
        out[name] = out[name].value
    if "names" in out:
        out["names"] = list(out["names"])
    return out


_NOTHING: frozenset[str] = frozenset()


@dataclass(repr=False)
class ResultsDocument:
    """results.json, typed: a run's cells, what each exported, and every load."""

    name: str
    created: str
    sandbox_version: str
    matrix: str
    probes: list[str]
    formats: list[str]
    cells: list[CellRow]
    artifacts: list[ExportRow]
    loads: list[LoadRow]
    schema_version: int = SCHEMA_VERSION
    tolerances: dict[str, dict[str, float]] | None = None  # probe -> {"atol", "rtol"}
    related: list[str] | None = None  # the reports beside this one it links to
    redacted: bool | None = None  # host names and local paths replaced (sandbox.report.redact)
    witnesses: list[WitnessRow] | None = None  # one per grouped finding (sandbox.witness); None: none were run

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultsDocument:
        """The document of a results.json that check() accepted."""
        witnesses = data.get("witnesses")
        return cls(**{k: data[k] for k in _SCALARS if k in data},
                   cells=[read_row(CellRow, c) for c in data["cells"]],
                   artifacts=[read_row(ExportRow, a) for a in data["artifacts"]],
                   loads=[read_row(LoadRow, l) for l in data["loads"]],
                   witnesses=None if witnesses is None else [read_row(WitnessRow, w) for w in witnesses])

    def to_json(self) -> dict[str, Any]:
        """results.json's object (what from_json read, as it was)."""
        out = self.scalars()
        out.update({key: [row_json(r) for r in rows] for key, rows in self.rows().items()})
        return out

    def rows(self) -> dict[str, list[Any]]:
        """The lists of rows by their key in the JSON: those the source holds."""
        return {k: v for k in _ROWS if (v := getattr(self, k)) is not None}

    def scalars(self) -> dict[str, Any]:
        """The top-level values besides the rows: those the source holds."""
        return {k: v for k in _SCALARS if (v := getattr(self, k)) is not None}

    def __repr__(self) -> str:  # a map's document has 100,000 rows: a test's failure shows its size
        return (f"ResultsDocument(name={self.name!r}, {len(self.cells)} cells, {len(self.artifacts)} artifacts, "
                f"{len(self.loads)} loads)")

    def cell(self) -> dict[str, CellRow]:
        """Cell id -> its row."""
        return {c.id: c for c in self.cells}

    @property
    def healthy(self) -> list[CellRow]:
        """The cells that ran, in the document's order."""
        return [c for c in self.cells if c.ran]


_ROWS = ("cells", "artifacts", "loads", "witnesses")
_SCALARS = tuple(f.name for f in fields(ResultsDocument) if f.name not in _ROWS)


def chunks(results: ResultsDocument, leave_out: tuple[str, ...] = ()) -> Iterator[str]:
    """results.json's text in pieces, to write as they come: the top level
    indented, each record of a list on a line of its own. Records go through
    the C encoder (an indented dump takes the pure-Python one, and several
    times the document's size in memory), and a diff of two reports shows one
    line per record that changed."""
    top: dict[str, Any] = {**results.scalars(), **results.rows()}
    for key in leave_out:
        top.pop(key, None)
    yield "{\n"
    keys = sorted(top)
    for i, key in enumerate(keys):
        value, end = top[key], (",\n" if i < len(keys) - 1 else "\n")
        if isinstance(value, list) and value:
            yield f" {json.dumps(key)}: [\n"
            last = len(value) - 1
            for j, item in enumerate(value):
                record = row_json(item) if key in _ROWS else item  # one row at a time: never the whole document
                yield "  " + json.dumps(record, sort_keys=True) + (",\n" if j < last else "\n")
            yield " ]" + end
        else:
            yield f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{end}"
    yield "}\n"


def schema() -> dict[str, Any]:
    """The JSON Schema of results.json, as shipped in the package."""
    text = resources.files("sandbox.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load(path: Path) -> ResultsDocument:
    """The results document of results.json, or of a report folder holding one."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SandboxError(f"{file}: cannot read results: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise SandboxError(f"{file}: cannot read results: not JSON ({_first_line(exc)})") from None
    if isinstance(data, dict) and data.get("schema_version") in _READS:
        data["schema_version"] = SCHEMA_VERSION
    check(data, str(file))
    return ResultsDocument.from_json(data)


def check(data: Any, where: str) -> None:
    """Raise a one-line SandboxError unless `data` has the shape renderers need."""
    if not isinstance(data, dict):
        raise SandboxError(f"{where}: not a results document (expected a JSON object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        readable = ", ".join(str(v) for v in (*_READS, SCHEMA_VERSION))
        raise SandboxError(f"{where}: schema_version {version!r} is not supported (this sandbox reads "
                           f"{readable}); re-render it with the sandbox version that wrote it")
    for key, kind in _REQUIRED.items():
        if not isinstance(data.get(key), kind):
            raise SandboxError(f"{where}: key {key!r} is missing or not a {kind.__name__}")
    from fastjsonschema import JsonSchemaValueException  # here: every command imports this module

    try:
        _validator()(data)
    except JsonSchemaValueException as exc:
        message = _first_line(exc.message)
        what = message[5:] if message.startswith("data.") else "the document" + message.removeprefix("data")
        raise SandboxError(f"{where}: not a valid results document: {what} (see {SCHEMA_FILE} in the "
                           "sandbox package; regenerate it with `sandbox run`)") from None
    except RecursionError:
        raise SandboxError(f"{where}: not a valid results document: nested too deeply") from None


@functools.cache
def _validator() -> Callable[[Any], Any]:
    import fastjsonschema

    validate: Callable[[Any], Any] = fastjsonschema.compile(schema())
    return validate


def _first_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
