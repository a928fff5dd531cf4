"""Run planned cells over the results store: measure only what it lacks.

Tasks: export(cell) for what the store has not recorded of a producer,
registry(cell), then load(consumer <- artifact, loader) for every pair it has
not recorded. A cell's environment is provisioned only when it has something
to measure, so an unchanged re-run imports no TensorFlow at all. Cells are
independent: one failing, crashing or hanging cell never stops the others.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sandbox import commands, digests, envs, runtimes
from sandbox import events as ev
from sandbox.agent import catalog
from sandbox.envs import Environment, ProvisionFailed, environment
from sandbox.errors import CommandFailed, Interrupted
from sandbox.journal import Verb, Watcher
from sandbox.matrix import Matrix
from sandbox.plan import Cell
from sandbox.records import INTERRUPTED, Artifact, Load, RecordError
from sandbox.store import CellPaths, ResultsStore, StoreError, read_jsonl, write_json, write_text

AGENT = digests.AGENT
MAX_RESUMES = 50
ITEM_TIMED_OUT = 124  # the agent's exit code when its watchdog ended an item

@dataclass
class CellState:
    id: str
    status: str = "planned"  # ok | skipped | install-failed | broken | error
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
        self.code = digests.ProbeCode(matrix.probe_modules)
        self.tally = Tally()
        self.stopping = threading.Event()
        self.cells = [CellRun(self, cell) for cell in cells]
        self.external: list[Source] = []

    def run(self, export: bool = True, external: dict[str, Path] | None = None, loads: bool = True) -> list[CellResult]:
        """Export (with `export`) and record every cell's registry, then (with
        `loads`) load every healthy cell's artifacts, and those of `external`
        producers (name -> a folder with a manifest, e.g. a user's model), in
        every healthy cell."""
        self._scratch()
        self.emit(ev.StageStarted("export", sum(len(c.export_items()) for c in self.cells if not c.cell.skip)
                                  if export else 0))
        self._each(lambda c: c.produce(export), self.cells)
        sources = [s for c in self.cells if c.result.state.status == "ok" for s in c.sources()]
        self.external = [s for name, folder in (external or {}).items() for s in self._external(name, folder)]
        return self._consume(sources + self.external if loads else [])

    def loads_only(self, sources: list[Source], produced: dict[str, CellResult]) -> list[CellResult]:
        """Only the load phase, for cells whose export phase ran elsewhere (a
        shard): `produced` holds what it found (state, facts, registry)."""
        self._scratch()
        for cell in self.cells:
            cell.result = produced[cell.cell.id]
        return self._consume(sources)

    def _scratch(self) -> None:
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)  # scratch of an earlier run: the store has its results

    def _consume(self, sources: list[Source]) -> list[CellResult]:
        consumers = [c for c in self.cells if c.result.state.status == "ok" and c.cell.request.role != "producer"]
        self.emit(ev.StageStarted("load", sum(len(c.loaders(s)) for c in consumers for s in sources)))
        self._each(lambda c: c.consume(sources), consumers)
        for cell in self.cells:
            cell.show()
        return [c.result for c in self.cells]

    def _each(self, work: Callable[[CellRun], None], cells: list[CellRun]) -> None:
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

    def _external(self, name: str, folder: Path) -> list[Source]:
        """A user's model joins the run as a producer: stored by its content."""
        found = []
        for record in read_jsonl(folder / "manifest.jsonl"):
            if record.get("kind") != "artifact":
                continue
            files, manifest = _external_files(folder.resolve(), record)
            payload = Artifact.from_agent(record).to_json()
            key, payload = self.store.put_export(None, payload, manifest, folder, files)
            found.append(Source(name, key, Artifact.from_agent(payload)))
        return found

    # keys -------------------------------------------------------------------------
    def export_key(self, identity: str, probe: str, fmt: str) -> str:
        return digests.of_json(["export", identity, self.code.digest(probe), probe, fmt])

    def load_key(self, identity: str, source: Source, loader: str) -> str:
        tol = self.matrix.tolerance(source.artifact.probe)
        return digests.of_json(["load", identity, source.artifact.files_digest, source.artifact.format, loader,
                                self.code.digest(source.artifact.probe), tol.atol, tol.rtol, self.keras_unsafe])

    def registry_key(self, identity: str) -> str:
        return digests.of_json(["registry", identity, digests.agent_code()])

    def tolerance_args(self) -> list[str]:
        default = self.matrix.tolerance("default")
        args = ["--atol", repr(default.atol), "--rtol", repr(default.rtol)]
        for probe in self.matrix.probes:
            tol = self.matrix.tolerance(probe)
            args += ["--tolerance", f"{probe}={tol.atol!r},{tol.rtol!r}"]
        return args

    def module_args(self) -> list[str]:
        return [arg for module in self.matrix.probe_modules for arg in ("--probe-module", str(module))]


def _external_files(folder: Path, record: dict[str, Any]) -> tuple[dict[str, Path], dict[str, Any]]:
    """The files of a user's model (paths may be absolute), under fixed names."""
    files: dict[str, Path] = {}
    manifest = dict(record)
    for field_name, name in (("path", "model"), ("inputs", "inputs.npz"), ("outputs", "outputs.npz")):
        value = record.get(field_name)
        if not value:
            continue
        src = folder / value
        store_name = f"{name}/{src.name}" if field_name == "path" else name
        files[store_name] = src
        manifest[field_name] = store_name
    return files, manifest


class CellRun:
    """One cell in a run: owns its scratch paths, its environment (provisioned
    only when it has work) and its journals."""

    def __init__(self, run: Run, cell: Cell) -> None:
        self.run, self.cell = run, cell
        self.paths = CellPaths(run.run_dir, cell.id)
        self.result = CellResult(cell_facts(cell), CellState(cell.id))
        self.env: Environment | None = None
        self._provision_failed = False
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
            self._finish("error", f"harness error: {type(exc).__name__}: {exc}", traceback.format_exc())

    def export_items(self) -> list[tuple[str, str]]:
        """(probe, format) of everything this cell exports: the matrix's formats
        its runtime writes; nothing in a consumer-only cell."""
        if self.cell.request.role == "consumer":
            return []
        return [(p, f) for p in self.run.matrix.probes for f in self.run.matrix.formats if self.cell.writes(f)]

    def loaders(self, source: Source) -> list[str]:
        """The loaders this cell loads `source` with: those that read it, that it has."""
        wanted = source.artifact.loaders or catalog.loaders_for(source.artifact.format)
        return [name for name in wanted if name in self.cell.loaders]

    def _stored_exports(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Take what the store has into the result; return what it lacks."""
        missing = []
        self.result.artifacts = []
        for probe, fmt in items:
            key = self.run.export_key(self.result.identity, probe, fmt)
            payload = None if self.run.fresh else self.run.store.get_export(key)
            if payload is None:
                missing.append((probe, fmt))
            else:
                self.result.artifacts.append((key, Artifact.from_agent(payload)))
        self.run.tally.add("export-reused", len(items) - len(missing))
        return missing

    def _provisioned(self) -> bool:
        """Provision once; False (and the cell's status set) when it cannot be."""
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
            files = _export_files(self.paths.artifacts, record) if artifact.exported else {}
            manifest = {**record, "kind": "artifact"} if artifact.exported else None
            _, payload = self.run.store.put_export(key, artifact.to_json(), manifest, self.paths.artifacts, files)
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
        stored = None if self.run.fresh else self.run.store.get("registries", key)
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
                self.run.tally.add("registry")
                self.run.emit(ev.PhaseFinished(self.cell.id, "registry", (("ok", 1),), 0, time.monotonic() - start))
            else:
                self.run.emit(ev.PhaseFinished(self.cell.id, "registry", (("failed", 1),), 0, time.monotonic() - start))
                self.run.emit(ev.Note(self.cell.id, "registry", "failed; static checks against this cell are unavailable"))
        if stored is not None:
            self.result.registry = stored
            self.result.info = {k: v for k, v in dict(stored.get("cell") or {}).items() if k != "kind"}

    def sources(self) -> list[Source]:
        return [Source(self.cell.id, key, a) for key, a in self.result.artifacts if a.exported]

    def show(self) -> None:
        """The run folder shows every artifact and registry of the run, also
        those taken from the store (as links into it), for people to inspect."""
        for key, artifact in self.result.artifacts:
            target = self.run.store.export_dir(key) / "files" / artifact.probe / artifact.format
            link = self.paths.artifacts / artifact.probe / artifact.format
            if artifact.exported and target.exists() and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target, target_is_directory=True)
        if self.result.registry is not None and not self.paths.registry.exists():
            write_json(self.paths.registry, self.result.registry)

    # consume ----------------------------------------------------------------------
    def consume(self, sources: list[Source]) -> None:
        try:
            todo = self._stored_loads(sources)
            if todo and self._provisioned():
                self._load(todo)
            elif self.result.loads and not todo:
                self.run.emit(ev.PhaseFinished(self.cell.id, "load", reused=len(self.result.loads)))
        except Interrupted:
            self._finish("error", "interrupted")
        except StoreError:
            raise
        except Exception as exc:  # keep the other consumers going
            self._finish("error", f"harness error: {type(exc).__name__}: {exc}", traceback.format_exc())

    def _stored_loads(self, sources: list[Source]) -> list[tuple[str, Source, str]]:
        todo = []
        self.result.loads = []
        for source in sources:
            for loader in self.loaders(source):
                key = self.run.load_key(self.result.identity, source, loader)
                payload = None if self.run.fresh else self.run.store.get("loads", key)
                if payload is None:
                    todo.append((key, source, loader))
                else:
                    self.result.loads.append((source.producer, Load.from_agent(payload)))
        self.run.tally.add("load-reused", len(self.result.loads))
        return todo

    def _load(self, todo: list[tuple[str, Source, str]]) -> None:
        store, paths = self.run.store, self.paths
        items, keys = [], {}
        for key, source, loader in todo:
            if not store.verify_files(source.key, source.artifact.to_json()):
                self.run.emit(ev.Note(self.cell.id, "load", f"{source.producer}/{source.artifact.probe}/"
                                      f"{source.artifact.format}: stored files damaged; measured again next run"))
                continue
            item = {"producer": source.producer, "dir": str(store.export_dir(source.key) / "files"),
                    "probe": source.artifact.probe, "format": source.artifact.format, "loader": loader}
            items.append(item)
            keys[(source.producer, source.artifact.probe, source.artifact.format, loader)] = key
        write_text(paths.items, "".join(json.dumps(i, sort_keys=True) + "\n" for i in items))
        reused = len(self.result.loads)
        self.run.emit(ev.PhaseStarted(self.cell.id, "load", len(items), reused))
        start = time.monotonic()
        args = ["load", "--out", str(paths.loads), "--items", str(paths.items), *self.run.module_args(),
                *self.run.tolerance_args(), *(["--keras-unsafe"] if self.run.keras_unsafe else [])]
        verb = Verb(paths.loads, "load", ("producer", "probe", "format", "loader"))
        try:
            problem = self._supervise(args, verb, paths.logs / "load.log", (store.exports,), (paths.root,))
        finally:
            measured = self._ingest_loads(verb, keys)
            self.run.emit(ev.PhaseFinished(self.cell.id, "load", ev.counts(measured), reused,
                                           time.monotonic() - start))
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
            self.run.store.put("loads", key, load.to_json())
            self.result.loads.append((str(record["producer"]), load))
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
            # 124: the agent's own watchdog ended an item that ran past the timeout
            status = "timeout" if done is None or done.returncode == ITEM_TIMED_OUT else "crash"
            reason = (f"no result after {timeout:.0f}s (timeout)" if done is None
                      else f"the agent process died (exit {done.returncode})")
            if verb.close_pending(status, reason) == 0:
                last = commands.tail(done.output, 1) if done else ""
                return f"agent `{phase}` failed: {reason}{': ' + last if last else ''} (log: {log})"
            self.run.emit(ev.Note(self.cell.id, phase, f"{reason}; resuming after the item it was on"))
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



def _export_files(folder: Path, record: dict[str, Any]) -> dict[str, Path]:
    """The files of one exported artifact: the exporter's own folder
    (<probe>/<format>/) and the reference inputs and outputs."""
    probe, fmt = str(record["probe"]), str(record["format"])
    names = [f"{probe}/{fmt}"] + [str(record[k]) for k in ("inputs", "outputs") if record.get(k)]
    return {name: folder / name for name in names if (folder / name).exists()}
