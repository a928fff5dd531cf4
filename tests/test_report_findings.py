"""Findings: failures grouped by signature, formats summarised in version
ranges, unique cell labels; expectations counted here from results.json."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import documents
import pytest
from documents import of

from sandbox.classify import classify
from sandbox.report import document
from sandbox.report.document import LoadRow
from sandbox.report.findings import Group, Signature, exports_by_cell, groups, summaries, where
from sandbox.report.tables import labels, runs
from sandbox.report.verdict import DIFFERS, FAILS, HARNESS

RECORDED = Path(__file__).parent / "data" / "default-results.json"
BROKEN = {"load-error", "run-error", "crash", "timeout"}


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return documents.read(RECORDED)


@pytest.mark.parametrize("chosen, text", [
    ("ab", "<= b"), ("de", ">= d"), ("bc", "b – c"), ("c", "c"), ("ace", "a, c, e"), ("abde", "<= b, >= d"),
    ("abcde", "all"), ("", ""), ("a", "a"), ("e", "e"),
])
def test_runs_read_like_caniuse(chosen: str, text: str) -> None:
    order = list("abcde")
    assert runs(order, set(chosen), {x: x for x in order}) == text


def cell(id_: str, tf: str, python: str = "3.11", image: str = "cpu") -> dict[str, Any]:
    return {"id": id_, "tensorflow": tf, "python": python, "image": image, "backend": "venv", "status": "ok"}


def test_labels_are_short_and_unique() -> None:
    found = labels(of({"cells": [cell("tf2.18.1-py3.11-cpu", "2.18.1"), cell("tf2.18.1-py3.11-cpu+tf-keras", "2.18.1"),
                              cell("tf1.15.5-py3.6-cpu", "1.15.5", "3.6"), cell("tf1.15.5-py3.7-cpu", "1.15.5", "3.7"),
                              cell("tf2.12.1-py3.11-cpu", "2.12.1")]}))
    assert found == {"tf2.18.1-py3.11-cpu": "2.18.1", "tf2.18.1-py3.11-cpu+tf-keras": "2.18.1 +tf-keras",
                     "tf1.15.5-py3.6-cpu": "1.15.5 py3.6", "tf1.15.5-py3.7-cpu": "1.15.5 py3.7",
                     "tf2.12.1-py3.11-cpu": "2.12.1"}


def test_every_failure_is_in_one_group_of_its_names(results: dict[str, Any]) -> None:
    bad = [l for l in results["loads"] if l["status"] in BROKEN or l["status"] == "outputs-differ"]
    found = groups(of(results))
    assert sum(len(g.loads) for g in found) == len(bad)
    named = Counter((tuple(l["names"]), l["category"], l["error_type"]) for l in bad if l["names"])
    by_group = Counter({(g.signature.names, g.signature.category, g.signature.error_type): len(g.loads)
                        for g in found if g.signature.names})
    assert by_group == named
    assert [len(g.loads) for g in found] == sorted((len(g.loads) for g in found), reverse=True)


def test_summary_rows_cover_every_producer_and_say_where_it_fails(results: dict[str, Any]) -> None:
    saved_model = next(s for s in summaries(of(results)) if (s.format, s.loader) == ("saved_model", "tf1_session"))
    # read off the recording: TF 2.18 SavedModels fail in every TF 1.x on VarHandleOp.debug_name
    assert any(r.producers == ">= 2.18.1" and r.fails == "<= 1.15.5" and
               any("VarHandleOp.debug_name" in x for x in r.reasons) for r in saved_model.rows)
    checkpoint = next(s for s in summaries(of(results)) if s.format == "checkpoint")
    assert [(r.producers, r.ok, r.fails) for r in checkpoint.rows] == [("all", "all", "")]


def test_where_a_finding_hits_merges_producers_that_fail_alike(results: dict[str, Any]) -> None:
    ids = ["a", "b", "c", "d"]
    group = Group(Signature("fails", "op-not-registered", "NotFoundError", ("X",)),
                  of({"loads": [{"producer": p, "consumer": c, "probe": "dense", "format": "saved_model"} for p, c in
                                [("c", "a"), ("c", "b"), ("d", "a"), ("d", "b"), ("a", "d")]]}).loads)
    assert where(group, ids, {x: x for x in ids}) == [("a", "d"), (">= c", "<= b")]


def test_producers_a_finding_skips_between_are_not_one_range() -> None:
    """b fails nowhere: a and c fail alike, but "a – c" would take b in; they are two lines."""
    ids = ["a", "b", "c", "d"]
    group = Group(Signature("fails", "op-not-registered", "NotFoundError", ("X",)),
                  of({"loads": [{"producer": p, "consumer": "d", "probe": "dense", "format": "saved_model",
                                 "status": "load-error"} for p in ("a", "c")]}).loads)
    assert where(group, ids, {x: x for x in ids}) == [("a", "d"), ("c", "d")]


def test_one_error_in_the_folders_of_several_producers_is_one_finding(tmp_path: Path) -> None:
    """TF names the model's path in its error; the path differs per producer and
    run, the finding does not (the text is TF 2.x's tf.saved_model.load on a
    folder without saved_model.pb; classify names no culprit in it)."""
    data = json.loads(RECORDED.read_text())
    consumer = data["cells"][-1]["id"]
    picked = {l["producer"]: l for l in data["loads"] if l["consumer"] == consumer and l["status"] == "ok"}
    assert len(picked) >= 3
    for load in picked.values():
        text = (f"SavedModel file does not exist at: /home/ci/runs/{load['producer']}/artifacts/{load['probe']}/"
                "saved_model/{saved_model.pbtxt|saved_model.pb}")
        found = classify("load-error", text, "OSError")
        assert found is not None
        load.update(status="load-error", error=text, error_type="OSError", category=found.category,
                    names=list(found.names))
    (tmp_path / "results.json").write_text(json.dumps(data))
    mine = [g for g in groups(document.load(tmp_path)) if "SavedModel file does not exist" in g.title]
    assert [len(g.loads) for g in mine] == [len(picked)], [g.title for g in mine]
    assert "/home/ci" not in mine[0].title


NEW, NEWER, OLDEST = "tf2.12.1-py3.11-cpu", "tf2.18.1-py3.11-cpu", "tf1.13.2-py3.7-cpu"
NAMELESS = ("Failed to load the graph at 0x7f3a2b1c00 after 123456 steps in /home/ci/runs/model.pb: "
            + "y" * 200 + "\nthe second line")
# hand-normalised: the address, the long number and the path (up to a space: "model.pb:" with its colon) out,
# then the first 120 characters
NAMELESS_MESSAGE = ("Failed to load the graph at 0x… after N steps in <path> " + "y" * 200)[:120]


def _edited(tmp_path: Path) -> tuple[document.ResultsDocument, dict[str, Any]]:
    """The recording with loads set to outcomes of every kind; (the document, the loads edited by role)."""
    data = json.loads(RECORDED.read_text())
    loads = data["loads"]

    def pick(producer: str, consumer: str) -> dict[str, Any]:
        return next(l for l in loads if (l["producer"], l["consumer"], l["format"]) == (producer, consumer, "frozen_graph")
                    and l["probe"] == "dense")
    roles = {"differs": next(l for l in loads if l["status"] == "ok" and l["probe"] == "conv2d"),
             "harness": next(l for l in loads if l["status"] == "ok" and l["probe"] == "einsum"),
             "nameless": pick(NEW, OLDEST), "nameless too": pick(NEWER, OLDEST)}
    roles["differs"].update(status="outputs-differ", max_abs_err=1.5)
    roles["harness"].update(status="harness-error", error="KeyError: 'probe'", error_type="KeyError", category=None, names=[])
    for role in ("nameless", "nameless too"):
        found = classify("load-error", NAMELESS, "RuntimeError")
        assert found is not None
        roles[role].update(status="load-error", error=NAMELESS, error_type="RuntimeError", category=found.category,
                           names=list(found.names))
    for artifact in data["artifacts"]:
        if artifact["producer"] == NEW and artifact["format"] == "tflite" and artifact["probe"] in ("lstm", "gru"):
            artifact.update(status="error", error_type="ValueError",
                            reason="Cannot find the Placeholder op that is an input to the ReadVariableOp.")
    (tmp_path / "results.json").write_text(json.dumps(data))
    return document.load(tmp_path), roles


def _key(load: dict[str, Any] | LoadRow) -> tuple[str, ...]:
    """A load's key, of a JSON load (the test's) or a row (the document's)."""
    fields = ("producer", "consumer", "probe", "format", "loader")
    return tuple(load[k] if isinstance(load, dict) else getattr(load, k) for k in fields)


def test_each_kind_of_outcome_has_its_signature(tmp_path: Path) -> None:
    results, roles = _edited(tmp_path)
    by_load = {_key(l): g.signature for g in groups(results) for l in g.loads}
    mine = {role: by_load[_key(load)] for role, load in roles.items()}
    assert mine["differs"] == Signature(DIFFERS, "outputs-differ", "", (), "outputs differ: conv2d")
    assert mine["harness"] == Signature(HARNESS, "harness-error", "KeyError", (), "KeyError: 'probe'")
    assert mine["nameless"] == mine["nameless too"] == Signature(FAILS, "other", "RuntimeError", (), NAMELESS_MESSAGE)
    assert mine["nameless"].title == f"{NAMELESS_MESSAGE} (other, RuntimeError)"


def test_a_statement_says_which_producers_fail_in_which_consumers(tmp_path: Path) -> None:
    results, _ = _edited(tmp_path)
    frozen = next(s for s in summaries(results) if (s.format, s.loader) == ("frozen_graph", "import_graph_def"))
    mine = [s for s in frozen.statements if NAMELESS_MESSAGE in s]
    assert mine == [f"from 2.12.1 – 2.18.1 fails in 1.13.2: {NAMELESS_MESSAGE} (other, RuntimeError) (2 pairs)"]


def test_failed_exports_are_told_per_cell_by_format_and_problem(tmp_path: Path) -> None:
    results, _ = _edited(tmp_path)
    found = exports_by_cell(results)
    assert "tflite: lstm, gru: error ValueError: Cannot find the Placeholder op that is an input to the ReadVariableOp" \
        in found[NEW].split("; ")
