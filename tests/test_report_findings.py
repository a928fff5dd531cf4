"""Findings: failures grouped by signature, formats summarised in version
ranges, unique cell labels; expectations counted here from results.json."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import documents
import pytest
from documents import of

from sandbox.report.findings import Group, Signature, groups, summaries, where
from sandbox.report.tables import labels, runs

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
