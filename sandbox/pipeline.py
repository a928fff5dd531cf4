"""CI pipelines for a matrix's shards: an export job and a load job per
planned cell, then one merge job that makes the report one machine would
and diffs it against the committed one.

One job list (`jobs`, from the plan: what `sandbox plan --json` prints) and
one set of shell steps (`STEPS`) serve both engines. `sandbox pipeline MATRIX
--gitlab` renders the child pipeline that .gitlab-ci.yml triggers (JSON, which
is YAML); `--github` the job matrix .github/workflows/matrix.yml runs over,
whose jobs run these very steps (tests/test_workflow.py checks that), so the
two cannot drift.

A cell whose Python the runner cannot install (uv offers no CPython below
3.8) runs in its matrix's `python_image` with the docker backend: its jobs
get a Docker Engine (GitLab: the docker:dind service, which shares the build
folder with the job, so everything the docker backend mounts lives there;
GitHub runners have an engine of their own). What the engines cache is each job's own results store (a few MB per
cell, pruned to what the job used), never environments (about 1 GB each): a
job whose cell has nothing new to measure builds no environment at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GITLAB_IMAGE = "python:3.11-bookworm"  # the jobs' own Python runs sandbox; cells get theirs
STORE = ".sandbox/store"  # in the project folder: engines cache only paths inside it
EXPIRE = "1 week"

# The shell steps of each kind of job: $MATRIX, $NAME (the matrix's name),
# $CELL and $PYTHON are the job's variables.
STEPS: dict[str, tuple[str, ...]] = {
    "setup": ("command -v sandbox >/dev/null || python -m pip install --quiet -e .",),
    "python": ('sandbox pythons --install "$PYTHON"',),
    "export": ('sandbox export "$MATRIX" --cell "$CELL" --out "bundles/export-$CELL" --prune-store',),
    "load": ('sandbox load "$MATRIX" --cell "$CELL" --bundles bundles/export-* --out "bundles/load-$CELL" '
             '--prune-store',),
    "merge": ("sandbox merge bundles/export-* bundles/load-* --reports merged",
              'sh ci/diff.sh "reports/$NAME" "merged/$NAME" merged'),
    "propose": ('sh ci/propose.sh "$NAME"',),
}
# GitLab's docker:dind service, where the job runs in a container; a shell runner's own engine otherwise.
DOCKER_SERVICE = "docker:dind"
DIND = ('if getent hosts docker >/dev/null 2>&1; then export DOCKER_HOST=tcp://docker:2375 '
        'SANDBOX_CACHE_DIR="$CI_PROJECT_DIR/.sandbox/cache"; fi',)


@dataclass(frozen=True)
class Job:
    """One cell's export or load job."""

    stage: str  # "export" | "load"
    cell: str
    python: str
    in_docker: bool  # the cell runs in an image (docker backend): the job needs a Docker Engine


def jobs(plan: dict[str, Any], installable: set[str]) -> list[Job]:
    """The export and load jobs of a plan (`sandbox plan --json`): one of each
    per cell that is not skipped, in the plan's order. `installable`: the
    Pythons a runner can install (uv's downloads); a cell on another one
    runs in its image, with a Docker Engine."""
    found = []
    for stage in ("export", "load"):
        for cell in (c for c in plan["cells"] if not c["skip"]):
            minor = ".".join(str(cell["python"]).split(".")[:2])
            explicit = cell["backend"] == "docker" and not cell["in_python_image"]  # backend = "docker" in the matrix
            in_docker = explicit or (bool(plan.get("python_image")) and minor not in installable)
            found.append(Job(stage, cell["id"], minor, in_docker))
    return found


def github(plan: dict[str, Any], installable: set[str]) -> dict[str, Any]:
    """The job matrix of matrix.yml's export and load jobs (`strategy.matrix`)."""
    return {"include": [{"cell": j.cell, "python": j.python} for j in jobs(plan, installable) if j.stage == "export"]}


def gitlab(plan: dict[str, Any], installable: set[str], propose: bool = False,
           docker_service: str = DOCKER_SERVICE) -> dict[str, Any]:
    """The child pipeline: parallel:matrix export and load jobs, then merge,
    then (with `propose`) the proposal of a changed report. Jobs of cells that
    run in an image get `docker_service` ("": the runner's own engine, as a
    shell runner with Docker has)."""
    found = jobs(plan, installable)
    pipeline: dict[str, Any] = {
        "stages": ["export", "load", "merge", *(["propose"] if propose else [])],
        "variables": {"MATRIX": plan["matrix"], "NAME": plan["name"],
                      "SANDBOX_STORE_DIR": STORE},  # the job's folder is its working folder
        "default": {"image": GITLAB_IMAGE},
    }
    for stage in ("export", "load"):
        for in_docker in (False, True):
            group = [j for j in found if j.stage == stage and j.in_docker == in_docker]
            if group:
                pipeline[_name(stage, in_docker)] = _cell_job(stage, group, in_docker and docker_service, found)
    pipeline["merge"] = {"stage": "merge", "script": [*STEPS["setup"], *STEPS["merge"]],
                         "artifacts": {"paths": ["merged/"], "expire_in": EXPIRE, "when": "always"}}
    if propose:
        pipeline["propose"] = {"stage": "propose", "needs": ["merge"], "variables": {"GIT_DEPTH": "0"},
                               "script": [*STEPS["setup"], *STEPS["propose"]]}
    return pipeline


def _name(stage: str, in_docker: bool) -> str:
    return f"{stage}:docker" if in_docker else stage


def _cell_job(stage: str, group: list[Job], service: str | bool, every: list[Job]) -> dict[str, Any]:
    job: dict[str, Any] = {
        "stage": stage,
        "parallel": {"matrix": [{"CELL": j.cell, "PYTHON": j.python} for j in group]},
        "script": [*(DIND if service else ()), *STEPS["setup"], *STEPS["python"], *STEPS[stage]],
        "cache": {"key": f"sandbox-{stage}-$CELL", "paths": [f"{STORE}/"]},
        "artifacts": {"paths": [f"bundles/{stage}-$CELL/"], "expire_in": EXPIRE},
    }
    if stage == "load":  # every export bundle (GitLab allows 50 needs: the map has 26 cells)
        job["needs"] = sorted({_name("export", j.in_docker) for j in every if j.stage == "export"})
    if service:
        job["services"] = [service]
        job["variables"] = {"DOCKER_TLS_CERTDIR": ""}
    return job
