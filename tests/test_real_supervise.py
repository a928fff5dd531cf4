"""The real agent in a real TF cell (one cell, one probe, one format): SIGTERM
to `sandbox run` stops it promptly; its watchdog ends a hung item (exit 124,
nothing written for the item) and notices a host killed with kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_cli import ROOT
from supervision import AGENT, agents_of, parent_of, processes, wait_for

from sandbox import commands
from sandbox.store import cache_dir

pytestmark = pytest.mark.real

CELL = "tf2.15.1-py3.11-cpu"
MATRIX = """
name = "supervise"
tensorflow = "2.15"
python = "3.11"
probes = ["dense"]
formats = ["frozen_graph"]
"""
# A user probe whose preparation hangs: the item it is in never ends by itself.
SLEEPY = """
import time
from probes import Probe


class Sleepy(Probe):
    name = "sleepy"
    input_shape = (1, 2)

    def init_params(self, rng):
        time.sleep(600)


PROBES = [Sleepy()]
"""


def cell_python() -> Path:
    """The Python of the cached environment of CELL (built by the run in the test)."""
    found = sorted(cache_dir().glob(f"envs/{CELL}-*/.sandbox-env.json"), key=lambda p: p.stat().st_mtime)
    assert found, f"no cached environment of {CELL} under {cache_dir()}"
    return found[-1].parent / "bin" / "python"


def export_sleepy(python: Path, folder: Path, *extra: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    module = folder / "sleepy.py"
    module.write_text(SLEEPY)
    return [str(python), "-E", "-s", "-B", str(AGENT), "export", "--out", str(folder / "artifacts"), "--probes", "sleepy",
            "--formats", "frozen_graph", "--probe-module", str(module), *extra]


def kinds(folder: Path) -> list[str]:
    manifest = folder / "artifacts" / "manifest.jsonl"
    if not manifest.exists():
        return []
    return [json.loads(line)["kind"] for line in manifest.read_text().splitlines() if line.strip()]


def test_signals_and_the_watchdog_with_the_real_agent(tmp_path: Path) -> None:
    # 1. SIGTERM to `sandbox run` while its real agent works: it stops, exits 143
    (tmp_path / "matrix.toml").write_text(MATRIX)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.Popen([sys.executable, "-m", "sandbox", "run", "matrix.toml"], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: agents_of(tmp_path) or run.poll() is not None, 1500, "the real agent runs (provision may build)")
        assert run.poll() is None, run.communicate()
        start = time.monotonic()
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
        assert run.returncode == 143, err
        assert time.monotonic() - start < 15
        assert not agents_of(tmp_path)
    finally:
        run.kill()
        run.communicate()
    python = cell_python()

    # 2. a hung item: the agent's watchdog ends it, exit 124, its start record and nothing after
    hung = tmp_path / "hung"
    start = time.monotonic()
    done = commands.run(export_sleepy(python, hung, "--item-timeout", "5"), timeout=300, check=False)
    assert done.returncode == 124, done.output
    assert "export sleepy/frozen_graph: no result after 5s (item timeout)" in done.output
    assert time.monotonic() - start < 120
    assert kinds(hung) == ["cell", "start"]

    # 3. its host killed with kill -9 (a host that sets no parent-death signal): the agent exits by itself
    orphan = tmp_path / "orphan"
    command = export_sleepy(python, orphan)
    host = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(600)",
                             *command], start_new_session=True)
    try:
        wait_for(lambda: kinds(orphan) == ["cell", "start"], 120, "the agent is inside the hung item")
        [agent] = [p for p in processes(str(AGENT), str(orphan)) if parent_of(p) == host.pid]
        host.kill()
        host.wait()
        took = wait_for(lambda: not processes(str(AGENT), str(orphan)), 10, "the orphaned real agent exits")
        assert took < 3, took
        assert agent not in processes(str(AGENT))
    finally:
        host.kill()
        host.wait()
