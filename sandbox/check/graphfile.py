"""A SavedModel or a frozen GraphDef file read without TensorFlow: its graphs'
ops and attrs (read_model) and a SavedModel's signature keys.

A size limit comes first (sandbox.check.limits). A file cut at a node boundary
is still valid protobuf; it is reported as corrupt or truncated
(CorruptModel), not given a verdict, when that leaves an input or a call
dangling (sandbox.check.graph checks), and with a warning when it only lost
the `versions` record TensorFlow writes last.

The agent's graphinfo.py computes the same summaries in the cell with TF's own
protobufs: the functions a load runs by the one rule both import
(sandbox/agent/callgraph.py); the attrs at their default from the cell's own
TF op registry, where this reads the SavedModel's stripped_op_list (the host
has no TF)."""

from __future__ import annotations

from pathlib import Path

from sandbox.check.graph import MAX_DISTINCT, Collector, Graph, GraphInfo
from sandbox.check.limits import DEFAULT_MAX_BYTES, check_size
from sandbox.check.protowire import Broken, Span, fields, parse
from sandbox.errors import SandboxError


class CorruptModel(SandboxError):
    """The model file is damaged: cut short, or graph records that do not fit together."""


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
        except Broken as exc:
            raise CorruptModel(f"{path}: corrupt or truncated SavedModel: {exc}; get an intact copy of the model") from None
        if saved is not None:
            return saved
    try:
        graph = _read_graph_def(data)
    except Broken as exc:
        if exc.graph:
            raise CorruptModel(f"{path}: corrupt or truncated GraphDef: {exc}; get an intact copy of the model") from None
        raise CorruptModel(f"{path}: not a SavedModel or a GraphDef (.pb) that this version can read ({exc})") from None
    if graph is None:
        raise SandboxError(f"{path}: not a SavedModel or a GraphDef (.pb) that this version can read")
    return graph


def _read_graph_def(data: bytes) -> GraphInfo | None:
    """A frozen GraphDef; None when the file holds no node at all."""
    collector = Collector({})
    graph = Graph(data, 0, len(data), collector, keep_edges=False)
    if not graph.nodes:
        return None
    # no versions record is no sign of damage: TF 1.x's convert_variables_to_constants writes none
    return collector.info("graph_def", None, lazy_code=False)


def _read_saved_model(data: bytes) -> GraphInfo | None:
    """A SavedModel; None when the file does not look like one (then it is
    read as a GraphDef)."""
    metas = []
    for number, wire, _tag, value_at, value_end in fields(data, 0, len(data)):
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
    collector = Collector(defaults)
    for _info, graph_span, saver, signatures in parts:
        if graph_span is None:
            continue
        graph = Graph(data, *graph_span, collector, keep_edges=True)
        graph.report(graph.run(_roots(data, saver, signatures)))
    return collector.info("saved_model", version)


def _meta_parts(data: bytes, start: int, end: int) -> tuple[Span | None, Span | None, Span | None, list[Span]]:
    """Where a MetaGraphDef keeps its meta_info_def, graph_def, saver_def and signature_defs."""
    found: dict[int, Span] = {}
    signatures: list[Span] = []
    for number, wire, _tag, value_at, value_end in fields(data, start, end):
        if wire == 2 and number == 5:
            signatures.append((value_at, value_end))
        elif wire == 2 and number in (1, 2, 3):
            found[number] = (value_at, value_end)
    return found.get(1), found.get(2), found.get(3), signatures


def _meta_info(data: bytes, start: int, end: int, defaults: dict[str, dict[str, bytes]]) -> str:
    """The producer's TF version; its op definitions' defaults go into `defaults`."""
    version = ""
    for number, wire, _tag, value_at, value_end in fields(data, start, end):
        if number == 5 and wire == 2:
            version = data[value_at:value_end].decode("utf-8", "replace")[:100]
        elif number == 2 and wire == 2:
            for num, kind, _t, op_at, op_end in fields(data, value_at, value_end):
                if num == 1 and kind == 2:
                    op = parse("OpDef", data[op_at:op_end])
                    defaults[op.name] = {a.name: a.default_value.SerializeToString() for a in op.attr
                                         if a.HasField("default_value")}
                    if len(defaults) > MAX_DISTINCT:
                        raise Broken(f"more than {MAX_DISTINCT} op definitions", graph=True)
    return version


def _roots(data: bytes, saver: Span | None, signatures: list[Span],
           signature: str = "serving_default") -> list[str] | None:
    """What a Session load runs from (Graph.run): the serving signature's
    outputs and the restore op; None without that signature."""
    outputs = None
    for start, end in signatures:
        item = parse("SignatureDefItem", data[start:end])
        if item.key == signature:
            outputs = [t.name for t in item.value.outputs.values()]
    if outputs is None:
        return None
    restore = parse("SaverDef", data[saver[0]:saver[1]]).restore_op_name if saver else ""
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
        for number, wire, _tag, meta_at, meta_end in fields(data, 0, len(data)):
            if number != 2 or wire != 2:
                continue
            for start, end in _meta_parts(data, meta_at, meta_end)[3]:
                item = parse("SignatureDefItem", data[start:end])
                if item.key == signature:
                    return sorted(item.value.inputs), sorted(item.value.outputs)
    except Broken as exc:
        raise CorruptModel(f"{path}: corrupt or truncated SavedModel: {exc}") from None
    return None
