"""Run planned cells over the results store: measure only what it lacks.

Tasks: export(cell) for what the store has not recorded of a producer,
registry(cell), then load(consumer <- artifact, loader) for every pair it has
not recorded. A cell's environment is provisioned only when it has something
to measure, so an unchanged re-run imports no TensorFlow at all. Cells are
independent: one failing, crashing or hanging cell never stops the others.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from sandbox import commands, crashes, digests, envs, runtimes, schedule
from sandbox import events as ev
from sandbox.agent import catalog
from sandbox.envs import Environment, ProvisionFailed, environment
from sandbox.errors import CommandFailed, Interrupted, SandboxError
from sandbox.journal import Verb, Watcher
from sandbox.matrix import Matrix
from sandbox.plan import Cell
from sandbox.records import HARNESS_ERROR, INTERRUPTED, Artifact, Load, RecordError
from sandbox.store import (
    CellPaths,
    ResultsStore,
    StoreError,
    export_files,
    external_files,
    read_jsonl,
    write_json,
    write_text,
)

AGENT = digests.AGENT
MAX_RESUMES = 50
ROUNDS = 3  # load rounds: files found damaged in one are exported again for the next
AGENT_MEMORY = 2 << 30  # what one agent (TF, a probe's models, a converter) may hold at its peak: -j's unit
ITEM_TIMED_OUT = 124  # the agent's exit code when its watchdog ended an item

@dataclass
class CellState:
    id: str
    status: str = "planned"  # ok | skipped | install-failed | broken | error | harness-error (a bug of ours)
    reason: str | None = None
    detail: str | None = None
    env: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellResult:
    """What a run knows of one cell: its plan, state, and records from the store."""

    facts: dict[str, Any]  # the plan's facts (collect.cell_facts): a merge has no Cell
    state: CellState
    identity: str = ""  # the environment's key in the store
    artifacts: list[tuple[str, Artifact]] = field(default_factory=list)  # (export key, record)
    loads: list[tuple[str, Load]] = field(default_factory=list)  # (producer, record)
    registry: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # what the cell reported about itself
    load_keys: list[str] = field(default_factory=list)  # the store's key of each of `loads`
    registry_key: str | None = None
    complete: bool = False  # the store holds every record this cell asked for: a re-run measures nothing

    def records(self) -> list[tuple[str, str]]:
        """(kind, key) of every store record this result holds."""
        found = [("exports", key) for key, _ in self.artifacts] + [("loads", key) for key in self.load_keys]
        return found + ([("registries", self.registry_key)] if self.registry_key and self.registry else [])


@dataclass(frozen=True)
class Source:
    """An artifact some consumer may load: a producer's name and its export."""

    producer: str
    key: str
    artifact: Artifact


@dataclass
class Tally:
    """What a run measured and what it took from the store."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def line(self) -> str:
        c = self.counts
        return (f"measured {c['export']} exports, {c['load']} loads, {c['registry']} registries; "
                f"reused {c['export-reused']} exports, {c['load-reused']} loads from the store")


class Run:
    """One run: the cells, where it keeps scratch files, the store, options."""

    def __init__(self, matrix: Matrix, cells: list[Cell], run_dir: Path, jobs: int, emit: ev.Listener,
                 store: ResultsStore | None = None, fresh: bool = False, keras_unsafe: bool = False) -> None:
        # absolute: container backends mount these paths at the same place inside
        self.matrix, self.run_dir, self.jobs = matrix, run_dir.resolve(), max(1, jobs)
        self.emit, self.store, self.fresh = emit, store or ResultsStore(), fresh
        self.keras_unsafe = keras_unsafe  # a repro spec may let Keras run code stored in the model
        self.code = digests.AgentCode(matrix.probe_modules)
        self.tally = Tally()
        self.measured: set[str] = set()  # keys this run measured (under --fresh, the store has them now)
        self.stopping = threading.Event()
        self.cells = [CellRun(self, cell) for cell in cells]
        self.external: list[Source] = []
        self.produced: dict[str, list[Source]] = {}  # healthy producer -> its artifacts, as it left its export

    def run(self, export: bool = True, external: dict[str, Path] | None = None, loads: bool = True) -> list[CellResult]:
        """Export (with `export`) and record every cell's registry, and (with
        `loads`) load every healthy cell's artifacts, and those of `external`
        producers (name -> a folder with a manifest, e.g. a user's model), in
        every healthy cell; all on one pool of `jobs` workers (sandbox.schedule:
        a consumer loads its producers as they become ready)."""
        self._scratch()
        self.emit(ev.StageStarted("export", sum(len(c.export_items()) for c in self.cells if not c.cell.skip)
                                  if export else 0))
        self.external = [s for name, folder in (external or {}).items() for s in self._external(name, folder)]
        state = schedule.State([c.cell.id for c in self.cells], workers=self.jobs)
        for source in self.external:
            state.weight[source.producer] = state.weight.get(source.producer, 0) + _loads_of(source)
        try:
            self._work(state, export, loads)
            self._reload_damaged(export)
        finally:
            self.code.save()
        return self._results()

    def loads_only(self, sources: list[Source], produced: dict[str, CellResult]) -> list[CellResult]:
        """Only the loads, for cells whose export phase ran elsewhere (a
        shard): `produced` holds what it found (state, facts, registry)."""
        self._scratch()
        for cell in self.cells:
            found = produced[cell.cell.id]
            if cell.result.identity and found.identity and found.identity != cell.result.identity:
                raise SandboxError(f"{cell.cell.id}: this machine's environment is not the one its export bundle "
                                   "was made in (another recipe: other packages, Python or sandbox); export and "
                                   "load with the same sandbox and matrix")
            cell.result = replace(found, loads=[], load_keys=[])  # this run measures its loads
        self.external = sources
        state = schedule.State([], workers=self.jobs,
                               consumers=[c.cell.id for c in self.cells
                                          if c.result.state.status == "ok" and c.cell.request.role != "producer"])
        for source in sources:
            state.weight[source.producer] = state.weight.get(source.producer, 0) + _loads_of(source)
        self._load_stage(state)
        self._work(state, export=False, loads=True)
        self._reload_damaged(False)
        return self._results()

    def _results(self) -> list[CellResult]:
        sources = self.sources()
        self.tally.add("export-reused", sum(c.exports_reused for c in self.cells))
        for cell in self.cells:
            cell.show()
            cell.result.complete = cell.complete(sources)
        return [c.result for c in self.cells]

    def sources(self) -> list[Source]:
        """Every artifact any consumer of this run loads: those of the cells
        that were healthy after their export (a consumer that fails later
        stays a producer), then the external ones."""
        return [s for c in self.cells for s in self.produced.get(c.cell.id, [])] + self.external

    def _scratch(self) -> None:
        if self.store.inside(self.run_dir):
            raise SandboxError(f"{self.run_dir}: holds the results store ({self.store.root.resolve()}); a run starts its folder "
                               "afresh, so give it another --work-dir")
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
                cell.damaged = []
            self.each(functools.partial(_consume_from, retry), consumers)
            for cell in consumers:
                cell.end_loads()
        for cell in self.cells:
            cell.settle()

    def stored(self, kind: str, key: str) -> dict[str, Any] | None:
        """The store's record, unless --fresh asks to measure it again (and
        this run has not yet), or it is a harness error that other code measured."""
        if self.fresh and key not in self.measured:
            return None
        return _reusable(self.store.get_export(key) if kind == "exports" else self.store.get(kind, key))

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
        per_consumer = sum(state.weight.values())
        self.emit(ev.StageStarted("load", per_consumer * len(state.consumers)))

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
            weight = sum(_loads_of(s) for s in cell.sources()) if healthy else 0
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

    def _external(self, name: str, folder: Path) -> list[Source]:
        """A user's model joins the run as a producer: stored by its content."""
        found = []
        for record in read_jsonl(folder / "manifest.jsonl"):
            if record.get("kind") != "artifact":
                continue
            files, manifest = external_files(folder.resolve(), record)
            payload = Artifact.from_agent(record).to_json()
            key, payload = self.store.put_export(None, payload, manifest, files)
            found.append(Source(name, key, Artifact.from_agent(payload)))
        return found

    # keys -------------------------------------------------------------------------
    def export_key(self, identity: str, probe: str, fmt: str) -> str:
        return digests.of_json(["export", identity, self.code.export(probe, fmt), probe, fmt])

    def load_key(self, identity: str, source: Source, loader: str) -> str:
        tol = self.matrix.tolerance(source.artifact.probe)
        artifact = source.artifact
        return digests.of_json(["load", identity, artifact.files_digest, artifact.format, loader,
                                self.code.load(artifact.probe, artifact.format, loader), tol.atol, tol.rtol,
                                self.keras_unsafe])

    def registry_key(self, identity: str) -> str:
        return digests.of_json(["registry", identity, self.code.registry()])

    def tolerance_args(self) -> list[str]:
        default = self.matrix.tolerance("default")
        args = ["--atol", repr(default.atol), "--rtol", repr(default.rtol)]
        for probe in self.matrix.probes:
            tol = self.matrix.tolerance(probe)
            args += ["--tolerance", f"{probe}={tol.atol!r},{tol.rtol!r}"]
        return args

    def module_args(self) -> list[str]:
        return [arg for module in self.matrix.probe_modules for arg in ("--probe-module", str(module))]


def keys_of(matrix: Matrix) -> Run:
    """A run with no cells: the keys a run of `matrix` stores its records by
    (a merge re-derives them from what bundles claim)."""
    return Run(matrix, [], Path("."), 1, lambda event: None, ResultsStore(Path("."), readonly=True))


def loaders_of(artifact: Artifact) -> list[str]:
    """What every consumer loads an artifact with: the loaders found to read a
    user's model, else every loader of its format."""
    return artifact.loaders or catalog.loaders_for(artifact.format)


class CellRun:
    """One cell in a run: owns its scratch paths, its environment (provisioned
    only when it has work) and its journals."""

    def __init__(self, run: Run, cell: Cell) -> None:
        self.run, self.cell = run, cell
        self.paths = CellPaths(run.run_dir, cell.id)
        self.result = CellResult(cell_facts(cell), CellState(cell.id))
        self.env: Environment | None = None
        self._provision_failed = False
        self.damaged: list[Source] = []  # sources whose stored files failed their check in this run's last batch
        self.exports_reused = 0  # of its exports, those the store had (as its last lookup found them)
        # this run's load batches (sandbox.schedule): how many, what they measured and reused, how long
        self._load_batches, self._load_reused, self._load_seconds = 0, 0, 0.0
        self._load_counts: Counter[str] = Counter()
        self._lock = threading.RLock()  # two load batches of this cell may run at once (sandbox.schedule)
        if not cell.skip:
            self.environment = environment(cell)
            self.result.identity = digests.of_json(self.environment.identity())

    # produce ----------------------------------------------------------------------
    def produce(self, export: bool) -> None:
        state = self.result.state
        try:
            if self.cell.skip:
                self._finish("skipped", self.cell.skip)
                return
            items = self.export_items() if export else []
            missing = self._stored_exports(items)
            if missing and self._provisioned():
                self._export(missing, len(items) - len(missing))
            elif items and not missing:
                self.run.emit(ev.PhaseFinished(self.cell.id, "export", reused=len(items)))
            self._registry()
            if state.status == "planned":
                self._finish("ok", None)
        except Interrupted:
            self._finish("error", "interrupted")
        except StoreError:
            raise  # the store cannot be written: stop the run, keep what is stored
        except Exception as exc:  # a harness bug in one cell must not stop the others
            self._finish(HARNESS_ERROR, f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def export_items(self) -> list[tuple[str, str]]:
        """(probe, format) of everything this cell exports: the matrix's formats
        its runtime writes; nothing in a consumer-only cell."""
        if self.cell.request.role == "consumer":
            return []
        return [(p, f) for p in self.run.matrix.probes for f in self.run.matrix.formats if self.cell.writes(f)]

    def loaders(self, source: Source) -> list[str]:
        """The loaders this cell loads `source` with: those that read it, that it has."""
        return [name for name in loaders_of(source.artifact) if name in self.cell.loaders]

    def _stored_exports(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Take what the store has into the result; return what it lacks."""
        missing = []
        self.result.artifacts = []
        for probe, fmt in items:
            key = self.run.export_key(self.result.identity, probe, fmt)
            artifact = _parsed(self.run.stored("exports", key), Artifact.from_agent)
            if artifact is None:
                missing.append((probe, fmt))
            else:
                self.result.artifacts.append((key, artifact))
        # counted once the run is over: a cell exported again (damaged files) looks its exports up twice
        self.exports_reused = sum(key not in self.run.measured for key, _ in self.result.artifacts)
        return missing

    def ready(self) -> Environment | None:
        """The cell's environment, provisioned now if this run has not yet (a
        witness in a cell whose loads all came from the store); None when it
        cannot be (the cell's status says why)."""
        if self.cell.skip or not self._provisioned():
            return None
        return self.env

    def _provisioned(self) -> bool:
        """Provision once (two load batches may ask at once); False (and the
        cell's status set) when it cannot be."""
        with self._lock:
            return self._provision()

    def _provision(self) -> bool:
        if self.env is not None:
            return True
        if self._provision_failed:
            return False
        cell, env = self.cell, self.environment
        as_of = cell.as_of[:10] if cell.as_of else "?"
        self.run.emit(ev.PhaseStarted(cell.id, "provision", 1, detail=f"{' '.join(cell.requirements)} on Python "
                                      f"{cell.python_version} ({cell.where}), deps as of {as_of}"))
        try:
            info = env.provision(self.paths.logs / "provision.log")
        except ProvisionFailed as exc:
            self._provision_failed = True
            self._finish(exc.status, str(exc), exc.detail)
            return False
        # stored with the cell's registry: facts of the environment that measured
        self.result.state.env = {"location": info.location, "gpus": info.gpus}
        self.run.emit(ev.Provisioned(cell.id, info.reused, info.seconds))
        if cell.image == "gpu" and info.gpus == 0:
            self._provision_failed = True
            self._finish("skipped", "no GPU visible to TensorFlow in this cell")
            return False
        self.env = env
        return True

    def _export(self, items: list[tuple[str, str]], reused: int) -> None:
        paths = self.paths
        shutil.rmtree(paths.artifacts, ignore_errors=True)  # an earlier round's files: in the store now
        paths.artifacts.mkdir(parents=True, exist_ok=True)
        probes = sorted({p for p, _ in items}, key=self.run.matrix.probes.index)
        formats = sorted({f for _, f in items}, key=self.run.matrix.formats.index)
        args = ["export", "--out", str(paths.artifacts), "--probes", ",".join(probes), "--formats", ",".join(formats),
                "--only", ",".join(f"{p}/{f}" for p, f in items), *self.run.module_args()]
        verb = Verb(paths.manifest, "artifact", ("probe", "format"))
        self.run.emit(ev.PhaseStarted(self.cell.id, "export", len(items), reused))
        start = time.monotonic()
        try:
            problem = self._supervise(args, verb, paths.logs / "export.log", (), (paths.artifacts,))
        finally:
            measured = self._ingest_exports(verb)
            self.run.emit(ev.PhaseFinished(self.cell.id, "export", ev.counts(measured), reused,
                                           time.monotonic() - start))
        if problem:
            self._finish("error", problem)

    def _ingest_exports(self, verb: Verb) -> Counter[str]:
        """Every export the agent finished goes into the store (on every path,
        interrupted or not: nothing measured is lost). Returns the statuses."""
        measured: Counter[str] = Counter()
        for record in verb.ends():
            if record.get("kind") == "cell":
                continue
            try:
                artifact = Artifact.from_agent(record)
            except RecordError:
                continue  # interrupted: measured again next run
            key = self.run.export_key(self.result.identity, artifact.probe, artifact.format)
            files = export_files(self.paths.artifacts, record) if artifact.exported else {}
            manifest = {**record, "kind": "artifact"} if artifact.exported else None
            _, payload = self.run.store.put_export(key, _payload(artifact), manifest, files)
            self.run.measured.add(key)
            self.result.artifacts.append((key, Artifact.from_agent(payload)))
            self.run.tally.add("export")
            measured[artifact.status.value] += 1
        order = {(p, f): i for i, (p, f) in enumerate((p, f) for p in self.run.matrix.probes
                                                      for f in self.run.matrix.formats)}
        self.result.artifacts.sort(key=lambda ka: order.get((ka[1].probe, ka[1].format), len(order)))
        return measured

    def _registry(self) -> None:
        """The cell's op registry (for the static check) and its facts."""
        key = self.run.registry_key(self.result.identity)
        stored = self.run.stored("registries", key)
        if stored is None and self._provisioned():
            assert self.env is not None
            self.run.emit(ev.PhaseStarted(self.cell.id, "registry", 1))
            self.paths.root.mkdir(parents=True, exist_ok=True)  # a cell that exports nothing has no folder yet
            start = time.monotonic()
            done = self._agent(["registry", "--out", str(self.paths.registry)], self.paths.logs / "registry.log",
                               (), (self.paths.root,))
            if done is not None and done.returncode == 0 and self.paths.registry.exists():
                stored = json.loads(self.paths.registry.read_text())
                stored["cell"] = {**dict(stored.get("cell") or {}), **self.result.state.env, "measured": _now()}
                self.run.store.put("registries", key, stored)
                self.run.measured.add(key)
                self.run.tally.add("registry")
                self.run.emit(ev.PhaseFinished(self.cell.id, "registry", (("ok", 1),), 0, time.monotonic() - start))
            else:
                self.run.emit(ev.PhaseFinished(self.cell.id, "registry", (("failed", 1),), 0, time.monotonic() - start))
                self.run.emit(ev.Note(self.cell.id, "registry", "failed; static checks against this cell are unavailable"))
        if stored is not None:
            self.result.registry, self.result.registry_key = stored, key
            self.result.info = {k: v for k, v in dict(stored.get("cell") or {}).items() if k != "kind"}

    def sources(self) -> list[Source]:
        return [Source(self.cell.id, key, a) for key, a in self.result.artifacts if a.exported]

    def complete(self, sources: list[Source]) -> bool:
        """Whether a re-run of this cell would find everything in the store."""
        if self.cell.skip:
            return True
        result, matrix = self.result, self.run.matrix
        wanted = sum(len(self.loaders(s)) for s in sources) if self.cell.request.role != "producer" else 0
        return (result.state.status == "ok" and result.registry is not None
                and len(result.artifacts) == len(matrix.probes) * len(matrix.formats)
                and len(result.loads) == len(result.load_keys) == wanted)

    def show(self) -> None:
        """The run folder shows every artifact and registry of the run, also
        those taken from the store (as links into it), for people to inspect."""
        for key, artifact in self.result.artifacts:
            if not artifact.exported or artifact.files_digest is None:
                continue
            target = self.run.store.artifact_dir(key, artifact.files_digest, artifact.probe, artifact.format)
            link = self.paths.artifacts / artifact.probe / artifact.format
            if target.exists() and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target, target_is_directory=True)
        if self.result.registry is not None and not self.paths.registry.exists():
            write_json(self.paths.registry, self.result.registry)

    # consume ----------------------------------------------------------------------
    def consume(self, sources: list[Source]) -> None:
        """One batch: the loads of `sources` the store lacks, in one agent process."""
        try:
            todo, reused = self._stored_loads(sources)
            todo = self._loadable(todo)
            if todo and self._provisioned():
                self._load(todo, reused)
        except Interrupted:
            self._finish("error", "interrupted")
        except StoreError:
            raise
        except Exception as exc:  # keep the other consumers going
            self._finish(HARNESS_ERROR, f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def end_loads(self) -> None:
        """This cell's last batch is over: one line for all its loads."""
        if self._load_batches or self._load_counts:
            self.run.emit(ev.PhaseFinished(self.cell.id, "load", ev.counts(self._load_counts), self._load_reused,
                                           self._load_seconds))
        elif self.result.loads:
            self.run.emit(ev.PhaseFinished(self.cell.id, "load", reused=len(self.result.loads)))

    def _stored_loads(self, sources: list[Source]) -> tuple[list[tuple[str, Source, str]], int]:
        """Take what the store has into the result; return what it lacks, and
        how many it had."""
        todo, found = [], []
        for source in sources:
            for loader in self.loaders(source):
                key = self.run.load_key(self.result.identity, source, loader)
                load = _parsed(self.run.stored("loads", key), Load.from_agent)
                if load is None:
                    todo.append((key, source, loader))
                else:
                    found.append((key, source.producer, load))
        # a load this run measured already: another producer's artifact with the same files (its key is
        # the files' digest), measured once; this run's measurement, not one taken from an earlier run
        shared = [load for key, _, load in found if key in self.run.measured]
        reused = len(found) - len(shared)
        with self._lock:
            for key, producer, load in found:
                self._add_load(key, producer, load)
            self._load_reused += reused
            self._load_counts.update(load.status.value for load in shared)
        self.run.tally.add("load-reused", reused)
        self.run.tally.add("load", len(shared))
        return todo, reused

    def _loadable(self, todo: list[tuple[str, Source, str]]) -> list[tuple[str, Source, str]]:
        """The items whose artifact's files are as stored; the others' sources
        are noted in `damaged` (their files and record set aside)."""
        sources = {(s.producer, s.key): s for _, s, _ in todo}
        damaged = [s for s in sources.values() if not self.run.store.verify_files(s.key, s.artifact.to_json())]
        for source in damaged:
            self.run.emit(ev.Note(self.cell.id, "load", f"{source.producer}/{source.artifact.probe}/"
                                  f"{source.artifact.format}: its stored files are damaged; set aside"))
        with self._lock:
            self.damaged += damaged
        bad = {(s.producer, s.key) for s in damaged}
        return [item for item in todo if (item[1].producer, item[1].key) not in bad]

    def settle(self) -> None:
        """After the last load round: a consumer that could not load everything is not ok."""
        if self.damaged and self.result.state.status == "ok":
            names = ", ".join(f"{s.producer}/{s.artifact.probe}/{s.artifact.format}" for s in self.damaged[:3])
            self._finish("error", f"{len(self.damaged)} artifacts not loaded: their stored files are damaged "
                         f"({names}{', ...' if len(self.damaged) > 3 else ''}); run again to export them anew")

    def _add_load(self, key: str, producer: str, load: Load) -> None:
        self.result.loads.append((producer, load))
        self.result.load_keys.append(key)

    def _load(self, todo: list[tuple[str, Source, str]], reused: int) -> None:
        store, paths = self.run.store, self.paths
        with self._lock:
            batch = self._load_batches
            self._load_batches += 1
        items_file = paths.items if not batch else paths.root / f"load-items-{batch}.jsonl"
        journal = paths.loads if not batch else paths.root / f"loads-{batch}.jsonl"
        items, keys = [], {}
        for key, source, loader in todo:
            assert source.artifact.files_digest is not None
            item = {"producer": source.producer, "dir": str(store.files_dir(source.key, source.artifact.files_digest)),
                    "probe": source.artifact.probe, "format": source.artifact.format, "loader": loader}
            items.append(item)
            keys[(source.producer, source.artifact.probe, source.artifact.format, loader)] = key
        write_text(items_file, "".join(json.dumps(i, sort_keys=True) + "\n" for i in items))
        journal.unlink(missing_ok=True)  # an earlier round's journal: its loads are stored
        self.run.emit(ev.PhaseStarted(self.cell.id, "load", len(items), reused))
        start = time.monotonic()
        args = ["load", "--out", str(journal), "--items", str(items_file), *self.run.module_args(),
                *self.run.tolerance_args(), *(["--keras-unsafe"] if self.run.keras_unsafe else [])]
        verb = Verb(journal, "load", ("producer", "probe", "format", "loader"))
        try:
            problem = self._supervise(args, verb, paths.logs / "load.log", (store.exports,), (paths.root,))
        finally:
            measured = self._ingest_loads(verb, keys)
            with self._lock:
                self._load_counts.update(measured)
                self._load_seconds += time.monotonic() - start
        if problem:
            self._finish("error", problem)

    def _ingest_loads(self, verb: Verb, keys: dict[tuple[str, str, str, str], str]) -> Counter[str]:
        measured: Counter[str] = Counter()
        for record in verb.ends():
            try:
                load = Load.from_agent(record)
            except RecordError:
                continue  # interrupted: measured again next run
            key = keys.get((str(record.get("producer")), load.probe, load.format, load.loader))
            if key is None:
                continue
            self.run.store.put("loads", key, _payload(load))
            self.run.measured.add(key)
            with self._lock:
                self._add_load(key, str(record["producer"]), load)
            measured[load.status.value] += 1
        self.run.tally.add("load", sum(measured.values()))
        return measured

    # supervision ------------------------------------------------------------------
    def _supervise(self, args: list[str], verb: Verb, log: Path, readable: tuple[Path, ...],
                   writable: tuple[Path, ...]) -> str | None:
        """Run an agent verb to completion, resuming past crashed items.
        Returns None on success, else why the verb could not finish."""
        phase: ev.Phase = "export" if args[0] == "export" else "load"
        timeout = self.run.matrix.timeout
        for _ in range(MAX_RESUMES):
            with Watcher(verb.journal, lambda r: self._echo(phase, r)):
                try:
                    done = self._agent([*args, "--resume", "--item-timeout", repr(timeout)], log, readable, writable)
                except Interrupted:
                    done = None
            if self.run.stopping.is_set() or commands.stopping() or (done is not None and done.interrupted):
                # neither a crash nor a result: the next run measures these items again
                verb.close_pending(INTERRUPTED, "the run was interrupted")
                raise Interrupted("the run was interrupted")
            if done is not None and done.returncode == 0 and not verb.pending():
                return None
            end = crashes.ending(done.returncode if done else None, done.output if done else "", timeout)
            if verb.close_pending(end.status, end.reason, functools.partial(end.fields, phase)) == 0:
                last = commands.tail(done.output, 1) if done else ""
                return f"agent `{phase}` failed: {end.reason}{': ' + last if last else ''} (log: {log})"
            self.run.emit(ev.Note(self.cell.id, phase, f"{end.reason}; resuming after the item it was on"))
        return f"agent `{phase}` kept dying; gave up after {MAX_RESUMES} resumes (log: {log})"

    def _agent(self, args: list[str], log: Path, readable: tuple[Path, ...],
               writable: tuple[Path, ...]) -> commands.Completed | None:
        """None means the command timed out. The agent ends an item that runs past
        the timeout itself (exit 124), even with this process gone; the whole
        command's limit here is only a backstop."""
        assert self.env is not None
        try:
            return self.env.run_python([str(AGENT), *args], log=log, timeout=self.run.matrix.timeout * 10 + 60,
                                       readable=(AGENT, *self.run.matrix.probe_modules, *readable),
                                       writable=writable)
        except CommandFailed as exc:
            if exc.returncode is None:
                return None
            raise

    def _echo(self, phase: ev.Phase, record: dict[str, Any]) -> None:
        if record.get("kind") in ("artifact", "load"):
            what = "/".join(str(record.get(k)) for k in ("producer", "probe", "format", "loader") if record.get(k))
            self.run.emit(ev.ItemDone(self.cell.id, phase, what, str(record.get("status"))))

    def _finish(self, status: str, reason: str | None, detail: str | None = None) -> None:
        state = self.result.state
        state.status, state.reason, state.detail = status, reason, detail
        self.run.emit(ev.CellFinished(state.id, status, reason))


# A harness error is stored like any record (the run that measured it shows
# it), with the digest of the code that made it: only that same code reuses
# it, so any change to sandbox (the fix) measures it again by itself.
HARNESS_CODE = "harness_code"


def _payload(record: Artifact | Load) -> dict[str, Any]:
    payload = record.to_json()
    if record.status.value == HARNESS_ERROR:
        payload[HARNESS_CODE] = digests.all_code()
    return payload


def _reusable(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored record, unless it is a harness error that other code measured."""
    if payload is not None and payload.get("status") == HARNESS_ERROR and payload.get(HARNESS_CODE) != digests.all_code():
        return None
    return payload


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


def _loads_of(source: Source) -> int:
    """How many loads one artifact makes in each consumer: one per loader of its format."""
    return len(source.artifact.loaders or catalog.loaders_for(source.artifact.format))


def cell_facts(cell: Cell) -> dict[str, Any]:
    """What the plan says of a cell, as the results document shows it."""
    return {
        "id": cell.id,
        "tensorflow": cell.tensorflow or cell.request.tensorflow,
        "python": cell.python_version,
        "image": cell.image, "backend": cell.backend,
        "requirement": " ".join(cell.requirements) or None,  # TF, then any extra packages
        "resolved_as_of": cell.as_of,
        "python_path": str(cell.python.path) if cell.python else None,
        "docker_image": cell.docker_image,
        "runtime": runtime_facts(cell),
        "role": cell.request.role,
    }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def runtime_facts(cell: Cell) -> dict[str, Any]:
    """What the cell runs, for readers picking "loaded with": the runtime, its
    package and version, a Keras cell's backend, whether it is a nightly build."""
    facts: dict[str, Any] = {"name": runtimes.package_of(cell.request.runtime),
                             "package": cell.release.package if cell.release else runtimes.package_of(cell.request.runtime),
                             "version": cell.release.version if cell.release else cell.request.version or cell.request.tensorflow}
    if cell.request.keras_backend:
        facts["backend"] = cell.request.keras_backend
        facts["backend_version"] = cell.companions[0].version if cell.companions else None
    if cell.nightly:
        facts["nightly"] = True
    return facts



def _consume_from(sources: dict[str, list[Source]], cell: CellRun) -> None:
    cell.consume(sources[cell.cell.id])


def _parsed(payload: dict[str, Any] | None, parse: Callable[[dict[str, Any]], Any]) -> Any:
    """A stored record as its type, or None (measured again) when it is absent
    or not of that shape."""
    try:
        return None if payload is None else parse(payload)
    except RecordError:
        return None
