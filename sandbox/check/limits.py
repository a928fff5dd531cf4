"""How large a model file `sandbox check` reads: one limit for every format
(a SavedModel or GraphDef, a Keras file, a TFLite flatbuffer)."""

from __future__ import annotations

from pathlib import Path

from sandbox.errors import SandboxError

DEFAULT_MAX_BYTES = 1 << 30  # protobuf's own limit is 2 GiB; `sandbox check --max-model-size` changes it


def check_size(path: Path, size: int, max_bytes: int) -> None:
    """One line for a model file over the limit (every reader of `sandbox check` applies it)."""
    if size > max_bytes:
        raise SandboxError(f"{path}: {_mib(size)} is over the {_mib(max_bytes)} limit for models; "
                           "raise it with --max-model-size if you trust the file")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
