"""What a run found, in few words: failures grouped by signature (the ops or
attrs a consumer lacks, or the error class and message), and a summary of each
format and loader in version ranges, the way caniuse writes support
("saved_model from >= 2.10 fails in <= 2.9: DisableCopyOnRead")."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sandbox.classify import FAILED
from sandbox.report.redact import text as redact_text
from sandbox.report.tables import DIFFERS, FAILS, NA, OK, Grid, Results, first_line, grids, labels, runs

Load = dict[str, Any]
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_NUMBER = re.compile(r"\b\d{3,}\b")
_PATHS = re.compile(r"(?:<\w+>|~)?(?<![\w.])/[^\s'\"(),;]+")


@dataclass(frozen=True, order=True)
class Signature:
    """What makes two failures the same finding, whatever pair or probe they hit."""

    kind: str  # FAILS or DIFFERS
    category: str  # the classified error class ("op-not-registered"), else the status
    error_type: str  # "NotFoundError"
    names: tuple[str, ...]  # the ops or Op.attrs the error names
    message: str = ""  # the error's first line, normalised, when it names nothing

    @property
    def title(self) -> str:
        if self.kind == DIFFERS:
            return self.message
        what = ", ".join(self.names) if self.names else self.message
        return f"{what} ({self.category}{', ' + self.error_type if self.error_type else ''})"


@dataclass
class Group:
    signature: Signature
    loads: list[Load] = field(default_factory=list)

    @property
    def pairs(self) -> set[tuple[str, str]]:
        return {(l["producer"], l["consumer"]) for l in self.loads}

    def values(self, key: str) -> list[str]:
        return sorted({str(l[key] or "") for l in self.loads})

    @property
    def example(self) -> Load:
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


def signature(load: Load) -> Signature:
    if load["status"] == "outputs-differ":
        return Signature(DIFFERS, "outputs-differ", "", (), f"outputs differ: {load['probe']}")
    names = tuple(load.get("names") or [])
    message = "" if names else _normal(first_line(load.get("error"), 400))[:120]
    return Signature(FAILS, load.get("category") or load["status"], load.get("error_type") or "", names, message)


def _normal(line: str) -> str:
    """An error line without what differs between pairs of one finding: paths, addresses, long numbers."""
    return _NUMBER.sub("N", _ADDRESS.sub("0x…", _PATHS.sub("<path>", redact_text(line))))


def problems(results: Results) -> list[Load]:
    return [l for l in results["loads"] if l["status"] in FAILED or l["status"] == "outputs-differ"]


def groups(results: Results) -> list[Group]:
    """Failures and differing outputs by signature, most loads first."""
    found: dict[Signature, Group] = {}
    for load in problems(results):
        key = signature(load)
        found.setdefault(key, Group(key)).loads.append(load)
    return sorted(found.values(), key=lambda g: (-len(g.loads), g.signature))


@dataclass(frozen=True)
class SummaryRow:
    """Producers that behave alike, and where their models load."""

    producers: str  # ranges of producers
    ok: str  # ranges of consumers where every probe loads and matches
    differs: str
    fails: str
    na: str
    reasons: tuple[str, ...]  # what fails, by signature title


@dataclass(frozen=True)
class FormatSummary:
    format: str
    loader: str
    rows: list[SummaryRow]
    statements: list[str]  # "from >= 2.10 fails in <= 2.9: DisableCopyOnRead (… pairs)"


def summaries(results: Results, found: list[Grid] | None = None,
              grouped: list[Group] | None = None) -> list[FormatSummary]:
    """One summary per grid (`found`: grids(results), `grouped`: groups(results), when the caller has them)."""
    names = labels(results)
    by_grid: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for group in groups(results) if grouped is None else grouped:
        for fmt, loader in {(l["format"], l["loader"] or "") for l in group.loads}:
            by_grid[(fmt, loader)].append(group)
    return [FormatSummary(g.format, g.loader, _rows(g, names),
                          _statements(g, by_grid.get((g.format, g.loader or ""), []), names))
            for g in (grids(results) if found is None else found)]


def _rows(grid: Grid, names: dict[str, str]) -> list[SummaryRow]:
    rows: list[tuple[list[str], tuple[str, str, str, str, tuple[str, ...]]]] = []
    for producer in grid.producers:
        by: dict[str, set[str]] = defaultdict(set)
        for consumer in grid.consumers:
            by[grid.cells[(producer, consumer)][0]].add(consumer)
        ok, differs, fails, na = (runs(grid.consumers, by[v], names) for v in (OK, DIFFERS, FAILS, NA))
        key = (ok, differs, fails, na, _reasons(grid, producer, by[FAILS] | by[DIFFERS]))
        if rows and rows[-1][1] == key:
            rows[-1][0].append(producer)
        else:
            rows.append(([producer], key))
    return [SummaryRow(runs(grid.producers, set(ps), names), *key) for ps, key in rows]


def _reasons(grid: Grid, producer: str, consumers: set[str]) -> tuple[str, ...]:
    found = {signature(l).title for c in sorted(consumers) for l in grid.problems.get((producer, c), [])}
    return tuple(sorted(found))


def _statements(grid: Grid, found: list[Group], names: dict[str, str]) -> list[str]:
    out = []
    for group in found:
        loads = [l for l in group.loads if l["format"] == grid.format and (l["loader"] or "") == (grid.loader or "")]
        pairs = {(l["producer"], l["consumer"]) for l in loads}
        producers = runs(grid.producers, {p for p, _ in pairs}, names).replace("all", "every version")
        consumers = runs(grid.consumers, {c for _, c in pairs}, names)
        verb = "differs" if group.signature.kind == DIFFERS else "fails"
        out.append(f"from {producers} {verb} in {consumers}: {group.signature.title} "
                   f"({len(pairs)} pair{'s' if len(pairs) != 1 else ''})")
    return out
