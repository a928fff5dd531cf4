"""`sandbox check` on untrusted model files: a size limit, memory a small
multiple of the file, and no verdict for a graph that is not intact."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_protos import FUNCTIONS, GRAPH, function, node, saved_model

from sandbox import cli
from sandbox.check import graphfile, protowire
from sandbox.errors import SandboxError

C = protowire.CLASSES
EXAMPLE = Path(__file__).parent.parent / "examples" / "repro" / "batch_matmul_tf1.15.pb"
BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_check.py"


def graph_def(nodes: list[Any], functions: list[Any] = (), producer: int | None = 1500) -> Any:  # type: ignore[assignment]
    made = C["GraphDef"]()
    made.node.extend(nodes)
    if functions:
        made.library.function.extend(functions)
    if producer is not None:
        made.versions.producer = producer
    return made


def write(tmp_path: Path, message: Any, name: str = "frozen.pb") -> Path:
    path = tmp_path / name
    path.write_bytes(message.SerializeToString())
    return path


def test_a_graph_cut_at_a_node_boundary_is_corrupt(tmp_path: Path) -> None:
    """The issue's case: still valid protobuf, but a node reads one that was cut off."""
    nodes = [node("x", "Placeholder"), node("y", "Relu", ("z:0",)), node("z", "Identity", ("x",))]
    whole = graph_def(nodes).SerializeToString()
    head = graph_def(nodes[:2], producer=None).SerializeToString()
    assert whole.startswith(head)  # a prefix of the file, ending at a node boundary
    (tmp_path / "cut.pb").write_bytes(head)
    with pytest.raises(graphfile.CorruptModel, match=r"corrupt or truncated GraphDef: node 'y' reads 'z:0', which is not in its graph"):
        graphfile.read_model(tmp_path / "cut.pb")
    assert graphfile.read_model(write(tmp_path, graph_def(nodes))).ops == ["Identity", "Placeholder", "Relu"]


@pytest.mark.parametrize("cut", [1, 17, 100, 300, 465])
def test_a_real_frozen_graph_cut_anywhere_is_never_given_a_verdict(tmp_path: Path, cut: int) -> None:
    data = EXAMPLE.read_bytes()
    (tmp_path / "cut.pb").write_bytes(data[:cut])
    with pytest.raises(SandboxError, match="corrupt or truncated"):
        graphfile.read_model(tmp_path / "cut.pb")


def test_a_graph_without_a_versions_record_is_read_without_a_warning(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """TF 1.15's convert_variables_to_constants writes frozen graphs without
    one (measured: GraphDef.HasField('versions') is False in the files of the
    tf1.15.5 cell), so its absence says nothing of a cut file."""
    nodes = [node("x", "Placeholder"), node("y", "Identity", ("x",))]
    info = graphfile.read_model(write(tmp_path, graph_def(nodes, producer=None)))
    assert info.ops == ["Identity", "Placeholder"] and info.warnings == () and info.tensorflow is None
    assert cli.main(["check", str(tmp_path / "frozen.pb"), "--against", "tf==2.15"]) == 0
    assert "sandbox: warning:" not in capsys.readouterr().err


def test_inputs_inside_functions_name_arguments_or_nodes_of_that_function(tmp_path: Path) -> None:
    body = function("body_fn", node("m", "MatMul", ("a", "b:0")), node("r", "Relu", ("m:product:0", "^a")))
    body.signature.input_arg.add(name="a")
    body.signature.input_arg.add(name="b")
    nodes = [node("x", "Placeholder"), node("c", "PartitionedCall", ("x",), f="body_fn")]
    assert graphfile.read_model(write(tmp_path, graph_def(nodes, [body]))).ops == ["MatMul", "PartitionedCall", "Placeholder", "Relu"]
    broken = function("body_fn", node("m", "MatMul", ("a", "b:0")))
    broken.signature.input_arg.add(name="a")  # b is neither an argument nor a node of body_fn
    with pytest.raises(graphfile.CorruptModel, match="in function 'body_fn': node 'm' reads 'b:0', which is not in its graph"):
        graphfile.read_model(write(tmp_path, graph_def(nodes, [broken])))
    x_in_function = function("body_fn", node("m", "MatMul", ("x",)))  # a main-graph node is not in scope
    with pytest.raises(graphfile.CorruptModel, match="node 'm' reads 'x'"):
        graphfile.read_model(write(tmp_path, graph_def(nodes, [x_in_function])))


def test_a_call_of_a_function_the_library_lost(tmp_path: Path) -> None:
    nodes = [node("x", "Placeholder"), node("c", "StatefulPartitionedCall", ("x",), f="serve_fn")]
    with pytest.raises(graphfile.CorruptModel, match="calls function 'serve_fn', which the graph's library does not have"):
        graphfile.read_model(write(tmp_path, graph_def(nodes)))
    # SymbolicGradient's f may name an op: only call ops must find theirs in the library
    assert graphfile.read_model(write(tmp_path, graph_def([node("g", "SymbolicGradient", f="Add")])))


def test_a_saved_model_with_a_dangling_input_is_corrupt(tmp_path: Path) -> None:
    graph = GRAPH + [node("late", "Identity", ("gone:0",))]
    (tmp_path / "saved_model.pb").write_bytes(saved_model(graph, FUNCTIONS, ["serve:0"]).SerializeToString())
    with pytest.raises(graphfile.CorruptModel, match="corrupt or truncated SavedModel: node 'late' reads 'gone:0'"):
        graphfile.read_model(tmp_path)


def test_a_saved_model_cut_short_is_corrupt(tmp_path: Path) -> None:
    data = saved_model(GRAPH, FUNCTIONS, ["serve:0"]).SerializeToString()
    (tmp_path / "saved_model.pb").write_bytes(data[: len(data) // 2])
    with pytest.raises(SandboxError, match="corrupt or truncated"):
        graphfile.read_model(tmp_path)


def test_attrs_at_the_producers_default_on_main_graph_nodes_only(tmp_path: Path) -> None:
    saved = saved_model([node("v", "VarHandleOp"), node("w", "VarHandleOp")],
                        [function("f", node("u", "VarHandleOp"))], None)
    meta = saved.meta_graphs[0]
    op = meta.meta_info_def.stripped_op_list.op.add(name="VarHandleOp")
    for attr in ("container", "shared_name", "debug_name"):
        op.attr.add(name=attr).default_value.func.name = ""  # an AttrValue that serializes to b"R\x00"
    at_default = C["AttrValue"]()
    at_default.func.name = ""
    other = C["AttrValue"]()
    other.func.name = "x"
    main = {n.name: n for n in meta.graph_def.node}
    main["v"].attr["container"].CopyFrom(at_default)
    main["w"].attr["container"].CopyFrom(at_default)
    main["v"].attr["shared_name"].CopyFrom(at_default)
    main["w"].attr["shared_name"].CopyFrom(other)  # one node off the default: not strippable
    meta.graph_def.library.function[0].node_def[0].attr["debug_name"].CopyFrom(at_default)  # in a function
    (tmp_path / "saved_model.pb").write_bytes(saved.SerializeToString())
    info = graphfile.read_model(tmp_path)
    assert info.default_attrs == {"VarHandleOp": ["container"]}
    assert info.op_attrs == {"VarHandleOp": {"container": 2, "shared_name": 2, "debug_name": 1}}


def test_the_size_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SandboxError, match=r"is over the 0\.0 MiB limit for models; raise it with --max-model-size"):
        graphfile.read_model(EXAMPLE, max_bytes=100)
    assert cli.main(["check", str(EXAMPLE), "--against", "tf==2.15", "--max-model-size", "0.0001"]) == 2
    assert "--max-model-size" in capsys.readouterr().err
    assert cli.main(["check", str(EXAMPLE), "--against", "tf==2.15", "--max-model-size", "1"]) == 0


def test_a_corrupt_model_is_one_line_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cut.pb").write_bytes(EXAMPLE.read_bytes()[:300])
    assert cli.main(["check", str(tmp_path / "cut.pb"), "--against", "tf==2.15"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt or truncated GraphDef" in err and "should load" not in err


def _crafted(path: Path, megabytes: int) -> int:
    spec = importlib.util.spec_from_file_location("bench_check", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    nodes: int = module.crafted_graph(path, megabytes, "tiny")
    return nodes


MEASURE = """
import resource, sys
from pathlib import Path
from sandbox.check import graphfile
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
info = graphfile.read_model(Path(sys.argv[1]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(after - before, len(info.ops))
"""


def test_memory_is_a_small_multiple_of_the_file(tmp_path: Path) -> None:
    """The most nodes per byte (short names, one input, one attr): the old
    reader peaked at 29x the file; the bound here is 12x."""
    path = tmp_path / "crafted.pb"
    nodes = _crafted(path, 8)
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    grown_kb, ops = map(int, done.stdout.split())
    assert ops == 5 and nodes > 250_000
    assert grown_kb * 1024 < 12 * path.stat().st_size, f"{grown_kb / 1024:.0f} MB for a {path.stat().st_size >> 20} MB file"
