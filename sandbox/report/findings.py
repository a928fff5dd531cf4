"""What a run found, in few words: failures grouped by signature (the ops or
attrs a consumer lacks, or the error class and message), and a summary of each
format and loader in version ranges, the way caniuse writes support
("saved_model from >= 2.10 fails in <= 2.9: DisableCopyOnRead").

Version findings, device findings (a probe that needs a device the consumer
lacks) and harness errors (our own bugs) are grouped apart; see
sandbox.report.verdict for what each load counts as."""

from __future__ import annotations

import re
import signal
from collections import defaultdict
from dataclasses import dataclass, field

from sandbox.records import ArtifactStatus
from sandbox.report.document import ExportRow, LoadRow, ResultsDocument
from sandbox.report.redact import text as redact_text
from sandbox.report.tables import Grid, first_line, grids, labels, runs
from sandbox.report.verdict import DEVICE, DIFFERS, FAILS, HARNESS, NA, Devices, devices

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_NUMBER = re.compile(r"\b\d{3,}\b")
_PATHS = re.compile(r"(?:<\w+>|~)?(?<![\w.])/[^\s'\"(),;]+")
_EXIT = re.compile(r"\(exit -(\d+)\)")
# Kinds of finding, in the order a report lists them.
KINDS = {FAILS: "fails", DIFFERS: "differs", DEVICE: "device-bound", HARNESS: "harness error"}
_RANK = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True, order=True)
class Signature:
    """What makes two failures the same finding, whatever pair or probe they hit."""

    kind: str  # FAILS, DIFFERS, DEVICE or HARNESS (sandbox.report.verdict's letters)
    category: str  # the classified error class ("op-not-registered"), else the status
    error_type: str  # "NotFoundError"
    names: tuple[str, ...]  # the ops or Op.attrs the error names
    message: str = ""  # the error's first line, normalised, when it names nothing

    @property
    def title(self) -> str:
        if self.kind == DIFFERS or (self.kind == DEVICE and self.category == "device"):
            return self.message
        what = ", ".join(self.names) if self.names else self.message
        if self.kind == DEVICE:
            return f"{what}: no kernel on this consumer's devices ({self.category})"
        return f"{what} ({self.category}{', ' + self.error_type if self.error_type else ''})"


@dataclass
class Group:
    signature: Signature
    loads: list[LoadRow] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.signature.kind

    @property
    def title(self) -> str:
        """The signature's title; for a probe bound to a device, with the ops that had no kernel."""
        kernels = sorted({n for l in self.loads if l.category == "missing-kernel" for n in l.names})
        if self.kind == DEVICE and self.signature.category == "device" and kernels:
            return f"{self.signature.message}: exported with GPU-only op{'s' * (len(kernels) > 1)} " \
                   f"{', '.join(kernels)}, which no CPU kernel runs"
        return self.signature.title

    @property
    def pairs(self) -> set[tuple[str, str]]:
        return {l.pair for l in self.loads}

    def values(self, key: str) -> list[str]:
        """The distinct values of one field of its loads ("probe", "format"...), sorted."""
        return sorted({str(getattr(l, key) or "") for l in self.loads})

    @property
    def example(self) -> LoadRow:
        return self.loads[0]


def where(group: Group, ids: list[str], names: dict[str, str]) -> list[tuple[str, str]]:
    """The pairs a finding hits, as (producers, consumers) ranges: consecutive producers
    (in `ids` order) that fail in the same consumers share a line ("2.0.4 – 2.15.1", ">= 2.16.2")."""
    by: dict[str, set[str]] = defaultdict(set)
    for producer, consumer in group.pairs:
        by[producer].add(consumer)
    lines: list[tuple[list[str], str]] = []
    for producer in [p for p in ids if p in by]:
        consumers = runs(ids, by[producer], names)
        if lines and lines[-1][1] == consumers and ids.index(lines[-1][0][-1]) == ids.index(producer) - 1:
            lines[-1][0].append(producer)
        else:
            lines.append(([producer], consumers))
    return [(runs(ids, set(ps), names), consumers) for ps, consumers in lines]


def signature(load: LoadRow, found: Devices) -> Signature | None:
    """The finding a load belongs to; None for a load that worked or did not apply."""
    outcome = found.outcome(load)
    if outcome == DIFFERS:
        return Signature(DIFFERS, "outputs-differ", "", (), f"outputs differ: {load.probe}")
    if outcome not in (FAILS, DEVICE, HARNESS):
        return None
    need = found.needs.get(load.probe)
    if outcome == DEVICE and need and need not in found.has.get(load.consumer, ()):
        return Signature(DEVICE, "device", "", (load.probe,), f"{load.probe} needs a {need}")
    names = load.names
    message = "" if names else _normal(first_line(load.error, 400))[:120]
    category = "harness-error" if outcome == HARNESS else load.category or load.status.value
    return Signature(outcome, category, load.error_type or "", names, message)


def _normal(line: str) -> str:
    """An error line without what differs between pairs of one finding: paths, addresses, long numbers."""
    return _NUMBER.sub("N", _ADDRESS.sub("0x…", _PATHS.sub("<path>", redact_text(line))))


def groups(results: ResultsDocument, found: Devices | None = None) -> list[Group]:
    """Every load that did not work, by signature: version findings first, then device
    findings, then harness errors; most loads first within each."""
    devs = devices(results) if found is None else found
    by: dict[Signature, Group] = {}
    for load in results.loads:
        key = signature(load, devs)
        if key is not None:
            by.setdefault(key, Group(key)).loads.append(load)
    return sorted(by.values(), key=lambda g: (_RANK[g.kind] > 1, -len(g.loads), g.signature))


def export_problem(artifact: ExportRow) -> str:
    """An export that failed, in few words: "crash (SIGSEGV)", "error NotEncodableError: No encoder ..."."""
    status = artifact.status.value
    reason = first_line(artifact.reason, 200)
    died = _EXIT.search(reason)
    if artifact.status is ArtifactStatus.CRASH and died:
        try:
            return f"crash ({signal.Signals(int(died.group(1))).name})"
        except ValueError:
            return f"crash (signal {died.group(1)})"
    what = ": ".join(x for x in (artifact.error_type or "", reason.rstrip(".")) if x and x != status)
    return f"{status} {what}".strip()


def exports_by_cell(results: ResultsDocument) -> dict[str, str]:
    """cell -> its failed exports, by format and problem ("tflite_int8: lstm, gru: crash (SIGSEGV)")."""
    by: dict[str, dict[tuple[str, str], list[str]]] = {}
    for artifact in results.artifacts:
        if artifact.failed:
            key = (artifact.format, export_problem(artifact))
            by.setdefault(artifact.producer, {}).setdefault(key, []).append(artifact.probe)
    return {cell: "; ".join(f"{fmt}: {', '.join(probes)}: {problem}" for (fmt, problem), probes in found.items())
            for cell, found in by.items()}


@dataclass(frozen=True)
class SummaryRow:
    """Producers that behave alike, and where their models load."""

    producers: str  # ranges of producers
    ok: str  # ranges of consumers where every chosen probe loads and matches
    differs: str
    fails: str
    na: str
    device: str  # ranges of consumers where a probe needs a device they lack
    reasons: tuple[str, ...]  # what fails, by finding title
    notes: tuple[str, ...] = ()  # exports that failed, harness errors


@dataclass(frozen=True)
class ConsumerRow:
    """Consumers that load the same producers' models."""

    consumers: str  # ranges of consumers
    producers: str  # ranges of the producers whose models load there
    newest: str  # the newest of those ("" for none)


@dataclass(frozen=True)
class FormatSummary:
    format: str
    loader: str | None
    rows: list[SummaryRow]
    statements: list[str]  # "from >= 2.10 fails in <= 2.9: DisableCopyOnRead (… pairs)"
    consumers: list[ConsumerRow] = field(default_factory=list)


def summaries(results: ResultsDocument, found: list[Grid] | None = None,
              grouped: list[Group] | None = None) -> list[FormatSummary]:
    """One summary per grid (`found`: grids(results), `grouped`: groups(results), when the caller has them)."""
    names = labels(results)
    by_grid: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for group in groups(results) if grouped is None else grouped:
        for fmt, loader in {(l.format, l.loader or "") for l in group.loads}:
            by_grid[(fmt, loader)].append(group)
    return [FormatSummary(g.format, g.loader, _rows(g, by_grid.get((g.format, g.loader or ""), []), names),
                          _statements(g, by_grid.get((g.format, g.loader or ""), []), names),
                          _consumer_rows(g, names))
            for g in (grids(results) if found is None else found)]


def _rows(grid: Grid, found: list[Group], names: dict[str, str]) -> list[SummaryRow]:
    titles = {id(l): title for g in found for title in [g.title] for l in g.loads}
    rows: list[tuple[list[str], tuple[str, str, str, str, str, tuple[str, ...], tuple[str, ...]]]] = []
    for producer in grid.producers:
        by: dict[str, set[str]] = defaultdict(set)
        for consumer in grid.consumers:
            square = grid.square(producer, consumer)
            by["ok" if square.loads else square.verdict].add(consumer)
            if DEVICE in square.every:
                by[DEVICE].add(consumer)
        ok, differs, fails, na, device = (runs(grid.consumers, by[v], names) for v in ("ok", DIFFERS, FAILS, NA, DEVICE))
        problems = [l for c in sorted(by[FAILS] | by[DIFFERS] | by[DEVICE]) for l in grid.problems.get((producer, c), [])]
        reasons = tuple(sorted({titles[id(l)] for l in problems if id(l) in titles}))
        key = (ok, differs, fails, na, device, reasons, _notes(grid, producer))
        if rows and rows[-1][1] == key:
            rows[-1][0].append(producer)
        else:
            rows.append(([producer], key))
    # ranges over every cell, not only this format's writers: "<= 2.15" must not take in a 2.16 that wrote none
    return [SummaryRow(runs(grid.consumers, set(ps), names), *key) for ps, key in rows]


def _notes(grid: Grid, producer: str) -> tuple[str, ...]:
    failed: dict[str, list[str]] = defaultdict(list)
    for artifact in grid.exports.get(producer, []):
        failed[export_problem(artifact)].append(artifact.probe)
    return tuple(f"export failed: {', '.join(sorted(probes))}: {problem}" for problem, probes in sorted(failed.items()))


def _consumer_rows(grid: Grid, names: dict[str, str]) -> list[ConsumerRow]:
    rows: list[tuple[list[str], tuple[str, str]]] = []
    for consumer in grid.readers:
        loaded = [p for p in grid.producers if grid.square(p, consumer).loads]
        key = (runs(grid.consumers, set(loaded), names), names[loaded[-1]] if loaded else "")
        if rows and rows[-1][1] == key:
            rows[-1][0].append(consumer)
        else:
            rows.append(([consumer], key))
    return [ConsumerRow(runs(grid.consumers, set(cs), names), *key) for cs, key in rows]


def _statements(grid: Grid, found: list[Group], names: dict[str, str]) -> list[str]:
    out = []
    for group in found:
        loads = [l for l in group.loads if l.format == grid.format and (l.loader or "") == (grid.loader or "")]
        pairs = {l.pair for l in loads}
        producers = runs(grid.consumers, {p for p, _ in pairs}, names).replace("all", "every version")
        consumers = runs(grid.consumers, {c for _, c in pairs}, names)
        verb = {DIFFERS: "differs", DEVICE: "is device-bound", HARNESS: "hits a harness error"}.get(group.kind, "fails")
        out.append(f"from {producers} {verb} in {consumers}: {group.title} "
                   f"({len(pairs)} pair{'s' if len(pairs) != 1 else ''})")
    return out
