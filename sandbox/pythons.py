"""Find Python interpreters: PATH, pyenv's versions directory, uv-managed.

pyenv's shims only run the globally selected versions, so the versions
directory is searched directly. Every candidate is run once to learn its real
version; one that does not run is ignored. SANDBOX_IGNORE_PYTHONS="3.6,3.7"
ignores those versions: a plan then is what a machine without them (a CI
runner) would make.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_PROBE = "import sys, platform; print(sys.version_info[0], sys.version_info[1], sys.version_info[2], platform.machine())"
_NAME = re.compile(r"^python3(\.\d+)?$")


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: tuple[int, int, int]
    machine: str
    source: str  # "PATH", "pyenv", "uv"

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def full(self) -> str:
        return ".".join(map(str, self.version))


@dataclass(frozen=True)
class Discovery:
    interpreters: dict[str, Interpreter]  # "3.7" -> newest patch found
    searched: tuple[str, ...]

    def find(self, minor: str) -> Interpreter | None:
        return self.interpreters.get(minor)

    def missing_reason(self, minor: str) -> str:
        return (f"Python {minor} not found (searched {', '.join(self.searched)}); "
                f"install it with `uv python install {minor}` or `pyenv install {minor}`")

    def newest_first(self) -> list[Interpreter]:
        return sorted(self.interpreters.values(), key=lambda i: i.version, reverse=True)


def pyenv_root() -> Path:
    env = os.environ.get("PYENV_ROOT")
    if env:
        return Path(env)
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=10).stdout.strip()
            if out:
                return Path(out)
        except (OSError, subprocess.SubprocessError):
            pass
    return Path.home() / ".pyenv"


def _path_candidates() -> list[Path]:
    found = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder:
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found += [Path(folder, n) for n in names if _NAME.match(n)]
    return found


def _pyenv_candidates(root: Path) -> list[Path]:
    versions = root / "versions"
    if not versions.is_dir():
        return []
    return [p / "bin" / "python3" for p in sorted(versions.iterdir()) if (p / "bin" / "python3").exists()]


def _uv_candidates() -> list[Path]:
    """The interpreters in uv's managed-Python folder. (`uv python dir`, not
    `uv python list`: listing probes every python on PATH, pyenv's failing
    shims included, which costs seconds.)"""
    uv = _uv()
    if not uv:
        return []
    try:
        out = subprocess.run([uv, "python", "dir"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(Path(out).glob("*/bin/python3")) if out else []


def _inspect(candidate: tuple[Path, str]) -> Interpreter | None:
    path, source = candidate
    try:
        out = subprocess.run([str(path), "-E", "-s", "-c", _PROBE], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 4:
        return None
    return Interpreter(path, (int(parts[0]), int(parts[1]), int(parts[2])), parts[3], source)


def discover() -> Discovery:
    root = pyenv_root()
    candidates = ([(p, "PATH") for p in _path_candidates()]
                  + [(p, "pyenv") for p in _pyenv_candidates(root)]
                  + [(p, "uv") for p in _uv_candidates()])
    # pyenv shims fail for non-global versions; resolve() dedups symlinked names.
    unique = list({str(p.resolve()): (p, s) for p, s in candidates
                   if p.exists() and "shims" not in p.parts}.values())
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = [i for i in pool.map(_inspect, unique) if i is not None]
    best: dict[str, Interpreter] = {}
    # Same minor: the newest patch wins; same patch: a standalone install (pyenv,
    # uv) over whatever PATH holds, which may be a virtualenv's python.
    priority = {"PATH": 0, "uv": 1, "pyenv": 2}
    ignored = {v.strip() for v in os.environ.get("SANDBOX_IGNORE_PYTHONS", "").split(",") if v.strip()}
    for interp in sorted(found, key=lambda i: (i.version, priority[i.source])):
        if interp.version[0] == 3 and interp.minor not in ignored:
            best[interp.minor] = interp
    searched = ("PATH", f"{root}/versions", "uv-managed Pythons")
    return Discovery(best, searched + ((f"ignoring {', '.join(sorted(ignored))} (SANDBOX_IGNORE_PYTHONS)",) if ignored else ()))


def uv_downloads() -> set[str]:
    """The CPython minors uv can download for this machine (from the list uv
    ships with: no request to the network)."""
    uv = _uv()
    if not uv:
        return set()
    try:
        out = subprocess.run([uv, "python", "list", "--all-versions", "--only-downloads", "--output-format", "json"],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "UV_OFFLINE": "1"}).stdout
        found = json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return set()
    machine = platform.machine()
    return {".".join(str(d["version"]).split(".")[:2]) for d in found if isinstance(d, dict)
            and d.get("implementation") == "cpython" and d.get("variant", "default") == "default"
            and d.get("os") == "linux" and d.get("arch") == machine and d.get("libc") == "gnu"}


def install(minor: str) -> tuple[bool, str]:
    """Make Python `minor` available to cells: found already, or installed
    with uv. (False, why) when uv cannot: cells on it then run in their
    matrix's python_image (docker backend)."""
    found = discover().find(minor)
    if found is not None:
        return True, f"Python {minor}: {found.full} at {found.path} ({found.source})"
    uv = _uv()
    if not uv or minor not in uv_downloads():
        return False, (f"Python {minor}: not installed, and uv offers no CPython {minor} for this machine; "
                       "cells on it run in their matrix's python_image (docker backend)")
    try:
        done = subprocess.run([uv, "python", "install", minor], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"Python {minor}: `uv python install {minor}` failed: {exc}"
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return False, f"Python {minor}: `uv python install {minor}` failed: {last[0]}"
    return True, f"Python {minor}: installed with uv"


def _uv() -> str | None:
    """The uv that came with sandbox, else one on PATH."""
    try:
        from uv import find_uv_bin
        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")
