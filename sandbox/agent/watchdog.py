"""The agent's own watchdog: a per-item time limit and a dead-parent check that
hold even when the host that started the agent is gone (killed with kill -9).

A daemon thread looks every POLL seconds:
- an item (one export or one load) running longer than the item timeout: the
  agent's other processes (its process group, e.g. TF 1.x's converter) are
  killed and the agent exits ITEM_TIMEOUT_EXIT at once. Nothing is written
  for that item after its `start` record, so the host records it as
  `timeout` and resumes after it.
- the parent process gone (os.getppid() changed, i.e. re-parented to init or
  a subreaper): the agent exits PARENT_GONE_EXIT. Where the agent started as
  an orphan or as PID 1 (a container's first process), there is no parent to
  watch; a container's lifetime is bounded by its host-side wrapper instead.

The end record of an item is written through `end()`, under the watchdog's
lock, so an item is either ended or timed out, never both.

Python 3.6 syntax, stdlib only.
"""
import os
import signal
import sys
import threading
import time
from typing import Callable, Optional

ITEM_TIMEOUT_EXIT = 124  # like coreutils `timeout`
PARENT_GONE_EXIT = 125
POLL = 0.5

_lock = threading.Lock()
_state = {"timeout": None, "what": None, "since": None, "parent": None}  # type: dict
_thread = None  # type: Optional[threading.Thread]


def start(item_timeout=None):
    # type: (Optional[float]) -> None
    """Start watching (once per process); item_timeout None or <= 0: no limit."""
    global _thread
    _state["timeout"] = item_timeout if item_timeout and item_timeout > 0 else None
    parent = os.getppid()
    _state["parent"] = parent if parent > 1 else None
    if _thread is None:
        _thread = threading.Thread(target=_watch, name="agent-watchdog")
        _thread.daemon = True
        _thread.start()


def begin(what):
    # type: (str) -> None
    """An item starts (after its `start` record is written)."""
    with _lock:
        _state["what"], _state["since"] = what, time.time()


def end(write=None):
    # type: (Optional[Callable[[], None]]) -> None
    """An item ends: `write` (its end record) runs before the clock stops, so
    the watchdog cannot cut it in half."""
    with _lock:
        if write is not None:
            write()
        _state["what"], _state["since"] = None, None


def _watch():
    # type: () -> None
    while True:
        time.sleep(POLL)
        with _lock:
            _check()


def _check():
    # type: () -> None
    parent = _state["parent"]
    if parent is not None and os.getppid() != parent:
        _exit(PARENT_GONE_EXIT, "the host process (pid %d) is gone; stopping" % parent)
    limit, since = _state["timeout"], _state["since"]
    if limit is not None and since is not None and time.time() - since > limit:
        _dump_main_stack()
        _exit(ITEM_TIMEOUT_EXIT, "%s: no result after %gs (item timeout); stopping" % (_state["what"], limit))


def _dump_main_stack():
    # type: () -> None
    """Where the item was stuck, in faulthandler's format (the host reads both)."""
    frame = sys._current_frames().get(threading.main_thread().ident)
    lines = []
    while frame is not None:
        lines.append('  File "%s", line %d in %s\n' % (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    try:
        sys.stderr.write("Timeout: main thread (most recent call first):\n" + "".join(lines))
        sys.stderr.flush()
    except Exception:
        pass


def _exit(code, message):
    # type: (int, str) -> None
    try:
        sys.stderr.write("agent: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass
    _kill_group_but_me()
    os._exit(code)


def _kill_group_but_me():
    # type: () -> None
    """SIGKILL the other members of this process group when the agent leads it
    (the host starts every agent in its own session), so helpers such as TF
    1.x's converter do not outlive it."""
    me = os.getpid()
    try:
        if os.getpgid(0) != me:
            return
        pids = [name for name in os.listdir("/proc") if name.isdigit() and int(name) != me]
    except OSError:
        return
    for name in pids:
        try:
            with open("/proc/%s/stat" % name) as fh:
                fields = fh.read().rpartition(")")[2].split()
            if len(fields) > 2 and int(fields[2]) == me:
                os.kill(int(name), signal.SIGKILL)
        except (OSError, ValueError):
            continue
