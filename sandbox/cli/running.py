"""`sandbox run` and `sandbox witness`: a matrix measured in one process, its
report written, its findings re-run by their witness scripts."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sandbox import bundles, collect, display, ledger, locks, matrix, plan, pythons, runner, summary, versions
from sandbox.cli import output, planning
from sandbox.errors import HarnessError, SandboxError
from sandbox.report import document
from sandbox.report.publish import check_writable, write_report
from sandbox.report.redact import redact
from sandbox.witness import runs as witnesses


def cmd_run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    mx, cells = planning.resolved(args.matrix, args.offline, quiet=args.quiet)
    out = args.reports / mx.name
    check_writable(out)
    run_dir = args.work_dir / mx.name
    with locks.run_lock(run_dir, wait=not args.no_wait, say=output.say):
        with output.progress([c.id for c in cells], args.quiet, args.verbose, start=start) as show:
            run = runner.Run(mx, cells, run_dir, args.jobs, show, fresh=args.fresh)
            plan_key, entry = ledger.plan_key(run, args.redact, args.witness), ledger.read(run.store, out)
            if not args.fresh and ledger.unchanged(run.store, entry, plan_key, out):
                assert entry is not None
                return _finish_run(show, entry.summary, ledger.tally_line(entry), out, args.verbose, errored=False)
            results = run.run()
            document_ = collect.collect(mx, results)
            if args.witness:
                witnesses.attach(document_, run)
        published = redact(document_) if args.redact else document_
        digest = ledger.document_digest(published)
        if not ledger.same_document(entry, digest, out):  # else the report in `out` is this one already
            write_report(published, out, hide=False)
        found = summary.summarize(published)
        ledger.write(run.store, out, ledger.entry_for(plan_key, run.store, results, digest, out, found))
    return _finish_run(show, found, run.tally.line(), out, args.verbose,
                       errored=any(r.state.status == "error" for r in results))


def _finish_run(show: display.Display, found: summary.Summary, tally: str, out: Path, verbose: bool,
                errored: bool) -> int:
    show.table(found)
    show.summary(display.closing_summary(found, tally, show.wall(), output.outputs(out), verbose))
    if found.refuted or found.harness:
        return HarnessError.exit_code  # our own code failed, or made a finding its witness does not reproduce
    if errored or not found.loads:
        return 1  # a cell errored, or nothing at all was measured (every cell skipped or broken)
    return 0


def cmd_witness(args: argparse.Namespace) -> int:
    start = time.monotonic()
    results = document.load(args.report)
    folder = args.report if args.report.is_dir() else args.report.parent
    mx, given = _witness_matrix(args, results)
    cells = plan.plan(mx, versions.Catalog(offline=args.offline), pythons.discover())
    check_writable(folder)
    run_dir = args.work_dir / f"{mx.name}-witness"
    with locks.run_lock(run_dir, say=output.say):
        with output.progress([c.id for c in cells], start=start) as show:
            run = runner.Run(mx, cells, run_dir, args.jobs, show, fresh=args.fresh)
            for bundle in (b for b in given if b.kind == "export"):
                bundles.sources(bundle, run.store, run.keys)  # their artifacts, verified, into the local store
            witnesses.attach(results, run)
        out = write_report(results, folder, args.redact)
    found = summary.summarize(results)
    show.summary(display.witness_lines(found) + [f"report: {out / 'index.html'} {out / 'index.md'}",
                                                 f"results: {out / document.RESULTS_FILE}"])
    return 4 if found.refuted else 0


def _witness_matrix(args: argparse.Namespace, results: document.ResultsDocument) -> tuple[matrix.Matrix, list[bundles.Bundle]]:
    """--matrix, else the matrix the bundles were made from, else the file results.json names;
    and the bundles (made from that matrix)."""
    if args.matrix is not None:
        mx = matrix.load(args.matrix)
        return mx, bundles.read_all(args.bundles, mx) if args.bundles else []
    if args.bundles:
        given = bundles.read_all(args.bundles)
        return bundles.the_matrix(given), given
    named = Path(results.matrix)
    if not named.is_file():
        raise SandboxError(f"{args.report}: its results name the matrix {named}, which is not a file here; "
                           "give it with --matrix")
    return matrix.load(named), []
