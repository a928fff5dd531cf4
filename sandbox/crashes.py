"""An agent process that ended in the middle of an item: how (a signal, the
watchdog's timeout, an error of our own that escaped) and where (the Python
stack that faulthandler or the watchdog printed, or the traceback), as the
fields of that item's record.

- killed by a signal (SIGSEGV in TF's converter): `crash`, a finding: native
  code of the library died. A container's main process reports it as 128+N.
- the watchdog's exit 124, or no answer at all: `timeout`.
- any other exit (1: an uncaught exception of ours, 2: arguments we passed,
  0: an item left without a record): `harness-error`, a bug of ours.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Any

from sandbox.agent.blame import where
from sandbox.agent.texts import shorten

ITEM_TIMED_OUT = 124  # the agent's exit code when its watchdog ended an item

# faulthandler's dump (and the watchdog's, in the same format): innermost frame first
_STACK = re.compile(r"^(?:Current thread [^\n]*?|Timeout: main thread) ?\(most recent call first\):\n"
                    r"((?:  File [^\n]*\n?)+)", re.M)
_STACK_FRAME = re.compile(r'  File "([^"]+)", line (\d+) in (\S+)')
# a Python traceback: innermost frame last
_TRACEBACK_FRAME = re.compile(r'^  File "([^"]+)", line (\d+), in (\S+)', re.M)


@dataclass(frozen=True)
class Ending:
    status: str  # crash | timeout | harness-error
    error_type: str  # "SIGSEGV", "timeout", "exit 1"
    reason: str
    raised_in: str | None  # "tensorflow/lite/python/optimize/calibrator.py:152 in _feed_tensors"

    def fields(self, phase: str, item: dict[str, Any]) -> dict[str, Any]:
        """The record fields of the item (its start record) the agent was on in `phase`."""
        where_ = f", in {self.raised_in}" if self.raised_in else ""
        text = f"{self.reason} while {doing(phase, item)}{where_}"
        return {"status": self.status, "error_type": self.error_type, "error": text, "reason": text,
                "raised_in": self.raised_in}


def ending(returncode: int | None, output: str, timeout: float) -> Ending:
    """How an agent that left an item unfinished ended (`returncode` None: it did not answer)."""
    if returncode is None or returncode == ITEM_TIMED_OUT:
        return Ending("timeout", "timeout", f"no result after {timeout:.0f}s (timeout)", _stack_top(output))
    number = signal_number(returncode)
    if number is not None:
        name, text = signal.Signals(number).name, signal.strsignal(number) or ""
        return Ending("crash", name, f"the agent process died of {name} ({text.lower()})", _stack_top(output))
    last = _last_line(output)
    why = {0: "the agent ended without a record for this item"}.get(returncode, f"the agent exited {returncode}")
    return Ending("harness-error", f"exit {returncode}", f"{why}{': ' + last if last else ''}",
                  _traceback_bottom(output))


def doing(phase: str, item: dict[str, Any]) -> str:
    """What an agent was doing on an item: "exporting lstm/tflite_int8"."""
    keys = ("probe", "format") if phase == "export" else ("producer", "probe", "format", "loader")
    return f"{'exporting' if phase == 'export' else 'loading'} {'/'.join(str(item.get(k)) for k in keys)}"


def signal_number(returncode: int) -> int | None:
    """The signal that ended a process: -N from a child, 128+N from a container's main process."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else None
    valid = {s.value for s in signal.Signals}
    return number if number in valid else None


def _frame(path: str, line: str, function: str) -> str:
    return f"{where(path)}:{line} in {function}"


def _stack_top(output: str) -> str | None:
    """The innermost frame of the last stack dump in the output."""
    dumps = _STACK.findall(output)
    first = _STACK_FRAME.match(dumps[-1]) if dumps else None
    return _frame(*first.groups()) if first else None


def _traceback_bottom(output: str) -> str | None:
    frames = _TRACEBACK_FRAME.findall(output)
    return _frame(*frames[-1]) if frames else None


def _last_line(output: str) -> str:
    """The last line that is not the agent's own progress note."""
    lines = [l.strip() for l in output.strip().splitlines() if l.strip() and not l.startswith("agent: ")]
    return shorten(lines[-1], 300) if lines else ""
