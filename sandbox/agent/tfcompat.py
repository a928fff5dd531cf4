"""Importing TF quietly and bridging its APIs by capability, not by version.

Also the two execution contexts probe code runs in: a TF1-style graph with a
session, and TF2 eager execution. Probe code is written once against them.

A runtime cell may hold no TensorFlow at all (Keras on JAX, LiteRT,
tflite-runtime): nothing imports TF before it is needed, `available()` says
whether it is there, and `tf()` raises NoTensorFlow where it is not (an
export or load that needs TF is then not applicable, never an error).
"""
import importlib
import importlib.util
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

_TF: Any = None


class NoTensorFlow(ImportError):
    """This cell holds no TensorFlow (a runtime cell)."""


def available() -> bool:
    """Whether this cell has TensorFlow, without importing it."""
    return _TF is not None or importlib.util.find_spec("tensorflow") is not None


def tf() -> Any:
    """The tensorflow module, imported once with its Python-side logging silenced."""
    global _TF
    if _TF is None:
        if not available():
            raise NoTensorFlow("no TensorFlow in this cell")
        import tensorflow
        _silence(tensorflow)
        _TF = tensorflow
    return _TF


def _silence(tfm: Any) -> None:
    try:
        from tensorflow.python.util import deprecation
        deprecation._PRINT_DEPRECATION_WARNINGS = False
    except Exception:  # an internal detail: fine if it moved
        pass
    logging = lookup(tfm, "logging")
    if logging is not None and hasattr(logging, "set_verbosity"):
        logging.set_verbosity(logging.ERROR)


def v1(tfm: Any) -> Any:
    """The TF1 API namespace: tf.compat.v1 where it exists, else tf itself."""
    compat = getattr(tfm, "compat", None)
    return getattr(compat, "v1", None) or tfm


def lookup(tfm: Any, dotted: str) -> Any:
    """First of tf.compat.v1.<dotted>, tf.<dotted> that exists, else None."""
    for root in (v1(tfm), tfm):
        obj = root
        for part in dotted.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    return None


def need(tfm: Any, dotted: str) -> Any:
    obj = lookup(tfm, dotted)
    if obj is None:
        raise AttributeError("this TensorFlow has no tf.%s (nor tf.compat.v1.%s)" % (dotted, dotted))
    return obj


def import_attr(module: str, name: str) -> Any:
    """getattr(import module, name) or None when either is missing."""
    try:
        return getattr(importlib.import_module(module), name, None)
    except Exception:
        return None


def eager(tfm: Any) -> bool:
    fn = getattr(tfm, "executing_eagerly", None)
    return bool(fn()) if fn is not None else False


def fused_batch_norm(tfm: Any) -> Any:
    """The fused BatchNorm layer function (emits FusedBatchNorm or V3 by TF build)."""
    return need(tfm, "nn.fused_batch_norm")


def v2_converter() -> Any:
    return import_attr("tensorflow.python.framework.convert_to_constants",
                       "convert_variables_to_constants_v2")


def capabilities(tfm: Any) -> Dict[str, bool]:
    sm = getattr(tfm, "saved_model", None)
    return {
        "eager": eager(tfm),
        "compat_v1": v1(tfm) is not tfm,
        "tf_function": hasattr(tfm, "function"),
        "tf_module": hasattr(tfm, "Module"),
        "saved_model_save": hasattr(sm, "save") and eager(tfm),
        "saved_model_load_v2": hasattr(sm, "load") and eager(tfm),
        "saved_model_builder": lookup(tfm, "saved_model.builder.SavedModelBuilder") is not None,
        "graph_util_freeze": lookup(tfm, "graph_util.convert_variables_to_constants") is not None,
        "freeze_v2": v2_converter() is not None,
        "fused_batch_norm": lookup(tfm, "nn.fused_batch_norm") is not None,
    }


class GraphContext(object):
    """Probe code in a fresh TF1-style Graph + Session (works in TF2 via compat.v1)."""

    eager = False

    def __init__(self) -> None:
        self.tf = tf()
        self.v1 = v1(self.tf)
        self.graph = self.v1.Graph()
        self.session: Any = None
        self._scope: Any = None
        self._initialized = False

    def __enter__(self) -> "GraphContext":
        self._scope = self.graph.as_default()
        self._scope.__enter__()
        self.session = self.v1.Session(graph=self.graph)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.session.close()
        self._scope.__exit__(*exc)

    def variables(self, values: Dict[str, np.ndarray]) -> Dict[str, Any]:
        self._initialized = False
        return dict((k, self.tf.Variable(values[k], name=k)) for k in sorted(values))

    def placeholder(self, shape: Tuple[int, ...], name: str = "x") -> Any:
        return self.v1.placeholder(self.tf.float32, shape=shape, name=name)

    def initialized(self) -> None:
        """Variables were set by other means (a checkpoint restore)."""
        self._initialized = True

    def initialize(self) -> None:
        if not self._initialized:
            self.session.run(self.v1.global_variables_initializer())
            self._initialized = True

    def gradients(self, loss_fn: Callable[[], Tuple[Any, Any]], var_list: List[Any]) -> Tuple[Any, Any]:
        loss, aux = loss_fn()
        return aux, self.v1.gradients(loss, var_list)

    def group(self, updates: List[Any]) -> Any:
        return self.tf.group(*updates)

    def repeat(self, step_fn: Callable[[], Any], steps: int) -> None:
        op = step_fn()
        self.initialize()
        for _ in range(steps):
            self.session.run(op)

    def values(self, variables: Dict[str, Any]) -> Dict[str, np.ndarray]:
        self.initialize()
        return dict(self.session.run(variables))

    def call(self, fn: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
        ph = self.placeholder(x.shape, name="reference_x")
        y = fn(ph)
        self.initialize()
        return np.asarray(self.session.run(y, {ph: x}))


class EagerContext(object):
    """Probe code under TF2 eager execution."""

    eager = True

    def __init__(self) -> None:
        self.tf = tf()

    def __enter__(self) -> "EagerContext":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def variables(self, values: Dict[str, np.ndarray]) -> Dict[str, Any]:
        return dict((k, self.tf.Variable(values[k], name=k)) for k in sorted(values))

    def gradients(self, loss_fn: Callable[[], Tuple[Any, Any]], var_list: List[Any]) -> Tuple[Any, Any]:
        with self.tf.GradientTape() as tape:
            loss, aux = loss_fn()
        return aux, tape.gradient(loss, var_list)

    def group(self, updates: List[Any]) -> Any:
        return None

    def repeat(self, step_fn: Callable[[], Any], steps: int) -> None:
        for _ in range(steps):
            step_fn()

    def values(self, variables: Dict[str, Any]) -> Dict[str, np.ndarray]:
        return dict((k, v.numpy()) for k, v in variables.items())

    def call(self, fn: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
        return np.asarray(fn(self.tf.constant(x)).numpy())


def context() -> Any:
    """The cell's native context: eager where TF runs eagerly, else a graph session."""
    return EagerContext() if eager(tf()) else GraphContext()
