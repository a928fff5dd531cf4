"""`sandbox repro` and `sandbox bisect`: a user's model (or script) across
releases, and the first release where its outcome changes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

from sandbox import bisect, display, pythons, repro, shapes, versions
from sandbox.cli import output
from sandbox.errors import HarnessError, SandboxError
from sandbox.report.publish import check_writable, write_report

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
    with output.progress([], quiet=args.json, live=False) as show:
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
        output.print_json(shapes.repro(spec, results, output.outputs(out)))
        return 0
    headers = ["consumer", "loader", "outcome", "class", "named in the error", "all missing (static)", "reproduced"]
    print("\n" + tabulate(repro.summary_rows(results, spec), headers if spec.expect_error else headers[:-1]))
    skipped = [c for c in results.cells if not c.ran]
    for row in skipped:
        print(f"  {row.id}: {row.status.value} ({row.reason})")
    print(f"report: {out / 'index.md'}")
    return HarnessError.exit_code if any(l.status.harness for l in results.loads) else 0


def cmd_bisect(args: argparse.Namespace) -> int:
    with output.progress([], live=False) as show:
        return _bisect_with(args, show)


def _bisect_with(args: argparse.Namespace, progress: display.Display) -> int:
    """Over consumers (one producer, a range of consumers), or over producers
    (a script's producer.tensorflow is a range; one consumer)."""
    spec, catalog, found, run_dir = _start_repro(args, "-bisect")
    producers = repro.producer_versions(spec, catalog)
    if producers is None:
        _bisect_consumers(spec, catalog, found, run_dir, progress)
    else:
        _bisect_producers(spec, producers, catalog, found, run_dir, progress)
    return 0


def _bisect_consumers(spec: repro.Spec, catalog: versions.Catalog, found: pythons.Discovery, run_dir: Path,
                      progress: display.Display) -> None:
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


def _bisect_producers(spec: repro.Spec, producers: list[str], catalog: versions.Catalog, found: pythons.Discovery,
                      run_dir: Path, progress: display.Display) -> None:
    consumers = [c for c in repro.plan_cells(spec, repro.consumer_versions(spec, catalog), catalog, found, spec.name)
                 if not c.skip]
    if len(consumers) != 1:
        raise SandboxError(f"{spec.path}: key 'consumers.tensorflow': bisecting producers wants one consumer, "
                           f"got {len(consumers)} ({', '.join(c.id for c in consumers) or 'none runnable'})")

    def evaluate(version: str) -> str:
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
    _bisect(producers, "producer releases", evaluate)


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
