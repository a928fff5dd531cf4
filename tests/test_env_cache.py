"""Cached virtualenvs with real uv and real processes (a stand-in `tensorflow`
wheel keeps them small): one process builds an environment while the others
wait and reuse it; a cached one that was damaged is rebuilt once, then
reported `broken`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import fake_tf
import pytest
from supervision import wait_for

from sandbox import locks
from sandbox.envs import ProvisionFailed, venv
from sandbox.errors import Interrupted

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


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_health_check_killed_from_outside_keeps_the_cached_venv(
        tmp_path: Path, cache: Path, wheels: Path, signum: int) -> None:
    """The OOM killer or a user's kill stopping `import tensorflow` says nothing
    about the environment: it is not rebuilt (that deleted good environments)."""
    env = venv.VenvEnvironment(fake_tf.cell(wheels))
    env.provision(tmp_path / "first.log")
    built = (env.path / "pyvenv.cfg").stat().st_mtime_ns
    poison = tmp_path / "poison"
    fake_tf.slow(poison).touch()
    failed: list[BaseException] = []

    def check() -> None:
        try:
            env.provision(tmp_path / "second.log")
        except BaseException as exc:  # noqa: BLE001 - the test looks at what was raised
            failed.append(exc)
    thread = threading.Thread(target=check)
    thread.start()
    wait_for(lambda: fake_tf.started(poison).exists() and fake_tf.started(poison).read_text(), 60,
             "the health check imports the wheel")
    os.kill(int(fake_tf.started(poison).read_text()), signum)
    thread.join(120)
    assert [type(e) for e in failed] == [Interrupted]
    fake_tf.slow(poison).unlink()
    log = tmp_path / "third.log"
    assert env.provision(log).reused and installs(log) == 0
    assert (env.path / "pyvenv.cfg").stat().st_mtime_ns == built


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
