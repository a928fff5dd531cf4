"""Docker backend: a cell is an image; every agent run is a fresh confined
container (sandbox.envs.engine) removed when it ends.

An image that already holds TensorFlow (tensorflow/tensorflow:2.15.0, or a
user's own) is used as it is once the TF and Python inside match the cell. An
image with only Python gets the cell's TF from a host-made wheelhouse
(sandbox.envs.tfimage); the result is cached as an image.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from sandbox import commands
from sandbox.commands import Completed
from sandbox.envs import EnvInfo, ProvisionFailed, engine, last_json, register, tfimage
from sandbox.envs.wheelhouse import Target
from sandbox.errors import CommandFailed
from sandbox.plan import Cell

PROBE_TIMEOUT = 300.0

# What an image holds. Python 3.6+ syntax; TF is optional here.
INSPECT = (
    "import json, os, platform, sys\n"
    "info = {'python': '%d.%d.%d' % sys.version_info[:3], 'machine': platform.machine(),\n"
    "        'glibc': (os.confstr('CS_GNU_LIBC_VERSION') or '').replace('glibc ', '') if hasattr(os, 'confstr') else ''}\n"
    "try:\n"
    "    import tensorflow as tf\n"
    "except ImportError as exc:\n"
    "    info['tensorflow'], info['error'] = None, str(exc)\n"
    "else:\n"
    "    cfg = getattr(tf, 'config', None)\n"
    "    lister = getattr(cfg, 'list_physical_devices', None) or getattr(getattr(cfg, 'experimental', None), 'list_physical_devices', None)\n"
    "    info['tensorflow'] = tf.__version__\n"
    "    info['gpus'] = len(lister('GPU')) if lister else int(tf.test.is_gpu_available())\n"
    "print(json.dumps(info))\n"
)


@register("docker")
class DockerEnvironment:
    def __init__(self, cell: Cell) -> None:
        assert cell.docker_image and cell.release, "planned docker cells only"
        self.cell = cell
        self.image = cell.docker_image  # what probe runs use; a built image's tag after provision
        self.python = "python3"
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = engine.connect()
            except engine.EngineUnavailable as exc:
                raise ProvisionFailed("skipped", str(exc)) from None
        return self._client

    def identity(self) -> dict[str, object]:
        # The image is named by its reference: a tag rebuilt with other contents
        # keeps its records (`--fresh` measures again).
        return {"backend": "docker", "image": self.cell.image, "docker_image": self.cell.docker_image,
                "python": self.cell.request.python, "requirements": list(self.cell.requirements),
                "install_args": list(self.cell.install_args)}

    def provision(self, log: Path) -> EnvInfo:
        start = time.monotonic()
        base = self._local_image(log)
        if self.cell.image == "gpu":
            self._check_gpu_runtime(base.id, log)
        found = self._inspect(base.id, log)
        self._check_python(found)
        reused = True
        if found.get("tensorflow") is None:
            target = Target(str(found["python"]), str(found["machine"]), str(found["glibc"]))
            self.image, reused = tfimage.ensure(self.client, self.cell, base.id, self.python, target, log)
            self.python = tfimage.PYTHON
            found = self._inspect(self.image, log)
            if found.get("tensorflow") is None:
                raise ProvisionFailed("broken", "`import tensorflow` fails in the built image", str(found.get("error")))
        else:
            self.image = base.id
        if found["tensorflow"] != self.cell.tensorflow:
            raise ProvisionFailed("skipped", f"the image {self.cell.docker_image} holds TensorFlow "
                                  f"{found['tensorflow']}, not {self.cell.tensorflow}")
        location = self.image if self.image.startswith(tfimage.REPOSITORY) else self.cell.docker_image or ""
        return EnvInfo(f"docker:{location}", reused, time.monotonic() - start, str(found["tensorflow"]),
                       int(found.get("gpus") or 0))

    def run_python(self, args: list[str], *, log: Path, timeout: float,
                   readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> Completed:
        # Same paths inside as outside, so the agent's arguments need no mapping.
        for folder in writable:  # else the engine creates them, owned by root
            folder.mkdir(parents=True, exist_ok=True)
        conf = engine.Confinement(readable=tuple(p.resolve() for p in readable if p.exists()),
                                  writable=tuple(p.resolve() for p in writable), gpus=self.cell.image == "gpu")
        return engine.run(self.client, self.image, [self.python, "-E", "-s", "-B", *args], conf,
                          log=log, timeout=timeout, python=True)

    # -- steps ----------------------------------------------------------------
    def _local_image(self, log: Path) -> Any:
        ref = self.cell.docker_image or ""
        try:
            return self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise ProvisionFailed("skipped", f"the Docker engine cannot look up {ref}: {engine.short(exc)}") from None
        start = time.monotonic()
        try:
            image = self.client.images.pull(ref)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            commands.log_command(log, ["docker", "pull", ref], 1, str(exc), time.monotonic() - start)
            raise ProvisionFailed("skipped", f"the image {ref} is not on this engine and pulling it failed: "
                                  f"{engine.short(exc)}") from None
        commands.log_command(log, ["docker", "pull", ref], 0, image.id, time.monotonic() - start)
        return image

    def _check_gpu_runtime(self, image: str, log: Path) -> None:
        """A GPU request fails at start where the engine has no GPU runtime."""
        try:
            engine.run(self.client, image, [self.python, "-c", "pass"], engine.Confinement(gpus=True),
                       log=log, timeout=PROBE_TIMEOUT)
        except docker.errors.APIError as exc:
            commands.log_command(log, ["docker", "run", "--gpus", "all", image], 1, str(exc), 0.0)
            raise ProvisionFailed("skipped", f"the Docker engine has no GPU runtime ({engine.short(exc)})") from None

    def _inspect(self, image: str, log: Path) -> dict[str, Any]:
        """What `image` holds; tries python3, then python."""
        conf = engine.Confinement(gpus=self.cell.image == "gpu")
        candidates = [self.python] if self.python != "python3" else ["python3", "python"]
        last = ""
        for python in candidates:
            try:
                done = engine.run(self.client, image, [python, "-E", "-s", "-c", INSPECT], conf,
                                  log=log, timeout=PROBE_TIMEOUT)
            except docker.errors.APIError as exc:  # no such executable in the image
                last = engine.short(exc)
                continue
            except CommandFailed as exc:
                raise ProvisionFailed("broken", f"inspecting the image timed out (log: {log})", exc.output_tail) from None
            info = last_json(done.output)
            if info is not None and "python" in info:
                self.python = python
                return info
            last = commands.tail(done.output)
        raise ProvisionFailed("skipped", f"no Python runs in the image {self.cell.docker_image}", last)

    def _check_python(self, found: dict[str, Any]) -> None:
        minor = ".".join(str(found["python"]).split(".")[:2])
        if minor != self.cell.request.python:
            raise ProvisionFailed("skipped", f"the image {self.cell.docker_image} has Python {found['python']}, "
                                  f"not {self.cell.request.python}")
