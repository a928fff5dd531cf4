"""Run planned cells over the results store: measure only what it lacks.

Tasks: export(cell) for what the store has not recorded of a producer,
registry(cell), then load(consumer <- artifact, loader) for every pair it has
not recorded. A cell's environment is provisioned only when it has something
to measure, so an unchanged re-run imports no TensorFlow at all. Cells are
independent: one failing, crashing or hanging cell never stops the others.

This module only schedules: it hands the tasks to each cell's CellRun
(sandbox.cellrun) on one pool of workers, in the order sandbox.schedule's
policy gives, stops them all on Ctrl-C, and keeps what only the whole run
knows (each producer's artifacts as it left its export, the tally).
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from sandbox import envs, schedule
from sandbox import events as ev
from sandbox.cellrun import CellRun
from sandbox.context import Context, StoreView, Tally
from sandbox.errors import SandboxError
from sandbox.keys import Keys
from sandbox.matrix import Matrix
from sandbox.plan import Cell
from sandbox.plan import references as plan_references
from sandbox.records import CellResult, Source, loaders_of
from sandbox.store import ResultsStore

ROUNDS = 3  # load rounds: files found damaged in one are exported again for the next
AGENT_MEMORY = 2 << 30  # what one agent (TF, a probe's models, a converter) may hold at its peak: -j's unit


class Run:
    """One run: schedules its cells' tasks on a pool, interrupts them, and
    keeps the run's bookkeeping (what each producer left, the tally)."""

    def __init__(self, matrix: Matrix, cells: list[Cell], run_dir: Path, jobs: int, emit: ev.Listener,
                 store: ResultsStore | None = None, fresh: bool = False, keras_unsafe: bool = False,
                 references: frozenset[str] | None = None) -> None:
        # absolute: container backends mount these paths at the same place inside
        self.matrix, self.run_dir, self.jobs = matrix, run_dir.resolve(), max(1, jobs)
        self.emit, self.store, self.fresh = emit, store or ResultsStore(), fresh
        self.keys = Keys.of(matrix, keras_unsafe)  # keras_unsafe: a repro spec may let Keras run code in the model
        self.tally = Tally()
        self.stopping = threading.Event()
        self.context = Context(matrix, self.keys, StoreView(self.store, fresh), self.run_dir, emit, self.stopping,
                               self.tally)
        self.cells = [CellRun(self.context, cell) for cell in cells]
        self.external: list[Source] = []  # artifacts of producers that are not cells (a user's model)
        self.produced: dict[str, list[Source]] = {}  # healthy producer -> its artifacts, as it left its export
        # a related map's cells: measured here only in pairs with the others (sandbox.schedule); the
        # plan's, where this run holds a part of it (a shard's one cell)
        self.references = plan_references(cells) if references is None else references

    def run(self, export: bool = True, external: list[Source] | None = None, loads: bool = True) -> list[CellResult]:
        """Export (with `export`) and record every cell's registry, and (with
        `loads`) load every healthy cell's artifacts, and the `external` ones
        (a user's model, already in the store), in every healthy cell; all on
        one pool of `jobs` workers (sandbox.schedule: a consumer loads its
        producers as they become ready)."""
        self._scratch()
        self.emit(ev.StageStarted("export", sum(len(c.export_items()) for c in self.cells if not c.cell.skip)
                                  if export else 0))
        self.external = list(external or [])
        state = self._state([c.cell.id for c in self.cells], [])
        try:
            self._work(state, export, loads)
            self._reload_damaged(export)
        finally:
            self.keys.code.save()
        return self._results()

    def loads_only(self, sources: list[Source], produced: dict[str, CellResult]) -> list[CellResult]:
        """Only the loads, for cells whose export phase ran elsewhere (a
        shard): `produced` holds what it found (state, facts, registry)."""
        self._scratch()
        for cell in self.cells:
            cell.produced_elsewhere(produced[cell.cell.id])
        self.external = sources
        state = self._state([], [c.cell.id for c in self.cells if c.consumes()])
        self._load_stage(state)
        self._work(state, export=False, loads=True)
        self._reload_damaged(False)
        return self._results()

    def _state(self, producers: list[str], consumers: list[str]) -> schedule.State:
        """The policy's state; the external artifacts weigh from the start."""
        state = schedule.State(producers, workers=self.jobs, apart=self.references, consumers=consumers)
        for source in self.external:
            state.weight[source.producer] = state.weight.get(source.producer, 0) + len(loaders_of(source.artifact))
        return state

    def _results(self) -> list[CellResult]:
        sources = self.sources()
        self.tally.add("export-reused", sum(c.exports_reused for c in self.cells))
        return [c.conclude([s for s in sources if schedule.paired(self.references, s.producer, c.cell.id)])
                for c in self.cells]

    def sources(self) -> list[Source]:
        """Every artifact any consumer of this run loads: those of the cells
        that were healthy after their export (a consumer that fails later
        stays a producer), then the external ones."""
        return [s for c in self.cells for s in self.produced.get(c.cell.id, [])] + self.external

    def _scratch(self) -> None:
        if self.store.inside(self.run_dir):
            raise SandboxError(f"{self.run_dir}: holds the results store ({self.store.root.resolve()}); a run starts "
                               "its folder afresh, so give it another --work-dir")
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)  # scratch of an earlier run: the store has its results

    def _reload_damaged(self, reexport: bool) -> None:
        """Files a consumer found damaged in the store were set aside; with
        `reexport`, their producers (cells of this run) export them again and
        those consumers load the new files, so nothing is left out. What cannot
        be exported again (a shard's bundle, a user's model) errors its
        consumers: never a cell "ok" with loads missing."""
        for _ in range(ROUNDS - 1):
            wanted = {c.cell.id: {(s.producer, s.artifact.probe, s.artifact.format) for s in c.damaged}
                      for c in self.cells if c.damaged and c.result.state.status == "ok"}
            producers = {p for w in wanted.values() for p, _, _ in w}
            again = [c for c in self.cells if c.cell.id in producers]
            if not reexport or not again:
                break
            self.each(lambda c: c.produce(True), again)
            for cell in again:
                if cell.result.state.status == "ok":
                    self.produced[cell.cell.id] = cell.sources()
            retry = {consumer: [s for s in self.sources() if (s.producer, s.artifact.probe, s.artifact.format) in w]
                     for consumer, w in wanted.items()}
            consumers = [c for c in self.cells if c.cell.id in wanted]
            for cell in consumers:
                cell.forget_damaged()
            self.each(functools.partial(_consume_from, retry), consumers)
            for cell in consumers:
                cell.end_loads()
        for cell in self.cells:
            cell.settle()

    def each(self, work: Callable[[CellRun], None], cells: list[CellRun]) -> None:
        """`work` on every cell of `cells`, `jobs` at a time; Ctrl-C stops them all."""
        pool = ThreadPoolExecutor(max_workers=self.jobs)
        try:
            list(pool.map(work, cells))
        except BaseException:  # Ctrl-C, SIGTERM: start no more cells, stop the running agents
            self.stopping.set()
            pool.shutdown(wait=False, cancel_futures=True)
            envs.interrupt()
            pool.shutdown(wait=True)  # the workers store what their agents finished
            raise
        pool.shutdown()

    def _load_stage(self, state: schedule.State) -> None:
        self.emit(ev.StageStarted("load", state.items()))

    # the pool -----------------------------------------------------------------------
    def _work(self, state: schedule.State, export: bool, loads: bool) -> None:
        """`jobs` workers take tasks from the policy until none is left."""
        cells = {c.cell.id: c for c in self.cells}
        cond = threading.Condition()
        if not loads:
            state.consumers = []  # nothing loads: every cell is only produced

        def worker() -> None:
            while True:
                with cond:
                    task = None if self.stopping.is_set() else schedule.next_task(state)
                    while task is None and not state.over() and not self.stopping.is_set():
                        cond.wait()
                        task = None if self.stopping.is_set() else schedule.next_task(state)
                    if task is None:
                        return
                    state.start(task)
                try:
                    self._do(task, cells, state, cond, export, loads)
                except BaseException:
                    self.stopping.set()  # the store cannot be written, or a bug: start nothing more
                    raise
                finally:
                    with cond:
                        cond.notify_all()

        pool = ThreadPoolExecutor(max_workers=self.jobs)
        futures = [pool.submit(worker) for _ in range(self.jobs)]
        try:
            for future in futures:
                future.result()
        except BaseException:  # Ctrl-C, SIGTERM: start no more tasks, stop the running agents
            self.stopping.set()
            with cond:
                cond.notify_all()
            pool.shutdown(wait=False, cancel_futures=True)
            envs.interrupt()
            pool.shutdown(wait=True)  # the workers store what their agents finished
            raise
        pool.shutdown()

    def _do(self, task: schedule.Task, cells: dict[str, CellRun], state: schedule.State,
            cond: threading.Condition, export: bool, loads: bool) -> None:
        cell = cells[task.cell]
        if task.kind == "produce":
            cell.produce(export)
            healthy = cell.result.state.status == "ok"
            weight = sum(len(loaders_of(s.artifact)) for s in cell.sources()) if healthy else 0
            with cond:
                if healthy:
                    self.produced[task.cell] = cell.sources()
                state.produced(task.cell, healthy and loads, weight, consumes=cell.cell.request.role != "producer")
                last = state.producing_over
            if last and loads:
                self._load_stage(state)
        else:
            sources = [s for s in self.sources() if s.producer in task.producers]
            cell.consume(sources)
            with cond:
                state.batch_over(task.cell, cell.result.state.status == "ok")
        with cond:
            finished = state.finished()
        for consumer in finished:
            cells[consumer].end_loads()

def default_jobs() -> int:
    """As many agents as this process has cores, fewer where memory would not
    hold that many (MemAvailable / AGENT_MEMORY), at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            available = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return max(1, cores)
    return max(1, min(cores, available // AGENT_MEMORY))


def _consume_from(sources: dict[str, list[Source]], cell: CellRun) -> None:
    cell.consume(sources[cell.cell.id])


