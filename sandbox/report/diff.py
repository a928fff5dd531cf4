"""What changed between two results documents, pair by pair.

A load is keyed by (producer, consumer, probe, format, loader). Errors are
compared by their signature (status, class, names, first line), so a path or
address deeper in a traceback does not count as a change, nor does TF naming
another of the same missing ops or attrs first."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tabulate import tabulate

from sandbox.records import LoadStatus
from sandbox.report.document import CellRow, LoadRow, ResultsDocument
from sandbox.report.redact import text as redact_text
from sandbox.report.tables import first_line, pair
from sandbox.versions import natural

NEWLY_FAILING, NEWLY_WORKING, ERROR_CHANGED = "newly failing", "newly working", "error changed"
HARNESS = "harness error"  # a load our own code failed on: measured nothing, a bug to fix before publishing
NEW_LOAD, REMOVED_LOAD, NEW_CELL, REMOVED_CELL = "new load", "removed load", "new cell", "removed cell"
CELL_BROKE, CELL_RECOVERED = "cell newly failing", "cell newly working"
GATING = (NEWLY_FAILING, CELL_BROKE, HARNESS)  # changes that make `sandbox diff` exit 1
_ORDER = (HARNESS, NEWLY_FAILING, CELL_BROKE, ERROR_CHANGED, NEWLY_WORKING, CELL_RECOVERED, NEW_CELL, REMOVED_CELL,
          NEW_LOAD, REMOVED_LOAD)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# Absolute paths in an error differ between runs (run folders, caches, hosts'
# temp dirs) without the error being any different; so do host names, and a
# redacted report (sandbox.report.redact) compares equal to the same run unredacted.
# A path may start at a redaction placeholder (`<tmp>/...`, `<run>/...`, `~/...`):
# a model's file lives in the results store now, a run folder before.
_PATH = re.compile(r"(?:<[a-z]+>|~)?(?<![\w.])/(?:[^\s'\"(),:;]+/)+[^\s'\"(),:;]*")

Key = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Change:
    kind: str
    where: str  # "producer → consumer" or a cell id
    probe: str
    format: str
    loader: str
    old: str
    new: str
    detail: str


def diff(old: ResultsDocument, new: ResultsDocument) -> list[Change]:
    changes = _cells(old, new)
    summarised = {c.where for c in changes}  # a cell's own row stands for all of its loads
    before, after = _loads(old), _loads(new)
    for key in sorted(before.keys() | after.keys(), key=lambda k: tuple(natural(part) for part in k)):
        if key[0] in summarised or key[1] in summarised:
            continue
        change = _load_change(key, before.get(key), after.get(key))
        if change:
            changes.append(change)
    return sorted(changes, key=lambda c: (_ORDER.index(c.kind), c.format, natural(c.where), c.probe, c.loader))


def gates(changes: list[Change]) -> bool:
    """True when something newly fails: the CI gate."""
    return any(c.kind in GATING for c in changes)


def _loads(results: ResultsDocument) -> dict[Key, LoadRow]:
    return {l.key: l for l in results.loads}


def _signature(load: LoadRow) -> tuple[str, str | None, tuple[str, ...], str]:
    names = set(load.names)
    static = load.static or {}
    # What the consumer lacks, including ops its loader is predicted to tolerate, so that
    # the finding does not move when the static model learns to tolerate one.
    predicted = set((static.get("missing_ops") or []) + (static.get("missing_attrs") or [])
                    + (static.get("tolerated_ops") or []))
    if names and names <= predicted:
        # TF names the first missing op or attr it meets, in no fixed order (TF 1.15 says
        # 'grad_x' or 'grad_y' of BatchMatMulV2 from run to run): the whole missing set is the finding.
        return load.status.value, load.category, tuple(sorted(predicted)), ""
    return (load.status.value, load.category, tuple(sorted(names)),
            _PATH.sub("<path>", _ADDRESS.sub("0x…", redact_text(first_line(load.error, 100_000))))[:300])


def _load_change(key: Key, old: LoadRow | None, new: LoadRow | None) -> Change | None:
    producer, consumer, probe, fmt, loader = key

    def make(kind: str, detail: str) -> Change:
        return Change(kind, pair(producer, consumer), probe, fmt, loader,
                      old.status.value if old else "—", new.status.value if new else "—", detail)

    if old is None or new is None:
        present = new or old
        assert present is not None
        return make(NEW_LOAD if new else REMOVED_LOAD, _detail(present))
    was, now = old.status.failed_or_differs, new.status.failed_or_differs
    if new.status.harness:
        return None if old.status.harness else make(HARNESS, _detail(new))
    if now and not was:
        return make(NEWLY_FAILING, _detail(new))
    if was and not now:
        return make(NEWLY_WORKING, f"was: {_detail(old)}")
    if was and _signature(old) != _signature(new):
        return make(ERROR_CHANGED, f"{_detail(new)}  (was: {_detail(old)})")
    return None


def _detail(load: LoadRow) -> str:
    if load.status is LoadStatus.OUTPUTS_DIFFER:
        return f"max abs err {load.max_abs_err}"
    if load.status.failed or load.status.harness:
        return first_line(load.error, 100) or load.status.value
    return load.reason or ""


def _cells(old: ResultsDocument, new: ResultsDocument) -> list[Change]:
    before, after = old.cell(), new.cell()
    out = []
    for cell_id in sorted(before.keys() | after.keys(), key=natural):
        was, now = before.get(cell_id), after.get(cell_id)
        if was is None or now is None:
            kind = NEW_CELL if was is None else REMOVED_CELL
        elif was.ran and not now.ran:
            kind = CELL_BROKE
        elif not was.ran and now.ran:
            kind = CELL_RECOVERED
        else:
            continue
        out.append(Change(kind, cell_id, "", "", "", _status(was), _status(now), _reason(now or was)))
    return out


def _status(cell: CellRow | None) -> str:
    return cell.status.value if cell else "—"


def _reason(cell: CellRow | None) -> str:
    return (cell.reason if cell else None) or ""


def render(changes: list[Change]) -> str:
    if not changes:
        return "no changes"
    rows = [[c.kind, c.where, c.probe, c.format, c.loader, c.old, c.new, c.detail] for c in changes]
    table = tabulate(rows, ["change", "pair / cell", "probe", "format", "loader", "old", "new", "detail"],
                     tablefmt="simple")
    counts = {kind: sum(c.kind == kind for c in changes) for kind in _ORDER}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    return f"{table}\n\n{summary}"
