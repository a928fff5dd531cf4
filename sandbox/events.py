"""What a run reports while it works: small frozen values, one per thing that
happened. Library code (runner, repro, registries) emits them; only the
command line (sandbox.display) decides what a person sees of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Union

Phase = Literal["provision", "export", "registry", "load", "script", "witness"]


@dataclass(frozen=True)
class StageStarted:
    """The run starts a stage over all its cells: `total` items (exports or
    loads), whether measured now or taken from the results store."""

    stage: Literal["export", "load"]
    total: int
    cell: str = ""  # of no cell


@dataclass(frozen=True)
class PhaseStarted:
    """A cell starts measuring `todo` items of a phase (the store had `reused`)."""

    cell: str
    phase: Phase
    todo: int
    reused: int = 0
    detail: str = ""  # e.g. what is being provisioned


@dataclass(frozen=True)
class ItemDone:
    """One item (an export, a load) finished with this status."""

    cell: str
    phase: Phase
    item: str  # "producer/probe/format/loader" or "probe/format"
    status: str


@dataclass(frozen=True)
class PhaseFinished:
    """A phase of a cell is over: how many items ended in which status, and
    how many the results store already had."""

    cell: str
    phase: Phase
    counts: tuple[tuple[str, int], ...] = ()  # (status, n), sorted by status
    reused: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Provisioned:
    """A cell's environment is ready: built now or reused from the cache."""

    cell: str
    reused: bool
    seconds: float


@dataclass(frozen=True)
class CellFinished:
    """A cell reached its final status (ok, skipped, install-failed, broken, error)."""

    cell: str
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class Note:
    """Anything else worth a line: a resumed agent, damaged stored files."""

    cell: str
    phase: str
    message: str


Event = Union[StageStarted, PhaseStarted, ItemDone, PhaseFinished, Provisioned, CellFinished, Note]
Listener = Callable[[Event], None]


def counts(statuses: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((s, n) for s, n in statuses.items() if n))
