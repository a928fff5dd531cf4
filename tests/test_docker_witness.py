"""A witness in a docker consumer: the script runs in the cell's confined,
network-less container (the environment interface's docker backend) on the
producer's artifact mounted read-only from the results store. The finding is
made by a loader broken on purpose (tests/data/sabotaged_probes.py), so the
plain load in the container works: not reproduced, exit 4."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from sandbox_cli import results as read_results
from sandbox_cli import sandbox

pytestmark = [pytest.mark.real, pytest.mark.docker]

SABOTAGED = Path(__file__).resolve().parent / "data" / "sabotaged_probes.py"
MATRIX = """
name = "witness-docker"
probes = ["sabotaged"]
probe_modules = ["{module}"]
formats = ["frozen_graph"]
[[include]]
tensorflow = "2.15"
python = "3.11"
backend = "docker"
docker_image = "{base}"
"""


def test_a_witness_runs_in_the_consumers_container(base_image: str, client: docker.DockerClient, tmp_path: Path) -> None:
    (tmp_path / "matrix.toml").write_text(MATRIX.format(module=SABOTAGED, base=base_image))
    done = sandbox(["run", "matrix.toml"], tmp_path, expect=4)
    results = read_results(tmp_path, "witness-docker")
    [cell] = results["cells"]
    [found] = results["witnesses"]
    assert (found["consumer"], found["outcome"], found["status"]) == (cell["id"], "loads", "ok")
    assert found["max_abs_err"] is not None  # compared with the producer's outputs, in the container
    assert "not reproduced (a bug of ours): MatMul.sabotaged" in done.stdout
    [log] = (tmp_path / "runs" / "witness-docker" / "cells" / cell["id"] / "logs").glob("witness-*.log")
    image = cell["environment"]["location"].split(":", 1)[1]
    assert log.read_text().startswith(f"$ docker run {image} ")
    assert client.containers.list(all=True, filters={"ancestor": image}) == []
