"""`index.md`: the report for a repository page (tabulate), readable on GitHub
at any size of map: the summary, each format in version ranges, the failures
grouped by signature, compact grids and the cells. Single loads and whole
errors stay in results.json."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tabulate import tabulate

from sandbox.report import tables
from sandbox.report.findings import FormatSummary, Group, groups, summaries, where
from sandbox.report.tables import (
    FORMAT_TEXT,
    LOADER_TEXT,
    NA,
    Grid,
    Results,
    first_line,
    grids,
    healthy,
    labels,
    op_table,
    status_verdict,
)

_SQUARE = {"ok": "✅", "differs": "⚠️", "fails": "❌", NA: "n/a", "none": ""}


def render(results: Results) -> str:
    names = labels(results)
    found, grouped = grids(results), groups(results)
    parts = _header(results) + _formats(results) + _summary(summaries(results, found, grouped)) + \
        _failures(results, grouped, names) + _grids(found, names) + _ops(results) + _cells(results, names)
    return "\n".join(parts).rstrip() + "\n"


def _md(text: object) -> str:
    """A table cell: no pipes, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _header(results: Results) -> list[str]:
    ids = healthy(results)
    span = f" ({tables.span(results)})" if ids else ""
    counts = Counter(status_verdict(l["status"]) for l in results["loads"])
    tally = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("ok", "differs", "fails", NA))
    redacted = " Host names and local paths are redacted." if results.get("redacted") else ""
    return [f"# TensorFlow compatibility: {results['name']}", "",
            f"{len(ids)} of {len(results['cells'])} cells ran{span}. Each exported "
            f"{len(results.get('probes') or [])} probe models in every format it can write; every cell loaded every "
            f"cell's models with every loader it has: {len(ids) ** 2} producer → consumer pairs, "
            f"{len(results['loads'])} loads ({tally}). Generated {results['created']} by sandbox "
            f"{results['sandbox_version']} from `{results['matrix']}`.{redacted} Every load, with its whole error, "
            "is in [results.json](results.json); the page with the pair picker is index.html.", ""] + _related(results)


def _related(results: Results) -> list[str]:
    names = results.get("related") or []
    return [f"Other maps: {', '.join(f'[{n}](../{n}/index.md)' for n in names)}", ""] if names else []


def _formats(results: Results) -> list[str]:
    present = {(l["format"], l["loader"]) for l in results["loads"]}
    formats = [f for f in results.get("formats") or [] if any(f == p[0] for p in present)]
    loaders = sorted({p[1] for p in present if p[1]})
    rows = [[f"`{f}`", FORMAT_TEXT.get(f, "")] for f in formats] + [[f"`{l}`", LOADER_TEXT.get(l, "")] for l in loaders]
    return ["## Formats and loaders", "", tabulate(rows, ["name", "what it is"], tablefmt="github"), ""]


def _summary(found: list[FormatSummary]) -> list[str]:
    out = ["## Each format, in version ranges", "",
           "Per format and loader: producers (the TF that saved the model) that behave alike, and the consumers "
           "(the TF that loads it) where their models load, differ or fail, and why.", ""]
    for summary in found:
        rows = [[_md(r.producers), _md(r.ok), _md(r.differs), _md(r.fails), _md(r.na), _md("; ".join(r.reasons))]
                for r in summary.rows]
        out += [f"### `{summary.format}` loaded with `{summary.loader}`", "",
                tabulate(rows, ["saved with", "loads in", "differs in", "fails in", "n/a in", "what fails"],
                         tablefmt="github"), ""]
        out += [f"- {_md(s)}" for s in summary.statements] + ([""] if summary.statements else [])
    return out


def _failures(results: Results, found: list[Group], names: dict[str, str]) -> list[str]:
    out = ["## Failures, grouped by signature", ""]
    if not found:
        return out + ["None: every load worked.", ""]
    ids = healthy(results)
    rows = [[_md(g.signature.title), len(g.loads), len(g.pairs),
             _md(", ".join(sorted({f"{l['format']}/{l['loader']}" for l in g.loads}))),
             _md(", ".join(g.values("probe"))), _md(_where(g, ids, names)), _md(_error(g.example))] for g in found]
    headers = ["finding", "loads", "pairs", "formats/loaders", "probes", "saved with → loaded with", "one error"]
    return out + [tabulate(rows, headers, tablefmt="github"), ""]


def _where(group: Group, ids: list[str], names: dict[str, str]) -> str:
    return "; ".join(f"{producers} → {consumers}" for producers, consumers in where(group, ids, names))


def _error(load: dict[str, Any]) -> str:
    if load["status"] == "outputs-differ":
        return f"max abs err {load.get('max_abs_err')}, max rel err {load.get('max_rel_err')}"
    return first_line(f"{load.get('error_type') or ''}: {load.get('error') or ''}".lstrip(": "), 200)


def _grids(found: list[Grid], names: dict[str, str]) -> list[str]:
    out = ["## Grids", "", "Rows: the TF that saved the model; columns: the TF that loaded it. ✅ every probe loads "
           "and gives the producer's outputs; ⚠️ outputs differ; ❌ k/n: k of n probes fail (❌ alone: all); "
           "n/a: no such loader in that TF; empty: nothing to load.", ""]
    for grid in found:
        rows = [[names[p], *(_square(grid.cells[(p, c)]) for c in grid.consumers)] for p in grid.producers]
        out += [f"### `{grid.format}` loaded with `{grid.loader}`", "",
                tabulate(rows, ["saved \\ loaded", *(names[c] for c in grid.consumers)], tablefmt="github"), ""]
    return out


def _square(cell: tuple[str, str]) -> str:
    verdict, text = cell
    if verdict == "fails" and "/" in text:
        return "❌ " + text.rsplit(" ", 1)[-1]
    return _SQUARE[verdict]


def _ops(results: Results) -> list[str]:
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
        table.append([f"`{r.name}`", ", ".join(r.formats), marks["observed"] + marks["both"],
                      marks["predicted"] + marks["both"], marks["predicted, yet loaded"]])
    return out + [tabulate(table, ["op / attr", "formats", "observed", "predicted", "predicted, yet loaded"],
                           tablefmt="github"), ""]


def _cells(results: Results, names: dict[str, str]) -> list[str]:
    rows = [[names.get(c["id"], c["id"]), c["id"], c["status"], c["requirement"] or "",
             (c["resolved_as_of"] or "")[:10], tables.measured(c), _seconds(c.get("seconds") or {}), _md(c["reason"] or "")]
            for c in results["cells"]]
    table = tabulate(rows, ["label", "cell", "status", "installed", "deps as of", "measured", "time", "note"],
                     tablefmt="github")
    return ["## Cells", "", table, ""]


def _seconds(seconds: dict[str, float]) -> str:
    return " ".join(f"{k[0]}{v:.0f}s" for k, v in seconds.items())
