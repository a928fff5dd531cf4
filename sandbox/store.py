"""On-disk layout of caches, runs and the results store; atomic writes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sandbox import digests, untrusted
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
    write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write `text` so that readers see the old file or the new one; on any
    failure (a full disk) no temporary file is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide published reports from a web server
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def json_objects(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The lines that are JSON objects; anything else (a torn line, a log
    line) is skipped."""
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
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
MANIFEST = "manifest.jsonl"  # a producer folder's records of its artifacts (as the agent names it: agent/verbs.py)


class CellPaths:
    """A cell's folder in a run: the agent's journals and logs of this run.
    What was measured lives in the results store; this is scratch space."""

    def __init__(self, run_dir: Path, cell_id: str) -> None:
        self.root = run_dir / "cells" / cell_id
        self.artifacts = self.root / "artifacts"  # the export verb writes here
        self.manifest = self.artifacts / MANIFEST
        self.loads = self.root / "loads.jsonl"
        self.items = self.root / "load-items.jsonl"
        self.registry = self.root / "registry.json"
        self.logs = self.root / "logs"


# -- the results store -------------------------------------------------------------
STORE_SCHEMA = 1
KEY = re.compile(r"[0-9a-f]{64}")  # every key is a sha256 digest (sandbox.digests)
MAX_RECORD_BYTES = 64 << 20  # an op registry is ~1 MB; loads and exports a few KB
STORE_FAILED = "free space (or set SANDBOX_STORE_DIR) and run again: what is stored is kept"


class StoreError(SandboxError):
    """The store cannot be written (full or read-only disk, permissions).
    What was stored before stays; the next run measures only the rest."""

    exit_code = 74  # EX_IOERR


def is_key(key: object) -> bool:
    return isinstance(key, str) and KEY.fullmatch(key) is not None


def check_key(key: object) -> str:
    """A key, or an UnsafeInput: only digests address records, so that no key
    ('../v1', '/etc') can name a path outside the store."""
    if not is_key(key):
        raise untrusted.UnsafeInput(f"{str(key)[:80]!r} is not a results-store key (a sha256 digest: 64 hex digits)")
    assert isinstance(key, str)
    return key


# The results store anywhere, on any machine: <root>/v1/<kind>/ab/<key>...
_IN_A_STORE = re.compile(r"/v\d+/(?=(?:exports|loads|registries)/[0-9a-f]{2}/)")


def within_a_store(path: str) -> str | None:
    """What follows a results store's root in `path` ("exports/ab/<key>/..."),
    if it is a path into one; None if not. For the paths of another machine's
    store too (in an error text a CI shard measured)."""
    found = _IN_A_STORE.search(path)
    return path[found.end():] if found else None


def export_files(folder: Path, record: dict[str, Any]) -> dict[str, Path]:
    """The files of one artifact the agent exported into `folder`, by their
    names in the store: the exporter's own folder (<probe>/<format>/) and the
    reference inputs and outputs, named as the record names them (so that its
    paths hold in the store's producer folder)."""
    names = [_artifact_folder(str(record["probe"]), str(record["format"]))]
    names += [str(record[k]) for k in ("inputs", "outputs") if record.get(k)]
    return {name: folder / name for name in names if (folder / name).exists()}


def external_files(folder: Path, record: dict[str, Any]) -> tuple[dict[str, Path], dict[str, Any]]:
    """The files of a user's model (paths may be absolute) by their names in
    the store, and the record naming them so."""
    files: dict[str, Path] = {}
    manifest = dict(record)
    for field_name, name in (("path", "model"), ("inputs", "inputs.npz"), ("outputs", "outputs.npz")):
        value = record.get(field_name)
        if not value:
            continue
        src = (folder / value).resolve()  # the model the user named; links inside it are refused
        store_name = f"{name}/{src.name}" if field_name == "path" else name
        files[store_name] = src
        manifest[field_name] = store_name
    return files, manifest


def _artifact_folder(probe: str, fmt: str) -> str:
    return f"{probe}/{fmt}"


def store_dir() -> Path:
    """SANDBOX_STORE_DIR, else the results folder of the cache dir; absolute
    (agents, and containers, are given paths in it)."""
    base = Path(os.environ["SANDBOX_STORE_DIR"]) if os.environ.get("SANDBOX_STORE_DIR") else cache_dir() / "results"
    return base.absolute() / f"v{STORE_SCHEMA}"


class ResultsStore:
    """Records addressed by what determines them, shared by every run.

    exports/<k>/record.json            an artifact: what it is, and the digest of its files
    exports/<k>/<files digest>/        its files, in a folder named by their digest (a
                                       producer folder the agent can load from:
                                       manifest.jsonl, <probe>/<format>/, the reference
                                       inputs and outputs; see export_files)
    loads/<k>.json                     one load of one artifact by one loader
    registries/<k>.json                an environment's op registry + facts
    (<k> is written <first two digits>/<key>.)

    Every record carries the digest of its payload and is verified when read:
    a damaged record is set aside and measured again, never trusted. Writes
    go to a temporary name and are renamed into place, so a reader (another
    run at the same time, or the next run after a kill -9) sees a whole
    record or none. An artifact's files are never changed once in place: a
    new measurement of the same export (--fresh, or another run sharing the
    store) puts its files beside them under their own digest and replaces the
    record, so every record, and every load running from a folder, agrees
    with what is on disk. Keys must be digests: no key names a path outside.

    A `readonly` store (a bundle someone sent) is never written, and what is
    damaged in it is refused, not set aside.
    """

    def __init__(self, root: Path | None = None, readonly: bool = False) -> None:
        self.root = root or store_dir()
        self.exports = self.root / "exports"  # every export's files: what a process loading them reads
        self.readonly = readonly
        self._verified: set[tuple[str, str]] = set()

    def inside(self, folder: Path) -> bool:
        """Whether the store lives in `folder` (or is it)."""
        root = self.root.resolve()
        return root == folder or folder in root.parents

    # records ------------------------------------------------------------------
    def _path(self, kind: str, key: str) -> Path:
        key = check_key(key)
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
        assert not self.readonly, f"{self.root} is read-only"
        try:
            write_json(path, {"store": STORE_SCHEMA, "key": key, "digest": digests.of_json(payload), "payload": payload})
        except OSError as exc:
            raise StoreError(f"cannot write the results store at {self.root}: {exc.strerror or exc}; {STORE_FAILED}") from None

    def _read(self, path: Path, key: str) -> dict[str, Any] | None:
        try:
            data = untrusted.read_json(path, MAX_RECORD_BYTES)
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
        if self.readonly:
            return
        with contextlib.suppress(OSError):
            os.replace(path, path.with_name(path.name + ".damaged"))

    # exports: a record and its files ------------------------------------------------
    def export_dir(self, key: str) -> Path:
        key = check_key(key)
        return self.exports / key[:2] / key

    def files_dir(self, key: str, files_digest: str) -> Path:
        """The folder of an export's files: named by their digest. (A store
        written before files were kept so holds one folder, `files`: its
        digest is checked the same way.)"""
        folder = self.export_dir(key) / check_key(files_digest)
        legacy = self.export_dir(key) / "files"
        return legacy if not folder.exists() and legacy.is_dir() else folder

    def artifact_dir(self, key: str, files_digest: str, probe: str, fmt: str) -> Path:
        """The exporter's own folder of an artifact, among its stored files."""
        return self.files_dir(key, files_digest) / _artifact_folder(probe, fmt)

    def manifest_record(self, key: str, files_digest: str) -> dict[str, Any]:
        """The artifact record of an export's stored files ({} if it has none):
        its paths are relative to files_dir()."""
        records = read_jsonl(self.files_dir(key, files_digest) / MANIFEST)
        return next((r for r in records if r.get("kind") == "artifact"), {})

    def get_export(self, key: str) -> dict[str, Any] | None:
        payload = self._read(self.export_dir(key) / "record.json", key)
        if payload is not None and payload.get("files_digest") is not None and not is_key(payload["files_digest"]):
            self._set_aside(self.export_dir(key) / "record.json")
            return None
        return payload

    def put_export(self, key: str | None, payload: dict[str, Any], manifest_record: dict[str, Any] | None,
                   files: dict[str, Path]) -> tuple[str, dict[str, Any]]:
        """Store an artifact: `files` (name in the store -> path) are copied in
        beside a manifest.jsonl holding `manifest_record`, so the folder is a
        producer the agent loads from. `key` None: addressed by the content (a
        user's model). The record is this measurement (a record stored before
        under the key is replaced). Returns the key and the payload with its
        files' digest."""
        with self._writing():
            tmp = self._new_folder()
            try:
                for name, src in files.items():
                    untrusted.copy(src, tmp / name)
                if manifest_record is not None:
                    append_jsonl(tmp / MANIFEST, manifest_record)
                payload = {**payload, "files_digest": digests.of_tree(tmp) if files else None}
                key = key or digests.of_json(["external", payload])
                if files:
                    self._place(tmp, key, payload["files_digest"])
                self._write(self.export_dir(key) / "record.json", key, payload)
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

    def copy_export(self, source: ResultsStore, key: str, payload: dict[str, Any]) -> None:
        """Take an export (`payload`, as `source` holds it under `key`) from
        another store, files verified: files this store already holds under
        their digest are not copied again."""
        files_digest = payload.get("files_digest")
        with self._writing():
            if files_digest is not None and not self._holds(key, files_digest):
                if not source.verify_files(key, payload):
                    raise untrusted.UnsafeInput(f"{source.root}: the files of export {key[:12]} do not match their digest")
                tmp = self._new_folder()
                try:
                    untrusted.copy(source.files_dir(key, files_digest), tmp)
                    if digests.of_files(tmp, untrusted.regular_files(tmp)) != files_digest:
                        raise untrusted.UnsafeInput(f"{source.root}: the files of export {key[:12]} changed while copied")
                    self._place(tmp, key, files_digest)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            self._write(self.export_dir(key) / "record.json", key, payload)

    def _holds(self, key: str, files_digest: str) -> bool:
        folder = self.export_dir(key) / check_key(files_digest)
        return folder.is_dir() and self.verify_files(key, {"files_digest": files_digest})

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StoreError(f"cannot write the results store at {self.root}: {exc.strerror or exc}; {STORE_FAILED}") from None

    def _new_folder(self) -> Path:
        self.exports.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.exports, prefix=".new-"))

    def _place(self, tmp: Path, key: str, files_digest: str) -> None:
        """Move a filled folder into place under its files' digest; one already
        there holds the same files (a folder is named by its content)."""
        final = self.export_dir(key) / check_key(files_digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise

    def verify_files(self, key: str, payload: dict[str, Any]) -> bool:
        """Whether an export's files are as its record says (checked once per
        process); when not, the record and the files are set aside."""
        files_digest = payload.get("files_digest")
        if files_digest is None or (key, files_digest) in self._verified:
            return True
        try:
            folder = self.files_dir(key, files_digest)
            ok = bool(digests.of_files(folder, untrusted.regular_files(folder)) == files_digest)
        except (OSError, SandboxError):
            ok = False
        if ok:
            self._verified.add((key, files_digest))
        else:
            self.set_aside_export(key, files_digest)
        return ok

    def set_aside_export(self, key: str, files_digest: str) -> None:
        """Damaged files: they and a record naming them go out of the way (the
        export is measured again); a newer record, naming other files, stays."""
        if self.readonly:
            return
        folder = self.files_dir(key, files_digest)
        with contextlib.suppress(OSError):
            os.replace(folder, folder.with_name(f"{folder.name}.damaged-{os.getpid()}"))
        record = self.export_dir(key) / "record.json"
        current = self._read(record, key)
        if current is not None and current.get("files_digest") == files_digest:
            self._set_aside(record)
