"""A model file -> the reader its kind takes (a SavedModel folder or a frozen
GraphDef, a .keras / .h5 file, a .tflite file) -> a Model: what it is, which
runtimes beside TF read it, and its verdicts against any release's registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.check import graphfile, kerasfile, limits, verdicts
from sandbox.check.tflitefile import tflite_ops
from sandbox.errors import SandboxError

# (registry, the release it is of, its runtime) -> a verdict per loader
Verdicts = Callable[[dict[str, Any], str, str], list[verdicts.Verdict]]


@dataclass(frozen=True)
class Model:
    verdicts: Verdicts
    description: str  # "saved_model with 12 ops, written by TF 2.15.1"
    reads: tuple[str, ...]  # the runtimes besides TF that read it ("keras"; "ai-edge-litert", "tflite-runtime")
    warnings: tuple[str, ...] = ()  # doubts about the file, each to follow its path


def open_model(path: Path, max_bytes: int = limits.DEFAULT_MAX_BYTES) -> Model:
    """SandboxError for a path that is no model of a kind sandbox reads, or
    one over `max_bytes`."""
    if not path.exists():
        raise SandboxError(f"{path}: no such file or folder")
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        raise SandboxError(f"{path}: a folder without saved_model.pb, so not a SavedModel; give a SavedModel "
                           "folder, a frozen graph .pb, a .h5 / .keras or a .tflite file")
    if path.suffix in (".keras", ".h5", ".hdf5"):
        return _keras(path, max_bytes)
    if path.suffix == ".tflite":
        ops = tflite_ops(path, max_bytes)
        return Model(lambda reg, v, rt: [verdicts.tflite_verdict(ops, reg, v, rt)],
                     "TFLite flatbuffer with " + ", ".join(f"{op} v{n}" for op, n in sorted(ops.items())),
                     ("ai-edge-litert", "tflite-runtime"))
    model = graphfile.read_model(path, max_bytes=max_bytes)
    keras = verdicts.keras_metadata((path / "saved_model.pb").read_bytes(), (path / "keras_metadata.pb").exists()) \
        if model.kind == "saved_model" and path.is_dir() else None
    produced = f", written by TF {model.tensorflow}" if model.tensorflow else ""
    kind = "Keras SavedModel" if keras else model.kind
    return Model(lambda reg, v, rt: verdicts.graph_verdicts(model, reg, v, keras),
                 f"{kind} with {len(model.ops)} ops{produced}", (), model.warnings)


def _keras(path: Path, max_bytes: int) -> Model:
    info = kerasfile.read(path, max_bytes)
    warnings = (f"its config holds {', '.join(info.code)}: loading it can run that code (Keras 2 does even with "
                "safe_mode=True for .h5; sandbox refuses it in safe mode, in every Keras)",) if info.code else ()
    return Model(lambda reg, v, rt: [verdicts.keras_verdict(info, reg, v, rt)],
                 f"{info.format} written by Keras {info.keras_version or '?'}, layers {', '.join(info.layers)}"
                 + (f"; carries code: {', '.join(info.code)}" if info.code else ""), ("keras",), warnings)
