"""What a report says, in a few lines of Markdown: the headline that opens
index.md, and the README's account of the published map (scripts/readme_facts.py
copies it from reports/tf-map/results.json; tests/test_readme.py checks it).

Per format and loader, judged by the device-portable probes: where a model saved
with the newest TensorFlow loads, which producers the newest TensorFlow loads,
which the newest build of the oldest major version loads (TF 1.15 serving
TF 2 models), and the findings that break the most pairs; then the probes that
need a device, apart, and the exports that failed."""

from __future__ import annotations

from collections import defaultdict

from tabulate import tabulate

from sandbox import runtimes
from sandbox.records import ArtifactStatus
from sandbox.report.document import CellRow, ExportRow, ResultsDocument
from sandbox.report.findings import Group, export_problem, groups
from sandbox.report.tables import (
    Grid,
    extra_packages,
    first_line,
    grids,
    healthy,
    labels,
    probe_order,
    runs,
    runtime,
    span,
)
from sandbox.report.verdict import NA, NONE, VERSION_FINDINGS, Devices, devices

BREAKERS = 2  # findings named per format and loader


def lines(results: ResultsDocument, devs: Devices | None = None, found: list[Grid] | None = None,
          grouped: list[Group] | None = None) -> list[str]:
    """The headline (the callers' devices, grids and groups of `results` when they have them)."""
    devs = devices(results) if devs is None else devs
    found = grids(results, devs) if found is None else found
    grouped = groups(results, devs) if grouped is None else grouped
    ids, names = healthy(results), labels(results)
    if not ids or not found:
        return ["Nothing was loaded: no cell ran."]
    out = [counts(results), ""]
    out += _table(results, found, grouped, ids, names) + [""]
    out += [f"- `{p}` needs a {d} ({devs.why[p]}): where a consumer has none, its loads are device findings, "
            "apart from these verdicts." for p, d in sorted(devs.needs.items())]
    out += [f"- Export failed: {line}." for line in _exports(results, ids, names)]
    return out


def counts(results: ResultsDocument) -> str:
    """The size of a report in one sentence: cells, probes, formats, exports, loads."""
    ids = healthy(results)
    cells = results.cell()
    only_tf = all(runtime(cells[c]).get("name") == runtimes.TENSORFLOW for c in ids)
    ranges = f" ({span(results)})" if ids else ""
    failed = sum(a.failed for a in results.artifacts)
    return (f"{len(ids)} {'TensorFlow ' if only_tf else ''}cells{ranges}, {len(probe_order(results))} probes, "
            f"{len({a.format for a in results.artifacts})} formats: {len(results.artifacts):,} exports "
            f"({failed} failed), {len(results.loads):,} loads.")


def _table(results: ResultsDocument, found: list[Grid], grouped: list[Group], ids: list[str], names: dict[str, str]) -> list[str]:
    cells = results.cell()
    writers = {a.producer for a in results.artifacts}
    newest = _newest([c for c in ids if c in writers] or ids, cells)  # the newest that saves
    # the newest that loads, per grid (a runtime map's loaders are read by different cells)
    readers = {id(g): _newest(_tried(g) or g.readers or ids, cells) for g in found}
    reader = _newest([c for c in ids if cells[c].role != "producer"] or ids, cells)
    tf_only = all(runtime(cells[c]).get("name") == runtimes.TENSORFLOW for c in ids)
    one_reader = tf_only or all(r == reader for r in readers.values())  # a TF map names its newest TF
    old = _oldest_major(results, [c for c in ids if cells[c].role != "producer"], reader)
    head = f"{names[reader]} loads models saved with" if one_reader else "the newest that loads it, loads models saved with"
    headers = ["format", "loader", f"saved with {names[newest]}, loads in", head]
    headers += [f"{names[old]} loads models saved with"] if old else []
    rows = []
    breakers = _breakers(grouped)
    for grid in found:
        loads_in = {c for c in grid.readers if grid.square(newest, c).loads}
        mine = reader if one_reader else readers[id(grid)]
        loaded = _loads_from(grid, mine, names) if one_reader else f"{names[mine]}: {_loads_from(grid, mine, names)}"
        rows.append([f"`{grid.format}`", f"`{grid.loader}`",
                     (runs(grid.readers, loads_in, names) or "none") if newest in grid.producers else "wrote none",
                     loaded] + ([_loads_from(grid, old, names)] if old else [])
                    + ["; ".join(breakers.get((grid.format, grid.loader), []))])
    return [tabulate(rows, [*headers, "what breaks the most pairs"], tablefmt="github")]


def _tried(grid: Grid) -> list[str]:
    """The consumers that tried some load of this grid (not all not-applicable)."""
    return [c for c in grid.readers
            if any(set(grid.letters.get((p, c), "")) - {NA, NONE} for p in grid.producers)]


def _newest(ids: list[str], cells: dict[str, CellRow]) -> str:
    plain = [c for c in ids if not extra_packages(cells[c])]  # a "+tf-keras" twin is not what "newest" means
    return (plain or ids)[-1]


def _oldest_major(results: ResultsDocument, consumers: list[str], newest: str) -> str | None:
    """The newest TensorFlow of the oldest major version that loads (TF 1.15
    serving TF 2 models), when that is not `newest`; runtime cells have none."""
    cells = results.cell()
    tf = [c for c in consumers if runtime(cells[c]).get("name") == runtimes.TENSORFLOW]
    majors = [c for c in tf if cells[c].tensorflow.split(".")[0] == cells[tf[0]].tensorflow.split(".")[0]] if tf else []
    return majors[-1] if majors and majors[-1] != newest else None


def _loads_from(grid: Grid, consumer: str, names: dict[str, str]) -> str:
    loaded = {p for p in grid.producers if grid.square(p, consumer).loads}
    return runs(grid.consumers, loaded, names) or "none"


def _breakers(grouped: list[Group]) -> dict[tuple[str, str | None], list[str]]:
    """Per format and loader: its version findings that hit the most pairs, by name."""
    by: dict[tuple[str, str | None], list[tuple[int, str]]] = defaultdict(list)
    for group in grouped:
        if group.kind not in VERSION_FINDINGS:
            continue
        pairs: dict[tuple[str, str | None], set[tuple[str, str]]] = defaultdict(set)
        for l in group.loads:
            pairs[(l.format, l.loader)].add(l.pair)
        what = ", ".join(group.signature.names) or first_line(group.title, 72)
        for key, hit in pairs.items():
            by[key].append((len(hit), what))
    out: dict[tuple[str, str | None], list[str]] = {}
    for key, found in by.items():
        merged: dict[str, int] = defaultdict(int)
        for n, what in found:
            merged[what] += n
        top = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:BREAKERS]
        out[key] = [f"{what} ({n} pair{'s' * (n != 1)})" for what, n in top]
    return out


def _exports(results: ResultsDocument, ids: list[str], names: dict[str, str]) -> list[str]:
    """Failed exports, by format, problem and probes, over the producers they happened in."""
    probes: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for a in results.artifacts:
        if a.failed:
            probes[(a.producer, a.format, export_problem(a))].add(a.probe)
    by: dict[tuple[str, str, tuple[str, ...]], set[str]] = defaultdict(set)
    for (producer, fmt, problem), found in probes.items():
        by[(fmt, problem, tuple(sorted(found)))].add(producer)
    every = set(probe_order(results))
    return [f"`{fmt}` of {'every probe' if set(found) >= every else ', '.join(found)} in "
            f"{runs(ids, producers, names)}: {problem}" for (fmt, problem, found), producers in sorted(by.items())]


def first_writer(results: ResultsDocument, name: str, formats: tuple[str, ...]) -> tuple[str, bool] | None:
    """The oldest producer whose exported artifacts of `formats` hold `name` (an op, or Op.attr),
    and whether every newer producer that exported them holds it too."""
    ids, names = healthy(results), labels(results)
    holds: dict[str, bool] = {}
    for a in results.artifacts:
        if a.format in formats and a.status is ArtifactStatus.EXPORTED and a.producer in ids:
            holds[a.producer] = holds.get(a.producer, False) or _holds(a, name)
    writers = [p for p in ids if holds.get(p)]
    if not writers:
        return None
    after = [p for p in ids[ids.index(writers[0]):] if p in holds]
    return names[writers[0]], all(holds[p] for p in after)


def _holds(artifact: ExportRow, name: str) -> bool:
    op, _, attr = name.partition(".")
    attrs = artifact.op_attrs or {}
    return (attr in (attrs.get(op) or [])) if attr else (op in (artifact.ops or []) or op in attrs)
