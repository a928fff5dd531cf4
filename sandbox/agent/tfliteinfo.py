"""The builtin ops (with versions) and custom ops of a TFLite flatbuffer, read
with a minimal flatbuffer reader (struct only), so every cell can read them."""
import struct
from typing import Any, Dict, List, Optional

from tflite_ops import BUILTIN_OPS

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


def describe(path: str) -> Dict[str, Any]:
    with open(path, "rb") as f:
        codes = operator_codes(f.read())
    versions: Dict[str, int] = {}
    for code in codes:
        versions[code["op"]] = max(versions.get(code["op"], 0), code["version"])
    return {"ops": sorted(versions), "op_attrs": {}, "tflite_ops": versions, "signature": None}
