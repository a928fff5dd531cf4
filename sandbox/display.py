"""What a person sees of a run: the output layer of the command line.

Three modes, picked from the terminal and the options:
- live (a terminal): one line per cell with its phase, a bar and its counters
  (done / total, failures), an overall bar with its ETA; it ends in the final
  table of cells.
- plain (a pipe, a CI log): one line per finished cell phase; never one line
  per item unless verbose.
- quiet: nothing until the closing summary.
Every mode ends with the same closing summary (sandbox.summary)."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from tabulate import tabulate

from sandbox import events as ev
from sandbox.classify import FAILED
from sandbox.summary import Summary

Mode = Literal["live", "plain", "quiet"]
MEASURED = ("export", "load")  # the phases whose items the bars count
CELL_BAR = (*MEASURED, "witness")  # and a cell's own bar: its witnesses too
PAIRS_SHOWN, NAMES_SHOWN = 8, 6  # per format in the closing summary (all with -v)
HARNESS_SHOWN = 5  # harness errors listed in the closing summary (all with -v)


def pick_mode(stream: TextIO, quiet: bool) -> Mode:
    if quiet:
        return "quiet"
    console = Console(file=stream)
    return "live" if console.is_terminal and not console.is_dumb_terminal else "plain"


@dataclass
class CellLine:
    """What the display knows of one cell, from its events."""

    id: str
    phase: str = "waiting"
    status: str = ""
    reason: str = ""
    todo: int = 0
    done: int = 0
    failures: int = 0
    provision: str = ""
    measured: Counter[str] = field(default_factory=Counter)  # phase -> items measured
    reused: Counter[str] = field(default_factory=Counter)  # phase -> items taken from the store
    seconds: float = 0.0


class Display:
    """A listener for run events (sandbox.events) and the closing summary.
    Use as a context manager around the run; thread-safe."""

    def __init__(self, mode: Mode, verbose: bool = False, stream: TextIO | None = None,
                 start: float | None = None) -> None:
        self.mode, self.verbose = mode, verbose
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream, highlight=False)
        self.start = time.monotonic() if start is None else start  # the command's start: times count from it
        self.cells: dict[str, CellLine] = {}
        self.lock = threading.RLock()
        self.progress: Progress | None = None
        self.live: Live | None = None
        self.tasks: dict[str, TaskID] = {}
        self.overall: TaskID | None = None

    # lifecycle -------------------------------------------------------------------
    def begin(self, cells: list[str]) -> None:
        """The cells of the run, in order (the live display shows them from the start)."""
        with self.lock:
            for cell in cells:
                self._cell(cell)
            if self.mode != "live":
                return
            self.progress = Progress(
                TextColumn("{task.description}"), TextColumn("{task.fields[phase]:<9}"), BarColumn(bar_width=24),
                TextColumn("{task.fields[count]:>11}"), TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                console=self.console)
            for cell in cells:
                self.tasks[cell] = self.progress.add_task(f"{cell:30}", total=None, phase="waiting", note="", count="")
            self.overall = self.progress.add_task(f"{'all cells':30}", total=None, phase="", note="", count="")
            self.live = Live(self.progress, console=self.console, refresh_per_second=4, transient=True)
            self.live.start()

    def end(self) -> None:
        """Stop the live display (it gives way to the final table)."""
        with self.lock:
            if self.live is not None:
                live, self.live = self.live, None
                try:
                    live.stop()
                except Exception as exc:  # a display bug must not cost the run its report
                    self.mode = "plain"
                    print(f"sandbox: warning: the live display failed ({type(exc).__name__}: {exc}); "
                          "plain output from here", file=sys.stderr)

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    def __call__(self, event: ev.Event) -> None:
        with self.lock:
            if isinstance(event, ev.StageStarted):
                self._stage(event)
                return
            line = self._cell(event.cell)
            handler = getattr(self, f"_on_{type(event).__name__}")
            handler(line, event)
            self._refresh(line)

    def _cell(self, cell: str) -> CellLine:
        if cell not in self.cells:
            self.cells[cell] = CellLine(cell)
            if self.progress is not None and cell not in self.tasks:
                self.tasks[cell] = self.progress.add_task(f"{cell:30}", total=None, phase="", note="", count="")
        return self.cells[cell]

    # events ------------------------------------------------------------------------
    def _stage(self, event: ev.StageStarted) -> None:
        """The overall bar counts the stage's items, measured or reused: its ETA
        is the stage's."""
        if self.progress is not None and self.overall is not None:
            self.progress.reset(self.overall, total=event.total, description=f"{'all cells: ' + event.stage + 's':30}",
                                phase="", note="", count=f"0/{event.total}")  # reset replaces every field

    def _advance(self, phase: str, n: int) -> None:
        if phase in MEASURED and n > 0 and self.progress is not None and self.overall is not None:
            self.progress.advance(self.overall, n)
            task = self.progress.tasks[self.overall]
            self.progress.update(self.overall, count=f"{task.completed:.0f}/{task.total or 0:.0f}")

    def _on_PhaseStarted(self, line: CellLine, event: ev.PhaseStarted) -> None:
        if event.phase in CELL_BAR and line.phase == event.phase:  # another batch of the same phase
            line.todo += event.todo
        elif event.phase in CELL_BAR:  # the bar and counter follow the phase that has items
            line.todo, line.done = event.todo, 0
        line.phase = event.phase
        line.reused[event.phase] += event.reused
        self._advance(event.phase, event.reused)
        if event.phase == "provision":
            line.provision = "building"

    def _on_ItemDone(self, line: CellLine, event: ev.ItemDone) -> None:
        line.done += 1
        failed = event.status in FAILED or event.status == "error"  # a load, or an export, that failed
        line.failures += failed
        self._advance(event.phase, 1)
        if self.verbose:
            self._say(line.id, event.phase, f"{event.item}: {event.status}")

    def _on_PhaseFinished(self, line: CellLine, event: ev.PhaseFinished) -> None:
        measured = sum(n for _, n in event.counts)
        if line.phase == event.phase:
            self._advance(event.phase, line.todo - line.done)  # items that ended unrecorded
        else:  # nothing to measure: the store had it all
            line.reused[event.phase] += event.reused
            self._advance(event.phase, event.reused)
        line.measured[event.phase] += measured
        line.seconds += event.seconds
        line.phase = {"export": "exported", "load": "loaded", "witness": "witnessed"}.get(event.phase, event.phase)
        if event.phase in CELL_BAR:
            line.done = line.todo
        if self.mode == "plain" and (event.phase != "registry" or dict(event.counts).get("failed")):
            self._say(line.id, event.phase, _phase_words(event))

    def _on_Provisioned(self, line: CellLine, event: ev.Provisioned) -> None:
        line.provision = f"{'reused' if event.reused else 'built'} in {event.seconds:.0f}s"
        line.phase = "provisioned"
        if self.mode == "plain":
            self._say(line.id, "provision", f"environment {line.provision}")

    def _on_CellFinished(self, line: CellLine, event: ev.CellFinished) -> None:
        line.status, line.reason = event.status, event.reason or ""
        if event.status != "ok":  # ok comes after the exports; the loads are still to come
            line.phase = event.status
        if event.status != "ok" and self.mode != "quiet":
            self._say(line.id, event.status, event.reason or "")

    def _on_Note(self, line: CellLine, event: ev.Note) -> None:
        if self.mode != "quiet":
            self._say(line.id, event.phase, event.message)

    def _refresh(self, line: CellLine) -> None:
        if self.progress is None:
            return
        task = self.tasks[line.id]
        note = Text()
        if line.failures:
            note.append(f"{line.failures} failed", style="red")
        reused = sum(line.reused.values())
        if reused:
            note.append(f"{' ' if note else ''}{reused} reused", style="dim")
        if line.phase == "provision":
            note.append(line.provision)
        self.progress.update(task, total=line.todo or None, completed=line.done, phase=line.phase, note=note,
                             count=f"{line.done}/{line.todo}" if line.todo else "")

    def _say(self, cell: str, phase: str, message: str) -> None:
        elapsed = time.monotonic() - self.start
        text = f"[{elapsed:5.0f}s] {cell:28} {phase:9} {message}".rstrip()
        if self.live is not None:
            self.console.print(Text(text))
        else:
            print(text, file=self.stream, flush=True)

    # the end -----------------------------------------------------------------------
    def table(self, found: Summary) -> None:
        """The final table, one row per cell of the results document (not in
        quiet mode): what this run measured and reused, and the verdicts of
        every load in the cell, measured now or before."""
        if self.mode == "quiet":
            return
        headers = ["cell", "status", "environment", "exports", "loads", "ok", "differ", "failed", "seconds"]
        rows = [_row(self.cells.get(cell) or CellLine(cell), status, Counter(dict(counts)))
                for cell, status, counts in found.rows]
        if self.mode == "live":
            table = Table(*headers, title=None, show_edge=False, pad_edge=False)
            for row in rows:
                table.add_row(*(Text(str(v), style=_style(str(row[1]))) if i == 1 else str(v)
                                for i, v in enumerate(row)))
            self.console.print(table)
        else:
            print(tabulate(rows, headers), file=self.stream, flush=True)

    def summary(self, lines: list[str]) -> None:
        for text in lines:
            if self.mode == "live":
                self.console.print(Text(text))
            else:
                print(text, file=self.stream, flush=True)

    def wall(self) -> float:
        return time.monotonic() - self.start


def _phase_words(event: ev.PhaseFinished) -> str:
    """`export 80: 70 exported, 10 not-applicable (24s); 0 reused` and alike."""
    measured = sum(n for _, n in event.counts)
    if event.phase == "registry":
        return "failed" if dict(event.counts).get("failed") else f"stored ({event.seconds:.0f}s)"
    noun = {"export": "artifacts", "witness": "witnesses"}.get(event.phase, "loads")
    if not measured:
        return f"{event.reused} {noun} from the store, nothing to measure"
    parts = ", ".join(f"{n} {s}" for s, n in event.counts)
    return f"measured {measured} {noun} in {event.seconds:.0f}s: {parts}" + (
        f"; {event.reused} from the store" if event.reused else "")


def _row(line: CellLine, status: str, statuses: Counter[str]) -> list[object]:
    failed = sum(n for s, n in statuses.items() if s in FAILED)
    exports = f"{line.measured['export']}" + (f" (+{line.reused['export']} reused)" if line.reused["export"] else "")
    loads = f"{line.measured['load']}" + (f" (+{line.reused['load']} reused)" if line.reused["load"] else "")
    return [line.id, status, line.provision or "-", exports, loads, statuses.get("ok", 0),
            statuses.get("outputs-differ", 0), failed, f"{line.seconds:.0f}"]


def _style(status: str) -> str:
    return {"ok": "green", "skipped": "yellow"}.get(status, "red")


def closing_summary(summary: Summary, tally: str, seconds: float, outputs: list[Path],
                    verbose: bool = False) -> list[str]:
    """The lines that end a run, in every mode: cells by status, loads by
    verdict, what was measured and reused, failing pairs per format, paths."""
    cells = ", ".join(f"{n} {s}" for s, n in summary.cells)
    lines = [f"{sum(n for _, n in summary.cells)} cells in {_duration(seconds)}: {cells}"]
    lines += [f"  {cell}: {status} ({reason})" for cell, status, reason in summary.problems]
    device = f", {summary.device} device-bound" if summary.device else ""
    lines.append(f"loads: {summary.ok} ok, {summary.differ} differ, {summary.failed} fail{device}"
                 f" ({summary.not_applicable} not applicable)")
    if summary.device:
        lines.append(f"device-bound loads need a device their consumer lacks, not failing pairs: "
                     f"{', '.join(summary.device_probes) or 'a kernel missing on the consumer'}")
    if summary.harness:
        lines.append(f"harness errors: {len(summary.harness)} (bugs of sandbox, not findings; please report them):")
        listed = summary.harness if verbose else summary.harness[:HARNESS_SHOWN]
        lines += [f"  {what}" for what in listed]
        lines += [f"  +{len(summary.harness) - len(listed)} more (all with -v)"] if len(listed) < len(summary.harness) else []
    lines.append(tally)
    if summary.formats:
        lines.append("failing pairs by format (producer->consumer failed/loads; ops and attrs named in the errors; all with -v):")
    for fmt in summary.formats:
        shown = fmt.pairs if verbose else fmt.pairs[:PAIRS_SHOWN]
        pairs = ", ".join(f"{summary.pair(p)} {p.failed}/{p.applicable}" for p in shown)
        pairs += f" +{len(fmt.pairs) - len(shown)} more" if len(shown) < len(fmt.pairs) else ""
        names = fmt.names if verbose else fmt.names[:NAMES_SHOWN]
        more = f" +{len(fmt.names) - len(names)} more" if len(names) < len(fmt.names) else ""
        lines.append(f"  {fmt.format} ({len(fmt.pairs)} pairs): {pairs}" + (f"; {', '.join(names)}{more}" if names else ""))
        if verbose:
            lines += [f"    {summary.pair(p)}: {p.failed}/{p.applicable} failed; {', '.join(p.names) or '-'}"
                      for p in fmt.pairs]
    lines += witness_lines(summary)
    if not summary.loads:
        lines.append("nothing was measured: no cell could load anything (see the reasons above)")
    html, md, junit, results = (str(p) for p in outputs)
    lines += [f"report: {html} {md} {junit}", f"results: {results}"]
    return lines


def witness_lines(summary: Summary) -> list[str]:
    """How the findings' witnesses came out; every finding one did not reproduce."""
    if not summary.witnesses:
        return []
    return [f"witnesses of {sum(n for _, n in summary.witnesses)} findings: "
            + ", ".join(f"{n} {outcome}" for outcome, n in summary.witnesses),
            *(f"  not reproduced (a bug of ours): {finding}" for finding in summary.refuted)]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"
