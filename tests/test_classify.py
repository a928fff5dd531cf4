from __future__ import annotations

from typing import Any

import pytest

from sandbox import classify as classify_module
from sandbox.agent.tflite_ops import BUILTIN_OPS
from sandbox.check.static import static_check
from sandbox.classify import CATEGORIES, FAILED, Classified, classify

# Real error texts, as TF, Keras and TFLite printed them in this project's runs (the map of
# TF 1.12 to 2.21), with where they were raised when the class depends on it:
# (status, text, error_type, raised_in, raised_by) -> (category, names)
KERAS_210 = "keras/engine/input_layer.py:152 in __init__"
CASES = [
    # measured in reports/keras-map: Keras 3.0.5 reading LSTM/GRU files of Keras 2 and newer Keras 3
    ("load-error", "Could not interpret initializer identifier: {'module': 'keras.initializers', 'class_name': "
     "'Orthogonal', 'config': {'seed': None, 'gain': 1.0}, 'registered_name': None}", "ValueError",
     "keras/src/initializers/__init__.py:117 in get", "LSTMCell.__init__", "keras-deserialization", ("Orthogonal",)),
    # the words of Keras 3.0's activations.get (keras/src/activations/__init__.py) for a name it lacks
    ("load-error", "Could not interpret activation function identifier: gelu_new", "ValueError",
     "keras/src/activations/__init__.py:104 in get", "Dense.__init__", "keras-deserialization", ("gelu_new",)),
    ("load-error", "functional_from_config.<locals>.get_tensor() takes 3 positional arguments but 11 were given",
     "TypeError", "keras/src/models/functional.py:552 in <listcomp>", "Functional.functional_from_config",
     "keras-deserialization", ("Functional",)),
    ("error", "Unable to synchronously create dataset (name already exists)", "ValueError",
     "h5d.pyx:137 in h5py.h5d.create", "Group.create_dataset", "keras-save", ("HDF5 dataset name",)),
    ("load-error", "Op type not registered 'FusedBatchNormV3' in binary running on host. Make sure the Op and Kernel "
     "are registered in the binary running in this process.", None, None, None, "op-not-registered", ("FusedBatchNormV3",)),
    ("load-error", "No op named BatchMatMulV2 in defined operations.", None, None, None, "op-not-registered",
     ("BatchMatMulV2",)),
    ("load-error", "NodeDef mentions attr 'debug_name' not in Op<name=VarHandleOp; signature= -> resource:resource; "
     "attr=container:string,default=\"\">; NodeDef: {{node x}}", None, None, None, "unknown-attr", ("VarHandleOp.debug_name",)),
    ("run-error", "Expected input[1] == 'TensorArrayV2Stack/TensorListStack/element_shape:output:0' to be a control "
     "input.\n\tIn {{node TensorArrayV2Stack/TensorListStack}}\n\t [[{{node model/lstm/PartitionedCall}}]]", None, None, None,
     "op-signature", ("TensorListStack",)),
    ("run-error", "No OpKernel was registered to support Op 'Einsum' used by node", None, None, None, "missing-kernel",
     ("Einsum",)),
    ("run-error", "No registered 'CudnnRNNV3' OpKernel for 'CPU' devices compatible with node {{node x}}", None, None,
     None, "missing-kernel", ("CudnnRNNV3",)),
    # TF 2.0-2.2 eager placement of the GPU-only op (a checkpoint restored into the probe's code)
    ("run-error", "Could not find valid device for node.\nNode:{{node CudnnRNNV3}}\nAll kernels registered for op "
     "CudnnRNNV3 :\n  <no registered kernels>\n [Op:CudnnRNNV3]", "NotFoundError", None, None, "missing-kernel",
     ("CudnnRNNV3",)),
    ("run-error", "Could not find device for node: {{node CudnnRNNV3}} = CudnnRNNV3[T=DT_FLOAT, direction=\"unidirectional"
     "\", dropout=0]", "NotFoundError", None, None, "missing-kernel", ("CudnnRNNV3",)),
    # Keras' LayerNormalization runs fused batch norm in NCHW; TF 1.15's CPU kernel takes NHWC only
    ("run-error", "The CPU implementation of FusedBatchNorm only supports NHWC tensor format for now.\n\t [[{{node "
     "model/layer_normalization/FusedBatchNormV3}}]]", "InternalError", None, None, "kernel-unsupported",
     ("FusedBatchNorm.data_format",)),
    ("run-error", "The Conv2D op currently only supports the NHWC tensor format on the CPU. The op was given the format: "
     "NCHW", "UnimplementedError", None, None, "kernel-unsupported", ("Conv2D.data_format",)),
    # an interpreter without the Flex delegate (ai-edge-litert 1.2.0 and TF 2.1.4, measured)
    ("load-error", "Select TensorFlow op(s), included in the given model, is(are) not supported by this interpreter. "
     "Make sure you apply/link the Flex delegate before inference.Node number 0 (FlexSinh) failed to prepare.",
     "RuntimeError", None, None, "tflite-flex-op", ("FlexSinh",)),
    ("load-error", "Encountered unresolved custom op: FlexSinh.\nNode number 0 (FlexSinh) failed to prepare.",
     "RuntimeError", None, None, "tflite-flex-op", ("FlexSinh",)),
    ("run-error", "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '11'", None, None, None,
     "tflite-op-version", ("FULLY_CONNECTED@v11",)),
    # an interpreter whose schema predates the op names only its number
    ("load-error", "Op builtin_code out of range: 119. Are you using old TFLite binary with newer model?"
     "Registration failed.", None, None, None, "tflite-op-version", ("WHILE",)),
    ("load-error", "Encountered unresolved custom op: MyOp.", None, None, None, "tflite-op-version",
     ("MyOp",)),
    # TF 2.1-2.3 interpreters on a dynamic-range CONV_2D (their own, too)
    ("run-error", "Node number 0 (CONV_2D) failed to invoke.\n", "RuntimeError",
     "tensorflow/lite/python/interpreter.py:524 in invoke", "Interpreter.invoke", "tflite-kernel", ("CONV_2D",)),
    # Keras 2 files read by Keras 3 (the innermost "Exception encountered" names the keyword)
    ("load-error", "Unrecognized keyword arguments passed to LSTM: {'time_major': False}", None, None, None,
     "keras-config", ("LSTM.time_major",)),
    # Keras 2.8-2.11 reading a Keras 3 .h5: the class is the one at work where it was raised
    ("load-error", "Unrecognized keyword arguments: ['batch_shape', 'optional']", "ValueError", KERAS_210,
     "InputLayer.__init__", "keras-config", ("InputLayer.batch_shape", "InputLayer.optional")),
    # Keras 2.12-2.15: the text names the class
    ("load-error", "Error when deserializing class 'InputLayer' using config={'batch_shape': [None, 5]}.\n\n"
     "Exception encountered: Unrecognized keyword arguments: ['batch_shape']", "TypeError", None, None,
     "keras-config", ("InputLayer.batch_shape",)),
    # Keras 2.2 (TF 1.13/1.14) reading newer .h5 files
    ("load-error", "('Unrecognized keyword arguments:', dict_keys(['ragged']))", "ValueError",
     "tensorflow/python/keras/engine/input_layer.py:80 in __init__", "InputLayer.__init__", "keras-config",
     ("InputLayer.ragged",)),
    ("load-error", "('Keyword argument not understood:', 'query_shape')", "TypeError",
     "tensorflow/python/keras/utils/generic_utils.py:808 in validate_kwargs", "MultiHeadAttention.__init__",
     "keras-config", ("MultiHeadAttention.query_shape",)),
    ("load-error", "<class 'keras.src.initializers.random_initializers.GlorotUniform'> could not be deserialized "
     "properly.\n\nException encountered: GlorotUniform.__init__() got an unexpected keyword argument 'dtype'",
     "TypeError", None, None, "keras-config", ("GlorotUniform.dtype",)),
    ("load-error", "MultiHeadAttention.build() missing 1 required positional argument: 'value_shape'", "TypeError",
     "keras/src/layers/layer.py:226 in build_wrapper", "MultiHeadAttention.build_wrapper", "keras-config",
     ("MultiHeadAttention.value_shape",)),
    ("load-error", "<class 'keras.src.initializers.constant_initializers.Zeros'> could not be deserialized properly."
     "\n\nException encountered: Zeros() takes no arguments", "TypeError", None, None, "keras-config", ("Zeros",)),
    # nested: the class is the last one named before the innermost error (TF 1.14's .h5 in Keras 3.3, tf-map)
    ("load-error", "Error when deserializing class 'LayerNormalization' using config={'name': 'layer_normalization', "
     "'trainable': True, 'dtype': 'float32', 'epsilon': 0.001, 'center': True, 'scale': True, 'beta_initializer': "
     "{'class_name': 'Zeros', 'config': {'dtype': 'float32'}}, 'gamma_initializer': {'class_name': 'Ones', 'config': "
     "{'dtype': 'float32'}}, 'beta_regularizer': None, 'gamma_regularizer': None, 'beta_constraint': None, "
     "'gamma_constraint': None, 'axis': 1}.\n\nException encountered: <class "
     "'keras.src.initializers.constant_initializers.Zeros'> could not be deserialized properly. Please ensure that "
     "components that are Python object instances (layers, models, etc.) returned by `get_config()` are explicitly "
     "deserialized in the model's `from_config()` method.\n\nconfig={'module': 'keras.initializers', 'class_name': "
     "'Zeros', 'config': {'dtype': 'float32'}, 'registered_name': None}.\n\nException encountered: Zeros() takes no "
     "arguments", "TypeError", "keras/src/ops/operation.py:236 in from_config", "LayerNormalization.from_config",
     "keras-config", ("Zeros",)),
    # Keras 2.13 reading a 2.15 .keras: the weights moved inside model.weights.h5
    ("load-error", "Layer 'dense' expected 2 variables, but received 0 variables during loading. Expected: "
     "['dense/kernel:0', 'dense/bias:0']", "ValueError", "keras/src/saving/saving_lib.py:446 in _load_state",
     "Dense.load_own_variables", "keras-weights", ("Dense",)),
    ("load-error", "Layer 'lstm_cell' expected 3 variables, but received 0 variables during loading.", "ValueError",
     None, None, "keras-weights", ("layer 'lstm_cell'",)),
    # Keras 3 .keras / .h5 read by Keras 2.12
    ("load-error", "Could not deserialize class 'Functional' because its parent module "
     "keras.src.models.functional cannot be imported. Full object config: {'module': 'keras.src.models'}", None, None,
     None, "keras-deserialization", ("Functional",)),
    ("load-error", "Error when deserializing class 'Conv2D' using config={'name': 'conv2d'}", None, None, None,
     "keras-deserialization", ("Conv2D",)),
    ("load-error", "<class 'keras.src.initializers.random_initializers.GlorotUniform'> could not be deserialized "
     "properly.", None, None, None, "keras-deserialization", ("GlorotUniform",)),
    ("load-error", "Unable to restore object of class 'MultiHeadAttention' likely due to name conflict with built-in "
     "Keras class '<class 'keras.layers.attention.multi_head_attention.MultiHeadAttention'>'. To override the built-in "
     "Keras definition of the object, decorate your class with `@keras.utils.register_keras_serializable`",
     "RuntimeError", None, None, "keras-deserialization", ("MultiHeadAttention",)),
    ("load-error", "Unknown layer: Functional", None, None, None, "keras-deserialization", ("Functional",)),
    ("load-error", "Could not locate function 'swish'. Make sure custom classes are decorated", None, None, None,
     "keras-deserialization", ("swish",)),
    ("load-error", "Expecting value: line 1 column 1 (char 0)", "JSONDecodeError", "json/decoder.py:355 in raw_decode",
     "JSONDecoder.raw_decode", "keras-deserialization", ("SavedModel Keras metadata",)),
    ("load-error", "File format not supported: filepath=/x/keras_saved_model. Keras 3 only supports V3 `.keras` "
     "files and legacy H5 format files (`.h5` extension).", None, None, None, "keras-deserialization",
     ("legacy SavedModel format",)),
    # safe mode: sandbox's agent (sandbox/agent/kerascode.py) in every Keras, and Keras 3's own
    ("load-error", "Requested the deserialization of a Lambda layer: the model carries code, refused in safe mode in "
     "every Keras and format (safe_mode; a repro spec opts out with keras_safe_mode = false)", "CodeInModel", None, None,
     "keras-deserialization", ("Lambda",)),
    ("load-error", "Requested the deserialization of an object of module 'evil.payload' (imported to load it): the "
     "model carries code, refused in safe mode", "CodeInModel", None, None, "keras-deserialization", ("evil.payload",)),
    ("load-error", "Requested the deserialization of a model whose config cannot be checked for code (config larger "
     "than 67108864 bytes): refused in safe mode", "CodeInModel", None, None, "keras-deserialization",
     ("unchecked config",)),
    ("load-error", "Unable to synchronously open file (file signature not found)", "OSError", None, None,
     "keras-deserialization", ("HDF5 file signature",)),
    # Keras 3 beside tf-keras reading a tf-keras `.keras`: rebuilt as tf-keras's class, not restorable
    ("load-error", "Expected object to be an instance of `KerasSaveable`, but got <tf_keras.src.engine.functional."
     "Functional object at 0x7fa4524ebe00> of type <class 'tf_keras.src.engine.functional.Functional'>", "ValueError",
     "keras/src/saving/saving_lib.py:486 in _walk_saveable", None, "keras-deserialization", ("Functional",)),
    ("load-error", "Could not deserialize 'keras.initializers.OrthogonalInitializer' because it is not a "
     "KerasSaveable subclass", "ValueError", "keras/src/saving/serialization_lib.py:1 in deserialize_keras_object",
     "GRUCell.__init__", "keras-deserialization", ("OrthogonalInitializer",)),
    # an export: convert_variables_to_constants_v2 of TF 2.0-2.2 on a while loop reading a variable
    ("error", "Cannot find the Placeholder op that is an input to the ReadVariableOp.", "ValueError",
     "tensorflow/python/framework/convert_to_constants.py:526 in _convert_variables_to_constants_v2_impl", None,
     "converter-refused", ("ReadVariableOp",)),
    ("load-error", "Error parsing message with type 'tensorflow.SavedModel'", None, None, None, "protobuf-parse",
     ("tensorflow.SavedModel",)),
    ("load-error", "google.protobuf.message.DecodeError: Truncated message.", "DecodeError", None, None, "protobuf-parse",
     ("protobuf message",)),
    # FromString on bytes that do not parse: protobuf 3.14 (cpp, TF 1.15) and 4.23 (upb, TF 2.12) alike, measured;
    # it names no message type, so no culprit
    ("load-error", "Error parsing message", "DecodeError", None, None, "protobuf-parse", ()),
    ("crash", "the agent process died of SIGSEGV (segmentation fault) while exporting lstm/tflite_int8",
     "SIGSEGV", "tensorflow/lite/python/optimize/calibrator.py:152 in _feed_tensors", None, "crash",
     ("SIGSEGV in calibrator._feed_tensors",)),
    ("timeout", "no result after 900s (timeout) while loading a/b/c/d", "timeout",
     "tensorflow/python/client/session.py:1453 in _call_tf_sessionrun", None, "timeout",
     ("session._call_tf_sessionrun",)),
    ("crash", "the agent process died (exit -11)", "crash", None, None, "crash", ()),
    ("load-error", "something nobody expected", None, None, None, "other", ()),
    # "keras" alone in a text is no Keras error
    ("load-error", "ValueError: keras went wrong somewhere", None, None, None, "other", ()),
]


@pytest.mark.parametrize("status, text, error_type, raised_in, raised_by, category, names", CASES)
def test_classify(status: str, text: str, error_type: str | None, raised_in: str | None, raised_by: str | None,
                  category: str, names: tuple[str, ...]) -> None:
    found = classify(status, text, error_type, raised_in, raised_by)
    assert found is not None
    assert (found.category, found.names) == (category, names)


def _deciding_rule(text: str) -> int | None:
    return next((i for i, (_, pattern, _) in enumerate(classify_module._RULES) if pattern.search(text)), None)


def test_every_pattern_decides_a_case() -> None:
    """Each rule is the first to match at least one real text: dropping or
    breaking any of them changes a case's class (a mutation fails a test)."""
    decided = {_deciding_rule(case[1]) for case in CASES}
    missing = [classify_module._RULES[i][1].pattern for i in range(len(classify_module._RULES)) if i not in decided]
    assert not missing, missing


def test_every_category_is_documented_and_reached() -> None:
    reached = {case[5] for case in CASES}
    assert reached == set(CATEGORIES), set(CATEGORIES) ^ reached


def test_a_builtin_code_past_the_known_table_is_named_by_its_number() -> None:
    """"Op builtin_code out of range: N" from an interpreter older than the op; an N the agent's
    table (sandbox/agent/tflite_ops.py) does not reach yet is BUILTIN_N, not a crash."""
    for code in (len(BUILTIN_OPS), len(BUILTIN_OPS) + 7):
        found = classify("load-error", f"Op builtin_code out of range: {code}. Are you using old TFLite binary with newer "
                         "model?Registration failed.")
        assert found == Classified("tflite-op-version", (f"BUILTIN_{code}",))


def test_tf113_savedmodel_loader_keyerror_names_the_missing_op() -> None:
    found = classify("load-error", "'FusedBatchNormV3'", "KeyError",
                     "tensorflow/python/saved_model/loader_impl.py:212 in _RemoveDefaultAttrs")
    assert found is not None and (found.category, found.names) == ("op-not-registered", ("FusedBatchNormV3",))
    other = classify("load-error", "'some key'", "KeyError")
    assert other is not None and other.category == "other"
    # the guard: only a KeyError is an op lookup, and only outside Keras
    assert classify("load-error", "'FusedBatchNormV3'", "ValueError").category == "other"  # type: ignore[union-attr]
    keras = classify("load-error", "'Functional'", "KeyError", "keras/engine/functional.py:1 in from_config",
                     "Functional.from_config")
    assert keras is not None and keras.category == "keras-config"


@pytest.mark.parametrize("text, raised_in, raised_by, names", [
    # Keras 2.5+ reading TF 2.4's MultiHeadAttention config, which lacks query_shape
    ("'query_shape'", "keras/layers/attention/multi_head_attention.py:308 in from_config",
     "MultiHeadAttention.from_config", ("MultiHeadAttention.query_shape",)),
    # TF 2.1's Keras reading a 2.2+ InputLayer (batch_input_shape is a dict there): KeyError 0
    ("0", "tensorflow_core/python/keras/engine/input_layer.py:86 in __init__", "InputLayer.__init__", ("InputLayer",)),
])
def test_a_keyerror_raised_in_keras_is_a_config_entry_it_lacks(text: str, raised_in: str, raised_by: str,
                                                               names: tuple[str, ...]) -> None:
    found = classify("load-error", text, "KeyError", raised_in, raised_by)
    assert found is not None and (found.category, found.names) == ("keras-config", names)
    assert classify("load-error", text, "KeyError") == Classified("other", ())  # raised elsewhere: not explained


@pytest.mark.parametrize("status", ["ok", "outputs-differ", "not-applicable", "harness-error", "exported"])
def test_non_failures_have_no_class(status: str) -> None:
    assert classify(status, "Op type not registered 'X'") is None


def test_harness_error_is_never_a_failure() -> None:
    assert "harness-error" not in FAILED


def test_static_check_names_every_missing_op_and_attr() -> None:
    artifact = {"Conv2D": ["T", "strides"], "FusedBatchNormV3": ["T", "U"], "BatchMatMulV2": ["T"],
                "VarHandleOp": ["dtype", "shape", "debug_name"]}
    registry = {"ops": {"Conv2D": {"attrs": ["T", "strides", "padding"]},
                        "VarHandleOp": {"attrs": ["dtype", "shape", "container", "shared_name"]}}}
    found = static_check(artifact, registry)
    assert found.missing_ops == ("BatchMatMulV2", "FusedBatchNormV3")
    assert found.missing_attrs == ("VarHandleOp.debug_name",)


REGISTRY_1X: dict[str, Any] = {"tensorflow": "1.15.5", "ops": {
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
