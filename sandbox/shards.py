"""Shards: the phases of a run as commands that separate machines run (a CI
matrix: one export job per cell, one load job per cell, one merge job). What
the jobs hand on is a bundle (sandbox.bundles).

`merge` makes the report one machine would, or refuses with one line naming
the cell: every cell of the plan needs its one export bundle, every healthy
cell its one load bundle, made from those very export bundles and holding
every load a run would have made (each addressed by the key re-derived from
what it claims to have measured), and nothing else. With `allow_incomplete`
what is missing is published marked: the cell that lacks something is an
`error` with the reason, never "ok"."""

from __future__ import annotations

from sandbox.bundles import Bundle, BundleError, export_result, exports_by_cell, load_records
from sandbox.keys import Keys
from sandbox.matrix import Matrix
from sandbox.records import CellResult, CellState, Load, Source, loaders_of

LoadId = tuple[str, str, str, str]  # producer, probe, format, loader


def merge(bundles: list[Bundle], matrix: Matrix, allow_incomplete: bool = False) -> tuple[list[CellResult], list[str]]:
    """Every cell of the run, in plan order, with its consumers' loads; and
    what is missing (empty unless `allow_incomplete`)."""
    keys, gaps = Keys.of(matrix), []
    exports = exports_by_cell(bundles)
    if not exports:
        raise BundleError("no export bundle among those given: merge needs every cell's export bundle")
    plan = next(iter(exports.values())).data["plan"]
    results: dict[str, CellResult] = {}
    for facts in plan:
        if facts["id"] in exports:
            results[facts["id"]] = export_result(exports[facts["id"]], keys)
        else:
            gaps.append(_gap(allow_incomplete, f"no export bundle of {facts['id']} was given"))
            results[facts["id"]] = CellResult(dict(facts), CellState(facts["id"], "error", gaps[-1]))
    sources = [Source(cell, key, a) for cell, r in results.items() if r.state.status == "ok"
               for key, a in r.artifacts if a.exported]
    loaded = _load_bundles(bundles, results, exports)
    for cell, result in results.items():
        bundle = loaded.get(cell)
        if bundle is not None:
            result.state, result.loads = _loads(bundle, result, sources, exports, keys)
        if result.state.status == "ok":
            missing = _missing(result, sources, bundle)
            if missing:
                gaps.append(_gap(allow_incomplete, f"{cell}: {missing}"))
                result.state = CellState(cell, "error", f"incomplete: {missing}")
    return list(results.values()), gaps


def _gap(allowed: bool, what: str) -> str:
    if not allowed:
        raise BundleError(f"incomplete run: {what}; give every bundle of the run (or --allow-incomplete to "
                          "publish it with that cell marked error)")
    return what


def _load_bundles(bundles: list[Bundle], results: dict[str, CellResult], exports: dict[str, Bundle]) -> dict[str, Bundle]:
    """The load bundle of each cell: one at most, of a cell of the plan."""
    found: dict[str, Bundle] = {}
    for bundle in (b for b in bundles if b.kind == "load"):
        cell = bundle.cell
        if cell not in results:
            raise BundleError(f"{bundle.folder}: loads of {cell}, a cell not in the plan of the export bundles")
        if cell in found:
            raise BundleError(f"two load bundles of {cell}: {found[cell].folder} and {bundle.folder}")
        made_from = bundle.data["exports"]
        for producer, export in exports.items():
            if made_from.get(producer) != export.digest:
                raise BundleError(f"{bundle.folder}: the loads of {cell} were made from another export bundle of "
                                  f"{producer} than the one given ({export.folder}); load every cell from the same "
                                  "export bundles")
        found[cell] = bundle
    return found


def _loads(bundle: Bundle, result: CellResult, sources: list[Source], exports: dict[str, Bundle],
           keys: Keys) -> tuple[CellState, list[tuple[str, Load]]]:
    """A consumer's loads, each one of an artifact of the run, once, under its own key."""
    state, records = load_records(bundle)
    if result.state.status != "ok" and (records or state.status == "ok"):
        raise BundleError(f"{bundle.folder}: loads of {result.state.id} (or its state ok), which its export bundle "
                          f"says did not run ({result.state.status})")
    by_artifact = {(s.producer, s.artifact.probe, s.artifact.format): s for s in sources}
    seen: set[LoadId] = set()
    loads = []
    for producer, key, load in records:
        what = f"{bundle.folder}: load of {producer}/{load.probe}/{load.format} by {load.loader}"
        source = by_artifact.get((producer, load.probe, load.format))
        if source is None or load.loader not in loaders_of(source.artifact):
            raise BundleError(f"{what}: the run has no such artifact or loader")
        if (producer, load.probe, load.format, load.loader) in seen:
            raise BundleError(f"{what}: there twice")
        if key != keys.load(result.identity, source, load.loader):
            raise BundleError(f"{what}: its key is not the one its consumer, artifact and loader give (moved or "
                              "forged?); refusing the bundle")
        seen.add((producer, load.probe, load.format, load.loader))
        loads.append((producer, load))
    return state, loads


def _missing(result: CellResult, sources: list[Source], bundle: Bundle | None) -> str | None:
    """What a healthy consumer lacks: its load bundle, or loads a run would have made."""
    if bundle is None:
        return "no load bundle was given"
    have = {(p, l.probe, l.format, l.loader) for p, l in result.loads}
    want = {(s.producer, s.artifact.probe, s.artifact.format, loader) for s in sources for loader in loaders_of(s.artifact)}
    lacking = sorted(want - have)
    if not lacking:
        return None
    return f"{len(lacking)} of {len(want)} loads missing from {bundle.folder} (first: {'/'.join(lacking[0])})"
