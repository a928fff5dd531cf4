"""`sandbox check` and `sandbox registries`: will a model load in other
releases (no environment; the verdicts come from sandbox.check), and the
stored op registries those verdicts read."""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

from sandbox import check, kerasinfo, protos, registries, shapes
from sandbox.cli import output
from sandbox.errors import SandboxError


def cmd_check(args: argparse.Namespace) -> int:
    verdicts, what, reads = check_model(args.model, int(args.max_model_size * (1 << 20)))
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
        output.print_json(shapes.check(args.model, what, found))
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


def check_model(path: Path, max_bytes: int = protos.DEFAULT_MAX_BYTES) -> tuple[Any, str, tuple[str, ...]]:
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
        with output.progress([], verbose=True, live=False) as show:
            registries.build(args.build, show, args.keras_backend)
    known = registries.known()
    print(f"{len(known)} stored op registries: {', '.join(p.name[2:-8] for p in known.values())}")
    for runtime in registries.PACKAGES:
        found = registries.known(runtime)
        if found:
            print(f"{len(found)} {runtime} registries: {', '.join(p.name[:-8] for p in found.values())}")
    return 0
