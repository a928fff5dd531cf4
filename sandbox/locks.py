"""Locks between sandbox processes (the `filelock` library; advisory OS locks,
released by the kernel when their holder dies, even by kill -9):

- `run_lock(run_dir)`: one `sandbox run` of a matrix at a time. A second run
  of the same matrix waits, saying once whom it waits for; with `wait=False`
  (`sandbox run --no-wait`) it fails at once with `Busy`.
- `env_lock(path)`: one process builds a cached environment (a venv, a
  wheelhouse, a Docker image) at a time; the next one waits, then finds it
  built and reuses it.

Lock files live beside what they guard, never inside it: a fresh run or a
rebuild deletes the folder itself. Each holder writes its pid next to the
lock (`<lock>.owner`) so that waiters can say whom they wait for.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from sandbox.errors import SandboxError

Say = Callable[[str], None]


class Busy(SandboxError):
    """Another sandbox process holds the lock and we were told not to wait."""

    exit_code = 75  # EX_TEMPFAIL: try again later


def run_lock_path(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.lock"


@contextmanager
def run_lock(run_dir: Path, *, wait: bool = True, say: Say | None = None) -> Iterator[None]:
    """Hold the lock of the run folder `run_dir` (its name is the matrix's)."""
    name = run_dir.name
    with _held(run_lock_path(run_dir), wait, say,
               lambda owner: f"waiting for another sandbox run of {name}{owner} ...",
               lambda owner: f"another sandbox run of {name} is running{owner}; "
                             "wait for it to finish, or run again without --no-wait"):
        yield


@contextmanager
def env_lock(path: Path, *, say: Say | None = None) -> Iterator[None]:
    """Hold the build lock of the cached environment at `path` (always waits)."""
    with _held(path.with_name(f"{path.name}.lock"), True, say,
               lambda owner: f"waiting for another sandbox process{owner} building {path} ...",
               lambda owner: ""):
        yield


@contextmanager
def _held(path: Path, wait: bool, say: Say | None, waiting: Callable[[str], str],
          refused: Callable[[str], str]) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = _owner(path)
        if not wait:
            raise Busy(refused(owner)) from None
        if say:
            say(waiting(owner))
        lock.acquire()
    try:
        _owner_file(path).write_text(f"{os.getpid()}\n")
        yield
    except Exception:
        lock.release()
        raise
    except BaseException:
        # Ctrl-C, SIGTERM: worker threads may still be finishing their writes
        # (their children are stopped already); give them a moment first
        _let_threads_finish(THREADS_GRACE)
        lock.release()
        raise
    else:
        lock.release()


THREADS_GRACE = 5.0


def _let_threads_finish(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))


def _owner_file(path: Path) -> Path:
    return path.with_name(f"{path.name}.owner")


def _owner(path: Path) -> str:
    """' (pid N)' for the lock's holder, or '' when unknown."""
    try:
        pid = int(_owner_file(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return ""
    return f" (pid {pid})"
