"""The results store on real TensorFlow: an unchanged re-run measures nothing
(and imports no TF), a new cell costs only its new pairs, an edited probe
only its own exports and loads; shards (export / load / merge as separate
processes with separate stores) give the run's results."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sandbox_cli import comparable, results, uncertain
from sandbox_cli import sandbox as run_sandbox

pytestmark = pytest.mark.real

PROBES = '''
import numpy as np
from probes import Probe


class Scale(Probe):
    name = "scale"
    input_shape = (2, 3)

    def init_params(self, rng):
        return {"w": rng.normal(0.0, 0.5, (3, 3)).astype(np.float32)}

    def forward(self, tf, params, x):
        return tf.matmul(x, params["w"]) * 2.0


class Shift(Probe):
    name = "shift"
    input_shape = (2, 3)

    def init_params(self, rng):
        return {"b": rng.normal(0.0, 0.5, (3,)).astype(np.float32)}

    def forward(self, tf, params, x):
        return x + params["b"]


PROBES = [Scale(), Shift()]
'''

MATRIX = """
name = "inc"
tensorflow = ["1.15"]
python = "3.7"
probe_modules = ["probes.py"]
probes = ["scale", "shift"]
formats = ["frozen_graph", "saved_model_tf1"]
[[include]]
tensorflow = "2.18"
python = "3.11"
"""
NEW_CELL = """
[[include]]
tensorflow = "2.12"
python = "3.11"
"""
TALLY = re.compile(r"measured (\d+) exports, (\d+) loads, (\d+) registries; reused (\d+) exports, (\d+) loads")


def sandbox(args: list[str], cwd: Path, expect: int = 0, env: dict[str, str] | None = None) -> Any:
    """sandbox with this module's own results store (unless `env` names
    another): what other tests measured (registries of the same cells) must
    not be reused here, where the counts are the point."""
    return run_sandbox(args, cwd, expect=expect, env={"SANDBOX_STORE_DIR": str(cwd / "store"), **(env or {})})


def tally(stdout: str) -> tuple[int, ...]:
    found = TALLY.search(stdout)
    assert found, stdout
    return tuple(int(n) for n in found.groups())


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inc")
    (folder / "probes.py").write_text(PROBES)
    (folder / "matrix.toml").write_text(MATRIX)
    return folder


@pytest.fixture(scope="module")
def first(work: Path) -> dict[str, Any]:
    done = sandbox(["run", "matrix.toml"], work)
    # 2 cells x 2 probes x 2 formats exported; each artifact loaded by its format's loaders
    # (frozen_graph: 1, saved_model: 2) in both cells: 2 producers x 2 probes x 3 x 2 consumers
    assert tally(done.stdout) == (8, 24, 2, 0, 0)
    # a pipe gets one line per cell phase, never one per load
    lines = done.stdout.splitlines()
    assert len(lines) < 40, done.stdout
    for cell in ("tf1.15.5-py3.7-cpu", "tf2.18.1-py3.11-cpu"):
        phases = [l.split()[3] for l in lines if l.startswith("[") and l.split()[2] == cell]
        assert sorted(p for p in phases if p != "witness") == ["export", "load", "provision"], done.stdout
    assert "witnesses of " in done.stdout  # each finding re-run by its witness, in its consumer
    assert "loads: " in done.stdout and "2 cells in " in done.stdout
    shutil.copy(work / "reports" / "inc" / "results.json", work / "first.json")
    return results(work, "inc")


def test_an_unchanged_rerun_measures_nothing_imports_no_tf_and_gives_the_same_results(
        work: Path, first: dict[str, Any]) -> None:
    logs = {p: p.stat().st_mtime_ns for p in (work / "runs" / "inc").rglob("*.log")}
    done = sandbox(["run", "matrix.toml", "-v"], work)
    assert tally(done.stdout) == (0, 0, 0, 8, 24)
    assert "provision" not in done.stdout  # no environment was even looked at
    # no command ran in any cell: the run folder's logs are the first run's, untouched
    assert {p: p.stat().st_mtime_ns for p in (work / "runs" / "inc").rglob("*.log")} == logs
    again = results(work, "inc")
    assert {k: v for k, v in again.items() if k != "created"} == {k: v for k, v in first.items() if k != "created"}
    diff = sandbox(["diff", "first.json", "reports/inc/results.json"], work)
    assert "no changes" in diff.stdout


def test_an_edited_probe_measures_only_that_probe(work: Path, first: dict[str, Any]) -> None:
    (work / "probes.py").write_text(PROBES.replace("return x + params[\"b\"]", "return x - params[\"b\"]"))
    try:
        done = sandbox(["run", "matrix.toml"], work)
    finally:
        (work / "probes.py").write_text(PROBES)
    # only `shift`: 2 cells x 2 formats exported, 2 producers x 3 loads x 2 consumers
    assert tally(done.stdout) == (4, 12, 0, 4, 12)
    edited = results(work, "inc")
    before = {(a["producer"], a["probe"], a["format"]): a["ops"] for a in first["artifacts"]}
    after = {(a["producer"], a["probe"], a["format"]): a["ops"] for a in edited["artifacts"]}
    assert {k for k in before if before[k] != after[k]} <= {k for k in before if k[1] == "shift"}
    assert any("Sub" in ops for (_, probe, _), ops in after.items() if probe == "shift")


def test_a_new_cell_costs_only_its_export_and_its_new_pairs(work: Path, first: dict[str, Any]) -> None:
    sandbox(["run", "matrix.toml"], work)  # back to the first state (the store has it)
    (work / "matrix.toml").write_text(MATRIX + NEW_CELL)
    try:
        done = sandbox(["run", "matrix.toml"], work)
    finally:
        (work / "matrix.toml").write_text(MATRIX)
    # its 4 exports and registry; loads: the 2N+1 new pairs (N = 2) x 2 probes x 3 loader-formats
    assert tally(done.stdout) == (4, 5 * 2 * 3, 1, 8, 24)


def test_shards_give_the_results_of_one_run(work: Path, first: dict[str, Any], tmp_path: Path) -> None:
    plan = json.loads(sandbox(["plan", "matrix.toml", "--json"], work).stdout)
    cells = [c["id"] for c in plan["cells"]]
    assert len(cells) == 2 and all(c["skip"] is None for c in plan["cells"])
    shard = tmp_path / "shard"

    def machine(name: str) -> dict[str, str]:
        """Every job on a machine of its own: its own cache (environments built
        anew, in other folders) and its own results store."""
        return {"SANDBOX_CACHE_DIR": str(tmp_path / name), "SANDBOX_STORE_DIR": str(tmp_path / name / "store")}

    for cell in cells:
        sandbox(["export", "matrix.toml", "--cell", cell, "--out", str(shard / f"export-{cell}")], work,
                env=machine(f"export-{cell}"))
    exports = [str(shard / f"export-{c}") for c in cells]
    for cell in cells:
        sandbox(["load", "matrix.toml", "--cell", cell, "--bundles", *exports, "--out", str(shard / f"load-{cell}")],
                work, env=machine(f"load-{cell}"))
    sandbox(["merge", *exports, *[str(shard / f"load-{c}") for c in cells], "--reports", str(tmp_path / "reports")],
            work, env=machine("merge"))
    # the merge job then witnesses the findings, from the export bundles' artifacts (environments
    # from this machine's cache, to save building them again)
    witnessed = sandbox(["witness", str(tmp_path / "reports" / "inc"), "--matrix", "matrix.toml", "--bundles", *exports],
                        work, env={"SANDBOX_STORE_DIR": str(tmp_path / "merge" / "store")})
    assert "witnesses of " in witnessed.stdout
    merged = json.loads((tmp_path / "reports" / "inc" / "results.json").read_text())
    # TF 1.x names the first of several unknown attrs in no fixed order (grad_a or grad_b):
    # the error's text and named ops may differ between two measurements; sandbox diff knows
    assert uncertain(comparable(merged)) == uncertain(comparable(first))
    assert {w["outcome"] for w in merged["witnesses"]} == {w["outcome"] for w in first["witnesses"]} == {"reproduced"}
    assert "no changes" in sandbox(["diff", "first.json", str(tmp_path / "reports" / "inc")], work).stdout

    # bundles that are not what they claim are refused, with one line
    edited = tmp_path / "edited"
    shutil.copytree(shard / f"export-{cells[0]}", edited)
    data = json.loads((edited / "bundle.json").read_text())
    data["state"]["status"] = "error"
    (edited / "bundle.json").write_text(json.dumps(data))
    done = sandbox(["merge", str(edited)], work, expect=2)
    assert "digest does not match" in done.stderr and "Traceback" not in done.stderr
    (work / "other.toml").write_text(MATRIX.replace('"inc"', '"other"'))
    done = sandbox(["load", "other.toml", "--cell", cells[0], "--bundles", *exports, "--out", str(tmp_path / "x")],
                   work, expect=2)
    assert "another matrix" in done.stderr and len(done.stderr.strip().splitlines()) == 1
