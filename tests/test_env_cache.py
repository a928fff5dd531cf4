"""Cached virtualenvs with real uv and real processes (a stand-in `tensorflow`
wheel keeps them small): one process builds an environment while the others
wait and reuse it; a cached one that was damaged is rebuilt once, then
reported `broken`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fake_tf
import pytest
from supervision import wait_for

from sandbox import locks
from sandbox.envs import ProvisionFailed, venv

FAKE_TF = Path(fake_tf.__file__)


def installs(log: Path) -> int:
    """How many times a log says an environment was filled."""
    return sum(1 for line in log.read_text().splitlines() if line.startswith("$ ") and " pip install " in line)


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    fake_tf.wheel(folder, tmp_path / "poison")
    return folder


def test_a_damaged_cached_venv_is_rebuilt_once(tmp_path: Path, cache: Path, wheels: Path) -> None:
    env = venv.VenvEnvironment(fake_tf.cell(wheels))
    assert not env.provision(tmp_path / "first.log").reused
    assert env.provision(tmp_path / "second.log").reused
    [init] = env.path.glob("lib/python*/site-packages/tensorflow/__init__.py")
    init.unlink()  # TF's files damaged after the environment was built
    log = tmp_path / "third.log"
    found = env.provision(log)
    assert not found.reused and found.tensorflow == fake_tf.VERSION
    assert installs(log) == 1 and log.read_text().count("rebuilding it once") == 1
    assert env.provision(tmp_path / "fourth.log").reused


def test_a_venv_still_broken_after_one_rebuild_is_reported_broken(tmp_path: Path, cache: Path, wheels: Path) -> None:
    env = venv.VenvEnvironment(fake_tf.cell(wheels))
    env.provision(tmp_path / "first.log")
    (tmp_path / "poison").touch()  # now every build of it is broken
    log = tmp_path / "second.log"
    with pytest.raises(ProvisionFailed) as failed:
        env.provision(log)
    assert failed.value.status == "broken"
    assert installs(log) == 1  # one rebuild, no more
    (tmp_path / "poison").unlink()
    assert not env.provision(tmp_path / "third.log").reused  # a broken build is never trusted as cached


def test_two_processes_building_one_venv_take_turns(tmp_path: Path, cache: Path, wheels: Path) -> None:
    path = venv.VenvEnvironment(fake_tf.cell(wheels)).path
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with locks.env_lock(path):  # both start while the lock is taken, so they surely overlap
        runs = [subprocess.Popen([sys.executable, str(FAKE_TF), str(wheels), str(log)], stdout=subprocess.PIPE, text=True)
                for log in logs]
        wait_for(lambda: all(log.exists() and "waiting for another sandbox process" in log.read_text() for log in logs),
                 30, "both wait for the lock")
    outputs = [run.communicate(timeout=120)[0].strip() for run in runs]
    assert sorted(outputs) == ["built", "reused"]
    assert sum(installs(log) for log in logs) == 1
