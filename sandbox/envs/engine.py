"""The Docker Engine, through the `docker` SDK: connect, and run one command in
a confined container that is removed on every path (exit, timeout, error,
Ctrl-C).

This is the container counterpart of sandbox/commands.py: every container
command is logged like a subprocess, returns a `commands.Completed`, and a
timeout raises the same `CommandFailed`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container as SDKContainer
from docker.types import DeviceRequest

from sandbox import commands
from sandbox.errors import CommandFailed, Interrupted, SandboxError

# Per container: enough for the probe zoo of one TF; bounded so that a model
# that explodes cannot take the machine (or its neighbours) with it.
MEMORY = "6g"
PIDS = 2048  # threads count too, and TF starts a few per core
API_TIMEOUT = 1800  # seconds; commits of a 1 GB layer are slow
# The in-container environment, on top of the image's own (PATH, ...).
# HOME: the host user has no home in the image; /tmp is the one writable place.
ENVIRONMENT = {"HOME": "/tmp", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1"}


class EngineUnavailable(SandboxError):
    """No Docker engine answers; docker cells are skipped with this reason."""


@dataclass(frozen=True)
class Confinement:
    """What a container may touch. The defaults are those of probe runs."""

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    gpus: bool = False
    user: str = ""  # "" means the host user, so written files are the host user's
    read_only_root: bool = True


def host_user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def options(conf: Confinement) -> dict[str, Any]:
    """The container settings for `conf`: no network, no capabilities, no new
    privileges, bounded memory and processes, only the given host paths
    mounted (at the same paths, read-only unless writable)."""
    volumes = {str(p): {"bind": str(p), "mode": "ro"} for p in conf.readable}
    volumes.update({str(p): {"bind": str(p), "mode": "rw"} for p in conf.writable})
    settings: dict[str, Any] = {
        "network_mode": "none", "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
        "mem_limit": MEMORY, "memswap_limit": MEMORY, "pids_limit": PIDS,
        "user": conf.user or host_user(), "volumes": volumes, "environment": dict(ENVIRONMENT),
        "working_dir": "/tmp", "read_only": conf.read_only_root,
        # a small private /tmp: TF and Keras write caches under HOME
        "tmpfs": {"/tmp": "rw,nosuid,nodev,size=1g"} if conf.read_only_root else {},
        "stdin_open": False, "tty": False,
    }
    if conf.gpus:
        settings["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]  # --gpus all
    return settings


def describe() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect() -> docker.DockerClient:
    """A client for the engine at DOCKER_HOST (or the default socket); raise
    EngineUnavailable when none answers."""
    try:
        client = docker.from_env(timeout=API_TIMEOUT)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise EngineUnavailable(f"no Docker engine answers at {describe()}: {short(exc)}") from None
    return client


# -- containers that always go away ------------------------------------------
_live: set[Container] = set()
_live_lock = threading.RLock()  # reentrant: interrupt() may run in a signal handler
_stopping = threading.Event()


def interrupt() -> None:
    """Kill and remove every container this process started; start no more."""
    _stopping.set()
    with _live_lock:
        live = list(_live)
    for box in live:
        box.remove()


class Container:
    """A created-and-started container, removed on leaving the `with` block."""

    def __init__(self, client: docker.DockerClient, image: str, command: list[str], conf: Confinement) -> None:
        self.client, self.image, self.command, self.conf = client, image, command, conf
        self._sdk: SDKContainer | None = None

    def __enter__(self) -> Container:
        if _stopping.is_set():
            raise Interrupted("interrupted: not starting another container")
        self._sdk = self.client.containers.create(self.image, self.command, **options(self.conf))
        with _live_lock:
            _live.add(self)
        try:
            self._sdk.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()

    @property
    def sdk(self) -> SDKContainer:
        assert self._sdk is not None, "use inside `with`"
        return self._sdk

    def wait(self, timeout: float | None) -> int | None:
        """The exit code, or None when `timeout` passed first (then it is killed)."""
        try:
            return int(self.sdk.wait(timeout=timeout)["StatusCode"])
        except requests.exceptions.RequestException:
            self._kill()
            return None

    def output(self) -> str:
        try:
            return self.sdk.logs(stdout=True, stderr=True).decode(errors="replace")  # type: ignore[no-any-return]
        except docker.errors.DockerException as exc:
            return f"(output lost: {short(exc)})"

    def remove(self) -> None:
        with _live_lock:
            _live.discard(self)
        if self._sdk is not None:
            try:
                self._sdk.remove(force=True)
            except docker.errors.NotFound:
                pass
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                pass  # the engine went away; nothing more can be done from here

    def _kill(self) -> None:
        try:
            self.sdk.kill()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            pass


# A container outlives a host killed with kill -9 (nobody is left to remove
# it). With `bounded`, the container's command runs under this Python wrapper
# (PID 1; Python 3.6+ syntax), which kills it and exits 124 once the deadline
# passes: a container never runs longer than its timeout plus DEADLINE_GRACE.
DEADLINE_GRACE = 30.0
BOUNDED = (
    "import subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[2:])\n"
    "try:\n"
    "    code = child.wait(timeout=float(sys.argv[1]))\n"
    "except subprocess.TimeoutExpired:\n"
    "    child.kill()\n"
    "    sys.stderr.write('sandbox: the container ran past its deadline (%ss); stopped\\n' % sys.argv[1])\n"
    "    code = 124\n"
    "sys.exit(128 - code if code < 0 else code)\n"
)


def bounded(command: list[str], seconds: float) -> list[str]:
    """`command` (whose first word is a Python) ending by itself after `seconds`."""
    return [command[0], "-E", "-s", "-B", "-c", BOUNDED, f"{seconds:g}", *command]


def run(client: docker.DockerClient, image: str, command: list[str], conf: Confinement, *, log: Path | None,
        timeout: float | None, python: bool = False) -> commands.Completed:
    """Run `command` in `image` confined by `conf`; never raises on a non-zero
    exit; a timeout raises CommandFailed (returncode None) like commands.run.
    With `python` (the command's first word is the image's Python) and a
    timeout, the container also ends by itself DEADLINE_GRACE after the
    timeout, even if this process is killed."""
    shown = ["docker", "run", image, *command]
    if python and timeout is not None:
        command = bounded(command, timeout + DEADLINE_GRACE)
    start = time.monotonic()
    with Container(client, image, command, conf) as box:
        code = box.wait(timeout)
        output = box.output()
    seconds = time.monotonic() - start
    commands.log_command(log, shown, code, output, seconds)
    if code is None:
        raise CommandFailed(shown, None, commands.tail(output), str(log) if log else None)
    return commands.Completed(shown, code, output, seconds)


def short(exc: BaseException) -> str:
    """The engine's own words where it gave some, else the last line."""
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, str) and explanation.strip():
        return explanation.strip()[:300]
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__
