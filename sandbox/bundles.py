"""Bundles: what one shard of a run (a CI job) hands to the next, as a folder:
`bundle.json` (what it is, from which sandbox, matrix and cell, the key and
payload digest of each of its records, and a digest over all of that) and
`store/`, a results store holding just those records (and, for exports, the
artifacts' files).

    export bundle: one cell's artifacts, registry and facts, and the plan
    load bundle:   one consumer cell's loads of every export bundle

A bundle comes from another machine: untrusted input. Before anything of it
is used, the folder must hold only folders and regular files (no symlink,
device or FIFO), bundle.json must be small, shallow and valid against
report/bundle.schema.json, its digest must match, and every record is read
from the bundle's store by a key that is a digest, checked against the
payload digest bundle.json names, and validated against its schema. A
bundle's folder is never written: a damaged record in it is refused, not set
aside. What a bundle proves, and what it does not, is in the README (shards).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from sandbox import __version__, digests, untrusted
from sandbox.errors import SandboxError
from sandbox.keys import Keys
from sandbox.matrix import Matrix
from sandbox.records import Artifact, CellResult, CellState, Load, Source
from sandbox.report import document
from sandbox.store import STORE_SCHEMA, ResultsStore, write_json

BUNDLE_FILE = "bundle.json"
SCHEMA_FILE = "bundle.schema.json"
MAX_BUNDLE_BYTES = 64 << 20  # a load bundle of a 30-cell map lists ~4,000 loads: ~1 MB
RECORD_SCHEMAS = {"exports": "stored_artifact", "loads": "stored_load", "registries": "stored_registry"}


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
    def digest(self) -> str:
        return str(self.data["digest"])

    @functools.cached_property
    def store(self) -> ResultsStore:
        """The bundle's store, only ever read (its files checked once)."""
        return ResultsStore(self.folder / "store", readonly=True)

    def record(self, kind: str, entry: list[str]) -> dict[str, Any]:
        """The payload of a record bundle.json names by [key, payload digest],
        checked against that digest and its schema."""
        key, digest = entry[-2], entry[-1]
        payload = self.store.get_export(key) if kind == "exports" else self.store.get(kind, key)
        what = f"{self.folder}: {kind[:-1]} record {key[:12]}"
        if payload is None:
            raise BundleError(f"{what} is missing or damaged")
        if digests.of_json(payload) != digest:
            raise BundleError(f"{what} is not the one its {BUNDLE_FILE} names (edited?); refusing the bundle")
        _valid(payload, RECORD_SCHEMAS[kind], what)
        return payload


# -- writing ------------------------------------------------------------------------
def check_out(folder: Path) -> None:
    """A bundle is written into a new (or empty) folder: never over another bundle."""
    if folder.is_symlink() or (folder.exists() and (not folder.is_dir() or any(folder.iterdir()))):
        raise SandboxError(f"{folder}: exists and is not an empty folder; a bundle is never written over "
                           "another: remove it or give another --out")


def write_export(folder: Path, matrix: Matrix, result: CellResult, plan: list[dict[str, Any]], index: int,
                 local: ResultsStore, keys: Keys) -> Path:
    """One cell's exports, registry and facts, copied out of the local store,
    with the facts of every cell of the plan (so merge knows what is missing)."""
    out = ResultsStore(folder / "store")
    artifacts = []
    for key, _ in result.artifacts:
        payload = local.get_export(key)
        if payload is None or not local.verify_files(key, payload):
            raise BundleError(f"the local results store lost export {key[:12]} while bundling; run again")
        out.copy_export(local, key, payload)
        artifacts.append([key, digests.of_json(payload)])
    registry = None
    if result.registry is not None:
        key = keys.registry(result.identity)
        out.put("registries", key, result.registry)
        registry = [key, digests.of_json(result.registry)]
    body = {"kind": "export", "index": index, "plan": plan, "facts": result.facts, "state": vars(result.state),
            "identity": result.identity or None, "info": result.info, "registry": registry, "artifacts": artifacts}
    return _write(folder, matrix, body)


def write_loads(folder: Path, matrix: Matrix, result: CellResult, exports: list[Bundle], sources: list[Source],
                keys: Keys) -> Path:
    """One consumer's loads, each under the key a run stores it by (derived
    from the consumer, the artifact's files and the loader), and the digests
    of the export bundles they loaded."""
    out = ResultsStore(folder / "store")
    by_artifact = {(s.producer, s.artifact.probe, s.artifact.format): s for s in sources}
    entries = []
    for producer, load in result.loads:
        key = keys.load(result.identity, by_artifact[(producer, load.probe, load.format)], load.loader)
        payload = load.to_json()
        out.put("loads", key, payload)
        entries.append([producer, key, digests.of_json(payload)])
    body = {"kind": "load", "facts": result.facts, "state": vars(result.state),
            "exports": {b.cell: b.digest for b in exports}, "loads": entries}
    return _write(folder, matrix, body)


def _write(folder: Path, matrix: Matrix, body: dict[str, Any]) -> Path:
    data = {"sandbox_version": __version__, "store_schema": STORE_SCHEMA, "matrix": matrix.name,
            "matrix_path": str(matrix.path), "matrix_text": matrix.path.read_text(encoding="utf-8"),
            "matrix_digest": matrix_digest(matrix), **body}
    write_json(folder / BUNDLE_FILE, {**data, "digest": digests.of_json(data)})
    return folder


# -- reading ------------------------------------------------------------------------
def read(folder: Path, matrix: Matrix | None = None) -> Bundle:
    """A bundle, verified: a plain folder, its bundle.json's shape and digest,
    its sandbox version, its matrix."""
    path = folder / BUNDLE_FILE
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a bundle (not a folder)")
    try:
        untrusted.regular_files(folder.resolve(), single=True)  # the folder named may be a link; nothing inside
        data = untrusted.read_json(path, MAX_BUNDLE_BYTES)
    except FileNotFoundError:
        raise BundleError(f"{folder}: not a bundle (no {BUNDLE_FILE})") from None
    except untrusted.UnsafeInput as exc:
        raise BundleError(f"{folder}: refused: {exc}") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: unreadable bundle ({_first_line(exc)})") from None
    if not isinstance(data, dict) or data.get("kind") not in ("export", "load"):
        raise BundleError(f"{path}: not a bundle")
    claimed = data.pop("digest", None)
    if claimed != digests.of_json(data):
        raise BundleError(f"{path}: digest does not match its contents; refusing a damaged or edited bundle")
    data["digest"] = claimed
    if data.get("sandbox_version") != __version__ or data.get("store_schema") != STORE_SCHEMA:
        raise BundleError(f"{path}: made by sandbox {str(data.get('sandbox_version'))[:40]}, this is {__version__}; "
                          "make every bundle of a run with one sandbox version")
    _valid(data, None, str(path))
    _consistent(data, str(path))
    if matrix is not None and data["matrix_digest"] != matrix_digest(matrix):
        raise BundleError(f"{path}: made from another matrix ({data['matrix']!r}, not this {matrix.path}); "
                          "bundles of one run must come from one matrix file")
    return Bundle(folder, data)


def _consistent(data: dict[str, Any], where: str) -> None:
    cell = data["facts"]["id"]
    if data["state"]["id"] != cell:
        raise BundleError(f"{where}: its state is of cell {data['state']['id']!r}, its facts of {cell!r}")
    if data["kind"] == "export" and (data["index"] >= len(data["plan"]) or data["plan"][data["index"]]["id"] != cell):
        raise BundleError(f"{where}: cell {cell!r} is not at place {data['index']} of the plan it carries")


def read_all(folders: list[Path], matrix: Matrix | None = None) -> list[Bundle]:
    bundles = [read(f, matrix) for f in folders]
    digests_seen = {b.data["matrix_digest"] for b in bundles}
    if len(digests_seen) > 1:
        raise BundleError(f"the bundles come from {len(digests_seen)} different matrix files; "
                          "bundles of one run must come from one matrix file")
    return bundles


def exports_by_cell(bundles: list[Bundle]) -> dict[str, Bundle]:
    """The export bundles by cell: one per cell, all of one plan."""
    found: dict[str, Bundle] = {}
    # the cells, not every fact: each machine found its Pythons at its own paths
    plans = {tuple(f["id"] for f in b.data["plan"]) for b in bundles if b.kind == "export"}
    if len(plans) > 1:
        raise BundleError(f"the export bundles come from {len(plans)} different plans of the matrix "
                          "(other releases or Pythons found); export every cell of a run from one plan")
    for bundle in (b for b in bundles if b.kind == "export"):
        if bundle.cell in found:
            raise BundleError(f"two export bundles of {bundle.cell}: {found[bundle.cell].folder} and {bundle.folder}")
        found[bundle.cell] = bundle
    return found


def exports_for(given: list[Bundle], planned: list[str]) -> dict[str, Bundle]:
    """The export bundles a load job loads, by cell: of this machine's plan (`planned`: cell ids)."""
    for bundle in given:
        if bundle.kind != "export":
            raise BundleError(f"--bundles: {bundle.folder} is a load bundle; give the export bundles")
    exports = exports_by_cell(given)
    theirs = [f["id"] for f in next(iter(exports.values())).data["plan"]] if exports else planned
    if theirs != planned:
        raise BundleError(f"the export bundles were made from another plan of the matrix ({', '.join(theirs)}); "
                          "plan once, and export and load the same cells (sandbox plan --json)")
    return exports


def export_result(bundle: Bundle, keys: Keys) -> CellResult:
    """The cell an export bundle describes, with its records: each checked
    against bundle.json and addressed by the key a run would store it under."""
    data = bundle.data
    identity = data["identity"] or ""
    result = CellResult(dict(data["facts"]), CellState(**data["state"]), identity, info=dict(data["info"]))
    for entry in data["artifacts"]:
        artifact = Artifact.from_agent(bundle.record("exports", entry))
        what = f"{bundle.folder}: export record {entry[0][:12]} ({artifact.probe}/{artifact.format})"
        if artifact.probe not in keys.matrix.probes or artifact.format not in keys.matrix.formats or artifact.loaders:
            raise BundleError(f"{what}: not a probe and format of the matrix")
        if entry[0] != keys.export(identity, artifact.probe, artifact.format):
            raise BundleError(f"{what}: not the export it claims; refusing the bundle")
        if any(a.probe == artifact.probe and a.format == artifact.format for _, a in result.artifacts):
            raise BundleError(f"{what}: there twice")
        result.artifacts.append((entry[0], artifact))
    if data["registry"] is not None:
        if data["registry"][0] != keys.registry(identity):
            raise BundleError(f"{bundle.folder}: its registry record is not the registry of its cell")
        result.registry = bundle.record("registries", data["registry"])
    return result


def sources(bundle: Bundle, into: ResultsStore, keys: Keys) -> list[Source]:
    """An export bundle's artifacts, copied into the local store (files verified)."""
    result = export_result(bundle, keys)
    if result.state.status != "ok":
        return []
    found = []
    for key, artifact in result.artifacts:
        if not artifact.exported:
            continue
        if not bundle.store.verify_files(key, artifact.to_json()):
            raise BundleError(f"{bundle.folder}: the files of {artifact.probe}/{artifact.format} do not match their digest")
        try:
            into.copy_export(bundle.store, key, artifact.to_json())
        except untrusted.UnsafeInput as exc:
            raise BundleError(f"{bundle.folder}: refused: {exc}") from None
        found.append(Source(result.state.id, key, artifact))
    return found


def load_records(bundle: Bundle) -> tuple[CellState, list[tuple[str, str, Load]]]:
    """A load bundle's state and its loads as (producer, key, load)."""
    loads = [(entry[0], entry[1], Load.from_agent(bundle.record("loads", entry))) for entry in bundle.data["loads"]]
    return CellState(**bundle.data["state"]), loads


def the_matrix(bundles: list[Bundle]) -> Matrix:
    """The matrix the bundles were made from, as its file said."""
    from sandbox import matrix as matrix_mod
    if not bundles:
        raise BundleError("no bundles given")
    first = bundles[0].data
    path = Path(first["matrix_path"])
    return matrix_mod.parse(matrix_mod.parse_toml(first["matrix_text"], path), path)


@functools.cache
def _validator(definition: str | None) -> Callable[[Any], Any]:
    import fastjsonschema

    schema: dict[str, Any] = json.loads(resources.files("sandbox.report").joinpath(SCHEMA_FILE).read_text("utf-8"))
    schema["$defs"] = {**document.schema()["$defs"], **schema["$defs"]}
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return validate


def _valid(data: Any, definition: str | None, where: str) -> None:
    from fastjsonschema import JsonSchemaValueException

    try:
        _validator(definition)(data)
    except JsonSchemaValueException as exc:
        message = _first_line(exc.message)
        what = message[5:] if message.startswith("data.") else "the bundle" + message.removeprefix("data")
        raise BundleError(f"{where}: not a valid bundle: {what} (see {SCHEMA_FILE} in the sandbox package)") from None


def _first_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
