"""A failure -> its class (category) and the culprits it names: ops, op attrs,
kernels, Keras classes and keywords, TFLite op versions, the native function a
crash died in.

Input is what the agent recorded of a failure: the library's error text and
type, and where it was raised (`raised_in`, the innermost frame's file and
function; `raised_by`, the library method at work: "InputLayer.__init__").
Patterns are taken from real errors of TF 1.12 to 2.21, Keras 2.2 to 3.x and
TFLite, most specific first; a class names its culprit so that findings and
the op table can group by it. A harness error (our own code failed) is no
failure of the library and has no class here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.agent.tflite_ops import BUILTIN_OPS
from sandbox.records import LoadStatus

FAILED = tuple(s.value for s in LoadStatus if s.failed)  # of a load; "harness-error" is none of them
_CLASSIFIED = (*FAILED, "error")  # "error": a failed export
CATEGORIES = {
    "op-not-registered": "the consumer's TensorFlow has no such op",
    "unknown-attr": "the consumer's op has no such attr",
    "op-signature": "the consumer's op takes other inputs",
    "missing-kernel": "the op has no kernel for the consumer's device",
    "kernel-unsupported": "the op's kernel on this device refuses an attr value (a data format)",
    "keras-deserialization": "the consumer's Keras cannot rebuild a class of the model",
    "keras-config": "a layer's config has a keyword the consumer's Keras does not know, or lacks one it needs",
    "keras-weights": "the file's weights do not fit the layers the consumer's Keras builds",
    "tflite-op-version": "the consumer's interpreter lacks the op at that version",
    "tflite-kernel": "the consumer's interpreter has the op but its kernel fails on this model",
    "tflite-flex-op": "the model needs select TF ops (Flex) the consumer's interpreter does not run",
    "protobuf-parse": "the consumer cannot parse the file",
    "converter-refused": "a TensorFlow converter refused the model (an export)",
    "keras-save": "the producer's Keras cannot write the model in this format (an export)",
    "crash": "the process died of a signal in native code",
    "timeout": "no result within the time limit",
    "other": "not explained yet (a bug of the classifier to fix)",
}


@dataclass(frozen=True)
class Classified:
    category: str
    names: tuple[str, ...]  # "FusedBatchNormV3", "VarHandleOp.debug_name", "CONV_2D@v5", "InputLayer.batch_shape"


@dataclass(frozen=True)
class Failure:
    """What a rule reads of one failure."""

    text: str
    error_type: str | None
    raised_in: str | None  # "tensorflow/python/keras/engine/input_layer.py:86 in __init__"
    raised_by: str | None  # "InputLayer.__init__"

    @property
    def in_keras(self) -> bool:
        return bool(re.search(r"(?:^|/)(?:tf_)?keras/", self.raised_in or ""))

    def keras_class(self, before: int) -> str | None:
        """The Keras class the error is about: the last one the text names
        before position `before`, else the Keras class at work where it was raised."""
        named = _CLASS_IN_TEXT.findall(self.text[:before])
        if named:
            return str(named[-1][0] or named[-1][1])
        return self.raised_by.split(".")[0] if self.raised_by and self.in_keras else None


Namer = Callable[[re.Match[str], Failure], list[str]]
_CLASS_IN_TEXT = re.compile(r"deserializing class '(\w+)'|<class '[\w.]*?\.(\w+)'> could not be deserialized")


def _first(match: re.Match[str], failure: Failure) -> list[str]:
    return [match.group(1)] if match.group(1) else []


def _named(name: str) -> Namer:
    return lambda match, failure: [name]


def _op_attr(match: re.Match[str], failure: Failure) -> list[str]:
    return [f"{match.group(2)}.{match.group(1)}"]


def _tflite_version(match: re.Match[str], failure: Failure) -> list[str]:
    return [f"{match.group(1)}@v{match.group(2)}"]


def _tflite_code(match: re.Match[str], failure: Failure) -> list[str]:
    code = int(match.group(1))
    return [BUILTIN_OPS[code] if code < len(BUILTIN_OPS) else f"BUILTIN_{code}"]


def _keywords(match: re.Match[str], failure: Failure) -> list[str]:
    """Class.keyword for each keyword the match lists (group "kw"), the class
    from the match (group "cls") or from the failure."""
    groups = match.groupdict()
    cls = groups.get("cls") or failure.keras_class(match.start())
    words = re.findall(r"'(\w+)'", groups["kw"]) or [groups["kw"]]
    return [f"{cls}.{w}" if cls else w for w in words if w]


def _keras_class(match: re.Match[str], failure: Failure) -> list[str]:
    found = (match.groupdict().get("cls") or failure.keras_class(match.start())
             or (f"layer '{match.group('layer')}'" if "layer" in match.groupdict() else None))
    return [found] if found else []


def _data_format(match: re.Match[str], failure: Failure) -> list[str]:
    return [f"{match.group('op')}.data_format"]


_KERAS_EXCEPTION = r"(?:Exception encountered: )?"
# (category, pattern, namer): the first rule whose pattern matches decides.
_RULES: tuple[tuple[str, re.Pattern[str], Namer], ...] = (
    ("op-not-registered", re.compile(r"Op type not registered '([^']+)'"), _first),
    # TF <= 1.4's importer: "ValueError: No op named FusedBatchNormV3 in defined operations."
    ("op-not-registered", re.compile(r"No op named ([A-Za-z0-9_>.]+) in defined operations"), _first),
    ("unknown-attr", re.compile(r"NodeDef mentions attr '([^']+)' not in Op<name=([A-Za-z0-9_>.]+?)[;>]"), _op_attr),
    # an op whose inputs changed: TF 1.13 running a 2.12 function whose TensorListStack takes
    # element_shape as a data input ("Expected input[1] == '...' to be a control input. In {{node a/Op}}")
    ("op-signature", re.compile(r"Expected input\[\d+\] == '[^']+' to be a control input\.\s*"
                                r"In \{\{node (?:[^}]*/)?([A-Za-z0-9_]+)\}\}"), _first),
    # an op registered without a kernel for this device (GPU-only CudnnRNN* on a CPU build)
    ("missing-kernel", re.compile(r"No (?:OpKernel|registered kernel) (?:was registered to support|for) Op '([^']+)'"),
     _first),
    ("missing-kernel", re.compile(r"No registered '([^']+)' OpKernel for '?[A-Z]+'? devices"), _first),
    # eager placement: "Could not find valid device for node ... All kernels registered for op X : <no registered kernels>"
    ("missing-kernel", re.compile(r"All kernels registered for op (\w+) ?:\s*<no registered kernels>"), _first),
    ("missing-kernel", re.compile(r"Could not find (?:valid )?device for node:? *\{\{node [^}]*\}\} = (\w+)\["), _first),
    # a kernel that exists on this device but not for this data format (Keras' LayerNormalization
    # uses fused batch norm in NCHW; TF 1.15's CPU kernel takes NHWC only)
    ("kernel-unsupported", re.compile(r"The \w+ implementation of (?P<op>\w+) only supports \w+ tensor format"),
     _data_format),
    ("kernel-unsupported", re.compile(r"The (?P<op>\w+) op currently only supports the \w+ tensor format"),
     _data_format),
    # a select TF op (Flex) in an interpreter without the Flex delegate: TF 1.13-2.2's and
    # LiteRT's and tflite-runtime's words; TF 1.13 names the node "Flex" only
    ("tflite-flex-op", re.compile(r"(?:Regular TensorFlow ops are|Select TensorFlow op\(s\), included in the given model, "
                                  r"is\(are\)) not supported by this interpreter.*?Node number \d+ \((Flex[A-Za-z0-9_]*)\)",
                                  re.S), _first),
    ("tflite-flex-op", re.compile(r"Encountered unresolved custom op: (Flex[A-Za-z0-9_]+)"), _first),
    ("tflite-op-version", re.compile(r"Didn't find op for builtin opcode '([^']+)' version '(\d+)'"), _tflite_version),
    # an interpreter whose schema predates the op: it names only the number
    ("tflite-op-version", re.compile(r"Op builtin_code out of range: (\d+)"), _tflite_code),
    ("tflite-op-version", re.compile(r"Encountered unresolved custom op: ([A-Za-z0-9_]+)"), _first),
    # the op is there, its kernel fails on this model (TF 2.1-2.3: a dynamic-range CONV_2D)
    ("tflite-kernel", re.compile(r"Node number \d+ \((\w+)\) failed to (?:invoke|prepare)"), _first),
    # Keras: the innermost "Exception encountered" names the keyword, the text or the frame the class
    ("keras-config", re.compile(_KERAS_EXCEPTION + r"Unrecognized keyword arguments passed to (?P<cls>\w+): "
                                r"\{(?P<kw>'\w+')"), _keywords),
    ("keras-config", re.compile(r"Unrecognized keyword arguments:'?,? ?(?:dict_keys\()?\[(?P<kw>[^\]]+)\]"), _keywords),
    ("keras-config", re.compile(r"\('Keyword argument not understood:', (?P<kw>'\w+')\)"), _keywords),
    ("keras-config", re.compile(r"(?:(?P<cls>\w+)\.)?\w+\(\) (?:got an unexpected keyword argument|missing \d+ "
                                r"required positional arguments?:) (?P<kw>'\w+')"), _keywords),
    ("keras-config", re.compile(r"(?P<cls>\w+)\(\) takes no arguments()"), _keras_class),
    ("keras-weights", re.compile(r"Layer '(?P<layer>[^']+)' expected \d+ variables?, but received \d+ variables? "
                                 r"during loading"), _keras_class),
    # Keras 3 <-> Keras 2: the class's module moved (keras.src.* vs keras.engine.*)
    ("keras-deserialization", re.compile(r"Could not (?:deserialize|locate) class '([^']+)'"), _first),
    ("keras-deserialization", re.compile(r"Error when deserializing class '([^']+)'"), _first),
    ("keras-deserialization", re.compile(r"<class '[A-Za-z0-9_.]*?\.([A-Za-z0-9_]+)'> could not be deserialized"),
     _first),
    ("keras-deserialization", re.compile(r"Unable to restore object of class '(\w+)'"), _first),
    # Keras 3 where tf-keras is installed, reading a tf-keras `.keras` file: it rebuilds the model
    # as tf-keras's class, then cannot restore the weights of a class that is not Keras 3's
    ("keras-deserialization", re.compile(r"Expected object to be an instance of `KerasSaveable`, but got "
                                         r"<(?:\w+\.)*?(\w+) object"), _first),
    # Keras 3 of 2026 reading an older Keras 3's `.h5` whose initializer it now refuses to rebuild
    ("keras-deserialization", re.compile(r"Could not deserialize '(?:\w+\.)*(\w+)' because it is not a "
                                         r"KerasSaveable subclass"), _first),
    # Keras 3.0 reading an initializer (or other object) by a class name it does not have
    # (its Orthogonal was OrthogonalInitializer): the config's class_name, else the bare identifier
    ("keras-deserialization", re.compile(r"Could not interpret (?:\w+ ){1,2}identifier: \{.*?'class_name': '(\w+)'"),
     _first),
    ("keras-deserialization", re.compile(r"Could not interpret (?:\w+ ){1,2}identifier: '?([\w.]+)"), _first),
    # Keras 3.0 rebuilding the graph of a newer Keras 3's Functional config: its nodes' arguments
    # come in another shape (get_tensor() takes 3 positional arguments but 11 were given)
    ("keras-deserialization", re.compile(r"functional_from_config\.<locals>\.\w+\(\) takes \d+ positional "
                                         r"arguments? but \d+ (?:were|was) given"), _named("Functional")),
    # TF 1.x Keras: "Unknown layer: Functional"
    ("keras-deserialization", re.compile(r"Unknown (?:layer|object|initializer|activation|optimizer|loss|metric)"
                                         r"(?: type)?:? ?['\"]?([A-Za-z0-9_.]+)"), _first),
    ("keras-deserialization", re.compile(r"Could not locate function '([^']+)'"), _first),
    # safe mode: Keras 3 ("a `Lambda` layer", "a `lambda` object") and sandbox's agent in every Keras
    ("keras-deserialization", re.compile(r"Requested the deserialization of an? `?([A-Za-z0-9_.]+)`? (?:layer|object)"),
     _first),
    ("keras-deserialization", re.compile(r"Requested the deserialization of an object of module '([^']+)'"), _first),
    ("keras-deserialization", re.compile(r"Requested the deserialization of a model whose config cannot be checked"),
     _named("unchecked config")),
    # Keras <= 2.5 reading a Keras SavedModel of TF 2.6+ (the standalone keras package): its
    # objects' metadata, JSON in saved_model.pb, is empty there (keras_metadata.pb holds it)
    ("keras-deserialization", re.compile(r"^Expecting value: line 1 column 1 \(char 0\)"),
     _named("SavedModel Keras metadata")),
    # Keras 3 refusing a Keras 2 SavedModel directory; h5py on a file that is not HDF5
    ("keras-deserialization", re.compile(r"File format not supported: filepath="), _named("legacy SavedModel format")),
    ("keras-deserialization", re.compile(r"Unable to (?:open|synchronously open) file \(file signature not found"),
     _named("HDF5 file signature")),
    # Keras 3.0-3.2 writing two weights of one layer (MultiHeadAttention's) under one HDF5 name
    ("keras-save", re.compile(r"Unable to (?:synchronously )?create dataset \(name already exists\)"),
     _named("HDF5 dataset name")),
    # freezing a tf.function whose while loop reads a variable (convert_variables_to_constants_v2, TF 2.0-2.2)
    ("converter-refused", re.compile(r"Cannot find the Placeholder op that is an input to the (\w+)"), _first),
    ("protobuf-parse", re.compile(r"Error parsing message(?: with type '([\w.]+)')?", re.I), _first),
    ("protobuf-parse", re.compile(r"(?:DecodeError|ParseFromString|Unable to parse|truncated message)()", re.I),
     _named("protobuf message")),
)

# TF 1.13's SavedModel loader looks each op of the graph up in its registry
# (importer._RemoveDefaultAttrs) and fails with a bare KeyError: 'OpName'.
_KEYERROR_OP = re.compile(r"^'([A-Z][A-Za-z0-9_]*)'$")
_KEYERROR_KEY = re.compile(r"^'?([^']*)'?$")


def classify(status: str, error: str | None, error_type: str | None = None, raised_in: str | None = None,
             raised_by: str | None = None) -> Classified | None:
    """None for outcomes that are not failures of the library (ok, differs, n/a, harness errors)."""
    if status not in _CLASSIFIED:
        return None
    failure = Failure(error or "", error_type, raised_in, raised_by)
    if status in ("crash", "timeout"):
        return Classified(status, _ended_in(failure, status))
    text = failure.text.strip()
    if error_type == "KeyError" and _KEYERROR_OP.match(text) and not failure.in_keras:
        return Classified("op-not-registered", (_KEYERROR_OP.match(text).group(1),))  # type: ignore[union-attr]
    for category, pattern, namer in _RULES:
        matches = list(pattern.finditer(failure.text))
        if matches:
            return Classified(category, tuple(dict.fromkeys(n for m in matches for n in namer(m, failure))))
    if error_type == "KeyError" and failure.in_keras:  # a config entry this Keras needs and the file lacks
        return Classified("keras-config", _missing_key(failure, text))
    return Classified("other", ())


def _missing_key(failure: Failure, text: str) -> tuple[str, ...]:
    """KeyError 'query_shape' in MultiHeadAttention.from_config -> "MultiHeadAttention.query_shape";
    a key that is no name (KeyError 0 in InputLayer.__init__) -> the class alone."""
    cls = failure.keras_class(len(failure.text))
    key = _KEYERROR_KEY.match(text)
    word = key.group(1) if key and key.group(1).isidentifier() else None
    return tuple(n for n in [f"{cls}.{word}" if cls and word else cls or word] if n)


def _ended_in(failure: Failure, status: str) -> tuple[str, ...]:
    """A crash names its signal and the function it died in ("SIGSEGV in calibrator._feed_tensors");
    a timeout the function it was stuck in."""
    where = re.match(r"(?:.*/)?(\w+)\.py:\d+ in (\w+)", failure.raised_in or "")
    function = f"{where.group(1)}.{where.group(2)}" if where else None
    signal = failure.error_type if status == "crash" and (failure.error_type or "").startswith("SIG") else None
    parts = [p for p in (signal, function) if p]
    return (" in ".join(parts),) if parts else ()
