"""The static check's model of TF's loaders, on hand-made graph summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import registries
from sandbox.check import verdicts
from sandbox.check.graph import GraphInfo
from sandbox.check.kerasfile import KerasInfo
from sandbox.errors import SandboxError

REGISTRY = {"ops": {"Conv2D": {"attrs": ["T", "strides"]}, "VarHandleOp": {"attrs": ["dtype", "shape"]}}}


def model(kind: str, default_attrs: dict[str, list[str]] | None = None) -> GraphInfo:
    attrs = {"Conv2D": {"T": 1, "strides": 1, "explicit_paddings": 1},
             "VarHandleOp": {"dtype": 1, "debug_name": 1}}
    return GraphInfo(kind, attrs, {}, "2.18.1", default_attrs or {})


def test_missing_ops_fail_everywhere() -> None:
    info = GraphInfo("graph_def", {"BatchMatMulV2": {"T": 1}, "Einsum": {}}, {}, None)
    verdict = verdicts.graph_verdict(info, REGISTRY, "2.12.1")
    assert verdict.verdict == verdicts.WILL_FAIL and verdict.missing_ops == ("BatchMatMulV2", "Einsum")


def test_tf1_frozen_graph_fails_on_any_unknown_attr() -> None:
    verdict = verdicts.graph_verdict(model("graph_def"), REGISTRY, "1.15.5")
    assert verdict.unknown_attrs == ("Conv2D.explicit_paddings", "VarHandleOp.debug_name")
    assert verdict.verdict == verdicts.WILL_FAIL


def test_tf1_saved_model_loader_drops_attrs_at_their_default() -> None:
    verdict = verdicts.graph_verdict(model("saved_model", {"Conv2D": ["explicit_paddings"]}), REGISTRY, "1.15.5")
    assert verdict.ignored_attrs == ("Conv2D.explicit_paddings",)
    assert verdict.unknown_attrs == ("VarHandleOp.debug_name",)  # holds a name, not the default


def test_tf2_consumers_ignore_unknown_attrs() -> None:
    verdict = verdicts.graph_verdict(model("graph_def"), REGISTRY, "2.12.1")
    assert verdict.verdict == verdicts.SHOULD_LOAD
    assert verdict.ignored_attrs == ("Conv2D.explicit_paddings", "VarHandleOp.debug_name")


def test_tf113_loads_a_saved_model_whose_missing_op_only_an_unrun_function_holds() -> None:
    info = GraphInfo("saved_model", {"VarHandleOp": {"dtype": 1}, "DisableCopyOnRead": {}}, {}, "2.12.1",
                     lazy_ops=["DisableCopyOnRead"])
    old = verdicts.graph_verdict(info, REGISTRY, "1.13.2")
    assert old.verdict == verdicts.SHOULD_LOAD and old.ignored_ops == ("DisableCopyOnRead",) and old.missing_ops == ()
    new = verdicts.graph_verdict(info, REGISTRY, "1.14.0")  # checks the whole function library at load
    assert new.verdict == verdicts.WILL_FAIL and new.missing_ops == ("DisableCopyOnRead",)
    frozen = verdicts.graph_verdict(GraphInfo("graph_def", info.op_attrs, {}, None, lazy_ops=["DisableCopyOnRead"]),
                         REGISTRY, "1.13.2")  # import_graph_def: no lazy model
    assert frozen.verdict == verdicts.WILL_FAIL


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
    from sandbox.check.graphfile import read_model
    bad = tmp_path / "model.pb"
    bad.write_bytes(b"\xff\x00garbage")
    with pytest.raises(SandboxError, match="not a SavedModel or a GraphDef"):
        read_model(bad)


# -- per loader (measured in tests/test_real_check.py) -------------------------------
def _functions_attr() -> GraphInfo:
    """A 2.11 Keras SavedModel's shape: AssignVariableOp.validate_shape only in
    function bodies the serving signature and restore never call."""
    attrs = {"AssignVariableOp": {"dtype": 1, "validate_shape": 1}}
    return GraphInfo("saved_model", attrs, {}, "2.11.1", lazy_attrs={"AssignVariableOp": ["validate_shape"]})


ASSIGN = {"ops": {"AssignVariableOp": {"attrs": ["dtype"]}}, "keras": {"version": "2.4.0", "major": 2, "layers": []}}


def test_an_attr_only_in_unrun_functions_fails_tf_saved_model_load_before_2_5_but_not_serving() -> None:
    by_loader = {v.loader: v for v in verdicts.graph_verdicts(_functions_attr(), ASSIGN, "2.4.4", verdicts.INLINE)}
    assert set(by_loader) == {"tf1_session", "tf2_load", "keras2"}
    assert by_loader["tf1_session"].verdict == verdicts.SHOULD_LOAD
    assert by_loader["tf2_load"].verdict == verdicts.WILL_FAIL
    assert by_loader["tf2_load"].unknown_attrs == ("AssignVariableOp.validate_shape",)
    assert by_loader["keras2"].verdict == verdicts.WILL_FAIL
    later = {v.loader: v.verdict for v in verdicts.graph_verdicts(_functions_attr(), ASSIGN, "2.5.3")}
    assert later == {"tf1_session": verdicts.SHOULD_LOAD, "tf2_load": verdicts.SHOULD_LOAD}


def test_keras_before_2_5_reads_no_metadata_kept_only_in_keras_metadata_pb() -> None:
    info = GraphInfo("saved_model", {}, {}, "2.11.1")
    [*_, old] = verdicts.graph_verdicts(info, ASSIGN, "2.4.4", verdicts.SEPARATE)
    assert (old.loader, old.verdict) == ("keras2", verdicts.WILL_FAIL) and "keras_metadata.pb" in old.reasons[0]
    [*_, inline] = verdicts.graph_verdicts(info, ASSIGN, "2.4.4", verdicts.INLINE)
    assert inline.verdict == verdicts.SHOULD_LOAD
    assert verdicts.keras_metadata(b'..{"class_name": "Dense"}..', True) == verdicts.INLINE
    assert verdicts.keras_metadata(b"....", True) == verdicts.SEPARATE and verdicts.keras_metadata(b"..", False) is None


def test_tf1_has_no_tf_saved_model_load_and_a_frozen_graph_one_loader() -> None:
    assert verdicts.graph_loaders(_functions_attr(), "1.15.5") == ["tf1_session"]
    assert verdicts.graph_loaders(GraphInfo("graph_def", {}, {}, None), "2.18.1") == ["import_graph_def"]


def test_keras3_reads_no_saved_model_directory() -> None:
    registry = {**ASSIGN, "keras": {"version": "3.9.0", "major": 3, "layers": []}}
    [*_, keras] = verdicts.graph_verdicts(_functions_attr(), registry, "2.18.1", verdicts.SEPARATE)
    assert (keras.loader, keras.verdict) == ("keras3", verdicts.WILL_FAIL)


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
    verdict = verdicts.keras_verdict(info, registry, "x")
    assert (verdict.verdict == verdicts.WILL_FAIL) == fails, verdict.reasons
    assert verdict.loader == ("keras3" if registry is KERAS3 else "keras2")


def test_tflite_against_measured_interpreter_versions() -> None:
    registry = {"tflite_ops": {"FULLY_CONNECTED": 9, "CONV_2D": 5}}
    verdict = verdicts.tflite_verdict({"FULLY_CONNECTED": 12, "CONV_2D": 5, "WHILE": 1, "custom:Mine": 1}, registry, "2.12.1")
    assert verdict.verdict == verdicts.WILL_FAIL and verdict.missing_ops == ("FULLY_CONNECTED@v12", "WHILE")
    assert verdicts.tflite_verdict({"CONV_2D": 1}, {"tflite_ops": None}, "1.9.0").verdict == verdicts.UNKNOWN


# -- the command line on hostile or mistaken model files ----------------------------
MODELS = Path(__file__).parent / "data" / "models"


def _check(argv: list[str], capsys: pytest.CaptureFixture[str], expect: int) -> tuple[str, str]:
    from sandbox import cli
    assert cli.main(["check", *argv]) == expect
    out, err = capsys.readouterr()
    if expect == 2:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return out, err


def test_a_broken_tflite_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "m.tflite"
    bad.write_bytes((MODELS / "model.tflite").read_bytes()[:40] + b"\xff" * 8)
    assert "not a readable TFLite flatbuffer" in _check([str(bad), "--against", "tf==2.15"], capsys, 2)[1]


@pytest.mark.parametrize("name", ["model.tflite", "keras2_lambda.h5", "keras3_lambda.keras", "frozen.pb"])
def test_the_size_limit_holds_for_every_format(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--max-model-size was ignored for .h5 and .tflite."""
    big = tmp_path / name
    big.write_bytes((MODELS / name).read_bytes() + b"\0" * (2 << 20))
    err = _check([str(big), "--against", "tf==2.15", "--max-model-size", "1"], capsys, 2)[1]
    assert "is over the 1.0 MiB limit for models" in err


def test_a_size_limit_of_zero_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """0 once switched the limit off."""
    from sandbox import cli
    with pytest.raises(SystemExit):
        cli.main(["check", str(MODELS / "frozen.pb"), "--against", "all", "--max-model-size", "0"])
    assert "above 0" in capsys.readouterr().err


def test_a_folder_that_is_not_a_saved_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Once: "No such file or directory"."""
    err = _check([str(tmp_path), "--against", "all"], capsys, 2)[1]
    assert "not a SavedModel" in err and "saved_model.pb" in err


def test_a_patch_release_substituted_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    """--against tf==2.12.0 checked 2.12.1 without saying so."""
    out, err = _check([str(MODELS / "frozen.pb"), "--against", "tf==2.12.0"], capsys, 0)
    assert "tf==2.12.0" in err and "checking against 2.12.1" in err and "tf==2.12.1" in out


@pytest.mark.parametrize("name", ["keras2_lambda.h5", "keras3_lambda.keras"])
def test_check_names_the_lambda(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    out, err = _check([str(MODELS / name), "--against", "tf==2.15,tf==2.18"], capsys, 1 if name.endswith(".keras") else 0)
    assert "a Lambda layer" in err and "carries code: a Lambda layer" in out
    if name.endswith(".keras"):  # Keras 3 refuses it by default, Keras 2.15 reads no Keras 3 file
        assert "refuses its Lambda in safe mode" in out


def test_a_keras_zip_bomb_is_refused_within_a_small_multiple_of_its_size(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A 400 KB .keras whose config.json is 400 MB once took 856 MB to verdicts."""
    import resource
    import zipfile
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", '{"class_name": "Functional", "config": {"layers": [], "pad": "'
                         + "x" * 400_000_000 + '"}}')
    assert bomb.stat().st_size < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert "zip bomb" in _check([str(bomb), "--against", "tf==2.15"], capsys, 2)[1]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KB: < 50 MB more


@pytest.mark.parametrize("name", ["keras2_lambda.h5", "keras3_lambda.keras"])
def test_a_keras_config_nested_too_deep_is_one_line(tmp_path: Path, name: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import zipfile

    import h5py
    path = tmp_path / name
    deep = '{"class_name": "Functional", "config": {"layers": [' + "[" * 100_000 + "]" * 100_000 + "]}}"
    if name.endswith(".keras"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", deep)
    else:
        path.write_bytes((MODELS / name).read_bytes())
        with h5py.File(path, "r+") as f:
            f.attrs["model_config"] = deep
    assert "nested" in _check([str(path), "--against", "tf==2.15"], capsys, 2)[1]


@pytest.mark.parametrize("minor", ["2.12", "2.18"])
def test_an_op_loads_up_to_the_highest_version_its_interpreter_measured_and_not_one_above(minor: str) -> None:
    """The boundary, read off a shipped registry (measured by the registry verb):
    FULLY_CONNECTED at the interpreter's highest version loads, one above does not."""
    measured = registries.load(minor)[1]["tflite_ops"]["FULLY_CONNECTED"]
    registry = {"tflite_ops": {"FULLY_CONNECTED": measured}}
    assert verdicts.tflite_verdict({"FULLY_CONNECTED": measured}, registry, minor).verdict == verdicts.SHOULD_LOAD
    assert verdicts.tflite_verdict({"FULLY_CONNECTED": measured - 1}, registry, minor).verdict == verdicts.SHOULD_LOAD
    above = verdicts.tflite_verdict({"FULLY_CONNECTED": measured + 1}, registry, minor)
    assert (above.verdict, above.missing_ops) == (verdicts.WILL_FAIL, (f"FULLY_CONNECTED@v{measured + 1}",))


# -- Keras verdicts at their boundaries, whole (what `sandbox check --json` prints) ----------------
SAVED = GraphInfo("saved_model", {"MatMul": {"T": 1}}, {}, "2.12.1")
MATMUL = {"ops": {"MatMul": {"attrs": ["T"]}}}


def test_keras_3_loads_no_saved_model_directory() -> None:
    found = verdicts.graph_verdict(SAVED, {**MATMUL, "keras": {"version": "3.0.0", "major": 3}}, "2.16.1", "keras", verdicts.SEPARATE)
    assert found == verdicts.Verdict("2.16.1", verdicts.WILL_FAIL, (), (), (), loader="keras3",
                                  reasons=("Keras 3 loads no SavedModel directories (only .keras and .h5 files)",))


@pytest.mark.parametrize("version, fails", [("2.4.0", True), ("2.5.0", False), ("2.12.0", False)])
def test_keras_metadata_in_its_own_file_is_read_from_keras_2_5(version: str, fails: bool) -> None:
    registry = {**MATMUL, "keras": {"version": version, "major": 2}}
    found = verdicts.graph_verdict(SAVED, registry, version, "keras", verdicts.SEPARATE)
    reasons = (f"Keras {version} reads Keras metadata from saved_model.pb; this model keeps it in keras_metadata.pb "
               "only",) if fails else ()
    assert found == verdicts.Verdict(version, verdicts.WILL_FAIL if fails else verdicts.SHOULD_LOAD, (), (), (), (), "keras2",
                                  reasons)
    inline = verdicts.graph_verdict(SAVED, registry, version, "keras", verdicts.INLINE)
    assert (inline.verdict, inline.reasons) == (verdicts.SHOULD_LOAD, ())


def test_a_release_without_a_keras_record_is_unknown() -> None:
    found = verdicts.keras_verdict(_keras("keras_h5", "2.12.0"), {}, "1.9.0")
    assert found == verdicts.Verdict("1.9.0", verdicts.UNKNOWN, (), (), (), loader="keras",
                                  reasons=("no record of this release's tf.keras",))


@pytest.mark.parametrize("version, major, fails", [("2.3.0", 2, True), ("2.4.0", 2, False), ("3.0.0", 3, False)])
def test_the_functional_class_is_known_from_keras_2_4(version: str, major: int, fails: bool) -> None:
    registry = {"keras": {"version": version, "major": major, "layers": ["Dense", "InputLayer"]}}
    found = verdicts.keras_verdict(_keras("keras_h5", "2.12.0"), registry, version)
    assert found.missing_ops == (("Functional",) if fails else ())
    assert found.reasons == ((f"Keras {version} predates the Functional class",) if fails else ())
    assert found.loader == ("keras3" if major == 3 else "keras2") and found.target == version
