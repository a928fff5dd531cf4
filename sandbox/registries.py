"""Registries of TF releases and of the runtimes beside TF: shipped with the
package (one per minor release, from the agent's `registry` verb), looked up
by runtime and version.

A TF registry holds the release's ops and attrs, its TFLite interpreter's op
versions and Flex support, and its tf.keras (layer classes, config keys); a
runtime's (sandbox/registries/<package>/: keras, ai-edge-litert,
tflite-runtime) holds what that runtime has: an interpreter's op versions and
Flex support, or a Keras's layers and config keys."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from sandbox import digests, events, runtimes
from sandbox.errors import SandboxError

SHIPPED = Path(__file__).resolve().parent / "registries"
TENSORFLOW = runtimes.TENSORFLOW
_TARGET = re.compile(r"^(?:tf|tensorflow)?(?:==)?\s*(\d+\.\d+(?:\.\d+)?)$")
_RUNTIME_TARGET = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*)\s*==\s*(\d+\.\d+(?:\.\d+)?)$")
_TF_FILE = re.compile(r"^tf(\d[^/]*)\.json\.gz$")
PACKAGES = tuple(r.package for r in runtimes.RUNTIMES.values())  # runtimes with registries of their own


def folder(runtime: str) -> Path:
    return SHIPPED if runtime == TENSORFLOW else SHIPPED / runtime


def _version_of(path: Path, runtime: str) -> str:
    """"2.15.1" of tf2.15.1.json.gz (TF) or of keras/3.5.0.json.gz (a runtime)."""
    name = path.name[:-len(".json.gz")]
    return name[2:] if runtime == TENSORFLOW else name


def known(runtime: str = TENSORFLOW) -> dict[str, Path]:
    """Minor release ("2.15") -> its registry file, oldest first."""
    found = {}
    paths = [p for p in SHIPPED.glob("tf*.json.gz") if _TF_FILE.match(p.name)] if runtime == TENSORFLOW \
        else list(folder(runtime).glob("*.json.gz"))
    for path in paths:
        version = Version(_version_of(path, runtime))
        found[f"{version.major}.{version.minor}"] = path
    return dict(sorted(found.items(), key=lambda kv: Version(kv[0])))


def parse_target(text: str) -> str:
    """"tf==2.15", "tensorflow==2.15.1" or "2.15" -> "2.15"/"2.15.1"."""
    match = _TARGET.match(text.strip())
    if not match:
        raise SandboxError(f"--against: '{text}' is not like tf==2.15")
    return match.group(1)


def split_target(text: str) -> tuple[str, str]:
    """(runtime, version) of a target: "tf==2.15" -> ("tensorflow", "2.15");
    "keras==3.5", "ai-edge-litert==1.2", "tflite-runtime==2.14" -> that runtime."""
    text = text.strip()
    match = _RUNTIME_TARGET.match(text)
    if match and match.group(1).lower().replace("_", "-") in PACKAGES:
        return match.group(1).lower().replace("_", "-"), match.group(2)
    if _TARGET.match(text):
        return TENSORFLOW, parse_target(text)
    raise SandboxError(f"--against: '{text}' is not like tf==2.15 or {'==X, '.join(PACKAGES)}==X")


def load(target: str, runtime: str = TENSORFLOW) -> tuple[str, dict[str, Any]]:
    """The registry for `target` of `runtime` and the exact release it was read from."""
    what = "TensorFlow" if runtime == TENSORFLOW else runtime
    try:
        wanted = Version(target)
    except InvalidVersion:
        raise SandboxError(f"'{target}' is not a {what} version") from None
    registries = known(runtime)
    path = registries.get(f"{wanted.major}.{wanted.minor}")
    if path is None:
        span = f"{next(iter(registries))} to {list(registries)[-1]}" if registries else "none"
        noun = "op registry" if runtime == TENSORFLOW else "registry"
        raise SandboxError(f"no stored {noun} for {what} {target} (known: {span})")
    return _version_of(path, runtime), read(path)


def read(path: Path) -> dict[str, Any]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SandboxError(f"{path}: cannot read the op registry: {exc}") from None
    if not isinstance(data, dict) or "ops" not in data:
        raise SandboxError(f"{path}: not an op registry (no 'ops')")
    return data


def save(data: dict[str, Any], version: str, runtime: str = TENSORFLOW) -> Path:
    """Store a registry compactly (attr names only) for shipping."""
    slim = {"tensorflow": data.get("tensorflow") if runtime != TENSORFLOW else version,
            "python": data.get("python"),
            "ops": {op: {"attrs": sorted(info.get("attrs", []))} for op, info in sorted(data["ops"].items())},
            "tflite_ops": data.get("tflite_ops"),  # op -> highest version its interpreter resolves
            "interpreters": data.get("interpreters"),  # per interpreter: op versions and Flex
            "keras": data.get("keras")}  # tf.keras (a Keras cell: its keras): version, layers, config keys
    if runtime != TENSORFLOW:
        slim["runtime"] = {"package": runtime, "version": version}
    where = folder(runtime)
    where.mkdir(parents=True, exist_ok=True)
    path = where / (f"tf{version}.json.gz" if runtime == TENSORFLOW else f"{version}.json.gz")
    with gzip.GzipFile(path, "wb", mtime=0) as fh:
        fh.write(json.dumps(slim, sort_keys=True, separators=(",", ":")).encode())
    return path


# The Keras backend registries are measured on by default: the lightest (no
# TensorFlow). Its layer classes and their config keys are the backend's too.
REGISTRY_KERAS_BACKEND = "jax"


def build(targets: list[str], emit: events.Listener, keras_backend: str = REGISTRY_KERAS_BACKEND) -> list[Path]:
    """Provision a cell per target (python "auto"; "2.16" or "tf==2.16" for TF,
    "keras==3.5" and the like for a runtime, on `keras_backend`), dump its
    registry, store it."""
    import tempfile

    from sandbox import matrix, plan, pythons
    from sandbox.envs import ProvisionFailed, environment, provision
    from sandbox.versions import Catalog

    wanted = [split_target(t) for t in targets]
    keys = {r.package: r.key for r in runtimes.RUNTIMES.values()}
    data: dict[str, Any] = {"name": "registries", "keras_backend": keras_backend} \
        if any(r == "keras" for r, _ in wanted) else {"name": "registries"}
    for runtime, version in wanted:
        data.setdefault(keys.get(runtime, "tensorflow"), []).append(version)
    mx = matrix.parse(data, Path("registries"))
    stored = []
    for cell in plan.plan(mx, Catalog(), pythons.discover()):
        if cell.skip or cell.release is None:
            emit(events.CellFinished(cell.id, "skipped", cell.skip))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            log, out = Path(tmp) / "registry.log", Path(tmp) / "registry.json"
            try:
                env = environment(cell)
                provision(env, log, emit)
                env.run_python([str(digests.AGENT), "registry", "--out", str(out)], log=log, timeout=600)
                package = cell.release.package if cell.request.runtime else TENSORFLOW
                stored.append(save(read(out), cell.release.version, package))
                emit(events.Note(cell.id, "registry", f"stored {stored[-1]}"))
            except (ProvisionFailed, SandboxError) as exc:
                emit(events.CellFinished(cell.id, "error", str(exc)))
    return stored
