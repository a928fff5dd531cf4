"""`sandbox diff` on a recorded real results.json and copies of it edited in
documented ways (the diff of two genuinely different real runs is in
test_real_matrix.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from results_schema import assert_valid

from sandbox import cli
from sandbox.report import diff, document
from sandbox.report.redact import redact

RECORDED = Path(__file__).parent / "data" / "default-results.json"
TF113, TF115, TF218 = "tf1.13.2-py3.7-cpu", "tf1.15.5-py3.7-cpu", "tf2.18.1-py3.11-cpu"


@pytest.fixture
def old() -> dict[str, Any]:
    return document.load(RECORDED)


def find(results: dict[str, Any], producer: str, consumer: str, probe: str, fmt: str, loader: str) -> dict[str, Any]:
    key = (producer, consumer, probe, fmt, loader)
    found: list[dict[str, Any]] = [
        l for l in results["loads"] if (l["producer"], l["consumer"], l["probe"], l["format"], l["loader"]) == key]
    assert len(found) == 1
    return found[0]


def write(tmp_path: Path, name: str, results: dict[str, Any]) -> Path:
    assert_valid(results)
    path = tmp_path / name / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(results))
    return path


def test_a_run_against_itself_has_no_changes(tmp_path: Path, old: dict[str, Any],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert diff.diff(old, old) == []
    assert cli.main(["diff", str(RECORDED), str(RECORDED)]) == 0
    assert capsys.readouterr().out.strip() == "no changes"


def test_a_load_that_newly_fails_is_reported_and_exits_1(tmp_path: Path, old: dict[str, Any],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # The edit: TF 2.18 loaded TF 1.13's frozen batch_matmul fine; make that load fail.
    new = copy.deepcopy(old)
    load = find(new, TF113, TF218, "batch_matmul", "frozen_graph", "import_graph_def")
    assert load["status"] == "ok"
    load.update(status="load-error", error_type="NotFoundError", error="Op type not registered 'MatMul' in binary",
                category="op-not-registered", names=["MatMul"], max_abs_err=None, max_rel_err=None)
    changes = diff.diff(old, new)
    assert [(c.kind, c.where, c.probe, c.format, c.old, c.new) for c in changes] == [
        (diff.NEWLY_FAILING, f"{TF113} → {TF218}", "batch_matmul", "frozen_graph", "ok", "load-error")]
    # report folders work as well as results.json files
    assert cli.main(["diff", str(RECORDED), str(write(tmp_path, "new", new).parent)]) == 1
    out = capsys.readouterr().out
    assert "newly failing" in out and "Op type not registered 'MatMul'" in out and "1 newly failing" in out


def test_newly_working_error_changed_and_cells(old: dict[str, Any]) -> None:
    new = copy.deepcopy(old)
    fixed = find(new, TF115, TF113, "batchnorm", "saved_model_tf1", "tf1_session")
    assert fixed["status"] == "load-error"
    fixed.update(status="ok", error=None, error_type=None, category=None, names=[], max_abs_err=0.0)
    changed = find(new, TF218, TF113, "batch_matmul", "frozen_graph", "import_graph_def")
    changed.update(error="Op type not registered 'BatchMatMulV3' in binary running on vm.", names=["BatchMatMulV3"])
    deep = find(new, TF218, TF115, "batchnorm", "saved_model", "tf1_session")
    deep["error"] += "\n(a different traceback tail: not a change)"
    new["cells"] = [c for c in new["cells"] if c["id"] != "tf1.14.0-py3.7-cpu"]
    new["loads"] = [l for l in new["loads"] if "tf1.14.0-py3.7-cpu" not in (l["producer"], l["consumer"])]
    changes = diff.diff(old, new)
    assert [(c.kind, c.where) for c in changes] == [
        (diff.ERROR_CHANGED, f"{TF218} → {TF113}"), (diff.NEWLY_WORKING, f"{TF115} → {TF113}"),
        (diff.REMOVED_CELL, "tf1.14.0-py3.7-cpu")]
    assert not diff.gates(changes)
    assert "BatchMatMulV3" in diff.render(changes) and "1 removed cell" in diff.render(changes)


def test_a_cell_that_stops_working_gates(old: dict[str, Any]) -> None:
    new = copy.deepcopy(old)
    new["cells"][0].update(status="install-failed", reason="installing tensorflow==1.13.2 failed")
    new["loads"] = [l for l in new["loads"] if new["cells"][0]["id"] not in (l["producer"], l["consumer"])]
    changes = diff.diff(old, new)
    assert diff.gates(changes)
    assert changes[0].kind == diff.CELL_BROKE and changes[0].detail == "installing tensorflow==1.13.2 failed"
    assert len(changes) == 1  # the cell's row stands for its loads


@pytest.mark.parametrize("content", [None, "{oops", '{"schema_version": 7}'])
def test_unreadable_input_is_one_line_exit_2(tmp_path: Path, content: str | None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "results.json"
    if content is not None:
        bad.write_text(content)
    assert cli.main(["diff", str(RECORDED), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sandbox: error: ") and err.count("\n") == 1 and str(bad) in err


def test_naming_another_of_the_same_missing_attrs_is_not_a_change(old: dict[str, Any]) -> None:
    # Real: TF 1.15 reports BatchMatMulV2's 'grad_x' or 'grad_y' first, from run to run.
    new = copy.deepcopy(old)
    load = find(new, TF218, TF115, "batch_matmul", "frozen_graph", "import_graph_def")
    assert {"BatchMatMulV2.grad_x", "BatchMatMulV2.grad_y"} <= set(load["static"]["missing_attrs"])
    other = "grad_y" if load["names"] == ["BatchMatMulV2.grad_x"] else "grad_x"
    load["names"] = [f"BatchMatMulV2.{other}"]
    load["error"] = f"NodeDef mentions attr '{other}' not in Op<name=BatchMatMulV2; signature=x:T, y:T -> output:T>"
    assert diff.diff(old, new) == []


def test_paths_in_errors_are_not_changes() -> None:
    from sandbox.report.diff import _signature
    long_tail = " Keras 3 only supports V3 `.keras` files" + "x" * 400
    old: dict[str, Any] = {"status": "load-error", "category": "other", "names": [], "static": None,
           "error": "File format not supported: filepath=/work/main/runs/default/cells/a/artifacts/lstm/m." + long_tail}
    new = {**old, "error": "File format not supported: filepath=/tmp/pytest-7/e2e0/runs/e2e/cells/a/artifacts/lstm/m." + long_tail}
    assert _signature(old) == _signature(new)
    # a model in the results store (redacted to a placeholder) is the same model
    stored = {**old, "error": "File format not supported: filepath=<tmp>/sandbox-store-x/v1/exports/0e/0e9c/files/m." + long_tail}
    assert _signature(old) == _signature(stored)
    assert _signature(old) != _signature({**old, "error": "Some other error"})


def test_an_op_the_static_model_now_tolerates_is_not_a_change(old: dict[str, Any]) -> None:
    # Real: for TF 1.13 consumers DisableCopyOnRead (only in a 2.x save function)
    # moved from missing_ops to tolerated_ops when the static model learnt that
    # 1.13 checks function bodies only when they run; the load failed as before.
    load = find(old, TF218, TF113, "batchnorm", "saved_model", "tf1_session")
    assert "DisableCopyOnRead" in load["static"]["tolerated_ops"] and load["status"] == "load-error"
    before = copy.deepcopy(old)
    static = find(before, TF218, TF113, "batchnorm", "saved_model", "tf1_session")["static"]
    static["tolerated_ops"].remove("DisableCopyOnRead")
    static["missing_ops"].append("DisableCopyOnRead")
    assert diff.diff(before, old) == []


def test_a_redacted_report_is_the_same_run(old: dict[str, Any]) -> None:
    assert "running on vm" in json.dumps(old)  # the recording names its host: redaction changes error texts
    assert diff.diff(old, redact(old)) == [] and diff.diff(redact(old), old) == []


def test_cells_are_listed_in_version_order(old: dict[str, Any]) -> None:
    """Text order put tf2.10 before tf2.2."""
    new = copy.deepcopy(old)
    for version, python in (("2.10.1", "3.10"), ("2.2.3", "3.8"), ("2.9.3", "3.10")):
        new["cells"].append({**new["cells"][0], "id": f"tf{version}-py{python}-cpu", "tensorflow": version})
    assert [c.where for c in diff.diff(old, new)] == ["tf2.2.3-py3.8-cpu", "tf2.9.3-py3.10-cpu", "tf2.10.1-py3.10-cpu"]
