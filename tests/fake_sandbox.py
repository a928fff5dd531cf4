"""`sandbox` whose cells run the fake agent (tests/fake_agent.py) instead of
TensorFlow: the real CLI, runner, locks and commands, as a process of its own,
for tests that signal or kill a whole sandbox. Usage: python fake_sandbox.py
SANDBOX-ARGS; FAKE_AGENT_HANG=SECONDS makes every agent item take that long."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from sandbox import cellrun, cli, commands, matrix, plan
from sandbox.cli import planning
from sandbox.envs import EnvInfo
from sandbox.pythons import Interpreter
from sandbox.versions import Resolved

FAKE_AGENT = Path(__file__).resolve().parent / "fake_agent.py"


class FakeEnv:
    """Implements sandbox.envs.Environment; runs the fake agent on this Python."""

    def __init__(self, cell: plan.Cell) -> None:
        self.cell = cell

    def identity(self) -> dict[str, object]:
        return {"fake": self.cell.id}

    def provision(self, log: Path) -> EnvInfo:
        return EnvInfo("/nowhere", False, 0.0, "fake", 0)

    def run_python(self, args: list[str], *, log: Path, timeout: float,
                   readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> commands.Completed:
        return commands.run([sys.executable, str(FAKE_AGENT), *args[1:]], log=log, timeout=timeout, check=False)


def fake_plan(path: Path, offline: bool) -> tuple[matrix.Matrix, list[plan.Cell]]:
    """Every cell of the matrix on this Python, without a release catalog."""
    mx = matrix.load(path)
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    released = datetime.datetime(2020, 1, 1)
    return mx, [plan.Cell(f"tf{r.tensorflow}-py3.11-cpu" + "".join(f"+{p}" for p in r.packages), r, "cpu", "venv", me,
                          Resolved("tensorflow", r.tensorflow, released))
                for r in mx.cells]


if __name__ == "__main__":
    planning.resolve = fake_plan
    cellrun.environment = FakeEnv  # type: ignore[attr-defined]  # the cell runner's seam (its name for envs.environment)
    sys.exit(cli.main(sys.argv[1:]))
