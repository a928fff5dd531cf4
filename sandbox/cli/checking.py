"""`sandbox check` and `sandbox registries`: will a model load in other
releases (no environment; the verdicts come from sandbox.check), and the
stored op registries those verdicts read."""

from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from sandbox import registries, shapes
from sandbox.check import readers
from sandbox.check.verdicts import WILL_FAIL
from sandbox.cli import output
from sandbox.errors import SandboxError


def cmd_check(args: argparse.Namespace) -> int:
    model = readers.open_model(args.model, int(args.max_model_size * (1 << 20)))
    for warning in model.warnings:
        print(f"sandbox: warning: {args.model}: {warning}", file=sys.stderr)
    wanted = _targets(args.against, model.reads)
    rows, found = [], []
    for runtime, target in wanted:
        version, registry = registries.load(target, runtime)
        if runtime == registries.TENSORFLOW and target.count(".") == 2 and target != version:
            print(f"sandbox: note: tf=={target}: no op registry of that release is stored; checking against "
                  f"{version}, the stored release of {version.rsplit('.', 1)[0]}", file=sys.stderr)
        for verdict in model.verdicts(registry, version, runtime):
            found.append(verdict)
            rows.append([f"{'tf' if runtime == registries.TENSORFLOW else runtime}=={version}", verdict.loader,
                         verdict.verdict, ", ".join(verdict.missing_ops), ", ".join(verdict.unknown_attrs),
                         "; ".join(verdict.ignored_ops + verdict.ignored_attrs + verdict.reasons)])
    failing = sum(v.verdict == WILL_FAIL for v in found)
    if args.json:
        output.print_json(shapes.check(args.model, model.description, found))
        return 1 if failing else 0
    print(f"{args.model}: {model.description}")
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


def cmd_registries(args: argparse.Namespace) -> int:
    if args.build:
        with output.progress([], verbose=True, live=False) as show:
            registries.build(args.build, show, args.keras_backend)
    known = registries.known()
    print(f"{len(known)} stored op registries: {', '.join(p.name[2:-8] for p in known.values())}")
    for runtime in registries.PACKAGES:
        found = registries.known(runtime)
        if found:
            print(f"{len(found)} {runtime} registries: {', '.join(p.name[:-8] for p in found.values())}")
    return 0
