"""Plan: a pure function from the matrix, the release catalog and the found
interpreters to resolved cells (or skips with their reasons)."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from sandbox.errors import ConfigError
from sandbox.matrix import CellRequest, Matrix, packages_suffix
from sandbox.pythons import Discovery, Interpreter
from sandbox.versions import Resolved, minor, version_range

# Which distributions carry a build, in order of preference at equal versions.
# TF 1.x shipped GPU support as `tensorflow-gpu`; from 2.1 `tensorflow` has it
# and `tensorflow-cpu` is the CPU-only build.
PACKAGES = {"cpu": ("tensorflow-cpu", "tensorflow"), "gpu": ("tensorflow", "tensorflow-gpu")}


def distributions(request: CellRequest) -> tuple[str, ...]:
    """Where a cell's TF comes from. Extra packages (tf-keras, ...) depend on
    `tensorflow` itself: a `tensorflow-cpu` beside them would pull in a second,
    clashing TF, so such cells install `tensorflow` (it runs on the CPU too)."""
    if request.packages and request.image == "cpu":
        return ("tensorflow", "tensorflow-cpu")
    return PACKAGES[request.image]


class Releases(Protocol):
    def resolve(self, spec: str, python: str, packages: tuple[str, ...]) -> Resolved | None: ...
    def pythons_for(self, spec: str, packages: tuple[str, ...]) -> list[str]: ...
    def releases(self, wanted: SpecifierSet, packages: tuple[str, ...],
                 every_patch: bool = False) -> list[Version]: ...


@dataclass(frozen=True)
class Cell:
    id: str
    request: CellRequest
    image: str
    backend: str
    python: Interpreter | None = None
    release: Resolved | None = None
    install_args: tuple[str, ...] = ()
    skip: str | None = None
    extras: tuple[str, ...] = field(default=())
    docker_image: str | None = None  # the image reference of a docker cell, placeholders filled
    in_python_image: bool = False  # a venv cell whose Python is not installed here: in the matrix's python_image

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
    def tensorflow(self) -> str | None:
        return self.release.version if self.release else None

    @property
    def requirement(self) -> str | None:
        if not self.release:
            return None
        extra = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.release.package}{extra}=={self.release.version}"

    @property
    def requirements(self) -> tuple[str, ...]:
        """Everything the cell installs: its TF, then the matrix's extra packages."""
        return ((self.requirement,) if self.requirement else ()) + self.request.packages


def cell_id(tensorflow: str, python: str, image: str, backend: str = "venv", packages: tuple[str, ...] = ()) -> str:
    """venv cells keep the original ids; other backends add theirs: tf2.15.1-py3.11-cpu-docker;
    extra packages add their names: tf2.18.1-py3.11-cpu+tf-keras."""
    return f"tf{tensorflow}-py{python}-{image}" + ("" if backend == "venv" else f"-{backend}") + packages_suffix(packages)


def plan(matrix: Matrix, releases: Releases, pythons: Discovery) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for request in expand(matrix, releases):
        cell = _resolve(request, releases, pythons, matrix.python_image)
        cells.setdefault(cell.id, cell)
    return list(cells.values())


def expand(matrix: Matrix, releases: Releases) -> Iterator[CellRequest]:
    """The matrix's requests with each range of TF versions (">=1.12") replaced by
    one request per minor release in it, oldest first, less the excluded ones."""
    for request in matrix.cells:
        wanted = version_range(request.tensorflow)
        if wanted is None:
            yield request
            continue
        found = releases.releases(wanted, distributions(request))
        if not found:
            raise ConfigError(f"{matrix.path}: key 'tensorflow': no TensorFlow release with a Linux "
                              f"{platform.machine()} wheel matches '{request.tensorflow}'")
        for version in found:
            one = replace(request, tensorflow=minor(version))
            if not matrix.excluded(one):
                yield one


def _resolve(request: CellRequest, releases: Releases, pythons: Discovery, python_image: str = "") -> Cell:
    if request.backend == "docker":
        return _resolve_docker(request, releases)
    if python_image:
        return _resolve_anywhere(request, releases, pythons, python_image)
    packages = distributions(request)
    candidates = pythons.newest_first() if request.python == "auto" else [pythons.find(request.python)]
    for interp in candidates:
        if interp is None:
            break
        release = releases.resolve(request.tensorflow, interp.minor, packages)
        if release:
            return Cell(cell_id(release.version, interp.minor, request.image, packages=request.packages), request, request.image,
                        request.backend, interp, release, _install_args(release), extras=_extras(release, request.image))
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
                request.backend, None, release, _install_args(release), extras=_extras(release, request.image),
                docker_image=image)


def _why_not(request: CellRequest, releases: Releases, pythons: Discovery) -> str:
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


def _install_args(release: Resolved) -> tuple[str, ...]:
    args = ["--exclude-newer", release.exclude_newer]
    if Version(release.version) < Version("1.12"):
        # absl-py is an sdist there; building it needs a setuptools of its time.
        args += ["--exclude-newer-package", "setuptools=2020-01-01"]
    return tuple(args)


def _extras(release: Resolved, image: str) -> tuple[str, ...]:
    # From 2.14 the CUDA libraries come as pip wheels behind this extra.
    if image == "gpu" and release.package == "tensorflow" and Version(release.version) >= Version("2.14"):
        return ("and-cuda",)
    return ()
