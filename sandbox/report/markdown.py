"""`index.md`: the report for a repository page (tabulate), readable on GitHub
at any size of map: the summary, each format in version ranges, the failures
grouped by signature, compact grids and the cells. Single loads and whole
errors stay in results.json."""

from __future__ import annotations

import re
from collections import Counter

from tabulate import tabulate

from sandbox.records import LoadStatus
from sandbox.report import headline, tables, witnesses
from sandbox.report.document import LoadRow, ResultsDocument
from sandbox.report.findings import KINDS, FormatSummary, Group, exports_by_cell, groups, summaries, where
from sandbox.report.tables import (
    FORMAT_TEXT,
    LOADER_TEXT,
    Grid,
    first_line,
    grids,
    healthy,
    labels,
    op_table,
    probe_order,
)
from sandbox.report.verdict import (
    DEVICE,
    DIFFERS,
    ELSEWHERE,
    EXPORT,
    FAILS,
    HARNESS,
    LEGEND,
    NA,
    NONE,
    OK,
    WORDS,
    Devices,
    Square,
    devices,
)

_SQUARE = {OK: "✅", DIFFERS: "⚠️", FAILS: "❌", DEVICE: "dev", HARNESS: "bug", NA: "n/a", EXPORT: "exp", NONE: "",
           ELSEWHERE: "↗"}
_MARK = {DEVICE: "+dev", EXPORT: "+exp", HARNESS: "+bug"}


def render(results: ResultsDocument) -> str:
    names, devs = labels(results), devices(results)
    found, grouped = grids(results, devs), groups(results, devs)
    said = ["## What this report says", "", *headline.lines(results, devs, found, grouped), ""]
    parts = _header(results, devs) + said + _formats(results) + _summary(summaries(results, found, grouped)) + \
        _failures(results, grouped, names) + _grids(found, names, tables.has_references(results)) + _ops(results) + _cells(results, names)
    return "\n".join(parts).rstrip() + "\n"


def _md(text: object) -> str:
    """Text from the results in Markdown (a table cell too): no pipes, no line
    breaks, and no HTML (GitHub renders raw HTML in Markdown; a cell id from a
    bundle or a results.json may hold any)."""
    return _TAG.sub("&lt;", str(text)).replace("|", "\\|").replace("\n", " ")


_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # what opens a tag or a comment: "<=" stays as it reads


def _header(results: ResultsDocument, devs: Devices) -> list[str]:
    ids = healthy(results)
    span = f" ({_md(tables.span(results))})" if ids else ""
    counts = Counter(devs.outcome(l) for l in results.loads)
    tally = ", ".join(f"{counts.get(v, 0)} {WORDS[v]}" for v in (OK, DIFFERS, FAILS, DEVICE, HARNESS, NA)
                      if counts.get(v) or v in (OK, FAILS))
    failed = sum(a.failed for a in results.artifacts)
    redacted = " Host names and local paths are redacted." if results.redacted else ""
    bound = "; ".join(f"`{p}` needs a {d} ({devs.why[p]})" for p, d in sorted(devs.needs.items()))
    n_pairs, how = tables.pairs(results)
    return [f"# TensorFlow compatibility: {_md(results.name)}", "",
            f"Whether a model saved by one TensorFlow loads in another: {len(ids)} of {len(results.cells)} "
            f"cells ran{span}. Each exported {len(probe_order(results))} probe models in every format it can write "
            f"({len(results.artifacts)} exports, {failed} of them failed); {how} "
            f"with every loader it has: {n_pairs} producer → consumer pairs, {len(results.loads)} loads "
            f"({tally}). Generated {results.created} by sandbox {_md(results.sandbox_version)} from "
            f"{_md(results.matrix)}.{redacted} Every load, with its whole error, is in [results.json](results.json); "
            "the page with the pair picker is index.html.", "",
            "Verdicts are for the device-portable probes: a probe that needs a device a consumer lacks answers a "
            "device question, not a version question, and is shown apart" + (f" ({bound})." if bound else "."), ""] + _related(results)


def _related(results: ResultsDocument) -> list[str]:
    names = [_md(n) for n in results.related or []]
    return [f"Other maps: {', '.join(f'[{n}](../{n}/index.md)' for n in names)}", ""] if names else []


def _formats(results: ResultsDocument) -> list[str]:
    present = {(l.format, l.loader) for l in results.loads}
    formats = [f for f in results.formats if any(f == p[0] for p in present)]
    loaders = sorted({p[1] for p in present if p[1]})
    rows = [[f"`{_md(f)}`", FORMAT_TEXT.get(f, "")] for f in formats] + \
        [[f"`{_md(l)}`", LOADER_TEXT.get(l, "")] for l in loaders]
    return ["## Formats and loaders", "", tabulate(rows, ["name", "what it is"], tablefmt="github"), ""]


def _summary(found: list[FormatSummary]) -> list[str]:
    out = ["## Each format, in version ranges", "",
           "Per format and loader: producers (the TF that saved the model) that behave alike, and the consumers "
           "(the TF that loads it) where their models load, differ or fail, and why.", ""]
    for summary in found:
        rows = [[_md(r.producers), _md(r.ok), _md(r.differs), _md(r.fails), _md(r.na), _md(r.device),
                 _md("; ".join((*r.reasons, *r.notes)))] for r in summary.rows]
        consumers = [[_md(r.consumers), _md(r.producers or "none"), _md(r.newest or "none")] for r in summary.consumers]
        out += [f"### `{_md(summary.format)}` loaded with `{_md(summary.loader)}`", "",
                tabulate(rows, ["saved with", "loads in", "differs in", "fails in", "n/a in", "device-bound in",
                                "what fails"], tablefmt="github"), "",
                tabulate(consumers, ["loaded with", "loads models saved with", "newest"], tablefmt="github"), ""]
        out += [f"- {_md(s)}" for s in summary.statements] + ([""] if summary.statements else [])
    return out


_SECTIONS = (((FAILS, DIFFERS), "Version findings: TensorFlow or Keras refused the model, or computed something else"),
             ((DEVICE,), "Device findings: a probe that needs a device the consumer lacks (not a version finding)"),
             ((HARNESS,), "Harness errors: sandbox's own code failed (bugs of ours, not findings)"))


def _failures(results: ResultsDocument, found: list[Group], names: dict[str, str]) -> list[str]:
    out = ["## Failures, grouped by signature", ""]
    if not found:
        return out + ["None: every load worked.", ""]
    ids, witnessed = healthy(results), witnesses.index(results)
    headers = ["finding", "loads", "pairs", "formats/loaders", "probes", "saved with → loaded with", "one error",
               "witness"]
    out += ["Witness: one load of the finding re-run by a standalone script of plain TensorFlow / Keras calls in "
            "the consumer's environment (the scripts are on index.html and in results.json); a finding its witness "
            "does not reproduce is a bug of sandbox.", ""] if witnessed else []
    for kinds, title in _SECTIONS:
        rows = [[_md(f"{KINDS[g.kind]}: {g.title}"), len(g.loads), len(g.pairs),
                 _md(", ".join(sorted({f"{l.format}/{l.loader}" for l in g.loads}))),
                 _md(", ".join(g.values("probe"))), _md(_where(g, ids, names)), _md(_error(g.example)),
                 _md(witnesses.summary(witnesses.of(g, witnessed)))]
                for g in found if g.kind in kinds]
        out += [f"### {title}", "", tabulate(rows, headers, tablefmt="github"), ""] if rows else []
    return out


def _where(group: Group, ids: list[str], names: dict[str, str]) -> str:
    return "; ".join(f"{producers} → {consumers}" for producers, consumers in where(group, ids, names))


def _error(load: LoadRow) -> str:
    if load.status is LoadStatus.OUTPUTS_DIFFER:
        return f"max abs err {load.max_abs_err}, max rel err {load.max_rel_err}"
    return first_line(f"{load.error_type or ''}: {load.error or ''}".lstrip(": "), 200)


def _grids(found: list[Grid], names: dict[str, str], references: bool) -> list[str]:
    legend = "; ".join(f"{_SQUARE[v] or 'empty'}: {WORDS[v]}, {LEGEND[v]}" for v in _SQUARE
                       if v != ELSEWHERE or references)
    marks = ", ".join(f"{_MARK[m]}: {WORDS[m]}" for m in _MARK)
    out = ["## Grids", "", "Rows: the TF that saved the model; columns: the TF that loaded it; each square judged by "
           f"the device-portable probes. {legend}. Beside a verdict, shown apart: {marks}.", ""]
    for grid in found:
        rows = [[_md(names[p]), *(square_text(grid.square(p, c)) for c in grid.consumers)] for p in grid.producers]
        apart = _not_counted(grid)
        out += [f"### `{_md(grid.format)}` loaded with `{_md(grid.loader)}`", "",
                tabulate(rows, ["saved \\ loaded", *(_md(names[c]) for c in grid.consumers)], tablefmt="github"), ""]
        out += [f"Not counted where the consumer lacks the device they need (\"device-bound in\" above): {apart}.",
                ""] if apart else []
    return out


def _not_counted(grid: Grid) -> str:
    """The probes a grid leaves out somewhere, for a device the consumer lacks."""
    left = {i for chosen in grid.chosen.values() for i in range(len(grid.probes)) if i not in chosen}
    present = {i for letters in grid.letters.values() for i, x in enumerate(letters) if x != NONE}
    return ", ".join(f"`{grid.probes[i]}`" for i in sorted(left & present))


def square_text(square: Square) -> str:
    """The square's verdict and, of what is apart, what the chosen probes hit (a probe not counted for
    its device would mark every square: the grid says it once)."""
    verdict = square.verdict
    shown = f"❌ {square.text}" if verdict == FAILS and "/" in square.text else _SQUARE[verdict]
    marks = [m for m in square.marks if m != DEVICE or DEVICE in square.letters]
    return " ".join([shown, *(_MARK[m] for m in marks)]).strip()


def _ops(results: ResultsDocument) -> list[str]:
    _pairs, rows = op_table(results)
    out = ["## Ops and attrs that fail", ""]
    if not rows:
        return out + ["No op or attr was named by any failure.", ""]
    out += ["Each op (or `Op.attr`) a consumer lacks: in how many pairs it was **observed** in the consumer's "
            "error, **predicted** by the static check of the artifact against the consumer's op registry, and "
            "**predicted, yet loaded** (the loader dropped or ignored what the registry lacks).", ""]
    table = []
    for r in rows:
        marks = Counter(r.marks.values())
        table.append([f"`{_md(r.name)}`", _md(", ".join(r.formats)), marks["observed"] + marks["both"],
                      marks["predicted"] + marks["both"], marks["predicted, yet loaded"]])
    return out + [tabulate(table, ["op / attr", "formats", "observed", "predicted", "predicted, yet loaded"],
                           tablefmt="github"), ""]


def _cells(results: ResultsDocument, names: dict[str, str]) -> list[str]:
    exports = exports_by_cell(results)
    rows = [[_md(names.get(c.id, c.id)), _md(c.id), c.status.value, _md(c.requirement or ""),
             _md((c.resolved_as_of or "")[:10]), tables.measured(c), _seconds(c.seconds),
             _md(exports.get(c.id, "")), _md(c.reason or "")] for c in results.cells]
    table = tabulate(rows, ["label", "cell", "status", "installed", "deps as of", "measured", "time", "exports that failed",
                            "note"],
                     tablefmt="github")
    return ["## Cells", "", table, ""]


def _seconds(seconds: dict[str, float]) -> str:
    return " ".join(f"{k[0]}{v:.0f}s" for k, v in seconds.items())
