"""The GitLab pipeline (.gitlab-ci.yml and the child pipeline `sandbox
pipeline` writes) executed by a real CI engine, gitlab-ci-local, on a small
matrix with real TensorFlow: its plan, parallel:matrix export and load jobs,
needs, artifacts and caches fit together, and the merged report equals a
single run's (`sandbox diff`: no changes). One cell's Python (3.7) is hidden
from the jobs, as on a runner uv cannot give it to: that cell runs in the
matrix's python_image (a stand-in for python:3.7, built here) with the docker
backend. Run again, every job finds its cell in its cache and measures
nothing; with SANDBOX_PROPOSE=true the report is proposed (a branch pushed to
origin) when it changed, and not when it did not."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest
from sandbox_cli import ROOT, SCALE_PROBES, comparable, sandbox, uncertain

pytestmark = [pytest.mark.real, pytest.mark.docker]

MATRIX = """
name = "gl"
probe_modules = ["probes.py"]
probes = ["scale"]
formats = ["frozen_graph", "saved_model_tf1"]
python_image = "sandbox-test/python:{python}"

[[include]]
tensorflow = "1.15"
python = "3.7"

[[include]]
tensorflow = "2.18"
python = "3.11"
"""
CELLS = ("tf1.15.5-py3.7-cpu", "tf2.18.1-py3.11-cpu")
HIDDEN = "3.7"  # the jobs' runner "cannot install" this Python
TALLY = re.compile(r"measured (\d+) exports, (\d+) loads")


def gitlab_ci_local() -> str:
    found = shutil.which("gitlab-ci-local")
    if found is None:
        if os.environ.get("CI") or os.environ.get("SANDBOX_REQUIRE_DOCKER"):
            pytest.fail("gitlab-ci-local is not installed (scripts/system-deps.sh installs it)")
        pytest.skip("gitlab-ci-local not found (bash scripts/system-deps.sh installs it)")
    return found


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, client: docker.DockerClient) -> Path:
    """A repository holding the pipeline, the matrix and its probe module,
    with a bare repository as its origin (a proposal is pushed there)."""
    import docker_base
    docker_base.ensure_python_image(client, HIDDEN, tmp_path_factory.mktemp("image") / "image.log")
    root = tmp_path_factory.mktemp("gitlab")
    folder, origin = root / "project", root / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    git(origin, "config", "receive.advertisePushOptions", "true")  # GitLab's merge_request.* push options
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    for name in (".gitlab-ci.yml", "ci/diff.sh", "ci/propose.sh"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, folder / name)
    (folder / "matrix.toml").write_text(MATRIX)
    (folder / "probes.py").write_text(SCALE_PROBES)
    (folder / ".gitignore").write_text(".gitlab-ci-local/\nbundles/\nmerged/\nruns/\nreports/single/\n.sandbox/\nshards.yml\n")
    git(folder, "add", "-A")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "the project")
    # a URL gitlab-ci-local can name the project by (else its child jobs share one made-up
    # CI_PROJECT_DIR), pushed to the bare repository
    git(folder, "remote", "add", "origin", "https://gitlab.example.com/sandbox/gl.git")
    git(folder, "remote", "set-url", "--push", "origin", str(origin))
    git(folder, "push", "-q", "origin", "main")
    return folder


def jobs_env() -> dict[str, str]:
    """What the jobs' runner has: this checkout's sandbox on PATH, no Python 3.7.
    Not the test session's results store (gitlab-ci-local lets the process's
    environment win over the pipeline's variables): each job has its own."""
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_STORE_DIR"}
    return {**env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            "SANDBOX_IGNORE_PYTHONS": HIDDEN}


def pipeline(folder: Path, *variables: str) -> str:
    """Run the project's pipeline with gitlab-ci-local: shell jobs, each in a copy of its own."""
    shutil.rmtree(folder / "merged", ignore_errors=True)
    args = [gitlab_ci_local(), "--force-shell-executor", "--shell-isolation", "--json-schema-validation=false",
            "--variable", "MATRIX=matrix.toml", "--variable", "SANDBOX_DOCKER_SERVICE=",  # shell jobs: the host's engine
            *(a for v in variables for a in ("--variable", v))]
    done = subprocess.run(args, cwd=folder, env=jobs_env(), capture_output=True, text=True, timeout=3600)
    # gitlab-ci-local passes a trigger job whose child pipeline failed: its jobs must pass too
    failed = [line for line in done.stdout.splitlines() if " FAIL " in line or line.startswith(" FAIL")]
    assert done.returncode == 0 and not failed, done.stdout[-6000:] + done.stderr[-3000:]
    return done.stdout


def job_lines(output: str, job: str) -> list[str]:
    return [line for line in output.splitlines() if job in line]


def tallies(output: str) -> list[tuple[int, int]]:
    return [(int(m[1]), int(m[2])) for m in TALLY.finditer(output)]


@pytest.fixture(scope="module")
def single(project: Path) -> dict[str, Any]:
    """The same matrix as one `sandbox run` on the same runner (3.7 hidden too), its own store."""
    sandbox(["run", "matrix.toml", "--reports", "reports/single"], project,
            env={**jobs_env(), "SANDBOX_STORE_DIR": str(project.parent / "single-store")})
    found: dict[str, Any] = json.loads((project / "reports" / "single" / "gl" / "results.json").read_text())
    assert {c["id"]: (c["status"], c["backend"]) for c in found["cells"]} == {
        CELLS[0]: ("ok", "docker"), CELLS[1]: ("ok", "venv")}  # 3.7 came from the image
    return found


@pytest.fixture(scope="module")
def first(project: Path, single: dict[str, Any]) -> str:
    return pipeline(project)


def test_the_pipeline_runs_a_job_per_cell_and_stage_and_merges_the_single_runs_report(
        project: Path, single: dict[str, Any], first: str) -> None:
    for job in ("plan", "export: [tf2.18.1", "export:docker: [tf1.15.5", "load: [tf2.18.1",
                "load:docker: [tf1.15.5", "merge"):
        assert any("PASS" in line for line in job_lines(first, job)), (job, first[-4000:])
    assert job_lines(first, "export:docker: [tf1.15.5") and not job_lines(first, "export: [tf1.15.5")
    # every cell exported (2 probes x 1 format... each job measures its own) and loaded in its own job
    assert sorted(tallies(first)) == sorted([(2, 0), (2, 0), (0, 6), (0, 6)]), tallies(first)
    merged = json.loads((project / "merged" / "gl" / "results.json").read_text())
    assert uncertain(comparable(merged)) == uncertain(comparable(single))
    done = sandbox(["diff", "reports/single/gl", "merged/gl", "--json"], project)
    assert json.loads(done.stdout)["changed"] is False
    # nothing committed yet: the pipeline's own diff says the whole report is new
    assert json.loads((project / "merged" / "diff.json").read_text())["changed"] is True


def test_a_rerun_measures_nothing_and_proposes_a_changed_report_only(project: Path, first: str) -> None:
    again = pipeline(project, "SANDBOX_PROPOSE=true")
    assert tallies(again) == [(0, 0)] * 4, tallies(again)  # every job's cache held its cell
    assert "provision" not in again
    branches = git(project.parent / "origin.git", "branch", "--list", "map/*").split()
    assert len(branches) == 1  # reports/gl was not committed: proposed
    proposed = git(project.parent / "origin.git", "show", f"{branches[0]}:reports/gl/results.json")
    assert json.loads(proposed) == json.loads((project / "merged" / "gl" / "results.json").read_text())
    git(project, "fetch", "-q", str(project.parent / "origin.git"), branches[0])
    git(project, "merge", "-q", "--ff-only", "FETCH_HEAD")  # the proposal accepted
    unchanged = pipeline(project, "SANDBOX_PROPOSE=true")
    assert json.loads((project / "merged" / "diff.json").read_text())["changed"] is False
    assert "nothing to propose" in unchanged
    assert git(project.parent / "origin.git", "branch", "--list", "map/*").split() == branches
