"""The static check's model of TF's loaders, on hand-made graph summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import check, registries
from sandbox.errors import SandboxError
from sandbox.kerasinfo import KerasInfo
from sandbox.protos import GraphInfo

REGISTRY = {"ops": {"Conv2D": {"attrs": ["T", "strides"]}, "VarHandleOp": {"attrs": ["dtype", "shape"]}}}


def model(kind: str, default_attrs: dict[str, list[str]] | None = None) -> GraphInfo:
    attrs = {"Conv2D": {"T": {b"t"}, "strides": {b"s"}, "explicit_paddings": {b""}},
             "VarHandleOp": {"dtype": {b"d"}, "debug_name": {b"v1"}}}
    return GraphInfo(kind, attrs, {}, "2.18.1", default_attrs or {})


def test_missing_ops_fail_everywhere() -> None:
    info = GraphInfo("graph_def", {"BatchMatMulV2": {"T": {b"t"}}, "Einsum": {}}, {}, None)
    verdict = check.check(info, REGISTRY, "2.12.1")
    assert verdict.verdict == check.WILL_FAIL and verdict.missing_ops == ("BatchMatMulV2", "Einsum")


def test_tf1_frozen_graph_fails_on_any_unknown_attr() -> None:
    verdict = check.check(model("graph_def"), REGISTRY, "1.15.5")
    assert verdict.unknown_attrs == ("Conv2D.explicit_paddings", "VarHandleOp.debug_name")
    assert verdict.verdict == check.WILL_FAIL


def test_tf1_saved_model_loader_drops_attrs_at_their_default() -> None:
    verdict = check.check(model("saved_model", {"Conv2D": ["explicit_paddings"]}), REGISTRY, "1.15.5")
    assert verdict.ignored_attrs == ("Conv2D.explicit_paddings",)
    assert verdict.unknown_attrs == ("VarHandleOp.debug_name",)  # holds a name, not the default


def test_tf2_consumers_ignore_unknown_attrs() -> None:
    verdict = check.check(model("graph_def"), REGISTRY, "2.12.1")
    assert verdict.verdict == check.SHOULD_LOAD
    assert verdict.ignored_attrs == ("Conv2D.explicit_paddings", "VarHandleOp.debug_name")


def test_tf113_loads_a_saved_model_whose_missing_op_only_an_unrun_function_holds() -> None:
    info = GraphInfo("saved_model", {"VarHandleOp": {"dtype": {b"d"}}, "DisableCopyOnRead": {}}, {}, "2.12.1",
                     lazy_ops=["DisableCopyOnRead"])
    old = check.check(info, REGISTRY, "1.13.2")
    assert old.verdict == check.SHOULD_LOAD and old.ignored_ops == ("DisableCopyOnRead",) and old.missing_ops == ()
    new = check.check(info, REGISTRY, "1.14.0")  # checks the whole function library at load
    assert new.verdict == check.WILL_FAIL and new.missing_ops == ("DisableCopyOnRead",)
    frozen = check.check(GraphInfo("graph_def", info.op_attrs, {}, None, lazy_ops=["DisableCopyOnRead"]),
                         REGISTRY, "1.13.2")  # import_graph_def: no lazy model
    assert frozen.verdict == check.WILL_FAIL


@pytest.mark.parametrize("text, target", [("tf==2.15", "2.15"), ("tensorflow==1.15.5", "1.15.5"), ("2.1", "2.1")])
def test_targets(text: str, target: str) -> None:
    assert registries.parse_target(text) == target


def test_unknown_target_says_what_is_known() -> None:
    with pytest.raises(SandboxError, match=r"no stored op registry for TensorFlow 0.9 \(known: "):
        registries.load("0.9")


def test_shipped_registries_cover_every_minor_from_1_0() -> None:
    known = registries.known()
    assert {f"1.{i}" for i in range(16)} | {f"2.{i}" for i in range(22)} <= set(known)
    # with the interpreter's TFLite op versions where construction tells (1.11+), and tf.keras (1.4+)
    for minor, tflite, keras in (("1.10", False, True), ("1.11", True, True), ("2.18", True, True), ("1.3", False, False)):
        data = registries.load(minor)[1]
        assert bool(data.get("tflite_ops")) == tflite and bool(data.get("keras")) == keras, minor
    assert registries.load("2.12")[1]["tflite_ops"]["FULLY_CONNECTED"] < registries.load("2.18")[1]["tflite_ops"][
        "FULLY_CONNECTED"]
    assert registries.load("2.18")[1]["keras"]["major"] == 3
    version, data = registries.load("2.15")
    assert version.startswith("2.15.") and "VarHandleOp" in data["ops"]
    assert "debug_name" in data["ops"]["VarHandleOp"]["attrs"]
    assert "debug_name" not in registries.load("2.14")[1]["ops"]["VarHandleOp"]["attrs"]


def test_not_a_model(tmp_path: Path) -> None:
    from sandbox.protos import read_model
    bad = tmp_path / "model.pb"
    bad.write_bytes(b"\xff\x00garbage")
    with pytest.raises(SandboxError, match="not a SavedModel or a GraphDef"):
        read_model(bad)


# -- per loader (measured in tests/test_real_check.py) -------------------------------
def _functions_attr() -> GraphInfo:
    """A 2.11 Keras SavedModel's shape: AssignVariableOp.validate_shape only in
    function bodies the serving signature and restore never call."""
    attrs = {"AssignVariableOp": {"dtype": {b"d"}, "validate_shape": {b"f"}}}
    return GraphInfo("saved_model", attrs, {}, "2.11.1", lazy_attrs={"AssignVariableOp": ["validate_shape"]})


ASSIGN = {"ops": {"AssignVariableOp": {"attrs": ["dtype"]}}, "keras": {"version": "2.4.0", "major": 2, "layers": []}}


def test_an_attr_only_in_unrun_functions_fails_tf_saved_model_load_before_2_5_but_not_serving() -> None:
    verdicts = {v.loader: v for v in check.check_all(_functions_attr(), ASSIGN, "2.4.4", check.INLINE)}
    assert set(verdicts) == {"tf1_session", "tf2_load", "keras2"}
    assert verdicts["tf1_session"].verdict == check.SHOULD_LOAD
    assert verdicts["tf2_load"].verdict == check.WILL_FAIL
    assert verdicts["tf2_load"].unknown_attrs == ("AssignVariableOp.validate_shape",)
    assert verdicts["keras2"].verdict == check.WILL_FAIL
    later = {v.loader: v.verdict for v in check.check_all(_functions_attr(), ASSIGN, "2.5.3")}
    assert later == {"tf1_session": check.SHOULD_LOAD, "tf2_load": check.SHOULD_LOAD}


def test_keras_before_2_5_reads_no_metadata_kept_only_in_keras_metadata_pb() -> None:
    info = GraphInfo("saved_model", {}, {}, "2.11.1")
    [*_, old] = check.check_all(info, ASSIGN, "2.4.4", check.SEPARATE)
    assert (old.loader, old.verdict) == ("keras2", check.WILL_FAIL) and "keras_metadata.pb" in old.reasons[0]
    [*_, inline] = check.check_all(info, ASSIGN, "2.4.4", check.INLINE)
    assert inline.verdict == check.SHOULD_LOAD
    assert check.keras_metadata(b'..{"class_name": "Dense"}..', True) == check.INLINE
    assert check.keras_metadata(b"....", True) == check.SEPARATE and check.keras_metadata(b"..", False) is None


def test_tf1_has_no_tf_saved_model_load_and_a_frozen_graph_one_loader() -> None:
    assert check.loaders(_functions_attr(), "1.15.5") == ["tf1_session"]
    assert check.loaders(GraphInfo("graph_def", {}, {}, None), "2.18.1") == ["import_graph_def"]


def test_keras3_reads_no_saved_model_directory() -> None:
    registry = {**ASSIGN, "keras": {"version": "3.9.0", "major": 3, "layers": []}}
    [*_, keras] = check.check_all(_functions_attr(), registry, "2.18.1", check.SEPARATE)
    assert (keras.loader, keras.verdict) == ("keras3", check.WILL_FAIL)


def _keras(fmt: str, version: str, modules: tuple[str, ...] = (), layers: tuple[str, ...] = ("Dense", "InputLayer"),
           model: str = "Functional") -> KerasInfo:
    return KerasInfo(fmt, version, model, layers, modules)


KERAS2 = {"keras": {"version": "2.12.0", "major": 2, "layers": ["Dense", "InputLayer"]}}
KERAS3 = {"keras": {"version": "3.9.0", "major": 3, "layers": ["Dense", "InputLayer"]}}
KERAS22 = {"keras": {"version": "2.2.4-tf", "major": 2, "layers": ["Dense", "InputLayer"]}}


@pytest.mark.parametrize("info, registry, fails", [
    (_keras("keras_h5", "3.9.0"), KERAS2, True),  # Keras 2 reads no Keras 3 file
    (_keras("keras_v3", "3.9.0", ("keras.layers", "keras.src.models.functional")), KERAS2, True),
    (_keras("keras_h5", "2.12.0"), KERAS3, False),  # Keras 3 reads Keras 2 .h5
    (_keras("keras_h5", "2.2.4-tf"), KERAS3, True),  # ... but not TF 1.x's
    (_keras("keras_v3", "2.12.0", ("keras.engine.functional",)), KERAS3, True),  # ... but no Keras 2 .keras
    (_keras("keras_v3", "2.18.0", ("keras.layers", "tf_keras.src.engine.functional")), KERAS3, True),
    (_keras("keras_v3", "2.18.0", ("keras.layers", "tf_keras.src.engine.functional")), KERAS2, True),
    (_keras("keras_v3", "2.12.0", ("keras.engine.functional",)), KERAS2, False),
    (_keras("keras_h5", "2.12.0"), KERAS22, True),  # Keras 2.2 knows no Functional
    (_keras("keras_h5", "2.12.0", model="Sequential"), KERAS22, False),
    (_keras("keras_h5", "2.12.0", layers=("MultiHeadAttention",)), KERAS2, True),  # a layer it lacks
])
def test_keras_files_against_the_target_keras(info: KerasInfo, registry: dict[str, object], fails: bool) -> None:
    verdict = check.keras_check(info, registry, "x")
    assert (verdict.verdict == check.WILL_FAIL) == fails, verdict.reasons
    assert verdict.loader == ("keras3" if registry is KERAS3 else "keras2")


def test_tflite_against_measured_interpreter_versions() -> None:
    registry = {"tflite_ops": {"FULLY_CONNECTED": 9, "CONV_2D": 5}}
    verdict = check.tflite({"FULLY_CONNECTED": 12, "CONV_2D": 5, "WHILE": 1, "custom:Mine": 1}, registry, "2.12.1")
    assert verdict.verdict == check.WILL_FAIL and verdict.missing_ops == ("FULLY_CONNECTED@v12", "WHILE")
    assert check.tflite({"CONV_2D": 1}, {"tflite_ops": None}, "1.9.0").verdict == check.UNKNOWN
