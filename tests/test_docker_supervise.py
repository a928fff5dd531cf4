"""A container outlives a host killed with kill -9 (nobody is left to remove
it): the agent's container must end by itself once its timeout has passed."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import docker
import pytest
from supervision import wait_for

pytestmark = pytest.mark.docker

HOST = """
import sys
from sandbox.envs import engine
engine.DEADLINE_GRACE = 1.0
engine.run(engine.connect(), sys.argv[1], ["python3", "-c", "import time; time.sleep(600)", sys.argv[2]],
           engine.Confinement(), log=None, timeout=4, python=True)
"""


def test_a_container_ends_by_itself_after_its_host_was_killed(client: docker.DockerClient, base_image: str) -> None:
    marker = f"sandbox-test-{uuid.uuid4().hex}"

    def mine() -> list[dict[str, str]]:
        """Our containers (the engine is shared: others come and go; a raw list never looks them up)."""
        return [c for c in client.api.containers(all=True, filters={"ancestor": base_image}) if marker in c["Command"]]
    host = subprocess.Popen([sys.executable, "-c", HOST, base_image, marker], start_new_session=True)
    try:
        wait_for(lambda: [c["State"] for c in mine()] == ["running"], 60, "the container runs")
        host.kill()  # kill -9: the host cannot remove its container any more
        host.wait()
        started = time.monotonic()
        wait_for(lambda: [c["State"] for c in mine()] == ["exited"], 20, "the container ends by itself")
        [box] = mine()
        assert client.api.inspect_container(box["Id"])["State"]["ExitCode"] == 124
        assert time.monotonic() - started < 10  # timeout 4 s + grace 1 s after it started
    finally:
        host.kill()
        host.wait()
        for box in mine():
            client.api.remove_container(box["Id"], force=True)
