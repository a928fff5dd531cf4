"""Shards: the phases of a run as commands that separate machines run (a CI
matrix: one export job per cell, one load job per cell, one merge job).

A bundle is a folder: `bundle.json` (what it is, from which sandbox, matrix
and cell, with the keys of its records and a digest over all of it) and
`store/`, a results store holding just those records (and, for exports, the
artifacts' files). Every record is verified by its digest when read, and
every artifact's files before they are loaded.

    export bundle: one cell's artifacts, registry and facts
    load bundle:   one consumer cell's loads of every export bundle
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import __version__, digests
from sandbox.errors import SandboxError
from sandbox.matrix import Matrix
from sandbox.records import Artifact, Load
from sandbox.runner import CellResult, CellState, Source
from sandbox.store import STORE_SCHEMA, ResultsStore, write_json

BUNDLE_FILE = "bundle.json"


class BundleError(SandboxError):
    """A bundle that is not what it claims: refused."""


def matrix_digest(matrix: Matrix) -> str:
    return digests.of_json(matrix.path.read_text(encoding="utf-8"))


@dataclass
class Bundle:
    folder: Path
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data["kind"])

    @property
    def cell(self) -> str:
        return str(self.data["facts"]["id"])

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(self.folder / "store")


def write_export(folder: Path, matrix: Matrix, result: CellResult, index: int, local: ResultsStore) -> Path:
    """One cell's exports, registry and facts, copied out of the local store."""
    out = ResultsStore(folder / "store")
    for key, _ in result.artifacts:
        _copy_export(local, out, key)
    registry = None
    if result.registry is not None:
        registry = digests.of_json(["bundle-registry", result.state.id])
        out.put("registries", registry, result.registry)
    body = {"kind": "export", "index": index, "facts": result.facts, "state": vars(result.state),
            "identity": result.identity, "info": result.info, "registry": registry,
            "artifacts": [key for key, _ in result.artifacts]}
    return _write(folder, matrix, body)


def write_loads(folder: Path, matrix: Matrix, result: CellResult, local: ResultsStore) -> Path:
    """One consumer's loads (and the keys it stored them under)."""
    out = ResultsStore(folder / "store")
    entries = []
    for n, (producer, load) in enumerate(result.loads):
        key = digests.of_json(["bundle-load", result.state.id, producer, n, load.to_json()])
        out.put("loads", key, load.to_json())
        entries.append([producer, key])
    body = {"kind": "load", "facts": result.facts, "state": vars(result.state), "loads": entries}
    return _write(folder, matrix, body)


def _write(folder: Path, matrix: Matrix, body: dict[str, Any]) -> Path:
    data = {"sandbox_version": __version__, "store_schema": STORE_SCHEMA, "matrix": matrix.name,
            "matrix_path": str(matrix.path), "matrix_text": matrix.path.read_text(encoding="utf-8"),
            "matrix_digest": matrix_digest(matrix), **body}
    write_json(folder / BUNDLE_FILE, {**data, "digest": digests.of_json(data)})
    return folder


def _copy_export(src: ResultsStore, dst: ResultsStore, key: str) -> None:
    payload = src.get_export(key)
    if payload is None or not src.verify_files(key, payload):
        raise BundleError(f"the local results store lost export {key[:12]} while bundling; run again")
    folder = src.export_dir(key) / "files"
    files = {name: folder / name for name in digests.tree_files(folder) if name != "manifest.jsonl"}
    manifest = json.loads((folder / "manifest.jsonl").read_text()) if (folder / "manifest.jsonl").exists() else None
    record = {k: v for k, v in payload.items() if k != "files_digest"}
    _, stored = dst.put_export(key, record, manifest, folder, files)
    if stored.get("files_digest") != payload.get("files_digest"):
        raise BundleError(f"export {key[:12]} changed while bundling; run again")


def read(folder: Path, matrix: Matrix | None = None) -> Bundle:
    """A bundle, verified: its digest, its sandbox version, its matrix."""
    path = folder / BUNDLE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder}: not a bundle (no {BUNDLE_FILE})") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: unreadable bundle ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") not in ("export", "load"):
        raise BundleError(f"{path}: not a bundle")
    claimed = data.pop("digest", None)
    if claimed != digests.of_json(data):
        raise BundleError(f"{path}: digest does not match its contents; refusing a damaged or edited bundle")
    if data.get("sandbox_version") != __version__ or data.get("store_schema") != STORE_SCHEMA:
        raise BundleError(f"{path}: made by sandbox {data.get('sandbox_version')}, this is {__version__}; "
                          "make every bundle of a run with one sandbox version")
    if matrix is not None and data.get("matrix_digest") != matrix_digest(matrix):
        raise BundleError(f"{path}: made from another matrix ({data.get('matrix')!r}, not this {matrix.path}); "
                          "bundles of one run must come from one matrix file")
    return Bundle(folder, data)


def read_all(folders: list[Path], matrix: Matrix | None = None) -> list[Bundle]:
    bundles = [read(f, matrix) for f in folders]
    digests_seen = {b.data["matrix_digest"] for b in bundles}
    if len(digests_seen) > 1:
        raise BundleError(f"the bundles come from {len(digests_seen)} different matrix files; "
                          "bundles of one run must come from one matrix file")
    return bundles


def export_result(bundle: Bundle) -> CellResult:
    """The cell an export bundle describes, with its records (verified)."""
    data, store = bundle.data, bundle.store
    result = CellResult(dict(data["facts"]), CellState(**data["state"]), str(data["identity"]),
                        info=dict(data["info"]))
    for key in data["artifacts"]:
        payload = store.get_export(key)
        if payload is None:
            raise BundleError(f"{bundle.folder}: export {key[:12]} is missing or damaged")
        result.artifacts.append((key, Artifact.from_agent(payload)))
    if data["registry"] is not None:
        result.registry = store.get("registries", data["registry"])
        if result.registry is None:
            raise BundleError(f"{bundle.folder}: its registry is missing or damaged")
    return result


def sources(bundle: Bundle, into: ResultsStore) -> list[Source]:
    """An export bundle's artifacts, copied into the local store (files verified)."""
    result = export_result(bundle)
    if result.state.status != "ok":
        return []
    found = []
    for key, artifact in result.artifacts:
        if not bundle.store.verify_files(key, artifact.to_json()):
            raise BundleError(f"{bundle.folder}: the files of {artifact.probe}/{artifact.format} do not match their digest")
        if artifact.exported:
            _copy_export(bundle.store, into, key)
        found.append(Source(result.state.id, key, artifact))
    return [s for s in found if s.artifact.exported]


def load_records(bundle: Bundle) -> tuple[CellState, list[tuple[str, Load]]]:
    data, store = bundle.data, bundle.store
    loads = []
    for producer, key in data["loads"]:
        payload = store.get("loads", key)
        if payload is None:
            raise BundleError(f"{bundle.folder}: load {key[:12]} is missing or damaged")
        loads.append((str(producer), Load.from_agent(payload)))
    return CellState(**data["state"]), loads


def the_matrix(bundles: list[Bundle]) -> Matrix:
    """The matrix the bundles were made from, as its file said."""
    from sandbox import matrix as matrix_mod
    if not bundles:
        raise BundleError("no bundles given")
    first = bundles[0].data
    path = Path(first["matrix_path"])
    return matrix_mod.parse(matrix_mod.parse_toml(first["matrix_text"], path), path)


def merge(bundles: list[Bundle]) -> list[CellResult]:
    """Every cell of the run, in plan order, with its consumers' loads."""
    exports = sorted((b for b in bundles if b.kind == "export"), key=lambda b: int(b.data["index"]))
    results = {b.cell: export_result(b) for b in exports}
    for bundle in (b for b in bundles if b.kind == "load"):
        if bundle.cell not in results:
            raise BundleError(f"{bundle.folder}: loads of {bundle.cell}, whose export bundle is not among those given")
        state, loads = load_records(bundle)
        result = results[bundle.cell]
        result.state, result.loads = state, loads
    return list(results.values())
