"""End to end on real TensorFlow: the paths users take beyond the zoo's graph
formats (issue 11). One run of three cells serves every test:
- a Keras SavedModel served by the TF1 serving loader and tf.saved_model.load;
- a TF 2.18 cell with tf-keras writing Keras 2 files (tf_keras_* formats)
  beside Keras 3 ones, and loading its own;
- quantized TFLite (dynamic range, full integer) against older interpreters,
  with the static check against each interpreter's measured op versions;
- GPU-only kernels (CudnnRNNV3) exported on CPU, failing on a CPU consumer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sandbox_cli import artifact, healthy_run

pytestmark = pytest.mark.real

MATRIX = """
name = "paths"
probes = ["dense", "quantizable", "cudnn_lstm"]
formats = ["saved_model", "frozen_graph", "keras_saved_model", "keras_h5", "keras_v3", "tf_keras_saved_model", "tf_keras_h5",
           "tf_keras_v3", "tflite", "tflite_dynamic", "tflite_int8"]
[[include]]
tensorflow = "1.15"
python = "3.7"
[[include]]
tensorflow = "2.12"
python = "3.11"
[[include]]
tensorflow = "2.18"
python = "3.11"
packages = ["tf-keras"]
"""
TF115, TF212, TFK = "tf1.15.5-py3.7-cpu", "tf2.12.1-py3.11-cpu", "tf2.18.1-py3.11-cpu+tf-keras"
CELLS = (TF115, TF212, TFK)
KERAS_FORMATS = ("keras_saved_model", "keras_h5", "keras_v3", "tf_keras_saved_model", "tf_keras_h5", "tf_keras_v3")
TFLITE_FORMATS = ("tflite", "tflite_dynamic", "tflite_int8")
DIDNT_FIND = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)' version '(\d+)'")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("paths")


@pytest.fixture(scope="module")
def results(work: Path) -> dict[str, Any]:
    return healthy_run(work, MATRIX, "paths", CELLS)


@pytest.fixture(scope="module")
def registries(work: Path, results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import json
    return {c: json.loads((work / "runs" / "paths" / "cells" / c / "registry.json").read_text()) for c in CELLS}


def load(results: dict[str, Any], producer: str, consumer: str, probe: str, fmt: str, loader: str) -> dict[str, Any]:
    found: dict[str, Any]
    [found] = [l for l in results["loads"] if (l["producer"], l["consumer"], l["probe"], l["format"], l["loader"])
               == (producer, consumer, probe, fmt, loader)]
    return found


# -- 1. Keras SavedModels, served ---------------------------------------------------
def test_a_keras_saved_model_is_served_by_the_tf1_loader_and_tf_saved_model_load(results: dict[str, Any]) -> None:
    for producer, fmt in ((TF212, "keras_saved_model"), (TFK, "tf_keras_saved_model")):
        for consumer in (TF212, TFK):
            for loader in ("tf1_session", "tf2_load", "keras2"):
                found = load(results, producer, consumer, "dense", fmt, loader)
                assert found["status"] == "ok", (producer, consumer, loader, found["error"])
                assert found["max_abs_err"] < found["atol"]
    # TF 1.15 Serving meets a 2.x Keras SavedModel: the 2.12 save function's
    # op, 2.18's new attr on VarHandleOp; the static check names what fails first
    for producer, fmt, first in ((TF212, "keras_saved_model", "DisableCopyOnRead"),
                                 (TFK, "tf_keras_saved_model", "VarHandleOp.debug_name")):
        served = load(results, producer, TF115, "dense", fmt, "tf1_session")
        assert (served["status"], served["names"]) == ("load-error", [first])
        assert first in served["static"]["missing_ops"] + served["static"]["missing_attrs"]
    # Keras 3 refuses the directory outright: a finding of its own
    refused = load(results, TF212, TFK, "dense", "keras_saved_model", "keras3")
    assert (refused["status"], refused["category"]) == ("load-error", "keras-deserialization")


# -- 2. tf-keras writes Keras 2 files beside Keras 3 ones ----------------------------
def test_a_tf_keras_cell_writes_with_both_kerases_and_loads_its_own_files(results: dict[str, Any]) -> None:
    for fmt in KERAS_FORMATS:
        written = artifact(results, TFK, "dense", fmt)
        if fmt == "keras_saved_model":  # Keras 3 has no Keras SavedModel
            assert written["status"] == "not-applicable"
            continue
        assert written["status"] == "exported"
        wanted = ("tf_keras 2.18." if fmt.startswith("tf_keras") else "keras 3.")
        assert written["writer"].startswith(wanted), (fmt, written["writer"])
        # the writer's own Keras reads it back in the cell: keras2 is tf_keras there
        own = load(results, TFK, TFK, "dense", fmt, "keras2" if fmt.startswith("tf_keras") else "keras3")
        assert own["status"] == "ok", (fmt, own["error"])
    # only the writer names the Keras: a cell without tf-keras writes none of them
    assert artifact(results, TF212, "dense", "tf_keras_h5")["status"] == "not-applicable"
    # Keras 2 files of the tf-keras cell load in TF 2.12's Keras 2 ...
    assert load(results, TFK, TF212, "dense", "tf_keras_h5", "keras2")["status"] == "ok"
    # ... which its Keras 3 files do not
    # (Keras 3's .h5 InputLayer has `batch_shape`, a keyword Keras 2 does not know)
    assert load(results, TFK, TF212, "dense", "keras_h5", "keras2")["category"] == "keras-config"


# -- 3. Quantized TFLite -----------------------------------------------------------
def test_quantized_tflite_models_hold_newer_op_versions_than_float_ones(results: dict[str, Any]) -> None:
    for producer in (TF212, TFK):
        flat = artifact(results, producer, "quantizable", "tflite")["tflite_ops"]
        dynamic = artifact(results, producer, "quantizable", "tflite_dynamic")["tflite_ops"]
        full = artifact(results, producer, "quantizable", "tflite_int8")["tflite_ops"]
        assert flat["FULLY_CONNECTED"] == 1 and dynamic["FULLY_CONNECTED"] > 1 and full["FULLY_CONNECTED"] > 1
        assert "QUANTIZE" in full and "DEQUANTIZE" in full and "QUANTIZE" not in flat


def test_a_dynamic_range_model_of_2_18_fails_in_the_2_12_interpreter(results: dict[str, Any]) -> None:
    written = artifact(results, TFK, "quantizable", "tflite_dynamic")["tflite_ops"]["FULLY_CONNECTED"]
    found = load(results, TFK, TF212, "quantizable", "tflite_dynamic", "tflite_interpreter")
    assert (found["status"], found["category"]) == ("load-error", "tflite-op-version")
    assert found["names"] == [f"FULLY_CONNECTED@v{written}"]
    assert found["static"]["missing_ops"] == [f"FULLY_CONNECTED@v{written}"]
    # its float twin loads there
    assert load(results, TFK, TF212, "quantizable", "tflite", "tflite_interpreter")["status"] == "ok"


def test_measured_interpreter_op_versions_agree_with_every_real_tflite_load(
        results: dict[str, Any], registries: dict[str, dict[str, Any]]) -> None:
    tried = 0
    for found in results["loads"]:
        if found["format"] not in TFLITE_FORMATS or found["status"] == "not-applicable":
            continue
        tried += 1
        runtime = registries[found["consumer"]]["tflite_ops"]
        written = artifact(results, found["producer"], found["probe"], found["format"])["tflite_ops"]
        beyond = {op for op, version in written.items() if version > runtime.get(op, 0)}
        refused = DIDNT_FIND.search(found["error"] or "")
        if refused:  # the op the interpreter refused is one it was measured not to have
            assert refused.group(1) in beyond and int(refused.group(2)) > runtime.get(refused.group(1), 0)
        else:
            assert beyond == set() and found["status"] in ("ok", "outputs-differ"), found
        assert bool(found["static"]["missing_ops"]) == bool(refused)
    assert tried >= 18


# -- 4. GPU-only kernels -------------------------------------------------------------
def test_a_cudnn_graph_exported_on_cpu_fails_on_a_cpu_consumer_with_a_missing_kernel(results: dict[str, Any]) -> None:
    saved = artifact(results, TFK, "cudnn_lstm", "saved_model")
    assert saved["status"] == "exported" and "CudnnRNNV3" in saved["ops"]
    for consumer in (TF212, TFK):
        for loader in ("tf2_load", "tf1_session"):
            found = load(results, TFK, consumer, "cudnn_lstm", "saved_model", loader)
            assert (found["status"], found["category"]) == ("run-error", "missing-kernel"), found["error"]
            assert found["names"] == ["CudnnRNNV3"]
            assert found["static"]["missing_ops"] == []  # the op is registered: only its kernel is GPU-only
    for consumer in CELLS:  # TF 1.15 too, through the frozen graph
        found = load(results, TFK, consumer, "cudnn_lstm", "frozen_graph", "import_graph_def")
        assert (found["status"], found["category"], found["names"]) == ("run-error", "missing-kernel", ["CudnnRNNV3"])
    # A TF1 Session places its whole graph at the first run: no CPU-only export there
    tf1 = artifact(results, TF115, "cudnn_lstm", "frozen_graph")
    assert tf1["status"] == "not-applicable" and "CudnnRNNV3" in tf1["reason"]


def test_the_probe_declares_its_device_and_the_report_keeps_it_apart(results: dict[str, Any]) -> None:
    from sandbox.records import LoadStatus
    from sandbox.report.document import ResultsDocument
    from sandbox.report.tables import grids
    from sandbox.report.verdict import DEVICE, devices
    # every export record of a probe carries what the probe declares, exported or not
    assert {a["device"] for a in results["artifacts"] if a["probe"] == "cudnn_lstm"} == {"GPU"}
    assert {a["device"] for a in results["artifacts"] if a["probe"] != "cudnn_lstm"} == {None}
    read = ResultsDocument.from_json(results)
    found = devices(read)
    assert found.needs == {"cudnn_lstm": "GPU"} and found.why == {"cudnn_lstm": "declared by the probe"}
    bound = [l for l in read.loads if l.probe == "cudnn_lstm" and l.status is not LoadStatus.NOT_APPLICABLE]
    assert bound and {found.outcome(l) for l in bound} == {DEVICE}  # no cell here has a GPU
    saved = next(g for g in grids(read) if (g.format, g.loader) == ("saved_model", "tf2_load"))
    # the other probes load in their own cell: the GPU-only probe beside them does not fail the pair
    assert saved.square(TFK, TFK).loads and DEVICE in saved.square(TFK, TFK).marks


# -- 5. `sandbox check` on these files, against the stored registries ------------------
STATIC = ("op-not-registered", "unknown-attr", "keras-deserialization", "keras-config", "tflite-op-version")


def test_check_verdicts_on_keras_and_tflite_files_agree_with_the_real_loads(work: Path, results: dict[str, Any]) -> None:
    from sandbox import registries, runtimes
    from sandbox.check import readers, verdicts
    compared, unchecked = 0, set()
    for found in results["loads"]:
        if found["status"] == "not-applicable" or found["category"] not in (None, *STATIC) \
                or found["probe"] == "cudnn_lstm":
            continue
        written = artifact(results, found["producer"], found["probe"], found["format"])
        path = work / "runs" / "paths" / "cells" / found["producer"] / "artifacts" / written["path"]
        version, registry = registries.load(found["consumer"].split("-")[0][2:])
        predicted = {v.loader: v for v in readers.open_model(path).verdicts(registry, version, runtimes.TENSORFLOW)}.get(found["loader"])
        if predicted is None:  # the registry describes the release's own tf.keras, not an added tf-keras
            unchecked.add((found["consumer"], found["loader"]))
            continue
        assert (predicted.verdict == verdicts.WILL_FAIL) == (found["status"] == "load-error"), (found, predicted)
        compared += 1
    assert unchecked == {(TFK, "keras2")} and compared >= 60
