"""The command line. The only place that prints results and turns errors
into one-line messages and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from tabulate import tabulate

from sandbox import (
    __version__,
    bisect,
    check,
    collect,
    envs,
    kerasinfo,
    locks,
    matrix,
    plan,
    protos,
    pythons,
    registries,
    repro,
    runner,
    shards,
    versions,
)
from sandbox.errors import Interrupted, SandboxError
from sandbox.report import diff, document
from sandbox.report.publish import check_writable, write_report

_print_lock = threading.Lock()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with _stop_on_signals() as caught:
        try:
            return int(args.func(args) or 0)
        except Interrupted:
            return _stopped(caught[0] if caught else signal.SIGINT)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sandbox", description="Map TensorFlow's cross-version model compatibility.")
    parser.add_argument("--version", action="version", version=f"sandbox {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a matrix and write its report")
    run.add_argument("matrix", nargs="?", default="matrix.toml", type=Path)
    run.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="cells at once (default: cores)")
    run.add_argument("--work-dir", type=Path, default=Path("runs"), help="where runs keep artifacts and logs")
    run.add_argument("--reports", type=Path, default=Path("reports"), help="where reports are written")
    run.add_argument("--fresh", action="store_true",
                     help="measure everything again, ignoring the results store (it is updated)")
    run.add_argument("--offline", action="store_true", help="use the cached release catalog only")
    run.add_argument("-v", "--verbose", action="store_true", help="print every result, not only failures")
    run.add_argument("--no-wait", action="store_true",
                     help="fail (exit 75) instead of waiting when another run of this matrix is running")
    run.set_defaults(func=cmd_run)

    show = sub.add_parser("plan", help="print the cells a matrix resolves to, then stop")
    show.add_argument("matrix", nargs="?", default="matrix.toml", type=Path)
    show.add_argument("--offline", action="store_true", help="use the cached release catalog only")
    show.add_argument("--json", action="store_true",
                      help="print the cells as JSON (for a CI matrix: ids, versions, image, backend, skip reason)")
    show.set_defaults(func=cmd_plan)

    exp = _shard_parser(sub, "export", "shard: one cell's exports as a bundle (one CI job per cell)", cmd_export)
    ld = _shard_parser(sub, "load", "shard: one consumer cell's loads of every export bundle", cmd_load)
    ld.add_argument("--bundles", required=True, nargs="+", type=Path, help="export bundle folders (every cell's)")

    mg = sub.add_parser("merge", help="shard: the report of a run from its export and load bundles")
    mg.add_argument("bundles", nargs="+", type=Path, help="every export and load bundle folder of the run")
    mg.add_argument("--reports", type=Path, default=Path("reports"), help="where reports are written")
    mg.set_defaults(func=cmd_merge)

    rep = sub.add_parser("report", help="re-render a report (index.md, index.html, junit.xml) from a results.json")
    rep.add_argument("results", type=Path, help="a results.json or a report folder")
    rep.add_argument("--out", type=Path, help="folder (default: beside results.json)")
    rep.set_defaults(func=cmd_report)

    chk = sub.add_parser("check", help="will a model load in other TF versions? (static, no environment)")
    chk.add_argument("model", type=Path, help="a SavedModel folder, a frozen GraphDef .pb, a .h5 / .keras or a .tflite file")
    chk.add_argument("--against", required=True, help="tf==X[,tf==Y...] or 'all'")
    chk.add_argument("--max-model-size", type=float, default=protos.DEFAULT_MAX_BYTES / (1 << 20), metavar="MIB",
                     help="refuse larger model files (default: %(default).0f MiB)")
    chk.set_defaults(func=cmd_check)

    regs = sub.add_parser("registries", help="list the stored op registries, or --build more")
    regs.add_argument("--build", nargs="+", metavar="VERSION", help="provision these TF releases and store their registries")
    regs.set_defaults(func=cmd_registries)

    rp = sub.add_parser("repro", help="load a user's model (or run their script) across TF versions")
    rp.add_argument("spec", type=Path)
    rp.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    rp.add_argument("--work-dir", type=Path, default=Path("runs"))
    rp.add_argument("--reports", type=Path, default=Path("reports"))
    rp.set_defaults(func=cmd_repro)

    bs = sub.add_parser("bisect", help="first TF release where a repro's outcome changes")
    bs.add_argument("spec", type=Path)
    bs.add_argument("--work-dir", type=Path, default=Path("runs"))
    bs.set_defaults(func=cmd_bisect)

    sh = sub.add_parser("shell", help="a shell inside a cell's environment")
    sh.add_argument("cell", help="a cell id such as tf2.15.1-py3.11-cpu")
    sh.add_argument("--work-dir", type=Path, default=Path("runs"))
    sh.set_defaults(func=cmd_shell)

    dif = sub.add_parser("diff", help="what changed between two runs; exit 1 when something newly fails")
    dif.add_argument("old", type=Path, help="a results.json or a report folder")
    dif.add_argument("new", type=Path, help="a results.json or a report folder")
    dif.set_defaults(func=cmd_diff)

    py = sub.add_parser("pythons", help="list the Python interpreters found")
    py.set_defaults(func=cmd_pythons)
    for p in (run, mg, rep, rp):  # the verbs that write a report
        p.add_argument("--no-redact", dest="redact", action="store_false",
                       help="keep host names and local paths in the report (redacted by default)")
    for p in (run, show, exp, ld, mg, rep, chk, regs, rp, bs, sh, dif, py):
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _shard_parser(sub: Any, verb: str, text: str, func: Any) -> argparse.ArgumentParser:
    """The options `sandbox export` and `sandbox load` share."""
    parser: argparse.ArgumentParser = sub.add_parser(verb, help=text)
    parser.add_argument("matrix", type=Path)
    parser.add_argument("--cell", required=True, help="a cell id from `sandbox plan --json`")
    parser.add_argument("--out", required=True, type=Path, help="the bundle folder to write")
    parser.add_argument("--work-dir", type=Path, default=Path("runs"), help="where runs keep scratch files and logs")
    parser.add_argument("--offline", action="store_true", help="use the cached release catalog only")
    parser.add_argument("--fresh", action="store_true", help="measure again what the results store has")
    parser.set_defaults(func=func)
    return parser


def _plan(path: Path, offline: bool, quiet: bool = False) -> tuple[matrix.Matrix, list[plan.Cell]]:
    mx = matrix.load(path)
    cells = plan.plan(mx, versions.Catalog(offline=offline), pythons.discover())
    if quiet:
        return mx, cells
    print(f"matrix {path} ({mx.name}): {len(cells)} cells, probes {', '.join(mx.probes)}; formats {', '.join(mx.formats)}")
    for cell in cells:
        if cell.skip:
            print(f"  {cell.id:28} skipped: {cell.skip}")
        else:
            assert cell.release
            print(f"  {cell.id:28} {' '.join(cell.requirements)} on {cell.where}, deps as of {cell.release.exclude_newer[:10]}")
    return mx, cells


def cmd_plan(args: argparse.Namespace) -> int:
    mx, cells = _plan(args.matrix, args.offline, quiet=args.json)
    if args.json:
        rows = [{"id": c.id, "tensorflow": c.tensorflow or c.request.tensorflow, "python": c.python_version,
                 "image": c.image, "backend": c.backend, "packages": list(c.request.packages), "skip": c.skip,
                 "requirements": list(c.requirements), "install_args": list(c.install_args),
                 "python_path": str(c.python.path) if c.python else None} for c in cells]
        print(json.dumps({"matrix": str(mx.path), "name": mx.name, "probes": list(mx.probes),
                          "formats": list(mx.formats), "cells": rows}, indent=1))
    return 0


def _one_cell(mx: matrix.Matrix, cells: list[plan.Cell], cell_id: str) -> list[plan.Cell]:
    found = [c for c in cells if c.id == cell_id]
    if not found:
        raise SandboxError(f"{mx.path}: no cell '{cell_id}' in this matrix (it has: {', '.join(c.id for c in cells)})")
    return found


def cmd_export(args: argparse.Namespace) -> int:
    mx, cells = _plan(args.matrix, args.offline)
    [cell] = _one_cell(mx, cells, args.cell)
    run_dir = args.work_dir / f"{mx.name}-export-{cell.id}"
    with locks.run_lock(run_dir, say=_say):
        run = runner.Run(mx, [cell], run_dir, 1, _Progress(verbose=False), fresh=args.fresh)
        [result] = run.run(export=True, loads=False)
        shards.write_export(args.out, mx, result, cells.index(cell), run.store)
    print(f"{cell.id}: {result.state.status}{f' ({result.state.reason})' if result.state.reason else ''}; "
          f"{run.tally.line()}\nbundle: {args.out}")
    return 1 if result.state.status == "error" else 0


def cmd_load(args: argparse.Namespace) -> int:
    mx, cells = _plan(args.matrix, args.offline)
    [cell] = _one_cell(mx, cells, args.cell)
    bundles = shards.read_all(args.bundles, mx)
    exports = {b.cell: b for b in bundles if b.kind == "export"}
    if cell.id not in exports:
        raise SandboxError(f"no export bundle of {cell.id} among --bundles: the consumer's own bundle says "
                           "whether it is healthy and holds its registry")
    run_dir = args.work_dir / f"{mx.name}-load-{cell.id}"
    with locks.run_lock(run_dir, say=_say):
        run = runner.Run(mx, [cell], run_dir, 1, _Progress(verbose=False), fresh=args.fresh)
        sources = [s for b in exports.values() for s in shards.sources(b, run.store)]
        [result] = run.loads_only(sources, {cell.id: shards.export_result(exports[cell.id])})
        shards.write_loads(args.out, mx, result, run.store)
    print(f"{cell.id}: {result.state.status}; {run.tally.line()}\nbundle: {args.out}")
    return 1 if result.state.status == "error" else 0


def cmd_merge(args: argparse.Namespace) -> int:
    bundles = shards.read_all(args.bundles)
    mx = shards.the_matrix(bundles)
    results = shards.merge(bundles)
    out = write_report(collect.collect(mx, results), args.reports / mx.name, args.redact)
    print(f"merged {len(bundles)} bundles: {len(results)} cells\n"
          f"report: {out / 'index.html'} {out / 'index.md'} {out / 'junit.xml'}\nresults: {out / 'results.json'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    mx, cells = _plan(args.matrix, args.offline)
    check_writable(args.reports / mx.name)
    progress = _Progress(verbose=args.verbose)
    run_dir = args.work_dir / mx.name
    with locks.run_lock(run_dir, wait=not args.no_wait, say=_say):
        run = runner.Run(mx, cells, run_dir, args.jobs, progress, fresh=args.fresh)
        results = run.run()
        out = write_report(collect.collect(mx, results), args.reports / mx.name, args.redact)
    print(f"\n{len(cells)} cells in {time.monotonic() - start:.0f}s; {run.tally.line()}:")
    for result in results:
        state = result.state
        print(f"  {state.id}: {state.status}" + (f" ({state.reason})" if state.reason else ""))
    print(f"report: {out / 'index.html'} {out / 'index.md'} {out / 'junit.xml'}\nresults: {out / 'results.json'}")
    return 1 if any(r.state.status == "error" for r in results) else 0


def cmd_report(args: argparse.Namespace) -> int:
    results = document.load(args.results)
    default = args.results if args.results.is_dir() else args.results.parent
    start = time.monotonic()
    out = write_report(results, args.out or default, args.redact)
    print(f"report: {out / 'index.html'} {out / 'index.md'} {out / 'junit.xml'} "
          f"({time.monotonic() - start:.2f}s)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    verdicts, what = _check_model(args.model, int(args.max_model_size * (1 << 20)))
    wanted = list(registries.known()) if args.against.strip() == "all" else \
        [registries.parse_target(t) for t in args.against.split(",") if t.strip()]
    rows, failing = [], 0
    for target in wanted:
        version, registry = registries.load(target)
        for verdict in verdicts(registry, version):
            failing += verdict.verdict == check.WILL_FAIL
            rows.append([f"tf=={version}", verdict.loader, verdict.verdict, ", ".join(verdict.missing_ops),
                         ", ".join(verdict.unknown_attrs),
                         "; ".join(verdict.ignored_ops + verdict.ignored_attrs + verdict.reasons)])
    print(f"{args.model}: {what}")
    print(tabulate(rows, ["target", "loader", "verdict", "missing ops", "unknown attrs", "tolerated / why"]))
    return 1 if failing else 0


def _check_model(path: Path, max_bytes: int | None = None) -> tuple[Any, str]:
    """(registry, target -> verdicts per loader; a description of the model)."""
    if path.suffix in (".keras", ".h5", ".hdf5"):
        info = kerasinfo.read(path)
        return (lambda reg, v: [check.keras_check(info, reg, v)],
                f"{info.format} written by Keras {info.keras_version or '?'}, layers {', '.join(info.layers)}")
    if path.suffix == ".tflite":
        ops = _tflite_ops(path)
        return (lambda reg, v: [check.tflite(ops, reg, v)],
                "TFLite flatbuffer with " + ", ".join(f"{op} v{n}" for op, n in sorted(ops.items())))
    model = protos.read_model(path, max_bytes=max_bytes) if max_bytes else protos.read_model(path)
    for warning in model.warnings:
        print(f"sandbox: warning: {path}: {warning}", file=sys.stderr)
    keras = check.keras_metadata((path / "saved_model.pb").read_bytes(), (path / "keras_metadata.pb").exists()) \
        if model.kind == "saved_model" and path.is_dir() else None
    produced = f", written by TF {model.tensorflow}" if model.tensorflow else ""
    kind = "Keras SavedModel" if keras else model.kind
    return (lambda reg, v: check.check_all(model, reg, v, keras), f"{kind} with {len(model.ops)} ops{produced}")


def _tflite_ops(path: Path) -> dict[str, int]:
    from sandbox.agent import tfliteinfo

    try:
        found: dict[str, int] = tfliteinfo.describe(str(path))["tflite_ops"]
    except (OSError, struct.error, IndexError, UnicodeDecodeError) as exc:
        raise SandboxError(f"{path}: not a readable TFLite flatbuffer: {exc}") from None
    return found


def cmd_registries(args: argparse.Namespace) -> int:
    if args.build:
        registries.build(args.build, _Progress(verbose=True))
    known = registries.known()
    print(f"{len(known)} stored op registries: {', '.join(p.name[2:-8] for p in known.values())}")
    return 0


UNSAFE = ("warning: the venv backend runs the reporter's script and model on this host, unconfined; "
          "use backend = \"docker\" for untrusted input")


def _start_repro(args: argparse.Namespace, suffix: str) -> tuple[
        repro.Spec, versions.Catalog, pythons.Discovery, _Progress, Path]:
    """What repro and bisect share: the spec, the safety warning."""
    spec = repro.load_spec(args.spec)
    catalog, found = versions.Catalog(), pythons.discover()
    repro.consumer_versions(spec, catalog)  # no release in the range: say so before the reporter's script runs
    if getattr(args, "reports", None):
        check_writable(args.reports / spec.name)
    run_dir = args.work_dir / f"{spec.name}{suffix}"
    if repro.unconfined(spec):
        print(UNSAFE, file=sys.stderr)
    return spec, catalog, found, _Progress(verbose=False), run_dir


def cmd_repro(args: argparse.Namespace) -> int:
    spec, catalog, found, progress, run_dir = _start_repro(args, "")
    if repro.producer_versions(spec, catalog):
        raise SandboxError(f"{spec.path}: key 'producer.tensorflow': a range of producers is for `sandbox bisect`; "
                           "repro wants one version")
    producer = repro.prepare_producer(spec, run_dir, catalog, found, progress)
    cells = repro.plan_cells(spec, repro.consumer_versions(spec, catalog), catalog, found, spec.name)
    for cell in cells:
        print(f"  consumer {cell.id:26} " + (f"skipped: {cell.skip}" if cell.skip else " ".join(cell.requirements)))
    results = repro.run_consumers(spec, cells, run_dir, producer, args.jobs, progress)
    out = write_report(results, args.reports / spec.name, args.redact)
    if any(c["status"] == "ok" for c in results["cells"]):
        repro.require_loader(results, spec)
    headers = ["consumer", "loader", "outcome", "class", "named in the error", "all missing (static)", "reproduced"]
    print("\n" + tabulate(repro.summary_rows(results, spec), headers if spec.expect_error else headers[:-1]))
    skipped = [c for c in results["cells"] if c["status"] != "ok"]
    for cell in skipped:
        print(f"  {cell['id']}: {cell['status']} ({cell['reason']})")
    print(f"report: {out / 'index.md'}")
    return 0


def cmd_bisect(args: argparse.Namespace) -> int:
    """Over consumers (one producer, a range of consumers), or over producers
    (a script's producer.tensorflow is a range; one consumer)."""
    spec, catalog, found, progress, run_dir = _start_repro(args, "-bisect")
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
    from sandbox.envs import environment

    cell = shell_cell(args.cell)
    env = environment(cell)
    info = env.provision(args.work_dir / "shell.log")
    folder = Path(info.location)
    print(f"{cell.id}: {' '.join(cell.requirements)} in {folder}; artifacts of earlier runs are under {args.work_dir}/")
    shell = os.environ.get("SHELL", "/bin/sh")
    os.execve(shell, [shell], {**os.environ, "VIRTUAL_ENV": str(folder),
                               "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                               "PS1": f"({cell.id}) $ "})
    return 0  # not reached


def shell_cell(cell_id: str) -> plan.Cell:
    parts = cell_id.split("-")
    if len(parts) != 3 or not parts[0].startswith("tf") or not parts[1].startswith("py"):
        raise SandboxError(f"'{cell_id}' is not a venv cell id like tf2.15.1-py3.11-cpu")
    data = {"tensorflow": parts[0][2:], "python": parts[1][2:], "image": parts[2]}
    [cell] = plan.plan(matrix.parse(data, Path(cell_id)), versions.Catalog(), pythons.discover())
    if cell.skip:
        raise SandboxError(f"{cell_id}: {cell.skip}")
    return cell


def cmd_diff(args: argparse.Namespace) -> int:
    old, new = document.load(args.old), document.load(args.new)
    changes = diff.diff(old, new)
    print(diff.render(changes))
    return 1 if diff.gates(changes) else 0


def cmd_pythons(args: argparse.Namespace) -> int:
    found = pythons.discover()
    for minor, interp in sorted(found.interpreters.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))):
        print(f"{minor:5} {interp.full:8} {interp.source:6} {interp.path}")
    print(f"searched: {', '.join(found.searched)}")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Progress:
    """Prints what each cell is doing, one line per step, safe across threads."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.start = time.monotonic()

    def __call__(self, cell: str, phase: str, message: str) -> None:
        if not self.verbose and phase == "load" and message.endswith((": ok", ": not-applicable")):
            return
        elapsed = time.monotonic() - self.start
        with _print_lock:
            print(f"[{elapsed:6.0f}s] {cell:28} {phase:9} {message}", flush=True)
