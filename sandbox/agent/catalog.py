"""Which loaders read which formats: names only, no TF, so the host imports
this module too (it decides which loads a run still has to measure).
loaders.py registers a function under each name listed here."""
import collections
from typing import Dict, List, Tuple

SAVED_MODELS = ("saved_model", "saved_model_tf1")
KERAS_SAVED_MODELS = ("keras_saved_model", "tf_keras_saved_model")  # SavedModels with Keras metadata
KERAS_V3 = ("keras_v3", "tf_keras_v3")
TFLITE = ("tflite", "tflite_dynamic", "tflite_int8")
KERAS = KERAS_SAVED_MODELS + ("keras_h5", "tf_keras_h5") + KERAS_V3

LOADER_FORMATS = collections.OrderedDict([
    ("tf1_session", SAVED_MODELS + KERAS_SAVED_MODELS),  # a Keras SavedModel is served like any other
    ("tf2_load", SAVED_MODELS + KERAS_SAVED_MODELS),
    ("import_graph_def", ("frozen_graph",)),
    ("keras2", KERAS),
    ("keras3", KERAS),
    ("tflite_interpreter", TFLITE),
    ("checkpoint_restore", ("checkpoint",)),
])  # type: Dict[str, Tuple[str, ...]]


def loaders_for(fmt: str) -> List[str]:
    return [name for name, formats in LOADER_FORMATS.items() if fmt in formats]
