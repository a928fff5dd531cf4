"""On-disk layout of caches, runs, artifacts and results; atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError


def cache_dir() -> Path:
    """Where environments and the release catalog are kept between runs:
    created if missing; a SandboxError when it cannot be written."""
    if os.environ.get("SANDBOX_CACHE_DIR"):
        folder, source = Path(os.environ["SANDBOX_CACHE_DIR"]), "SANDBOX_CACHE_DIR"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder, source = Path(base) / "sandbox", "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "HOME"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise SandboxError(f"cache folder {folder} cannot be created ({why}); set SANDBOX_CACHE_DIR to a "
                           f"writable folder (it now comes from {source})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SandboxError(f"cache folder {folder} is not writable; set SANDBOX_CACHE_DIR to a writable folder "
                           f"(it now comes from {source})")
    return folder


def write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON so that readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # as write_text
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide published reports from a web server
    os.replace(tmp, path)


def json_objects(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The lines that are JSON objects; anything else (a torn line, a log
    line) is skipped."""
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (a crash mid-write) is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        yield from json_objects(fh)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
