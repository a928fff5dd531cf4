"""One small interface for every kind of isolation, one class per backend."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from sandbox.commands import Completed
from sandbox.errors import SandboxError
from sandbox.plan import Cell
from sandbox.store import json_objects


class ProvisionFailed(SandboxError):
    """The environment could not be built or is unhealthy; `status` says which."""

    def __init__(self, status: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status  # "install-failed" | "broken" | "skipped"
        self.detail = detail


@dataclass(frozen=True)
class EnvInfo:
    location: str
    reused: bool
    seconds: float
    tensorflow: str
    gpus: int


class Environment(Protocol):
    cell: Cell

    def identity(self) -> dict[str, object]:
        """What decides what this environment measures (not where it lives):
        the results store keys its records by this. Cheap: builds nothing."""

    def provision(self, log: Path) -> EnvInfo:
        """Create (or reuse) the environment; raise ProvisionFailed."""

    def run_python(self, args: list[str], *, log: Path, timeout: float,
                   readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> Completed:
        """Run the cell's Python with `args` (never raises on a non-zero exit).

        `readable`/`writable` are the host paths the command may touch; a
        backend that can confine the process grants only these."""


BACKENDS: dict[str, Callable[[Cell], Environment]] = {}


def register(name: str) -> Callable[[Callable[[Cell], Environment]], Callable[[Cell], Environment]]:
    def wrap(factory: Callable[[Cell], Environment]) -> Callable[[Cell], Environment]:
        BACKENDS[name] = factory
        return factory
    return wrap


def environment(cell: Cell) -> Environment:
    from sandbox.envs import venv  # noqa: F401  (registers itself)
    if cell.backend == "docker":
        from sandbox.envs import docker  # noqa: F401  (imports the docker SDK only when needed)
    return BACKENDS[cell.backend](cell)


def interrupt() -> None:
    """The one stop entry point (Ctrl-C, SIGTERM): stop every subprocess
    (commands.stop_all) and every container this process started, and start
    no more of either. Call it before anything else is torn down."""
    import sys

    from sandbox import commands
    commands.stop_all()
    engine = sys.modules.get("sandbox.envs.engine")
    if engine is not None:
        engine.interrupt()


def last_json(output: str) -> dict[str, Any] | None:
    """The last line of `output` that is a JSON object (TF may log around it)."""
    found = list(json_objects(output.splitlines()))
    return found[-1] if found else None


# Run inside the cell after install: the cell is healthy only once this works.
HEALTH_CHECK = (
    "import json, tensorflow as tf\n"
    "cfg = getattr(tf, 'config', None)\n"
    "lister = getattr(cfg, 'list_physical_devices', None) or getattr(getattr(cfg, 'experimental', None), 'list_physical_devices', None)\n"
    "gpus = len(lister('GPU')) if lister else int(tf.test.is_gpu_available())\n"
    "print(json.dumps({'tensorflow': tf.__version__, 'gpus': gpus}))\n"
)
