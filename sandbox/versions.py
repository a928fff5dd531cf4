"""Release catalog of TF and the runtimes beside it (keras, ai-edge-litert,
tflite-runtime, jaxlib, tf-nightly...), read from the package index (PEP 691
JSON) and cached.

"1.13" means the newest 1.13.x with a wheel for the cell's Python and this
machine's platform; the upload date of that release is the date the cell's
dependencies are resolved as of. A pure-Python wheel (keras-3.5.0-py3-none-any)
serves every Python and platform.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from sandbox.errors import SandboxError
from sandbox.store import cache_dir

CACHE_SECONDS = 24 * 3600
_ACCEPT = "application/vnd.pypi.simple.v1+json"


PYPI = "https://pypi.org/simple"


def index_url() -> str:
    for var in ("SANDBOX_INDEX_URL", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    return PYPI


def catalog_file(package: str) -> Path:
    """Where the file list of `package` is cached: one folder per index, so
    another index's catalog never stands in for PyPI's."""
    url, folder = index_url(), cache_dir() / "catalog"
    if url != PYPI:
        from sandbox.digests import short
        folder = folder / short(url)
    return folder / f"{package}.json"


@dataclass(frozen=True)
class Wheel:
    version: Version
    pythons: frozenset[str]  # "3.7", ...
    platforms: frozenset[str]
    uploaded: dt.datetime
    requires_python: str = ""  # the index's Requires-Python ("" where it gives none)

    @property
    def pure(self) -> bool:
        """A pure-Python wheel: for any platform, and any Python its Requires-Python allows."""
        return self.platforms == frozenset({"any"})

    def serves(self, python: str, machine: str) -> bool:
        """Whether this wheel installs on `python` ("3.11") on Linux `machine`."""
        if self.pure:
            return _allows(self.requires_python, python)
        return python in self.pythons and self.linux(machine)

    def linux(self, machine: str) -> bool:
        return self.pure or any(p.endswith(machine) and "linux" in p for p in self.platforms)


@dataclass(frozen=True)
class Resolved:
    package: str  # "tensorflow-cpu"
    version: str  # "2.15.1"
    uploaded: dt.datetime

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def exclude_newer(self) -> str:
        """Resolve dependencies as they were just after the release."""
        return (self.uploaded + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Catalog:
    """Wheels of the TF distributions, by package name, fetched lazily."""

    def __init__(self, offline: bool = False) -> None:
        self.offline = offline
        self._wheels: dict[str, list[Wheel]] = {}

    def wheels(self, package: str) -> list[Wheel]:
        if package not in self._wheels:
            self._wheels[package] = [w for w in map(_wheel, _files(package, self.offline)) if w]
        return self._wheels[package]

    def versions(self, package: str = "tensorflow") -> list[Version]:
        return sorted({w.version for w in self.wheels(package)})

    def resolve(self, spec: str, python: str, packages: tuple[str, ...]) -> Resolved | None:
        """Newest release matching `spec` with a wheel for `python` here; at
        equal versions the earlier of `packages` wins."""
        machine = platform.machine()
        best: tuple[Version, int, str] | None = None
        for rank, package in enumerate(packages):
            for wheel in self.wheels(package):
                if not (matches(spec, wheel.version) and wheel.serves(python, machine)):
                    continue
                key = (wheel.version, -rank, package)
                if best is None or key[:2] > best[:2]:
                    best = key
        if best is None:
            return None
        version, _rank, package = best
        return Resolved(package, str(version), self.uploaded(package, version))

    def uploaded(self, package: str, version: Version) -> dt.datetime:
        return max(w.uploaded for w in self.wheels(package) if w.version == version)

    def newest(self, python: str, packages: tuple[str, ...], before: dt.datetime | None = None,
               final: bool = True, wanted: SpecifierSet | None = None) -> Resolved | None:
        """The newest release of `packages` (in `wanted`) with a wheel for
        `python` here that was uploaded before `before` (a companion as of
        another release: the TensorFlow that was out when a Keras was); with
        `final=False`, dev releases too (tf-nightly). At equal versions the
        earlier package wins."""
        machine = platform.machine()
        best: tuple[Version, int, str] | None = None
        for rank, package in enumerate(packages):
            for wheel in self.wheels(package):
                if (final and not is_final(wheel.version)) or not wheel.serves(python, machine) \
                        or (before is not None and wheel.uploaded > before) \
                        or (wanted is not None and not wanted.contains(wheel.version, prereleases=not final)):
                    continue
                if best is None or (wheel.version, -rank) > best[:2]:
                    best = (wheel.version, -rank, package)
        if best is None:
            return None
        version, _rank, package = best
        return Resolved(package, str(version), self.uploaded(package, version))

    def releases(self, wanted: SpecifierSet, packages: tuple[str, ...], every_patch: bool = False) -> list[Version]:
        """Final releases in `wanted` with a Linux wheel for this machine, oldest
        first: the newest patch of each minor, or every patch."""
        machine = platform.machine()
        found = sorted({w.version for pkg in packages for w in self.wheels(pkg)
                        if is_final(w.version) and w.version in wanted and w.version >= Version("1.0")
                        and w.linux(machine)})
        return found if every_patch else newest_per_minor(found)

    def pythons_for(self, spec: str, packages: tuple[str, ...]) -> list[str]:
        found = {py for pkg in packages for w in self.wheels(pkg) if matches(spec, w.version) for py in w.pythons}
        return sorted(found, key=lambda v: tuple(map(int, v.split("."))))


def version_range(text: str) -> SpecifierSet | None:
    """`text` as a range of releases (">=1.12", ">=1.13,<2", "all"), or None
    when it names versions ("1.15", "2.15.1")."""
    text = text.strip()
    if text == "all":
        return SpecifierSet("")
    if not text or text[0] not in "<>=!~":
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


def is_range(text: str) -> bool:
    return version_range(text) is not None


def natural(text: str) -> tuple[tuple[int, str], ...]:
    """A sort key that orders the versions inside names as versions:
    tf2.2.3-py3.8-cpu before tf2.10.1-py3.10-cpu (text order puts 2.10 first)."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in _DIGITS.split(text) if part)


_DIGITS = re.compile(r"(\d+)")


def minor(version: Version) -> str:
    """"1.13" for 1.13.2: the spec that picks the newest patch with a wheel for a cell's Python."""
    return f"{version.major}.{version.minor}"


def is_final(version: Version) -> bool:
    return not (version.is_prerelease or version.is_devrelease)


def newest_per_minor(found: list[Version]) -> list[Version]:
    newest: dict[tuple[int, int], Version] = {}
    for v in sorted(found):
        newest[(v.major, v.minor)] = v
    return sorted(newest.values())


def matches(spec: str, version: Version) -> bool:
    """"1.13" matches 1.13.x final releases; "2.15.1" matches exactly."""
    try:
        wanted = Version(spec)
    except InvalidVersion:
        return False
    if wanted.is_prerelease:
        return version == wanted
    if version.is_prerelease or version.is_devrelease:
        return False
    return version.release[: len(wanted.release)] == wanted.release


def _allows(requires: str, python: str) -> bool:
    """Whether a Requires-Python (">=3.9") allows `python` ("3.11"); an unreadable one does."""
    try:
        return not requires or Version(python) in SpecifierSet(requires)
    except (InvalidSpecifier, InvalidVersion):
        return True


def _wheel(entry: dict[str, str]) -> Wheel | None:
    try:
        _name, version, _build, tags = parse_wheel_filename(entry["filename"])
    except (InvalidWheelFilename, InvalidVersion, KeyError):
        return None
    pythons = frozenset(f"{t.interpreter[2]}.{t.interpreter[3:]}" for t in tags
                        if t.interpreter.startswith("cp") and len(t.interpreter) > 3)
    uploaded = dt.datetime.fromisoformat(entry["upload-time"].replace("Z", "+00:00"))
    return Wheel(version, pythons, frozenset(t.platform for t in tags), uploaded, str(entry.get("requires-python") or ""))


def _files(package: str, offline: bool) -> list[dict[str, str]]:
    cache = catalog_file(package)
    fresh = cache.exists() and time.time() - cache.stat().st_mtime < CACHE_SECONDS
    cached = _read_cache(cache) if cache.exists() else None
    if (offline or fresh) and cached is not None:
        return cached
    if offline:
        raise SandboxError(f"no usable cached release catalog for {package} ({cache}) and --offline was given")
    try:
        files = _fetch(package)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        if cached is not None:
            return cached  # stale beats nothing: work offline
        raise SandboxError(f"cannot read the release catalog of {package} from {index_url()}: {exc}") from exc
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(files))
    os.replace(tmp, cache)
    return files


def _read_cache(path: Path) -> list[dict[str, str]] | None:
    """The cached file list, or None when it is unreadable (then it is refetched)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, list) else None


def _fetch(package: str) -> list[dict[str, str]]:
    request = urllib.request.Request(f"{index_url()}/{package}/", headers={"Accept": _ACCEPT})
    with urllib.request.urlopen(request, timeout=60) as response:
        data = json.load(response)
    return [{"filename": f["filename"], "upload-time": f["upload-time"],
             **({"requires-python": f["requires-python"]} if f.get("requires-python") else {})}
            for f in data.get("files", []) if f["filename"].endswith(".whl") and f.get("upload-time")
            and not f.get("yanked")]
