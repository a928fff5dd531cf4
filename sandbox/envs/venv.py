"""Virtualenv backend: uv creates and fills the environment; virtualenv or the
interpreter's own `venv` create it where uv cannot."""

from __future__ import annotations

import functools
import json
import platform
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sandbox import commands, digests, locks
from sandbox.commands import Completed
from sandbox.envs import EnvInfo, ProvisionFailed, health_args, health_problem, last_json, register
from sandbox.errors import CommandFailed, Interrupted
from sandbox.plan import Cell
from sandbox.store import cache_dir, write_json

FINGERPRINT = ".sandbox-env.json"
SCHEMA = 1
INSTALL_TIMEOUT = 1800.0


_uv_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _find_uv() -> str:
    try:
        from uv import find_uv_bin
        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise ProvisionFailed("install-failed", "uv not found: pip install uv") from None
        return found


def uv_binary() -> str:
    """The uv that came with this package, else one on PATH. Locked: the
    first call reads sysconfig, whose lazy set-up is not thread-safe."""
    with _uv_lock:
        return _find_uv()


@register("venv")
class VenvEnvironment:
    def __init__(self, cell: Cell) -> None:
        assert cell.python and cell.requirement, "planned cells only"
        self.cell = cell
        self.fingerprint = {
            "schema": SCHEMA, "python": str(cell.python.path), "python_version": cell.python.full,
            "requirement": cell.requirement, "install_args": list(cell.install_args),
            **({"packages": list(cell.packages)} if cell.packages else {}),
            # runtime cells: their backend, what overrides its pins, how it is chosen
            **({"requirements": list(cell.requirements)} if cell.companions else {}),
            **({"overrides": list(cell.overrides)} if cell.overrides else {}),
            **({"variables": cell.variables} if cell.variables else {}),
        }
        digest = digests.short(self.fingerprint)
        self.path = cache_dir() / "envs" / f"{cell.id}-{digest}"
        self.python = self.path / "bin" / "python"

    def identity(self) -> dict[str, object]:
        recipe = {k: v for k, v in self.fingerprint.items() if k not in ("python", "schema")}
        return {"backend": "venv", "image": self.cell.image, "machine": platform.machine(), **recipe}

    def provision(self, log: Path) -> EnvInfo:
        """Build the environment unless a healthy one is cached. One process
        builds it at a time (the others wait, then reuse it). A cached one that
        turns out broken (its files damaged since) is rebuilt once; still
        broken, it is reported `broken`."""
        start = time.monotonic()
        with locks.env_lock(self.path, say=lambda message: note(log, message)):
            reused = self._matches()
            if not reused:
                self._build(log)
            try:
                info = self._health(log)
            except ProvisionFailed as exc:
                if not reused or exc.status != "broken":
                    raise
                note(log, f"the cached environment {self.path} is broken ({exc}); rebuilding it once")
                reused = False
                self._build(log)
                info = self._health(log)
            if not reused:
                write_json(self.path / FINGERPRINT, self.fingerprint)
        return EnvInfo(str(self.path), reused, time.monotonic() - start, info.get("tensorflow") or "", info["gpus"])

    def run_python(self, args: list[str], *, log: Path, timeout: float,
                   readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> Completed:
        # -E: ignore PYTHONPATH/PYTHONHOME; -s: no user site-packages; -B: no
        # __pycache__ in the shared agent folder (-E drops PYTHONDONTWRITEBYTECODE).
        # A venv cannot confine file access, so readable/writable are advisory.
        return commands.run([str(self.python), "-E", "-s", "-B", *args], log=log, timeout=timeout,
                            env=commands.clean_env({"TF_CPP_MIN_LOG_LEVEL": "2", **self.cell.variables}), check=False)

    def _matches(self) -> bool:
        try:
            return json.loads((self.path / FINGERPRINT).read_text()) == self.fingerprint and self.python.exists()
        except (OSError, ValueError):
            return False

    def _build(self, log: Path) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._create(log)
        # Bytecode is compiled at install time (TF imports 3x slower without it);
        # uv's compiler needs Python 3.7+, so 3.6 cells compile with compileall.
        old = self.cell.python is not None and self.cell.python.version < (3, 7)
        install = [uv_binary(), "pip", "install", "--python", str(self.python),
                   *([] if old else ["--compile-bytecode"]), *self.cell.install_args, *self._overrides(),
                   *self.cell.requirements]
        try:
            commands.run(install, log=log, timeout=INSTALL_TIMEOUT, env=commands.clean_env())
            if old:
                commands.run([str(self.python), "-m", "compileall", "-q", "-j", "0", str(self.path / "lib")],
                             log=log, timeout=INSTALL_TIMEOUT, env=commands.clean_env())
        except CommandFailed as exc:
            raise ProvisionFailed("install-failed", f"installing {' '.join(self.cell.requirements)} failed",
                                  exc.output_tail) from exc

    def _overrides(self) -> list[str]:
        """--overrides FILE where the cell has overrides (a Keras over its TF's pin)."""
        if not self.cell.overrides:
            return []
        path = self.path / "sandbox-overrides.txt"
        path.write_text("".join(f"{r}\n" for r in self.cell.overrides), encoding="utf-8")
        return ["--overrides", str(path)]

    def _create(self, log: Path) -> None:
        base = str(self.cell.python.path) if self.cell.python else ""
        attempts = [
            [uv_binary(), "venv", "--quiet", "--python", base, str(self.path)],
            [sys.executable, "-m", "virtualenv", "--quiet", "--python", base, str(self.path)],
            [base, "-m", "venv", str(self.path)],
        ]
        last = ""
        for command in attempts:
            try:
                commands.run(command, log=log, timeout=300, env=commands.clean_env())
                if self.python.exists():
                    return
            except CommandFailed as exc:
                last = exc.output_tail
            shutil.rmtree(self.path, ignore_errors=True)
        raise ProvisionFailed("install-failed", f"could not create a virtualenv for Python {self.cell.python and self.cell.python.full}", last)

    def _health(self, log: Path) -> dict[str, Any]:
        done = self.run_python(health_args(self.cell), log=log, timeout=300)
        if stopped_from_outside(done):  # not the environment's fault: rebuilding it would lose a good one
            raise Interrupted(f"interrupted while checking the environment {self.path}")
        info = last_json(done.output)
        if info is None:
            what = "`import tensorflow` fails" if self.cell.runtime == "tensorflow" else \
                f"{' and '.join(f'{p} {v}' for p, v in self.cell.expected.items())} does not import or run"
            raise ProvisionFailed("broken", f"{what} in the cell", commands.tail(done.output)) from None
        problem = health_problem(self.cell, info)
        if problem:
            raise ProvisionFailed("broken", problem)
        return info


def stopped_from_outside(done: Completed) -> bool:
    """Whether a command was stopped by the run's own Ctrl-C or a signal sent to
    it (SIGINT, SIGTERM, SIGKILL), rather than failing: a crash (SIGSEGV,
    SIGILL at `import tensorflow`) is the command's own."""
    outside = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
    return done.interrupted or done.returncode in (*(-s for s in outside), *(128 + s for s in outside))


def note(log: Path, message: str) -> None:
    """A line of sandbox's own in a command log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"# sandbox: {message}\n")
