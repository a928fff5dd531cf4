"""`sandbox shell` and `sandbox pythons`: a shell in a cell's environment, and
the Python interpreters cells can run on."""

from __future__ import annotations

import argparse
import os
import re
import shutil
from pathlib import Path
from typing import Any

from sandbox import matrix, plan, pythons, shapes, versions
from sandbox.cli import output
from sandbox.errors import SandboxError


def cmd_shell(args: argparse.Namespace) -> int:
    from sandbox.envs import environment, provision

    cell = shell_cell(args.cell, args.matrix, versions.Catalog(offline=args.offline), pythons.discover())
    env = environment(cell)
    info = provision(env, args.work_dir / "shell.log", lambda event: None)  # its one line below says where
    if cell.backend == "docker":
        return _docker_shell(cell, info.location.removeprefix("docker:") or getattr(env, "image", ""))
    folder = Path(info.location)
    print(f"{cell.id}: {' '.join(cell.requirements)} in {folder}; artifacts of earlier runs are under {args.work_dir}/")
    shell = os.environ.get("SHELL", "/bin/sh")
    os.execve(shell, [shell], {**os.environ, "VIRTUAL_ENV": str(folder),
                               "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                               "PS1": f"({cell.id}) $ "})
    return 0  # not reached


_CELL_ID = re.compile(r"^tf(?P<tensorflow>[0-9][^-+]*)-py(?P<python>[^-+]+)-(?P<image>[^-+]+)(?P<docker>-docker)?"
                      r"(?P<packages>(?:\+[A-Za-z0-9][A-Za-z0-9._-]*)*)$")


def shell_cell(cell_id: str, matrix_path: Path, catalog: plan.Releases, found: pythons.Discovery) -> plan.Cell:
    """The cell of `sandbox plan`'s id: from the matrix, when it has a cell of
    that id (its packages as pinned there); else made from the id itself
    (venv or docker, extra packages by name)."""
    cells = plan.plan(matrix.load(matrix_path), catalog, found) if matrix_path.is_file() else []
    cell = next((c for c in cells if c.id == cell_id), None)
    if cell is None:
        parsed = _CELL_ID.match(cell_id)
        if parsed is None:
            raise SandboxError(f"'{cell_id}' is not a cell id like tf2.15.1-py3.11-cpu, tf2.18.1-py3.11-cpu+tf-keras "
                               "or tf2.15.1-py3.11-cpu-docker (sandbox plan lists them)")
        data: dict[str, Any] = {k: parsed.group(k) for k in ("tensorflow", "python", "image")}
        data.update(backend="docker" if parsed.group("docker") else "venv",
                    packages=[p for p in parsed.group("packages").split("+") if p])
        [cell] = plan.plan(matrix.parse(data, Path(cell_id)), catalog, found)
    if cell.skip:
        raise SandboxError(f"{cell_id}: {cell.skip}")
    return cell


def _docker_shell(cell: plan.Cell, image: str) -> int:
    """A shell in a container of the cell's image: no network, as its agent runs."""
    docker = shutil.which("docker")
    command = ["docker", "run", "--rm", "-it", "--network", "none", image, "sh"]
    if docker is None:
        raise SandboxError(f"{cell.id}: the docker command-line client is not installed; its image is ready: "
                           f"{' '.join(command)}")
    print(f"{cell.id}: {' '.join(cell.requirements)} in the image {image}")
    os.execv(docker, command)
    return 0  # not reached


def cmd_pythons(args: argparse.Namespace) -> int:
    if args.install:
        _, message = pythons.install(args.install)
        print(message)
        return 0
    found = pythons.discover()
    if args.json:
        output.print_json(shapes.pythons(found))
        return 0
    for minor, interp in sorted(found.interpreters.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))):
        print(f"{minor:5} {interp.full:8} {interp.source:6} {interp.path}")
    print(f"searched: {', '.join(found.searched)}")
    return 0
