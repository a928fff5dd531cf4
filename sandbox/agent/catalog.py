"""Which loaders read which formats, and which loaders and formats each
runtime has: names only, no TF, so the host imports this module too (it
decides which exports and loads a run still has to measure). loaders.py
registers a function under each loader listed here, exporters.py under each
format."""
import collections
from typing import Dict, List, Tuple

SAVED_MODELS = ("saved_model", "saved_model_tf1")
KERAS_SAVED_MODELS = ("keras_saved_model", "tf_keras_saved_model")  # SavedModels with Keras metadata
KERAS_V3 = ("keras_v3", "tf_keras_v3")
TFLITE = ("tflite", "tflite_dynamic", "tflite_int8", "tflite_flex")
KERAS = KERAS_SAVED_MODELS + ("keras_h5", "tf_keras_h5") + KERAS_V3

LOADER_FORMATS = collections.OrderedDict([
    ("tf1_session", SAVED_MODELS + KERAS_SAVED_MODELS),  # a Keras SavedModel is served like any other
    ("tf2_load", SAVED_MODELS + KERAS_SAVED_MODELS),
    ("import_graph_def", ("frozen_graph",)),
    ("keras2", KERAS),
    ("keras3", KERAS),
    ("tflite_interpreter", TFLITE),
    ("checkpoint_restore", ("checkpoint",)),
    ("ai_edge_litert", TFLITE),  # LiteRT's interpreter (no TF)
    ("tflite_runtime", TFLITE),  # the tflite-runtime package's interpreter (no TF)
])  # type: Dict[str, Tuple[str, ...]]

# What each runtime (a distribution a cell holds) loads with and writes, where
# it is not everything: TensorFlow has every loader but the standalone
# interpreters', and writes every format; a Keras cell writes Keras files with
# its backend and reads them with Keras 3; an interpreter only reads.
RUNTIME_LOADERS = {
    "tensorflow": tuple(n for n in LOADER_FORMATS if n not in ("ai_edge_litert", "tflite_runtime")),
    "keras": ("keras3",),
    "ai-edge-litert": ("ai_edge_litert",),
    "tflite-runtime": ("tflite_runtime",),
}  # type: Dict[str, Tuple[str, ...]]
RUNTIME_FORMATS = {
    "keras": ("keras_h5", "keras_v3"),
    "ai-edge-litert": (),
    "tflite-runtime": (),
}  # type: Dict[str, Tuple[str, ...]]


def loaders_for(fmt: str) -> List[str]:
    return [name for name, formats in LOADER_FORMATS.items() if fmt in formats]


def cell_loaders(runtime: str, packages: List[str]) -> List[str]:
    """The loaders of a cell holding `runtime` and the extra `packages`
    (distribution names: a TF cell with ai-edge-litert beside it has both)."""
    found = []  # type: List[str]
    for name in [runtime] + [p for p in packages if p != "tensorflow"]:
        found += [n for n in RUNTIME_LOADERS.get(name, ()) if n not in found]
    return [n for n in LOADER_FORMATS if n in found]
