"""End to end on real TensorFlow in real virtualenvs: the classic failures of
the seed stories must show up in results.json, and their reverse must work.
One run of four cells (Keras 2.2, 2.12 and 3; TFLite 1.13 to 2.18) with every
probe and format serves every test."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from results_schema import assert_valid
from sandbox_cli import artifact, run_matrix, sandbox

from sandbox import cli
from sandbox.check import graphfile, verdicts
from sandbox.classify import FAILED

pytestmark = pytest.mark.real

# The probes and formats of the recorded default run (tests/data), which the
# diff test compares with; the newer ones are measured in test_real_paths.py.
MATRIX = """
name = "e2e"
tensorflow = ["1.13", "1.15"]
python = "3.7"
probes = ["batchnorm", "batch_matmul", "conv2d", "dense", "lstm", "gru", "einsum", "layernorm", "attention",
          "bn_inference"]
formats = ["saved_model", "saved_model_tf1", "frozen_graph", "keras_saved_model", "keras_h5", "keras_v3", "tflite",
           "checkpoint"]
[[include]]
tensorflow = "2.12"
python = "3.11"
[[include]]
tensorflow = "2.18"
python = "3.11"
"""
TF113, TF115 = "tf1.13.2-py3.7-cpu", "tf1.15.5-py3.7-cpu"
TF212, TF218 = "tf2.12.1-py3.11-cpu", "tf2.18.1-py3.11-cpu"
CELLS = (TF113, TF115, TF212, TF218)


@pytest.fixture(scope="module")
def run_dir(results: dict[str, Any], work: Path) -> Path:
    return work / "runs" / "e2e" / "cells"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def results(work: Path) -> dict[str, Any]:
    done, found = run_matrix(work, MATRIX, "e2e")
    assert "report: " in done.stdout
    for name in ("index.md", "index.html", "junit.xml"):
        assert (work / "reports" / "e2e" / name).exists(), name
    assert_valid(found)
    return found


def loads(results: dict[str, Any], producer: str, consumer: str, probe: str, fmt: str,
          loader: str | None = None) -> list[dict[str, Any]]:
    found = [l for l in results["loads"] if (l["producer"], l["consumer"], l["probe"], l["format"])
             == (producer, consumer, probe, fmt) and l["status"] != "not-applicable"
             and loader in (None, l["loader"])]
    assert found, f"no load of {producer}/{probe}/{fmt} in {consumer}"
    return found


def test_every_cell_is_healthy_and_no_export_is_a_harness_error(results: dict[str, Any]) -> None:
    assert {c["id"]: c["status"] for c in results["cells"]} == dict.fromkeys(CELLS, "ok")
    assert [a for a in results["artifacts"] if a["status"] in ("error", "harness-error")] == []
    assert [l for l in results["loads"] if l["category"] == "other" or l["status"] == "harness-error"] == []
    failed = [l for l in results["loads"] if l["category"]]
    assert all(l["names"] for l in failed), {(l["category"], l["error"][:80]) for l in failed if not l["names"]}


def test_every_probe_and_format_is_exercised(results: dict[str, Any]) -> None:
    exported = {(a["probe"], a["format"]) for a in results["artifacts"] if a["status"] == "exported"}
    assert {p for p, _ in exported} == set(results["probes"])
    assert {f for _, f in exported} == set(results["formats"])
    assert {l["loader"] for l in results["loads"] if l["status"] == "ok"} == {
        "tf1_session", "tf2_load", "import_graph_def", "keras2", "keras3", "tflite_interpreter", "checkpoint_restore"}


def test_fused_batch_norm_v3_from_1_15_fails_in_1_13(results: dict[str, Any]) -> None:
    [saved] = loads(results, TF115, TF113, "batchnorm", "saved_model_tf1")
    assert (saved["status"], saved["category"], saved["names"]) == ("load-error", "op-not-registered", ["FusedBatchNormV3"])
    # The frozen graph trips over a Conv2D attr first; the static check still names the missing op.
    [frozen] = loads(results, TF115, TF113, "batchnorm", "frozen_graph")
    assert frozen["status"] == "load-error" and frozen["names"] == ["Conv2D.explicit_paddings"]
    assert "FusedBatchNormV3" in frozen["static"]["missing_ops"]
    assert "Conv2D.explicit_paddings" in frozen["static"]["missing_attrs"]


def test_batch_matmul_v2_fails_where_the_consumer_predates_it(results: dict[str, Any]) -> None:
    for producer in (TF115, TF218):
        [frozen] = loads(results, producer, TF113, "batch_matmul", "frozen_graph")
        assert "Op type not registered 'BatchMatMulV2'" in frozen["error"]
        assert frozen["names"] == ["BatchMatMulV2"] and frozen["static"]["missing_ops"] == ["BatchMatMulV2"]
    [frozen] = loads(results, TF115, TF115, "batch_matmul", "frozen_graph")
    assert frozen["status"] == "ok"


def test_debug_name_attr_of_a_recent_saved_model_fails_in_tf1(results: dict[str, Any]) -> None:
    for consumer in (TF113, TF115):
        [saved] = loads(results, TF218, consumer, "batchnorm", "saved_model")
        assert saved["status"] == "load-error" and saved["category"] == "unknown-attr"
        assert "NodeDef mentions attr 'debug_name' not in Op<name=VarHandleOp" in saved["error"]
        assert "VarHandleOp.debug_name" in saved["static"]["missing_attrs"]
    # TF 2.12 does not know the attr either, ignores it, and the static check says so
    [tf2] = loads(results, TF218, TF212, "batchnorm", "saved_model", "tf2_load")
    assert tf2["status"] == "ok" and "VarHandleOp.debug_name" in tf2["static"]["tolerated_attrs"]


def test_the_static_check_names_every_missing_op_of_an_artifact_lacking_several(results: dict[str, Any]) -> None:
    # TF 1.13 stops at the first problem (debug_name); the static check names them all
    # (DisableCopyOnRead only as tolerated: it sits in the save function, which 1.13 never checks)
    [saved] = loads(results, TF218, TF113, "batchnorm", "saved_model", "tf1_session")
    assert saved["names"] == ["VarHandleOp.debug_name"]
    assert saved["static"]["missing_ops"] == ["FusedBatchNormV3"]
    assert saved["static"]["missing_attrs"] == ["VarHandleOp.debug_name"]
    assert saved["static"]["tolerated_ops"] == ["DisableCopyOnRead"]


def test_a_keras3_file_fails_in_keras2_with_a_keras_error(results: dict[str, Any]) -> None:
    assert artifact(results, TF218, "dense", "keras_v3")["writer"].startswith("keras 3.")
    for probe in ("dense", "batchnorm", "lstm"):
        [load] = loads(results, TF218, TF212, probe, "keras_v3", "keras2")
        assert (load["status"], load["category"]) == ("load-error", "keras-deserialization")
        assert load["names"] == ["Functional"] and "keras.src.models.functional" in load["error"]
    # ... while Keras 2.12 reads its own .keras files
    [own] = loads(results, TF212, TF212, "dense", "keras_v3", "keras2")
    assert own["status"] == "ok"


def test_a_recent_tflite_model_fails_in_an_old_interpreter_naming_the_op(results: dict[str, Any]) -> None:
    written = artifact(results, TF218, "einsum", "tflite")["tflite_ops"]
    for consumer in (TF113,):
        [load] = loads(results, TF218, consumer, "einsum", "tflite")
        assert (load["status"], load["category"]) == ("load-error", "tflite-op-version")
        assert "Didn't find op for builtin opcode 'FULLY_CONNECTED' version" in load["error"]
        assert load["names"] == [f"FULLY_CONNECTED@v{written['FULLY_CONNECTED']}"]
    # an op newer than the interpreter's schema: named from its code
    [lstm] = loads(results, TF218, TF113, "lstm", "tflite")
    assert lstm["category"] == "tflite-op-version" and lstm["names"] == ["WHILE"]
    [back] = loads(results, TF113, TF218, "dense", "tflite")
    assert back["status"] == "ok"


def test_a_checkpoint_round_trip_keeps_batchnorm_outputs_equal(results: dict[str, Any]) -> None:
    for producer in CELLS:
        for consumer in CELLS:
            for probe in ("batchnorm", "bn_inference"):
                [load] = loads(results, producer, consumer, probe, "checkpoint")
                assert load["status"] == "ok", load
                assert load["max_abs_err"] < load["atol"]


def test_batchnorm_mistakes_would_show_as_outputs_differ(results: dict[str, Any]) -> None:
    # seeds/004: BatchNorm run in training mode, or with lost moving statistics,
    # computes outputs far outside the tolerance the loads are judged by.
    atol = results["tolerances"]["bn_inference"]["atol"]
    for producer in CELLS:
        trained = artifact(results, producer, "bn_inference", "checkpoint")["trained"]
        assert trained["trained"] is True
        assert min(trained["mistake_max_abs_err"].values()) > 100 * atol
    for load in results["loads"]:
        if load["probe"] == "bn_inference" and load["status"] == "ok":
            assert load["max_abs_err"] < atol


def test_the_reverse_direction_works_with_equal_outputs(results: dict[str, Any]) -> None:
    for producer, consumer in ((TF113, TF115), (TF113, TF218), (TF115, TF218)):
        for probe in ("batchnorm", "batch_matmul"):
            for fmt in ("saved_model_tf1", "frozen_graph"):
                for load in loads(results, producer, consumer, probe, fmt):
                    assert load["status"] == "ok", load
                    assert load["max_abs_err"] is not None and load["max_abs_err"] < 1e-4


def test_batchnorm_was_trained_before_export(results: dict[str, Any]) -> None:
    # moving statistics that never left 0/1 would hide the training-mode mistake
    exported = [a for a in results["artifacts"] if a["probe"] == "batchnorm" and a["status"] == "exported"]
    assert {a["producer"] for a in exported} == set(CELLS)
    for artifact_ in exported:
        assert artifact_["trained"]["trained"] is True
        assert artifact_["trained"]["max_abs_moving_mean_change"] > 1e-3


def artifact_path(run_dir: Path, producer: str, probe: str, fmt: str) -> Path:
    folder = run_dir / producer / "artifacts" / probe / fmt
    return next(folder.glob("*.pb")) if fmt == "frozen_graph" else folder


TF1_STYLE = (("tf1_session", "import_graph_def"), ("saved_model", "saved_model_tf1", "frozen_graph"))


def tf1_style(load: dict[str, Any]) -> bool:
    return load["status"] != "not-applicable" and load["loader"] in TF1_STYLE[0] and load["format"] in TF1_STYLE[1]


def test_static_check_agrees_with_every_real_tf1_style_load(results: dict[str, Any], run_dir: Path) -> None:
    """`sandbox check`'s model of the loaders, against each consumer's own registry."""
    compared, contradicted = 0, set()
    for load in filter(tf1_style, results["loads"]):
        model = graphfile.read_model(artifact_path(run_dir, load["producer"], load["probe"], load["format"]))
        registry = json.loads((run_dir / load["consumer"] / "registry.json").read_text())
        tf = next(c["tensorflow"] for c in results["cells"] if c["id"] == load["consumer"])
        verdict = verdicts.graph_verdict(model, registry, tf)
        compared += 1
        if (verdict.verdict == verdicts.WILL_FAIL) != (load["status"] in FAILED):
            contradicted.add((load["producer"], load["consumer"], load["probe"], load["format"], verdict.verdict))
    assert compared >= 200
    assert contradicted == set()


def test_collected_static_predictions_agree_with_every_real_graph_load(results: dict[str, Any]) -> None:
    """results.json's own "static" (the agent's records through the same model)."""
    compared, contradicted = 0, set()
    for load in filter(tf1_style, results["loads"]):
        static = load["static"]
        compared += 1
        if bool(static["missing_ops"] or static["missing_attrs"]) != (load["status"] in FAILED):
            contradicted.add((load["producer"], load["consumer"], load["probe"], load["format"], load["loader"]))
    assert compared >= 200
    assert contradicted == set()


def test_tf113_loads_2x_saved_models_whose_save_function_alone_lacks_an_op(results: dict[str, Any],
                                                                             run_dir: Path) -> None:
    """DisableCopyOnRead sits only in the save function, which neither serving
    nor restore calls: TF 1.13 never checks it; 1.15 checks the whole library."""
    for probe in ("dense", "conv2d", "lstm"):
        saved = artifact(results, TF212, probe, "saved_model")
        assert "DisableCopyOnRead" in saved["lazy_ops"]
        model = graphfile.read_model(artifact_path(run_dir, TF212, probe, "saved_model"))
        assert (model.lazy_ops, model.lazy_attrs) == (saved["lazy_ops"], saved["lazy_attrs"])
        [old] = loads(results, TF212, TF113, probe, "saved_model", "tf1_session")
        assert old["status"] == "ok" and old["static"]["tolerated_ops"] == ["DisableCopyOnRead"]
        [new] = loads(results, TF212, TF115, probe, "saved_model", "tf1_session")
        assert new["names"] == ["DisableCopyOnRead"] and new["static"]["missing_ops"] == ["DisableCopyOnRead"]
    # an op the serving function does call still fails, when it runs
    [einsum] = loads(results, TF212, TF113, "einsum", "saved_model", "tf1_session")
    assert einsum["status"] == "run-error" and einsum["static"]["missing_ops"] == ["Einsum"]


def test_check_cli_on_a_real_saved_model(results: dict[str, Any], run_dir: Path) -> None:
    model = artifact_path(run_dir, TF218, "batchnorm", "saved_model")
    start = time.monotonic()
    # exit 1: some target will fail
    done = sandbox(["check", str(model), "--against", "tf==1.15,tf==2.12,1.13"], run_dir, timeout=120, expect=1)
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("tf==")}
    assert "will fail" in lines["tf==1.15.5"] and "VarHandleOp.debug_name" in lines["tf==1.15.5"]
    assert "DisableCopyOnRead" in lines["tf==1.13.2"] or "debug_name" in lines["tf==1.13.2"]
    assert "should load" in lines["tf==2.12.1"]
    assert time.monotonic() - start < 30


def test_diff_against_the_recorded_default_run(results: dict[str, Any], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Two genuinely different real runs: this matrix lacks the default's TF 1.14
    and 2.18+tf-keras cells; every pair both runs share must have kept its outcome."""
    (tmp_path / "results.json").write_text(json.dumps(results))
    recorded = Path(__file__).parent / "data" / "default-results.json"
    assert cli.main(["diff", str(recorded), str(tmp_path / "results.json")]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("removed", "new", "newly", "error"))]
    # Measured since the recording: Keras SavedModels served by the SavedModel loaders
    # (new loads), and TFLite loads checked statically, so their findings are named by
    # the whole missing set rather than the error's first op ("error changed", same text);
    # and Keras refusals named by the class, keyword or format refused (classify since issue 16).
    since = [r for r in rows if (r[:2] == ["new", "load"] and r[6] == "keras_saved_model"
                                 and r[7] in ("tf1_session", "tf2_load"))
             or (r[:2] == ["error", "changed"] and r[6] == "tflite")
             or (r[:2] == ["error", "changed"] and r[6] in ("keras_h5", "keras_saved_model", "keras_v3")
                 and r[7] in ("keras2", "keras3"))]
    assert [r[:3] for r in rows if r not in since] == [
        ["removed", "cell", "tf1.14.0-py3.7-cpu"], ["removed", "cell", "tf2.18.1-py3.11-cpu+tf-keras"]], out
