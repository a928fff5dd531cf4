"""One small interface for every kind of isolation, one class per backend."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from packaging.version import InvalidVersion, Version

from sandbox import runtimes
from sandbox.commands import Completed
from sandbox.errors import SandboxError
from sandbox.events import Listener, PhaseStarted, Provisioned
from sandbox.plan import TF_PACKAGES, Cell
from sandbox.store import json_objects


class ProvisionFailed(SandboxError):
    """The environment could not be built or is unhealthy; `status` says which."""

    def __init__(self, status: str, message: str, detail: str = "", info: EnvInfo | None = None) -> None:
        super().__init__(message)
        self.status = status  # "install-failed" | "broken" | "skipped"
        self.detail = detail
        self.info = info  # built, but not fit for the cell (a GPU cell with no GPU): what it found


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


def provision(env: Environment, log: Path, emit: Listener, detail: str | None = None) -> EnvInfo:
    """The one way a cell's environment is made ready, for a run's cells, a
    repro's producer, a registry or a shell: say so in events, provision it
    (built, or reused while its recipe matches), and refuse a GPU cell in which
    TensorFlow sees no GPU (skipped: never silently run on CPU). Raises
    ProvisionFailed, whose status says which."""
    cell = env.cell
    if detail is None:
        as_of = cell.as_of[:10] if cell.as_of else "?"
        detail = (f"{' '.join(cell.requirements)} on Python {cell.python_version} ({cell.where}), "
                  f"deps as of {as_of}")
    emit(PhaseStarted(cell.id, "provision", 1, detail=detail))
    info = env.provision(log)
    emit(Provisioned(cell.id, info.reused, info.seconds))
    if cell.image == "gpu" and info.gpus == 0:
        raise ProvisionFailed("skipped", "no GPU visible to TensorFlow in this cell", info=info)
    return info


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
# A TF cell: `import tensorflow`; a runtime cell (below): its runtime and backend.
HEALTH_CHECK = (
    "import json, tensorflow as tf\n"
    "cfg = getattr(tf, 'config', None)\n"
    "lister = getattr(cfg, 'list_physical_devices', None) or getattr(getattr(cfg, 'experimental', None), 'list_physical_devices', None)\n"
    "gpus = len(lister('GPU')) if lister else int(tf.test.is_gpu_available())\n"
    "print(json.dumps({'tensorflow': tf.__version__, 'gpus': gpus}))\n"
)

# A runtime cell: import each module=distribution given and report the
# distribution's version (Python 3.6+: tflite-runtime cells may be 3.7); an
# interpreter runtime also builds an interpreter of a one-node model (base64,
# after --model): a binary built for another numpy imports, then fails there.
RUNTIME_CHECK = (
    "import base64, importlib, json, sys\n"
    "found, tf, args = {}, None, sys.argv[1:]\n"
    "model = args[args.index('--model') + 1] if '--model' in args else None\n"
    "for arg in [a for a in args if '=' in a]:\n"
    "    name, _, dist = arg.partition('=')\n"
    "    module = importlib.import_module(name)\n"
    "    try:\n"
    "        from importlib.metadata import version\n"
    "        found[dist] = version(dist)\n"
    "    except ImportError:\n"
    "        found[dist] = getattr(module, '__version__', None)\n"
    "    if name == 'tensorflow':\n"
    "        tf = module.__version__\n"
    "    if model is not None and hasattr(module, 'Interpreter'):\n"
    "        module.Interpreter(model_content=base64.b64decode(model))\n"
    "print(json.dumps({'versions': found, 'tensorflow': tf, 'gpus': 0}))\n"
)


def health_args(cell: Cell) -> list[str]:
    """The Python arguments of the cell's health check."""
    if cell.runtime == runtimes.TENSORFLOW:
        return ["-c", HEALTH_CHECK]
    imports = [f"{runtimes.RUNTIMES[cell.runtime].check}={cell.release.package}"] if cell.release else []
    imports += [f"{'tensorflow' if c.package in TF_PACKAGES else c.package.replace('-', '_')}={c.package}"
                for c in cell.companions]
    from sandbox.agent.tflite_ops import FLEX_MODEL  # any small model builds: this one is at hand
    return ["-c", RUNTIME_CHECK, *imports, "--model", "".join(FLEX_MODEL)]


def health_problem(cell: Cell, info: dict[str, Any]) -> str | None:
    """Why the health check's report does not show the cell's releases, or None."""
    if cell.runtime == runtimes.TENSORFLOW:
        if not same_version(info.get("tensorflow"), cell.tensorflow):
            return f"the cell imports TensorFlow {info.get('tensorflow')}, not {cell.tensorflow}"
        return None
    found = info.get("versions") or {}
    for package, version in cell.expected.items():
        if not same_version(found.get(package), version):
            return f"the cell has {package} {found.get(package)}, not {version}"
    return None


def same_version(found: Any, wanted: str | None) -> bool:
    """Equal versions, however spelled (tf-nightly's 2.23.0-dev20261026 is 2.23.0.dev20261026)."""
    try:
        return Version(str(found)) == Version(str(wanted))
    except InvalidVersion:
        return bool(found == wanted)
