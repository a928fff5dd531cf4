"""results.json: the shipped JSON Schema, and reading a document with one-line errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import documents
import jsonschema
import pytest
from results_schema import assert_valid

from sandbox.errors import SandboxError
from sandbox.records import ArtifactStatus, CellStatus, LoadStatus
from sandbox.report import document
from sandbox.report.document import ResultsDocument, WitnessOutcome, WitnessStatus

RECORDED = Path(__file__).parent / "data" / "default-results.json"
PUBLISHED = Path(__file__).resolve().parent.parent / "reports" / "default" / "results.json"


@pytest.fixture
def recorded() -> dict[str, Any]:
    return documents.read(RECORDED)


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(document.schema())


def test_the_recorded_real_results_validate(recorded: dict[str, Any]) -> None:
    assert_valid(recorded)
    assert recorded["schema_version"] == document.SCHEMA_VERSION


def test_the_schema_rejects_what_renderers_cannot_read(recorded: dict[str, Any]) -> None:
    broken = copy.deepcopy(recorded)
    broken["loads"][0]["status"] = "fine"
    del broken["cells"][0]["id"]
    with pytest.raises(AssertionError, match="2 schema violations"):
        assert_valid(broken)


def test_a_report_folder_is_read_through_its_results_json(tmp_path: Path, recorded: dict[str, Any]) -> None:
    (tmp_path / "results.json").write_text(json.dumps(recorded))
    assert document.load(tmp_path) == ResultsDocument.from_json(recorded)


def test_the_writer_gives_back_what_the_reader_read() -> None:
    source = {**json.loads(RECORDED.read_text(encoding="utf-8")), "schema_version": document.SCHEMA_VERSION}
    assert json.loads("".join(document.chunks(document.load(RECORDED)))) == source
    # byte for byte, of a published document (which this writer wrote)
    assert "".join(document.chunks(document.load(PUBLISHED))) == PUBLISHED.read_text(encoding="utf-8")


def test_optional_keys_a_document_leaves_out_stay_out(recorded: dict[str, Any]) -> None:
    """An older document lacks keys the schema makes optional: written back, it still lacks them."""
    load = {k: v for k, v in recorded["loads"][0].items() if k not in ("raised_in", "raised_by", "atol", "error")}
    cell = {k: v for k, v in recorded["cells"][0].items() if k not in ("runtime", "role", "docker_image")}
    older = {k: v for k, v in recorded.items() if k not in ("tolerances", "redacted")}
    witness = {"consumer": load["consumer"], "producer": load["producer"], "probe": load["probe"],
               "format": load["format"], "loader": load["loader"], "finding": "X", "script": None,
               "status": "not-run", "outcome": "not-run", "reason": "no environment"}
    older.update(loads=[load], cells=[cell], artifacts=[], witnesses=[witness])
    read = ResultsDocument.from_json(older)
    assert read.witnesses and read.witnesses[0].key == read.loads[0].key
    assert json.loads("".join(document.chunks(read))) == older == read.to_json()


def test_statuses_answer_the_questions_renderers_ask() -> None:
    refused = {"load-error", "run-error", "crash", "timeout"}  # TF or Keras said no: a finding
    assert {s.value for s in LoadStatus if s.failed} == refused
    assert {s.value for s in LoadStatus if s.failed_or_differs} == refused | {"outputs-differ"}
    assert {s.value for s in LoadStatus if s.worked} == {"ok", "outputs-differ"}
    assert {s.value for s in LoadStatus if s.harness} == {"harness-error"}
    assert {s.value for s in LoadStatus if not s.applicable} == {"not-applicable"}
    assert {s.value for s in ArtifactStatus if s.failed} == {"error", "crash", "timeout", "harness-error"}
    assert {s.value for s in CellStatus if s.ran} == {"ok"}
    assert {s.value for s in WitnessStatus if not s.raised} == {"ok", "not-run"}
    assert {o.value for o in WitnessOutcome if o.refutes} == {"fails-otherwise", "loads"}  # bugs of ours


@pytest.mark.parametrize("content, message", [
    (None, "cannot read results: No such file"),
    ("{not json", "cannot read results: not JSON"),
    ("[1, 2]", "not a results document"),
    ('{"schema_version": 99}', "schema_version 99 is not supported"),
    ('{"schema_version": 2, "name": "x"}', "key 'created' is missing"),
])
def test_bad_input_is_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SandboxError, match=message) as caught:
        document.load(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize("breaks, message", [
    (lambda d: d["loads"][3].pop("status"), r"loads\[3\] must contain \['status'\]"),
    (lambda d: d["loads"][0].update(static={"missing_ops": 1}), r"loads\[0\]\.static"),
    (lambda d: d["cells"].__setitem__(1, "tf2"), r"cells\[1\] must be object"),
    (lambda d: d["artifacts"][2].update(status="lost"), r"artifacts\[2\]\.status must be one of"),
    (lambda d: d.pop("probes"), r"the document must contain \['probes'\]"),
])
def test_records_renderers_cannot_read_are_one_line(tmp_path: Path, recorded: dict[str, Any],
                                                    breaks: Any, message: str) -> None:
    """The issue's case: a results.json whose load records lack keys was a
    KeyError traceback in the renderers."""
    broken = copy.deepcopy(recorded)
    breaks(broken)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(SandboxError, match=message) as caught:
        document.load(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary", b"[" * 100_000])
def test_binary_or_deeply_nested_files_are_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(SandboxError, match="cannot read results: not JSON"):
        document.load(path)
