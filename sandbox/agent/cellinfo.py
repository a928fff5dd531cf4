"""What this cell is: interpreter, TF (if any), numpy, Keras, the runtimes
beside or instead of TF, capabilities."""
import glob
import os
import platform
import sys
from typing import Any, Dict, Optional

import numpy as np

import tfcompat


def dist_version(name: str) -> Optional[str]:
    """Installed version of a distribution, read from its metadata dir without importing it."""
    for entry in sys.path:
        for pattern in ("%s-*.dist-info", "%s-*.egg-info"):
            for path in glob.glob(os.path.join(entry or ".", pattern % name)):
                base = os.path.basename(path).rsplit(".", 1)[0]
                return base[len(name) + 1:]
    return None


# Packages whose versions decide what a cell can load, besides TF and numpy.
KEY_PACKAGES = ("keras", "tf_keras", "protobuf", "h5py", "tensorflow_estimator", "keras_applications",
                "tensorboard", "ml_dtypes", "flatbuffers", "jax", "jaxlib", "ai_edge_litert", "tflite_runtime")


def dist_versions(names: Any) -> Dict[str, str]:
    """Installed versions of these distributions (normalised names), from metadata dirs."""
    wanted, found = set(names), {}  # type: set, Dict[str, str]
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for filename in listing:
            if not filename.endswith((".dist-info", ".egg-info")):
                continue
            name, _, version = filename.rsplit(".", 1)[0].partition("-")
            key = name.lower().replace("-", "_").replace(".", "_")
            if key in wanted and key not in found:
                found[key] = version.split("-")[0]
    return found


def keras_version(tf: Any) -> Optional[str]:
    # Standalone keras if installed (Keras 2 or 3); else TF1's bundled tf.keras.
    # Accessing tf.keras in TF 2.16+ would import Keras 3, so only as a fallback.
    version = dist_version("keras") or dist_version("Keras")
    if version is None and not tfcompat.eager(tf):
        version = getattr(getattr(tf, "keras", None), "__version__", None)
    return version


def describe() -> Dict[str, Any]:
    """The cell record; in a cell without TF its TF facts are None / empty."""
    tf = tfcompat.tf() if tfcompat.available() else None
    found = {
        "kind": "cell",
        "python": platform.python_version(),
        "tensorflow": tf.__version__ if tf is not None else None,
        "numpy": np.__version__,
        "keras": keras_version(tf) if tf is not None else dist_version("keras"),
        "tf_keras": dist_version("tf_keras"),
        "eager": tfcompat.eager(tf) if tf is not None else None,
        "machine": platform.machine(),
        "packages": dist_versions(KEY_PACKAGES),
        "capabilities": tfcompat.capabilities(tf) if tf is not None else {},
    }
    if os.environ.get("KERAS_BACKEND"):
        found["keras_backend"] = os.environ["KERAS_BACKEND"]
    return found
