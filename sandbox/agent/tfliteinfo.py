"""The builtin ops (with versions) and custom ops of a TFLite flatbuffer, read
with a minimal flatbuffer reader (struct only), so every cell can read them."""
import struct
from typing import Any, Dict, List, Optional

try:
    from tflite_ops import BUILTIN_OPS, FLEX_MODEL
except ImportError:  # the host imports this module as sandbox.agent.tfliteinfo
    from sandbox.agent.tflite_ops import BUILTIN_OPS, FLEX_MODEL

CUSTOM = 32  # BuiltinOperator.CUSTOM


class _Table(object):
    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vsize = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, index: int) -> int:
        slot = 4 + 2 * index
        if slot >= self.vsize:
            return 0
        return struct.unpack_from("<H", self.buf, self.vtable + slot)[0]

    def scalar(self, index: int, fmt: str, default: int) -> int:
        off = self._field(index)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0] if off else default

    def _indirect(self, index: int) -> Optional[int]:
        off = self._field(index)
        if not off:
            return None
        at = self.pos + off
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def string(self, index: int) -> Optional[str]:
        at = self._indirect(index)
        if at is None:
            return None
        size = struct.unpack_from("<I", self.buf, at)[0]
        return self.buf[at + 4:at + 4 + size].decode("utf-8", "replace")

    def tables(self, index: int) -> List["_Table"]:
        at = self._indirect(index)
        if at is None:
            return []
        count = struct.unpack_from("<I", self.buf, at)[0]
        items = []
        for i in range(count):
            elem = at + 4 + 4 * i
            items.append(_Table(self.buf, elem + struct.unpack_from("<I", self.buf, elem)[0]))
        return items


def builtin_name(code: int) -> str:
    if 0 <= code < len(BUILTIN_OPS):
        return BUILTIN_OPS[code]
    try:  # a newer schema than our table: ask this TF's generated schema
        from tensorflow.lite.python import schema_py_generated as schema
        for name, value in vars(schema.BuiltinOperator).items():
            if value == code and not name.startswith("_"):
                return name
    except Exception:
        pass
    return "BUILTIN_%d" % code


def operator_codes(data: bytes) -> List[Dict[str, Any]]:
    """[{"op": "CONV_2D", "version": 3}, {"op": "custom:Foo", "version": 1}, ...];
    ValueError for bytes that are not a TFLite flatbuffer (offsets out of range)."""
    try:
        return _operator_codes(data)
    except (struct.error, IndexError) as exc:
        raise ValueError("not a TFLite flatbuffer (%s)" % exc)


def _operator_codes(data: bytes) -> List[Dict[str, Any]]:
    model = _Table(data, struct.unpack_from("<I", data, 0)[0])
    found = []
    for code in model.tables(1):  # Model.operator_codes
        deprecated = code.scalar(0, "b", 0)
        builtin = max(deprecated, code.scalar(3, "i", 0))
        version = code.scalar(2, "i", 1)
        name = "custom:%s" % code.string(1) if builtin == CUSTOM else builtin_name(builtin)
        found.append({"op": name, "version": version})
    return found


FLEX_PREFIX = "custom:Flex"  # select TF ops are custom ops named Flex<TF op>


def flex_ops(data: bytes) -> List[str]:
    """The select TF ops (Flex) of a flatbuffer: ["custom:FlexSinh"]."""
    return sorted(set(c["op"] for c in operator_codes(data) if c["op"].startswith(FLEX_PREFIX)))


def describe(path: str) -> Dict[str, Any]:
    with open(path, "rb") as f:
        codes = operator_codes(f.read())
    versions: Dict[str, int] = {}
    for code in codes:
        versions[code["op"]] = max(versions.get(code["op"], 0), code["version"])
    return {"ops": sorted(versions), "op_attrs": {}, "tflite_ops": versions, "signature": None}


# Tensor types of the schema that hold quantized values (TensorType INT8, UINT8).
QUANTIZED_TYPES = (9, 3)


def quantized_tensors(data: bytes) -> int:
    """How many tensors of the model's subgraphs are int8 / uint8."""
    model = _Table(data, struct.unpack_from("<I", data, 0)[0])
    return sum(1 for subgraph in model.tables(2) for tensor in subgraph.tables(0)
               if tensor.scalar(1, "b", 0) in QUANTIZED_TYPES)


# ---------------------------------------------------------------- what a runtime resolves

def model_with_opcode(code: int, version: int) -> bytes:
    """The smallest model an interpreter builds: one operator code, no subgraph.
    The interpreter resolves every operator code before it looks at the
    subgraphs, so constructing it fails with "Didn't find op for builtin
    opcode" when it lacks (op, version), and with "No subgraph" when it has it.
    Laid out front to back: every uoffset points forward, every scalar aligned."""
    deprecated = min(code, 127)  # PLACEHOLDER_FOR_GREATER_OP_CODES beyond int8
    buf = bytearray()
    buf += struct.pack("<I", 24)             # 0: root uoffset -> model table at 24
    buf += b"TFL3"                           # 4: file identifier
    # 8: Model vtable (fields version, operator_codes, subgraphs, description, buffers)
    buf += struct.pack("<7H", 14, 20, 4, 8, 12, 0, 16) + b"\0\0"
    # 24: Model table: soffset to its vtable, version, 3 uoffsets (44, 52, 56)
    buf += struct.pack("<iIIII", 24 - 8, 3, 44 - 32, 52 - 36, 56 - 40)
    # 44: operator_codes: [-> OperatorCode table at 72]
    buf += struct.pack("<II", 1, 72 - 48)
    buf += struct.pack("<I", 0)              # 52: subgraphs: []
    buf += struct.pack("<I", 0)              # 56: buffers: []
    # 60: OperatorCode vtable (deprecated_builtin_code, custom_code, version, builtin_code)
    buf += struct.pack("<6H", 12, 16, 12, 0, 4, 8)
    # 72: OperatorCode table: soffset (vtable at 60), version, builtin_code, deprecated
    buf += struct.pack("<iiib3x", 72 - 60, version, code, deprecated)
    return bytes(buf)


NOT_OPS = ("CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES")
MAX_VERSION = 40  # no builtin op has come near this many versions


def runtime_versions(interpreter_cls: Any) -> Optional[Dict[str, int]]:
    """Per builtin op this interpreter resolves, the highest version it
    resolves (versions are consecutive from 1), by building one-opcode models.
    None where construction does not tell (TF <= 1.11: it accepts any version
    of ADD, so it either ignores versions or reports failures later)."""
    import warnings
    with warnings.catch_warnings():  # TF 2.18+ warns on every interpreter it deletes
        warnings.simplefilter("ignore")
        if _resolves(interpreter_cls, BUILTIN_OPS.index("ADD"), MAX_VERSION + 1):
            return None
        return _scan(interpreter_cls)


def runs_flex(interpreter_cls: Any) -> Optional[bool]:
    """Whether this interpreter runs select TF ops: it prepares a one-node
    FlexSinh model (tflite_ops.FLEX_MODEL) only where the Flex delegate is
    linked in; without it, allocation fails naming the Flex node. None where
    it refuses the model for another reason (a schema older than the model's)."""
    import base64
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            interpreter_cls(model_content=base64.b64decode(FLEX_MODEL)).allocate_tensors()
        except Exception as e:
            if "Flex" in str(e) or "TensorFlow op" in str(e):
                return False
            return None
    return True


def _scan(interpreter_cls: Any) -> Dict[str, int]:
    found = {}  # type: Dict[str, int]
    for code, name in enumerate(BUILTIN_OPS):
        if name in NOT_OPS:
            continue
        version = 0
        while version < MAX_VERSION and _resolves(interpreter_cls, code, version + 1):
            version += 1
        if version:
            found[name] = version
    return found


def _resolves(interpreter_cls: Any, code: int, version: int) -> bool:
    try:
        interpreter_cls(model_content=model_with_opcode(code, version))
    except Exception as e:
        text = str(e)
        if "Didn't find op" in text or "out of range" in text or "Registration failed" in text:
            return False
        if "subgraph" not in text.lower():  # the probe model itself was refused: a bug here
            raise RuntimeError("the interpreter refused the one-opcode model: %s" % text[:300])
    return True
