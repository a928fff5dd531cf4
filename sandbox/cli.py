"""The command line. The only place that prints results and turns errors
into one-line messages and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from tabulate import tabulate

from sandbox import (
    __version__,
    bisect,
    bundles,
    check,
    collect,
    display,
    envs,
    kerasinfo,
    ledger,
    locks,
    matrix,
    pipeline,
    plan,
    protos,
    pythons,
    registries,
    repro,
    runner,
    runtimes,
    shapes,
    shards,
    summary,
    versions,
)
from sandbox.argparsing import Parser
from sandbox.errors import HarnessError, Interrupted, SandboxError
from sandbox.records import HARNESS_ERROR, CellResult
from sandbox.report import diff, document
from sandbox.report.publish import check_writable, write_report
from sandbox.report.redact import redact
from sandbox.witness import runs as witnesses


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with _stop_on_signals() as caught:
        try:
            return int(args.func(args) or 0)
        except Interrupted:
            return _stopped(caught[0] if caught else signal.SIGINT)
        except BrokenPipeError:  # `sandbox plan --json | head`: the reader left; not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except SandboxError as exc:
            if args.debug:
                traceback.print_exc()
            print(f"sandbox: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except OSError as exc:  # the safety net: a file or folder the specific checks did not foresee
            if args.debug:
                traceback.print_exc()
            where = f" {exc.filename}" if exc.filename else ""
            print(f"sandbox: error: cannot use{where}: {exc.strerror or exc}; check the path and its permissions "
                  "(--debug shows where)", file=sys.stderr)
            return SandboxError.exit_code
        except KeyboardInterrupt:
            return _stopped(caught[0] if caught else signal.SIGINT)
        except Exception as exc:  # a bug of ours: one line (the trace with --debug), exit 4
            if args.debug:
                traceback.print_exc()
            print(f"sandbox: internal error: {type(exc).__name__}: {exc} (a bug in sandbox: please report it; "
                  "--debug shows the trace)", file=sys.stderr)
            return HarnessError.exit_code


@contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """Ctrl-C (SIGINT) and SIGTERM alike: stop every agent and container first
    (envs.interrupt), then unwind as KeyboardInterrupt. Yields the list that
    receives the signal's number. Children run in their own sessions, so a
    terminal's Ctrl-C reaches only this process and the stop is in order."""
    caught: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        first = not caught
        caught.append(signum)
        if first:
            envs.interrupt()
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield caught  # signals are delivered to the main thread only
        return
    before = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _stopped(signum: int) -> int:
    """After Ctrl-C or SIGTERM: children are stopped (again, in case the
    interrupt came another way); one line; 128 + the signal's number."""
    envs.interrupt()
    name = signal.Signals(signum).name
    print(f"sandbox: stopped by {name}; everything finished is in the results store (run again to go on)", file=sys.stderr)
    return 128 + signum


EXIT_CODES = """exit codes:
  0    ok (findings such as failing loads are results, not errors)
  1    a cell errored, nothing at all was measured, or `diff`/`check` found something that fails
  2    usage or configuration error (a bad matrix, spec, path or option)
  3    a command sandbox ran failed (its log is named)
  4    a bug in sandbox itself (please report it, with --debug): also `run`/`export`/`load`/`merge`
       when an export or load failed in sandbox's own code (a harness error, listed in the summary), or a finding its witness did not reproduce
  74   the results store cannot be written (what was stored is kept)
  75   busy: another run of this matrix holds its lock (with --no-wait)
  130  interrupted by Ctrl-C (SIGINT); 143 stopped by SIGTERM"""

EXAMPLES = {
    "run": "sandbox run matrix.toml -j 4\n  sandbox run matrix.toml -q     # only the summary and the report paths",
    "plan": "sandbox plan matrix.toml --json | jq -r '.cells[].id'",
    "export": "sandbox export matrix.toml --cell tf2.18.1-py3.11-cpu --out bundles/export-tf2.18.1",
    "load": "sandbox load matrix.toml --cell tf1.15.5-py3.7-cpu --bundles bundles/export-* --out bundles/load-tf1.15.5",
    "merge": "sandbox merge bundles/* --reports reports",
    "report": "sandbox report reports/default/results.json",
    "check": "sandbox check model.pb --against tf==1.13,tf==1.15\n  sandbox check saved_model/ --against all --json\n"
             "  sandbox check model.keras --against keras==3.11\n"
             "  sandbox check model.tflite --against ai-edge-litert==1.2,tflite-runtime==2.14",
    "registries": "sandbox registries --build 2.16 2.17",
    "repro": "sandbox repro examples/repro/matmul_frozen_graph.toml -j 2 --json",
    "bisect": "sandbox bisect examples/repro/matmul_frozen_graph.toml",
    "shell": "sandbox shell tf2.15.1-py3.11-cpu",
    "diff": "sandbox diff old/results.json reports/default --json",
    "witness": "sandbox witness reports/tf-map\n  sandbox witness merged/tf-map --matrix matrices/tf-map.toml --bundles bundles/export-*",
    "pythons": "sandbox pythons --json\n  sandbox pythons --install 3.12",
    "pipeline": "sandbox pipeline matrices/tf-map.toml --gitlab > shards.yml",
}


def jobs(text: str) -> int:
    """-j: a whole number of cells at once, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def mebibytes(text: str) -> float:
    """--max-model-size: a size in MiB, more than 0 (0 used to switch the limit off)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of MiB") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a size in MiB above 0, not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sandbox", description="Map TensorFlow's cross-version model compatibility.",
        epilog=f"example:\n  sandbox run matrix.toml\n\n{EXIT_CODES}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sandbox {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {EXAMPLES[name]}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    matrix_help = "the matrix file (default: matrix.toml)"
    run = verb("run", "run a matrix and write its report")
    run.add_argument("matrix", nargs="?", default="matrix.toml", type=Path, help=matrix_help)
    _jobs(run)
    _work_dir(run)
    _reports(run)
    run.add_argument("--fresh", action="store_true",
                     help="measure everything again, ignoring the results store (it is updated)")
    _offline(run)
    out = run.add_mutually_exclusive_group()
    out.add_argument("-v", "--verbose", action="store_true",
                     help="print every export and load as it finishes, and every failing pair")
    out.add_argument("-q", "--quiet", action="store_true", help="print only the closing summary and the report paths")
    run.add_argument("--no-wait", action="store_true",
                     help="fail (exit 75) instead of waiting when another run of this matrix is running")
    run.add_argument("--no-witness", dest="witness", action="store_false",
                     help="do not re-run each finding with its standalone witness script at the end")
    run.set_defaults(func=cmd_run)

    show = verb("plan", "print the cells a matrix resolves to, then stop")
    show.add_argument("matrix", nargs="?", default="matrix.toml", type=Path, help=matrix_help)
    _offline(show)
    show.add_argument("--json", action="store_true",
                      help="print the plan as JSON (for a CI matrix; shape: $defs/plan of sandbox/report/cli.schema.json)")
    show.set_defaults(func=cmd_plan)

    _shard_parser(verb, "export", "shard: one cell's exports as a bundle (one CI job per cell)", cmd_export)
    ld = _shard_parser(verb, "load", "shard: one consumer cell's loads of every export bundle", cmd_load)
    ld.add_argument("--bundles", required=True, nargs="+", type=Path, help="export bundle folders (every cell's)")

    mg = verb("merge", "shard: the report of a run from its export and load bundles")
    mg.add_argument("bundles", nargs="+", type=Path, help="every export and load bundle folder of the run")
    mg.add_argument("--allow-incomplete", action="store_true",
                    help="publish a run that lacks bundles or loads, each cell concerned marked error (exit 1)")
    _reports(mg)
    mg.set_defaults(func=cmd_merge)

    wit = verb("witness", "re-run each finding of a report with its standalone witness script, in the consumer's "
                          "environment, and add the outcomes to the report (only the witnesses the store lacks run)")
    wit.add_argument("report", type=Path, help="a report folder (or its results.json)")
    wit.add_argument("--matrix", type=Path, help="the matrix the report was run from (default: the bundles', "
                                                 "else the one results.json names)")
    wit.add_argument("--bundles", nargs="+", type=Path, default=[], metavar="BUNDLE",
                     help="export bundles of a sharded run: their artifacts are what the witnesses load")
    _jobs(wit)
    _work_dir(wit)
    _offline(wit)
    wit.add_argument("--fresh", action="store_true", help="run every witness again, ignoring the results store")
    wit.set_defaults(func=cmd_witness)

    rep = verb("report", "re-render a report (index.md, index.html, junit.xml) from a results.json")
    rep.add_argument("results", type=Path, help="a results.json or a report folder")
    rep.add_argument("--out", type=Path, help="folder (default: beside results.json)")
    rep.set_defaults(func=cmd_report)

    chk = verb("check", "will a model load in other TF versions? (static, no environment; exit 1: it will fail somewhere)")
    chk.add_argument("model", type=Path, help="a SavedModel folder, a frozen GraphDef .pb, a .h5 / .keras or a .tflite file")
    chk.add_argument("--against", required=True, metavar="TARGETS",
                     help="tf==X[,tf==Y...], keras==X (.keras/.h5), ai-edge-litert==X or tflite-runtime==X (.tflite), "
                          "or 'all' (every stored registry that applies)")
    chk.add_argument("--max-model-size", type=mebibytes, default=protos.DEFAULT_MAX_BYTES / (1 << 20), metavar="MIB",
                     help="refuse larger model files, of every format (default: %(default).0f MiB)")
    chk.add_argument("--json", action="store_true", help="print the verdicts as JSON ($defs/check of cli.schema.json)")
    chk.set_defaults(func=cmd_check)

    regs = verb("registries", "list the stored op registries, or --build more")
    regs.add_argument("--build", nargs="+", metavar="VERSION",
                      help="provision these releases (2.16, or keras==3.5, ai-edge-litert==1.2, tflite-runtime==2.14) "
                           "and store their registries")
    regs.add_argument("--keras-backend", default=registries.REGISTRY_KERAS_BACKEND, choices=sorted(runtimes.BACKENDS),
                      help="the backend Keras registries are measured on (default: %(default)s)")
    regs.set_defaults(func=cmd_registries)

    rp = verb("repro", "load a user's model (or run their script) across TF versions")
    rp.add_argument("spec", type=Path, help="the repro spec (a TOML file: producer, consumers, expected error)")
    _jobs(rp)
    _work_dir(rp)
    _reports(rp)
    rp.add_argument("--json", action="store_true",
                    help="print the outcome per consumer and loader as JSON ($defs/repro of cli.schema.json)")
    rp.set_defaults(func=cmd_repro)

    bs = verb("bisect", "first TF release where a repro's outcome changes")
    bs.add_argument("spec", type=Path, help="the repro spec (its consumers' versions are bisected)")
    _work_dir(bs)
    bs.set_defaults(func=cmd_bisect)

    sh = verb("shell", "a shell inside a cell's environment")
    sh.add_argument("cell", help="a cell id as `sandbox plan` prints it, such as tf2.15.1-py3.11-cpu")
    sh.add_argument("--matrix", type=Path, default=Path("matrix.toml"), metavar="FILE",
                    help="find the cell in this matrix when it has it (default: matrix.toml)")
    _work_dir(sh)
    _offline(sh)
    sh.set_defaults(func=cmd_shell)

    dif = verb("diff", "what changed between two runs; exit 1 when something newly fails")
    dif.add_argument("old", type=Path, help="a results.json or a report folder")
    dif.add_argument("new", type=Path, help="a results.json or a report folder")
    dif.add_argument("--json", action="store_true", help="print the changes as JSON ($defs/diff of cli.schema.json)")
    dif.set_defaults(func=cmd_diff)

    py = verb("pythons", "list the Python interpreters found")
    py.add_argument("--json", action="store_true", help="print them as JSON ($defs/pythons of cli.schema.json)")
    py.add_argument("--install", metavar="MINOR", help="make this Python available (found, or installed with uv); "
                    "where uv has none, say so and exit 0: cells on it run in their matrix's python_image")
    py.set_defaults(func=cmd_pythons)

    pl = verb("pipeline", "a CI pipeline for a matrix's shards (an export and a load job per cell, then merge)")
    pl.add_argument("matrix", type=Path, help="the matrix file")
    which = pl.add_mutually_exclusive_group(required=True)
    which.add_argument("--gitlab", action="store_true", help="the child pipeline .gitlab-ci.yml triggers (JSON, which is YAML)")
    which.add_argument("--github", action="store_true", help="the job matrix of .github/workflows/matrix.yml (one line of JSON)")
    pl.add_argument("--propose", action="store_true",
                    help="with --gitlab: a last job proposes a changed report as a merge request (ci/propose.sh)")
    pl.add_argument("--docker-service", default=pipeline.DOCKER_SERVICE, metavar="IMAGE",
                    help="with --gitlab: the service that gives jobs of cells in images a Docker Engine "
                         "(default: %(default)s; '' on shell runners that have an engine of their own)")
    _offline(pl)
    pl.set_defaults(func=cmd_pipeline)
    for p in (run, mg, rep, rp, wit):  # the verbs that write a report
        p.add_argument("--no-redact", dest="redact", action="store_false",
                       help="keep host names and local paths in the report (redacted by default)")
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--jobs", type=jobs, default=runner.default_jobs(), metavar="N",
                   help="agents at once (exports and loads), at least 1 (default: the cores this process may use, "
                        f"fewer where memory is short: {runner.AGENT_MEMORY >> 30} GiB each; here %(default)s)")


def _work_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work-dir", type=Path, default=Path("runs"), metavar="DIR",
                   help="where runs keep scratch files and logs (default: runs)")


def _reports(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR",
                   help="where reports are written, one folder per matrix or spec name (default: reports)")


def _offline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offline", action="store_true",
                   help="use the cached release catalog only (no request to PyPI)")


def _shard_parser(verb: Callable[[str, str], argparse.ArgumentParser], name: str, text: str,
                  func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """The options `sandbox export` and `sandbox load` share."""
    parser = verb(name, text)
    parser.add_argument("matrix", type=Path, help="the matrix file")
    parser.add_argument("--cell", required=True, help="a cell id from `sandbox plan --json`")
    parser.add_argument("--out", required=True, type=Path, help="the bundle folder to write")
    _work_dir(parser)
    _offline(parser)
    parser.add_argument("--fresh", action="store_true", help="measure again what the results store has")
    parser.add_argument("--prune-store", action="store_true",
                        help="then remove from the results store every record this job did not use (a CI job's "
                             "own store, cached between runs; never the store other runs share)")
    parser.set_defaults(func=func)
    return parser


def _resolve(path: Path, offline: bool) -> tuple[matrix.Matrix, list[plan.Cell]]:
    mx = matrix.load(path)
    return mx, plan.plan(mx, versions.Catalog(offline=offline), pythons.discover())


def _plan(path: Path, offline: bool, quiet: bool = False) -> tuple[matrix.Matrix, list[plan.Cell]]:
    """The matrix and its cells, printed unless quiet."""
    mx, cells = _resolve(path, offline)
    if quiet:
        return mx, cells
    print(f"matrix {path} ({mx.name}): {len(cells)} cells, probes {', '.join(mx.probes)}; formats {', '.join(mx.formats)}")
    for cell in cells:
        if cell.skip:
            print(f"  {cell.id:28} skipped: {cell.skip}")
        else:
            later = "".join(f"; {p} as of {d[:10]}" for p, d in cell.package_dates)
            print(f"  {cell.id:28} {' '.join(cell.requirements)} on {cell.where}, deps as of {(cell.as_of or '?')[:10]}{later}")
    return mx, cells


def cmd_plan(args: argparse.Namespace) -> int:
    mx, cells = _plan(args.matrix, args.offline, quiet=args.json)
    if args.json:
        _print_json(shapes.plan(mx, cells))
    return 0


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
    mx, cells = _plan(args.matrix, args.offline)
    [cell] = _one_cell(mx, cells, args.cell)
    bundles.check_out(args.out)
    run_dir = args.work_dir / f"{mx.name}-export-{cell.id}"
    with locks.run_lock(run_dir, say=_say):
        with _display([cell.id]) as show:
            run = runner.Run(mx, [cell], run_dir, 1, show, fresh=args.fresh)
            [result] = run.run(export=True, loads=False)
        bundles.write_export(args.out, mx, result, [plan.cell_facts(c) for c in cells], cells.index(cell), run.store,
                             run.keys)
        if args.prune_store:
            run.store.retain(set(result.records()))
    print(f"{cell.id}: {result.state.status}{f' ({result.state.reason})' if result.state.reason else ''}; "
          f"{run.tally.line()}\nbundle: {args.out}")
    return _exit_code([result])


def cmd_load(args: argparse.Namespace) -> int:
    _check_prune(args)
    mx, cells = _plan(args.matrix, args.offline)
    [cell] = _one_cell(mx, cells, args.cell)
    bundles.check_out(args.out)
    exports = bundles.exports_for(bundles.read_all(args.bundles, mx), [c.id for c in cells])
    if cell.id not in exports:
        raise SandboxError(f"no export bundle of {cell.id} among --bundles: the consumer's own bundle says "
                           "whether it is healthy and holds its registry")
    run_dir = args.work_dir / f"{mx.name}-load-{cell.id}"
    with locks.run_lock(run_dir, say=_say):
        with _display([cell.id]) as show:
            run = runner.Run(mx, [cell], run_dir, 1, show, fresh=args.fresh, references=plan.references(cells))
            sources = [s for b in exports.values() for s in bundles.sources(b, run.store, run.keys)]
            [result] = run.loads_only(sources, {cell.id: bundles.export_result(exports[cell.id], run.keys)})
        bundles.write_loads(args.out, mx, result, list(exports.values()), sources, run.keys)
        if args.prune_store:  # the exports come in the export bundles every time: only the loads are worth keeping
            run.store.retain({r for r in result.records() if r[0] == "loads"})
    print(f"{cell.id}: {result.state.status}; {run.tally.line()}\nbundle: {args.out}")
    return _exit_code([result])


def _exit_code(results: list[CellResult]) -> int:
    """4 when sandbox's own code failed anywhere (a cell, an export, a load), 1 when a cell errored."""
    if any(r.state.status == HARNESS_ERROR or any(a.status.value == HARNESS_ERROR for _, a in r.artifacts)
           or any(l.status.value == HARNESS_ERROR for _, l in r.loads) for r in results):
        return HarnessError.exit_code
    return 1 if any(r.state.status == "error" for r in results) else 0


@contextmanager
def _display(cells: list[str], quiet: bool = False, verbose: bool = False, live: bool = True,
             start: float | None = None) -> Iterator[display.Display]:
    """The output layer of a run: live on a terminal, plain lines elsewhere."""
    mode = display.pick_mode(sys.stdout, quiet)
    with display.Display("plain" if mode == "live" and not live else mode, verbose, start=start) as show:
        show.begin(cells)
        yield show


def cmd_merge(args: argparse.Namespace) -> int:
    given = bundles.read_all(args.bundles)
    mx = bundles.the_matrix(given)
    results, gaps = shards.merge(given, mx, args.allow_incomplete)
    out = write_report(collect.collect(mx, results), args.reports / mx.name, args.redact)
    print(f"merged {len(given)} bundles: {len(results)} cells\n"
          f"report: {out / 'index.html'} {out / 'index.md'} {out / 'junit.xml'}\nresults: {out / 'results.json'}")
    for gap in gaps:
        print(f"sandbox: incomplete: {gap} (the cell is marked error in the report)", file=sys.stderr)
    if _exit_code(results) == HarnessError.exit_code:
        return HarnessError.exit_code
    return 1 if gaps else 0


def cmd_run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    mx, cells = _plan(args.matrix, args.offline, quiet=args.quiet)
    out = args.reports / mx.name
    check_writable(out)
    run_dir = args.work_dir / mx.name
    with locks.run_lock(run_dir, wait=not args.no_wait, say=_say):
        with _display([c.id for c in cells], args.quiet, args.verbose, start=start) as show:
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
    show.summary(display.closing_summary(found, tally, show.wall(), _outputs(out), verbose))
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
    with locks.run_lock(run_dir, say=_say):
        with _display([c.id for c in cells], start=start) as show:
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


def _outputs(out: Path) -> list[Path]:
    return [out / "index.html", out / "index.md", out / "junit.xml", out / document.RESULTS_FILE]


def cmd_report(args: argparse.Namespace) -> int:
    results = document.load(args.results)
    default = args.results if args.results.is_dir() else args.results.parent
    start = time.monotonic()
    out = write_report(results, args.out or default, args.redact)
    print(f"report: {out / 'index.html'} {out / 'index.md'} {out / 'junit.xml'} "
          f"({time.monotonic() - start:.2f}s)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    verdicts, what, reads = _check_model(args.model, int(args.max_model_size * (1 << 20)))
    wanted = _targets(args.against, reads)
    rows, found = [], []
    for runtime, target in wanted:
        version, registry = registries.load(target, runtime)
        if runtime == registries.TENSORFLOW and target.count(".") == 2 and target != version:
            print(f"sandbox: note: tf=={target}: no op registry of that release is stored; checking against "
                  f"{version}, the stored release of {version.rsplit('.', 1)[0]}", file=sys.stderr)
        for verdict in verdicts(registry, version, runtime):
            found.append(verdict)
            rows.append([f"{'tf' if runtime == registries.TENSORFLOW else runtime}=={version}", verdict.loader,
                         verdict.verdict, ", ".join(verdict.missing_ops), ", ".join(verdict.unknown_attrs),
                         "; ".join(verdict.ignored_ops + verdict.ignored_attrs + verdict.reasons)])
    failing = sum(v.verdict == check.WILL_FAIL for v in found)
    if args.json:
        _print_json(shapes.check(args.model, what, found))
        return 1 if failing else 0
    print(f"{args.model}: {what}")
    print(tabulate(rows, ["target", "loader", "verdict", "missing ops", "unknown attrs", "tolerated / why"]))
    return 1 if failing else 0


def _targets(against: str, reads: tuple[str, ...]) -> list[tuple[str, str]]:
    """(runtime, version) of each target of --against; "all": every stored
    registry of TF and of the runtimes that read this kind of model (`reads`)."""
    if against.strip() == "all":
        return [(r, v) for r in (registries.TENSORFLOW, *reads) for v in registries.known(r)]
    wanted = [registries.split_target(t) for t in against.split(",") if t.strip()]
    if not wanted:
        raise SandboxError(f"--against '{against}' names no TF version: give tf==X[,tf==Y...] or 'all'")
    for runtime, version in wanted:
        if runtime != registries.TENSORFLOW and runtime not in reads:
            raise SandboxError(f"--against {runtime}=={version}: {runtime} reads no such model "
                               f"(it reads {', '.join(_READS[runtime])})")
    return wanted


# What each runtime beside TF reads, for `check` (the agent's catalog has its loaders).
_READS = {"keras": ".keras and .h5 files", "ai-edge-litert": ".tflite files", "tflite-runtime": ".tflite files"}


def _check_model(path: Path, max_bytes: int = protos.DEFAULT_MAX_BYTES) -> tuple[Any, str, tuple[str, ...]]:
    """(registry, target, runtime -> verdicts per loader; a description of the
    model; the runtimes besides TF that read it)."""
    if not path.exists():
        raise SandboxError(f"{path}: no such file or folder")
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        raise SandboxError(f"{path}: a folder without saved_model.pb, so not a SavedModel; give a SavedModel "
                           "folder, a frozen graph .pb, a .h5 / .keras or a .tflite file")
    if path.suffix in (".keras", ".h5", ".hdf5"):
        info = kerasinfo.read(path, max_bytes)
        if info.code:
            print(f"sandbox: warning: {path}: its config holds {', '.join(info.code)}: loading it can run that code "
                  "(Keras 2 does even with safe_mode=True for .h5; sandbox refuses it in safe mode, in every Keras)",
                  file=sys.stderr)
        return (lambda reg, v, rt: [check.keras_check(info, reg, v, rt)],
                f"{info.format} written by Keras {info.keras_version or '?'}, layers {', '.join(info.layers)}"
                + (f"; carries code: {', '.join(info.code)}" if info.code else ""), ("keras",))
    if path.suffix == ".tflite":
        ops = _tflite_ops(path, max_bytes)
        return (lambda reg, v, rt: [check.tflite(ops, reg, v, rt)],
                "TFLite flatbuffer with " + ", ".join(f"{op} v{n}" for op, n in sorted(ops.items())),
                ("ai-edge-litert", "tflite-runtime"))
    model = protos.read_model(path, max_bytes=max_bytes)
    for warning in model.warnings:
        print(f"sandbox: warning: {path}: {warning}", file=sys.stderr)
    keras = check.keras_metadata((path / "saved_model.pb").read_bytes(), (path / "keras_metadata.pb").exists()) \
        if model.kind == "saved_model" and path.is_dir() else None
    produced = f", written by TF {model.tensorflow}" if model.tensorflow else ""
    kind = "Keras SavedModel" if keras else model.kind
    return (lambda reg, v, rt: check.check_all(model, reg, v, keras), f"{kind} with {len(model.ops)} ops{produced}", ())


def _tflite_ops(path: Path, max_bytes: int) -> dict[str, int]:
    from sandbox.agent import tfliteinfo

    protos.check_size(path, path.stat().st_size, max_bytes)
    try:
        found: dict[str, int] = tfliteinfo.describe(str(path))["tflite_ops"]
    except (OSError, ValueError, struct.error, IndexError, TypeError, OverflowError, RecursionError) as exc:
        raise SandboxError(f"{path}: not a readable TFLite flatbuffer: {str(exc)[:200]}") from None
    return found


def cmd_registries(args: argparse.Namespace) -> int:
    if args.build:
        with _display([], verbose=True, live=False) as show:
            registries.build(args.build, show, args.keras_backend)
    known = registries.known()
    print(f"{len(known)} stored op registries: {', '.join(p.name[2:-8] for p in known.values())}")
    for runtime in registries.PACKAGES:
        found = registries.known(runtime)
        if found:
            print(f"{len(found)} {runtime} registries: {', '.join(p.name[:-8] for p in found.values())}")
    return 0


UNSAFE = ("warning: the venv backend runs the reporter's script and model on this host, unconfined; "
          "use backend = \"docker\" for untrusted input")


def _start_repro(args: argparse.Namespace, suffix: str) -> tuple[
        repro.Spec, versions.Catalog, pythons.Discovery, Path]:
    """What repro and bisect share: the spec, the safety warning."""
    spec = repro.load_spec(args.spec)
    catalog, found = versions.Catalog(), pythons.discover()
    repro.consumer_versions(spec, catalog)  # no release in the range: say so before the reporter's script runs
    if getattr(args, "reports", None):
        check_writable(args.reports / spec.name)
    run_dir = args.work_dir / f"{spec.name}{suffix}"
    if repro.unconfined(spec):
        print(UNSAFE, file=sys.stderr)
    return spec, catalog, found, run_dir


def cmd_repro(args: argparse.Namespace) -> int:
    with _display([], quiet=args.json, live=False) as show:
        return _repro(args, show)


def _repro(args: argparse.Namespace, progress: display.Display) -> int:
    spec, catalog, found, run_dir = _start_repro(args, "")
    if repro.producer_versions(spec, catalog):
        raise SandboxError(f"{spec.path}: key 'producer.tensorflow': a range of producers is for `sandbox bisect`; "
                           "repro wants one version")
    producer = repro.prepare_producer(spec, run_dir, catalog, found, progress)
    cells = repro.plan_cells(spec, repro.consumer_versions(spec, catalog), catalog, found, spec.name)
    for cell in cells if not args.json else []:
        print(f"  consumer {cell.id:26} " + (f"skipped: {cell.skip}" if cell.skip else " ".join(cell.requirements)))
    results = repro.run_consumers(spec, cells, run_dir, producer, args.jobs, progress)
    out = write_report(results, args.reports / spec.name, args.redact)
    if results.healthy:
        repro.require_loader(results, spec)
    if args.json:
        _print_json(shapes.repro(spec, results, _outputs(out)))
        return 0
    headers = ["consumer", "loader", "outcome", "class", "named in the error", "all missing (static)", "reproduced"]
    print("\n" + tabulate(repro.summary_rows(results, spec), headers if spec.expect_error else headers[:-1]))
    skipped = [c for c in results.cells if not c.ran]
    for row in skipped:
        print(f"  {row.id}: {row.status.value} ({row.reason})")
    print(f"report: {out / 'index.md'}")
    return HarnessError.exit_code if any(l.status.harness for l in results.loads) else 0


def cmd_bisect(args: argparse.Namespace) -> int:
    with _display([], live=False) as show:
        return _bisect_with(args, show)


def _bisect_with(args: argparse.Namespace, progress: display.Display) -> int:
    """Over consumers (one producer, a range of consumers), or over producers
    (a script's producer.tensorflow is a range; one consumer)."""
    spec, catalog, found, run_dir = _start_repro(args, "-bisect")
    producers = repro.producer_versions(spec, catalog)
    if producers is None:
        producer = repro.prepare_producer(spec, run_dir, catalog, found, progress)
        planned = repro.plan_cells(spec, repro.consumer_versions(spec, catalog, every_patch=True), catalog, found,
                                   spec.name)
        cells = {str(c.tensorflow): c for c in planned if not c.skip}

        def evaluate(version: str) -> str:
            cell = cells[version]
            word = repro.consumer_outcome(repro.run_consumers(spec, [cell], run_dir / cell.id, producer, 1, progress),
                                          spec)
            print(f"  {cell.id:26} {word}", flush=True)
            return word
        _bisect(list(cells), "releases", evaluate)
        return 0
    consumers = [c for c in repro.plan_cells(spec, repro.consumer_versions(spec, catalog), catalog, found, spec.name)
                 if not c.skip]
    if len(consumers) != 1:
        raise SandboxError(f"{spec.path}: key 'consumers.tensorflow': bisecting producers wants one consumer, "
                           f"got {len(consumers)} ({', '.join(c.id for c in consumers) or 'none runnable'})")

    def evaluate_producer(version: str) -> str:
        pinned = repro.at_producer(spec, version)
        try:
            producer = repro.prepare_producer(pinned, run_dir / f"producer-{version}", catalog, found, progress)
        except SandboxError as exc:  # the script fails in this release: an outcome, not an abort
            print(f"  producer {version:17} export fails: {exc}", flush=True)
            return "export fails"
        word = repro.consumer_outcome(repro.run_consumers(pinned, consumers, run_dir / f"producer-{version}",
                                                          producer, 1, progress), spec)
        print(f"  producer {version:17} {word} in {consumers[0].id}", flush=True)
        return word
    _bisect(producers, "producer releases", evaluate_producer)
    return 0


def _bisect(order: list[str], what: str, evaluate: Any) -> None:
    print(f"bisecting {len(order)} {what} ({order[0]} .. {order[-1]}); at most {bisect.bound(len(order))} environments")
    found_at = bisect.bisect(order, evaluate)
    path = " -> ".join(f"{v} ({o})" for v, o in found_at.path)
    print(f"path: {path}")
    if found_at.first_changed is None:
        print(f"no change: every release from {order[0]} to {order[-1]} gives '{found_at.path[0][1]}'")
    else:
        before = dict(found_at.path)
        print(f"first change: {found_at.first_changed} ('{before[found_at.first_changed]}'; "
              f"{found_at.last_unchanged} gives '{before[str(found_at.last_unchanged)]}') "
              f"after {found_at.evaluations} environments")


def cmd_shell(args: argparse.Namespace) -> int:
    from sandbox.envs import environment, provision

    cell = shell_cell(args.cell, args.matrix, versions.Catalog(offline=args.offline), pythons.discover())
    env = environment(cell)
    info = provision(env, args.work_dir / "shell.log", lambda event: None)  # its one line below says where
    if cell.backend == "docker":
        return _docker_shell(cell, info.location.removeprefix("docker:") or getattr(env, "image", ""))
    folder = Path(info.location)
    print(f"{cell.id}: {' '.join(cell.requirements)} in {folder}; artifacts of earlier runs are under {args.work_dir}/")
    shell = os.environ.get("SHELL", "/bin/sh")
    os.execve(shell, [shell], {**os.environ, "VIRTUAL_ENV": str(folder),
                               "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                               "PS1": f"({cell.id}) $ "})
    return 0  # not reached


_CELL_ID = re.compile(r"^tf(?P<tensorflow>[0-9][^-+]*)-py(?P<python>[^-+]+)-(?P<image>[^-+]+)(?P<docker>-docker)?"
                      r"(?P<packages>(?:\+[A-Za-z0-9][A-Za-z0-9._-]*)*)$")


def shell_cell(cell_id: str, matrix_path: Path, catalog: plan.Releases, found: pythons.Discovery) -> plan.Cell:
    """The cell of `sandbox plan`'s id: from the matrix, when it has a cell of
    that id (its packages as pinned there); else made from the id itself
    (venv or docker, extra packages by name)."""
    cells = plan.plan(matrix.load(matrix_path), catalog, found) if matrix_path.is_file() else []
    cell = next((c for c in cells if c.id == cell_id), None)
    if cell is None:
        parsed = _CELL_ID.match(cell_id)
        if parsed is None:
            raise SandboxError(f"'{cell_id}' is not a cell id like tf2.15.1-py3.11-cpu, tf2.18.1-py3.11-cpu+tf-keras "
                               "or tf2.15.1-py3.11-cpu-docker (sandbox plan lists them)")
        data: dict[str, Any] = {k: parsed.group(k) for k in ("tensorflow", "python", "image")}
        data.update(backend="docker" if parsed.group("docker") else "venv",
                    packages=[p for p in parsed.group("packages").split("+") if p])
        [cell] = plan.plan(matrix.parse(data, Path(cell_id)), catalog, found)
    if cell.skip:
        raise SandboxError(f"{cell_id}: {cell.skip}")
    return cell


def _docker_shell(cell: plan.Cell, image: str) -> int:
    """A shell in a container of the cell's image: no network, as its agent runs."""
    docker = shutil.which("docker")
    command = ["docker", "run", "--rm", "-it", "--network", "none", image, "sh"]
    if docker is None:
        raise SandboxError(f"{cell.id}: the docker command-line client is not installed; its image is ready: "
                           f"{' '.join(command)}")
    print(f"{cell.id}: {' '.join(cell.requirements)} in the image {image}")
    os.execv(docker, command)
    return 0  # not reached


def cmd_diff(args: argparse.Namespace) -> int:
    old, new = document.load(args.old), document.load(args.new)
    changes = diff.diff(old, new)
    if args.json:
        _print_json(shapes.diff(args.old, args.new, changes, diff.gates(changes)))
    else:
        print(diff.render(changes))
    return 1 if diff.gates(changes) else 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    mx, cells = _plan(args.matrix, args.offline, quiet=True)
    planned = shapes.plan(mx, cells)
    installable = pythons.uv_downloads()
    if args.gitlab:
        _print_json(pipeline.gitlab(planned, installable, args.propose, args.docker_service))
    else:
        print(json.dumps(pipeline.github(planned, installable), separators=(",", ":")))
    return 0


def cmd_pythons(args: argparse.Namespace) -> int:
    if args.install:
        _, message = pythons.install(args.install)
        print(message)
        return 0
    found = pythons.discover()
    if args.json:
        _print_json(shapes.pythons(found))
        return 0
    for minor, interp in sorted(found.interpreters.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))):
        print(f"{minor:5} {interp.full:8} {interp.source:6} {interp.path}")
    print(f"searched: {', '.join(found.searched)}")
    return 0


def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=1))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
