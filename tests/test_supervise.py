"""Runs that cannot lose data, with real processes and real signals: children
in their own sessions die with sandbox (even by kill -9), stop on Ctrl-C and
SIGTERM, time out as whole process groups; the agent's watchdog holds an
item's time limit without its host; two runs of one matrix take turns. The
fake agent stands in for TensorFlow (tests/test_real_supervise.py has the
real one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from supervision import FAKE_AGENT, FAKE_MATRIX, agents_of, parent_of, processes, start_fake_sandbox, wait_for

from sandbox import commands
from sandbox.errors import CommandFailed, Interrupted

SLEEPER = "import sys, time; print('started', flush=True); time.sleep(float(sys.argv[1]))"


@pytest.fixture(autouse=True)
def commands_allowed():  # type: ignore[no-untyped-def]
    """stop_all refuses new commands until reset: give every test a fresh start."""
    commands.reset()
    yield
    commands.reset()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


# -- commands.run --------------------------------------------------------------
def test_a_child_runs_in_a_session_and_process_group_of_its_own() -> None:
    done = commands.run([sys.executable, "-c", "import os; print(os.getpid(), os.getsid(0), os.getpgid(0))"])
    pid, sid, pgid = done.output.split()
    assert pid == sid == pgid
    assert int(sid) != os.getsid(0)


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild"
    script = ("import subprocess, sys, time\n"
              f"p = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}, '60', {str(marker)!r}])\n"
              "print(p.pid, flush=True)\n"
              "time.sleep(60)\n")
    start = time.monotonic()
    with pytest.raises(CommandFailed) as failed:
        commands.run([sys.executable, "-c", script], timeout=2)
    assert failed.value.returncode is None and not failed.value.interrupted
    assert time.monotonic() - start < 15
    wait_for(lambda: not processes(str(marker)), 5, "the grandchild is killed with its group")


def test_a_child_dies_with_its_parent_even_by_kill_9(tmp_path: Path) -> None:
    marker = str(tmp_path / "orphan")
    host = subprocess.Popen([sys.executable, "-c", "import sys\nfrom sandbox import commands\n"
                             "commands.run([sys.executable, '-c', sys.argv[1], '60', sys.argv[2]])", SLEEPER, marker],
                            start_new_session=True)
    try:
        def child() -> list[int]:
            return [p for p in processes(marker) if parent_of(p) == host.pid]
        wait_for(child, 10, "the child runs")
        [pid] = child()
        host.kill()
        wait_for(lambda: not alive(pid), 1, "the child dies with its parent")
    finally:
        host.kill()
        host.wait()


def test_stop_all_interrupts_running_commands_and_starts_no_more() -> None:
    results: list[commands.Completed] = []
    worker = threading.Thread(target=lambda: results.append(
        commands.run([sys.executable, "-c", SLEEPER, "60"], check=False)))
    worker.start()
    wait_for(commands.live, 10, "the command is running")
    start = time.monotonic()
    assert commands.stop_all() == 1
    worker.join(10)
    assert time.monotonic() - start < 5
    [done] = results
    assert done.interrupted and done.returncode == -signal.SIGTERM
    with pytest.raises(Interrupted):
        commands.run([sys.executable, "-c", "pass"])
    assert commands.stopping()


def test_stop_all_kills_what_ignores_sigterm_and_raises_when_checked() -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    errors: list[CommandFailed] = []

    def work() -> None:
        try:
            commands.run([sys.executable, "-c", script])
        except CommandFailed as exc:
            errors.append(exc)
    worker = threading.Thread(target=work)
    worker.start()
    wait_for(commands.live, 10, "the command is running")
    time.sleep(0.5)  # let it install its SIGTERM handler
    start = time.monotonic()
    commands.stop_all(grace=1.0)
    worker.join(10)
    assert 0.9 < time.monotonic() - start < 5
    [error] = errors
    assert error.interrupted and error.returncode == -signal.SIGKILL
    assert "was interrupted" in str(error)


# -- the agent's watchdog --------------------------------------------------------
def fake_load(out: Path, *extra: str) -> list[str]:
    items = out.parent / "items.jsonl"
    items.write_text("".join(json.dumps({"producer": "p", "dir": str(out.parent), "probe": probe, "format": "frozen_graph",
                                         "loader": "fake_loader"}) + "\n" for probe in ("batchnorm", "batch_matmul")))
    return [sys.executable, str(FAKE_AGENT), "load", "--out", str(out), "--items", str(items), *extra]


def journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_watchdog_ends_a_hung_item_with_exit_124_and_writes_nothing_for_it(tmp_path: Path) -> None:
    out = tmp_path / "loads.jsonl"
    start = time.monotonic()
    done = commands.run(fake_load(out, "--hang", "60", "--item-timeout", "1"), timeout=30, check=False)
    assert done.returncode == 124, done.output
    assert time.monotonic() - start < 5
    assert "item timeout" in done.output
    assert [r["kind"] for r in journal(out)] == ["start"]  # the host records it as timeout and resumes after it


def test_an_agent_whose_host_is_killed_exits_by_itself(tmp_path: Path) -> None:
    # a host that sets no parent-death signal: only the agent's own watchdog can notice
    out = tmp_path / "loads.jsonl"
    host = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(60)",
                             *fake_load(out, "--hang", "60")], start_new_session=True)
    try:
        wait_for(lambda: out.exists(), 10, "the agent started its first item")
        [agent] = [p for p in processes(str(FAKE_AGENT), str(out)) if parent_of(p) == host.pid]
        host.kill()
        host.wait()
        took = wait_for(lambda: not alive(agent), 5, "the orphaned agent exits")
        assert took < 2.5
    finally:
        host.kill()
        host.wait()


def test_the_item_timeout_holds_for_an_agent_started_without_a_parent_to_watch(tmp_path: Path) -> None:
    # as in a container (the agent there is PID 1's child): it starts orphaned,
    # so only the item timeout can end a hung item
    out, err = tmp_path / "loads.jsonl", tmp_path / "agent.err"
    command = " ".join(f"'{w}'" for w in fake_load(out, "--hang", "60", "--item-timeout", "2"))
    subprocess.run(["sh", "-c", f"(sleep 0.5; exec {command}) 2>{err} &"], check=True, start_new_session=True)
    wait_for(lambda: out.exists(), 10, "the orphaned agent started its first item")
    [agent] = processes(str(FAKE_AGENT), str(out))
    took = wait_for(lambda: not alive(agent), 8, "the agent ends its hung item by itself")
    assert took > 1
    assert "item timeout" in err.read_text()
    assert [r["kind"] for r in journal(out)] == ["start"]


# -- a whole sandbox process -------------------------------------------------------
def test_kill_9_of_sandbox_leaves_no_agent_behind(tmp_path: Path) -> None:
    run = start_fake_sandbox(tmp_path, "-j", "2", hang=60)
    try:
        wait_for(lambda: len(agents_of(tmp_path)) == 2, 20, "both cells' agents run")
        run.kill()
        run.wait()
        wait_for(lambda: not agents_of(tmp_path), 3, "no agent survives sandbox")
    finally:
        run.kill()
        run.communicate()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_stop_the_agents_and_exit_with_128_plus_the_signal(
        tmp_path: Path, signum: int, code: int) -> None:
    run = start_fake_sandbox(tmp_path, "-j", "2", hang=60)
    try:
        wait_for(lambda: len(agents_of(tmp_path)) == 2, 20, "both cells' agents run")
        start = time.monotonic()
        # SIGINT to the whole foreground group, as a terminal's Ctrl-C; the agents are not in it
        os.killpg(run.pid, signum) if signum == signal.SIGINT else run.send_signal(signum)
        _, err = run.communicate(timeout=20)
        assert run.returncode == code, err
        assert time.monotonic() - start < 10
        assert not agents_of(tmp_path)
        assert err.strip().splitlines()[-1] == (f"sandbox: stopped by {signal.Signals(signum).name}; "
                                                "everything finished is in the results store (run again to go on)")
        assert "Traceback" not in err
    finally:
        run.kill()
        run.communicate()


def test_items_stopped_by_sigterm_are_recorded_interrupted_not_crash(tmp_path: Path) -> None:
    run = start_fake_sandbox(tmp_path, "-j", "2", hang=60)
    try:
        manifests = [tmp_path / "runs" / "t" / "cells" / cell / "artifacts" / "manifest.jsonl"
                     for cell in ("tf1.0-py3.11-cpu", "tf2.0-py3.11-cpu")]
        wait_for(lambda: all(m.exists() and '"start"' in m.read_text() for m in manifests), 20, "both agents are on an item")
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=20)
        ends = [r for path in manifests for r in journal(path) if r["kind"] == "artifact"]
        assert ends and {r["status"] for r in ends} == {"interrupted"}, ends
    finally:
        run.kill()
        run.communicate()


def test_a_hung_item_in_a_run_is_ended_by_the_agents_own_watchdog(tmp_path: Path) -> None:
    (tmp_path / "matrix.toml").write_text(FAKE_MATRIX.replace("timeout = 60", "timeout = 3"))
    run = start_fake_sandbox(tmp_path, "-j", "2", hang=0)  # the fake agent hangs on batch_matmul loads
    out, err = run.communicate(timeout=120)
    loads = json.loads((tmp_path / "reports" / "t" / "results.json").read_text())["loads"]
    assert {l["status"] for l in loads if l["probe"] == "batch_matmul"} == {"timeout"}, out + err
    assert {l["status"] for l in loads if l["probe"] == "batchnorm"} == {"ok"}
    logs = "".join(p.read_text() for p in (tmp_path / "runs" / "t" / "cells").glob("*/logs/load.log"))
    assert "(item timeout)" in logs


def test_a_waiting_run_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    first = start_fake_sandbox(tmp_path, hang=60)
    try:
        wait_for(lambda: agents_of(tmp_path), 20, "the first run's agents run")
        second = start_fake_sandbox(tmp_path, hang=60)
        wait_for(lambda: (tmp_path / "runs" / ".t.lock.owner").exists(), 10, "the first run holds the lock")
        said: list[str] = []
        reader = threading.Thread(target=lambda: said.extend(second.stderr or []), daemon=True)
        reader.start()
        # the second says it waits once its signal handlers are in place (not a guess at a delay)
        wait_for(lambda: any("waiting for another sandbox run of t" in line for line in said), 60, "the second waits")
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=10)
        reader.join(timeout=10)
        assert second.returncode == 143, "".join(said)
        assert first.poll() is None  # the first goes on
    finally:
        first.kill()
        first.communicate()


def test_a_second_run_of_the_same_matrix_waits_for_the_first(tmp_path: Path) -> None:
    first = start_fake_sandbox(tmp_path, "-j", "2", hang=0.3)
    second = None
    try:
        wait_for(lambda: agents_of(tmp_path), 20, "the first run's agents run")
        second = start_fake_sandbox(tmp_path, "-j", "2", hang=0.3)
        # never an agent of each at once
        while first.poll() is None:
            parents = {parent_of(p) for p in agents_of(tmp_path)}
            assert not {first.pid, second.pid} <= parents
            time.sleep(0.02)
        out1, err1 = first.communicate()
        out2, err2 = second.communicate(timeout=60)
        assert first.returncode == 0 and second.returncode == 0, err1 + err2
        assert f"waiting for another sandbox run of t (pid {first.pid}) ..." in err2
        for out in (out1, out2):  # nothing lost to the other run
            assert "2 cells in " in out and ": 2 ok" in out, out
        loads = json.loads((tmp_path / "reports" / "t" / "results.json").read_text())["loads"]
        # 2 consumers x 2 producers x 2 probes x 1 format
        assert len(loads) == 2 * 2 * 2 and {l["status"] for l in loads} == {"ok"}
    finally:
        for run in (first, second):
            if run:
                run.kill()
                run.communicate()


def test_no_wait_refuses_to_run_beside_another_run(tmp_path: Path) -> None:
    first = start_fake_sandbox(tmp_path, hang=60)
    try:
        wait_for(lambda: agents_of(tmp_path), 20, "the first run's agents run")
        second = start_fake_sandbox(tmp_path, "--no-wait", hang=60)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 75
        assert err.strip().splitlines()[-1] == (f"sandbox: error: another sandbox run of t is running (pid {first.pid}); "
                                                "wait for it to finish, or run again without --no-wait")
    finally:
        first.kill()
        first.communicate()
