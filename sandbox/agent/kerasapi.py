"""The Keras implementations a cell holds, found by import, not by version string.

- "keras2": Keras 2 — tf.keras where it is Keras 2 (TF <= 2.15, TF1's bundled
  Keras), else the tf-keras package (tf_keras) where installed.
- "keras3": the keras package where it is Keras 3.
Writers: the cell's native Keras (what tf.keras resolves to; in a cell without
TensorFlow, the keras package on its backend) writes the Keras formats
(keras_h5, keras_v3, keras_saved_model); the tf-keras package, where
installed, writes them again as tf_keras_* formats, as users who set
TF_USE_LEGACY_KERAS=1 (which routes tf.keras to tf_keras) do.
"""
import importlib
import inspect
from typing import Any, Dict, List, Optional

import numpy as np

import tfcompat

_CACHE = {}


def version(keras: Any) -> str:
    found = getattr(keras, "__version__", None)
    if found is None and keras.__name__.startswith("keras."):
        # tf.keras beside Keras 3.0-3.2 is keras._tf_keras.keras, a view of the keras package without a version
        found = getattr(_import("keras"), "__version__", None)
    if found is None:  # TF1's tf.keras carries it on its backend-free twin
        found = getattr(getattr(keras, "api", None), "__version__", None) or "2 (tf.keras)"
    return str(found)


def _major(keras: Any) -> int:
    try:
        return int(version(keras).split(".")[0])
    except ValueError:
        return 2


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def native() -> Any:
    """tf.keras: Keras 2 up to TF 2.15, Keras 3 from TF 2.16 (and where a Keras
    cell puts Keras 3 beside an older TF); without TF, the keras package."""
    if "native" not in _CACHE:
        _CACHE["native"] = getattr(tfcompat.tf(), "keras", None) if tfcompat.available() else _import("keras")
    return _CACHE["native"]


def backend(keras: Any) -> Optional[str]:
    """The backend a Keras 3 runs on ("tensorflow", "jax"); None for Keras 2."""
    if not is_keras3(keras):
        return None
    name = getattr(getattr(keras, "backend", None), "backend", None)
    return str(name()) if callable(name) else None


def legacy() -> Optional[Any]:
    """The tf-keras package (import tf_keras), where installed: what tf.keras is
    under TF_USE_LEGACY_KERAS=1 in TF 2.16+."""
    if "legacy" not in _CACHE:
        _CACHE["legacy"] = _import("tf_keras") if _import_spec("tf_keras") else None
    return _CACHE["legacy"]


def writer(keras: Any) -> str:
    """How an artifact records its writer: "keras 3.9.0", "tf_keras 2.18.0",
    "keras 3.5.0 (jax)" for a backend other than TensorFlow."""
    name = "%s %s" % ("tf_keras" if keras.__name__.split(".")[0] == "tf_keras" else "keras", version(keras))
    found = backend(keras)
    return name if found in (None, "tensorflow") else "%s (%s)" % (name, found)


def keras2() -> Optional[Any]:
    if "keras2" not in _CACHE:
        tfk = native()
        found = tfk if tfk is not None and _major(tfk) < 3 else None
        if found is None and tfcompat.available():  # tf_keras needs TensorFlow
            found = _import("tf_keras")
        _CACHE["keras2"] = found
    return _CACHE["keras2"]


def keras3() -> Optional[Any]:
    if "keras3" not in _CACHE:
        found = _import("keras") if _import_spec("keras") else None
        _CACHE["keras3"] = found if found is not None and _major(found) >= 3 else None
    return _CACHE["keras3"]


def _import_spec(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


def reads_keras_v3(keras: Any) -> bool:
    """Whether this Keras knows the .keras (v3) format (Keras 2.12+ and Keras 3)."""
    if _major(keras) >= 3:
        return True
    saving = getattr(keras, "saving", None)
    return hasattr(saving, "load_model") or _import(keras.__name__ + ".saving.saving_lib") is not None \
        or _import(keras.__name__ + ".src.saving.saving_lib") is not None


def reads_keras_saved_model(keras: Any) -> bool:
    """Whether load_model takes a SavedModel directory: Keras 2 under TF2
    behaviour, or TF1's tf.keras where it has saving.saved_model.load (1.15).
    Keras 3 refuses such directories with a message of its own: a finding."""
    if _major(keras) >= 3 or tfcompat.eager(tfcompat.tf()):
        return True
    return _import("tensorflow.python.keras.saving.saved_model.load") is not None


def is_keras3(keras: Any) -> bool:
    return _major(keras) >= 3


def fresh(keras: Any) -> None:
    """Drop Keras' global state (TF1: its graph and session) before building or loading."""
    clear = getattr(getattr(keras, "backend", None), "clear_session", None)
    if clear is not None:
        clear()


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """Inference-mode outputs (training=False) for one batch, as numpy (from
    any Keras 3 backend's tensors)."""
    if _major_of_model(model) >= 3:
        y = model(x, training=False)
        convert = getattr(getattr(_import("keras"), "ops", None), "convert_to_numpy", None)
        return np.asarray(convert(y) if convert is not None else y)
    if tfcompat.eager(tfcompat.tf()):
        return np.asarray(model(x, training=False))
    if not hasattr(model, "predict"):  # TF1's Keras revives a newer class (Functional) as a bare Network
        return _graph_call(model, x)
    return np.asarray(model.predict(x, batch_size=len(x)))


def _graph_call(model: Any, x: np.ndarray) -> np.ndarray:
    """A model without predict, called on a placeholder in Keras' own session (graph mode)."""
    tf = tfcompat.tf()
    placeholder = tfcompat.v1(tf).placeholder(tf.float32, shape=x.shape)
    session = native().backend.get_session()  # TF1: tf.keras is the Keras that loaded it
    return np.asarray(session.run(model(placeholder, training=False), {placeholder: x}))


def _major_of_model(model: Any) -> int:
    return 3 if type(model).__module__.startswith("keras.src") else 2


def describe_native() -> Optional[Dict[str, Any]]:
    """The cell's native Keras (tf.keras; the keras package without TF):
    version, major, backend, the public layer classes it can deserialize by
    name and the config keys each accepts (for the static check of .h5/.keras)."""
    try:
        keras = native()
        layers = getattr(keras, "layers", None)
    except Exception:  # a TF without tf.keras, or one that fails to import it
        return None
    if keras is None or layers is None:
        return None
    classes = dict((n, getattr(layers, n, None)) for n in dir(layers) if n[:1].isupper())
    classes = dict((n, c) for n, c in classes.items() if isinstance(c, type))
    found = version(keras)
    if "(" in found:  # tf.keras of TF 2.13-2.15 carries no version: the keras package it is
        import cellinfo
        found = cellinfo.dist_version("keras") or found
    base = _base_keys(getattr(layers, "Layer", None))
    keys = dict((n, _init_keys(c, base)) for n, c in sorted(classes.items()))
    return {"version": found, "major": _major(keras), "backend": backend(keras), "layers": sorted(classes),
            "config_keys": dict((n, k) for n, k in keys.items() if k is not None)}


# Keyword arguments the base Layer of some Keras takes without naming them in
# its signature (it pops them from **kwargs, or validates them against a list).
BASE_CANDIDATES = (("input_dim", 3), ("input_shape", (3,)), ("batch_input_shape", (None, 3)),
                   ("batch_shape", (None, 3)), ("batch_size", 1), ("weights", None), ("autocast", True),
                   ("implementation", 1), ("dynamic", False), ("input_dtype", "float32"),
                   ("activity_regularizer", None), ("trainable", True), ("dtype", "float32"), ("name", "n"))


def _base_keys(layer_cls: Any) -> List[str]:
    """The keyword arguments this Keras's base Layer accepts, by trying each
    candidate (a Layer refuses the ones it does not know with a TypeError or
    ValueError that names them)."""
    found = []
    if layer_cls is None:
        return found
    for key, value in BASE_CANDIDATES:
        try:
            layer_cls(**{key: value})
        except (TypeError, ValueError) as e:
            if key in str(e) or "keyword" in str(e).lower():
                continue
        except Exception:
            pass  # past the argument check: accepted
        found.append(key)
    return found


def _own_from_config(cls: Any) -> bool:
    """Whether a class below Keras' Layer defines its own from_config."""
    for klass in getattr(cls, "__mro__", ()):
        if klass.__name__ == "Layer":
            return False
        if "from_config" in klass.__dict__:
            return True
    return False


def _init_keys(cls: Any, base: List[str]) -> Optional[List[str]]:
    """The config keys `cls.from_config` can take: the named arguments of each
    __init__ up its class chain while they pass **kwargs on, and the base
    Layer's; None where a signature cannot be read."""
    names = set(base)
    if _own_from_config(cls):
        return None  # its from_config reads the config itself (Lambda's function_type...): not its __init__'s keys
    for klass in getattr(cls, "__mro__", ()):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        names.update(n for n, p in params.items() if n != "self" and p.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
        if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break  # passes nothing more up the chain
    return sorted(names)
