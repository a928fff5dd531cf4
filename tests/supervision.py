"""Helpers for the tests of runs that cannot lose data: find processes by
their command line, wait for conditions, start a sandbox that runs the fake
agent as a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parent
FAKE_SANDBOX = TESTS / "fake_sandbox.py"
FAKE_AGENT = TESTS / "fake_agent.py"
AGENT = TESTS.parent / "sandbox" / "agent"

FAKE_MATRIX = """
name = "t"
tensorflow = ["1.0", "2.0"]
python = "3.11"
probes = ["batchnorm", "batch_matmul"]
formats = ["frozen_graph"]
timeout = 60
"""


def processes(*needles: str) -> dict[int, str]:
    """pid -> command line of the live processes whose command line holds every needle."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if line and all(n in line for n in needles):
            found[int(entry.parent.name)] = line
    return found


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> float:
    """Poll `condition` until true; fail the test after `seconds`. Returns the time it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds}s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def start_fake_sandbox(folder: Path, *args: str, hang: float) -> subprocess.Popen[str]:
    """`sandbox run matrix.toml ARGS` in `folder` with fake cells whose every
    agent item takes `hang` seconds; in a session of its own, as a terminal
    would start it (so a group-wide SIGINT is a terminal's Ctrl-C)."""
    if not (folder / "matrix.toml").exists():
        (folder / "matrix.toml").write_text(FAKE_MATRIX)
    # a store of its own: nothing measured by another test is reused
    env = {**os.environ, "FAKE_AGENT_HANG": str(hang), "SANDBOX_STORE_DIR": str(folder / "store")}
    return subprocess.Popen([sys.executable, str(FAKE_SANDBOX), "run", "matrix.toml", *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def agents_of(folder: Path) -> dict[int, str]:
    """The fake or real agent processes working on files under `folder`."""
    return {pid: line for pid, line in processes(str(folder)).items() if str(FAKE_AGENT) in line or str(AGENT) in line}
