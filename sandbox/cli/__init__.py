"""The command line. The only place that prints results and turns errors
into one-line messages and exit codes: `main` here, the grammar in
parser.py, each verb in the module named for its concern (planning,
running, sharding, reporting, checking, reproducing, environments)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from sandbox import envs
from sandbox.cli.parser import build_parser
from sandbox.errors import HarnessError, Interrupted, SandboxError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _stop_on_signals() as caught:
        try:
            return int(args.func(args) or 0)
        except Interrupted:
            return _stopped(caught[0] if caught else signal.SIGINT)
        except BrokenPipeError:  # `sandbox plan --json | head`: the reader left; not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except SandboxError as exc:
            if args.debug:
                traceback.print_exc()
            print(f"sandbox: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except OSError as exc:  # the safety net: a file or folder the specific checks did not foresee
            if args.debug:
                traceback.print_exc()
            where = f" {exc.filename}" if exc.filename else ""
            print(f"sandbox: error: cannot use{where}: {exc.strerror or exc}; check the path and its permissions "
                  "(--debug shows where)", file=sys.stderr)
            return SandboxError.exit_code
        except KeyboardInterrupt:
            return _stopped(caught[0] if caught else signal.SIGINT)
        except Exception as exc:  # a bug of ours: one line (the trace with --debug), exit 4
            if args.debug:
                traceback.print_exc()
            print(f"sandbox: internal error: {type(exc).__name__}: {exc} (a bug in sandbox: please report it; "
                  "--debug shows the trace)", file=sys.stderr)
            return HarnessError.exit_code


@contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """Ctrl-C (SIGINT) and SIGTERM alike: stop every agent and container first
    (envs.interrupt), then unwind as KeyboardInterrupt. Yields the list that
    receives the signal's number. Children run in their own sessions, so a
    terminal's Ctrl-C reaches only this process and the stop is in order."""
    caught: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        first = not caught
        caught.append(signum)
        if first:
            envs.interrupt()
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield caught  # signals are delivered to the main thread only
        return
    before = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _stopped(signum: int) -> int:
    """After Ctrl-C or SIGTERM: children are stopped (again, in case the
    interrupt came another way); one line; 128 + the signal's number."""
    envs.interrupt()
    name = signal.Signals(signum).name
    print(f"sandbox: stopped by {name}; everything finished is in the results store (run again to go on)", file=sys.stderr)
    return 128 + signum
