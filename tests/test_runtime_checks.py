"""What the runtimes beside TF add to classification, the static check and
`sandbox check`: select TF ops (Flex), interpreters per loader, Keras config
keys, runtime registries; and how reports name runtime cells."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from documents import of

from sandbox import registries
from sandbox.check import verdicts
from sandbox.check.kerasfile import KerasInfo
from sandbox.check.static import tflite_check
from sandbox.classify import classify
from sandbox.errors import SandboxError
from sandbox.report import tables
from sandbox.summary import short_labels

# The words of real interpreters without the Flex delegate (measured here).
FLEX_ERRORS = [
    # ai-edge-litert 1.2.0, tflite-runtime 2.14.0
    ("Select TensorFlow op(s), included in the given model, is(are) not supported by this interpreter. Make sure "
     "you apply/link the Flex delegate before inference. For the Android, it can be resolved by adding "
     "\"org.tensorflow:tensorflow-lite-select-tf-ops\" dependency. See instructions: "
     "https://www.tensorflow.org/lite/guide/ops_selectNode number 0 (FlexSinh) failed to prepare.", ("FlexSinh",)),
    # TF 2.1.4's tf.lite.Interpreter
    ("Regular TensorFlow ops are not supported by this interpreter. Make sure you apply/link the Flex delegate "
     "before inference.Node number 0 (FlexSinh) failed to prepare.", ("FlexSinh",)),
    # TF 1.13.2's: the node is named "Flex" only
    ("Regular TensorFlow ops are not supported by this interpreter. Make sure you invoke the Flex delegate before "
     "inference.Node number 0 (Flex) failed to prepare.", ("Flex",)),
    ("Encountered unresolved custom op: FlexSinh.\nNode number 0 (FlexSinh) failed to prepare.", ("FlexSinh",)),
]


@pytest.mark.parametrize("text, names", FLEX_ERRORS)
def test_an_interpreter_without_flex_is_a_finding_naming_the_op(text: str, names: tuple[str, ...]) -> None:
    found = classify("load-error", text, "RuntimeError")
    assert found is not None and (found.category, found.names) == ("tflite-flex-op", names)


def test_other_unresolved_custom_ops_stay_an_op_version_finding() -> None:
    found = classify("load-error", "Encountered unresolved custom op: MyOp.", "RuntimeError")
    assert found is not None and (found.category, found.names) == ("tflite-op-version", ("MyOp",))


REGISTRY = {
    "tflite_ops": {"FULLY_CONNECTED": 11, "SINH": 1},
    "interpreters": {"tflite_interpreter": {"ops": {"FULLY_CONNECTED": 11}, "flex": True},
                     "ai_edge_litert": {"ops": {"FULLY_CONNECTED": 12}, "flex": False},
                     "tflite_runtime": {"ops": {"FULLY_CONNECTED": 9}, "flex": None}},
}
MODEL = {"FULLY_CONNECTED": 10, "custom:FlexSinh": 1, "custom:MyOp": 1}


def test_the_static_tflite_check_is_per_interpreter_with_flex() -> None:
    def missing(loader: str | None, registry: dict[str, Any] = REGISTRY) -> tuple[str, ...] | None:
        found = tflite_check(MODEL, registry, loader)
        return None if found is None else found.missing_ops
    assert missing("tflite_interpreter") == ()  # has Flex; the user's own custom op is theirs to register
    assert missing("ai_edge_litert") == ("FlexSinh",)  # no Flex delegate
    assert missing("tflite_runtime") == ("FULLY_CONNECTED@v10",)  # Flex not measured: not predicted
    assert missing(None) == ()  # the cell's own interpreter: the first measured
    # a registry from before interpreters were measured one by one: TF's own only, Flex unknown
    old = {"tflite_ops": {"FULLY_CONNECTED": 9}}
    assert missing("tflite_interpreter", old) == ("FULLY_CONNECTED@v10",) and missing("ai_edge_litert", old) is None


def test_check_tflite_against_a_runtime_names_its_interpreter_and_flex() -> None:
    verdict = verdicts.tflite_verdict(MODEL, REGISTRY, "1.2.0", "ai-edge-litert")
    assert (verdict.verdict, verdict.loader, verdict.runtime) == (verdicts.WILL_FAIL, "ai_edge_litert", "ai-edge-litert")
    assert verdict.missing_ops == ("FlexSinh",)
    assert verdict.reasons == ("FlexSinh: a select TF op; this interpreter has no Flex delegate",)
    assert verdicts.tflite_verdict(MODEL, {"interpreters": {}}, "2.14.0", "tflite-runtime").verdict == verdicts.UNKNOWN


def keras_file(version: str, keys: dict[str, tuple[str, ...]]) -> KerasInfo:
    return KerasInfo("keras_v3", version, "Functional", tuple(sorted(keys)), ("keras.src.models.functional",),
                     config_keys=tuple(sorted(keys.items())))


KERAS_3_11 = {"keras": {"version": "3.11.3", "major": 3, "layers": ["Dense", "InputLayer"],
                        "config_keys": {"Dense": ["activation", "name", "units"],
                                        "InputLayer": ["batch_shape", "dtype", "name"]}}}


def test_a_config_key_the_target_keras_does_not_take_will_fail() -> None:
    newer = keras_file("3.12.0", {"Dense": ("activation", "name", "quantization_config", "units"),
                                  "InputLayer": ("batch_shape", "name")})
    verdict = verdicts.keras_verdict(newer, KERAS_3_11, "3.11.3", "keras")
    assert (verdict.verdict, verdict.loader, verdict.runtime) == (verdicts.WILL_FAIL, "keras3", "keras")
    assert verdict.unknown_attrs == ("Dense.quantization_config",)
    assert verdict.reasons == ("Keras 3.11.3's Dense takes no config key 'quantization_config'",)
    same = keras_file("3.11.3", {"Dense": ("activation", "name", "units")})
    assert verdicts.keras_verdict(same, KERAS_3_11, "3.11.3", "keras").verdict == verdicts.SHOULD_LOAD


def test_config_keys_are_not_compared_across_keras_generations() -> None:
    # Keras 3 converts a Keras 2 .h5 file's configs (batch_input_shape...) before building its layers
    old = KerasInfo("keras_h5", "2.12.0", "Functional", ("Dense",), (),
                    config_keys=(("Dense", ("batch_input_shape", "units")),))
    assert verdicts.keras_verdict(old, KERAS_3_11, "3.11.3", "keras").unknown_attrs == ()


def test_targets_name_their_runtime() -> None:
    assert registries.split_target("tf==2.15") == ("tensorflow", "2.15")
    assert registries.split_target("2.15.1") == ("tensorflow", "2.15.1")
    assert registries.split_target(" keras==3.11 ") == ("keras", "3.11")
    assert registries.split_target("ai_edge_litert==1.2") == ("ai-edge-litert", "1.2")
    assert registries.split_target("tflite-runtime==2.14.0") == ("tflite-runtime", "2.14.0")
    with pytest.raises(SandboxError, match="is not like tf==2.15 or keras==X, ai-edge-litert==X, tflite-runtime==X"):
        registries.split_target("torch==2.1")


def test_runtime_registries_live_in_folders_of_their_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registries, "SHIPPED", tmp_path)
    measured = {"ops": {}, "python": "3.12.1", "tensorflow": None, "keras": None,
                "interpreters": {"ai_edge_litert": {"ops": {"ADD": 4}, "flex": False}}, "tflite_ops": {"ADD": 4}}
    path = registries.save(measured, "1.2.0", "ai-edge-litert")
    registries.save({"ops": {"Add": {"attrs": ["T"]}}}, "2.15.1")
    assert path == tmp_path / "ai-edge-litert" / "1.2.0.json.gz"
    with gzip.open(path, "rt") as fh:
        assert json.load(fh)["runtime"] == {"package": "ai-edge-litert", "version": "1.2.0"}
    # a tflite-runtime registry next to the TF ones is no TF release (tf* files)
    registries.save({"ops": {}}, "2.14.0", "tflite-runtime")
    assert list(registries.known()) == ["2.15"] and list(registries.known("tflite-runtime")) == ["2.14"]
    version, found = registries.load("1.2", "ai-edge-litert")
    assert version == "1.2.0" and found["interpreters"]["ai_edge_litert"]["flex"] is False
    with pytest.raises(SandboxError, match=r"no stored registry for keras 3.0 \(known: none\)"):
        registries.load("3.0", "keras")


CELLS: list[dict[str, Any]] = [
    {"id": "keras3.5.0-jax0.4.31-py3.12-cpu", "status": "ok", "tensorflow": "", "python": "3.12.1", "image": "cpu",
     "backend": "venv", "runtime": {"name": "keras", "package": "keras", "version": "3.5.0", "backend": "jax",
                                    "backend_version": "0.4.31"}},
    {"id": "litert1.2.0-py3.12-cpu", "status": "ok", "tensorflow": "", "python": "3.12.1", "image": "cpu",
     "backend": "venv", "runtime": {"name": "ai-edge-litert", "package": "ai-edge-litert", "version": "1.2.0"}},
    {"id": "tf2.23.0.dev20261026-py3.13-cpu", "status": "ok", "tensorflow": "2.23.0.dev20261026", "python": "3.13.0",
     "image": "cpu", "backend": "venv", "runtime": {"name": "tensorflow", "package": "tf-nightly",
                                                    "version": "2.23.0.dev20261026", "nightly": True}},
    {"id": "keras3.8.0-tf2.18.1-py3.11-cpu", "status": "ok", "tensorflow": "2.18.1", "python": "3.11.7", "image": "cpu",
     "backend": "venv", "runtime": {"name": "keras", "package": "keras", "version": "3.8.0", "backend": "tensorflow",
                                    "backend_version": "2.18.1"}},
    {"id": "tf2.18.1-py3.11-cpu", "status": "ok", "tensorflow": "2.18.1", "python": "3.11.7", "image": "cpu",
     "backend": "venv"},  # a cell of a document from before runtime cells
]


def test_reports_name_runtime_cells_by_runtime_and_order_them_after_tf() -> None:
    results = of({"cells": CELLS})
    assert tables.healthy(results) == ["tf2.18.1-py3.11-cpu", "tf2.23.0.dev20261026-py3.13-cpu",
                                       "keras3.5.0-jax0.4.31-py3.12-cpu", "keras3.8.0-tf2.18.1-py3.11-cpu",
                                       "litert1.2.0-py3.12-cpu"]
    assert tables.labels(results) == {
        "keras3.5.0-jax0.4.31-py3.12-cpu": "Keras 3.5.0 (jax 0.4.31)", "litert1.2.0-py3.12-cpu": "LiteRT 1.2.0",
        "tf2.23.0.dev20261026-py3.13-cpu": "2.23.0.dev20261026 nightly",
        "keras3.8.0-tf2.18.1-py3.11-cpu": "Keras 3.8.0 (tf 2.18.1)", "tf2.18.1-py3.11-cpu": "2.18.1"}
    assert tables.span(results) == ("TensorFlow 2.18.1 to 2.23.0.dev20261026, Keras 3.5.0 to 3.8.0, LiteRT 1.2.0")


def test_the_closing_summary_shortens_runtime_ids_too() -> None:
    assert short_labels([c["id"] for c in CELLS]) == {
        "keras3.5.0-jax0.4.31-py3.12-cpu": "keras3.5.0-jax0.4.31", "litert1.2.0-py3.12-cpu": "litert1.2.0",
        "tf2.23.0.dev20261026-py3.13-cpu": "2.23", "keras3.8.0-tf2.18.1-py3.11-cpu": "keras3.8.0-tf2.18.1",
        "tf2.18.1-py3.11-cpu": "2.18"}
