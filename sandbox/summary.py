"""The closing summary of a run, computed from its results document alone:
cells by status, loads by verdict, and the failing producer -> consumer pairs
of each format with the ops and attrs their errors name. Verdicts are the
report's (sandbox.report.verdict): a load that needs a device its consumer
lacks is counted apart, not as a failing pair. Pure: sandbox.display renders it."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sandbox.records import ArtifactStatus, CellStatus
from sandbox.report.document import ExportRow, LoadRow, ResultsDocument, WitnessOutcome
from sandbox.report.verdict import DEVICE, DIFFERS, FAILS, HARNESS, NA, OK, Devices, devices

_CELL_ID = re.compile(r"^tf(?P<tf>[^-]+)-py(?P<py>[^-]+)-(?P<image>[a-z]+)(?P<extra>\+.*)?$")
# a runtime cell: litert1.2.0-py3.12-cpu, keras3.5.0-jax0.4.31-py3.12-cpu, tflite-runtime2.14.0-py3.11-cpu
_RUNTIME_ID = re.compile(r"^(?P<head>[a-z][a-z-]*\d[^-]*(?:-[a-z]+\d[^-]*)?)-py[^-]+-[a-z]+(?:\+.*)?$")


@dataclass(frozen=True)
class PairFailures:
    """One producer -> consumer pair in one format: failed of applicable loads."""

    producer: str
    consumer: str
    failed: int
    applicable: int
    names: tuple[str, ...]  # ops and Op.attrs named in the errors


@dataclass(frozen=True)
class FormatFailures:
    format: str
    pairs: tuple[PairFailures, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return _by_count(Counter(n for p in self.pairs for n in p.names))


@dataclass(frozen=True)
class Summary:
    cells: tuple[tuple[str, int], ...]  # (status, n) in order of first appearance
    problems: tuple[tuple[str, str, str], ...]  # (cell, status, reason) of cells not ok
    ok: int
    differ: int
    failed: int
    not_applicable: int
    formats: tuple[FormatFailures, ...]  # formats with a failing pair, in the matrix's order
    labels: dict[str, str]  # cell id -> the shortest name that tells it from the others
    device: int = 0  # loads that need a device their consumer lacks (not failures of a pair)
    device_probes: tuple[str, ...] = ()  # the probes that need a device, with it: "cudnn_lstm (GPU)"
    harness: tuple[str, ...] = ()  # our own failures (cells, exports, loads): what and where; never findings
    witnesses: tuple[tuple[str, int], ...] = ()  # (outcome, n) of the findings' witnesses
    refuted: tuple[str, ...] = ()  # findings their witness did not reproduce: bugs of ours
    # (cell, status, (load status, n) of its loads as the consumer), in the document's order
    rows: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...] = ()

    @property
    def loads(self) -> int:
        return self.ok + self.differ + self.failed + self.device

    def pair(self, failing: PairFailures) -> str:
        return f"{self.labels.get(failing.producer, failing.producer)}->{self.labels.get(failing.consumer, failing.consumer)}"


def summarize(results: ResultsDocument) -> Summary:
    cells = results.cells
    statuses = Counter(c.status.value for c in cells)
    loads = results.loads
    found = devices(results)
    verdicts = Counter(found.outcome(l) for l in loads)
    names = [c.id for c in cells] + sorted({l.producer for l in loads} - {c.id for c in cells})
    per_consumer: dict[str, Counter[str]] = defaultdict(Counter)
    for load in loads:
        per_consumer[load.consumer][load.status.value] += 1
    return Summary(
        cells=tuple(statuses.items()),
        problems=tuple((c.id, c.status.value, c.reason or "") for c in cells if not c.ran),
        ok=verdicts[OK], differ=verdicts[DIFFERS], failed=sum(n for v, n in verdicts.items() if v not in _NOT_FAILED),
        not_applicable=verdicts[NA], formats=_failing(results, found), labels=short_labels(names),
        device=verdicts[DEVICE], device_probes=tuple(f"{p} ({d})" for p, d in sorted(found.needs.items())),
        harness=_harness(results), witnesses=_outcomes(results), refuted=_refuted(results),
        rows=tuple((c.id, c.status.value, tuple(sorted(per_consumer[c.id].items()))) for c in cells))


def to_json(found: Summary) -> dict[str, Any]:
    """The summary as JSON (kept with what a run published: sandbox.ledger)."""
    return asdict(found)


def from_json(data: dict[str, Any]) -> Summary:
    def pairs(items: list[list[Any]]) -> tuple[tuple[str, int], ...]:
        return tuple((str(k), int(n)) for k, n in items)

    formats = tuple(FormatFailures(f["format"], tuple(PairFailures(p["producer"], p["consumer"], p["failed"],
                                                                   p["applicable"], tuple(p["names"]))
                                                      for p in f["pairs"]))
                    for f in data["formats"])
    return Summary(pairs(data["cells"]), tuple((str(a), str(b), str(c)) for a, b, c in data["problems"]),
                   data["ok"], data["differ"], data["failed"], data["not_applicable"], formats, dict(data["labels"]),
                   int(data.get("device") or 0), tuple(data.get("device_probes") or ()), tuple(data.get("harness") or ()),
                   pairs(data.get("witnesses") or []), tuple(data.get("refuted") or ()),
                   tuple((str(c), str(s), pairs(n)) for c, s, n in data["rows"]))


def _outcomes(results: ResultsDocument) -> tuple[tuple[str, int], ...]:
    outcomes = Counter(w.outcome for w in results.witnesses or [])
    return tuple((o.value, outcomes[o]) for o in WitnessOutcome if outcomes[o])


def _refuted(results: ResultsDocument) -> tuple[str, ...]:
    return tuple(f"{w.finding}: {w.why or w.outcome.value}" for w in results.witnesses or [] if w.outcome.refutes)


_NOT_FAILED = (OK, DIFFERS, NA, DEVICE, HARNESS)  # a harness error is listed apart, never a failure


def _harness(results: ResultsDocument) -> tuple[str, ...]:
    """Every harness error of the document, in a line each: what failed and where."""
    found = [f"cell {c.id}: {c.reason or ''}" for c in results.cells if c.status is CellStatus.HARNESS_ERROR]
    found += [f"export {a.producer} {a.probe}/{a.format}: {_where(a, a.reason)}"
              for a in results.artifacts if a.status is ArtifactStatus.HARNESS_ERROR]
    found += [f"load {l.producer} -> {l.consumer} {l.probe}/{l.format}/{l.loader}: {_where(l, l.error)}"
              for l in results.loads if l.status.harness]
    return tuple(found)


def _where(record: ExportRow | LoadRow, text: str | None) -> str:
    line = str(text or "").strip().splitlines()
    return f"{record.error_type or 'error'}: {line[0][:120] if line else ''} (at {record.raised_in or '?'})"


def _failing(results: ResultsDocument, devs: Devices) -> tuple[FormatFailures, ...]:
    applicable: Counter[tuple[str, str, str]] = Counter()
    failed: Counter[tuple[str, str, str]] = Counter()
    named: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for load in results.loads:
        outcome = devs.outcome(load)
        if outcome in (NA, DEVICE, HARNESS):
            continue
        key = (load.format, load.producer, load.consumer)
        applicable[key] += 1
        if outcome == FAILS:
            failed[key] += 1
            named[key].update(load.names)
    order = {f: i for i, f in enumerate(results.formats)}
    found = []
    for fmt in sorted({k[0] for k in failed}, key=lambda f: (order.get(f, len(order)), f)):
        pairs = tuple(PairFailures(p, c, failed[(f, p, c)], applicable[(f, p, c)],
                                   _by_count(named[(f, p, c)]))
                      for (f, p, c) in failed if f == fmt)
        found.append(FormatFailures(fmt, pairs))
    return tuple(found)


def _by_count(counts: Counter[str]) -> tuple[str, ...]:
    """Most named first; ties by name (the same on every run)."""
    return tuple(sorted(counts, key=lambda n: (-counts[n], n)))


def short_labels(ids: list[str]) -> dict[str, str]:
    """tf2.18.1-py3.11-cpu+tf-keras -> "2.18+tf-keras" when that tells it from
    every other id: the TF minor version first, then more parts as needed; a
    runtime cell's id up to its Python (litert1.2.0-py3.11-cpu -> "litert1.2.0")."""
    parsed = {i: _CELL_ID.match(i) for i in ids}
    runtime = {i: _RUNTIME_ID.match(i) for i, m in parsed.items() if not m}
    if not all(runtime.values()):  # a producer that is no cell (a user's model): every name as it is
        return {i: i for i in ids}
    others = {i: m["head"] for i, m in runtime.items() if m}  # a runtime cell: keras3.5.0-jax0.4.31
    for parts in (("minor",), ("tf",), ("tf", "py"), ("tf", "py", "image")):
        labels = {**{i: _label(m, parts) for i, m in parsed.items() if m}, **others}
        if len(set(labels.values())) == len(ids):
            return labels
    return {i: i for i in ids}


def _label(match: re.Match[str], parts: tuple[str, ...]) -> str:
    tf = match["tf"]
    words = [".".join(tf.split(".")[:2]) if "minor" in parts else tf]
    words += [f"py{match['py']}"] * ("py" in parts) + [match["image"]] * ("image" in parts)
    return "-".join(words) + (match["extra"] or "")
