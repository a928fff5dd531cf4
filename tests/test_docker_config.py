"""The container settings, the wheelhouse's platform tags and the no-engine
path, without an engine."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import pytest
from test_runner import FakeEnv, make_cell

from sandbox import cellrun, collect, envs, matrix, plan, runner
from sandbox.envs import EnvInfo, ProvisionFailed, engine
from sandbox.envs.docker import DockerEnvironment
from sandbox.envs.wheelhouse import Target
from sandbox.pythons import Interpreter
from sandbox.store import ResultsStore
from sandbox.versions import Resolved


def docker_cell(image: str, gpu: bool = False, tensorflow: str = "2.15.1") -> plan.Cell:
    kind = "gpu" if gpu else "cpu"
    request = matrix.CellRequest(tensorflow, "3.11", kind, "docker", image)
    release = Resolved("tensorflow-cpu", tensorflow, dt.datetime(2024, 3, 9, tzinfo=dt.timezone.utc))
    return plan.Cell(plan.cell_id(tensorflow, "3.11", kind, "docker"), request, kind, "docker", None, release,
                     ("--exclude-newer", release.exclude_newer), docker_image=image)


def test_probe_runs_are_confined() -> None:
    conf = engine.Confinement(readable=(Path("/agent"), Path("/runs/a/artifacts")), writable=(Path("/runs/b"),))
    opts = engine.options(conf)
    assert opts["network_mode"] == "none"
    assert opts["cap_drop"] == ["ALL"] and opts["security_opt"] == ["no-new-privileges"]
    assert opts["mem_limit"] == engine.MEMORY and opts["pids_limit"] == engine.PIDS
    assert opts["user"] == f"{os.getuid()}:{os.getgid()}"
    assert opts["read_only"] is True and "/tmp" in opts["tmpfs"]
    assert opts["volumes"] == {"/agent": {"bind": "/agent", "mode": "ro"},
                               "/runs/a/artifacts": {"bind": "/runs/a/artifacts", "mode": "ro"},
                               "/runs/b": {"bind": "/runs/b", "mode": "rw"}}
    assert "device_requests" not in opts


def test_gpu_cells_ask_for_all_gpus() -> None:
    [request] = engine.options(engine.Confinement(gpus=True))["device_requests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]


def test_target_platform_tags() -> None:
    bookworm = Target("3.11.2", "x86_64", "2.36")
    assert bookworm.uv_platform() == "x86_64-manylinux_2_36"
    assert bookworm.abi() == "cp311"
    tags = bookworm.pip_platforms()
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags
    assert tags[-3:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    assert Target("3.7.3", "x86_64", "2.28").abi() == "cp37m"
    assert Target("3.6.9", "x86_64", "2.27").uv_platform() == "x86_64-manylinux_2_17"
    assert Target("3.8.10", "aarch64", "2.30").uv_platform() == "aarch64-manylinux_2_28"


def test_a_musl_image_cannot_take_tensorflow_wheels() -> None:
    with pytest.raises(ProvisionFailed) as info:
        Target("3.11.9", "x86_64", "").uv_platform()
    assert info.value.status == "skipped" and "manylinux" in str(info.value)



def test_without_an_engine_docker_cells_are_skipped_and_venv_cells_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    venv_cell = make_cell("1.0", Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH"))
    box = docker_cell("python:3.11-slim")
    monkeypatch.setattr(cellrun, "environment", lambda c: DockerEnvironment(c) if c is box else FakeEnv(c))
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("batchnorm",), ("frozen_graph",), timeout=3)
    found = runner.Run(mx, [venv_cell, box], tmp_path / "run", 2, lambda *a: None, ResultsStore(tmp_path / "store")).run()
    states = {r.state.id: r.state for r in found}
    assert states[venv_cell.id].status == "ok"
    assert states[box.id].status == "skipped"
    assert states[box.id].reason == f"no Docker engine answers at unix://{tmp_path}/no-engine.sock: " \
        + str(states[box.id].reason).split(": ", 1)[1]
    results = collect.collect(mx, found).to_json()
    assert {c["id"]: c["status"] for c in results["cells"]} == {venv_cell.id: "ok", box.id: "skipped"}


def test_ctrl_c_stops_the_backends_containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C reaches subprocesses, not containers: the runner must stop those."""
    class Interrupting(FakeEnv):
        def provision(self, log: Path) -> EnvInfo:
            raise KeyboardInterrupt

    stopped: list[bool] = []
    monkeypatch.setattr(envs, "interrupt", lambda: stopped.append(True))
    monkeypatch.setattr(cellrun, "environment", Interrupting)
    cell = make_cell("1.0", Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH"))
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("batchnorm",), ("frozen_graph",), timeout=3)
    with pytest.raises(KeyboardInterrupt):
        runner.Run(mx, [cell], tmp_path / "run", 1, lambda *a: None, ResultsStore(tmp_path / "store")).run()
    assert stopped == [True]
