"""Witnesses without TensorFlow: the script of every format x loader, what it
reads of an artifact, the verdict, the wrapper's output, the results store's
reuse (a fake environment), and how the report shows them. Real TensorFlow
runs them in tests/test_real_witness.py."""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
from html import escape
from pathlib import Path
from typing import Any

import fake_sandbox
import numpy as np
import pytest
from documents import of
from results_schema import assert_valid

from sandbox import cellrun, commands, matrix, plan, runner, summary
from sandbox.agent import catalog
from sandbox.check import protowire
from sandbox.pythons import Interpreter
from sandbox.report import document, html, markdown
from sandbox.report.document import LoadRow, ResultsDocument, WitnessOutcome
from sandbox.report.findings import groups
from sandbox.report.publish import write_report
from sandbox.store import ResultsStore
from sandbox.versions import Resolved
from sandbox.witness import runs, scripts, verdict

RECORDED = Path(__file__).parent / "data" / "default-results.json"
PAIRS = [(loader, fmt) for loader, formats in catalog.LOADER_FORMATS.items() for fmt in formats]
PLAIN = {"sys", "numpy", "tensorflow", "keras", "tf_keras", "ai_edge_litert", "tflite_runtime"}  # all a witness may import


def spec(loader: str, fmt: str) -> scripts.Spec:
    if fmt == "frozen_graph":
        return scripts.Spec(loader, "input_tensor:0", "Identity:0", (3, 5), "float32")
    if loader in ("tf1_session", "tf2_load"):
        return scripts.Spec(loader, "input_1", "dense", (2, 6, 6, 3), "float32")
    return scripts.Spec(loader, shape=(3, 5))


# -- the scripts ----------------------------------------------------------------------
@pytest.mark.parametrize("loader, fmt", PAIRS)
def test_every_format_and_loader_has_a_short_plain_python36_script(loader: str, fmt: str) -> None:
    text = scripts.script(spec(loader, fmt))
    tree = ast.parse(text, feature_version=(3, 6))  # what a TF 1.x cell's Python reads
    imported = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= PLAIN and "sys" in imported, imported
    code = [line for line in text.split("MODEL = sys.argv[1]")[1].splitlines() if line.strip()]  # after the imports
    assert 4 <= len(code) <= 15, "\n".join(code)
    assert 'print("loaded")' in text and "MODEL = sys.argv[1]" in text
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    if loader == scripts.CHECKPOINT:
        assert "tf.train.load_checkpoint(MODEL)" in text and "beyond this witness" in text
    else:
        assert "y" in names and "x" in names  # outputs left in y, from the input x
        assert "np.zeros((3, 5)" in text or "np.zeros((2, 6, 6, 3)" in text
    if fmt == "frozen_graph":
        assert '"Identity:0"' in text and '{"input_tensor:0": x}' in text
    elif loader in ("tf1_session", "tf2_load"):
        assert '"input_1"' in text and '"dense"' in text


def test_the_scripts_name_no_code_of_sandbox() -> None:
    for loader, fmt in PAIRS:
        text = scripts.script(spec(loader, fmt))
        for word in ("sandbox.", "loaders", "tfcompat", "kerasapi", "probes", "agent"):
            assert word not in text.split('"""')[-1], (loader, word)


def test_a_loader_without_a_script_is_said(tmp_path: Path) -> None:
    with pytest.raises(scripts.NoWitness, match="no witness script for the loader 'ai_edge'"):
        scripts.script(scripts.Spec("ai_edge"))
    assert set(scripts.loaders()) == set(catalog.LOADER_FORMATS)


# -- what a script needs to know of an artifact -----------------------------------------
def saved_model(folder: Path, inputs: list[str], outputs: list[str]) -> Path:
    model = protowire.CLASSES["SavedModel"]()
    meta = model.meta_graphs.add()
    for key, sig_inputs, sig_outputs in (("__saved_model_init_op", [], ["init"]), ("serving_default", inputs, outputs)):
        sig = meta.signature_def[key]
        for name in sig_inputs:
            sig.inputs[name].name = f"serving_default_{name}:0"
        for name in sig_outputs:
            sig.outputs[name].name = f"StatefulPartitionedCall:{len(sig.outputs)}"
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(model.SerializeToString())
    return folder


def test_the_spec_reads_signature_keys_tensor_names_and_the_input_shape(tmp_path: Path) -> None:
    np.savez(tmp_path / "inputs.npz", x=np.zeros((2, 6, 6, 3), np.float32))
    saved_model(tmp_path / "keras", ["input_1"], ["dense"])
    saved_model(tmp_path / "zoo", ["x"], ["y"])
    record = {"path": "keras", "inputs": "inputs.npz"}
    assert scripts.spec_for("tf1_session", "keras_saved_model", tmp_path, record) == \
        scripts.Spec("tf1_session", "input_1", "dense", (2, 6, 6, 3), "float32")
    assert scripts.spec_for("tf2_load", "saved_model", tmp_path, {**record, "path": "zoo"}) == \
        scripts.Spec("tf2_load", "x", "y", (2, 6, 6, 3), "float32")
    frozen = {**record, "signature": {"inputs": {"x": "x:0"}, "outputs": {"y": "Identity:0"}}}
    assert scripts.spec_for("import_graph_def", "frozen_graph", tmp_path, frozen).output == "Identity:0"
    np.savez(tmp_path / "ints.npz", x=np.zeros((4,), np.int64))
    assert scripts.input_spec(tmp_path / "ints.npz") == ((4,), "int64")
    with pytest.raises(scripts.NoWitness, match="names no input and output tensors"):
        scripts.spec_for("import_graph_def", "frozen_graph", tmp_path, record)
    (tmp_path / "bad.npz").write_bytes(b"PK not really")
    with pytest.raises(scripts.NoWitness, match="bad.npz: cannot read the input's shape"):
        scripts.input_spec(tmp_path / "bad.npz")
    saved_model(tmp_path / "nosig", [], [])
    with pytest.raises(scripts.NoWitness, match="no serving_default signature"):
        scripts.spec_for("tf1_session", "saved_model", tmp_path, {**record, "path": "nosig"})


# -- the verdict --------------------------------------------------------------------------
FINDING = {"status": "load-error", "probe": "dense", "loader": "tf1_session", "category": "unknown-attr",
           "error_type": "ValueError", "names": ["VarHandleOp.debug_name"],
           "error": "NodeDef mentions attr 'debug_name' not in Op<name=VarHandleOp; signature= -> resource>",
           "static": {"missing_ops": [], "missing_attrs": ["VarHandleOp.debug_name", "VarHandleOp.allowed_devices"]}}


def row(load: dict[str, Any]) -> LoadRow:
    """The document's row of a finding's load, of the keys a test gives."""
    return of({"loads": [{"producer": "a", "consumer": "b", "format": "saved_model", **load}]}).loads[0]


def judged(load: dict[str, Any], **witness: Any) -> str:
    return verdict.judge(row(load), verdict.classified(witness))[0]


def test_a_witness_that_fails_alike_reproduces_its_finding() -> None:
    assert judged(FINDING, status="load-error", error_type="ValueError", error=FINDING["error"]) == "reproduced"
    # TF 1.x names one of the unknown attrs first, in no fixed order: another of them is the same finding
    other = "NodeDef mentions attr 'allowed_devices' not in Op<name=VarHandleOp; signature= -> resource>"
    assert judged(FINDING, status="run-error", error_type="ValueError", error=other) == "reproduced"
    differs = {"status": "outputs-differ", "probe": "dense", "loader": "tflite_interpreter", "category": None}
    assert judged(differs, status="outputs-differ", max_abs_err=2.5) == "reproduced"
    assert judged({**FINDING, "status": "crash", "category": "crash", "names": []}, status="crash") == "reproduced"


def test_a_witness_that_loads_or_fails_otherwise_is_a_bug_of_ours() -> None:
    assert judged(FINDING, status="ok", compared=True) == "loads"
    bogus = "NodeDef mentions attr 'bogus' not in Op<name=VarHandleOp; signature= -> resource>"
    assert judged(FINDING, status="load-error", error_type="ValueError", error=bogus) == "fails-otherwise"
    assert judged(FINDING, status="load-error", error_type="TypeError", error="'NoneType' object is not "
                  "subscriptable") == "fails-otherwise"
    outcome, why = verdict.judge(row(FINDING), verdict.classified({"status": "ok", "compared": True}))
    assert why == "the plain load works and gives the producer's outputs: the finding comes from sandbox's own code"
    assert {o.value for o in WitnessOutcome if o.refutes} == {"loads", "fails-otherwise"}


def test_a_checkpoint_failing_in_the_probes_code_is_beyond_a_scripts_reach() -> None:
    ckpt = {**FINDING, "loader": "checkpoint_restore", "status": "run-error", "category": "missing-kernel"}
    assert judged(ckpt, status="ok", compared=False) == "beyond-reach"
    assert judged({**ckpt, "status": "load-error"}, status="ok") == "loads"
    assert judged(FINDING, status="not-run", reason="no environment") == "not-run"


# -- the wrapper's output -------------------------------------------------------------
def test_the_wrapper_line_becomes_a_result_and_anything_else_a_crash() -> None:
    line = runs.MARK + json.dumps({"status": "error", "error_type": "NotFoundError", "error": "Op type not registered"})
    assert runs.parse(f"2026 TF logs\n{line}\n", 0)["status"] == "load-error"
    assert runs.parse(f"loaded\n{line}", 0)["status"] == "run-error"  # it printed "loaded": running failed
    ok = runs.parse(runs.MARK + json.dumps({"status": "ok", "compared": True, "max_abs_err": 0.0}), 0)
    assert (ok["status"], ok["loaded"]) == ("ok", False)
    crash = runs.parse("loaded\nFatal Python error: Segmentation fault", -11)
    assert (crash["status"], crash["reason"], crash["loaded"]) == ("crash", "the process died (exit -11)", True)
    assert runs.parse("sandbox: the container ran past its deadline", 124)["status"] == "timeout"
    long = "head " + "x" * 20_000 + " the cause"
    cut = runs.parse(runs.MARK + json.dumps({"status": "error", "error": long}), 1)["error"]
    assert cut.startswith("head ") and cut.endswith(" the cause") and "characters cut" in cut and len(cut) < 8200


# -- the store: an unchanged re-run runs none ---------------------------------------
CALLS: list[list[str]] = []
RAISES = {"error": "Op type not registered 'DenseV2' in binary running on fake."}


class FakeEnv(fake_sandbox.FakeEnv):
    """A witness raises RAISES["error"] (an ok run without it)."""

    def run_python(self, args: list[str], *, log: Path, timeout: float,
                   readable: tuple[Path, ...] = (), writable: tuple[Path, ...] = ()) -> commands.Completed:
        assert args[:2] == ["-c", runs.WRAPPER] and Path(args[2]) in readable
        assert Path(args[2]).read_text().startswith('"""Witness of a sandbox finding')
        CALLS.append(args)
        result = {"status": "error", "error_type": "NotFoundError", "error": RAISES["error"]} if RAISES["error"] else \
            {"status": "ok", "compared": True, "max_abs_err": 0.0}
        return commands.Completed(args, 0, runs.MARK + json.dumps(result), 0.1)


def fake_run(tmp_path: Path, store: ResultsStore, fresh: bool = False) -> runner.Run:
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    mx = matrix.Matrix(tmp_path / "m.toml", "w", (), ("dense",), ("frozen_graph",), timeout=30)
    cells = [plan.Cell(f"tf{v}-py3.11-cpu", matrix.CellRequest(v, "3.11", "cpu", "venv"), "cpu", "venv", me,
                       Resolved("tensorflow", v, __import__("datetime").datetime(2020, 1, 1))) for v in ("1.0", "2.0")]
    return runner.Run(mx, cells, tmp_path / "run", 2, lambda e: None, store, fresh=fresh)


def stored_artifact(run: runner.Run, tmp_path: Path) -> None:
    """The producer's frozen graph in the store, where the run looks for it."""
    folder = tmp_path / "artifacts"
    (folder / "dense" / "frozen_graph").mkdir(parents=True)
    (folder / "dense" / "frozen_graph" / "model.pb").write_bytes(b"a graph")
    np.savez(folder / "dense" / "inputs.npz", x=np.ones((3, 5), np.float32))
    np.savez(folder / "dense" / "outputs.npz", y=np.ones((3, 3), np.float32))
    record = {"kind": "artifact", "probe": "dense", "format": "frozen_graph", "status": "exported",
              "path": "dense/frozen_graph/model.pb", "inputs": "dense/inputs.npz", "outputs": "dense/outputs.npz",
              "signature": {"inputs": {"x": "x:0"}, "outputs": {"y": "y:0"}}}
    producer = next(c for c in run.cells if c.cell.id == "tf2.0-py3.11-cpu")
    key = run.keys.export(producer.result.identity, "dense", "frozen_graph")
    files = {name: folder / name for name in ("dense/frozen_graph", "dense/inputs.npz", "dense/outputs.npz")}
    run.store.put_export(key, {"probe": "dense", "format": "frozen_graph", "status": "exported"}, record, files)


def a_finding(consumer: str = "tf1.0-py3.11-cpu") -> ResultsDocument:
    load = {"consumer": consumer, "producer": "tf2.0-py3.11-cpu", "probe": "dense", "format": "frozen_graph",
            "loader": "import_graph_def", "status": "load-error", "error_type": "NotFoundError",
            "error": "Op type not registered 'DenseV2' in binary running on fake.", "category": "op-not-registered",
            "names": ["DenseV2"], "static": None, "atol": 1e-5, "rtol": 1e-4}
    return of({"loads": [load], "cells": []})


def test_witnesses_are_stored_and_an_unchanged_rerun_runs_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cellrun, "environment", FakeEnv)
    monkeypatch.setitem(RAISES, "error", "Op type not registered 'DenseV2' in binary running on fake.")
    CALLS.clear()
    store = ResultsStore(tmp_path / "store")
    run = fake_run(tmp_path, store)
    stored_artifact(run, tmp_path)
    [first] = runs.attach(a_finding(), run)
    assert (first.outcome, first.status, first.names, len(CALLS)) == ("reproduced", "load-error", ("DenseV2",), 1)
    args = CALLS[0]
    assert args[3].endswith("dense/outputs.npz") and args[4:6] == ["1e-05", "0.0001"]
    files = str(run.store.export_dir(run.keys.export(next(c for c in run.cells if c.cell.id == "tf2.0-py3.11-cpu")
                                                    .result.identity, "dense", "frozen_graph")))
    assert args[6].startswith(files) and args[6].endswith("/dense/frozen_graph/model.pb")
    assert args[7].startswith(files) and args[7].endswith("/dense/inputs.npz")
    again = runs.attach(a_finding(), fake_run(tmp_path, store))
    assert again == [first] and len(CALLS) == 1  # from the store
    runs.attach(a_finding(), fake_run(tmp_path, store, fresh=True))
    assert len(CALLS) == 2  # --fresh runs it again


def test_a_witness_that_loads_refutes_its_finding_and_a_missing_artifact_is_not_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cellrun, "environment", FakeEnv)
    monkeypatch.setitem(RAISES, "error", "")
    CALLS.clear()
    store = ResultsStore(tmp_path / "store")
    run = fake_run(tmp_path, store)
    results = a_finding()
    [missing] = runs.attach(results, run)
    assert (missing.outcome, missing.script, CALLS) == ("not-run", None, [])
    assert "not in the results store" in (missing.why or "")
    stored_artifact(run, tmp_path)
    [loads] = runs.attach(results, fake_run(tmp_path, store))
    assert loads.outcome == "loads" and len(CALLS) == 1
    results.witnesses = [loads]
    assert summary.summarize(results).refuted == (
        "DenseV2 (op-not-registered, NotFoundError): the plain load works and gives the producer's outputs: "
        "the finding comes from sandbox's own code",)
    [stranger] = runs.attach(a_finding("tf9.9-py3.11-cpu"), fake_run(tmp_path, store))
    assert stranger.outcome == "not-run" and stranger.why == "tf9.9-py3.11-cpu is not a cell of this run's plan"


# -- the report -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded() -> ResultsDocument:
    return document.load(RECORDED)


def witnessed(results: ResultsDocument) -> ResultsDocument:
    """`results` with a witness for every finding: the first reproduced, the second loads, the rest not run."""
    found = []
    for i, group in enumerate(groups(results)):
        load = group.example
        loader = str(load.loader)
        item = runs.Item(group.signature.title, load, script=scripts.script(scripts.Spec(loader, shape=(3, 5))),
                         usage=scripts.usage(loader))
        item.result = {"status": "ok", "compared": True} if i == 1 else \
            {"status": load.status.value, "error": f"{load.error} at /root/.cache/sandbox/envs/x/lib/tf.py",
             "error_type": load.error_type} if i == 0 else {"status": "not-run", "reason": "no environment"}
        found.append(runs.entry(item))
    return dataclasses.replace(results, witnesses=found)


def test_the_page_shows_each_findings_script_and_outcome_and_the_markdown_its_outcome(
        recorded: ResultsDocument, tmp_path: Path) -> None:
    results = witnessed(recorded)
    assert_valid(results)
    assert results.witnesses is not None
    outcomes = [w.outcome for w in results.witnesses]
    assert outcomes[:2] == ["reproduced", "loads"] and set(outcomes[2:]) == {"not-run"}
    page = html.render(results)
    assert page.count("reproduce this") == len(groups(recorded)) and page.count('class="copy"') == page.count("reproduce this")
    first = results.witnesses[0].script or ""
    assert escape(first) in page
    assert "not reproduced: loads" in page and page.count("<th>witness</th>") == 1
    text = markdown.render(results)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "(" in line.split("|")[1]]
    assert rows and rows[0].rstrip(" |").endswith("reproduced")
    assert "not reproduced: loads (the plain load works and gives the producer's outputs" in rows[1]
    out = write_report(results, tmp_path / "report")
    published = (out / "results.json").read_text()
    assert "/root/.cache" not in published and "<cache>/envs/x/lib/tf.py" in published
    assert "/root/.cache" not in (out / "index.html").read_text()


def test_a_report_without_witnesses_says_none(recorded: ResultsDocument) -> None:
    page, text = html.render(recorded), markdown.render(recorded)
    assert "reproduce this" not in page and "no witness" in page
    assert "no witness" in text and "Witness: one load" not in text


def test_the_verb_wants_the_matrix_a_report_came_from(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox import cli
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "results.json").write_text(RECORDED.read_text())
    monkeypatch.chdir(tmp_path)
    assert cli.main(["witness", str(folder), "--offline"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "its results name the matrix matrix.toml, which is not a file here; " \
        "give it with --matrix" in err
    assert cli.main(["witness", str(folder), "--matrix", "nowhere.toml"]) == 2
    assert "nowhere.toml" in capsys.readouterr().err


def test_the_readmes_example_is_the_script_sandbox_writes() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Witnesses"):]
    shown = section[section.index("```python\n") + 10:section.index("\n```", section.index("```python"))]
    made = scripts.script(scripts.Spec("tf1_session", "x", "y", (2, 6, 6, 3), "float32"))
    assert made.split('"""', 2)[2].strip() == shown.strip()


def test_the_display_says_which_cell_witnesses_what() -> None:
    import io

    from sandbox import display
    from sandbox import events as ev
    out = io.StringIO()
    with display.Display("plain", verbose=True, stream=out) as show:
        show.begin(["tf1.15.5-py3.7-cpu"])
        show(ev.PhaseStarted("tf1.15.5-py3.7-cpu", "witness", 2, 1))
        show(ev.ItemDone("tf1.15.5-py3.7-cpu", "witness", "tf2.18.1-py3.11-cpu/dense/saved_model/tf1_session", "reproduced"))
        show(ev.ItemDone("tf1.15.5-py3.7-cpu", "witness", "tf2.18.1-py3.11-cpu/dense/frozen_graph/import_graph_def", "loads"))
        show(ev.PhaseFinished("tf1.15.5-py3.7-cpu", "witness", (("loads", 1), ("reproduced", 1)), 1, 3.0))
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "tf1.15.5-py3.7-cpu           witness   tf2.18.1-py3.11-cpu/dense/saved_model/tf1_session: reproduced",
        "tf1.15.5-py3.7-cpu           witness   tf2.18.1-py3.11-cpu/dense/frozen_graph/import_graph_def: loads",
        "tf1.15.5-py3.7-cpu           witness   measured 2 witnesses in 3s: 1 loads, 1 reproduced; 1 from the store"]


def test_a_message_that_differs_only_in_tfs_function_numbers_is_the_same_finding() -> None:
    text = ("Graph execution error: {{function_node __inference_restored_function_body_%d}} Input to reshape is a "
            "tensor with 12 values, but the requested shape has 8")  # a text naming nothing (classify: other)
    load = {"status": "run-error", "probe": "layernorm", "loader": "keras2", "category": "other", "names": [],
            "error_type": "InternalError", "error": text % 34993}
    assert judged(load, status="run-error", error_type="InternalError", error=text % 377) == "reproduced"
    assert judged(load, status="run-error", error_type="InternalError", error="Another message") == "fails-otherwise"
    assert judged(load, status="run-error", error_type="ValueError", error=text % 377) == "fails-otherwise"


def test_a_culprit_named_without_the_class_the_agent_found_is_the_same_finding() -> None:
    """The agent names the class from the Keras frame that raised; a script's error has no frames."""
    load = row({"status": "load-error", "probe": "dense", "loader": "keras2", "category": "keras-config",
                "names": ["InputLayer.ragged"], "error_type": "ValueError",
                "error": "Unrecognized keyword arguments: ragged"})
    same = dict(status="load-error", error_type="ValueError", error="Unrecognized keyword arguments: ['ragged']")
    assert verdict._unqualified(load, {**same, "category": "keras-config", "names": ["ragged"]})
    assert not verdict._unqualified(load, {**same, "category": "keras-config", "names": ["batch_shape"]})
    assert not verdict._unqualified(load, {**same, "category": "keras-deserialization", "names": ["ragged"]})
    assert not verdict._unqualified(load, {**same, "category": "keras-config", "names": ["ragged", "x"]})


def test_the_very_error_reproduces_where_the_agent_named_the_culprit_from_its_context() -> None:
    """The agent names a Keras class from the frame that raised, a TFLite op's version from the artifact."""
    load = row({"status": "run-error", "probe": "conv2d", "loader": "tflite_interpreter", "category": "tflite-kernel",
                "names": ["CONV_2D@v2"], "error_type": "RuntimeError",
                "error": "Node number 0 (CONV_2D) failed to invoke."})
    same = {"status": "run-error", "error_type": "RuntimeError", "error": "Node number 0 (CONV_2D) failed to invoke.",
            "category": "tflite-kernel", "names": ["CONV_2D"]}
    assert verdict._same_error(load, same)
    assert not verdict._same_error(load, {**same, "error": "Node number 3 (ADD) failed to prepare."})
    assert not verdict._same_error(load, {**same, "error_type": "ValueError"})
    assert not verdict._same_error(load, {**same, "status": "load-error"})
