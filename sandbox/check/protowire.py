"""The protobuf wire format read as a stream, and the few TensorFlow messages
sandbox reads, declared here by field number and built with the protobuf
runtime (no TensorFlow needed).

Only the fields sandbox reads are declared; everything else in a file is kept
as unknown fields and ignored. Attr values are kept as opaque bytes, enough to
tell whether a node's attr equals its op's default, except for the functions
they name (`func`, `list.func`), which tell which function bodies a load runs.

A model file is untrusted: it is read as a stream of protobuf fields
(`fields`), and a run of repeated messages (nodes) is parsed in chunks of
about _CHUNK bytes (`chunks`), never all at once, so that memory stays a
small multiple of the file size whatever the file holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

_F = descriptor_pb2.FieldDescriptorProto


_STRING, _BYTES, _INT32, _INT64, _MESSAGE = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_MESSAGE


_ONE, _MANY = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


# message -> [(field name, number, type, label, message type)]
_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "NameAttrList": [("name", 1, _STRING, _ONE, "")],
    "ListValue": [("func", 9, _MESSAGE, _MANY, "NameAttrList")],
    "AttrValue": [("list", 1, _MESSAGE, _ONE, "ListValue"), ("func", 10, _MESSAGE, _ONE, "NameAttrList")],
    "AttrDef": [("name", 1, _STRING, _ONE, ""), ("default_value", 3, _MESSAGE, _ONE, "AttrValue")],
    "ArgDef": [("name", 1, _STRING, _ONE, "")],
    "OpDef": [("name", 1, _STRING, _ONE, ""), ("input_arg", 2, _MESSAGE, _MANY, "ArgDef"),
              ("attr", 4, _MESSAGE, _MANY, "AttrDef")],
    "OpList": [("op", 1, _MESSAGE, _MANY, "OpDef")],
    "NodeDef": [("name", 1, _STRING, _ONE, ""), ("op", 2, _STRING, _ONE, ""), ("input", 3, _STRING, _MANY, ""),
                ("attr", 5, _MESSAGE, _MANY, "NodeDef.AttrEntry")],
    "FunctionDef": [("signature", 1, _MESSAGE, _ONE, "OpDef"), ("node_def", 3, _MESSAGE, _MANY, "NodeDef")],
    "FunctionDefLibrary": [("function", 1, _MESSAGE, _MANY, "FunctionDef")],
    "VersionDef": [("producer", 1, _INT32, _ONE, "")],
    "GraphDef": [("node", 1, _MESSAGE, _MANY, "NodeDef"), ("library", 2, _MESSAGE, _ONE, "FunctionDefLibrary"),
                 ("versions", 4, _MESSAGE, _ONE, "VersionDef")],
    "MetaInfoDef": [("stripped_op_list", 2, _MESSAGE, _ONE, "OpList"), ("tags", 4, _STRING, _MANY, ""),
                    ("tensorflow_version", 5, _STRING, _ONE, "")],
    "TensorInfo": [("name", 1, _STRING, _ONE, "")],
    "SignatureDef": [("inputs", 1, _MESSAGE, _MANY, "SignatureDef.InputsEntry"),
                     ("outputs", 2, _MESSAGE, _MANY, "SignatureDef.OutputsEntry")],
    # one MetaGraphDef.signature_def map entry, read on its own
    "SignatureDefItem": [("key", 1, _STRING, _ONE, ""), ("value", 2, _MESSAGE, _ONE, "SignatureDef")],
    "SaverDef": [("restore_op_name", 3, _STRING, _ONE, "")],
    "MetaGraphDef": [("meta_info_def", 1, _MESSAGE, _ONE, "MetaInfoDef"), ("graph_def", 2, _MESSAGE, _ONE, "GraphDef"),
                     ("saver_def", 3, _MESSAGE, _ONE, "SaverDef"), ("signature_def", 5, _MESSAGE, _MANY, "MetaGraphDef.SignatureDefEntry")],
    "SavedModel": [("saved_model_schema_version", 1, _INT64, _ONE, ""),
                   ("meta_graphs", 2, _MESSAGE, _MANY, "MetaGraphDef")],
}


# map<string, V> fields: message -> [(entry message, V)]
_MAPS = {"NodeDef": [("AttrEntry", "AttrValue")],
         "SignatureDef": [("InputsEntry", "TensorInfo"), ("OutputsEntry", "TensorInfo")],
         "MetaGraphDef": [("SignatureDefEntry", "SignatureDef")]}


_PACKAGE = "sandbox_tf"


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(name="sandbox_tf.proto", package=_PACKAGE, syntax="proto3")
    for name, declared in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in declared:
            message.field.add(name=field_name, number=number, type=kind, label=label,
                              type_name=f".{_PACKAGE}.{type_name}" if type_name else None)
        for entry_name, value_type in _MAPS.get(name, []):
            entry = message.nested_type.add(name=entry_name)
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_STRING, label=_ONE)
            entry.field.add(name="value", number=2, type=_MESSAGE, label=_ONE, type_name=f".{_PACKAGE}.{value_type}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in _MESSAGES}


CLASSES = _build()


_CHUNK = 1 << 20  # consecutive nodes parsed at once


class Broken(Exception):
    """What is wrong with the bytes; read_model names the file. `graph`: the
    bytes are (at least in part) a graph, as opposed to something else."""

    def __init__(self, message: str, graph: bool = False, field: int = 0) -> None:
        super().__init__(message)
        self.graph = graph
        self.field = field  # the field cut short, if that is what happened


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise Broken(f"a number is cut off at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise Broken(f"a number longer than 10 bytes at byte {pos}")


def fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, start of its tag, start and end of its value)
    of each field of the message in data[start:end]."""
    pos = start
    while pos < end:
        tag_at = pos
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire in (1, 5):
            value_at, pos = pos, pos + (8 if wire == 1 else 4)
        elif wire not in (0, 2):  # groups (3, 4) and 6, 7: no TensorFlow message has them
            raise Broken(f"field {number} has wire type {wire} at byte {tag_at}")
        try:
            if wire == 0:
                value_at = pos
                _value, pos = _varint(data, pos, end)
            elif wire == 2:
                length, value_at = _varint(data, pos, end)
                pos = value_at + length
        except Broken as exc:
            exc.field = number
            raise
        if number == 0:
            raise Broken(f"field number 0 at byte {tag_at}")
        if pos > end:
            raise Broken(f"field {number} at byte {tag_at} runs {pos - end} bytes past the end of its message",
                          field=number)
        yield number, wire, tag_at, value_at, pos


Span = tuple[int, int]  # start and end of a field's value in the file


def parse(name: str, data: bytes) -> Any:
    message = CLASSES[name]()
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError, RecursionError) as exc:  # the runtimes raise DecodeError subclasses
        raise Broken(f"a {name} does not parse ({_first_line(exc)})") from None
    return message


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def chunks(data: bytes, start: int, end: int, number: int, container: str,
            others: dict[int, Span] | None = None) -> Iterator[Any]:
    """Messages `container` holding a run of consecutive `number` fields of
    data[start:end] (about _CHUNK bytes each): repeated fields concatenate,
    so nodes are parsed a chunk at a time, never all at once. `others`
    receives the span of every other length-delimited field, by number."""
    run_start = run_end = -1
    stream = fields(data, start, end)
    while True:
        try:
            num, wire, tag_at, value_at, field_end = next(stream)
        except StopIteration:
            break
        except Broken as exc:
            exc.graph = exc.graph or run_end >= 0 or exc.field == number  # nodes, then the cut
            raise
        if num != number or wire != 2:
            if others is not None and wire == 2:
                others[num] = (value_at, field_end)
            continue
        if run_start >= 0 and (tag_at != run_end or run_end - run_start >= _CHUNK):
            yield parse(container, data[run_start:run_end])
            run_start = -1
        if run_start < 0:
            run_start = tag_at
        run_end = field_end
    if run_start >= 0:
        yield parse(container, data[run_start:run_end])
