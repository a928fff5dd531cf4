"""The agent in one cell's environment: a verb run to completion, resumed past
the items it crashed or hung on (each closed in its journal with how it ended,
sandbox.crashes), stopped when the run is interrupted."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import commands, crashes, digests
from sandbox import events as ev
from sandbox.context import Context
from sandbox.envs import Environment
from sandbox.errors import CommandFailed, Interrupted
from sandbox.journal import Verb, Watcher
from sandbox.records import INTERRUPTED

AGENT = digests.AGENT
MAX_RESUMES = 50


@dataclass(frozen=True)
class Agent:
    """The agent as one cell of a run runs it."""

    ctx: Context
    cell: str  # the cell's id, for its events
    env: Environment

    def supervise(self, args: list[str], verb: Verb, log: Path, readable: tuple[Path, ...],
                  writable: tuple[Path, ...]) -> str | None:
        """Run an agent verb to completion, resuming past crashed items.
        Returns None on success, else why the verb could not finish."""
        phase: ev.Phase = "export" if args[0] == "export" else "load"
        timeout = self.ctx.matrix.timeout
        for _ in range(MAX_RESUMES):
            with Watcher(verb.journal, lambda r: self._echo(phase, r)):
                try:
                    done = self.run([*args, "--resume", "--item-timeout", repr(timeout)], log, readable, writable)
                except Interrupted:
                    done = None
            if self.ctx.stopping.is_set() or commands.stopping() or (done is not None and done.interrupted):
                # neither a crash nor a result: the next run measures these items again
                verb.close_pending(INTERRUPTED, "the run was interrupted")
                raise Interrupted("the run was interrupted")
            if done is not None and done.returncode == 0 and not verb.pending():
                return None
            end = crashes.ending(done.returncode if done else None, done.output if done else "", timeout)
            if verb.close_pending(end.status, end.reason, functools.partial(end.fields, phase)) == 0:
                last = commands.tail(done.output, 1) if done else ""
                return f"agent `{phase}` failed: {end.reason}{': ' + last if last else ''} (log: {log})"
            self.ctx.emit(ev.Note(self.cell, phase, f"{end.reason}; resuming after the item it was on"))
        return f"agent `{phase}` kept dying; gave up after {MAX_RESUMES} resumes (log: {log})"

    def run(self, args: list[str], log: Path, readable: tuple[Path, ...],
            writable: tuple[Path, ...]) -> commands.Completed | None:
        """None means the command timed out. The agent ends an item that runs past
        the timeout itself (exit 124), even with this process gone; the whole
        command's limit here is only a backstop."""
        try:
            return self.env.run_python([str(AGENT), *args], log=log, timeout=self.ctx.matrix.timeout * 10 + 60,
                                       readable=(AGENT, *self.ctx.matrix.probe_modules, *readable),
                                       writable=writable)
        except CommandFailed as exc:
            if exc.returncode is None:
                return None
            raise

    def _echo(self, phase: ev.Phase, record: dict[str, Any]) -> None:
        if record.get("kind") in ("artifact", "load"):
            what = "/".join(str(record.get(k)) for k in ("producer", "probe", "format", "loader") if record.get(k))
            self.ctx.emit(ev.ItemDone(self.cell, phase, what, str(record.get("status"))))
