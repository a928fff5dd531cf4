"""The runner's supervision, with a fake environment and a misbehaving fake
agent (the real-TF path is tested in test_real_matrix.py)."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import pytest
from results_schema import assert_valid

from sandbox import cellrun, collect, commands, events, matrix, plan, runner
from sandbox.envs import EnvInfo, ProvisionFailed
from sandbox.pythons import Interpreter
from sandbox.store import ResultsStore
from sandbox.versions import Resolved

FAKE_AGENT = Path(__file__).parent / "fake_agent.py"
PROVISIONED: list[str] = []


class FakeEnv:
    """Implements sandbox.envs.Environment; runs the fake agent on this Python."""

    def __init__(self, cell: plan.Cell, broken: bool = False) -> None:
        self.cell, self.broken = cell, broken

    def identity(self) -> dict[str, object]:
        return {"fake": self.cell.id}

    def provision(self, log: Path) -> EnvInfo:
        PROVISIONED.append(self.cell.id)
        if self.broken:
            raise ProvisionFailed("install-failed", "installing tensorflow==0 failed", "No solution found")
        return EnvInfo("/nowhere", False, 0.0, "fake", 0)

    def run_python(self, args: list[str], *, log: Path, timeout: float,
                   readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> commands.Completed:
        return commands.run([sys.executable, str(FAKE_AGENT), *args[1:]], log=log, timeout=timeout, check=False)


def make_cell(name: str, python: Interpreter) -> plan.Cell:
    request = matrix.CellRequest(name, "3.11", "cpu", "venv")
    release = Resolved("tensorflow", name, __import__("datetime").datetime(2020, 1, 1))
    return plan.Cell(f"tf{name}-py3.11-cpu", request, "cpu", "venv", python, release)


def test_crash_and_hang_are_recorded_and_the_rest_still_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    good, bad = make_cell("1.0", me), make_cell("2.0", me)
    skipped = plan.Cell("tf9.9-py3.11-cpu", good.request, "cpu", "venv", skip="no TensorFlow release matches '9.9'")
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell, broken=cell is bad))
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("batchnorm", "batch_matmul"), ("frozen_graph", "saved_model"), timeout=5)
    lines: list[events.Event] = []
    store = ResultsStore(tmp_path / "store")
    found = runner.Run(mx, [good, bad, skipped], tmp_path / "run", 2, lines.append, store).run()
    states = {r.state.id: r.state for r in found}

    assert {k: s.status for k, s in states.items()} == {
        good.id: "ok", bad.id: "install-failed", skipped.id: "skipped"}
    assert states[bad.id].detail == "No solution found"
    results = collect.collect(mx, found).to_json()  # as results.json holds it
    assert_valid(results)
    artifacts = {(a["probe"], a["format"]): a["status"] for a in results["artifacts"]}
    assert artifacts == {("batchnorm", "frozen_graph"): "exported", ("batchnorm", "saved_model"): "crash",
                         ("batch_matmul", "frozen_graph"): "exported"}
    loads = {(l["probe"], l["format"], l["loader"]): (l["status"], l["category"]) for l in results["loads"]}
    assert loads[("batch_matmul", "frozen_graph", "import_graph_def")] == ("timeout", "timeout")
    assert loads[("batchnorm", "frozen_graph", "import_graph_def")] == ("ok", None)
    assert any(isinstance(e, events.Note) and "resuming" in e.message for e in lines)


class SlowExport(FakeEnv):
    """The fake agent in zoo mode; one cell's exports take `seconds` each."""

    slow: str = ""
    seconds = 0.0

    def run_python(self, args: list[str], *, log: Path, timeout: float,
                   readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> commands.Completed:
        hang = self.seconds if self.cell.id == self.slow and args[1] == "export" else 0.0
        env = {**os.environ, "FAKE_AGENT_ZOO": "1", "FAKE_AGENT_HANG": str(hang)}
        return commands.run([sys.executable, str(FAKE_AGENT), *args[1:]], log=log, timeout=timeout, check=False, env=env)


def test_loads_start_while_the_slowest_cell_still_exports(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    cells = [make_cell(v, me) for v in ("1.0", "1.1", "2.0")]
    SlowExport.slow, SlowExport.seconds = cells[-1].id, 1.5
    monkeypatch.setattr(cellrun, "environment", SlowExport)
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("batchnorm", "dense"), ("frozen_graph",), timeout=60)
    seen: list[tuple[float, events.Event]] = []
    found = runner.Run(mx, cells, tmp_path / "run", 2, lambda e: seen.append((time.monotonic(), e)),
                       ResultsStore(tmp_path / "store")).run()
    slow_done = next(t for t, e in seen if isinstance(e, events.PhaseFinished) and e.cell == cells[-1].id
                     and e.phase == "export")
    early = [e.cell for t, e in seen if isinstance(e, events.PhaseStarted) and e.phase == "load" and t < slow_done]
    assert early and cells[-1].id not in early  # a free worker loaded what was ready instead of waiting
    # and nothing was lost to the batches: every consumer loaded every producer's artifacts, once
    pairs = [(r.state.id, producer, l.probe) for r in found for producer, l in r.loads]
    assert sorted(pairs) == sorted((c.id, p.id, probe) for c in cells for p in cells for probe in mx.probes)
    assert all(r.complete for r in found)
    load_lines = [e.cell for _, e in seen if isinstance(e, events.PhaseFinished) and e.phase == "load"]
    assert sorted(load_lines) == sorted(c.id for c in cells)  # one line per cell, whatever its batches


def test_jobs_default_to_the_cores_unless_memory_holds_fewer_agents(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import builtins
    real_open = builtins.open
    meminfo = tmp_path / "meminfo"

    def fake_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        return real_open(meminfo if str(path) == "/proc/meminfo" else path, *args, **kwargs)

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(builtins, "open", fake_open)
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:    5242880 kB\n")  # 5 GiB: two agents
    assert runner.default_jobs() == 2
    meminfo.write_text("MemAvailable:   64000000 kB\n")
    assert runner.default_jobs() == 8
    meminfo.write_text("MemAvailable:    1000 kB\n")
    assert runner.default_jobs() == 1
    meminfo.write_text("nothing useful\n")
    assert runner.default_jobs() == 8


def test_runtime_cells_export_what_they_write_and_load_with_their_own_loaders(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A producer-only TF cell loads nothing; a LiteRT cell writes nothing and
    loads only TFLite files, with its own interpreter; a Keras cell writes only
    Keras files and reads them with Keras 3."""
    monkeypatch.setenv("FAKE_AGENT_ZOO", "1")
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    day = __import__("datetime").datetime(2024, 1, 1)
    tf = plan.Cell("tf2.15.1-py3.11-cpu", matrix.CellRequest("2.15", "3.11", "cpu", "venv", role="producer"),
                   "cpu", "venv", me, Resolved("tensorflow-cpu", "2.15.1", day))
    litert = plan.Cell("litert1.2.0-py3.11-cpu", matrix.CellRequest("", "3.11", "cpu", "venv", runtime="ai_edge_litert",
                       version="1.2"), "cpu", "venv", me, Resolved("ai-edge-litert", "1.2.0", day))
    keras = plan.Cell("keras3.5.0-jax0.4.31-py3.11-cpu", matrix.CellRequest(
        "", "3.11", "cpu", "venv", runtime="keras", version="3.5", keras_backend="jax"), "cpu", "venv", me,
        Resolved("keras", "3.5.0", day), companions=(Resolved("jaxlib", "0.4.31", day),))
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell))
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("dense",), ("tflite", "keras_v3", "saved_model"), timeout=30)
    found = runner.Run(mx, [tf, litert, keras], tmp_path / "run", 2, lambda e: None, ResultsStore(tmp_path / "s")).run()
    results = collect.collect(mx, found).to_json()  # as results.json holds it
    assert_valid(results)
    assert sorted((a["producer"], a["format"]) for a in results["artifacts"]) == [
        ("keras3.5.0-jax0.4.31-py3.11-cpu", "keras_v3"),
        (tf.id, "keras_v3"), (tf.id, "saved_model"), (tf.id, "tflite")]
    assert sorted((l["producer"], l["consumer"], l["format"], l["loader"]) for l in results["loads"]) == [
        (keras.id, keras.id, "keras_v3", "keras3"), (tf.id, keras.id, "keras_v3", "keras3"),
        (tf.id, litert.id, "tflite", "ai_edge_litert")]
    cells = {c["id"]: c for c in results["cells"]}
    assert cells[tf.id]["role"] == "producer" and cells[tf.id]["runtime"]["package"] == "tensorflow-cpu"
    assert cells[keras.id]["runtime"] == {"name": "keras", "package": "keras", "version": "3.5.0", "backend": "jax",
                                          "backend_version": "0.4.31"}
    assert cells[litert.id]["environment"]["measured"][:2] == "20"  # when its registry was recorded


def test_a_gpu_cell_where_tensorflow_sees_no_gpu_is_skipped_with_what_was_built(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """envs.provision, the one front door: its events, then the refusal (never silently run on CPU)."""
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    cpu = make_cell("1.0", me)
    gpu = plan.Cell("tf1.0-py3.11-gpu", matrix.CellRequest("1.0", "3.11", "gpu", "venv"), "gpu", "venv", me, cpu.release)
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell))
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("dense",), ("frozen_graph",), timeout=30)
    seen: list[events.Event] = []
    run = runner.Run(mx, [gpu], tmp_path / "run", 1, seen.append, ResultsStore(tmp_path / "store"))
    [found] = run.run()
    assert (found.state.status, found.state.reason) == ("skipped", "no GPU visible to TensorFlow in this cell")
    assert found.state.env == {"location": "/nowhere", "gpus": 0}  # what the environment that refused was
    provisioning = [type(e).__name__ for e in seen if getattr(e, "cell", None) == gpu.id][:2]
    assert provisioning == ["PhaseStarted", "Provisioned"]
    assert not any(isinstance(v, runner.Run) for v in vars(run.cells[0]).values())  # a cell sees its context only
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.context.run_dir = tmp_path  # type: ignore[misc]
