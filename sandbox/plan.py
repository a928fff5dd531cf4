"""Plan: a pure function from the matrix, the release catalog and the found
interpreters to resolved cells (or skips with their reasons).

A TF cell resolves to a TensorFlow release; a runtime cell (sandbox.runtimes)
to a release of its runtime's package and, for Keras, the newest release of
its backend that was out by then (or the TensorFlow an include pins). Either
way the cell's dependencies are resolved as of its release; an extra package
pinned by version (tf-keras=={tensorflow_minor}.*) as of its own release when
that came later (tf-keras 2.20.1 came three weeks after TF 2.20.0)."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from sandbox import runtimes
from sandbox.agent import catalog
from sandbox.errors import ConfigError
from sandbox.matrix import NIGHTLY, REFERENCE, CellRequest, Matrix, fill_packages, packages_suffix
from sandbox.pythons import Discovery, Interpreter
from sandbox.versions import Resolved, minor, version_range

# Which distributions carry a build, in order of preference at equal versions.
# TF 1.x shipped GPU support as `tensorflow-gpu`; from 2.1 `tensorflow` has it
# and `tensorflow-cpu` is the CPU-only build.
PACKAGES = {"cpu": ("tensorflow-cpu", "tensorflow"), "gpu": ("tensorflow", "tensorflow-gpu")}
NIGHTLY_PACKAGES = ("tf-nightly",)
TF_PACKAGES = frozenset({"tensorflow", "tensorflow-cpu", "tensorflow-gpu", *NIGHTLY_PACKAGES})


def distributions(request: CellRequest) -> tuple[str, ...]:
    """Where a cell's TF comes from. Extra packages (tf-keras, ...) depend on
    `tensorflow` itself: a `tensorflow-cpu` beside them would pull in a second,
    clashing TF, so such cells install `tensorflow` (it runs on the CPU too)."""
    if request.runtime:
        return (runtimes.RUNTIMES[request.runtime].package,)
    if request.tensorflow == NIGHTLY:
        return NIGHTLY_PACKAGES
    if request.packages and request.image == "cpu":
        return ("tensorflow", "tensorflow-cpu")
    return PACKAGES[request.image]


class Releases(Protocol):
    def resolve(self, spec: str, python: str, packages: tuple[str, ...]) -> Resolved | None: ...
    def pythons_for(self, spec: str, packages: tuple[str, ...]) -> list[str]: ...
    def releases(self, wanted: SpecifierSet, packages: tuple[str, ...],
                 every_patch: bool = False) -> list[Version]: ...
    def newest(self, python: str, packages: tuple[str, ...], before: dt.datetime | None = None,
               final: bool = True, wanted: SpecifierSet | None = None) -> Resolved | None: ...


@dataclass(frozen=True)
class Cell:
    id: str
    request: CellRequest
    image: str
    backend: str
    python: Interpreter | None = None
    release: Resolved | None = None  # the cell's own: its TF, or its runtime's (keras==3.5.0)
    install_args: tuple[str, ...] = ()
    skip: str | None = None
    extras: tuple[str, ...] = field(default=())
    docker_image: str | None = None  # the image reference of a docker cell, placeholders filled
    in_python_image: bool = False  # a venv cell whose Python is not installed here: in the matrix's python_image
    companions: tuple[Resolved, ...] = ()  # what a runtime runs on: a Keras cell's backend (jaxlib==0.4.31)

    @property
    def python_version(self) -> str:
        """The host interpreter's full version; for a docker cell, the Python asked of its image."""
        return self.python.full if self.python else self.request.python

    @property
    def where(self) -> str:
        """Where the cell runs, for people."""
        if self.backend == "docker":
            return f"image {self.docker_image}"
        return str(self.python.path) if self.python else "?"

    @property
    def runtime(self) -> str:
        """The cell's runtime: "tensorflow", or a runtimes.RUNTIMES key ("keras")."""
        return self.request.runtime or runtimes.TENSORFLOW

    @property
    def tensorflow(self) -> str | None:
        """The TensorFlow release in the cell: its own, or a Keras cell's backend."""
        found = [r for r in ((self.release,) if self.release else ()) + self.companions if r.package in TF_PACKAGES]
        return found[0].version if found else None

    @property
    def nightly(self) -> bool:
        return bool(self.release and self.release.package in NIGHTLY_PACKAGES)

    @property
    def requirement(self) -> str | None:
        if not self.release:
            return None
        extra = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.release.package}{extra}=={self.release.version}"

    @property
    def packages(self) -> tuple[str, ...]:
        """The matrix's extra packages, their placeholders filled for this cell's TF."""
        return fill_packages(self.request.packages, self.tensorflow or "0.0.0")

    @property
    def requirements(self) -> tuple[str, ...]:
        """Everything the cell installs: its TF or runtime, the runtime's backend, then
        the matrix's extra packages."""
        unpinned = runtimes.BACKENDS[self.request.keras_backend].unpinned if self.request.keras_backend else ()
        return (((self.requirement,) if self.requirement else ()) + tuple(c.requirement for c in self.companions)
                + unpinned + self.packages)

    @property
    def overrides(self) -> tuple[str, ...]:
        """Requirements that win over other packages' pins: a Keras cell's keras
        over the `keras` its TensorFlow asks for (TF 2.15 pins keras < 2.16)."""
        return (self.requirement,) if self.request.runtime == "keras" and self.requirement and self.tensorflow else ()

    @property
    def variables(self) -> dict[str, str]:
        """Environment variables the cell's processes run with (its Keras backend)."""
        return {"KERAS_BACKEND": self.request.keras_backend} if self.request.keras_backend else {}

    @property
    def as_of(self) -> str | None:
        """The date the cell's dependencies are resolved as of (its installer's --exclude-newer)."""
        args = list(self.install_args)
        return args[args.index("--exclude-newer") + 1] if "--exclude-newer" in args else None

    @property
    def package_dates(self) -> tuple[tuple[str, str], ...]:
        """(package, date) of the packages resolved as of a later date than the cell's."""
        args = list(self.install_args)
        found = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--exclude-newer-package"]
        return tuple((text.partition("=")[0], text.partition("=")[2]) for text in found)

    @property
    def loaders(self) -> tuple[str, ...]:
        """The loaders the cell's runtime and extra packages have."""
        names = [Requirement(p).name for p in self.packages]
        return tuple(catalog.cell_loaders(runtimes.package_of(self.request.runtime), names))

    def writes(self, fmt: str) -> bool:
        """Whether the cell's runtime writes `fmt` (a TF cell: every format, the agent decides)."""
        formats = catalog.RUNTIME_FORMATS.get(runtimes.package_of(self.request.runtime))
        return formats is None or fmt in formats

    @property
    def expected(self) -> dict[str, str]:
        """Distribution -> the version the cell must import (the health check's test)."""
        return {r.package: r.version for r in ((self.release,) if self.release else ()) + self.companions}


def cell_id(tensorflow: str, python: str, image: str, backend: str = "venv", packages: tuple[str, ...] = ()) -> str:
    """venv cells keep the original ids; other backends add theirs: tf2.15.1-py3.11-cpu-docker;
    extra packages add their names: tf2.18.1-py3.11-cpu+tf-keras."""
    return f"tf{tensorflow}-py{python}-{image}" + ("" if backend == "venv" else f"-{backend}") + packages_suffix(packages)


def runtime_cell_id(request: CellRequest, release: Resolved, companions: tuple[Resolved, ...], python: str) -> str:
    """keras3.5.0-jax0.4.31-py3.12-cpu, keras3.5.0-tf2.17.0-py3.12-cpu, litert1.2.0-py3.11-cpu."""
    head = f"{runtimes.RUNTIMES[request.runtime].prefix}{release.version}"
    if request.keras_backend:
        backend = runtimes.BACKENDS[request.keras_backend]
        head += f"-{backend.prefix}{companions[0].version}" if companions else f"-{backend.prefix}"
    return f"{head}-py{python}-{request.image}" + packages_suffix(request.packages)


def plan(matrix: Matrix, releases: Releases, pythons: Discovery) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for request in expand(matrix, releases):
        cell = _resolve(request, releases, pythons, matrix.python_image)
        cells.setdefault(cell.id, cell)
    return list(cells.values())


def references(cells: list[Cell]) -> frozenset[str]:
    """The plan's reference cells (a related map's): measured only in pairs with the others."""
    return frozenset(c.id for c in cells if c.request.role == REFERENCE)


def expand(matrix: Matrix, releases: Releases) -> Iterator[CellRequest]:
    """The matrix's requests with each range of versions (">=1.12") replaced by
    one request per minor release in it, oldest first, less the excluded ones."""
    for request in matrix.cells:
        key = request.runtime or "tensorflow"
        wanted = version_range(request.value(key))
        if wanted is None:
            yield request
            continue
        found = releases.releases(wanted, distributions(request))
        if not found:
            what = runtimes.RUNTIMES[key].package if request.runtime else "TensorFlow"
            raise ConfigError(f"{matrix.path}: key '{key}': no {what} release with a Linux "
                              f"{platform.machine()} wheel matches '{request.value(key)}'")
        for version in found:
            one = replace(request, version=minor(version)) if request.runtime else \
                replace(request, tensorflow=minor(version))
            if not matrix.excluded(one):
                yield one


def _resolve(request: CellRequest, releases: Releases, pythons: Discovery, python_image: str = "") -> Cell:
    if request.backend == "docker":
        return _resolve_docker(request, releases)
    if python_image and not request.runtime and request.tensorflow != NIGHTLY:  # runtimes, nightly: where installed
        return _resolve_anywhere(request, releases, pythons, python_image)
    packages = distributions(request)
    candidates = pythons.newest_first() if request.python == "auto" else [pythons.find(request.python)]
    for interp in candidates:
        if interp is None:
            break
        if request.runtime:
            cell = _resolve_runtime(request, releases, interp)
            if cell is not None:
                return cell
            continue
        release = (releases.newest(interp.minor, packages, final=False) if request.tensorflow == NIGHTLY
                   else releases.resolve(request.tensorflow, interp.minor, packages))
        if release:
            args = _install_args(release, release.version) + _package_args(request, release, release.version,
                                                                           interp.minor, releases)
            return Cell(cell_id(release.version, interp.minor, request.image, packages=request.packages), request, request.image,
                        request.backend, interp, release, args, extras=_extras(release, request.image))
    return Cell(request.label, request, request.image, request.backend, skip=_why_not(request, releases, pythons))


def _resolve_anywhere(request: CellRequest, releases: Releases, pythons: Discovery, python_image: str) -> Cell:
    """A venv cell that runs wherever its Python is: installed here (venv), or
    in `python_image` (docker backend, the same id). "auto" is the newest
    Python the release has a wheel for, whatever this machine has installed."""
    minor = request.python
    if minor == "auto":
        supported = [p for p in releases.pythons_for(request.tensorflow, distributions(request))
                     if p.startswith("3.") and Version(p) >= Version("3.6")]
        if not supported:
            return Cell(request.label, request, request.image, request.backend,
                        skip=_why_not(request, releases, pythons))
        minor = max(supported, key=Version)
    pinned = replace(request, python=minor)
    if pythons.find(minor) is not None:
        return _resolve(pinned, releases, pythons)
    cell = _resolve_docker(replace(pinned, backend="docker", docker_image=python_image), releases)
    if cell.skip:
        return replace(cell, id=pinned.label)
    return replace(cell, id=cell_id(str(cell.tensorflow), minor, request.image, packages=request.packages),
                   in_python_image=True)


def _resolve_runtime(request: CellRequest, releases: Releases, interp: Interpreter) -> Cell | None:
    """A runtime cell on this interpreter, or None when a wheel it needs is missing."""
    release = releases.resolve(request.version, interp.minor, distributions(request))
    if release is None:
        return None
    companions: tuple[Resolved, ...] = ()
    if request.keras_backend:
        backend = runtimes.BACKENDS[request.keras_backend]
        found = (releases.resolve(request.tensorflow, interp.minor, backend.binaries) if request.tensorflow
                 else releases.newest(interp.minor, backend.binaries, before=release.uploaded + dt.timedelta(days=1)))
        if found is None:
            return None
        companions = (found,)
    dated = max((release, *companions), key=lambda r: r.uploaded)  # the dependencies' date: the latest release
    tf = next((c.version for c in companions if c.package in TF_PACKAGES), "0.0.0")
    args = _install_args(dated, None) + _package_args(request, dated, tf, interp.minor, releases)
    return Cell(runtime_cell_id(request, release, companions, interp.minor), request, request.image, request.backend,
                interp, release, args, companions=companions)


def _resolve_docker(request: CellRequest, releases: Releases) -> Cell:
    """The Python is the image's (checked when the cell is provisioned), so no
    host interpreter is needed; the release still decides the version and date."""
    release = releases.resolve(request.tensorflow, request.python, distributions(request))
    if release is None:
        return Cell(request.label, request, request.image, request.backend,
                    skip=_why_not(request, releases, Discovery({}, ())))
    image = request.docker_image.format(tensorflow=release.version, python=request.python,
                                        gpu="-gpu" if request.image == "gpu" else "")
    return Cell(cell_id(release.version, request.python, request.image, request.backend, request.packages), request, request.image,
                request.backend, None, release,
                _install_args(release, release.version) + _package_args(request, release, release.version,
                                                                        request.python, releases),
                extras=_extras(release, request.image),
                docker_image=image)


def _why_not(request: CellRequest, releases: Releases, pythons: Discovery) -> str:
    if request.runtime:
        return _why_not_runtime(request, releases, pythons)
    if request.tensorflow == NIGHTLY:
        return (f"no tf-nightly build has a Linux {platform.machine()} wheel for an installed Python "
                f"(found {', '.join(pythons.interpreters) or 'none'})")
    supported = [p for p in releases.pythons_for(request.tensorflow, PACKAGES[request.image]) if p.startswith("3.")]
    if not supported:
        return f"no TensorFlow release matches '{request.tensorflow}' on the package index"
    if request.python == "auto":
        return (f"no installed Python has a TensorFlow {request.tensorflow} wheel (it supports "
                f"{', '.join(supported)}; found {', '.join(pythons.interpreters) or 'none'})")
    if request.backend == "venv" and pythons.find(request.python) is None:
        wheel = "" if request.python in supported else \
            f"; TensorFlow {request.tensorflow} has no wheel for it either (it has {', '.join(supported)})"
        return pythons.missing_reason(request.python) + wheel
    if request.python not in supported:
        return f"TensorFlow {request.tensorflow} has no wheel for Python {request.python} (it has {', '.join(supported)})"
    return pythons.missing_reason(request.python)


def _why_not_runtime(request: CellRequest, releases: Releases, pythons: Discovery) -> str:
    package = runtimes.RUNTIMES[request.runtime].package
    found = ", ".join(pythons.interpreters) or "none"
    supported = releases.pythons_for(request.version, (package,))
    if not releases.releases(SpecifierSet(""), (package,), every_patch=True) or not any(
            releases.resolve(request.version, p, (package,)) for p in [*supported, *pythons.interpreters]):
        return f"no {package} release matches '{request.version}' on the package index for Linux {platform.machine()}"
    if request.keras_backend:
        backend = runtimes.BACKENDS[request.keras_backend]
        what = f"TensorFlow {request.tensorflow}" if request.tensorflow else f"a {backend.binaries[0]} release out by then"
        return f"no installed Python ({found}) has wheels for {package} {request.version} and {what}"
    return (f"no installed Python has a {package} {request.version} wheel (it supports "
            f"{', '.join(supported) or '?'}; found {found})")


def _install_args(dated: Resolved, tensorflow: str | None) -> tuple[str, ...]:
    """The installer's arguments: dependencies as of `dated`'s release."""
    args = ["--exclude-newer", dated.exclude_newer]
    if tensorflow is not None and Version(tensorflow) < Version("1.12"):
        # absl-py is an sdist there; building it needs a setuptools of its time.
        args += ["--exclude-newer-package", "setuptools=2020-01-01"]
    return tuple(args)


def _package_args(request: CellRequest, dated: Resolved, tensorflow: str, python: str,
                  releases: Releases) -> tuple[str, ...]:
    """An extra package pinned by version is taken as of its newest matching
    release where that came after the cell's date (tf-keras made for a TF
    comes out after it); unpinned ones resolve as of the cell's date."""
    args: list[str] = []
    for text in fill_packages(request.packages, tensorflow):
        wanted = Requirement(text)
        if not wanted.specifier:
            continue
        found = releases.newest(python, (wanted.name,), wanted=wanted.specifier)
        if found is not None and found.uploaded > dated.uploaded:
            args += ["--exclude-newer-package", f"{wanted.name}={found.exclude_newer}"]
    return tuple(args)


def _extras(release: Resolved, image: str) -> tuple[str, ...]:
    # From 2.14 the CUDA libraries come as pip wheels behind this extra.
    if image == "gpu" and release.package == "tensorflow" and Version(release.version) >= Version("2.14"):
        return ("and-cuda",)
    return ()


def cell_facts(cell: Cell) -> dict[str, Any]:
    """What the plan says of a cell, as the results document shows it."""
    return {
        "id": cell.id,
        "tensorflow": cell.tensorflow or cell.request.tensorflow,
        "python": cell.python_version,
        "image": cell.image, "backend": cell.backend,
        "requirement": " ".join(cell.requirements) or None,  # TF, then any extra packages
        "resolved_as_of": cell.as_of,
        "python_path": str(cell.python.path) if cell.python else None,
        "docker_image": cell.docker_image,
        "runtime": runtime_facts(cell),
        "role": cell.request.role,
    }


def runtime_facts(cell: Cell) -> dict[str, Any]:
    """What the cell runs, for readers picking "loaded with": the runtime, its
    package and version, a Keras cell's backend, whether it is a nightly build."""
    facts: dict[str, Any] = {"name": runtimes.package_of(cell.request.runtime),
                             "package": cell.release.package if cell.release else runtimes.package_of(cell.request.runtime),
                             "version": cell.release.version if cell.release else cell.request.version or cell.request.tensorflow}
    if cell.request.keras_backend:
        facts["backend"] = cell.request.keras_backend
        facts["backend_version"] = cell.companions[0].version if cell.companions else None
    if cell.nightly:
        facts["nightly"] = True
    return facts
