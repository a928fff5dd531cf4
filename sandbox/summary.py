"""The closing summary of a run, computed from its results document alone:
cells by status, loads by verdict, and the failing producer -> consumer pairs
of each format with the ops and attrs their errors name. Pure: sandbox.display
renders it."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sandbox.classify import FAILED

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

    @property
    def loads(self) -> int:
        return self.ok + self.differ + self.failed

    def pair(self, failing: PairFailures) -> str:
        return f"{self.labels.get(failing.producer, failing.producer)}->{self.labels.get(failing.consumer, failing.consumer)}"


def summarize(results: dict[str, Any]) -> Summary:
    cells = results["cells"]
    statuses = Counter(c["status"] for c in cells)
    loads = results["loads"]
    verdicts = Counter(_verdict(l["status"]) for l in loads)
    names = [c["id"] for c in cells] + sorted({l["producer"] for l in loads} - {c["id"] for c in cells})
    return Summary(
        cells=tuple(statuses.items()),
        problems=tuple((c["id"], c["status"], c.get("reason") or "") for c in cells if c["status"] != "ok"),
        ok=verdicts["ok"], differ=verdicts["differ"], failed=verdicts["fail"], not_applicable=verdicts["n/a"],
        formats=_failing(results), labels=short_labels(names))


def _verdict(status: str) -> str:
    if status in FAILED:
        return "fail"
    return {"ok": "ok", "outputs-differ": "differ", "not-applicable": "n/a"}.get(status, "fail")


def _failing(results: dict[str, Any]) -> tuple[FormatFailures, ...]:
    applicable: Counter[tuple[str, str, str]] = Counter()
    failed: Counter[tuple[str, str, str]] = Counter()
    named: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for load in results["loads"]:
        if load["status"] == "not-applicable":
            continue
        key = (load["format"], load["producer"], load["consumer"])
        applicable[key] += 1
        if _verdict(load["status"]) == "fail":
            failed[key] += 1
            named[key].update(load.get("names") or [])
    order = {f: i for i, f in enumerate(results.get("formats") or [])}
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
