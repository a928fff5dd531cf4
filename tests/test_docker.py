"""The docker backend on a real Docker Engine: confinement of probe runs,
cleanup on every path, the GPU skip path, the no-engine skip path."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from test_docker_config import docker_cell

from sandbox import matrix, plan
from sandbox.envs import ProvisionFailed, engine
from sandbox.envs.docker import DockerEnvironment
from sandbox.errors import CommandFailed, Interrupted

pytestmark = pytest.mark.docker

# Run as the agent would be: what a model's code could try inside a probe run.
ESCAPE = r"""
import json, os, socket, sys
out = {"interfaces": sorted(os.listdir("/sys/class/net")), "uid": os.getuid(), "gid": os.getgid()}
def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except Exception as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)
def connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(5); s.connect((host, port)); s.close()
attempt("connect_public", lambda: connect("151.101.0.223", 443))  # a pypi.org address
attempt("connect_bridge", lambda: connect("172.17.0.1", 2375))    # the engine's bridge gateway
attempt("resolve", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("write_rootfs", lambda: open("/etc/sandbox-escape", "w").close())
attempt("write_readable", lambda: open(os.path.join(sys.argv[1], "x"), "w").close())
attempt("write_writable", lambda: open(os.path.join(sys.argv[2], "written"), "w").close())
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
out["cap_eff"], out["no_new_privs"] = status["CapEff"].strip(), status["NoNewPrivs"].strip()
print(json.dumps(out))
"""


@pytest.fixture(autouse=True)
def no_leftover_containers(client: docker.DockerClient, base_image: str) -> Iterator[None]:
    yield
    engine._stopping.clear()  # containers again after a test that interrupted them
    left = client.containers.list(all=True, filters={"ancestor": base_image})
    assert not left, f"containers left behind: {[c.name for c in left]}"


def test_probe_runs_reach_no_network_and_write_only_their_folder(base_image: str, tmp_path: Path) -> None:
    env = DockerEnvironment(docker_cell(base_image))  # a probe run, as the runner makes it
    readable, writable = tmp_path / "other-cell", tmp_path / "own-cell"
    readable.mkdir()
    done = env.run_python(["-c", ESCAPE, str(readable), str(writable)], log=tmp_path / "log", timeout=120,
                          readable=(readable,), writable=(writable,))
    assert done.returncode == 0, done.output
    seen = json.loads(done.output.strip().splitlines()[-1])
    assert seen["interfaces"] == ["lo"]
    assert "Network is unreachable" in seen["connect_public"] and "Network is unreachable" in seen["connect_bridge"]
    assert seen["resolve"].startswith("gaierror")
    assert "Read-only file system" in seen["write_rootfs"] and "Read-only file system" in seen["write_readable"]
    assert seen["write_writable"] == "ok"
    assert (seen["uid"], seen["gid"]) == (os.getuid(), os.getgid())
    assert (writable / "written").stat().st_uid == os.getuid()
    assert int(seen["cap_eff"], 16) == 0 and seen["no_new_privs"] == "1"
    assert "$ docker run" in (tmp_path / "log").read_text()


def test_a_timeout_kills_and_removes_the_container(client: docker.DockerClient, base_image: str, tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(CommandFailed) as info:
        engine.run(client, base_image, ["sleep", "60"], engine.Confinement(), log=tmp_path / "log", timeout=2)
    assert info.value.returncode is None and time.monotonic() - start < 30


def test_interrupt_removes_running_containers_and_starts_no_more(client: docker.DockerClient, base_image: str,
                                                                tmp_path: Path) -> None:
    codes: list[object] = []
    worker = threading.Thread(target=lambda: codes.append(
        engine.run(client, base_image, ["sleep", "120"], engine.Confinement(), log=None, timeout=300).returncode))
    worker.start()
    deadline = time.monotonic() + 30
    while not client.containers.list(filters={"ancestor": base_image}) and time.monotonic() < deadline:
        time.sleep(0.2)
    engine.interrupt()  # what the runner calls on Ctrl-C
    worker.join(60)
    assert not worker.is_alive() and codes and codes[0] != 0
    with pytest.raises(Interrupted):
        engine.run(client, base_image, ["true"], engine.Confinement(), log=None, timeout=30)


def test_ctrl_c_inside_the_block_removes_the_container(client: docker.DockerClient, base_image: str) -> None:
    with pytest.raises(KeyboardInterrupt), engine.Container(client, base_image, ["sleep", "120"], engine.Confinement()):
        raise KeyboardInterrupt


def test_gpu_cells_are_skipped_where_the_engine_has_no_gpu_runtime(client: docker.DockerClient, base_image: str,
                                                                   tmp_path: Path) -> None:
    if any("nvidia" in r for r in client.info().get("Runtimes", {})):
        pytest.skip("this engine has a GPU runtime")
    with pytest.raises(ProvisionFailed) as info:
        DockerEnvironment(docker_cell(base_image, gpu=True)).provision(tmp_path / "provision.log")
    assert info.value.status == "skipped"
    assert str(info.value).startswith("the Docker engine has no GPU runtime (")


def test_an_image_with_another_python_is_skipped(base_image: str, tmp_path: Path) -> None:
    cell = docker_cell(base_image)
    cell = plan.Cell(cell.id, matrix.CellRequest("2.15.1", "3.9", "cpu", "docker", base_image), "cpu", "docker",
                     None, cell.release, docker_image=base_image)
    with pytest.raises(ProvisionFailed) as info:
        DockerEnvironment(cell).provision(tmp_path / "provision.log")
    assert info.value.status == "skipped" and "has Python 3.11." in str(info.value) and "not 3.9" in str(info.value)


def test_a_missing_image_that_cannot_be_pulled_is_skipped(tmp_path: Path) -> None:
    with pytest.raises(ProvisionFailed) as info:
        DockerEnvironment(docker_cell("sandbox-test/no-such-image:0")).provision(tmp_path / "provision.log")
    assert info.value.status == "skipped"
    assert "the image sandbox-test/no-such-image:0 is not on this engine and pulling it failed" in str(info.value)
