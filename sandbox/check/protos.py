"""Read a model's graph (ops, attrs, producer op definitions) without
TensorFlow: the few TensorFlow protobuf messages this needs are declared here
by field number and built with the protobuf runtime.

Only the fields sandbox reads are declared; everything else in a file is kept
as unknown fields and ignored. Attr values are kept as opaque bytes, enough to
tell whether a node's attr equals its op's default, except for the functions
they name (`func`, `list.func`), which tell which function bodies a load runs.

A model file is untrusted: it is read as a stream of protobuf fields (see
_fields), nodes in chunks of about _CHUNK bytes, so that memory stays a small
multiple of the file size (the file itself, 8-byte hashes of node names and
inputs, the distinct ops and attrs) whatever the file holds; a size limit
(read_model's max_bytes) comes first. Before a graph gets a verdict its
integrity is checked: every node input names a node of its graph (or an
argument of its function), and every function a call op (CALL_OPS) names is
in the library. A file cut at a node boundary is still valid protobuf; it
is reported as corrupt or truncated (CorruptModel), not given a verdict,
when that leaves an input or a call dangling, and with a warning when it
only lost the `versions` record TensorFlow writes last.

The agent's graphinfo.py computes the same summaries in the cell with TF's own
protobufs; keep the two in step."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from sandbox.errors import SandboxError

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
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
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


_CLASSES = _build()


DEFAULT_MAX_BYTES = 1 << 30  # protobuf's own limit is 2 GiB; `sandbox check --max-model-size` changes it
MAX_DISTINCT = 100_000  # ops, op attrs, called functions: TF itself has about 2,000 ops
_CHUNK = 1 << 20  # consecutive nodes parsed at once


class CorruptModel(SandboxError):
    """The model file is damaged: cut short, or graph records that do not fit together."""


@dataclass(frozen=True)
class GraphInfo:
    kind: str  # "saved_model" | "graph_def"
    op_attrs: dict[str, dict[str, int]]  # op -> public attr -> how many nodes set it
    defaults: dict[str, dict[str, bytes]]  # producer's op defs: op -> attr -> default (SavedModel only)
    tensorflow: str | None  # producer's version, where recorded
    default_attrs: dict[str, list[str]] = field(default_factory=dict)  # strippable: see _Collector.strip
    lazy_ops: list[str] = field(default_factory=list)  # only in function bodies a Session load never runs
    lazy_attrs: dict[str, list[str]] = field(default_factory=dict)  # op -> attrs set only there
    warnings: tuple[str, ...] = ()  # doubts about the file that do not stop a verdict

    @property
    def ops(self) -> list[str]:
        return sorted(self.op_attrs)


def check_size(path: Path, size: int, max_bytes: int) -> None:
    """One line for a model file over the limit (every reader of `sandbox check` applies it)."""
    if size > max_bytes:
        raise SandboxError(f"{path}: {_mib(size)} is over the {_mib(max_bytes)} limit for models; "
                           "raise it with --max-model-size if you trust the file")


def read_model(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> GraphInfo:
    """Ops and attrs of a SavedModel folder or file, or a frozen GraphDef,
    after checking the graph is intact. SandboxError for a file that cannot
    be read or exceeds `max_bytes`; CorruptModel for a damaged one."""
    target = path / "saved_model.pb" if path.is_dir() else path
    try:
        size = target.stat().st_size
        if not target.is_file():
            raise SandboxError(f"{path}: not a file; give a SavedModel folder or a frozen GraphDef .pb")
        check_size(path, size, max_bytes)
        data = target.read_bytes()
    except OSError as exc:
        raise SandboxError(f"{path}: cannot read the model: {exc.strerror or exc}") from None
    if target.name == "saved_model.pb":
        try:
            saved = _read_saved_model(data)
        except _Broken as exc:
            raise CorruptModel(f"{path}: corrupt or truncated SavedModel: {exc}; get an intact copy of the model") from None
        if saved is not None:
            return saved
    try:
        graph = _read_graph_def(data)
    except _Broken as exc:
        if exc.graph:
            raise CorruptModel(f"{path}: corrupt or truncated GraphDef: {exc}; get an intact copy of the model") from None
        raise CorruptModel(f"{path}: not a SavedModel or a GraphDef (.pb) that this version can read ({exc})") from None
    if graph is None:
        raise SandboxError(f"{path}: not a SavedModel or a GraphDef (.pb) that this version can read")
    return graph


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


# -- the wire format -------------------------------------------------------------
class _Broken(Exception):
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
            raise _Broken(f"a number is cut off at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Broken(f"a number longer than 10 bytes at byte {pos}")


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
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
            raise _Broken(f"field {number} has wire type {wire} at byte {tag_at}")
        try:
            if wire == 0:
                value_at = pos
                _value, pos = _varint(data, pos, end)
            elif wire == 2:
                length, value_at = _varint(data, pos, end)
                pos = value_at + length
        except _Broken as exc:
            exc.field = number
            raise
        if number == 0:
            raise _Broken(f"field number 0 at byte {tag_at}")
        if pos > end:
            raise _Broken(f"field {number} at byte {tag_at} runs {pos - end} bytes past the end of its message",
                          field=number)
        yield number, wire, tag_at, value_at, pos


_Span = tuple[int, int]  # start and end of a field's value in the file


def _parse(name: str, data: bytes) -> Any:
    message = _CLASSES[name]()
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError, RecursionError) as exc:  # the runtimes raise DecodeError subclasses
        raise _Broken(f"a {name} does not parse ({_first_line(exc)})") from None
    return message


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _chunks(data: bytes, start: int, end: int, number: int, container: str,
            others: dict[int, _Span] | None = None) -> Iterator[Any]:
    """Messages `container` holding a run of consecutive `number` fields of
    data[start:end] (about _CHUNK bytes each): repeated fields concatenate,
    so nodes are parsed a chunk at a time, never all at once. `others`
    receives the span of every other length-delimited field, by number."""
    run_start = run_end = -1
    fields = _fields(data, start, end)
    while True:
        try:
            num, wire, tag_at, value_at, field_end = next(fields)
        except StopIteration:
            break
        except _Broken as exc:
            exc.graph = exc.graph or run_end >= 0 or exc.field == number  # nodes, then the cut
            raise
        if num != number or wire != 2:
            if others is not None and wire == 2:
                others[num] = (value_at, field_end)
            continue
        if run_start >= 0 and (tag_at != run_end or run_end - run_start >= _CHUNK):
            yield _parse(container, data[run_start:run_end])
            run_start = -1
        if run_start < 0:
            run_start = tag_at
        run_end = field_end
    if run_start >= 0:
        yield _parse(container, data[run_start:run_end])


# -- one graph (a GraphDef's main graph or a function body) ----------------------
def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


class _Names:
    """The node names of one graph as 64-bit hashes, and its node inputs; the
    check runs when the graph is complete (inputs may name later nodes)."""

    def __init__(self, args: tuple[str, ...] = ()) -> None:
        self.names = {hash(a) for a in args}
        self.inputs = array("q")

    def add(self, node: Any) -> None:
        if not node.name:
            raise _Broken(f"a node of op '{node.op}' has no name", graph=True)
        if not node.op:
            raise _Broken(f"node '{node.name}' has no op", graph=True)
        self.names.add(hash(node.name))
        self.inputs.extend([hash(i.lstrip("^").partition(":")[0]) for i in node.input])

    def dangling(self) -> bool:
        return any(h not in self.names for h in self.inputs)


def _first_dangling(nodes: Iterator[Any], names: _Names) -> str:
    """The message for the first input that names nothing: a second pass
    over the graph's nodes (streamed again), on the error path only."""
    for node in nodes:
        for tensor in node.input:
            if hash(_node_name(tensor)) not in names.names:
                return f"node '{node.name}' reads '{tensor}', which is not in its graph"
    return "an input names a node that is not in its graph"


def _func_attrs(node: Any) -> list[str]:
    """Functions a node names in its attrs (`f`, `body`, `then_branch`, ...)."""
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        if value.HasField("list"):
            names += [f.name for f in value.list.func]
    return [n for n in names if n]


# Ops that run a function of the graph's library, named by their func attrs:
# one missing from the library fails every load ("Function ... is not
# defined"). Other func attrs may name ops (SymbolicGradient's f).
CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall", "While", "StatelessWhile", "If", "StatelessIf",
                      "Case", "StatelessCase", "For", "RemoteCall"})


# -- the whole model -------------------------------------------------------------
class _Collector:
    """Ops and attrs of every graph of a model, as GraphInfo needs them,
    accumulated node by node."""

    def __init__(self, defaults: dict[str, dict[str, bytes]]) -> None:
        self.defaults = defaults
        self.op_attrs: dict[str, dict[str, int]] = {}
        self.strip: dict[tuple[str, str], bool] = {}  # attrs a TF 1.x SavedModel loader would strip
        self.eager_ops: set[str] = set()  # seen in code a load runs
        self.eager_attrs: set[tuple[str, str]] = set()

    def node(self, node: Any, main: bool) -> list[str]:
        """Count a node's op and attrs; returns its public attrs. strip: on
        every node that sets it, in the main graph (function bodies keep
        theirs) at the producer's default value."""
        attrs = self.op_attrs.setdefault(node.op, {})
        default = self.defaults.get(node.op, {})
        public = []
        for key, value in node.attr.items():
            if not key.startswith("_"):
                attrs[key] = attrs.get(key, 0) + 1
                public.append(key)
            pair = (node.op, key)
            if self.strip.get(pair, True):
                wanted = default.get(key) if main else None
                self.strip[pair] = wanted is not None and value.SerializeToString() == wanted
        if len(self.op_attrs) > MAX_DISTINCT or len(self.strip) > MAX_DISTINCT:
            raise _Broken(f"more than {MAX_DISTINCT} distinct ops or op attrs: not a graph TensorFlow wrote",
                          graph=True)
        return public

    def ran(self, ops: set[str], attrs: set[tuple[str, str]]) -> None:
        self.eager_ops |= ops
        self.eager_attrs |= attrs

    def info(self, kind: str, version: str | None, lazy_code: bool = True) -> GraphInfo:
        """lazy_code: whether a load may skip some functions (SavedModels; see `ran`)."""
        lazy_ops = sorted(set(self.op_attrs) - self.eager_ops) if lazy_code else []
        lazy = {(op, a): lazy_code and (op, a) not in self.eager_attrs for op, attrs in self.op_attrs.items() for a in attrs}
        return GraphInfo(kind, self.op_attrs, self.defaults, version, _by_op(self.strip), lazy_ops, _by_op(lazy))


class _Graph:
    """One GraphDef (a frozen graph's, or a meta graph's) read as a stream:
    main-graph nodes, then each function, with integrity checks. For
    SavedModels it keeps what `run` needs, compactly: per main node its input
    hashes and the functions its attrs or op name."""

    def __init__(self, data: bytes, start: int, end: int, collector: _Collector, keep_edges: bool) -> None:
        self.collector = collector
        self.keep_edges = keep_edges
        self.index: dict[int, int] = {}  # name hash -> main node number (SavedModels)
        self.offsets = array("q", [0])  # main node i's inputs are inputs[offsets[i]:offsets[i + 1]]
        self.callees: dict[str, int] = {}  # op or function name -> id
        self.call_offsets = array("q", [0])  # main node i calls call_ids[call_offsets[i]:call_offsets[i + 1]]
        self.call_ids = array("q")
        self.main_ops: set[str] = set()
        self.main_attrs: set[tuple[str, str]] = set()
        self.functions: dict[str, tuple[set[str], set[tuple[str, str]], set[str]]] = {}  # ops, attrs, callees
        self.named = array("q")  # callee ids of the functions nodes name in attrs
        self.nodes = 0
        main = _Names()
        others: dict[int, _Span] = {}
        try:
            for chunk in _chunks(data, start, end, 1, "GraphDef", others):
                for node in chunk.node:
                    self._main_node(node, main)
        except _Broken as exc:
            exc.graph = exc.graph or self.nodes > 0  # nodes, then the cut
            raise
        library = others.get(2)
        if main.dangling():
            raise _Broken(_first_dangling((n for c in _chunks(data, start, end, 1, "GraphDef") for n in c.node), main),
                          graph=True)
        self.inputs = main.inputs
        if library is not None:
            for number, wire, _tag, value_at, value_end in _fields(data, *library):
                if number == 1 and wire == 2:
                    self._function(data, value_at, value_end)
        names = list(self.callees)
        for callee in set(self.named):
            if names[callee] not in self.functions:
                raise _Broken(f"a node calls function '{names[callee]}', which the graph's library does not have",
                              graph=True)

    def _callee(self, name: str) -> int:
        if name not in self.callees:
            if len(self.callees) >= MAX_DISTINCT:
                raise _Broken(f"more than {MAX_DISTINCT} distinct ops and functions: not a graph TensorFlow wrote",
                              graph=True)
            self.callees[name] = len(self.callees)
        return self.callees[name]

    def _main_node(self, node: Any, names: _Names) -> None:
        names.add(node)
        public = self.collector.node(node, main=True)
        calls = node.op in CALL_OPS
        named = [self._callee(f) for f in _func_attrs(node)] if calls or self.keep_edges else []
        if calls:
            self.named.extend(named)
        if self.keep_edges:  # SavedModels: which functions a load runs decides what is lazy
            self.main_ops.add(node.op)
            self.main_attrs.update([(node.op, key) for key in public])
            self.index.setdefault(hash(node.name), self.nodes)
            self.offsets.append(len(names.inputs))
            self.call_ids.extend([self._callee(node.op), *named])
            self.call_offsets.append(len(self.call_ids))
        self.nodes += 1

    def _function(self, data: bytes, start: int, end: int) -> None:
        signature = None
        for number, wire, _tag, value_at, value_end in _fields(data, start, end):
            if number == 1 and wire == 2:
                signature = _parse("OpDef", data[value_at:value_end])
        if signature is None or not signature.name:
            raise _Broken("a function in the library has no name", graph=True)
        args = tuple(a.name for a in signature.input_arg)
        names = _Names(args)
        ops: set[str] = set()
        attrs: set[tuple[str, str]] = set()
        callees: set[str] = set()
        for chunk in _chunks(data, start, end, 3, "FunctionDef"):
            for node in chunk.node_def:
                names.add(node)
                public = self.collector.node(node, main=False)
                ops.add(node.op)
                attrs.update([(node.op, key) for key in public])
                named = _func_attrs(node)
                callees.update([node.op, *named])
                if node.op in CALL_OPS:
                    self.named.extend(self._callee(f) for f in named)
        if names.dangling():
            found = _first_dangling((n for c in _chunks(data, start, end, 3, "FunctionDef") for n in c.node_def), names)
            raise _Broken(f"in function '{signature.name}': {found}", graph=True)
        self.functions[signature.name] = (ops, attrs, callees)

    def run(self, roots: list[str] | None) -> set[str] | None:
        """The functions a TF 1.x Session load and its serving run call: those
        `roots` (the serving signature's outputs, the restore op) reach through
        the main graph, and the functions those call; None: all of them."""
        if roots is None:
            return None
        seen = bytearray(self.nodes)
        todo = [self.index[h] for h in (hash(_node_name(r)) for r in roots) if h in self.index]
        names = list(self.callees)
        called: list[str] = []
        while todo:
            i = todo.pop()
            if seen[i]:
                continue
            seen[i] = 1
            todo += [self.index[h] for h in self.inputs[self.offsets[i]:self.offsets[i + 1]] if h in self.index]
            called += [names[c] for c in self.call_ids[self.call_offsets[i]:self.call_offsets[i + 1]]
                       if names[c] in self.functions]
        found: set[str] = set()
        while called:
            name = called.pop()
            if name not in found:
                found.add(name)
                called += [c for c in self.functions[name][2] if c in self.functions]
        return found

    def report(self, run: set[str] | None) -> None:
        """Tell the collector which ops and attrs sit in code a load runs."""
        self.collector.ran(self.main_ops, self.main_attrs)
        for name, (ops, attrs, _callees) in self.functions.items():
            if run is None or name in run:
                self.collector.ran(ops, attrs)


def _read_graph_def(data: bytes) -> GraphInfo | None:
    """A frozen GraphDef; None when the file holds no node at all."""
    collector = _Collector({})
    graph = _Graph(data, 0, len(data), collector, keep_edges=False)
    if not graph.nodes:
        return None
    # no versions record is no sign of damage: TF 1.x's convert_variables_to_constants writes none
    return collector.info("graph_def", None, lazy_code=False)


def _read_saved_model(data: bytes) -> GraphInfo | None:
    """A SavedModel; None when the file does not look like one (then it is
    read as a GraphDef)."""
    metas = []
    for number, wire, _tag, value_at, value_end in _fields(data, 0, len(data)):
        if number == 1 and wire != 0:
            return None  # a GraphDef's nodes, not saved_model_schema_version
        if number == 2 and wire == 2:
            metas.append((value_at, value_end))
    if not metas:
        return None
    defaults: dict[str, dict[str, bytes]] = {}
    version = None
    parts = [_meta_parts(data, *meta) for meta in metas]
    for info, _graph, _saver, _signatures in parts:
        if info is not None:
            version = version or _meta_info(data, *info, defaults) or None
    collector = _Collector(defaults)
    for _info, graph_span, saver, signatures in parts:
        if graph_span is None:
            continue
        graph = _Graph(data, *graph_span, collector, keep_edges=True)
        graph.report(graph.run(_roots(data, saver, signatures)))
    return collector.info("saved_model", version)


def _meta_parts(data: bytes, start: int, end: int) -> tuple[_Span | None, _Span | None, _Span | None, list[_Span]]:
    """Where a MetaGraphDef keeps its meta_info_def, graph_def, saver_def and signature_defs."""
    found: dict[int, _Span] = {}
    signatures: list[_Span] = []
    for number, wire, _tag, value_at, value_end in _fields(data, start, end):
        if wire == 2 and number == 5:
            signatures.append((value_at, value_end))
        elif wire == 2 and number in (1, 2, 3):
            found[number] = (value_at, value_end)
    return found.get(1), found.get(2), found.get(3), signatures


def _meta_info(data: bytes, start: int, end: int, defaults: dict[str, dict[str, bytes]]) -> str:
    """The producer's TF version; its op definitions' defaults go into `defaults`."""
    version = ""
    for number, wire, _tag, value_at, value_end in _fields(data, start, end):
        if number == 5 and wire == 2:
            version = data[value_at:value_end].decode("utf-8", "replace")[:100]
        elif number == 2 and wire == 2:
            for num, kind, _t, op_at, op_end in _fields(data, value_at, value_end):
                if num == 1 and kind == 2:
                    op = _parse("OpDef", data[op_at:op_end])
                    defaults[op.name] = {a.name: a.default_value.SerializeToString() for a in op.attr
                                         if a.HasField("default_value")}
                    if len(defaults) > MAX_DISTINCT:
                        raise _Broken(f"more than {MAX_DISTINCT} op definitions", graph=True)
    return version


def _roots(data: bytes, saver: _Span | None, signatures: list[_Span],
           signature: str = "serving_default") -> list[str] | None:
    """What a Session load runs from (_Graph.run): the serving signature's
    outputs and the restore op; None without that signature."""
    outputs = None
    for start, end in signatures:
        item = _parse("SignatureDefItem", data[start:end])
        if item.key == signature:
            outputs = [t.name for t in item.value.outputs.values()]
    if outputs is None:
        return None
    restore = _parse("SaverDef", data[saver[0]:saver[1]]).restore_op_name if saver else ""
    return [r for r in [*outputs, restore] if r]


def signature_keys(path: Path, signature: str = "serving_default") -> tuple[list[str], list[str]] | None:
    """The input and output keys of a SavedModel's `signature` (sorted), from
    its first meta graph that has one; None when none has it. SandboxError for
    a file that cannot be read, CorruptModel for one that does not parse."""
    target = path / "saved_model.pb" if path.is_dir() else path
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise SandboxError(f"{path}: cannot read the model: {exc.strerror or exc}") from None
    try:
        for number, wire, _tag, meta_at, meta_end in _fields(data, 0, len(data)):
            if number != 2 or wire != 2:
                continue
            for start, end in _meta_parts(data, meta_at, meta_end)[3]:
                item = _parse("SignatureDefItem", data[start:end])
                if item.key == signature:
                    return sorted(item.value.inputs), sorted(item.value.outputs)
    except _Broken as exc:
        raise CorruptModel(f"{path}: corrupt or truncated SavedModel: {exc}") from None
    return None


def _by_op(verdict: dict[tuple[str, str], bool]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for (op, attr), ok in sorted(verdict.items()):
        if ok:
            found.setdefault(op, []).append(attr)
    return found
