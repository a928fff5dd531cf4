"""Typed records: the agent's JSON lines are parsed here, once, where they come
in; the store, collect and the results document use these types.

A stored record names no cell: what it measured is addressed by its key
(environment, code, artifact digest...), so the same record serves every run,
matrix or repro that asks the same question. Runs attach the producer and
consumer names when they collect.

A run's own data types follow (a cell's state and result, a source of
artifacts): what a run hands on, to collect, bundles and shards, which need
nothing else of the runner.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.agent import catalog


class ArtifactStatus(str, enum.Enum):
    EXPORTED = "exported"
    NOT_APPLICABLE = "not-applicable"
    ERROR = "error"
    CRASH = "crash"  # the agent process died on this item
    TIMEOUT = "timeout"
    HARNESS_ERROR = "harness-error"  # our own code failed (agent or host): a bug, not a finding

    @property
    def failed(self) -> bool:
        """The export failed (error, crash, timeout, harness error): there is nothing to load."""
        return self not in (ArtifactStatus.EXPORTED, ArtifactStatus.NOT_APPLICABLE)


class LoadStatus(str, enum.Enum):
    OK = "ok"
    OUTPUTS_DIFFER = "outputs-differ"
    LOAD_ERROR = "load-error"
    RUN_ERROR = "run-error"
    NOT_APPLICABLE = "not-applicable"
    CRASH = "crash"
    TIMEOUT = "timeout"
    HARNESS_ERROR = "harness-error"  # our own code failed: a bug, never a finding

    @property
    def failed(self) -> bool:
        """TensorFlow or Keras refused to load or run it (a finding); a harness error is none."""
        return self in _REFUSED

    @property
    def worked(self) -> bool:
        """It loaded and ran, whether its outputs match the producer's or not."""
        return self in (LoadStatus.OK, LoadStatus.OUTPUTS_DIFFER)

    @property
    def failed_or_differs(self) -> bool:
        """A load that did not give the producer's outputs: refused, or loaded and computed otherwise."""
        return self in _REFUSED or self is LoadStatus.OUTPUTS_DIFFER

    @property
    def harness(self) -> bool:
        """Our own code failed on it: a bug of ours, never a finding."""
        return self is LoadStatus.HARNESS_ERROR

    @property
    def applicable(self) -> bool:
        """The consumer has a loader for it (it was tried)."""
        return self is not LoadStatus.NOT_APPLICABLE


_REFUSED = frozenset((LoadStatus.LOAD_ERROR, LoadStatus.RUN_ERROR, LoadStatus.CRASH, LoadStatus.TIMEOUT))
HARNESS_ERROR = "harness-error"  # the status of either


class CellStatus(str, enum.Enum):
    PLANNED = "planned"
    OK = "ok"
    SKIPPED = "skipped"
    INSTALL_FAILED = "install-failed"
    BROKEN = "broken"
    ERROR = "error"
    HARNESS_ERROR = "harness-error"  # the host's own code failed on this cell

    @property
    def ran(self) -> bool:
        """The cell's environment was healthy: it exported and loaded."""
        return self is CellStatus.OK


# An item the run stopped in the middle of (Ctrl-C, SIGTERM): never stored,
# measured again by the next run.
INTERRUPTED = "interrupted"


class RecordError(ValueError):
    """An agent line or a stored record that does not have the expected shape."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _table(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Artifact:
    """One probe saved in one format by one environment (or a user's model)."""

    probe: str
    format: str
    status: ArtifactStatus
    path: str | None = None
    reason: str | None = None
    error_type: str | None = None
    ops: list[str] = field(default_factory=list)
    op_attrs: dict[str, Any] = field(default_factory=dict)
    default_attrs: dict[str, Any] = field(default_factory=dict)
    lazy_ops: list[str] = field(default_factory=list)
    lazy_attrs: dict[str, Any] = field(default_factory=dict)
    tflite_ops: Any = None
    writer: str | None = None
    trained: Any = None
    seconds: float | None = None
    files_digest: str | None = None  # of the stored files; what loads of it are keyed by
    loaders: list[str] = field(default_factory=list)  # a user's model: every loader that reads it (repro)
    device: str | None = None  # the device the probe needs to run ("GPU"), as the probe declares it
    raised_in: str | None = None  # a failed export: the frame that raised ("agent/exporters.py:88 in ...")
    raised_by: str | None = None  # the library method at work there ("Interpreter.invoke")

    @property
    def exported(self) -> bool:
        return self.status is ArtifactStatus.EXPORTED

    @classmethod
    def from_agent(cls, record: dict[str, Any]) -> Artifact:
        try:
            status = ArtifactStatus(record.get("status"))
            probe, fmt = str(record["probe"]), str(record["format"])
        except (KeyError, ValueError) as exc:
            raise RecordError(f"not an artifact record: {exc}") from None
        return cls(probe, fmt, status, _text(record.get("path")), _text(record.get("reason")),
                   _text(record.get("error_type")), _names(record.get("ops")), _table(record.get("op_attrs")),
                   _table(record.get("default_attrs")), _names(record.get("lazy_ops")),
                   _table(record.get("lazy_attrs")), record.get("tflite_ops"), _text(record.get("writer")),
                   record.get("trained"), _number(record.get("seconds")), _text(record.get("files_digest")),
                   _names(record.get("loaders")), device=_text(record.get("device")),
                   raised_in=_text(record.get("raised_in")), raised_by=_text(record.get("raised_by")))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


@dataclass(frozen=True)
class Load:
    """One artifact loaded (and run) with one loader in one environment."""

    probe: str
    format: str
    loader: str
    status: LoadStatus
    error_type: str | None = None
    error: str | None = None
    reason: str | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    atol: float | None = None
    rtol: float | None = None
    seconds: float | None = None
    raised_in: str | None = None  # a failure: the frame that raised ("agent/loaders.py:74 in tf2_load")
    raised_by: str | None = None  # the library method at work there ("InputLayer.__init__")

    @classmethod
    def from_agent(cls, record: dict[str, Any]) -> Load:
        try:
            status = LoadStatus(record.get("status"))
            probe, fmt, loader = str(record["probe"]), str(record["format"]), str(record["loader"])
        except (KeyError, ValueError) as exc:
            raise RecordError(f"not a load record: {exc}") from None
        return cls(probe, fmt, loader, status, _text(record.get("error_type")), _text(record.get("error")),
                   _text(record.get("reason")), _number(record.get("max_abs_err")),
                   _number(record.get("max_rel_err")), _number(record.get("atol")), _number(record.get("rtol")),
                   _number(record.get("seconds")), _text(record.get("raised_in")), _text(record.get("raised_by")))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


# a run's data types ------------------------------------------------------------
@dataclass
class CellState:
    """Where one cell stands in a run, and the facts of the environment that measured."""

    id: str
    status: str = "planned"  # ok | skipped | install-failed | broken | error | harness-error (a bug of ours)
    reason: str | None = None
    detail: str | None = None
    env: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellResult:
    """What a run knows of one cell: its plan, state, and records from the store."""

    facts: dict[str, Any]  # the plan's facts (plan.cell_facts): a merge has no Cell
    state: CellState
    identity: str = ""  # the environment's key in the store
    artifacts: list[tuple[str, Artifact]] = field(default_factory=list)  # (export key, record)
    loads: list[tuple[str, Load]] = field(default_factory=list)  # (producer, record)
    registry: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # what the cell reported about itself
    load_keys: list[str] = field(default_factory=list)  # the store's key of each of `loads`
    registry_key: str | None = None
    complete: bool = False  # the store holds every record this cell asked for: a re-run measures nothing

    def records(self) -> list[tuple[str, str]]:
        """(kind, key) of every store record this result holds."""
        found = [("exports", key) for key, _ in self.artifacts] + [("loads", key) for key in self.load_keys]
        return found + ([("registries", self.registry_key)] if self.registry_key and self.registry else [])


@dataclass(frozen=True)
class Source:
    """An artifact some consumer may load: a producer's name and its export."""

    producer: str
    key: str
    artifact: Artifact


def loaders_of(artifact: Artifact) -> list[str]:
    """What every consumer loads an artifact with: the loaders found to read a
    user's model, else every loader of its format."""
    return artifact.loaders or catalog.loaders_for(artifact.format)
