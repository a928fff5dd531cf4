"""`sandbox repro` and `sandbox bisect`: a user's model (or the script that
builds it) across chosen TF versions, in real environments.

A spec is a small TOML file:

    name = "fbn-v3"
    [producer]                 # where the model comes from: a script run in a
    tensorflow = "2.15"        # producer cell (it gets an output folder as
    script = "make_model.py"   # argv[1]), or an existing `artifact` path
    [consumers]
    tensorflow = ">=1.13,<2"   # a list of versions, a range, or "all"
    loader = "tf1_session"     # optional: only this loader
    [expect]
    error = "Op type not registered 'FusedBatchNormV3'"   # optional
"""

from __future__ import annotations

import difflib
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from sandbox import events, pythons
from sandbox import matrix as matrix_mod
from sandbox import plan as plan_mod
from sandbox.agent import catalog
from sandbox.check import graphfile, static
from sandbox.errors import ConfigError, HarnessError, SandboxError
from sandbox.matrix import as_string, check_keys, check_value, docker_image, number, read_toml, safe_name
from sandbox.records import Artifact, Source
from sandbox.report.document import LoadRow, ResultsDocument
from sandbox.report.tables import first_line
from sandbox.store import MANIFEST, ResultsStore, append_jsonl, external_files, read_jsonl
from sandbox.versions import Catalog, version_range

SECTIONS = ("name", "producer", "consumers", "expect", "timeout")
CELL_KEYS = ("tensorflow", "python", "image", "backend", "docker_image")
PRODUCER_KEYS = (*CELL_KEYS, "script", "artifact", "format")
CONSUMER_KEYS = (*CELL_KEYS, "loader", "keras_safe_mode")
EXPECT_KEYS = ("error",)
@dataclass(frozen=True)
class Spec:
    path: Path
    name: str
    producer: dict[str, str]
    consumers: Any  # str ("all" / a range) or list[str]
    consumer_python: str
    consumer_cell: dict[str, str]  # image, backend, docker_image as given
    loader: str | None
    expect_error: str | None
    timeout: float
    keras_safe_mode: bool = True

    def source(self) -> Path | None:
        """The script or artifact, relative to the spec file."""
        value = self.producer.get("script") or self.producer.get("artifact")
        return (self.path.parent / value).resolve() if value else None


def load_spec(path: Path) -> Spec:
    """Parse and validate a spec: everything in it is checked here, before
    any environment is built or the reporter's script runs."""
    data = read_toml(path)
    where = str(path)
    check_keys(data, SECTIONS, where, "")
    producer = _table(data, "producer", PRODUCER_KEYS, where)
    safe = data.get("consumers", {}).pop("keras_safe_mode", True) if isinstance(data.get("consumers"), dict) else True
    if not isinstance(safe, bool):
        raise ConfigError(f"{where}: key 'consumers.keras_safe_mode': expected true or false, got {safe!r}")
    consumers = _table(data, "consumers", CONSUMER_KEYS, where, keep_lists=True)
    expect = _table(data, "expect", EXPECT_KEYS, where)
    if ("script" in producer) == ("artifact" in producer):
        raise ConfigError(f"{where}: key 'producer': give exactly one of 'script' or 'artifact'")
    if "script" in producer and "tensorflow" not in producer:
        raise ConfigError(f"{where}: key 'producer.tensorflow': required to run a script")
    if "artifact" in producer and is_range(producer.get("tensorflow", "")):
        raise ConfigError(f"{where}: key 'producer.tensorflow': a range of producers needs a 'script' to run in each")
    if is_range(producer.get("tensorflow", "")) and producer["tensorflow"].strip() != "all":
        try:
            SpecifierSet(producer["tensorflow"])
        except InvalidSpecifier:
            raise ConfigError(f"{where}: key 'producer.tensorflow': '{producer['tensorflow']}' is not a version "
                              "or a range like \">=2.10,<2.16\"") from None
    if "tensorflow" not in consumers:
        raise ConfigError(f"{where}: key 'consumers.tensorflow': required (versions, a range like \">=1.13,<2\", or \"all\")")
    _check_cell(producer, "producer", where)
    _check_cell(consumers, "consumers", where)
    _check_consumers(consumers["tensorflow"], where)
    _check_choice(producer.get("format"), "producer.format", tuple(name for name, _ in DETECT), where)
    _check_choice(consumers.get("loader"), "consumers.loader", agent_loaders(), where)
    reads = tuple(fmt for fmt, names in LOADERS.items() if consumers.get("loader") in names)
    if "format" in producer and "loader" in consumers and producer["format"] not in reads:
        raise ConfigError(f"{where}: key 'consumers.loader': {consumers['loader']} does not read a "
                          f"{producer['format']} (it reads {', '.join(reads)})")
    cell = {k: v for k, v in consumers.items() if k in ("image", "backend", "docker_image")}
    spec = Spec(path, safe_name(data.get("name", path.stem), "name", where), producer, consumers["tensorflow"],
                consumers.get("python", "auto"), cell, consumers.get("loader"), expect.get("error"),
                number(data.get("timeout", 900), "timeout", where), safe)
    source = spec.source()
    if source is not None and not source.exists():
        raise ConfigError(f"{where}: key 'producer': {source} does not exist")
    if "script" in producer and source is not None and not source.is_file():
        raise ConfigError(f"{where}: key 'producer.script': {source} is not a file")
    return spec


def _check_cell(table: dict[str, Any], section: str, where: str) -> None:
    """tensorflow (producer), python, image, backend, docker_image: as in a matrix."""
    # a producer's range of versions is checked as a range (sandbox bisect over producers)
    one_version = section == "producer" and not is_range(table.get("tensorflow", ""))
    for key in ("python", "image", "backend") + (("tensorflow",) if one_version else ()):
        if key in table:
            if not isinstance(table[key], str):
                raise ConfigError(f"{where}: key '{section}.{key}': expected a string, got a list")
            check_value(key, table[key], f"{section}.{key}", where)
    if "docker_image" in table:
        if not isinstance(table["docker_image"], str):
            raise ConfigError(f"{where}: key '{section}.docker_image': expected a string, got a list")
        docker_image(table["docker_image"], f"{section}.docker_image", where)
    if table.get("backend") == "docker" and table.get("python", "auto") == "auto":
        raise ConfigError(f"{where}: key '{section}.python': docker cells need an explicit Python version, the one "
                          f"in the image (like python = \"3.11\"), not \"auto\"")


def _check_consumers(value: Any, where: str) -> None:
    """A list of versions, a range (a PEP 440 specifier set) or "all"."""
    key = "consumers.tensorflow"
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{where}: key '{key}': must not be empty")
        for i, version in enumerate(value):
            check_value("tensorflow", version, f"{key}[{i}]", where)
        return
    text = value.strip()
    if text == "all":
        return
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        raise ConfigError(f"{where}: key '{key}': '{text}' is not a list, a range like \">=1.13,<2\" or \"all\"") from None
    if not text:
        raise ConfigError(f"{where}: key '{key}': empty; give versions, a range like \">=1.13,<2\" or \"all\"")


def _check_choice(value: Any, key: str, known: tuple[str, ...], where: str) -> None:
    if value is not None and value not in known:
        close = difflib.get_close_matches(str(value), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of {', '.join(known)}"
        raise ConfigError(f"{where}: key '{key}': unknown {key.split('.')[-1]} {value!r}; {hint}")


def agent_loaders() -> tuple[str, ...]:
    """The loader names the agent registers (its catalog: names only, no TF)."""
    return tuple(catalog.LOADER_FORMATS)


def _table(data: dict[str, Any], key: str, allowed: tuple[str, ...], where: str,
           keep_lists: bool = False) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: key '{key}': expected a table [{key}]")
    check_keys(table, allowed, where, f"{key}.")
    out: dict[str, Any] = {}
    for k, v in table.items():
        if keep_lists and isinstance(v, list):
            out[k] = [as_string(x, f"{key}.{k}[{i}]", where) for i, x in enumerate(v)]
        else:
            out[k] = as_string(v, f"{key}.{k}", where)
    return out


# -- which versions --------------------------------------------------------------
def consumer_versions(spec: Spec, catalog: Catalog, every_patch: bool = False) -> list[str]:
    """The consumers' TF versions, oldest first: as listed, or every release in a
    range ("all" = every release) — newest patch per minor unless `every_patch`."""
    if isinstance(spec.consumers, list):
        return list(spec.consumers)
    return releases(spec, spec.consumers, "consumers.tensorflow", catalog, every_patch)


def is_range(text: str) -> bool:
    """">=2.10,<2.16" or "all", as opposed to one version ("2.15")."""
    return text.strip() == "all" or any(c in text for c in "<>=!~,")


def producer_versions(spec: Spec, catalog: Catalog) -> list[str] | None:
    """Every producer release to bisect over, where producer.tensorflow is a
    range (a script's producer only); None for one producer version."""
    text = spec.producer.get("tensorflow", "")
    if not is_range(text):
        return None
    return releases(spec, text, "producer.tensorflow", catalog, every_patch=True)


def releases(spec: Spec, text: str, key: str, catalog: Catalog, every_patch: bool) -> list[str]:
    """The releases in a range, oldest first (Catalog.releases, as a matrix's range axis)."""
    text = text.strip()
    wanted = version_range(text)
    if wanted is None:
        raise ConfigError(f"{spec.path}: key '{key}': '{text}' is not a list, a range or \"all\"")
    found = catalog.releases(wanted, plan_mod.PACKAGES["cpu"], every_patch)
    if not found:
        raise SandboxError(f"{spec.path}: no TensorFlow release matches '{text}'")
    return [str(v) for v in found]


def at_producer(spec: Spec, version: str) -> Spec:
    """The spec with its producer pinned to one release (a step of a producer bisection)."""
    return replace(spec, producer={**spec.producer, "tensorflow": version})


def plan_cells(spec: Spec, versions: list[str], catalog: Catalog, found: pythons.Discovery,
               name: str) -> list[plan_mod.Cell]:
    return plan_mod.plan(matrix_mod.parse(consumers_data(spec, versions, name), spec.path), catalog, found)


def consumers_data(spec: Spec, versions: list[str], name: str) -> dict[str, Any]:
    """The consumer cells of `versions`, as a matrix file would give them."""
    return {"name": name, "tensorflow": versions, "python": spec.consumer_python, **spec.consumer_cell}


# -- the producer's artifact -----------------------------------------------------
def _keras_saved_model(path: Path) -> bool:
    """A SavedModel folder with Keras metadata (in keras_metadata.pb, or in
    saved_model.pb's object graph for Keras <= 2.5)."""
    if not (path.is_dir() and (path / "saved_model.pb").exists()):
        return False
    return (path / "keras_metadata.pb").exists() or b'"class_name"' in (path / "saved_model.pb").read_bytes()


DETECT: tuple[tuple[str, Callable[[Path], bool]], ...] = (
    ("keras_saved_model", _keras_saved_model),
    ("saved_model", lambda p: p.is_dir() and (p / "saved_model.pb").exists()),
    ("keras_v3", lambda p: p.suffix == ".keras"),
    ("keras_h5", lambda p: p.suffix in (".h5", ".hdf5")),
    ("tflite", lambda p: p.suffix == ".tflite"),
    ("frozen_graph", lambda p: p.suffix == ".pb" and p.name != "saved_model.pb"),
)

# Every loader of a TF cell that applies to a reporter's model, by the format
# found: a SavedModel folder gets the Keras loaders too ("load_model fails on
# my SavedModel" is a common report), Keras or not.
LOADERS: dict[str, tuple[str, ...]] = {
    fmt: tuple(n for n in catalog.loaders_for("keras_saved_model" if fmt == "saved_model" else fmt)
               if n in catalog.RUNTIME_LOADERS["tensorflow"])
    for fmt, _test in DETECT
}


def find_artifact(folder: Path, fmt: str | None = None) -> tuple[Path, str]:
    """The model in `folder` (or `folder` itself), and its format."""
    candidates = [folder] + sorted(folder.rglob("*")) if folder.is_dir() else [folder]
    for name, test in DETECT:
        if fmt and name != fmt and not (fmt == "saved_model" and name == "keras_saved_model"):
            continue
        for path in candidates:
            if test(path):
                return path, name
    raise SandboxError(f"{folder}: no model found (a SavedModel folder, .pb, .h5, .keras or .tflite)")


def write_manifest(folder: Path, artifact: Path, fmt: str, producer: str) -> None:
    """A producer manifest, as the agent's export writes it, for a user's model."""
    record: dict[str, Any] = {"kind": "artifact", "probe": matrix_mod.MODEL_PROBE, "format": fmt, "status": "exported",
                              "path": str(artifact), "writer": producer, "signature": None,
                              "inputs": None, "outputs": None, "ops": [], "op_attrs": {},
                              "loaders": list(LOADERS[fmt])}
    if fmt in static.GRAPH_FORMATS:
        try:
            info = graphfile.read_model(artifact)
        except SandboxError as exc:  # a corrupt model: the consumers' own errors will say more
            record["reason"] = str(exc)
        else:
            record["ops"] = info.ops
            record["op_attrs"] = {op: sorted(attrs) for op, attrs in info.op_attrs.items()}
            record["default_attrs"] = info.default_attrs
            record["lazy_ops"], record["lazy_attrs"] = info.lazy_ops, info.lazy_attrs
            record["tensorflow"] = info.tensorflow
    for name in ("inputs", "outputs"):
        if (artifact.parent / f"{name}.npz").exists():
            record[name] = str(artifact.parent / f"{name}.npz")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.jsonl").unlink(missing_ok=True)
    append_jsonl(folder / "manifest.jsonl", record)


# -- outcomes --------------------------------------------------------------------
def outcome(load: LoadRow, expect: str | None) -> str:
    """One word for a consumer's result, the thing bisect compares."""
    if expect is not None:
        return "reproduced" if expect in (load.error or "") else "not reproduced"
    return "fails" if load.status.failed else load.status.value


def tried(results: ResultsDocument, spec: Spec) -> list[LoadRow]:
    """The loads that applied, with the spec's loader when it names one."""
    return [l for l in results.loads if l.status.applicable and (not spec.loader or l.loader == spec.loader)]


def summary_rows(results: ResultsDocument, spec: Spec) -> list[list[str | None]]:
    rows = []
    for load in tried(results, spec):
        static = load.static or {}
        missing = (static.get("missing_ops") or []) + (static.get("missing_attrs") or [])
        rows.append([load.consumer, load.loader, load.status.value, load.category or "",
                     ", ".join(load.names), ", ".join(missing),
                     *([] if spec.expect_error is None else
                       ["yes" if outcome(load, spec.expect_error) == "reproduced" else "no"])])
    return rows


def check_loader(spec: Spec, fmt: str) -> None:
    """A requested loader must be one that reads the reporter's model."""
    if spec.loader and spec.loader not in LOADERS[fmt]:
        raise ConfigError(f"{spec.path}: key 'consumers.loader': '{spec.loader}' does not read a {fmt}; "
                          f"loaders that do: {', '.join(LOADERS[fmt])}")


def require_loader(results: ResultsDocument, spec: Spec) -> None:
    """A requested loader that applied in no consumer is an error naming those that did."""
    if not spec.loader:
        return
    applied = list(dict.fromkeys(str(l.loader) for l in results.loads if l.status.applicable))
    if spec.loader not in applied:
        did = ", ".join(applied) or "none"
        raise SandboxError(f"{spec.path}: loader '{spec.loader}' applied in no consumer "
                           f"(loaders that did: {did})")


# -- orchestration ---------------------------------------------------------------
def prepare_producer(spec: Spec, run_dir: Path, catalog: Catalog, found: pythons.Discovery,
                     emit: events.Listener) -> tuple[str, Path]:
    """Run the script in its cell (or take the artifact); write its manifest.
    Returns the producer's name and its manifest folder."""
    from sandbox import commands
    from sandbox.envs import ProvisionFailed, environment, provision

    folder = (run_dir / "producer").resolve()  # the agent reads these paths from other folders
    source = spec.source()
    assert source is not None
    if "artifact" in spec.producer:
        # A copy inside the producer folder: the one place consumers may read
        # (and containers get mounted), and the reporter's file stays untouched.
        artifact, fmt = find_artifact(source, spec.producer.get("format"))
        check_loader(spec, fmt)
        copy = folder / "model" / artifact.name
        shutil.rmtree(copy.parent, ignore_errors=True)
        copy.parent.mkdir(parents=True)
        (shutil.copytree if artifact.is_dir() else shutil.copy2)(artifact, copy)
        write_manifest(folder, copy, fmt, "artifact")
        return "artifact", folder
    data = {k: v for k, v in spec.producer.items() if k in CELL_KEYS}
    [cell] = plan_mod.plan(matrix_mod.parse({"name": spec.name, **data}, spec.path), catalog, found)
    if cell.skip:
        raise SandboxError(f"producer {cell.id}: {cell.skip}")
    env, log = environment(cell), folder / "logs" / "producer.log"
    try:
        provision(env, log, emit, detail=f"{' '.join(cell.requirements)} (producer)")
    except ProvisionFailed as exc:
        raise SandboxError(f"producer {cell.id}: {exc}") from None
    out = folder / "model"
    out.mkdir(parents=True, exist_ok=True)
    emit(events.Note(cell.id, "script", f"{source.name} {out}"))
    done = env.run_python([str(source), str(out)], log=log, timeout=spec.timeout,
                          readable=(source.parent,), writable=(out,))
    if done.returncode != 0:
        raise SandboxError(f"the producer script failed in {cell.id} (exit {done.returncode}): "
                           f"{commands.tail(done.output, 1)} (log: {log})")
    artifact, fmt = find_artifact(out, spec.producer.get("format"))
    check_loader(spec, fmt)
    write_manifest(folder, artifact, fmt, cell.id)
    emit(events.Note(cell.id, "script", f"wrote a {fmt}: {artifact}"))
    return cell.id, folder


def run_consumers(spec: Spec, cells: list[plan_mod.Cell], run_dir: Path, producer: tuple[str, Path],
                  jobs: int, emit: events.Listener) -> ResultsDocument:
    from sandbox import collect, runner

    fmt = json.loads((producer[1] / "manifest.jsonl").read_text().splitlines()[0])["format"]
    versions = list(dict.fromkeys(c.request.tensorflow for c in cells))
    mx = matrix_mod.for_model({**consumers_data(spec, versions, spec.name), "timeout": spec.timeout}, spec.path, fmt)
    consumers = run_dir / "consumers"  # the run starts this folder afresh; the producer lives beside it
    run = runner.Run(mx, cells, consumers, jobs, emit, keras_unsafe=not spec.keras_safe_mode)
    external = stored_model(run.store, *producer)
    results = run.run(export=False, external=external)
    return collect.collect(mx, results, [(s.producer, s.artifact) for s in external])


def stored_model(store: ResultsStore, name: str, folder: Path) -> list[Source]:
    """A user's model joins a run as a producer, stored by its content."""
    found = []
    for record in read_jsonl(folder / MANIFEST):
        if record.get("kind") != "artifact":
            continue
        files, manifest = external_files(folder.resolve(), record)
        payload = Artifact.from_agent(record).to_json()
        key, payload = store.put_export(None, payload, manifest, files)
        found.append(Source(name, key, Artifact.from_agent(payload)))
    return found


def unconfined(spec: Spec) -> bool:
    """Whether the reporter's code runs on the host (a venv cell) somewhere."""
    producer_venv = "script" in spec.producer and spec.producer.get("backend", "venv") == "venv"
    return producer_venv or spec.consumer_cell.get("backend", "venv") == "venv"


def consumer_outcome(results: ResultsDocument, spec: Spec) -> str:
    """A single consumer's verdict across its loaders: the first reproduction or
    failure wins; a cell that did not run says why."""
    cell = results.cells[0]
    if not cell.ran:
        return cell.status.value
    loads = tried(results, spec)
    ours = [l for l in loads if l.status.harness]
    if ours:  # not an outcome of the release: bisecting on it would find our bug
        raise HarnessError(f"{cell.id}: sandbox's own code failed loading with {ours[0].loader}: "
                           f"{ours[0].error_type}: {first_line(ours[0].error)} "
                           f"(at {ours[0].raised_in or '?'}); please report it")
    words = [outcome(l, spec.expect_error) for l in loads]
    for word in ("reproduced", "fails"):
        if word in words:
            return word
    return words[0] if words else "nothing loaded"
