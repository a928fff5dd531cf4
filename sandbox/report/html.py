"""`index.html`: one self-contained page (inline CSS, JS and data; no network)
that answers "my model was saved with X; will it load in Y?".

First screen: the pair picker (saved with: version, format; loaded with:
version, loader) and its verdict, what breaks it and the exact error. Then the
summary of each format in version ranges, the failures grouped by signature,
the producer x consumer grids (every square opens its pair in the picker), the
ops and attrs that fail, and the cells. Loads that are ok or n/a are counted,
not listed: the picker's data (sandbox.report.pagedata) holds the failures.
Every view has a URL: filters and the chosen pair live in the fragment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from html import escape
from importlib import resources
from string import Template
from typing import Any

from sandbox.report import pagedata, tables
from sandbox.report.findings import FormatSummary, Group, groups, summaries, where
from sandbox.report.tables import (
    FORMAT_TEXT,
    LEGEND,
    LOADER_TEXT,
    NA,
    Grid,
    Results,
    cell_environment,
    grids,
    healthy,
    labels,
    op_table,
    status_verdict,
)

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
$css</style>
</head>
<body>
$body
<script type="application/json" id="data">$data</script>
<script>
$js</script>
</body>
</html>
""")
# The text of a grid square, by verdict (a partial failure shows k/n instead).
_SQUARE = {"ok": "ok", "differs": "≠", "fails": "✗", NA: "n/a", "none": ""}
_STATUS_CHOICES = (("", "every square"), ("problems", "only fails or differs"))

Names = dict[str, str]


def render(results: Results) -> str:
    names = labels(results)
    found, grouped = grids(results), groups(results)
    body = [_header(results), _controls(results), "<main>", _picker(results, names),
            _summary(summaries(results, found, grouped)), _failures(results, grouped, names), _grids(found, names),
            _ops(results, names), _cells(results, names), "</main>", _footer(results)]
    return _PAGE.substitute(title=escape(f"TensorFlow compatibility: {results['name']}"),
                            css=_asset("report.css"), js=_asset("report.js"), body="\n".join(body),
                            data=pagedata.dumps(pagedata.build(results, found)))


def _asset(name: str) -> str:
    return resources.files("sandbox.report").joinpath("assets", name).read_text(encoding="utf-8")


def _vclass(verdict: str) -> str:
    return "v-" + verdict.replace("/", "")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _header(results: Results) -> str:
    counts = Counter(status_verdict(load["status"]) for load in results["loads"])
    ids = healthy(results)
    span = f" ({_e(tables.span(results))})" if ids else ""
    stats = "".join(f'<span class="stat {_vclass(v)}">{counts.get(v, 0)} {_e(v)}</span>'
                    for v in ("ok", "differs", "fails", NA))
    redacted = " Host names and local paths are redacted." if results.get("redacted") else ""
    return (f'<header><h1>TensorFlow compatibility: {_e(results["name"])}</h1>'
            f'<p>{len(ids)} of {len(results["cells"])} cells ran{span}; each exported '
            f'{len(results.get("probes") or [])} probe models in every format it can write, and every cell loaded '
            f'every cell\'s models with every loader it has: {len(ids) ** 2} producer → consumer pairs, '
            f'{len(results["loads"])} loads. Generated {_e(results["created"])} by sandbox '
            f'{_e(results["sandbox_version"])} from <code>{_e(results["matrix"])}</code>.{redacted}</p>'
            f'{_related(results)}<div class="summary" aria-label="loads by verdict">{stats}</div></header>')


def _related(results: Results) -> str:
    """Links to the other maps (reports beside this one): the runtimes beside TF."""
    links = ", ".join(f'<a href="../{_e(name)}/index.html">{_e(name)}</a>' for name in results.get("related") or [])
    return f'<p class="related">Other maps: {links}</p>' if links else ""


def _options(choices: Iterable[tuple[str, str]]) -> str:
    return "".join(f'<option value="{_e(v)}">{_e(label)}</option>' for v, label in choices)


def _controls(results: Results) -> str:
    formats = [("", "all formats")] + [(f, f) for f in _present(results, "format")]
    return ('<nav class="controls" aria-label="filters">'
            '<a href="#pick">Pair</a><a href="#summary">Summary</a><a href="#failures">Failures</a>'
            '<a href="#grids">Grids</a><a href="#cells">Cells</a>'
            f'<label>Format <select id="f-format">{_options(formats)}</select></label>'
            f'<label>Squares <select id="f-status">{_options(_STATUS_CHOICES)}</select></label>'
            '<label>Find <input id="f-text" type="search" placeholder="op, error, version…"></label>'
            '<button id="f-reset" type="button">Reset</button><span id="shown" aria-live="polite"></span></nav>')


def _present(results: Results, key: str) -> list[str]:
    declared = list(results.get(f"{key}s") or [])
    seen = {load[key] for load in results["loads"]}
    return [x for x in declared if x in seen] + sorted(seen - set(declared))


def _picker(results: Results, names: Names) -> str:
    ids = healthy(results)
    cells = [(c, names[c]) for c in ids]
    formats = [(f, f) for f in _present(results, "format")]
    cell = {c["id"]: c for c in results["cells"]}
    who = "TensorFlow" if all(tables.runtime(cell[c]).get("name") == "tensorflow" for c in ids) else "TF or runtime"
    return ('<section id="pick"><h2>Will my model load there?</h2>'
            '<form id="picker" class="picker" onsubmit="return false">'
            '<fieldset><legend>Saved with</legend>'
            f'<label>{who} <select id="p-from">{_options(reversed(cells))}</select></label>'
            f'<label>format <select id="p-format">{_options(formats)}</select></label></fieldset>'
            '<fieldset><legend>Loaded with</legend>'
            f'<label>{who} <select id="p-to">{_options(cells)}</select></label>'
            '<label>loader <select id="p-loader"></select></label></fieldset></form>'
            '<div id="answer" class="answer" aria-live="polite" tabindex="-1">'
            '<p class="note">Pick a pair (this needs JavaScript; the grids below hold the same verdicts).</p>'
            '</div></section>')


def _summary(found: list[FormatSummary]) -> str:
    legend = "".join(f'<li><span class="swatch {_vclass(v)}">{_e(v)}</span>{_e(text)}</li>'
                     for v, text in LEGEND.items())
    boxes = "".join(_format_summary(s) for s in found)
    return ('<section id="summary"><h2>Each format, in version ranges</h2>'
            '<p class="note">Per format and loader: producers (the TF that saved the model) that behave alike, '
            'and the consumers (the TF that loads it) where their models load, differ or fail, and why. Then each '
            'failure as a range statement.</p>'
            f'<ul class="legend" aria-label="legend">{legend}</ul>{boxes or "<p>No cell loaded anything.</p>"}'
            '</section>')


def _format_summary(summary: FormatSummary) -> str:
    rows = "".join(
        f'<tr><th scope="row">{_e(r.producers)}</th><td class="t-ok">{_e(r.ok)}</td>'
        f'<td class="t-differs">{_e(r.differs)}</td><td class="t-fails">{_e(r.fails)}</td><td>{_e(r.na)}</td>'
        f'<td>{"<br>".join(_e(x) for x in r.reasons)}</td></tr>' for r in summary.rows)
    statements = "".join(f"<li>{_e(s)}</li>" for s in summary.statements)
    what = f'{FORMAT_TEXT.get(summary.format, "")}; {LOADER_TEXT.get(summary.loader, "")}'.strip("; ")
    return (f'<div class="fsum" data-format="{_e(summary.format)}"><h3><code>{_e(summary.format)}</code> loaded with '
            f'<code>{_e(summary.loader)}</code> <small>{_e(what)}</small></h3>'
            '<div class="scroll"><table class="data ranges"><thead><tr><th>saved with</th><th>loads in</th>'
            '<th>differs in</th><th>fails in</th><th>n/a in</th><th>what fails</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></div>'
            + (f'<ul class="statements">{statements}</ul>' if statements else "") + "</div>")


def _failures(results: Results, found: list[Group], names: Names) -> str:
    if not found:
        return '<section id="failures"><h2>Failures, grouped</h2><p>None: every load worked.</p></section>'
    ids = healthy(results)
    rows = "".join(_group_row(i, g, ids, names) for i, g in enumerate(found))
    return ('<section id="failures"><h2>Failures, grouped by signature</h2>'
            '<p class="note">One row per finding: the ops or attrs the consumer lacks (or the error class and '
            'message), how many loads and pairs it hits, where, and one exact error. Every load is in '
            'results.json.</p><div class="scroll"><table class="data groups"><thead><tr><th>finding</th>'
            '<th>loads</th><th>pairs</th><th>formats / loaders</th><th>probes</th><th>pairs and error</th>'
            f'</tr></thead><tbody>{rows}</tbody></table></div></section>')


def _group_row(i: int, group: Group, ids: list[str], names: Names) -> str:
    hits = "".join(f"<li>{_e(producers)} → {_e(consumers)}</li>" for producers, consumers in where(group, ids, names))
    example = group.example
    if group.signature.kind == "differs":
        error = f"max abs err {example.get('max_abs_err')}, max rel err {example.get('max_rel_err')}"
    else:
        error = f"{example.get('error_type') or ''}: {example.get('error') or ''}".lstrip(": ")
    fl = sorted({f"{l['format']} / {l['loader']}" for l in group.loads})
    kind = "fails" if group.signature.kind == "fails" else "differs"
    return (f'<tr class="group" id="g{i}" data-formats="{_e(" ".join(group.values("format")))}">'
            f'<th scope="row"><span class="badge {_vclass(kind)}">{_e(kind)}</span> {_e(group.signature.title)}</th>'
            f'<td>{len(group.loads)}</td><td>{len(group.pairs)}</td><td>{"<br>".join(_e(x) for x in fl)}</td>'
            f'<td>{_e(", ".join(group.values("probe")))}</td>'
            f'<td><details><summary>saved with → loaded with</summary><ul class="pairs">{hits}</ul>'
            f'<p class="muted">{_e(example["producer"])} → {_e(example["consumer"])}, {_e(example["probe"])}, '
            f'{_e(example["format"])} / {_e(example["loader"])}:</p><pre>{_e(error)}</pre></details></td></tr>')


def _grids(found: list[Grid], names: Names) -> str:
    if not found:
        return '<section id="grids"><h2>Grids</h2><p class="note">No cell loaded anything.</p></section>'
    boxes = "".join(_grid(i, g, names) for i, g in enumerate(found))
    return ('<section id="grids"><h2>Grids</h2><p class="note">Rows: the TF that saved the model; columns: the TF '
            'that loaded it. A square is every probe of that format and loader; k/n: k of n probes fail. Select a '
            f'square (click, or Tab and Enter) to see it in the picker above.</p><div class="grids">{boxes}</div>'
            '</section>')


def _head(cell: str, names: Names) -> str:
    tf, _, rest = names[cell].partition(" ")
    return f'<span class="cell-label" title="{_e(cell)}">{_e(tf)}<small>{_e(rest)}</small></span>'


def _grid(i: int, grid: Grid, names: Names) -> str:
    head = "".join(f'<th scope="col">{_head(c, names)}</th>' for c in grid.consumers)
    rows = []
    for producer in grid.producers:
        tds = "".join(_square(grid, producer, consumer) for consumer in grid.consumers)
        rows.append(f'<tr><th scope="row">{_head(producer, names)}</th>{tds}</tr>')
    return (f'<div class="grid-box" id="grid-{i}" data-grid="{i}" data-format="{_e(grid.format)}" '
            f'data-loader="{_e(grid.loader)}"><h3><code>{_e(grid.format)}</code> loaded with '
            f'<code>{_e(grid.loader)}</code></h3><div class="scroll"><table class="grid"><thead><tr>'
            f'<th class="corner">saved ↓ loaded →</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div></div>')


def _square(grid: Grid, producer: str, consumer: str) -> str:
    verdict, text = grid.cells[(producer, consumer)]
    shown = text.rsplit(" ", 1)[-1] if verdict == "fails" and "/" in text else _SQUARE[verdict]
    if verdict == "none":
        return '<td class="v v-none"></td>'
    return f'<td class="v {_vclass(verdict)}" tabindex="0">{_e(shown)}</td>'


def _ops(results: Results, names: Names) -> str:
    pairs, rows = op_table(results)
    head = '<section id="ops"><h2>Ops and attrs that fail</h2>'
    if not rows:
        return head + '<p class="note">No op or attr was named by any failure.</p></section>'
    note = ('<p class="note">Each op (or <code>Op.attr</code>) a consumer lacks: in how many pairs it was '
            '<b>observed</b> in the consumer\'s error, <b>predicted</b> by the static check of the artifact against '
            'the consumer\'s op registry, and <b>predicted, yet loaded</b> (the loader dropped or ignored what the '
            'registry lacks). The pairs are in the grouped failures above.</p>')
    body = []
    for r in rows:
        marks = Counter(r.marks.values())
        observed, predicted = marks["observed"] + marks["both"], marks["predicted"] + marks["both"]
        body.append(f'<tr class="op" data-formats="{_e(" ".join(r.formats))}"><th scope="row"><code>{_e(r.name)}'
                    f'</code></th><td>{_e(", ".join(r.formats))}</td><td>{observed}</td><td>{predicted}</td>'
                    f'<td>{marks["predicted, yet loaded"]}</td></tr>')
    return (f'{head}{note}<div class="scroll"><table class="data ops"><thead><tr><th>op / attr</th><th>formats</th>'
            f'<th>observed</th><th>predicted</th><th>predicted, yet loaded</th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div></section>')


def _environment(cell: dict[str, Any] | None) -> str:
    if not cell:
        return '<span class="muted">unknown cell</span>'
    parts = [f"{name} {version}" for name, version in cell_environment(cell)]
    parts.append(f"{cell['backend']}/{cell['image']}")
    return _e(" · ".join(parts))


def _cells(results: Results, names: Names) -> str:
    rows = []
    for cell in results["cells"]:
        verdict = "ok" if cell["status"] == "ok" else ("n/a" if cell["status"] == "skipped" else "fails")
        seconds = " ".join(f"{k} {v:.0f}s" for k, v in (cell.get("seconds") or {}).items())
        rows.append(f'<tr><th scope="row">{_e(names.get(cell["id"], cell["id"]))}<br><code>{_e(cell["id"])}</code></th>'
                    f'<td><span class="badge {_vclass(verdict)}">{_e(cell["status"])}</span></td>'
                    f'<td>{_environment(cell)}</td><td>{_e(cell["requirement"] or "")}</td>'
                    f'<td>{_e((cell["resolved_as_of"] or "")[:10])}</td><td>{_e(tables.measured(cell))}</td>'
                    f'<td>{_e(seconds)}</td><td>{_e(cell["reason"] or "")}</td></tr>')
    heads = "".join(f"<th>{h}</th>" for h in ("cell", "status", "environment", "installed", "deps as of", "measured",
                                              "time", "note"))
    return ('<section id="cells"><h2>Cells</h2><div class="scroll">'
            f'<table class="data cells"><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody>'
            '</table></div></section>')


def _footer(results: Results) -> str:
    return (f'<footer>schema_version {_e(results.get("schema_version"))} · probes '
            f'{_e(", ".join(results.get("probes") or []))} · every load, with its whole error, is in results.json'
            '</footer>')
