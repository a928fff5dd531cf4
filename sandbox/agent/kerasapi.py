"""The Keras implementations a cell holds, found by import, not by version string.

- "keras2": Keras 2 — tf.keras where it is Keras 2 (TF <= 2.15, TF1's bundled
  Keras), else the tf-keras package (tf_keras) where installed.
- "keras3": the keras package where it is Keras 3.
Writers: the cell's native Keras (what tf.keras resolves to) writes the Keras
formats (keras_h5, keras_v3, keras_saved_model); the tf-keras package, where
installed, writes them again as tf_keras_* formats, as users who set
TF_USE_LEGACY_KERAS=1 (which routes tf.keras to tf_keras) do.
"""
import importlib
from typing import Any, Dict, Optional

import numpy as np

import tfcompat

_CACHE = {}


def version(keras: Any) -> str:
    found = getattr(keras, "__version__", None)
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
    """tf.keras: Keras 2 up to TF 2.15, Keras 3 from TF 2.16."""
    if "native" not in _CACHE:
        _CACHE["native"] = getattr(tfcompat.tf(), "keras", None)
    return _CACHE["native"]


def legacy() -> Optional[Any]:
    """The tf-keras package (import tf_keras), where installed: what tf.keras is
    under TF_USE_LEGACY_KERAS=1 in TF 2.16+."""
    if "legacy" not in _CACHE:
        _CACHE["legacy"] = _import("tf_keras") if _import_spec("tf_keras") else None
    return _CACHE["legacy"]


def writer(keras: Any) -> str:
    """How an artifact records its writer: "keras 3.9.0", "tf_keras 2.18.0"."""
    return "%s %s" % ("tf_keras" if keras.__name__.split(".")[0] == "tf_keras" else "keras", version(keras))


def keras2() -> Optional[Any]:
    if "keras2" not in _CACHE:
        tfk = native()
        found = tfk if tfk is not None and _major(tfk) < 3 else _import("tf_keras")
        _CACHE["keras2"] = found
    return _CACHE["keras2"]


def keras3() -> Optional[Any]:
    if "keras3" not in _CACHE:
        found = _import("keras") if _major(native()) >= 3 or _import_spec("keras") else None
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
    """Inference-mode outputs (training=False) for one batch."""
    if tfcompat.eager(tfcompat.tf()) or _major_of_model(model) >= 3:
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
    """The Keras this TF ships (tf.keras): version, major, and the public layer
    classes it can deserialize by name (for the static check of .h5/.keras)."""
    try:
        keras = native()
        layers = getattr(keras, "layers", None)
    except Exception:  # a TF without tf.keras, or one that fails to import it
        return None
    if keras is None or layers is None:
        return None
    names = sorted(n for n in dir(layers) if n[:1].isupper() and isinstance(getattr(layers, n, None), type))
    found = version(keras)
    if "(" in found:  # tf.keras of TF 2.13-2.15 carries no version: the keras package it is
        import cellinfo
        found = cellinfo.dist_version("keras") or found
    return {"version": found, "major": _major(keras), "layers": names}
