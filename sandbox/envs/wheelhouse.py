"""A wheelhouse for a container, made on the host.

Containers never reach the network, so the host resolves a cell's
requirement for the container's Python and platform, as of the TF release
(uv's resolver, like the venv backend), and downloads exactly those wheels
(pip, the one tool that downloads for another platform). A requirement that
has no wheel at all (TF 1.x's gast 0.2.2, termcolor 1.1.0, wrapt 1.12.1) comes
as its source distribution, which the container builds itself (setuptools
and wheel are among TF's own requirements, so they are in the wheelhouse).
The container then installs with `--no-index`. Wheelhouses are cached by a
hash of what defines them.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox import commands, digests, locks
from sandbox.envs import ProvisionFailed
from sandbox.envs.venv import uv_binary
from sandbox.errors import CommandFailed
from sandbox.store import cache_dir, write_json

SCHEMA = 1
TIMEOUT = 1800.0
MARKER = ".sandbox-wheelhouse.json"
# glibc versions uv can resolve for (its --python-platform list), newest first.
_UV_GLIBC = (40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 28, 17)
# uv, when a requirement has only a source distribution: "Because gast==0.2.2 has no usable wheels ..."
_NO_WHEELS = re.compile(r"(?:Because |and )([A-Za-z0-9_.-]+)(?:==\S+)? has no usable wheels|Wheels are required for `([^`]+)`")
MAX_SOURCES = 20


@dataclass(frozen=True)
class Target:
    """The interpreter and platform inside an image."""

    python: str  # full version, "3.11.2"
    machine: str  # "x86_64"
    glibc: str  # "2.36"; "" when the image's libc is not glibc

    @property
    def minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    @property
    def glibc_minor(self) -> int:
        parts = self.glibc.split(".")
        return int(parts[1]) if len(parts) > 1 and parts[0] == "2" and parts[1].isdigit() else 0

    def uv_platform(self) -> str:
        """uv's name for the newest manylinux this platform runs."""
        usable = [v for v in _UV_GLIBC if v <= self.glibc_minor]
        if not usable:
            raise ProvisionFailed("skipped", f"the image's libc ({self.glibc or 'not glibc'}) runs no manylinux "
                                  f"wheel, and TensorFlow ships only those")
        return f"{self.machine}-manylinux_2_{usable[0]}"

    def pip_platforms(self) -> list[str]:
        """Every platform tag this platform runs, newest first (pip wants them all)."""
        tags = [f"manylinux_2_{v}_{self.machine}" for v in range(self.glibc_minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        return tags + [f"{name}_{self.machine}" for v, name in legacy.items() if v <= self.glibc_minor]

    def abi(self) -> str:
        major, minor = self.minor.split(".")
        return f"cp{major}{minor}" + ("m" if (int(major), int(minor)) < (3, 8) else "")


def ensure(requirements: tuple[str, ...], install_args: tuple[str, ...], target: Target, log: Path) -> Path:
    """The folder of wheels (+ requirements.txt) for `requirements` (TF first) on `target`."""
    requirement, extra = requirements[0], list(requirements[1:])
    definition = {"schema": SCHEMA, "requirement": requirement, "install_args": list(install_args), **asdict(target),
                  **({"packages": extra} if extra else {})}
    digest = digests.short(definition)
    folder = cache_dir() / "wheelhouses" / digest
    with locks.env_lock(folder):
        if not _matches(folder, definition):
            _fill(folder, definition, requirements, install_args, target, log)
    return folder


def _matches(folder: Path, definition: dict[str, object]) -> bool:
    try:
        return bool(json.loads((folder / MARKER).read_text()) == definition)
    except (OSError, ValueError):
        return False


def _fill(folder: Path, definition: dict[str, object], requirements: tuple[str, ...], install_args: tuple[str, ...],
          target: Target, log: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        _resolve(folder, requirements, install_args, target, log)
        _download(folder, target, log)
    except CommandFailed as exc:
        raise ProvisionFailed("install-failed", f"preparing the wheels of {requirements[0]} for Python {target.python} "
                              f"on {target.uv_platform()} failed", exc.output_tail) from exc
    write_json(folder / MARKER, definition)


def _resolve(folder: Path, requirements: tuple[str, ...], install_args: tuple[str, ...], target: Target,
             log: Path) -> None:
    """requirements.txt, wheels only, but for the packages that have none
    (found one resolution at a time, from uv's answer): SOURCES lists those."""
    (folder / "requirements.in").write_text("\n".join([*requirements, "pip"]) + "\n")
    sources: list[str] = []
    while True:
        command = [uv_binary(), "pip", "compile", str(folder / "requirements.in"), "-o", str(folder / "requirements.txt"),
                   "--python-version", target.python, "--python-platform", target.uv_platform(),
                   "--only-binary", ":all:", *(a for name in sources for a in ("--no-binary", name)),
                   "--no-header", "--no-annotate", "--quiet", *install_args]
        try:
            commands.run(command, log=log, timeout=TIMEOUT, env=commands.clean_env())
            break
        except CommandFailed as exc:
            found = {m[0] or m[1] for m in _NO_WHEELS.findall(exc.output_tail)} - set(sources)
            if not found or len(sources) >= MAX_SOURCES:
                raise
            sources += sorted(found)
    (folder / SOURCES).write_text("".join(f"{name}\n" for name in sources))


def _download(folder: Path, target: Target, log: Path) -> None:
    sources = set((folder / SOURCES).read_text().split())
    pins = [line.strip() for line in (folder / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    built = [p for p in pins if _name(p) in {_name(s) for s in sources}]
    (folder / "wheels.txt").write_text("".join(f"{p}\n" for p in pins if p not in built))
    platforms = [arg for tag in target.pip_platforms() for arg in ("--platform", tag)]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--python-version", target.minor, "--implementation", "cp",
               "--abi", target.abi(), *platforms, "-d", str(folder), "-r", str(folder / "wheels.txt")]
    commands.run(command, log=log, timeout=TIMEOUT, env=commands.clean_env())
    if built:  # source distributions are the same for every platform
        commands.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
                      "--disable-pip-version-check", "-d", str(folder), *built],
                     log=log, timeout=TIMEOUT, env=commands.clean_env())


SOURCES = "sources.txt"  # the requirements that come as source distributions


def _name(requirement: str) -> str:
    """A requirement's normalized project name ("Foo_bar==1.0" -> "foo-bar")."""
    return re.sub(r"[-_.]+", "-", re.split(r"[=<>!~;\[ ]", requirement, maxsplit=1)[0]).lower()
