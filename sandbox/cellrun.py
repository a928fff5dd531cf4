"""One cell of a run: its scratch paths, its environment (provisioned only
when it has something to measure), its exports, registry and loads, each
taken from the store where it has them and else measured by the agent, whose
verbs are supervised past crashed items. A cell sees the run only through its
frozen context (sandbox.context); the scheduler (sandbox.runner) decides when
it produces and which producers each load batch takes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
import traceback
from collections import Counter
from dataclasses import replace
from typing import Any, Callable

from sandbox import context
from sandbox import events as ev
from sandbox.context import Context
from sandbox.envs import EnvInfo, Environment, ProvisionFailed, environment, provision
from sandbox.errors import Interrupted, SandboxError
from sandbox.journal import Verb
from sandbox.plan import Cell, cell_facts
from sandbox.records import HARNESS_ERROR, Artifact, CellResult, CellState, Load, RecordError, Source, loaders_of
from sandbox.store import CellPaths, StoreError, export_files, write_json, write_text
from sandbox.supervise import Agent


class CellRun:
    """One cell in a run: owns its scratch paths, its environment (provisioned
    only when it has work) and its journals."""

    def __init__(self, ctx: Context, cell: Cell) -> None:
        self.ctx, self.cell = ctx, cell
        self.paths = CellPaths(ctx.run_dir, cell.id)
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
            self.result.identity = ctx.keys.identity(self.environment)

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
                self.ctx.emit(ev.PhaseFinished(self.cell.id, "export", reused=len(items)))
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
        return [(p, f) for p in self.ctx.matrix.probes for f in self.ctx.matrix.formats if self.cell.writes(f)]

    def loaders(self, source: Source) -> list[str]:
        """The loaders this cell loads `source` with: those that read it, that it has."""
        return [name for name in loaders_of(source.artifact) if name in self.cell.loaders]

    def _stored_exports(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Take what the store has into the result; return what it lacks."""
        missing = []
        self.result.artifacts = []
        for probe, fmt in items:
            key = self.ctx.keys.export(self.result.identity, probe, fmt)
            artifact = _parsed(self.ctx.records.stored("exports", key), Artifact.from_agent)
            if artifact is None:
                missing.append((probe, fmt))
            else:
                self.result.artifacts.append((key, artifact))
        # counted once the run is over: a cell exported again (damaged files) looks its exports up twice
        self.exports_reused = sum(not self.ctx.records.measured(key) for key, _ in self.result.artifacts)
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
        try:
            info = provision(self.environment, self.paths.logs / "provision.log", self.ctx.emit)
        except ProvisionFailed as exc:
            self._provision_failed = True
            if exc.info is not None:
                self._record_env(exc.info)
            self._finish(exc.status, str(exc), exc.detail)
            return False
        self._record_env(info)
        self.env = self.environment
        return True

    def _record_env(self, info: EnvInfo) -> None:
        # stored with the cell's registry: facts of the environment that measured
        self.result.state.env = {"location": info.location, "gpus": info.gpus}

    def _export(self, items: list[tuple[str, str]], reused: int) -> None:
        paths = self.paths
        shutil.rmtree(paths.artifacts, ignore_errors=True)  # an earlier round's files: in the store now
        paths.artifacts.mkdir(parents=True, exist_ok=True)
        probes = sorted({p for p, _ in items}, key=self.ctx.matrix.probes.index)
        formats = sorted({f for _, f in items}, key=self.ctx.matrix.formats.index)
        args = ["export", "--out", str(paths.artifacts), "--probes", ",".join(probes), "--formats", ",".join(formats),
                "--only", ",".join(f"{p}/{f}" for p, f in items), *self.ctx.module_args()]
        verb = Verb(paths.manifest, "artifact", ("probe", "format"))
        self.ctx.emit(ev.PhaseStarted(self.cell.id, "export", len(items), reused))
        start = time.monotonic()
        try:
            problem = self._agent.supervise(args, verb, paths.logs / "export.log", (), (paths.artifacts,))
        finally:
            measured = self._ingest_exports(verb)
            self.ctx.emit(ev.PhaseFinished(self.cell.id, "export", ev.counts(measured), reused,
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
            key = self.ctx.keys.export(self.result.identity, artifact.probe, artifact.format)
            files = export_files(self.paths.artifacts, record) if artifact.exported else {}
            manifest = {**record, "kind": "artifact"} if artifact.exported else None
            payload = self.ctx.records.put_export(key, context.payload(artifact), manifest, files)
            self.result.artifacts.append((key, Artifact.from_agent(payload)))
            self.ctx.tally.add("export")
            measured[artifact.status.value] += 1
        order = {(p, f): i for i, (p, f) in enumerate((p, f) for p in self.ctx.matrix.probes
                                                      for f in self.ctx.matrix.formats)}
        self.result.artifacts.sort(key=lambda ka: order.get((ka[1].probe, ka[1].format), len(order)))
        return measured

    def _registry(self) -> None:
        """The cell's op registry (for the static check) and its facts."""
        key = self.ctx.keys.registry(self.result.identity)
        stored = self.ctx.records.stored("registries", key)
        if stored is None and self._provisioned():
            self.ctx.emit(ev.PhaseStarted(self.cell.id, "registry", 1))
            self.paths.root.mkdir(parents=True, exist_ok=True)  # a cell that exports nothing has no folder yet
            start = time.monotonic()
            done = self._agent.run(["registry", "--out", str(self.paths.registry)], self.paths.logs / "registry.log",
                                   (), (self.paths.root,))
            if done is not None and done.returncode == 0 and self.paths.registry.exists():
                stored = json.loads(self.paths.registry.read_text())
                stored["cell"] = {**dict(stored.get("cell") or {}), **self.result.state.env, "measured": _now()}
                self.ctx.records.put("registries", key, stored)
                self.ctx.tally.add("registry")
                self.ctx.emit(ev.PhaseFinished(self.cell.id, "registry", (("ok", 1),), 0, time.monotonic() - start))
            else:
                self.ctx.emit(ev.PhaseFinished(self.cell.id, "registry", (("failed", 1),), 0, time.monotonic() - start))
                self.ctx.emit(ev.Note(self.cell.id, "registry", "failed; static checks against this cell are unavailable"))
        if stored is not None:
            self.result.registry, self.result.registry_key = stored, key
            self.result.info = {k: v for k, v in dict(stored.get("cell") or {}).items() if k != "kind"}

    def sources(self) -> list[Source]:
        return [Source(self.cell.id, key, a) for key, a in self.result.artifacts if a.exported]

    def consumes(self) -> bool:
        """Whether this cell loads: it is healthy and not a producer only."""
        return self.result.state.status == "ok" and self.cell.request.role != "producer"

    def produced_elsewhere(self, found: CellResult) -> None:
        """Its export ran elsewhere (a shard): take what that found (state,
        facts, registry, artifacts); this run measures its loads."""
        if self.result.identity and found.identity and found.identity != self.result.identity:
            raise SandboxError(f"{self.cell.id}: this machine's environment is not the one its export bundle "
                               "was made in (another recipe: other packages, Python or sandbox); export and "
                               "load with the same sandbox and matrix")
        self.result = replace(found, loads=[], load_keys=[])

    def conclude(self, sources: list[Source]) -> CellResult:
        """The run is over: show its files in the run folder; its result, marked
        complete when a re-run would find everything of it in the store
        (`sources`: what it loads; a reference cell, none of the other references')."""
        self.show()
        self.result.complete = self.complete(sources)
        return self.result

    def complete(self, sources: list[Source]) -> bool:
        """Whether a re-run of this cell would find everything in the store."""
        if self.cell.skip:
            return True
        result, matrix = self.result, self.ctx.matrix
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
            target = self.ctx.store.artifact_dir(key, artifact.files_digest, artifact.probe, artifact.format)
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
            self.ctx.emit(ev.PhaseFinished(self.cell.id, "load", ev.counts(self._load_counts), self._load_reused,
                                           self._load_seconds))
        elif self.result.loads:
            self.ctx.emit(ev.PhaseFinished(self.cell.id, "load", reused=len(self.result.loads)))

    def _stored_loads(self, sources: list[Source]) -> tuple[list[tuple[str, Source, str]], int]:
        """Take what the store has into the result; return what it lacks, and
        how many it had."""
        todo, found = [], []
        for source in sources:
            for loader in self.loaders(source):
                key = self.ctx.keys.load(self.result.identity, source, loader)
                load = _parsed(self.ctx.records.stored("loads", key), Load.from_agent)
                if load is None:
                    todo.append((key, source, loader))
                else:
                    found.append((key, source.producer, load))
        # a load this run measured already: another producer's artifact with the same files (its key is
        # the files' digest), measured once; this run's measurement, not one taken from an earlier run
        shared = [load for key, _, load in found if self.ctx.records.measured(key)]
        reused = len(found) - len(shared)
        with self._lock:
            for key, producer, load in found:
                self._add_load(key, producer, load)
            self._load_reused += reused
            self._load_counts.update(load.status.value for load in shared)
        self.ctx.tally.add("load-reused", reused)
        self.ctx.tally.add("load", len(shared))
        return todo, reused

    def _loadable(self, todo: list[tuple[str, Source, str]]) -> list[tuple[str, Source, str]]:
        """The items whose artifact's files are as stored; the others' sources
        are noted in `damaged` (their files and record set aside)."""
        sources = {(s.producer, s.key): s for _, s, _ in todo}
        damaged = [s for s in sources.values() if not self.ctx.store.verify_files(s.key, s.artifact.to_json())]
        for source in damaged:
            self.ctx.emit(ev.Note(self.cell.id, "load", f"{source.producer}/{source.artifact.probe}/"
                                  f"{source.artifact.format}: its stored files are damaged; set aside"))
        with self._lock:
            self.damaged += damaged
        bad = {(s.producer, s.key) for s in damaged}
        return [item for item in todo if (item[1].producer, item[1].key) not in bad]

    def forget_damaged(self) -> None:
        """Its damaged sources are exported again: the next batch loads the new files."""
        with self._lock:
            self.damaged = []

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
        store, paths = self.ctx.store, self.paths
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
        self.ctx.emit(ev.PhaseStarted(self.cell.id, "load", len(items), reused))
        start = time.monotonic()
        args = ["load", "--out", str(journal), "--items", str(items_file), *self.ctx.load_args()]
        verb = Verb(journal, "load", ("producer", "probe", "format", "loader"))
        try:
            problem = self._agent.supervise(args, verb, paths.logs / "load.log", (store.exports,), (paths.root,))
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
            self.ctx.records.put("loads", key, context.payload(load))
            with self._lock:
                self._add_load(key, str(record["producer"]), load)
            measured[load.status.value] += 1
        self.ctx.tally.add("load", sum(measured.values()))
        return measured

    @property
    def _agent(self) -> Agent:
        """The agent in this cell's environment (provisioned by now)."""
        assert self.env is not None
        return Agent(self.ctx, self.cell.id, self.env)

    def _finish(self, status: str, reason: str | None, detail: str | None = None) -> None:
        state = self.result.state
        state.status, state.reason, state.detail = status, reason, detail
        self.ctx.emit(ev.CellFinished(state.id, status, reason))



def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parsed(payload: dict[str, Any] | None, parse: Callable[[dict[str, Any]], Any]) -> Any:
    """A stored record as its type, or None (measured again) when it is absent
    or not of that shape."""
    try:
        return None if payload is None else parse(payload)
    except RecordError:
        return None
