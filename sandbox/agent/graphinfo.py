"""Ops, attrs and signatures of a written artifact, read back with TF's protobufs."""
import os
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import callgraph

SAVED_MODEL_PB = "saved_model.pb"


def read_saved_model(path: str) -> Any:
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, SAVED_MODEL_PB), "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def read_graph_def(path: str) -> Any:
    from tensorflow.core.framework import graph_pb2
    proto = graph_pb2.GraphDef()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def _nodes(graph_def: Any, run: Optional[Set[str]] = None) -> Iterable[Tuple[Any, bool, bool]]:
    """(node, in the function library?, lazy?) for the main graph and every
    function; lazy: in a function outside `run` (None: every function runs)."""
    for node in graph_def.node:
        yield node, False, False
    for function in graph_def.library.function:
        lazy = run is not None and function.signature.name not in run
        for node in function.node_def:
            yield node, True, lazy


def run_functions(meta_graph: Any, key: str = "serving_default") -> Optional[Set[str]]:
    """The functions a TF 1.x Session load and its serving run call (the rule:
    callgraph.session_functions), from the signature's outputs and the restore
    op. None (all of them) without such a signature."""
    if key not in meta_graph.signature_def:
        return None
    roots = [t.name for t in meta_graph.signature_def[key].outputs.values()]
    roots.append(meta_graph.saver_def.restore_op_name)
    return reachable_functions(meta_graph.graph_def, [r for r in roots if r])


def reachable_functions(graph_def: Any, roots: List[str]) -> Set[str]:
    """Functions called by the main-graph nodes that `roots` ("node:0",
    "^node") depend on, and by the bodies of those functions, recursively."""
    nodes = list(graph_def.node)
    index = dict((n.name, i) for i, n in enumerate(nodes))

    def numbers(tensors: Iterable[str]) -> List[int]:
        return [index[name] for name in map(_node_name, tensors) if name in index]
    bodies = dict((f.signature.name, [c for n in f.node_def for c in _calls(n)]) for f in graph_def.library.function)
    return callgraph.session_functions(len(nodes), numbers(roots), lambda i: numbers(nodes[i].input),
                                       lambda i: _calls(nodes[i]), bodies)


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


def _calls(node: Any) -> List[str]:
    """What a node calls: its op, and the functions its attrs name (f, body, then_branch, ...)."""
    names = [node.op] + [value.func.name for value in node.attr.values()]
    names.extend(f.name for value in node.attr.values() for f in value.list.func)
    return [n for n in names if n]


_DEFAULTS: Dict[str, Dict[str, Any]] = {}


def _defaults() -> Dict[str, Dict[str, Any]]:
    """Per op, the default AttrValue of each attr that has one, in this TF."""
    if not _DEFAULTS:
        import opregistry
        _source, _complete, op_defs = opregistry.registered_ops()
        for op in op_defs:
            _DEFAULTS[op.name] = dict((a.name, a.default_value) for a in op.attr if a.HasField("default_value"))
    return _DEFAULTS


def op_table(graphs: Iterable[Tuple[Any, Optional[Set[str]]]]) -> Dict[str, Any]:
    """For (GraphDef, functions its load runs) pairs: sorted op names; per op
    the sorted public attr names seen on its nodes; per op the attrs that hold
    this TF's default value on every node (a SavedModel loader strips those
    from the main graph where the consumer does not know them; it leaves
    function bodies alone, so attrs seen there count as not strippable); and
    the ops, and per op the attrs, seen only in functions the load never runs."""
    attrs = {}  # type: Dict[str, Set[str]]
    changed = {}  # type: Dict[str, Set[str]]
    run_ops = set()  # type: Set[str]
    run_attrs = {}  # type: Dict[str, Set[str]]
    defaults = _defaults()
    for graph_def, run in graphs:
        for node, in_library, lazy in _nodes(graph_def, run):
            seen = attrs.setdefault(node.op, set())
            if not lazy:
                run_ops.add(node.op)
            op_defaults = defaults.get(node.op, {})
            for key in node.attr:
                if key.startswith("_"):
                    continue
                seen.add(key)
                if not lazy:
                    run_attrs.setdefault(node.op, set()).add(key)
                if in_library or key not in op_defaults or node.attr[key] != op_defaults[key]:
                    changed.setdefault(node.op, set()).add(key)
    return {"ops": sorted(attrs), "op_attrs": dict((op, sorted(names)) for op, names in attrs.items()),
            "default_attrs": _nonempty(attrs, changed), "lazy_ops": sorted(set(attrs) - run_ops),
            "lazy_attrs": _nonempty(attrs, run_attrs)}


def _nonempty(attrs: Dict[str, Set[str]], minus: Dict[str, Set[str]]) -> Dict[str, List[str]]:
    """Per op, its attrs outside `minus`, sorted; ops left with none omitted."""
    left = dict((op, sorted(names - minus.get(op, set()))) for op, names in attrs.items())
    return dict((op, names) for op, names in left.items() if names)


def serving_signature(saved_model: Any, tag: str = "serve",
                      key: str = "serving_default") -> Optional[Dict[str, Dict[str, str]]]:
    for meta_graph in saved_model.meta_graphs:
        if tag in meta_graph.meta_info_def.tags and key in meta_graph.signature_def:
            sig = meta_graph.signature_def[key]
            return {
                "inputs": dict((k, v.name) for k, v in sig.inputs.items()),
                "outputs": dict((k, v.name) for k, v in sig.outputs.items()),
            }
    return None


NO_GRAPH = {"ops": [], "op_attrs": {}, "default_attrs": {}, "lazy_ops": [], "lazy_attrs": {}, "signature": None}


def describe(path: str, fmt: str) -> Dict[str, Any]:
    """ops, op_attrs, default_attrs, lazy_ops, lazy_attrs and (for SavedModels)
    the serving signature of an artifact; TFLite models list builtin ops with
    their versions."""
    if fmt.startswith("tflite"):  # tflite, tflite_dynamic, tflite_int8
        import tfliteinfo
        return dict(tfliteinfo.describe(path), default_attrs={}, lazy_ops=[], lazy_attrs={})
    if os.path.isdir(path):
        saved_model = read_saved_model(path)
        found = op_table((mg.graph_def, run_functions(mg)) for mg in saved_model.meta_graphs)
        return dict(found, signature=serving_signature(saved_model))
    if fmt == "frozen_graph":
        return dict(op_table([(read_graph_def(path), None)]), signature=None)
    return dict(NO_GRAPH)
