"""Error text -> category and the op / attr names it mentions; and the static
check of an artifact's ops and attrs against a consumer's op registry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sandbox.agent.tflite_ops import BUILTIN_OPS

# Most specific first: the first category whose patterns match wins. The Keras
# patterns are taken from real errors of Keras 2.2 (TF 1.x), 2.12 and 3.x.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("op-not-registered", re.compile(r"Op type not registered '([^']+)'")),
    # TF <= 1.4's importer: "ValueError: No op named FusedBatchNormV3 in defined operations."
    ("op-not-registered", re.compile(r"No op named ([A-Za-z0-9_>.]+) in defined operations")),
    ("unknown-attr", re.compile(r"NodeDef mentions attr '([^']+)' not in Op<name=([A-Za-z0-9_>.]+?)[;>]")),
    # an op whose inputs changed: TF 1.13 running a 2.12 function whose TensorListStack takes
    # element_shape as a data input ("Expected input[1] == '...' to be a control input. In {{node a/Op}}")
    ("op-signature", re.compile(r"Expected input\[\d+\] == '[^']+' to be a control input\.\s*"
                                r"In \{\{node (?:[^}]*/)?([A-Za-z0-9_]+)\}\}")),
    # an op registered without a kernel for this device (GPU-only CudnnRNN* on a CPU build)
    ("missing-kernel", re.compile(r"No (?:OpKernel|registered kernel) (?:was registered to support|for) Op '([^']+)'")),
    ("missing-kernel", re.compile(r"No registered '([^']+)' OpKernel for '?[A-Z]+'? devices")),
    # a select TF op (Flex) in an interpreter without the Flex delegate: TF 1.13-2.2's and
    # LiteRT's and tflite-runtime's words; TF 1.13 names the node "Flex" only
    ("tflite-flex-op", re.compile(r"(?:Regular TensorFlow ops are|Select TensorFlow op\(s\), included in the given model, "
                                  r"is\(are\)) not supported by this interpreter.*?Node number \d+ \((Flex[A-Za-z0-9_]*)\)",
                                  re.S)),
    ("tflite-flex-op", re.compile(r"Encountered unresolved custom op: (Flex[A-Za-z0-9_]+)")),
    ("tflite-op-version", re.compile(r"Didn't find op for builtin opcode '([^']+)' version '(\d+)'")),
    # an interpreter whose schema predates the op: it names only the number
    ("tflite-op-version", re.compile(r"Op builtin_code out of range: (\d+)")),
    ("tflite-op-version", re.compile(r"Encountered unresolved custom op: ([A-Za-z0-9_]+)")),
    # Keras 3 <-> Keras 2: the class's module moved (keras.src.* vs keras.engine.*)
    ("keras-deserialization", re.compile(r"Could not (?:deserialize|locate) class '([^']+)'")),
    ("keras-deserialization", re.compile(r"Error when deserializing class '([^']+)'")),
    ("keras-deserialization", re.compile(r"Unrecognized keyword arguments passed to ([A-Za-z0-9_]+)")),
    # Keras 2.2 (TF 1.13/1.14) reading a newer InputLayer: ('...:', dict_keys(['ragged']))
    ("keras-deserialization", re.compile(r"Unrecognized keyword arguments:'?,? ?dict_keys\(\['([^']+)'")),
    ("keras-deserialization", re.compile(r"<class '[A-Za-z0-9_.]*?\.([A-Za-z0-9_]+)'> could not be deserialized")),
    # TF 1.x Keras: "Unknown layer: Functional"
    ("keras-deserialization", re.compile(r"Unknown (?:layer|object|initializer|activation|optimizer|loss|metric)"
                                         r"(?: type)?:? ?['\"]?([A-Za-z0-9_.]+)")),
    ("keras-deserialization", re.compile(r"Could not locate function '([^']+)'")),
    # Keras 2.4 reading the JSON metadata of a newer Keras SavedModel: an empty or foreign record
    ("keras-deserialization", re.compile(r"^Expecting value: line 1 column 1 \(char 0\)()")),
    # Keras 3 refusing a Keras 2 SavedModel directory; h5py on a non-HDF5 file
    ("keras-deserialization", re.compile(r"File format not supported: filepath=()")),
    ("keras-deserialization", re.compile(r"Unable to (?:open|synchronously open) file \(file signature not found()")),
    ("protobuf-parse", re.compile(r"(?:Error parsing message|DecodeError|ParseFromString|Unable to parse|truncated message)()",
                                  re.I)),
)

FAILED = ("load-error", "run-error", "crash", "timeout")
CATEGORIES = ("op-not-registered", "unknown-attr", "op-signature", "missing-kernel", "keras-deserialization", "tflite-op-version",
              "tflite-flex-op", "protobuf-parse", "crash", "timeout", "other")


@dataclass(frozen=True)
class Classified:
    category: str
    names: tuple[str, ...]  # "FusedBatchNormV3", "VarHandleOp.debug_name", "CONV_2D@v5", "WHILE"


# TF 1.13's SavedModel loader looks each op of the graph up in its registry
# (importer._RemoveDefaultAttrs) and fails with a bare KeyError: 'OpName'.
_KEYERROR_OP = re.compile(r"^'([A-Z][A-Za-z0-9_]*)'$")


def classify(status: str, error: str | None, error_type: str | None = None) -> Classified | None:
    """None for outcomes that are not failures."""
    if status not in FAILED:
        return None
    if status in ("crash", "timeout"):
        return Classified(status, ())
    text = error or ""
    bare = _KEYERROR_OP.match(text.strip())
    if error_type == "KeyError" and bare:
        return Classified("op-not-registered", (bare.group(1),))
    for category, pattern in _PATTERNS:
        found = pattern.findall(text)
        if found:
            return Classified(category, _names(category, found))
    return Classified("other", ())


def _names(category: str, found: list[Any]) -> tuple[str, ...]:
    names = []
    for match in found:
        groups = match if isinstance(match, tuple) else (match,)
        if category == "unknown-attr":
            names.append(f"{groups[1]}.{groups[0]}")
        elif category == "tflite-op-version" and len(groups) == 2:
            names.append(f"{groups[0]}@v{groups[1]}")
        elif category == "tflite-op-version" and groups[0].isdigit():
            code = int(groups[0])
            names.append(BUILTIN_OPS[code] if code < len(BUILTIN_OPS) else f"BUILTIN_{code}")
        elif groups[0]:
            names.append(groups[0])
    return tuple(dict.fromkeys(names))
