"""Witnesses on real TensorFlow (issue 16, part 4): a run of TF 1.15 and 2.18
ends by re-running every grouped finding with its standalone script in the
consumer's environment. Known incompatibilities (2.18's SavedModels and frozen
graphs in 1.15: unknown attrs) are reproduced; findings made by a loader that
is broken on purpose (tests/data/sabotaged_probes.py) are not, and the run
says so (exit 4). The scripts run as printed, outside sandbox, and give the
producer's outputs where a load works; an unchanged re-run runs none."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from results_schema import assert_valid
from sandbox_cli import results as read_results
from sandbox_cli import sandbox

from sandbox import runner
from sandbox.cli import planning
from sandbox.envs import environment
from sandbox.records import LoadStatus
from sandbox.report.document import LoadRow, ResultsDocument
from sandbox.store import ResultsStore
from sandbox.witness import runs

pytestmark = pytest.mark.real

SABOTAGED = Path(__file__).resolve().parent / "data" / "sabotaged_probes.py"
MATRIX = f"""
name = "witness"
probes = ["batchnorm", "sabotaged"]
probe_modules = ["{SABOTAGED}"]
formats = ["saved_model", "frozen_graph", "keras_h5", "keras_v3", "tflite", "checkpoint"]
[[include]]
tensorflow = "1.15"
python = "3.7"
[[include]]
tensorflow = "2.18"
python = "3.11"
"""
OLD, NEW = "tf1.15.5-py3.7-cpu", "tf2.18.1-py3.11-cpu"
UNKNOWN_ATTR = re.compile(r"NodeDef mentions attr '(\w+)' not in Op<name=(\w+);")
BROKEN = {"load-error", "run-error", "crash", "timeout"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("witness")


@pytest.fixture(scope="module")
def first(work: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    (work / "matrix.toml").write_text(MATRIX)
    done = sandbox(["run", "matrix.toml"], work, expect=4)  # the sabotaged findings are bugs of ours
    found = read_results(work, "witness")
    assert_valid(found)
    assert {c["id"]: c["status"] for c in found["cells"]} == {OLD: "ok", NEW: "ok"}
    return done, found


@pytest.fixture(scope="module")
def results(first: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> dict[str, Any]:
    return first[1]


def witness(results: dict[str, Any], producer: str, consumer: str, probe: str, fmt: str) -> dict[str, Any]:
    found: dict[str, Any]
    [found] = [w for w in results["witnesses"] if (w["producer"], w["consumer"], w["probe"], w["format"])
               == (producer, consumer, probe, fmt)]
    return found


def the_load(results: dict[str, Any], w: dict[str, Any]) -> dict[str, Any]:
    keys = ("consumer", "producer", "probe", "format", "loader")
    found: dict[str, Any]
    [found] = [l for l in results["loads"] if all(l[k] == w[k] for k in keys)]
    return found


def test_known_incompatibilities_are_witnessed_in_the_consumer_and_reproduced(results: dict[str, Any]) -> None:
    for fmt, op in (("saved_model", "VarHandleOp"), ("frozen_graph", "FusedBatchNormV3")):
        w = witness(results, NEW, OLD, "batchnorm", fmt)
        assert (w["outcome"], w["status"]) == ("reproduced", "load-error"), w
        # read off the witness's own error: the op is the one the load named, its attr one the consumer lacks
        attr, named_op = UNKNOWN_ATTR.search(w["error"]).groups()  # type: ignore[union-attr]
        load = the_load(results, w)
        assert named_op == op and f"{op}.{attr}" in load["static"]["missing_attrs"]
        assert w["where"].startswith(f"<cache>/envs/{OLD}-")  # raised inside TF 1.15, in its environment
        assert "import tensorflow as tf" in w["script"] and "sandbox" not in w["script"].split('"""')[-1]


def test_a_finding_made_by_a_broken_loader_is_not_reproduced_and_the_run_says_so(
        first: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    done, results = first
    sabotaged = [w for w in results["witnesses"] if "MatMul.sabotaged" in w["finding"]]
    assert sabotaged and {w["outcome"] for w in sabotaged} == {"loads"}
    assert all(w["status"] == "ok" and w["max_abs_err"] is not None for w in sabotaged)  # compared to the reference
    assert "not reproduced (a bug of ours): MatMul.sabotaged (unknown-attr, ValueError): the plain load works and " \
           "gives the producer's outputs" in done.stdout
    # no real finding is refuted
    assert {w["outcome"] for w in results["witnesses"] if w not in sabotaged} <= {"reproduced", "beyond-reach"}


def test_every_finding_has_one_witness_of_one_of_its_loads(results: dict[str, Any]) -> None:
    bad = [l for l in results["loads"] if l["status"] in BROKEN or l["status"] == "outputs-differ"]
    findings = {(l["status"] == "outputs-differ", l["category"], l["error_type"], tuple(l["names"]),
                 l["probe"] if l["status"] == "outputs-differ" else "") for l in bad}
    assert len(results["witnesses"]) == len(findings) >= 3
    for w in results["witnesses"]:
        assert the_load(results, w)["status"] in BROKEN | {"outputs-differ"}


def test_the_script_runs_as_printed_outside_sandbox(work: Path, results: dict[str, Any]) -> None:
    w = witness(results, NEW, OLD, "batchnorm", "frozen_graph")
    script = work / "witness.py"
    script.write_text(w["script"])
    model = work / "runs" / "witness" / "cells" / NEW / "artifacts" / "batchnorm" / "frozen_graph" / "model.pb"
    inputs = model.parent.resolve().parent / "inputs.npz"  # the run folder links the model's folder into the store
    _, cells = planning.resolve(work / "matrix.toml", offline=True)
    python = {c.id: environment(c).python for c in cells}  # type: ignore[attr-defined]
    old = subprocess.run([str(python[OLD]), str(script), str(model), str(inputs)], capture_output=True, text=True,
                         timeout=600)
    assert old.returncode != 0 and "exponential_avg_factor" in old.stderr and "loaded" not in old.stdout
    new = subprocess.run([str(python[NEW]), str(script), str(model)], capture_output=True, text=True, timeout=600)
    assert new.returncode == 0, new.stderr
    assert "loaded" in new.stdout and "outputs (2, 6, 6, 4)" in new.stdout  # on zeros of the input's shape


def test_witnesses_of_loads_that_work_give_the_producers_outputs(work: Path, results: dict[str, Any]) -> None:
    """Every loader's script, on a load the agent measured ok: it must load and match the reference too."""
    ok: dict[str, LoadRow] = {}
    for load in ResultsDocument.from_json(results).loads:
        if load.status is LoadStatus.OK and load.probe == "batchnorm":
            ok.setdefault(str(load.loader), load)
    assert set(ok) >= {"tf1_session", "tf2_load", "import_graph_def", "keras2", "keras3", "tflite_interpreter",
                       "checkpoint_restore"}, set(ok)
    mx, cells = planning.resolve(work / "matrix.toml", offline=True)
    run = runner.Run(mx, cells, work / "runs" / "witness-ok", 2, lambda event: None, ResultsStore())
    items = [runs.Item(f"ok by {loader}", load) for loader, load in ok.items()]
    runs.witness(items, run)
    for item in items:
        assert item.result is not None
        assert item.result["status"] == "ok", (item.load.loader, item.result)
        assert item.result["compared"] is (item.load.loader != "checkpoint_restore"), item.result


def test_an_unchanged_rerun_runs_no_witness_and_the_verb_adds_them_from_the_store(
        work: Path, results: dict[str, Any]) -> None:
    stored = sorted((p, p.stat().st_mtime_ns) for p in ResultsStore().root.glob("witnesses/*/*.json"))
    assert len(stored) >= len(results["witnesses"])
    again = sandbox(["run", "matrix.toml"], work, expect=4)
    assert "witness   measured" not in again.stdout and "witnesses of" in again.stdout
    assert read_results(work, "witness")["witnesses"] == results["witnesses"]
    verb = sandbox(["witness", "reports/witness", "--offline"], work, expect=4)
    assert "witness   measured" not in verb.stdout and "not reproduced (a bug of ours): MatMul.sabotaged" in verb.stdout
    assert sorted((p, p.stat().st_mtime_ns) for p in ResultsStore().root.glob("witnesses/*/*.json")) == stored
    page = (work / "reports" / "witness" / "index.html").read_text()
    assert page.count("reproduce this") == len(results["witnesses"])
    assert re.search(r"\|\s*witness\s*\|", (work / "reports" / "witness" / "index.md").read_text())
