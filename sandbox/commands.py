"""The one place subprocesses are started: logged, captured, typed errors,
and stoppable.

Every child starts in its own session and process group, so a terminal's
Ctrl-C reaches only sandbox, which then stops its children in order
(`stop_all`). On Linux every child also gets a parent-death signal (SIGKILL):
if sandbox dies, even by `kill -9`, its children die with it. The kernel sends
it when the *thread* that started the child ends, not the process; `run`
blocks its thread until the child has ended, so that only happens when
sandbox itself is gone. Every live child is listed in a registry; `stop_all`
sends SIGTERM to each child's process group, waits briefly, then SIGKILLs
what is left, and marks those runs `interrupted`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import CommandFailed, Interrupted

TAIL_LINES = 25
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL in stop_all
DRAIN_TIMEOUT = 10.0  # seconds to collect output after a kill (a grandchild may hold the pipe)

# Variables a cell must not inherit from the host: they would point the cell's
# Python, TF or Keras (KERAS_BACKEND) at the host's packages, devices or settings.
_LEAKY_PREFIXES = ("PYTHON", "VIRTUAL_ENV", "CONDA_", "TF_", "CUDA_", "NOX_", "PIP_", "UV_", "KERAS_", "JAX_", "XLA_")
_KEEP = {"PYTHONDONTWRITEBYTECODE", "PIP_CERT", "PIP_FIND_LINKS", "PIP_DEFAULT_TIMEOUT", "UV_CACHE_DIR", "UV_INDEX_URL"}


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The host environment minus what would leak into a cell, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k in _KEEP or not k.startswith(_LEAKY_PREFIXES)}
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Completed:
    command: list[str]
    returncode: int
    output: str
    seconds: float
    interrupted: bool = False  # stopped by stop_all (Ctrl-C, SIGTERM): neither the command's fault nor a result


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(
    command: list[str],
    *,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
    cwd: Path | None = None,
) -> Completed:
    """Run `command`, capture stdout+stderr (into `log` when given).

    Raises CommandFailed on a non-zero exit (when `check`) or a timeout (then
    the command's whole process group is killed); the error carries the
    command, exit code and the output's tail. A command stopped by `stop_all`
    comes back with `interrupted=True` (on the Completed, or on the
    CommandFailed when `check`). Raises Interrupted instead of starting a
    command once `stop_all` was called.
    """
    start = time.monotonic()
    try:
        proc = _start(command, env, cwd)
    except OSError as exc:
        log_command(log, command, None, str(exc), time.monotonic() - start)
        raise CommandFailed(command, 127, str(exc), str(log) if log else None) from exc
    try:
        output, code = _wait(proc, timeout)
    finally:
        stopped = _forget(proc.pid)
    interrupted = stopped and code != 0  # one that finished well as it was stopped is done
    seconds = time.monotonic() - start
    log_command(log, command, code, output, seconds, interrupted)
    if code is None or (check and code != 0):
        raise CommandFailed(command, code, tail(output), str(log) if log else None, interrupted=interrupted)
    return Completed(command, code, output, seconds, interrupted)


# -- children that can be stopped -----------------------------------------------
_live: dict[int, subprocess.Popen[str]] = {}  # pid (= its process group) -> child
_stopped: set[int] = set()  # children that stop_all signalled
_lock = threading.RLock()  # reentrant: stop_all may run in a signal handler of a thread inside run()
_stopping = threading.Event()


def _start(command: list[str], env: dict[str, str] | None, cwd: Path | None) -> subprocess.Popen[str]:
    with _lock:
        if _stopping.is_set():
            raise Interrupted(f"interrupted: not starting `{' '.join(command[:3])} ...`")
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, text=True, errors="replace",
            start_new_session=True, preexec_fn=_die_with_parent(),
        )
        _live[proc.pid] = proc
    return proc


def _wait(proc: subprocess.Popen[str], timeout: float | None) -> tuple[str, int | None]:
    """The output and exit code of `proc` (None: it timed out and was killed)."""
    try:
        output, _ = proc.communicate(timeout=timeout)
        return output, proc.returncode
    except subprocess.TimeoutExpired:
        signal_group(proc.pid, signal.SIGKILL)
        return _drain(proc), None
    except BaseException:  # KeyboardInterrupt in this very thread: the child goes first
        signal_group(proc.pid, signal.SIGKILL)
        _drain(proc)
        raise


def _drain(proc: subprocess.Popen[str]) -> str:
    try:
        return proc.communicate(timeout=DRAIN_TIMEOUT)[0]
    except subprocess.TimeoutExpired as exc:  # a grandchild that left the group holds the pipe open
        if proc.stdout:
            proc.stdout.close()
        proc.wait()
        return _as_text(exc.output)


def _forget(pid: int) -> bool:
    """Drop a reaped child from the registry; whether stop_all had stopped it."""
    with _lock:
        _live.pop(pid, None)
        stopped = pid in _stopped
        _stopped.discard(pid)
    return stopped


def stop_all(grace: float = STOP_GRACE) -> int:
    """Stop every live child and start no more: SIGTERM to each child's process
    group, up to `grace` seconds for them to go, then SIGKILL. Returns how many
    children were stopped. Safe to call from a signal handler and twice."""
    with _lock:
        _stopping.set()
        victims = list(_live)
        _stopped.update(victims)
    for pgid in victims:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(group_alive(p) for p in victims):
        time.sleep(0.05)
    for pgid in victims:
        if group_alive(pgid):
            signal_group(pgid, signal.SIGKILL)
    return len(victims)


def stopping() -> bool:
    """Whether stop_all was called (and reset() not since)."""
    return _stopping.is_set()


def reset() -> None:
    """Allow commands again after stop_all (tests, or a library caller that carries on)."""
    _stopping.clear()


def live() -> list[int]:
    """The process ids (= process groups) of the children running now."""
    with _lock:
        return list(_live)


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """Whether a process group has a member that is not a zombie (a child that
    exited but was not reaped yet counts as gone)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


# -- the parent-death signal ---------------------------------------------------
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _load_prctl()  # resolved here: the child, between fork and exec, only calls it


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function asking the kernel to SIGKILL the child when its parent
    (the thread that started it) ends; None where there is no prctl."""
    if _prctl is None:
        return None
    prctl, parent = _prctl, os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request: too late for the signal
            os._exit(137)
    return preexec


def _as_text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def log_command(log: Path | None, command: list[str], code: int | None, output: str, seconds: float,
                interrupted: bool = False) -> None:
    """Append one command, its exit status (None: timed out) and output to `log`.
    Also used for commands run in containers, so every log reads alike."""
    if log is None:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    status = "timeout" if code is None else f"exit {code}"
    status = f"interrupted ({status})" if interrupted else status
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(command)}\n# {status} after {seconds:.1f}s\n{output}\n")
