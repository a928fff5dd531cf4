"""Op registries of TF releases: shipped with the package (one per minor
release, from the agent's `registry` verb), looked up by version."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from sandbox import events
from sandbox.errors import SandboxError

SHIPPED = Path(__file__).resolve().parent / "registries"
_TARGET = re.compile(r"^(?:tf|tensorflow)?(?:==)?\s*(\d+\.\d+(?:\.\d+)?)$")


def known() -> dict[str, Path]:
    """Minor release ("2.15") -> its registry file, oldest first."""
    found = {}
    for path in SHIPPED.glob("tf*.json.gz"):
        version = Version(path.name[2:-len(".json.gz")])
        found[f"{version.major}.{version.minor}"] = path
    return dict(sorted(found.items(), key=lambda kv: Version(kv[0])))


def parse_target(text: str) -> str:
    """"tf==2.15", "tensorflow==2.15.1" or "2.15" -> "2.15"/"2.15.1"."""
    match = _TARGET.match(text.strip())
    if not match:
        raise SandboxError(f"--against: '{text}' is not like tf==2.15")
    return match.group(1)


def load(target: str) -> tuple[str, dict[str, Any]]:
    """The registry for `target` and the exact release it was read from."""
    try:
        wanted = Version(target)
    except InvalidVersion:
        raise SandboxError(f"'{target}' is not a TensorFlow version") from None
    registries = known()
    path = registries.get(f"{wanted.major}.{wanted.minor}")
    if path is None:
        span = f"{next(iter(registries))} to {list(registries)[-1]}" if registries else "none"
        raise SandboxError(f"no stored op registry for TensorFlow {target} (known: {span})")
    return path.name[2:-len(".json.gz")], read(path)


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


def save(data: dict[str, Any], version: str) -> Path:
    """Store a registry compactly (attr names only) for shipping."""
    SHIPPED.mkdir(parents=True, exist_ok=True)
    slim = {"tensorflow": version, "python": data.get("python"),
            "ops": {op: {"attrs": sorted(info.get("attrs", []))} for op, info in sorted(data["ops"].items())},
            "tflite_ops": data.get("tflite_ops"),  # op -> highest version its interpreter resolves
            "keras": data.get("keras")}  # tf.keras: version, major, layer class names
    path = SHIPPED / f"tf{version}.json.gz"
    with gzip.GzipFile(path, "wb", mtime=0) as fh:
        fh.write(json.dumps(slim, sort_keys=True, separators=(",", ":")).encode())
    return path


def build(versions: list[str], emit: events.Listener) -> list[Path]:
    """Provision a cell per version (python "auto"), dump its registry, store it."""
    import tempfile

    from sandbox import matrix, plan, pythons, runner
    from sandbox.envs import ProvisionFailed, environment
    from sandbox.versions import Catalog

    mx = matrix.parse({"tensorflow": versions, "name": "registries"}, Path("registries"))
    stored = []
    for cell in plan.plan(mx, Catalog(), pythons.discover()):
        if cell.skip or cell.tensorflow is None:
            emit(events.CellFinished(cell.id, "skipped", cell.skip))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            log, out = Path(tmp) / "registry.log", Path(tmp) / "registry.json"
            try:
                env = environment(cell)
                env.provision(log)
                env.run_python([str(runner.AGENT), "registry", "--out", str(out)], log=log, timeout=600)
                stored.append(save(read(out), cell.tensorflow))
                emit(events.Note(cell.id, "registry", f"stored {stored[-1]}"))
            except (ProvisionFailed, SandboxError) as exc:
                emit(events.CellFinished(cell.id, "error", str(exc)))
    return stored
