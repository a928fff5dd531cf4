from __future__ import annotations

import pytest

from sandbox.classify import classify
from sandbox.static import static_check

# Real error texts, as TF printed them in this project's runs.
CASES = [
    ("load-error", "Op type not registered 'FusedBatchNormV3' in binary running on host. Make sure the Op and Kernel "
     "are registered in the binary running in this process.", "op-not-registered", ("FusedBatchNormV3",)),
    ("load-error", "NodeDef mentions attr 'debug_name' not in Op<name=VarHandleOp; signature= -> resource:resource; "
     "attr=container:string,default=\"\">; NodeDef: {{node x}}", "unknown-attr", ("VarHandleOp.debug_name",)),
    ("run-error", "No OpKernel was registered to support Op 'Einsum' used by node", "missing-kernel", ("Einsum",)),
    ("run-error", "Expected input[1] == 'TensorArrayV2Stack/TensorListStack/element_shape:output:0' to be a control "
     "input.\n\tIn {{node TensorArrayV2Stack/TensorListStack}}\n\t [[{{node model/lstm/PartitionedCall}}]]",
     "op-signature", ("TensorListStack",)),
    ("load-error", "No op named BatchMatMulV2 in defined operations.", "op-not-registered", ("BatchMatMulV2",)),
    ("load-error", "Expecting value: line 1 column 1 (char 0)", "keras-deserialization", ()),
    ("run-error", "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '11'", "tflite-op-version",
     ("FULLY_CONNECTED@v11",)),
    ("load-error", "Error parsing message with type 'tensorflow.SavedModel'", "protobuf-parse", ()),
    ("crash", "the agent process died (exit -11)", "crash", ()),
    ("timeout", "no result after 900s", "timeout", ()),
    ("load-error", "something nobody expected", "other", ()),
    # TFLite: an interpreter whose schema predates the op names only its number
    ("load-error", "Op builtin_code out of range: 119. Are you using old TFLite binary with newer model?"
     "Registration failed.", "tflite-op-version", ("WHILE",)),
    # Keras 3 .keras / .h5 read by Keras 2.12
    ("load-error", "Could not deserialize class 'Functional' because its parent module "
     "keras.src.models.functional cannot be imported. Full object config: {'module': 'keras.src.models'}",
     "keras-deserialization", ("Functional",)),
    ("load-error", "Error when deserializing class 'InputLayer' using config={'batch_shape': [None, 5]}",
     "keras-deserialization", ("InputLayer",)),
    # Keras 2 files read by Keras 3
    ("load-error", "Unrecognized keyword arguments passed to LSTM: {'time_major': False}", "keras-deserialization",
     ("LSTM",)),
    ("load-error", "<class 'keras.src.initializers.random_initializers.GlorotUniform'> could not be deserialized "
     "properly.", "keras-deserialization", ("GlorotUniform",)),
    ("load-error", "File format not supported: filepath=/x/keras_saved_model. Keras 3 only supports V3 `.keras` "
     "files and legacy H5 format files (`.h5` extension).", "keras-deserialization", ()),
    # Keras 2.2 (TF 1.13/1.14) reading newer .h5 files
    ("load-error", "Unknown layer: Functional", "keras-deserialization", ("Functional",)),
    ("load-error", "('Unrecognized keyword arguments:', dict_keys(['ragged']))", "keras-deserialization",
     ("ragged",)),
    # "keras" alone in a text is no Keras error
    ("load-error", "ValueError: keras went wrong somewhere", "other", ()),
]


@pytest.mark.parametrize("status, text, category, names", CASES)
def test_classify(status: str, text: str, category: str, names: tuple[str, ...]) -> None:
    found = classify(status, text)
    assert found is not None
    assert (found.category, found.names) == (category, names)


def test_tf113_savedmodel_loader_keyerror_names_the_missing_op() -> None:
    found = classify("load-error", "'FusedBatchNormV3'", "KeyError")
    assert found is not None and (found.category, found.names) == ("op-not-registered", ("FusedBatchNormV3",))
    other = classify("load-error", "'some key'", "KeyError")
    assert other is not None and other.category == "other"


@pytest.mark.parametrize("status", ["ok", "outputs-differ", "not-applicable"])
def test_non_failures_have_no_class(status: str) -> None:
    assert classify(status, None) is None


def test_static_check_names_every_missing_op_and_attr() -> None:
    artifact = {"Conv2D": ["T", "strides"], "FusedBatchNormV3": ["T", "U"], "BatchMatMulV2": ["T"],
                "VarHandleOp": ["dtype", "shape", "debug_name"]}
    registry = {"ops": {"Conv2D": {"attrs": ["T", "strides", "padding"]},
                        "VarHandleOp": {"attrs": ["dtype", "shape", "container", "shared_name"]}}}
    found = static_check(artifact, registry)
    assert found.missing_ops == ("BatchMatMulV2", "FusedBatchNormV3")
    assert found.missing_attrs == ("VarHandleOp.debug_name",)


REGISTRY_1X = {"tensorflow": "1.15.5", "ops": {
    "Conv2D": {"attrs": ["T", "strides", "padding"]},
    "VarHandleOp": {"attrs": ["dtype", "shape", "container", "shared_name"]}}}
ARTIFACT = {"Conv2D": ["T", "strides", "explicit_paddings"], "VarHandleOp": ["dtype", "shape", "debug_name"]}
DEFAULTS = {"Conv2D": ["explicit_paddings"]}  # debug_name holds a name, not its default


def test_tf1_saved_model_loader_strips_default_valued_attrs_only() -> None:
    found = static_check(ARTIFACT, REGISTRY_1X, DEFAULTS, "tf1_session")
    assert found.missing_attrs == ("VarHandleOp.debug_name",)
    assert found.tolerated_attrs == ("Conv2D.explicit_paddings",)
    assert "default value" in dict(found.reasons)["Conv2D.explicit_paddings"]


def test_frozen_graph_import_keeps_default_valued_attrs_and_fails_on_them() -> None:
    found = static_check(ARTIFACT, REGISTRY_1X, DEFAULTS, "import_graph_def")
    assert found.missing_attrs == ("Conv2D.explicit_paddings", "VarHandleOp.debug_name")


def test_tf2_consumers_ignore_unknown_attrs_but_not_missing_ops() -> None:
    registry = dict(REGISTRY_1X, tensorflow="2.12.1")
    found = static_check({**ARTIFACT, "DisableCopyOnRead": []}, registry, DEFAULTS, "tf2_load")
    assert found.missing_ops == ("DisableCopyOnRead",) and found.missing_attrs == ()
    assert found.tolerated_attrs == ("Conv2D.explicit_paddings", "VarHandleOp.debug_name")


LAZY_ARTIFACT = {**ARTIFACT, "DisableCopyOnRead": [], "SaveV2": ["dtypes"], "Einsum": ["equation"]}
LAZY_OPS, LAZY_ATTRS = ["DisableCopyOnRead", "SaveV2"], {"SaveV2": ["dtypes"], "Conv2D": ["explicit_paddings"]}
REGISTRY_113 = {"tensorflow": "1.13.2", "ops": {**REGISTRY_1X["ops"], "SaveV2": {"attrs": []}}}


def test_tf113_session_load_tolerates_what_only_unrun_functions_hold() -> None:
    found = static_check(LAZY_ARTIFACT, REGISTRY_113, {}, "tf1_session", LAZY_OPS, LAZY_ATTRS)
    assert found.missing_ops == ("Einsum",)  # in a function serving runs: still fails
    assert found.tolerated_ops == ("DisableCopyOnRead",)
    assert found.missing_attrs == ("VarHandleOp.debug_name",)
    assert found.tolerated_attrs == ("Conv2D.explicit_paddings", "SaveV2.dtypes")
    reasons = dict(found.reasons)
    assert "TF < 1.14" in reasons["DisableCopyOnRead"] and "TF < 1.14" in reasons["SaveV2.dtypes"]
    assert found.as_dict()["tolerated_ops"] == ["DisableCopyOnRead"]


def test_the_default_value_reason_wins_over_the_lazy_one() -> None:
    found = static_check(LAZY_ARTIFACT, REGISTRY_113, DEFAULTS, "tf1_session", LAZY_OPS, LAZY_ATTRS)
    assert "default value" in dict(found.reasons)["Conv2D.explicit_paddings"]


@pytest.mark.parametrize("tensorflow, loader, lazy_attrs", [
    # checks the ops of the whole function library at load, a function body's attrs when it runs
    # (measured: 1.15 serves 2.4 / 2.11 Keras SavedModels with unknown attrs in unrun functions)
    ("1.14.0", "tf1_session", True),
    ("1.15.5", "tf1_session", True),
    ("2.4.4", "tf1_session", True),
    ("2.4.4", "tf2_load", False),  # instantiates every function
    ("1.13.2", "import_graph_def", False),  # the lazy sets describe a Session load of a SavedModel only
    (None, "tf1_session", False),  # unknown consumer: the strict model
])
def test_lazy_function_checks_need_an_old_consumer_and_a_session_load(tensorflow: str | None, loader: str,
                                                                      lazy_attrs: bool) -> None:
    registry = {**REGISTRY_113, "tensorflow": tensorflow}
    found = static_check(LAZY_ARTIFACT, registry, {}, loader, LAZY_OPS, LAZY_ATTRS)
    assert found.missing_ops == ("DisableCopyOnRead", "Einsum") and found.tolerated_ops == ()
    assert ("SaveV2.dtypes" in found.tolerated_attrs) == lazy_attrs
    assert ("SaveV2.dtypes" in found.missing_attrs) != lazy_attrs


def test_without_lazy_sets_the_model_is_unchanged() -> None:
    found = static_check(LAZY_ARTIFACT, REGISTRY_113, {}, "tf1_session")
    assert found.missing_ops == ("DisableCopyOnRead", "Einsum") and found.tolerated_ops == ()
