"""The witness script of one load: plain TensorFlow / Keras / tf.lite calls, as
a reader would write them in a bug report, runnable on Python 3.6+ and on TF
1.x (graph mode) to 2.x as

    python witness.py MODEL_PATH [INPUTS.npz]

INPUTS.npz holds the input as `x` (the producer's reference inputs); without it
the model runs on zeros of the input's shape. A script leaves the model's
outputs in `y` and prints `loaded` once loading is done, so whoever runs it
tells a load failure from a run failure.

One script per loader. What it needs to know of the artifact (the serving
signature's keys, a frozen graph's tensor names, the input's shape) is written
into it as constants, read here from the stored files (`spec_for`)."""

from __future__ import annotations

import ast
import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.agent import catalog
from sandbox.check import graphfile
from sandbox.errors import SandboxError

CHECKPOINT = "checkpoint_restore"


class NoWitness(SandboxError):
    """This load cannot be witnessed (its files do not say what a script needs)."""


@dataclass(frozen=True)
class Spec:
    """What decides a witness script."""

    loader: str
    input: str = "x"  # a SavedModel's serving signature key, or a frozen graph's input tensor
    output: str = "y"
    shape: tuple[int, ...] = ()  # of the input
    dtype: str = "float32"


# loader -> (what the script does, the modules it imports, its body: `x` in, `y` out)
_RUN_TFLITE = """
interpreter = Interpreter(model_path=MODEL)
interpreter.allocate_tensors()
print("loaded")
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
interpreter.invoke()
y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
"""
_LOADERS: dict[str, tuple[str, str, str]] = {
    "tf1_session": ("a SavedModel served by the TF1 loader in a Session", "import tensorflow as tf", """
v1 = getattr(tf.compat, "v1", tf)  # TF 1.12 has no tf.compat.v1
graph = v1.Graph()
with graph.as_default(), v1.Session(graph=graph) as session:
    meta = v1.saved_model.loader.load(session, ["serve"], MODEL)
    signature = meta.signature_def["serving_default"]
    print("loaded")
    y = session.run(signature.outputs[{output}].name, {{signature.inputs[{input}].name: x}})
"""),
    "tf2_load": ("a SavedModel loaded by tf.saved_model.load", "import tensorflow as tf", """
loaded = tf.saved_model.load(MODEL)
serve = loaded.signatures["serving_default"]
print("loaded")
y = serve(**{{{input}: tf.constant(x)}})[{output}].numpy()
"""),
    "import_graph_def": ("a frozen GraphDef imported and run in a Session", "import tensorflow as tf", """
v1 = getattr(tf.compat, "v1", tf)  # TF 1.12 has no tf.compat.v1
graph_def = v1.GraphDef()
with open(MODEL, "rb") as f:
    graph_def.ParseFromString(f.read())
graph = v1.Graph()
with graph.as_default():
    v1.import_graph_def(graph_def, name="")
print("loaded")
with v1.Session(graph=graph) as session:
    y = session.run({output}, {{{input}: x}})
"""),
    "keras2": ("a Keras model loaded by Keras 2", "import tensorflow as tf", """
keras = tf.keras  # Keras 2 up to TF 2.15; from 2.16 it is Keras 3, and Keras 2 is tf-keras
if getattr(keras, "__version__", "2").startswith("3."):
    import tf_keras as keras
model = keras.models.load_model(MODEL, compile=False)
print("loaded")
y = np.asarray(model.predict(x, verbose=0))
"""),
    "keras3": ("a Keras model loaded by Keras 3", "import keras", """
model = keras.models.load_model(MODEL, compile=False)
print("loaded")
y = np.asarray(model.predict(x, verbose=0))
"""),
    "tflite_interpreter": ("a TFLite model run by tf.lite.Interpreter", """try:
    import tensorflow as tf
    Interpreter = tf.lite.Interpreter
except ImportError:  # a runtime without TensorFlow
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter""", _RUN_TFLITE),
    "ai_edge_litert": ("a TFLite model run by LiteRT's Interpreter", "from ai_edge_litert.interpreter import Interpreter",
                       _RUN_TFLITE),
    "tflite_runtime": ("a TFLite model run by tflite-runtime's Interpreter",
                       "from tflite_runtime.interpreter import Interpreter", _RUN_TFLITE),
}

_HEAD = '''"""Witness of a sandbox finding: {what}.
Plain calls, nothing of sandbox. Run it where the load failed:
    python witness.py {usage}
"""
import sys

import numpy as np
{imports}

MODEL = sys.argv[1]
'''
_INPUT = 'x = np.load(sys.argv[2])["x"] if len(sys.argv) > 2 else np.zeros({shape}, {dtype})\n'
_OUTPUT = 'print("outputs", y.shape, y.ravel()[:6])\n'

# tf.train.Checkpoint is restored into the probe's own model code: no standalone
# script has that code, so this one goes as far as plain TF does without it.
_CHECKPOINT = '''"""Witness of a sandbox finding: a tf.train.Checkpoint read back.
It reads every variable the checkpoint holds. Restoring them into a model and
running it needs that model's own code, which no standalone script has: a
failure there is beyond this witness. Run it where the load failed:
    python witness.py {usage}
"""
import sys

import tensorflow as tf

MODEL = sys.argv[1]  # the checkpoint's prefix (.../ckpt-1)
reader = tf.train.load_checkpoint(MODEL)
for name, shape in tf.train.list_variables(MODEL):
    value = reader.get_tensor(name)  # an array, or bytes (the object graph)
    print(name, shape, type(value).__name__)
print("loaded")
'''


def loaders() -> tuple[str, ...]:
    """Every loader a witness script exists for."""
    return (*_LOADERS, CHECKPOINT)


def usage(loader: str) -> str:
    """The script's arguments, as a reader gives them."""
    return "CHECKPOINT_PREFIX" if loader == CHECKPOINT else "MODEL_PATH [INPUTS.npz]"


def script(spec: Spec) -> str:
    """The text of the witness script for `spec` (Python 3.6 syntax)."""
    if spec.loader == CHECKPOINT:
        return _CHECKPOINT.format(usage=usage(CHECKPOINT))
    if spec.loader not in _LOADERS:
        raise NoWitness(f"no witness script for the loader {spec.loader!r}")
    what, imports, body = _LOADERS[spec.loader]
    return (_HEAD.format(what=what, usage=usage(spec.loader), imports=imports)
            + _INPUT.format(shape=repr(spec.shape), dtype=json.dumps(spec.dtype))
            + body.format(input=json.dumps(spec.input), output=json.dumps(spec.output)) + _OUTPUT)


def spec_for(loader: str, fmt: str, files: Path, record: dict[str, Any]) -> Spec:
    """The spec of witnessing `record` (an artifact's manifest record, its files
    in `files`) with `loader`: NoWitness when the files do not tell."""
    if loader == CHECKPOINT:
        return Spec(loader)
    if loader not in _LOADERS:
        raise NoWitness(f"no witness script for the loader {loader!r}")
    shape, dtype = input_spec(files / str(record.get("inputs") or "inputs.npz"))
    if fmt == "frozen_graph":
        signature = record.get("signature") or {}
        try:
            return Spec(loader, str(signature["inputs"]["x"]), str(signature["outputs"]["y"]), shape, dtype)
        except (KeyError, TypeError):
            raise NoWitness("the frozen graph's manifest names no input and output tensors") from None
    if loader in ("tf1_session", "tf2_load") and fmt in catalog.SAVED_MODELS + catalog.KERAS_SAVED_MODELS:
        keys = graphfile.signature_keys(files / str(record.get("path")))
        if keys is None or not keys[0] or not keys[1]:
            raise NoWitness("the SavedModel has no serving_default signature with inputs and outputs")
        return Spec(loader, _key(keys[0], "x"), _key(keys[1], "y"), shape, dtype)
    return Spec(loader, shape=shape, dtype=dtype)


def _key(keys: list[str], preferred: str) -> str:
    """The key the zoo names (x, y), else the first: a Keras SavedModel names them after its layers."""
    return preferred if preferred in keys else keys[0]


# numpy's type codes (.npy headers) for the inputs a probe may have
_DTYPES = {"<f4": "float32", "<f8": "float64", "<f2": "float16", "<i4": "int32", "<i8": "int64", "|u1": "uint8",
           "|i1": "int8", "|b1": "bool"}


def input_spec(npz: Path, name: str = "x") -> tuple[tuple[int, ...], str]:
    """Shape and dtype of array `name` in an .npz file, from its .npy header
    (the host has no numpy)."""
    try:
        with zipfile.ZipFile(npz) as archive, archive.open(f"{name}.npy") as fh:
            magic = fh.read(8)
            if magic[:6] != b"\x93NUMPY":
                raise ValueError("not an .npy array")
            size = struct.unpack("<H", fh.read(2))[0] if magic[6] == 1 else struct.unpack("<I", fh.read(4))[0]
            header = ast.literal_eval(fh.read(size).decode("latin1"))
        shape = tuple(int(n) for n in header["shape"])
        descr = str(header["descr"])
    except (OSError, KeyError, TypeError, ValueError, SyntaxError, struct.error, zipfile.BadZipFile) as exc:
        raise NoWitness(f"{npz.name}: cannot read the input's shape ({exc})") from None
    return shape, _DTYPES.get(descr, descr)
