"""Ways to load an artifact and run it. A loader has two phases, so that a
failure is attributed to loading (load-error) or to running (run-error).
Add a loader by registering it in LOADERS under the formats it reads."""
import collections
import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import catalog
import graphinfo
import kerasapi
import kerascode
import probes
import tfcompat


class NotApplicable(Exception):
    """This cell has no such loader; the message says why."""


class Stage(Exception):
    """Wraps a foreign exception with the phase it happened in."""

    def __init__(self, phase: str, cause: BaseException) -> None:
        Exception.__init__(self, phase)
        self.phase = phase
        self.cause = cause


def _phase(phase: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:
        raise Stage(phase, e) from e


def _run(x: Optional[np.ndarray], fn: Callable[[], Any]) -> Optional[np.ndarray]:
    """The run phase; skipped (None) for an artifact that came without
    reference inputs (a user's model in a repro): then loading is the test."""
    if x is None:
        return None
    return np.asarray(_phase("run", fn))


def tf1_session(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """saved_model.loader.load into a fresh Graph + Session, run serving_default."""
    tf = tfcompat.tf()
    v1 = tfcompat.v1(tf)
    load = tfcompat.need(tf, "saved_model.loader.load")
    graph = v1.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        meta = _phase("load", lambda: load(session, ["serve"], path))
        sig = _phase("load", lambda: meta.signature_def["serving_default"])
        inp, out = _phase("load", lambda: (_only(sig.inputs, "x"), _only(sig.outputs, "y")))
        return _run(x, lambda: session.run(sig.outputs[out].name, {sig.inputs[inp].name: x}))


def _only(names: Any, preferred: str) -> str:
    """The signature key to use: `preferred` (the zoo's x / y), else the one key
    there is (a Keras SavedModel names them after its layers: input_1, dense)."""
    keys = sorted(names)
    if preferred in keys:
        return preferred
    if len(keys) != 1:
        raise ValueError("the serving signature has %s, not one tensor (or %r)" % (keys, preferred))
    return keys[0]


def tf2_load(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """tf.saved_model.load (TF2 API) and a call of signatures['serving_default']."""
    tf = tfcompat.tf()
    if not tfcompat.eager(tf):
        raise NotApplicable("eager execution is off in this cell (TF1 behaviour)")
    if not hasattr(tf.saved_model, "load"):
        raise NotApplicable("tf.saved_model.load is missing")
    loaded = _phase("load", lambda: tf.saved_model.load(path))
    fn = _phase("load", lambda: loaded.signatures["serving_default"])
    inp = _phase("load", lambda: _only(_signature_inputs(path, "serving_default"), "x"))
    return _run(x, lambda: _one_output(fn(**{inp: tf.constant(x)})))


def _signature_inputs(path: str, key: str) -> List[str]:
    """A signature's input keys, from the SavedModel's own SignatureDef (the
    serving MetaGraph's): the concrete function does not say everywhere (its
    structured_input_signature is None in TF 2.0-2.3 for a TF1-builder SavedModel)."""
    metas = graphinfo.read_saved_model(path).meta_graphs
    for meta in sorted(metas, key=lambda m: "serve" not in m.meta_info_def.tags):
        if key in meta.signature_def:
            return list(meta.signature_def[key].inputs)
    raise KeyError("the SavedModel has no signature %r" % key)


def _one_output(outputs: Dict[str, Any]) -> Any:
    return outputs[_only(outputs, "y")].numpy()


def import_graph_def(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """A frozen GraphDef imported with name='' and run by the recorded tensor names."""
    tf = tfcompat.tf()
    v1 = tfcompat.v1(tf)
    signature = artifact["signature"]
    graph_def = _phase("load", lambda: graphinfo.read_graph_def(path))
    graph = v1.Graph()
    with graph.as_default():
        _phase("load", lambda: v1.import_graph_def(graph_def, name=""))
    with v1.Session(graph=graph) as session:
        return _run(x, lambda: session.run(signature["outputs"]["y"], {signature["inputs"]["x"]: x}))


# Keras loads refuse to run code stored in a model (Lambda layers, modules to
# import): in every Keras and format, whether or not its own safe_mode covers
# the format (kerascode); `load --keras-unsafe` (a repro spec's opt-out) allows it.
KERAS_SAFE_MODE = [True]


def _load_model_kwargs(load_model: Any) -> Dict[str, Any]:
    kwargs = {"compile": False}  # type: Dict[str, Any]
    try:
        accepts = "safe_mode" in inspect.signature(load_model).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts:
        kwargs["safe_mode"] = KERAS_SAFE_MODE[0]
    return kwargs


def _keras_load(keras: Any, path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    if artifact["format"] in catalog.KERAS_V3 and not kerasapi.reads_keras_v3(keras):
        raise NotApplicable("this Keras (%s) predates the .keras format" % kerasapi.version(keras))
    if artifact["format"] in catalog.KERAS_SAVED_MODELS and not kerasapi.reads_keras_saved_model(keras):
        raise NotApplicable("this Keras (%s) cannot load SavedModel directories" % kerasapi.version(keras))
    refused = kerascode.refusal(path) if KERAS_SAFE_MODE[0] else None
    if refused is not None:
        raise Stage("load", refused)
    kerasapi.fresh(keras)
    kwargs = _load_model_kwargs(keras.models.load_model)
    model = _phase("load", lambda: keras.models.load_model(path, **kwargs))
    return _run(x, lambda: kerasapi.predict(model, x))


def keras2(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """keras.models.load_model of Keras 2: tf.keras up to TF 2.15, else tf-keras."""
    keras = kerasapi.keras2()
    if keras is None:
        raise NotApplicable("no Keras 2 here (tf.keras is Keras 3 and tf-keras is not installed)")
    return _keras_load(keras, path, x, artifact)


def keras3(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """keras.models.load_model of Keras 3."""
    keras = kerasapi.keras3()
    if keras is None:
        raise NotApplicable("no Keras 3 here")
    return _keras_load(keras, path, x, artifact)


def interpreters() -> "collections.OrderedDict[str, Any]":
    """The TFLite interpreter classes this cell has, by loader name: TF's own,
    LiteRT's (ai-edge-litert), tflite-runtime's; found by import."""
    found = collections.OrderedDict()  # type: collections.OrderedDict[str, Any]
    for loader in ("tflite_interpreter", "ai_edge_litert", "tflite_runtime"):
        try:
            cls = _interpreter_class(loader)
        except NotApplicable:
            continue
        found[loader] = cls
    return found


def _interpreter_class(loader: str) -> Any:
    if loader == "tflite_interpreter":
        if not tfcompat.available():
            raise NotApplicable("no TensorFlow in this cell")
        found = tfcompat.lookup(tfcompat.tf(), "lite.Interpreter")
        if found is None:
            raise NotApplicable("this TensorFlow has no tf.lite.Interpreter")
        return found
    module, package = {"ai_edge_litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
                       "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime")}[loader]
    found = tfcompat.import_attr(module, "Interpreter")
    if found is None:
        raise NotApplicable("%s is not installed in this cell" % package)
    return found


def _interpret(loader: str, path: str, x: np.ndarray) -> np.ndarray:
    """A TFLite interpreter: construct (op resolution), allocate (prepare every
    node: a Flex node fails here without the Flex delegate), invoke."""
    interpreter_cls = _interpreter_class(loader)
    interpreter = _phase("load", lambda: interpreter_cls(model_path=path))
    _phase("load", interpreter.allocate_tensors)

    def run() -> np.ndarray:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    return _run(x, run)


def tflite_interpreter(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """tf.lite.Interpreter."""
    return _interpret("tflite_interpreter", path, x)


def ai_edge_litert(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """ai_edge_litert.interpreter.Interpreter (LiteRT: TFLite without TF)."""
    return _interpret("ai_edge_litert", path, x)


def tflite_runtime(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """tflite_runtime.interpreter.Interpreter (the tflite-runtime package)."""
    return _interpret("tflite_runtime", path, x)


def checkpoint_restore(path: str, x: np.ndarray, artifact: Dict[str, Any]) -> np.ndarray:
    """tf.train.Checkpoint.restore into the probe's own variables (started from
    other values), then the probe's forward in this cell's native context."""
    tf = tfcompat.tf()
    probe = probes.PROBES.get(artifact["probe"])
    if probe is None:
        raise NotApplicable("probe %s is unknown to this agent (add its module)" % artifact["probe"])
    ckpt_cls = getattr(tf.train, "Checkpoint", None)
    if ckpt_cls is None:
        raise NotApplicable("this TensorFlow has no tf.train.Checkpoint")
    with tfcompat.context() as ctx:
        variables = ctx.variables(probes.fresh_params(probe))
        ckpt = ckpt_cls(**variables)  # keep it: the restore status holds it by weak reference
        status = _phase("load", lambda: ckpt.restore(path))
        if not ctx.eager:
            _phase("load", lambda: status.initialize_or_restore(ctx.session))
            ctx.initialized()
        try:
            return _phase("run", lambda: ctx.call(lambda t: probe.forward(tf, variables, t), x))
        except Stage as e:
            if isinstance(e.cause, probes.Unbuildable):  # this TF cannot build the probe's graph
                raise NotApplicable(str(e.cause))
            raise


Loader = Callable[[str, np.ndarray, Dict[str, Any]], np.ndarray]
FUNCTIONS = {
    "tf1_session": tf1_session,
    "tf2_load": tf2_load,
    "import_graph_def": import_graph_def,
    "keras2": keras2,
    "keras3": keras3,
    "tflite_interpreter": tflite_interpreter,
    "checkpoint_restore": checkpoint_restore,
    "ai_edge_litert": ai_edge_litert,
    "tflite_runtime": tflite_runtime,
}  # type: Dict[str, Loader]
LOADERS: Dict[str, Tuple[Tuple[str, ...], Loader]] = collections.OrderedDict(
    (name, (formats, FUNCTIONS[name])) for name, formats in catalog.LOADER_FORMATS.items())


def for_format(fmt: str) -> List[str]:
    return catalog.loaders_for(fmt)


def get(name: str) -> Loader:
    return LOADERS[name][1]


def compare(y: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> Dict[str, Any]:
    """ok / outputs-differ (np.allclose semantics) with the max absolute error and
    the max relative error over elements whose reference exceeds atol."""
    y = np.asarray(y)
    ref = np.asarray(ref)
    if y.shape != ref.shape:
        return {"status": "outputs-differ", "max_abs_err": None, "max_rel_err": None,
                "reason": "shape %s != reference shape %s" % (list(y.shape), list(ref.shape))}
    diff = np.abs(y.astype(np.float64) - ref.astype(np.float64))
    scale = np.abs(ref.astype(np.float64))
    significant = scale > atol  # relative error only where the reference is not ~0
    rel = diff[significant] / scale[significant]
    ok = bool(np.allclose(y, ref, rtol=rtol, atol=atol))
    reason: Optional[str] = None
    if not np.all(np.isfinite(y)):
        reason = "non-finite outputs"
    elif not ok:
        reason = "outputs differ beyond atol=%g rtol=%g" % (atol, rtol)
    return {"status": "ok" if ok else "outputs-differ",
            "max_abs_err": float(diff.max()) if diff.size else 0.0,
            "max_rel_err": float(rel.max()) if rel.size else 0.0, "reason": reason}
