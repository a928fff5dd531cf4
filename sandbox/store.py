"""On-disk layout of caches, runs and the results store; atomic writes."""

from __future__ import annotations

import json
import os
import shutil
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


# -- the layout of a run folder ---------------------------------------------------
class CellPaths:
    """A cell's folder in a run: the agent's journals and logs of this run.
    What was measured lives in the results store; this is scratch space."""

    def __init__(self, run_dir: Path, cell_id: str) -> None:
        self.root = run_dir / "cells" / cell_id
        self.artifacts = self.root / "artifacts"  # the export verb writes here
        self.manifest = self.artifacts / "manifest.jsonl"
        self.loads = self.root / "loads.jsonl"
        self.items = self.root / "load-items.jsonl"
        self.registry = self.root / "registry.json"
        self.logs = self.root / "logs"


# -- the results store -------------------------------------------------------------
STORE_SCHEMA = 1


class StoreError(SandboxError):
    """The store cannot be written (full or read-only disk, permissions).
    What was stored before stays; the next run measures only the rest."""

    exit_code = 74  # EX_IOERR


def store_dir() -> Path:
    """SANDBOX_STORE_DIR, else the results folder of the cache dir; absolute
    (agents, and containers, are given paths in it)."""
    base = Path(os.environ["SANDBOX_STORE_DIR"]) if os.environ.get("SANDBOX_STORE_DIR") else cache_dir() / "results"
    return base.absolute() / f"v{STORE_SCHEMA}"


class ResultsStore:
    """Records addressed by what determines them, shared by every run.

    exports/<k>/record.json + files/   an artifact and its files (a producer
                                        folder the agent can load from)
    loads/<k>.json                      one load of one artifact by one loader
    registries/<k>.json                 an environment's op registry + facts

    Every record carries the digest of its payload and is verified when read:
    a damaged record is set aside and measured again, never trusted. Writes
    go to a temporary name and are renamed into place, so a reader (another
    run at the same time, or the next run after a kill -9) sees a whole
    record or none.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or store_dir()
        self.exports = self.root / "exports"
        self._verified: set[str] = set()

    # records ------------------------------------------------------------------
    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self._read(self._path(kind, key), key)

    def record_files(self, records: Iterable[tuple[str, str]]) -> Iterator[str]:
        """The file holding each (kind, key) record ("exports": the record of
        an export's folder), as strings: a run holds 90,000 at the map's size."""
        root = str(self.root)
        for kind, key in records:
            tail = "record.json" if kind == "exports" else ""
            yield f"{root}/{kind}/{key[:2]}/{key}/{tail}" if tail else f"{root}/{kind}/{key[:2]}/{key}.json"

    def put(self, kind: str, key: str, payload: dict[str, Any]) -> None:
        self._write(self._path(kind, key), key, payload)

    def _write(self, path: Path, key: str, payload: dict[str, Any]) -> None:
        from sandbox import digests
        try:
            write_json(path, {"store": STORE_SCHEMA, "key": key, "digest": digests.of_json(payload), "payload": payload})
        except OSError as exc:
            raise StoreError(f"cannot write the results store at {self.root}: {exc.strerror or exc}; "
                             "free space (or set SANDBOX_STORE_DIR) and run again: what is stored is kept") from None

    def _read(self, path: Path, key: str) -> dict[str, Any] | None:
        from sandbox import digests
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            data = None
        payload = data.get("payload") if isinstance(data, dict) else None
        if (not isinstance(payload, dict) or data.get("key") != key
                or data.get("digest") != digests.of_json(payload)):
            self._set_aside(path)
            return None
        return payload

    def _set_aside(self, path: Path) -> None:
        """A damaged record: keep it for inspection, out of the way."""
        try:
            os.replace(path, path.with_name(path.name + ".damaged"))
        except OSError:
            pass

    # exports: a record and its files ------------------------------------------------
    def export_dir(self, key: str) -> Path:
        return self.exports / key[:2] / key

    def get_export(self, key: str) -> dict[str, Any] | None:
        return self._read(self.export_dir(key) / "record.json", key)

    def put_export(self, key: str | None, payload: dict[str, Any], manifest_record: dict[str, Any] | None,
                   source: Path, files: dict[str, Path]) -> tuple[str, dict[str, Any]]:
        """Store an artifact: `files` (name in the store -> path) are copied in
        beside a manifest.jsonl holding `manifest_record`, so the folder is a
        producer the agent loads from. `key` None: addressed by the content (a
        user's model). Returns the key and the payload with its files' digest."""
        from sandbox import digests
        self.exports.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.exports, prefix=".new-"))
        try:
            folder = tmp / "files"
            folder.mkdir()
            for name, src in files.items():
                _copy(src, folder / name)
            if manifest_record is not None:
                append_jsonl(folder / "manifest.jsonl", manifest_record)
            payload = {**payload, "files_digest": digests.of_tree(folder) if files else None}
            key = key or digests.of_json(["external", payload])
            self._write(tmp / "record.json", key, payload)
            final = self.export_dir(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            if self.get_export(key) is None:  # absent or damaged: ours goes in
                shutil.rmtree(final, ignore_errors=True)
                try:
                    os.rename(tmp, final)
                except OSError:  # another run put the same record there first
                    pass
        except OSError as exc:
            raise StoreError(f"cannot write the results store at {self.root}: {exc.strerror or exc}; "
                             "free space (or set SANDBOX_STORE_DIR) and run again: what is stored is kept") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return key, payload

    def retain(self, records: set[tuple[str, str]]) -> int:
        """Remove every record (of every kind) but `records`, (kind, key) pairs:
        for a store that holds one CI job's records, cached between runs and
        kept to what the job used (`--prune-store`). Returns how many went."""
        removed = 0
        for kind_dir in (p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else ():
            for entry in (e for shard in kind_dir.iterdir() if shard.is_dir() for e in shard.iterdir()):
                key = entry.name.removesuffix(".damaged").removesuffix(".json")
                if (kind_dir.name, key) in records:
                    continue
                try:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                except OSError as exc:
                    raise StoreError(f"cannot prune the results store at {self.root}: {exc.strerror or exc}") from None
                removed += 1
        return removed

    def verify_files(self, key: str, payload: dict[str, Any]) -> bool:
        """Whether an export's files are as stored (checked once per process)."""
        from sandbox import digests
        if key in self._verified or payload.get("files_digest") is None:
            return True
        folder = self.export_dir(key) / "files"
        try:
            ok = folder.is_dir() and digests.of_tree(folder) == payload["files_digest"]
        except OSError:
            ok = False
        if ok:
            self._verified.add(key)
        else:
            self._set_aside(self.export_dir(key) / "record.json")
        return ok


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=False)
    else:
        shutil.copy2(src, dst)
