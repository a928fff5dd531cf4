"""A recorded run replayed at its own size: `sandbox` whose cells are those of
a results document and whose agent (tests/replay_agent.py) answers every
export, load and registry from it, without TensorFlow. The real CLI, runner,
store, collect and renderers run on it, so a test or a benchmark can take the
published map (reports/tf-map: 26 cells, 90,402 loads) through a run and a
re-run in minutes.

    python tests/replay.py prepare RESULTS.json DIR   # the recording, and DIR/matrix.toml
    python tests/replay.py run DIR SANDBOX-ARGS...    # sandbox over DIR's cells (cwd: DIR)
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from sandbox import cellrun, cli, commands, matrix, plan, registries
from sandbox.cli import planning
from sandbox.envs import EnvInfo
from sandbox.pythons import Interpreter
from sandbox.versions import Resolved

AGENT = Path(__file__).resolve().parent / "replay_agent.py"
LOAD_KEYS = ("producer", "probe", "format", "loader")
# what collect adds to a load record; the agent does not write these
DERIVED = ("consumer", "category", "names", "static")


def prepare(document: dict[str, Any], folder: Path, cells: int | None = None) -> Path:
    """The recording of `document` (its first `cells` cells) in folder/replay and
    a matrix of those cells in folder/matrix.toml; returns the matrix."""
    kept = document["cells"][:cells]
    ids = {c["id"] for c in kept}
    exports: dict[str, dict[str, Any]] = defaultdict(dict)
    for a in document["artifacts"]:
        if a["producer"] in ids:
            exports[a["producer"]][f"{a['probe']}/{a['format']}"] = {k: v for k, v in a.items() if k != "producer"}
    loads: dict[str, dict[str, Any]] = defaultdict(dict)
    for load in document["loads"]:
        if load["consumer"] in ids and load["producer"] in ids:
            loads[load["consumer"]]["|".join(load[k] for k in LOAD_KEYS)] = \
                {k: v for k, v in load.items() if k not in DERIVED}
    root = folder / "replay"
    for cell in kept:
        _, ops = registries.load(cell["tensorflow"])
        _write(root / "registries" / f"{cell['id']}.json", {**ops, "cell": cell["environment"]})
        _write(root / "exports" / f"{cell['id']}.json", exports[cell["id"]])
        _write(root / "loads" / f"{cell['id']}.json", loads[cell["id"]])
    _write(root / "cells.json", kept)
    text = "\n".join([
        f'name = "{document["name"]}"',
        f"tensorflow = {json.dumps([c['tensorflow'] for c in kept])}",
        'python = "3.11"',
        f"probes = {json.dumps(document['probes'])}",
        f"formats = {json.dumps(document['formats'])}",
        *[f'[tolerance.{probe}]\natol = {t["atol"]!r}\nrtol = {t["rtol"]!r}'
          for probe, t in document["tolerances"].items()],
    ]) + "\n"
    (folder / "matrix.toml").write_text(text)
    return folder / "matrix.toml"


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


class ReplayEnv:
    """Implements sandbox.envs.Environment: the replay agent on this Python."""

    def __init__(self, cell: plan.Cell) -> None:
        self.cell = cell

    def identity(self) -> dict[str, object]:
        return {"replay": self.cell.id}

    def provision(self, log: Path) -> EnvInfo:
        return EnvInfo("/replay", False, 0.0, str(self.cell.tensorflow), 0)

    def run_python(self, args: list[str], *, log: Path, timeout: float,
                   readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> commands.Completed:
        return commands.run([sys.executable, str(AGENT), *args[1:]], log=log, timeout=timeout, check=False,
                            env={**os.environ, "REPLAY_DIR": str(Path("replay").resolve())})


def replay_plan(path: Path, offline: bool) -> tuple[matrix.Matrix, list[plan.Cell]]:
    """The recording's cells, in its order, for the matrix prepare() wrote."""
    mx = matrix.load(path)
    recorded = json.loads((path.parent / "replay" / "cells.json").read_text())
    released = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    cells = []
    for request, cell in zip(mx.cells, recorded):
        version = tuple(int(p) for p in cell["python"].split("."))
        python = Interpreter(Path(sys.executable), (version[0], version[1], version[2]), "x86_64", "PATH")
        cells.append(plan.Cell(cell["id"], request, "cpu", "venv", python,
                               Resolved("tensorflow", cell["tensorflow"], released)))
    return mx, cells


def main(argv: list[str]) -> int:
    if argv[0] == "prepare":
        prepare(json.loads(Path(argv[1]).read_text()), Path(argv[2]))
        return 0
    os.chdir(argv[1])
    planning.resolve = replay_plan
    cellrun.environment = ReplayEnv  # type: ignore[attr-defined]  # the cell runner's seam (its name for envs.environment)
    return cli.main(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
