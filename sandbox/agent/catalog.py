"""Which loaders read which formats: names only, no TF, so the host imports
this module too (it decides which loads a run still has to measure).
loaders.py registers a function under each name listed here."""
import collections
from typing import Dict, List, Tuple

SAVED_MODELS = ("saved_model", "saved_model_tf1")
KERAS = ("keras_saved_model", "keras_h5", "keras_v3")

LOADER_FORMATS = collections.OrderedDict([
    ("tf1_session", SAVED_MODELS),
    ("tf2_load", SAVED_MODELS),
    ("import_graph_def", ("frozen_graph",)),
    ("keras2", KERAS),
    ("keras3", KERAS),
    ("tflite_interpreter", ("tflite",)),
    ("checkpoint_restore", ("checkpoint",)),
])  # type: Dict[str, Tuple[str, ...]]


def loaders_for(fmt: str) -> List[str]:
    return [name for name, formats in LOADER_FORMATS.items() if fmt in formats]
