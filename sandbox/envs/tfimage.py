"""TensorFlow installed into an image that holds only Python, without network.

A build container (no network, no capabilities) gets the host-made wheelhouse
mounted read-only, creates a virtualenv at VENV and installs with
`--no-index`; it is committed as an image tagged by a hash of its definition,
so the next run finds it and starts at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import docker.errors

from sandbox import commands, digests, locks
from sandbox.envs import ProvisionFailed, engine, wheelhouse
from sandbox.plan import Cell
from sandbox.store import cache_dir

SCHEMA = 1
REPOSITORY = "sandbox-tf"
VENV = "/opt/sandbox/venv"
PYTHON = f"{VENV}/bin/python"
LABEL = "org.sandbox.definition"
BUILD_TIMEOUT = 1800.0

# Runs with the image's own Python (3.6+ syntax): no shell is needed in the image.
# pip is upgraded first from the wheelhouse, so an old bundled pip that does not
# know today's platform tags does not reject the wheels.
BUILD_SCRIPT = """
import subprocess, sys
venv, house = sys.argv[1], sys.argv[2]
def run(*args):
    print('+ ' + ' '.join(args), flush=True)
    subprocess.check_call(list(args))
run(sys.executable, '-m', 'venv', venv)
pip = [venv + '/bin/python', '-m', 'pip', 'install', '--no-index', '--find-links', house,
       '--disable-pip-version-check', '--no-warn-script-location', '--no-cache-dir']
run(*pip, '--upgrade', 'pip')
run(*pip, '--no-deps', '-r', house + '/requirements.txt')
"""


def tag_for(cell: Cell, base_id: str, target: wheelhouse.Target) -> tuple[str, dict[str, object]]:
    """The image tag for `cell` built on the image `base_id`, and its definition."""
    definition: dict[str, object] = {
        "schema": SCHEMA, "base": base_id, "requirement": cell.requirement,
        "install_args": list(cell.install_args), "python": target.python, "platform": target.uv_platform(),
        **({"packages": list(cell.packages)} if cell.packages else {}),
    }
    digest = digests.short(definition)
    return f"{REPOSITORY}:{cell.id}-{digest}", definition


def ensure(client: docker.DockerClient, cell: Cell, base_id: str, python: str, target: wheelhouse.Target,
           log: Path) -> tuple[str, bool]:
    """The tag of `cell`'s TF image on `base_id`, built unless cached; and
    whether it was reused."""
    tag, definition = tag_for(cell, base_id, target)
    if _exists(client, tag):
        return tag, True
    # one build per tag at a time: the next process waits, then finds the image
    with locks.env_lock(cache_dir() / "images" / tag.replace(":", "_")):
        if _exists(client, tag):
            return tag, True
        assert cell.requirement
        house = wheelhouse.ensure(cell.requirements, cell.install_args, target, log)
        _build(client, base_id, python, house, tag, definition, log)
    return tag, False


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _build(client: docker.DockerClient, base_id: str, python: str, house: Path, tag: str,
           definition: dict[str, object], log: Path) -> None:
    # root in the container to write /opt, but without network or capabilities
    conf = engine.Confinement(readable=(house,), user="0:0", read_only_root=False)
    command = [python, "-c", BUILD_SCRIPT, VENV, str(house)]
    start = time.monotonic()
    with engine.Container(client, base_id, command, conf) as box:
        code = box.wait(BUILD_TIMEOUT)
        output = box.output()
        commands.log_command(log, ["docker", "run", base_id[:19], python, "-c", "BUILD_SCRIPT", VENV, str(house)],
                             code, output, time.monotonic() - start)
        if code != 0:
            what = "timed out" if code is None else f"exited {code}"
            raise ProvisionFailed("install-failed", f"installing TensorFlow into the image {what} (log: {log})",
                                  commands.tail(output))
        repository, name = tag.split(":", 1)
        box.sdk.commit(repository=repository, tag=name, changes=None,
                       conf={"Cmd": [PYTHON], "Labels": {LABEL: json.dumps(definition, sort_keys=True)}})
