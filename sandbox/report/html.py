"""`index.html`: one self-contained page (inline CSS, JS and data; no network)
that answers "my model was saved with X; will it load in Y?".

First screen: one sentence saying what the page is, the legend of every mark,
and the pair picker (saved with: version, format; loaded with: version,
loader; the probes the reader's model is like) with its verdict, which probes
fail and why, the exact error. It opens on a useful pair (tables.default_pair).
Then the summary of each format in version ranges, the failures grouped by
signature (version findings, device findings and harness errors apart), the
producer x consumer grids (every square opens its pair in the picker), the ops
and attrs that fail, and the cells with their failed exports. Loads are counted,
not listed: the picker's data (sandbox.report.pagedata) holds what did not work.
Every view has a URL: filters, probes and the chosen pair live in the fragment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from html import escape
from importlib import resources
from string import Template

from sandbox.records import CellStatus
from sandbox.report import pagedata, tables, witnesses
from sandbox.report.document import CellRow, ResultsDocument
from sandbox.report.findings import KINDS, FormatSummary, Group, exports_by_cell, groups, summaries, where
from sandbox.report.tables import (
    FORMAT_TEXT,
    LOADER_TEXT,
    Grid,
    Pair,
    cell_environment,
    default_pair,
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
    SLUGS,
    WORDS,
    Devices,
    Square,
    devices,
)

# Where a reader learns what made the page: the page lives in reports/<name>/ of the
# repository that publishes it, beside the project's README.
PROJECT_LINK = "../../README.md"

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
_STATUS_CHOICES = (("", "every square"), ("problems", "only fails or differs"))
_PROBE_CHOICES = (("", "device-portable probes (what runs on the consumer's devices)"), ("all", "every probe"),
                  ("some", "only the probes I tick"))
# The legend, in the order a reader meets the marks.
_MARKS = (OK, DIFFERS, FAILS, DEVICE, HARNESS, NA, EXPORT, NONE)

Names = dict[str, str]
_CELL_VERDICTS = {CellStatus.OK: OK, CellStatus.SKIPPED: NA, CellStatus.HARNESS_ERROR: HARNESS}


def render(results: ResultsDocument) -> str:
    names, devs = labels(results), devices(results)
    found = grids(results, devs)
    grouped = groups(results, devs)
    default = default_pair(found)
    body = [_header(results, devs), _controls(results), "<main>", _picker(results, names, devs, default),
            _summary(summaries(results, found, grouped)), _failures(results, grouped, names), _grids(found, names),
            _ops(results, names), _cells(results, names), "</main>", _footer(results)]
    data = pagedata.build(results, found, grouped, devs, default)
    return _PAGE.substitute(title=escape(f"TensorFlow compatibility: {results.name}"),
                            css=_asset("report.css"), js=_asset("report.js"), body="\n".join(body),
                            data=pagedata.dumps(data))


def _asset(name: str) -> str:
    return resources.files("sandbox.report").joinpath("assets", name).read_text(encoding="utf-8")


def _vclass(letter: str) -> str:
    return "v-" + SLUGS[letter]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _header(results: ResultsDocument, devs: Devices) -> str:
    counts = Counter(devs.outcome(load) for load in results.loads)
    ids = healthy(results)
    span = f" ({_e(tables.span(results))})" if ids else ""
    stats = "".join(f'<span class="stat {_vclass(v)}">{counts.get(v, 0)} {_e(WORDS[v])}</span>'
                    for v in (OK, DIFFERS, FAILS, DEVICE, HARNESS, NA) if counts.get(v) or v in (OK, FAILS))
    failed = sum(a.failed for a in results.artifacts)
    stats += f'<span class="stat {_vclass(EXPORT)}">{failed} {_e(WORDS[EXPORT])}</span>' if failed else ""
    redacted = " Host names and local paths are redacted." if results.redacted else ""
    probes = len(probe_order(results))
    n_pairs, how = tables.pairs(results)
    return (f'<header><h1>TensorFlow compatibility: {_e(results.name)}</h1>'
            f'<p class="lead">This page tells whether a model saved by one TensorFlow loads in another: '
            f'{len(ids)} TensorFlow builds{span} each saved {probes} small probe models in every format they '
            f'write, and {_e(how.replace("cell", "build"))}, measured by '
            f'<a href="{_e(PROJECT_LINK)}">sandbox</a>. Pick a pair below.</p>'
            f'<p>{len(ids)} of {len(results.cells)} cells ran: {n_pairs} producer → consumer pairs, '
            f'{len(results.artifacts)} exports, {len(results.loads)} loads. Generated {_e(results.created)} '
            f'by sandbox {_e(results.sandbox_version)} from <code>{_e(results.matrix)}</code>.{redacted}</p>'
            f'{_related(results)}<div class="summary" aria-label="loads by outcome">{stats}</div>{_legend(results)}</header>')


def _related(results: ResultsDocument) -> str:
    """Links to the other maps (reports beside this one): the runtimes beside TF."""
    links = ", ".join(f'<a href="../{_e(name)}/index.html">{_e(name)}</a>' for name in results.related or [])
    return f'<p class="related">Other maps: {links}</p>' if links else ""


def _legend(results: ResultsDocument) -> str:
    marks_here = _MARKS + ((ELSEWHERE,) if tables.has_references(results) else ())
    items = "".join(f'<li><span class="swatch {_vclass(v)}">{_e(Square(v).text or "·")}</span><b>{_e(WORDS[v])}</b> '
                    f'{_e(LEGEND[v])}</li>' for v in marks_here)
    marks = "".join(f'<li><span class="swatch v-ok {_mclass(m)}">ok</span>corner mark: {_e(WORDS[m])} '
                    f'beside the verdict</li>' for m in (DEVICE, EXPORT, HARNESS))
    return (f'<details class="legend-box" open><summary>What the marks mean</summary>'
            f'<ul class="legend" aria-label="legend">{items}{marks}</ul></details>')


def _mclass(mark: str) -> str:
    return "m-" + SLUGS[mark]


def _options(choices: Iterable[tuple[str, str]], selected: str = "") -> str:
    return "".join(f'<option value="{_e(v)}"{" selected" if v == selected else ""}>{_e(label)}</option>'
                   for v, label in choices)


def _controls(results: ResultsDocument) -> str:
    formats = [("", "all formats")] + [(f, f) for f in _formats(results)]
    return ('<nav class="controls" aria-label="filters">'
            '<a href="#pick">Pair</a><a href="#summary">Summary</a><a href="#failures">Failures</a>'
            '<a href="#grids">Grids</a><a href="#cells">Cells</a>'
            f'<label>Format <select id="f-format">{_options(formats)}</select></label>'
            f'<label>Squares <select id="f-status">{_options(_STATUS_CHOICES)}</select></label>'
            '<label>Find <input id="f-text" type="search" placeholder="op, error, version…"></label>'
            '<button id="f-reset" type="button">Reset</button><span id="shown" aria-live="polite"></span></nav>')


def _formats(results: ResultsDocument) -> list[str]:
    """The formats of the document's loads: as the document lists them, then any other."""
    declared = list(results.formats)
    seen = {load.format for load in results.loads}
    return [x for x in declared if x in seen] + sorted(seen - set(declared))


def _picker(results: ResultsDocument, names: Names, devs: Devices, default: Pair | None) -> str:
    ids = healthy(results)
    cells = [(c, names[c]) for c in ids]
    producer, fmt, consumer, _loader = default or ("", "", "", "")
    formats = [(f, f) for f in _formats(results)]
    cell = results.cell()
    who = "TensorFlow" if all(tables.runtime(cell[c]).get("name") == "tensorflow" for c in ids) else "TF or runtime"
    boxes = "".join(f'<label class="probe"><input type="checkbox" value="{_e(p)}" checked> {_e(p)}'
                    f'{" <small>needs a " + _e(devs.needs[p]) + "</small>" if p in devs.needs else ""}</label>'
                    for p in probe_order(results))
    return ('<section id="pick"><h2>Will my model load there?</h2>'
            '<form id="picker" class="picker" onsubmit="return false">'
            '<fieldset><legend>Saved with</legend>'
            f'<label>{who} <select id="p-from">{_options(reversed(cells), producer)}</select></label>'
            f'<label>format <select id="p-format">{_options(formats, fmt)}</select></label></fieldset>'
            '<fieldset><legend>Loaded with</legend>'
            f'<label>{who} <select id="p-to">{_options(cells, consumer)}</select></label>'
            '<label>loader <select id="p-loader"></select></label></fieldset>'
            '<fieldset><legend>My model is like</legend>'
            f'<label>probes <select id="p-probes">{_options(_PROBE_CHOICES)}</select></label>'
            f'<div id="p-some" class="probes" hidden>{boxes}</div></fieldset></form>'
            '<p id="notice" class="notice" role="status" hidden></p>'
            '<div id="answer" class="answer" aria-live="polite" tabindex="-1">'
            '<p class="note">Pick a pair (this needs JavaScript; the grids below hold the same verdicts).</p>'
            '</div></section>')


def _summary(found: list[FormatSummary]) -> str:
    boxes = "".join(_format_summary(s) for s in found)
    return ('<section id="summary"><h2>Each format, in version ranges</h2>'
            '<p class="note">Per format and loader, judged by the device-portable probes: producers (the TF that '
            'saved the model) that behave alike, and the consumers (the TF that loads it) where their models load, '
            'differ or fail, and why; where a probe needs a device the consumer lacks, apart. Then the consumers '
            'that load the same producers, and each finding as a range statement.</p>'
            f'{boxes or "<p>No cell loaded anything.</p>"}</section>')


def _format_summary(summary: FormatSummary) -> str:
    rows = "".join(
        f'<tr><th scope="row">{_e(r.producers)}</th><td class="t-ok">{_e(r.ok)}</td>'
        f'<td class="t-differs">{_e(r.differs)}</td><td class="t-fails">{_e(r.fails)}</td><td>{_e(r.na)}</td>'
        f'<td class="t-device">{_e(r.device)}</td>'
        f'<td>{"<br>".join(_e(x) for x in (*r.reasons, *r.notes))}</td></tr>' for r in summary.rows)
    consumers = "".join(f'<tr><th scope="row">{_e(r.consumers)}</th><td class="t-ok">{_e(r.producers or "none")}</td>'
                        f'<td>{_e(r.newest or "none")}</td></tr>' for r in summary.consumers)
    statements = "".join(f"<li>{_e(s)}</li>" for s in summary.statements)
    what = f'{FORMAT_TEXT.get(summary.format, "")}; {LOADER_TEXT.get(summary.loader or "", "")}'.strip("; ")
    return (f'<div class="fsum" data-format="{_e(summary.format)}"><h3><code>{_e(summary.format)}</code> loaded with '
            f'<code>{_e(summary.loader)}</code> <small>{_e(what)}</small></h3>'
            '<div class="scroll"><table class="data ranges"><thead><tr><th>saved with</th><th>loads in</th>'
            '<th>differs in</th><th>fails in</th><th>n/a in</th><th>device-bound in</th><th>what fails</th>'
            f'</tr></thead><tbody>{rows}</tbody></table></div>'
            '<div class="scroll"><table class="data consumers"><thead><tr><th>loaded with</th>'
            '<th>loads models saved with</th><th>newest</th></tr></thead>'
            f'<tbody>{consumers}</tbody></table></div>'
            + (f'<ul class="statements">{statements}</ul>' if statements else "") + "</div>")


_SECTIONS = (((FAILS, DIFFERS), "Version findings",
              "TensorFlow or Keras refused the model, or computed something else: the ops or attrs a consumer lacks "
              "(or the error class and message)."),
             ((DEVICE,), "Device findings",
              "A probe that needs a device the consumer lacks (a GPU-only op): they say nothing about versions."),
             ((HARNESS,), "Harness errors",
              "sandbox's own code failed: bugs of ours, not findings (a published map has none)."))


def _failures(results: ResultsDocument, found: list[Group], names: Names) -> str:
    if not found:
        return '<section id="failures"><h2>Failures, grouped</h2><p>None: every load worked.</p></section>'
    ids, witnessed = healthy(results), witnesses.index(results)
    at = {id(g): i for i, g in enumerate(found)}
    parts = []
    for kinds, title, note in _SECTIONS:
        mine = [g for g in found if g.kind in kinds]
        if mine:
            rows = "".join(_group_row(at[id(g)], g, ids, names, witnessed) for g in mine)
            parts.append(f'<h3>{_e(title)}</h3><p class="note">{_e(note)}</p><div class="scroll"><table class="data '
                         'groups"><thead><tr><th>finding</th><th>loads</th><th>pairs</th><th>formats / loaders</th>'
                         '<th>probes</th><th>pairs and error</th><th>witness</th></tr></thead>'
                         f'<tbody>{rows}</tbody></table></div>')
    return ('<section id="failures"><h2>Failures, grouped by signature</h2>'
            '<p class="note">One row per finding: how many loads and pairs it hits, where, and one exact error; and '
            'its witness: one of its loads re-run by a standalone script of plain TensorFlow / Keras calls, which '
            'you can copy into a bug report. A finding its witness does not reproduce is a bug of sandbox. '
            f'Every load is in results.json.</p>{"".join(parts)}</section>')


def _group_row(i: int, group: Group, ids: list[str], names: Names,
               witnessed: witnesses.Found) -> str:
    hits = "".join(f"<li>{_e(producers)} → {_e(consumers)}</li>" for producers, consumers in where(group, ids, names))
    example = group.example
    if group.kind == DIFFERS:
        error = f"max abs err {example.max_abs_err}, max rel err {example.max_rel_err}"
    else:
        error = f"{example.error_type or ''}: {example.error or ''}".lstrip(": ")
    fl = sorted({f"{l.format} / {l.loader}" for l in group.loads})
    return (f'<tr class="group" id="g{i}" data-formats="{_e(" ".join(group.values("format")))}">'
            f'<th scope="row"><span class="badge {_vclass(group.kind)}">{_e(KINDS[group.kind])}</span> '
            f'{_e(group.title)}</th>'
            f'<td>{len(group.loads)}</td><td>{len(group.pairs)}</td><td>{"<br>".join(_e(x) for x in fl)}</td>'
            f'<td>{_e(", ".join(group.values("probe")))}</td>'
            f'<td><details><summary>saved with → loaded with</summary><ul class="pairs">{hits}</ul>'
            f'<p class="muted">{_e(example.producer)} → {_e(example.consumer)}, {_e(example.probe)}, '
            f'{_e(example.format)} / {_e(example.loader)}:</p><pre>{_e(error)}</pre></details></td>'
            f'{witnesses.html(witnesses.of(group, witnessed))}</tr>')


def _grids(found: list[Grid], names: Names) -> str:
    if not found:
        return '<section id="grids"><h2>Grids</h2><p class="note">No cell loaded anything.</p></section>'
    boxes = "".join(_grid(i, g, names) for i, g in enumerate(found))
    return ('<section id="grids"><h2>Grids</h2><p class="note">Rows: the TF that saved the model; columns: the TF '
            'that loaded it. A square is the probes of that format and loader chosen in the picker (by default the '
            'device-portable ones); k/n: k of n probes fail; a corner mark: a probe needs a device the consumer '
            'lacks, an export failed, or our code failed (see the legend above). Select a square (click, or Tab '
            f'and Enter) to see it in the picker.</p><div class="grids">{boxes}</div></section>')


def _head(cell: str, names: Names) -> str:
    tf, _, rest = names[cell].partition(" ")
    return f'<span class="cell-label" title="{_e(cell)}">{_e(tf)}<small>{_e(rest)}</small></span>'


def _grid(i: int, grid: Grid, names: Names) -> str:
    head = "".join(f'<th scope="col">{_head(c, names)}</th>' for c in grid.consumers)
    rows = []
    for producer in grid.producers:
        tds = "".join(_square(grid.square(producer, consumer)) for consumer in grid.consumers)
        rows.append(f'<tr><th scope="row">{_head(producer, names)}</th>{tds}</tr>')
    return (f'<div class="grid-box" id="grid-{i}" data-grid="{i}" data-format="{_e(grid.format)}" '
            f'data-loader="{_e(grid.loader)}"><h3><code>{_e(grid.format)}</code> loaded with '
            f'<code>{_e(grid.loader)}</code></h3><div class="scroll"><table class="grid"><thead><tr>'
            f'<th class="corner">saved ↓ loaded →</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div></div>')


def _square(square: Square) -> str:
    verdict = square.verdict
    marks = "".join(f" {_mclass(m)}" for m in square.marks)
    if verdict == NONE and not marks:
        return '<td class="v v-none"></td>'
    return f'<td class="v {_vclass(verdict)}{marks}" tabindex="0">{_e(square.text)}</td>'


def _ops(results: ResultsDocument, names: Names) -> str:
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


def _environment(cell: CellRow | None) -> str:
    if not cell:
        return '<span class="muted">unknown cell</span>'
    parts = [f"{name} {version}" for name, version in cell_environment(cell)]
    parts.append(f"{cell.backend}/{cell.image}")
    return _e(" · ".join(parts))


def _cells(results: ResultsDocument, names: Names) -> str:
    rows = []
    exports = exports_by_cell(results)
    for cell in results.cells:
        verdict = _CELL_VERDICTS.get(cell.status, FAILS)
        seconds = " ".join(f"{k} {v:.0f}s" for k, v in cell.seconds.items())
        failed = exports.get(cell.id, "")
        rows.append(f'<tr><th scope="row">{_e(names.get(cell.id, cell.id))}<br><code>{_e(cell.id)}</code></th>'
                    f'<td><span class="badge {_vclass(verdict)}">{_e(cell.status.value)}</span></td>'
                    f'<td>{_environment(cell)}</td><td>{_e(cell.requirement or "")}</td>'
                    f'<td>{_e((cell.resolved_as_of or "")[:10])}</td><td>{_e(tables.measured(cell))}</td>'
                    f'<td>{_e(seconds)}</td><td class="t-export">{_e(failed)}</td><td>{_e(cell.reason or "")}</td></tr>')
    heads = "".join(f"<th>{h}</th>" for h in ("cell", "status", "environment", "installed", "deps as of", "measured",
                                              "time", "exports that failed", "note"))
    return ('<section id="cells"><h2>Cells</h2><div class="scroll">'
            f'<table class="data cells"><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody>'
            '</table></div></section>')


def _footer(results: ResultsDocument) -> str:
    return (f'<footer>schema_version {_e(results.schema_version)} · probes '
            f'{_e(", ".join(results.probes))} · every load, with its whole error, is in results.json'
            '</footer>')
