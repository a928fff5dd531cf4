"""One graph of a model read node by node (a GraphDef's main graph, then each
function of its library): its ops and attrs, accumulated over a model's graphs
into a GraphInfo (Collector); its integrity; and, for SavedModels, which
functions a Session load runs (Graph.run), which decides what is lazy.

Memory stays small whatever the graph holds: 8-byte hashes of node names and
inputs, per node the functions it names, the distinct ops and attrs. Before a
graph gets a verdict its integrity is checked: every node input names a node
of its graph (or an argument of its function), and every function a call op
(CALL_OPS) names is in the library."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sandbox.agent import callgraph
from sandbox.check.protowire import Broken, Span, chunks, fields, parse

MAX_DISTINCT = 100_000  # ops, op attrs, called functions: TF itself has about 2,000 ops


@dataclass(frozen=True)
class GraphInfo:
    kind: str  # "saved_model" | "graph_def"
    op_attrs: dict[str, dict[str, int]]  # op -> public attr -> how many nodes set it
    defaults: dict[str, dict[str, bytes]]  # producer's op defs: op -> attr -> default (SavedModel only)
    tensorflow: str | None  # producer's version, where recorded
    default_attrs: dict[str, list[str]] = field(default_factory=dict)  # strippable: see Collector.strip
    lazy_ops: list[str] = field(default_factory=list)  # only in function bodies a Session load never runs
    lazy_attrs: dict[str, list[str]] = field(default_factory=dict)  # op -> attrs set only there
    warnings: tuple[str, ...] = ()  # doubts about the file that do not stop a verdict

    @property
    def ops(self) -> list[str]:
        return sorted(self.op_attrs)


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
            raise Broken(f"a node of op '{node.op}' has no name", graph=True)
        if not node.op:
            raise Broken(f"node '{node.name}' has no op", graph=True)
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


class Collector:
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
            raise Broken(f"more than {MAX_DISTINCT} distinct ops or op attrs: not a graph TensorFlow wrote",
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


class Graph:
    """One GraphDef (a frozen graph's, or a meta graph's) read as a stream:
    main-graph nodes, then each function, with integrity checks. For
    SavedModels it keeps what `run` needs, compactly: per main node its input
    hashes and the functions its attrs or op name."""

    def __init__(self, data: bytes, start: int, end: int, collector: Collector, keep_edges: bool) -> None:
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
        others: dict[int, Span] = {}
        try:
            for chunk in chunks(data, start, end, 1, "GraphDef", others):
                for node in chunk.node:
                    self._main_node(node, main)
        except Broken as exc:
            exc.graph = exc.graph or self.nodes > 0  # nodes, then the cut
            raise
        library = others.get(2)
        if main.dangling():
            raise Broken(_first_dangling((n for c in chunks(data, start, end, 1, "GraphDef") for n in c.node), main),
                          graph=True)
        self.inputs = main.inputs
        if library is not None:
            for number, wire, _tag, value_at, value_end in fields(data, *library):
                if number == 1 and wire == 2:
                    self._function(data, value_at, value_end)
        names = list(self.callees)
        for callee in set(self.named):
            if names[callee] not in self.functions:
                raise Broken(f"a node calls function '{names[callee]}', which the graph's library does not have",
                              graph=True)

    def _callee(self, name: str) -> int:
        if name not in self.callees:
            if len(self.callees) >= MAX_DISTINCT:
                raise Broken(f"more than {MAX_DISTINCT} distinct ops and functions: not a graph TensorFlow wrote",
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
        for number, wire, _tag, value_at, value_end in fields(data, start, end):
            if number == 1 and wire == 2:
                signature = parse("OpDef", data[value_at:value_end])
        if signature is None or not signature.name:
            raise Broken("a function in the library has no name", graph=True)
        args = tuple(a.name for a in signature.input_arg)
        names = _Names(args)
        ops: set[str] = set()
        attrs: set[tuple[str, str]] = set()
        callees: set[str] = set()
        for chunk in chunks(data, start, end, 3, "FunctionDef"):
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
            found = _first_dangling((n for c in chunks(data, start, end, 3, "FunctionDef") for n in c.node_def), names)
            raise Broken(f"in function '{signature.name}': {found}", graph=True)
        self.functions[signature.name] = (ops, attrs, callees)

    def run(self, roots: list[str] | None) -> set[str] | None:
        """The functions a TF 1.x Session load and its serving run call, from
        `roots` (the serving signature's outputs, the restore op), by the rule
        the agent applies too (sandbox/agent/callgraph.py); None: all of them."""
        if roots is None:
            return None
        names = list(self.callees)

        def numbers(hashes: Iterable[int]) -> list[int]:
            return [self.index[h] for h in hashes if h in self.index]

        def calls(i: int) -> list[str]:
            return [names[c] for c in self.call_ids[self.call_offsets[i]:self.call_offsets[i + 1]]]

        found: set[str] = callgraph.session_functions(
            self.nodes, numbers(hash(_node_name(r)) for r in roots),
            lambda i: numbers(self.inputs[self.offsets[i]:self.offsets[i + 1]]), calls,
            {name: callees for name, (_ops, _attrs, callees) in self.functions.items()})
        return found

    def report(self, run: set[str] | None) -> None:
        """Tell the collector which ops and attrs sit in code a load runs."""
        self.collector.ran(self.main_ops, self.main_attrs)
        for name, (ops, attrs, _callees) in self.functions.items():
            if run is None or name in run:
                self.collector.ran(ops, attrs)


def _by_op(verdict: dict[tuple[str, str], bool]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for (op, attr), ok in sorted(verdict.items()):
        if ok:
            found.setdefault(op, []).append(attr)
    return found
