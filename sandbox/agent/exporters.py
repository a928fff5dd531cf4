"""Formats a probe is saved in. Each exporter writes under a fresh directory and
returns the artifact's path (relative to it) and, where the file cannot tell,
the signature's tensor names. Add a format by registering it in FORMATS.
A format that needs TensorFlow is not applicable in a cell without it."""
import collections
import os
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

import kerasapi
import probes
import tfcompat

Signature = Optional[Dict[str, Dict[str, str]]]


class Exported(object):
    """Where an exporter wrote the artifact (relative to its directory), the
    signature's tensor names where the file cannot tell, and reference outputs
    where they are not the probe's raw outputs (Keras models compute their own)."""

    def __init__(self, path: str, signature: Signature = None, outputs: Optional[np.ndarray] = None,
                 writer: Optional[str] = None) -> None:
        self.path = path
        self.signature = signature
        self.outputs = outputs
        self.writer = writer


class NotApplicable(Exception):
    """This cell cannot write this format (or this probe in it); the message says why."""


def _graph_model(ctx: Any, prep: probes.Prepared) -> Tuple[Any, Any]:
    """The probe's inference graph with variables holding the trained values."""
    variables = ctx.variables(prep.params)
    x = ctx.placeholder(prep.x.shape, name="x")
    y = ctx.tf.identity(prep.probe.forward(ctx.tf, variables, x), name="y")
    ctx.initialize()
    return x, y


def _tf_function(prep: probes.Prepared) -> Tuple[Any, Any]:
    """A tf.Module holding the trained variables and its serving tf.function."""
    tf = tfcompat.tf()
    if not (tfcompat.eager(tf) and hasattr(tf, "function") and hasattr(tf, "Module")):
        raise NotApplicable("needs TF2 behaviour: eager execution, tf.function and tf.Module")
    module = tf.Module()
    module.params = dict((k, tf.Variable(v, name=k)) for k, v in sorted(prep.params.items()))
    spec = tf.TensorSpec(prep.x.shape, tf.float32, name="x")

    def call(x):  # type: (Any) -> Dict[str, Any]
        # no annotations: TF 2.0's SavedModel encodes a tf.function's argspec
        # and cannot encode typing objects (NotEncodableError)
        return {"y": prep.probe.forward(tf, module.params, x)}

    serve = tf.function(call, input_signature=[spec])
    module.serve = serve
    return module, serve


def saved_model(prep: probes.Prepared, out: str) -> Exported:
    """TF2 API: tf.saved_model.save of a tf.Module with signature serving_default."""
    tf = tfcompat.tf()
    if not hasattr(tf.saved_model, "save"):
        raise NotApplicable("tf.saved_model.save is missing")
    module, serve = _tf_function(prep)
    tf.saved_model.save(module, out, signatures={"serving_default": serve.get_concrete_function()})
    return Exported(".")


def saved_model_tf1(prep: probes.Prepared, out: str) -> Exported:
    """TF1 API: SavedModelBuilder, tags ["serve"], signature serving_default x -> y."""
    tf = tfcompat.tf()
    builder_cls = tfcompat.need(tf, "saved_model.builder.SavedModelBuilder")
    predict = (tfcompat.lookup(tf, "saved_model.signature_def_utils.predict_signature_def")
               or tfcompat.need(tf, "saved_model.predict_signature_def"))
    with tfcompat.GraphContext() as ctx:
        x, y = _graph_model(ctx, prep)
        builder = builder_cls(out)
        builder.add_meta_graph_and_variables(
            ctx.session, ["serve"],
            signature_def_map={"serving_default": predict(inputs={"x": x}, outputs={"y": y})})
        builder.save()
    return Exported(".")


def frozen_graph(prep: probes.Prepared, out: str) -> Exported:
    """Variables folded to constants, written as a GraphDef (model.pb)."""
    graph_def, signature = (_freeze_v2 if tfcompat.eager(tfcompat.tf()) else _freeze_v1)(prep)
    os.makedirs(out)
    with open(os.path.join(out, "model.pb"), "wb") as f:
        f.write(graph_def.SerializeToString())
    return Exported("model.pb", signature)


def _freeze_v1(prep: probes.Prepared) -> Tuple[Any, Signature]:
    tf = tfcompat.tf()
    convert = tfcompat.need(tf, "graph_util.convert_variables_to_constants")
    with tfcompat.GraphContext() as ctx:
        x, y = _graph_model(ctx, prep)
        graph_def = convert(ctx.session, ctx.graph.as_graph_def(), [y.op.name])
    return graph_def, {"inputs": {"x": x.name}, "outputs": {"y": y.name}}


def _freeze_v2(prep: probes.Prepared) -> Tuple[Any, Signature]:
    convert = tfcompat.v2_converter()
    if convert is None:
        raise NotApplicable("convert_variables_to_constants_v2 is missing")
    _module, serve = _tf_function(prep)
    frozen = convert(serve.get_concrete_function())
    tf = tfcompat.tf()
    inputs = [t for t in frozen.inputs if t.dtype != tf.resource]
    signature = {"inputs": {"x": inputs[0].name}, "outputs": {"y": frozen.outputs[0].name}}
    return frozen.graph.as_graph_def(), signature


# ---------------------------------------------------------------- Keras formats

def _keras(prep: probes.Prepared, keras: Any) -> Tuple[Any, np.ndarray]:
    """(model, its outputs on the reference input) in `keras`, built once per
    probe and Keras."""
    cache = prep.keras_cache = prep.keras_cache or {}
    key = keras.__name__
    if key not in cache:
        kerasapi.fresh(keras)
        try:
            model = prep.probe.keras_model(keras, prep.params)
        except probes.NoKeras as e:
            raise NotApplicable(str(e))
        y = kerasapi.predict(model, prep.x)
        err = float(np.max(np.abs(y - prep.y))) if prep.y is not None else 0.0  # None: no TF for the raw ops
        if err > 1e-3:  # the Keras twin must compute the raw probe's function
            raise RuntimeError("Keras model of %s differs from its raw ops by %g" % (prep.probe.name, err))
        cache[key] = (model, y)
    return cache[key]


def _native() -> Any:
    keras = kerasapi.native()
    if keras is None:
        raise NotApplicable("this TensorFlow has no tf.keras" if tfcompat.available() else "no Keras in this cell")
    return keras


def _legacy() -> Any:
    keras = kerasapi.legacy()
    if keras is None:
        raise NotApplicable("the tf-keras package is not installed in this cell")
    return keras


def _keras_save(prep: probes.Prepared, keras: Any, out: str, filename: str, **kwargs: Any) -> Exported:
    model, y = _keras(prep, keras)
    os.makedirs(out)
    model.save(os.path.join(out, filename), **kwargs)
    return Exported(filename, outputs=y, writer=kerasapi.writer(keras))


def _h5(prep: probes.Prepared, out: str, keras: Any) -> Exported:
    return _keras_save(prep, keras, out, "model.h5")


def _v3(prep: probes.Prepared, out: str, keras: Any) -> Exported:
    if not kerasapi.reads_keras_v3(keras):
        raise NotApplicable("this Keras (%s) has no .keras format" % kerasapi.version(keras))
    if kerasapi.is_keras3(keras):
        return _keras_save(prep, keras, out, "model.keras")
    return _keras_save(prep, keras, out, "model.keras", save_format="keras_v3")


def _saved_model(prep: probes.Prepared, out: str, keras: Any) -> Exported:
    if kerasapi.is_keras3(keras):
        raise NotApplicable("Keras 3 cannot write a Keras SavedModel (model.export writes a plain one)")
    if not tfcompat.eager(tfcompat.tf()):
        raise NotApplicable("Keras SavedModel export needs TF2 behaviour (eager execution)")
    model, y = _keras(prep, keras)
    model.save(out, save_format="tf")
    return Exported(".", outputs=y, writer=kerasapi.writer(keras))


def keras_h5(prep: probes.Prepared, out: str) -> Exported:
    """model.save('model.h5'): the HDF5 format of Keras 2 (legacy in Keras 3)."""
    return _h5(prep, out, _native())


def keras_v3(prep: probes.Prepared, out: str) -> Exported:
    """model.save('model.keras'): the zip format of Keras 2.12+ and Keras 3."""
    return _v3(prep, out, _native())


def keras_saved_model(prep: probes.Prepared, out: str) -> Exported:
    """model.save(dir, save_format='tf'): Keras 2's SavedModel (with Keras metadata)."""
    return _saved_model(prep, out, _native())


# The same three written by the tf-keras package, where installed: a distinct
# format, not a second writer of one format, because an artifact is addressed
# by (producer, probe, format) everywhere (store, results, report grids, diff),
# and a grid of its own shows what tf-keras users write.

def tf_keras_h5(prep: probes.Prepared, out: str) -> Exported:
    """tf_keras: model.save('model.h5') (TF_USE_LEGACY_KERAS=1 with TF 2.16+)."""
    return _h5(prep, out, _legacy())


def tf_keras_v3(prep: probes.Prepared, out: str) -> Exported:
    """tf_keras: model.save('model.keras')."""
    return _v3(prep, out, _legacy())


def tf_keras_saved_model(prep: probes.Prepared, out: str) -> Exported:
    """tf_keras: model.save(dir, save_format='tf'), the Keras 2 SavedModel."""
    return _saved_model(prep, out, _legacy())


# ---------------------------------------------------------------- TFLite, checkpoint

def _converted(prep: probes.Prepared, configure: Callable[[Any], None]) -> bytes:
    """The probe through this cell's TFLite converter, set up by `configure`."""
    tf = tfcompat.tf()
    if tfcompat.lookup(tf, "lite.TFLiteConverter") is None:
        raise NotApplicable("this TensorFlow has no tf.lite.TFLiteConverter")
    try:
        if tfcompat.eager(tf):
            module, serve = _tf_function(prep)
            concrete = serve.get_concrete_function()
            cls = tf.lite.TFLiteConverter
            try:
                converter = cls.from_concrete_functions([concrete], module)
            except TypeError:  # before TF 2.7: no trackable argument
                converter = cls.from_concrete_functions([concrete])
            configure(converter)
            return converter.convert()
        with tfcompat.GraphContext() as ctx:
            x, y = _graph_model(ctx, prep)
            converter = tfcompat.need(ctx.tf, "lite.TFLiteConverter").from_session(ctx.session, [x], [y])
            configure(converter)
            return converter.convert()
    except NotApplicable:
        raise
    except Exception as e:  # the converter cannot express this probe
        raise NotApplicable("the TFLite converter rejects this probe: %s: %s" % (type(e).__name__, _gist(str(e))))


def _write_tflite(out: str, data: bytes) -> str:
    os.makedirs(out)
    with open(os.path.join(out, "model.tflite"), "wb") as f:
        f.write(data)
    return os.path.join(out, "model.tflite")


def tflite(prep: probes.Prepared, out: str) -> Exported:
    """The probe converted by this cell's TFLite converter (builtin ops only, float)."""
    _write_tflite(out, _converted(prep, lambda converter: None))
    return Exported("model.tflite")


def _optimize(converter: Any) -> None:
    """Post-training quantization: Optimize.DEFAULT (TF 1.14+), or TF 1.13's flag."""
    optimize = tfcompat.lookup(tfcompat.tf(), "lite.Optimize")
    if optimize is not None:
        converter.optimizations = [optimize.DEFAULT]
    elif hasattr(converter, "post_training_quantize"):
        converter.post_training_quantize = True
    else:
        raise NotApplicable("this TFLite converter has no post-training quantization")


def _representative(prep: probes.Prepared) -> Callable[[], Any]:
    """Calibration batches drawn like the probe's inputs (not the reference input)."""
    rng = np.random.RandomState(prep.probe.seed() + 11)
    batches = [prep.probe.inputs(rng) for _ in range(8)]

    def dataset() -> Any:
        for batch in batches:
            yield [batch]
    return dataset


def _full_integer(prep: probes.Prepared) -> Callable[[Any], None]:
    def configure(converter: Any) -> None:
        ops_set = tfcompat.lookup(tfcompat.tf(), "lite.OpsSet.TFLITE_BUILTINS_INT8")
        if ops_set is None or not hasattr(converter, "representative_dataset"):
            raise NotApplicable("this TFLite converter has no full-integer quantization (representative dataset)")
        _optimize(converter)
        converter.representative_dataset = _representative(prep)
        converter.target_spec.supported_ops = [ops_set]  # every op int8, or the conversion fails
    return configure


def _select_tf_ops(converter: Any) -> None:
    """Builtin ops, and select TF ops (Flex) for what no builtin expresses."""
    ops_set = tfcompat.lookup(tfcompat.tf(), "lite.OpsSet")
    if ops_set is None or not hasattr(ops_set, "SELECT_TF_OPS"):
        raise NotApplicable("this TFLite converter has no select TF ops (Flex)")
    wanted = [ops_set.TFLITE_BUILTINS, ops_set.SELECT_TF_OPS]
    if hasattr(converter, "target_spec"):
        converter.target_spec.supported_ops = wanted
    else:  # TF 1.13's converter
        converter.target_ops = set(wanted)


def tflite_flex(prep: probes.Prepared, out: str) -> Exported:
    """Builtin ops plus select TF ops (the Flex delegate runs those): for a
    probe no builtin op expresses (zoo.Flex); one that converts to builtins
    only is the tflite format's."""
    data = _converted(prep, _select_tf_ops)
    import tfliteinfo
    if not tfliteinfo.flex_ops(data):
        raise NotApplicable("converts to builtin ops only, with no select TF op: see the tflite format")
    _write_tflite(out, data)
    return Exported("model.tflite")


def _quantized(prep: probes.Prepared, out: str, configure: Callable[[Any], None]) -> Exported:
    """A quantized flatbuffer, checked to hold int8 weights, with reference
    outputs from this cell's own interpreter (quantization changes them)."""
    path = _write_tflite(out, _converted(prep, configure))
    import tfliteinfo
    with open(path, "rb") as f:
        if not tfliteinfo.quantized_tensors(f.read()):
            raise NotApplicable("the converter quantized nothing: this probe's weights are too small "
                                "(dynamic-range quantization skips tensors under 1024 elements)")
    import loaders
    y = loaders.tflite_interpreter(path, prep.x, {})
    return Exported("model.tflite", outputs=y)


def tflite_dynamic(prep: probes.Prepared, out: str) -> Exported:
    """Dynamic-range quantization: int8 weights, float activations (hybrid kernels)."""
    return _quantized(prep, out, _optimize)


def tflite_int8(prep: probes.Prepared, out: str) -> Exported:
    """Full-integer quantization from a representative dataset: int8 weights and
    activations (float input and output, with QUANTIZE/DEQUANTIZE at the ends)."""
    return _quantized(prep, out, _full_integer(prep))


def _gist(text: str) -> str:
    """The informative line of a converter error (TOCO puts it after 'See console')."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for line in lines:
        if any(w in line for w in ("not supported", "Unsupported", "unsupported", "error:", "Error:")):
            return line[:300]
    return (lines or [""])[0][:300]


def checkpoint(prep: probes.Prepared, out: str) -> Exported:
    """tf.train.Checkpoint of the probe's variables (restored by the consumer
    into the probe's own model code)."""
    tf = tfcompat.tf()
    ckpt_cls = getattr(tf.train, "Checkpoint", None)
    if ckpt_cls is None:
        raise NotApplicable("this TensorFlow has no tf.train.Checkpoint")
    os.makedirs(out)
    prefix = os.path.join(out, "ckpt")
    with tfcompat.context() as ctx:
        variables = ctx.variables(prep.params)
        if ctx.eager:
            path = ckpt_cls(**variables).save(prefix)
        else:
            ctx.initialize()
            path = ckpt_cls(**variables).save(prefix, session=ctx.session)
    return Exported(os.path.basename(path))


Exporter = Callable[[probes.Prepared, str], Exported]


def _buildable(fn: Exporter) -> Exporter:
    """A probe this TF cannot build is not applicable to any format; neither
    is a format that needs TF in a cell without it."""
    def export(prep: probes.Prepared, out: str) -> Exported:
        try:
            return fn(prep, out)
        except (probes.Unbuildable, tfcompat.NoTensorFlow) as e:
            raise NotApplicable(str(e))
    export.__doc__ = fn.__doc__
    return export


FORMATS: Dict[str, Exporter] = collections.OrderedDict((name, _buildable(fn)) for name, fn in [
    ("saved_model", saved_model),
    ("saved_model_tf1", saved_model_tf1),
    ("frozen_graph", frozen_graph),
    ("keras_saved_model", keras_saved_model),
    ("keras_h5", keras_h5),
    ("keras_v3", keras_v3),
    ("tf_keras_saved_model", tf_keras_saved_model),
    ("tf_keras_h5", tf_keras_h5),
    ("tf_keras_v3", tf_keras_v3),
    ("tflite", tflite),
    ("tflite_dynamic", tflite_dynamic),
    ("tflite_int8", tflite_int8),
    ("tflite_flex", tflite_flex),
    ("checkpoint", checkpoint),
])
