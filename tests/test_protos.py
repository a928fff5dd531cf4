"""Reading graphs without TF: which functions a TF 1.x Session load runs, on
hand-built SavedModels made of sandbox.check.protowire's own message classes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.check import graphfile, protowire
from sandbox.check.graph import Collector, Graph

AGENT = Path(__file__).resolve().parent.parent / "sandbox" / "agent"

C = protowire.CLASSES


def node(name: str, op: str, inputs: tuple[str, ...] = (), **funcs: str | list[str]) -> Any:
    made = C["NodeDef"](name=name, op=op, input=list(inputs))
    for key, value in funcs.items():
        if isinstance(value, list):
            made.attr[key].list.func.extend(C["NameAttrList"](name=v) for v in value)
        else:
            made.attr[key].func.name = value
    return made


def function(name: str, *nodes: Any) -> Any:
    made = C["FunctionDef"]()
    made.signature.name = name
    made.node_def.extend(nodes)
    return made


def saved_model(graph_nodes: list[Any], functions: list[Any], outputs: list[str] | None,
                restore: str = "") -> Any:
    meta = C["MetaGraphDef"]()
    meta.graph_def.node.extend(graph_nodes)
    meta.graph_def.library.function.extend(functions)
    meta.saver_def.restore_op_name = restore
    if outputs is not None:
        for i, name in enumerate(outputs):
            meta.signature_def["serving_default"].outputs[f"y{i}"].name = name
    saved = C["SavedModel"]()
    saved.meta_graphs.append(meta)
    return saved


# A TF 2.x SavedModel in miniature: serving calls a While whose body calls a
# function by op name; save and restore are functions of their own.
GRAPH = [
    node("x", "Placeholder"), node("v", "VarHandleOp"),
    node("serve", "StatefulPartitionedCall", ("x", "v", "^init"), f="serve_fn"),
    node("init", "NoOp"),
    node("save", "StatefulPartitionedCall", ("v",), f="save_fn"),
    node("restore", "StatefulPartitionedCall", ("v",), f="restore_fn"),
    node("unused", "PartitionedCall", ("x",), f="unused_fn"),
]
FUNCTIONS = [
    function("serve_fn", node("loop", "While", body="body_fn", cond="cond_fn")),
    function("body_fn", node("m", "MatMul"), node("c", "inner_fn")),
    function("cond_fn", node("l", "Less")),
    function("inner_fn", node("e", "Einsum")),
    function("save_fn", node("d", "DisableCopyOnRead"), node("s", "SaveV2")),
    function("restore_fn", node("r", "RestoreV2"), node("b", "Case", branches=["branch_fn"])),
    function("branch_fn", node("i", "Identity")),
    function("unused_fn", node("s2", "SaveV2"), node("m2", "MatMul")),
]


def write(tmp_path: Path, saved: Any) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "saved_model.pb").write_bytes(saved.SerializeToString())
    return tmp_path


def test_lazy_ops_occur_only_in_functions_the_load_never_runs(tmp_path: Path) -> None:
    info = graphfile.read_model(write(tmp_path, saved_model(GRAPH, FUNCTIONS, ["serve:0"], "restore")))
    # MatMul and SaveV2 also occur in unrun functions, but MatMul is run (body_fn)
    assert info.lazy_ops == ["DisableCopyOnRead", "SaveV2"]
    assert "Einsum" in info.ops and "Einsum" not in info.lazy_ops  # reached through a call by op name
    assert info.lazy_attrs == {}


def test_serving_and_restore_are_what_a_session_load_runs(tmp_path: Path) -> None:
    """Serving alone runs serve_fn and what it calls (a While's body and cond, a
    function called by op name); the restore op alone, restore_fn and the Case's
    branch; what neither reaches holds the lazy ops (read off FUNCTIONS by hand)."""
    serving = graphfile.read_model(write(tmp_path / "serving", saved_model(GRAPH, FUNCTIONS, ["serve:0"])))
    assert serving.lazy_ops == ["Case", "DisableCopyOnRead", "Identity", "RestoreV2", "SaveV2"]
    restore = graphfile.read_model(write(tmp_path / "restore", saved_model(GRAPH, FUNCTIONS, ["x:0", "nowhere:0"], "restore")))
    # body_fn calls inner_fn by op name: a node's op, lazy with body_fn
    assert restore.lazy_ops == ["DisableCopyOnRead", "Einsum", "Less", "MatMul", "SaveV2", "While", "inner_fn"]


def test_lazy_attrs_are_set_only_in_unrun_functions(tmp_path: Path) -> None:
    save = function("save_fn", node("d", "DisableCopyOnRead", debug="not a function"), node("s", "SaveV2"))
    functions = [save if f.signature.name == "save_fn" else f for f in FUNCTIONS]
    functions.append(function("late_fn", node("u", "Identity", f="branch_fn")))
    graph = GRAPH + [node("late", "PartitionedCall", f="late_fn")]
    info = graphfile.read_model(write(tmp_path, saved_model(graph, functions, ["serve:0"], "restore")))
    # Identity is run (branch_fn) but sets "f" only in late_fn, which nothing the load runs calls
    assert info.lazy_attrs == {"DisableCopyOnRead": ["debug"], "Identity": ["f"]}
    # main-graph nodes always count, reached or not ("unused", "late")
    assert "PartitionedCall" not in info.lazy_attrs and "PartitionedCall" not in info.lazy_ops


def test_without_a_serving_signature_every_function_counts(tmp_path: Path) -> None:
    info = graphfile.read_model(write(tmp_path, saved_model(GRAPH, FUNCTIONS, None, "restore")))
    assert info.lazy_ops == [] and info.lazy_attrs == {}


def test_frozen_graphs_have_no_lazy_functions(tmp_path: Path) -> None:
    graph = saved_model(GRAPH, FUNCTIONS, ["serve:0"]).meta_graphs[0].graph_def
    (tmp_path / "frozen.pb").write_bytes(graph.SerializeToString())
    info = graphfile.read_model(tmp_path / "frozen.pb")
    assert info.kind == "graph_def" and info.lazy_ops == [] and "DisableCopyOnRead" in info.ops


@pytest.fixture
def graphinfo() -> Iterator[Any]:
    """The agent's graphinfo, imported as the cell imports it (sandbox/agent on sys.path)."""
    sys.path.insert(0, str(AGENT))
    try:
        import graphinfo
        yield graphinfo
    finally:
        sys.path.remove(str(AGENT))


@pytest.mark.parametrize("outputs, restore, expected", [
    (["serve:0"], "restore", {"serve_fn", "body_fn", "cond_fn", "inner_fn", "restore_fn", "branch_fn"}),
    (["serve:0"], "", {"serve_fn", "body_fn", "cond_fn", "inner_fn"}),
    (["x:0", "nowhere:0"], "restore", {"restore_fn", "branch_fn"}),
    (["^init"], "", set()),
    (None, "restore", None),
])
def test_the_agent_and_the_host_run_the_same_functions(graphinfo: Any, outputs: list[str] | None, restore: str,
                                                       expected: set[str] | None) -> None:
    """One rule (sandbox/agent/callgraph.py) on both sides: the agent on the
    meta graph's protobuf messages, the host on the streamed file."""
    meta = saved_model(GRAPH, FUNCTIONS, outputs, restore).meta_graphs[0]
    data = meta.graph_def.SerializeToString()
    host = Graph(data, 0, len(data), Collector({}), keep_edges=True)
    roots = None if outputs is None else [r for r in [*outputs, restore] if r]
    assert graphinfo.run_functions(meta) == host.run(roots) == expected
