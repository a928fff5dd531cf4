"""`sandbox export`, `sandbox load` and `sandbox merge`: a run cut into CI jobs,
one cell's exports or loads per bundle, and the report made from the bundles."""

from __future__ import annotations

import argparse
import os
import sys

from sandbox import bundles, collect, locks, matrix, plan, runner, shards
from sandbox.cli import output, planning
from sandbox.errors import HarnessError, SandboxError
from sandbox.records import HARNESS_ERROR, CellResult
from sandbox.report.publish import write_report


def _one_cell(mx: matrix.Matrix, cells: list[plan.Cell], cell_id: str) -> list[plan.Cell]:
    found = [c for c in cells if c.id == cell_id]
    if not found:
        raise SandboxError(f"{mx.path}: no cell '{cell_id}' in this matrix (it has: {', '.join(c.id for c in cells)})")
    return found


def _check_prune(args: argparse.Namespace) -> None:
    """--prune-store removes records: only from a store named for the job."""
    if args.prune_store and not os.environ.get("SANDBOX_STORE_DIR"):
        raise SandboxError("--prune-store removes every record the job does not use: it wants SANDBOX_STORE_DIR set "
                           "to the job's own store (the default store is shared by every run on this machine)")


def cmd_export(args: argparse.Namespace) -> int:
    _check_prune(args)
    mx, cells = planning.resolved(args.matrix, args.offline)
    [cell] = _one_cell(mx, cells, args.cell)
    bundles.check_out(args.out)
    run_dir = args.work_dir / f"{mx.name}-export-{cell.id}"
    with locks.run_lock(run_dir, say=output.say):
        with output.progress([cell.id]) as show:
            run = runner.Run(mx, [cell], run_dir, 1, show, fresh=args.fresh)
            [result] = run.run(export=True, loads=False)
        bundles.write_export(args.out, mx, result, [plan.cell_facts(c) for c in cells], cells.index(cell), run.store,
                             run.keys)
        if args.prune_store:
            run.store.retain(set(result.records()))
    print(f"{cell.id}: {result.state.status}{f' ({result.state.reason})' if result.state.reason else ''}; "
          f"{run.tally.line()}\nbundle: {args.out}")
    return exit_code([result])


def cmd_load(args: argparse.Namespace) -> int:
    _check_prune(args)
    mx, cells = planning.resolved(args.matrix, args.offline)
    [cell] = _one_cell(mx, cells, args.cell)
    bundles.check_out(args.out)
    exports = bundles.exports_for(bundles.read_all(args.bundles, mx), [c.id for c in cells])
    if cell.id not in exports:
        raise SandboxError(f"no export bundle of {cell.id} among --bundles: the consumer's own bundle says "
                           "whether it is healthy and holds its registry")
    run_dir = args.work_dir / f"{mx.name}-load-{cell.id}"
    with locks.run_lock(run_dir, say=output.say):
        with output.progress([cell.id]) as show:
            run = runner.Run(mx, [cell], run_dir, 1, show, fresh=args.fresh, references=plan.references(cells))
            sources = [s for b in exports.values() for s in bundles.sources(b, run.store, run.keys)]
            [result] = run.loads_only(sources, {cell.id: bundles.export_result(exports[cell.id], run.keys)})
        bundles.write_loads(args.out, mx, result, list(exports.values()), sources, run.keys)
        if args.prune_store:  # the exports come in the export bundles every time: only the loads are worth keeping
            run.store.retain({r for r in result.records() if r[0] == "loads"})
    print(f"{cell.id}: {result.state.status}; {run.tally.line()}\nbundle: {args.out}")
    return exit_code([result])


def exit_code(results: list[CellResult]) -> int:
    """4 when sandbox's own code failed anywhere (a cell, an export, a load), 1 when a cell errored."""
    if any(r.state.status == HARNESS_ERROR or any(a.status.value == HARNESS_ERROR for _, a in r.artifacts)
           or any(l.status.value == HARNESS_ERROR for _, l in r.loads) for r in results):
        return HarnessError.exit_code
    return 1 if any(r.state.status == "error" for r in results) else 0


def cmd_merge(args: argparse.Namespace) -> int:
    given = bundles.read_all(args.bundles)
    mx = bundles.the_matrix(given)
    results, gaps = shards.merge(given, mx, args.allow_incomplete)
    out = write_report(collect.collect(mx, results), args.reports / mx.name, args.redact)
    print(f"merged {len(given)} bundles: {len(results)} cells\n"
          f"report: {out / 'index.html'} {out / 'index.md'} {out / 'junit.xml'}\nresults: {out / 'results.json'}")
    for gap in gaps:
        print(f"sandbox: incomplete: {gap} (the cell is marked error in the report)", file=sys.stderr)
    if exit_code(results) == HarnessError.exit_code:
        return HarnessError.exit_code
    return 1 if gaps else 0
