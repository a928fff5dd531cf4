"""`--json` of plan, check, diff, repro and pythons: each prints one document
that sandbox/report/cli.schema.json describes, and says what the text does."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from documents import of
from fake_sandbox import fake_plan

from sandbox import cli, registries, shapes
from sandbox.check import protowire
from sandbox.cli import planning
from sandbox.repro import Spec

DATA = Path(__file__).parent / "data"


def assert_valid(document: Any, kind: str) -> None:
    schema = json.loads(resources.files("sandbox.report").joinpath(shapes.SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{kind}"})
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert not problems, problems
    jsonschema.validate(document, schema)  # and it is one of the documents


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = cli.main(args)
    return code, json.loads(capsys.readouterr().out)


def test_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(planning, "resolve", fake_plan)
    code, found = run_json(["plan", str(Path(__file__).parent.parent / "matrix.toml"), "--json"], capsys)
    assert code == 0
    assert_valid(found, "plan")
    assert [c["id"] for c in found["cells"]][-1] == "tf2.18-py3.11-cpu+tf-keras"
    assert found["cells"][-1]["packages"] == ["tf-keras"] and len(found["probes"]) == 10


def test_pythons(capsys: pytest.CaptureFixture[str]) -> None:
    code, found = run_json(["pythons", "--json"], capsys)
    assert code == 0
    assert_valid(found, "pythons")
    assert "3.11" in [i["minor"] for i in found["interpreters"]]  # the one running these tests, at least


def test_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = json.loads((DATA / "default-results.json").read_text())
    new = copy.deepcopy(old)
    ok = next(l for l in new["loads"] if l["status"] == "ok")
    ok.update(status="load-error", error="KeyError: 'Einsum'", error_type="KeyError")
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    code, found = run_json(["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--json"], capsys)
    assert code == 1 and found["newly_failing"] is True and found["changed"] is True
    assert_valid(found, "diff")
    [change] = found["changes"]
    assert change["kind"] == "newly failing" and (change["probe"], change["format"]) == (ok["probe"], ok["format"])
    code, same = run_json(["diff", str(tmp_path / "old.json"), str(tmp_path / "old.json"), "--json"], capsys)
    assert code == 0 and same["changes"] == [] and same["newly_failing"] is False and same["changed"] is False
    working = copy.deepcopy(old)  # a change that fails nothing: exit 0, yet changed
    bad = next(l for l in working["loads"] if l["status"] == "load-error")
    bad.update(status="ok", error=None, error_type=None)
    (tmp_path / "working.json").write_text(json.dumps(working))
    code, fixed = run_json(["diff", str(tmp_path / "old.json"), str(tmp_path / "working.json"), "--json"], capsys)
    assert code == 0 and fixed["changed"] is True and fixed["newly_failing"] is False


def test_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = protowire.CLASSES["GraphDef"]()
    graph.node.extend([protowire.CLASSES["NodeDef"](name="x", op="Placeholder"),
                       protowire.CLASSES["NodeDef"](name="y", op="BatchMatMulV2", input=["x", "x"])])
    (tmp_path / "model.pb").write_bytes(graph.SerializeToString())
    known = registries.known()
    old = next(v for v in known if v.startswith("1.13"))
    new = next(v for v in known if v.startswith("2.12"))
    code, found = run_json(["check", str(tmp_path / "model.pb"), "--against", f"tf=={old},tf=={new}", "--json"], capsys)
    assert_valid(found, "check")
    verdicts = [(t["target"].rsplit(".", 1)[0], t["verdict"], t["missing_ops"]) for t in found["targets"]
                if t["loader"] == "import_graph_def"]
    # BatchMatMulV2 was registered from TF 1.14 on
    assert verdicts == [(old, "will fail", ["BatchMatMulV2"]), (new, "should load", [])]
    assert code == 1 and found["will_fail"] >= 1 and found["description"].startswith("graph_def with 2 ops")


@pytest.mark.parametrize("against", ["", " ", ",", "tf==,"])
def test_check_against_nothing_is_a_usage_error(against: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    graph = protowire.CLASSES["GraphDef"]()
    graph.node.extend([protowire.CLASSES["NodeDef"](name="x", op="Placeholder")])
    (tmp_path / "model.pb").write_bytes(graph.SerializeToString())
    code = cli.main(["check", str(tmp_path / "model.pb"), "--against", against])
    assert code == 2
    assert "--against" in capsys.readouterr().err or against == "tf==,"


def test_repro_document() -> None:
    spec = Spec(Path("issue.toml"), "issue", {"artifact": "model.pb"}, "all", "auto", {}, None,
                "Op type not registered", 60)
    results = of({"cells": [{"id": "tf1.13.2-py3.7-cpu", "status": "ok", "reason": None},
                         {"id": "tf1.12.3-py3.6-cpu", "status": "skipped", "reason": "Python 3.6 not found"}],
               "loads": [{"consumer": "tf1.13.2-py3.7-cpu", "producer": "artifact", "probe": "model", "format": "frozen_graph",
                          "loader": "import_graph_def", "status": "load-error",
                          "category": "op-not-registered", "names": ["Einsum"],
                          "error": "Op type not registered 'Einsum' in binary", "static": {"missing_ops": ["Einsum"]}},
                         {"consumer": "tf1.13.2-py3.7-cpu", "producer": "artifact", "probe": "model",
                          "format": "frozen_graph", "loader": "tf1_session", "status": "not-applicable",
                          "category": None, "names": [], "error": None, "static": None}]})
    found = shapes.repro(spec, results, [Path("r/index.html"), Path("r/index.md"), Path("r/junit.xml"),
                                         Path("r/results.json")])
    assert_valid(found, "repro")
    [row] = found["loads"]  # not-applicable loads are left out, as in the table
    assert row["reproduced"] is True and row["static_missing"] == ["Einsum"]
    assert found["cells"][1]["status"] == "skipped" and found["report"]["markdown"] == "r/index.md"
