"""What a .tflite file holds: its builtin and custom ops with their versions,
read by the agent's flatbuffer reader (plain Python, no TFLite needed)."""

from __future__ import annotations

import struct
from pathlib import Path

from sandbox.check import limits
from sandbox.errors import SandboxError


def tflite_ops(path: Path, max_bytes: int) -> dict[str, int]:
    """{"FULLY_CONNECTED": 9, "custom:FlexSinh": 1, ...}; SandboxError for a
    file over `max_bytes` or one that is no TFLite flatbuffer."""
    from sandbox.agent import tfliteinfo

    limits.check_size(path, path.stat().st_size, max_bytes)
    try:
        found: dict[str, int] = tfliteinfo.describe(str(path))["tflite_ops"]
    except (OSError, ValueError, struct.error, IndexError, TypeError, OverflowError, RecursionError) as exc:
        raise SandboxError(f"{path}: not a readable TFLite flatbuffer: {str(exc)[:200]}") from None
    return found
