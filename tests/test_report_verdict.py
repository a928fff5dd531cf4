"""The verdict model (sandbox.report.verdict and the grids, findings and summaries
built on it) on small documents written here, and index.md's answers on the
slice of the map and the published map, against tests/verdicts.py's own rules."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import documents
import pytest
from verdicts import expected_of

from sandbox.errors import SandboxError
from sandbox.report import document, markdown
from sandbox.report.document import ResultsDocument
from sandbox.report.findings import export_problem, groups, summaries
from sandbox.report.tables import default_pair, grids, labels
from sandbox.report.verdict import DEVICE, DIFFERS, EXPORT, FAILS, HARNESS, NA, OK, Square, devices

SLICE = Path(__file__).parent / "data" / "map-slice-results.json"
MAP = Path(__file__).resolve().parent.parent / "reports" / "tf-map" / "results.json"


def cell(tf: str, gpus: int = 0) -> dict[str, Any]:
    return {"id": f"tf{tf}-py3.11-{'gpu' if gpus else 'cpu'}", "status": "ok", "tensorflow": tf, "python": "3.11",
            "image": "gpu" if gpus else "cpu", "backend": "venv", "environment": {"gpus": gpus}}


def load(producer: dict[str, Any], consumer: dict[str, Any], probe: str, status: str = "ok", category: str | None = None,
         names: tuple[str, ...] = (), fmt: str = "saved_model", loader: str = "tf2_load",
         error: str = "") -> dict[str, Any]:
    return {"producer": producer["id"], "consumer": consumer["id"], "probe": probe, "format": fmt, "loader": loader,
            "status": status, "category": category, "names": list(names), "error": error or status,
            "error_type": "NotFoundError" if status in ("load-error", "run-error") else None, "static": None}


def artifact(producer: dict[str, Any], probe: str, status: str = "exported", fmt: str = "saved_model",
             device: str | None = None, reason: str | None = None) -> dict[str, Any]:
    return {"producer": producer["id"], "probe": probe, "format": fmt, "status": status, "device": device,
            "reason": reason, "error_type": None if status == "exported" else "ValueError"}


def doc(cells: list[dict[str, Any]], loads: list[dict[str, Any]], artifacts: list[dict[str, Any]] = (),  # type: ignore[assignment]
        probes: tuple[str, ...] = ("dense", "cudnn_lstm")) -> ResultsDocument:
    return documents.of({"name": "t", "cells": cells, "loads": loads, "artifacts": list(artifacts),
                         "probes": list(probes), "formats": ["saved_model", "tflite_int8"]})


OLD, NEW, GPU = cell("2.10.1"), cell("2.21.0"), cell("2.21.0", gpus=1)
KERNEL = ("run-error", "missing-kernel", ("CudnnRNNV3",))


def test_a_declared_device_bound_probe_is_a_device_finding_on_a_consumer_without_that_device() -> None:
    results = doc([OLD, NEW, GPU], [load(NEW, OLD, "cudnn_lstm", "load-error", "op-not-registered", ("DisableCopyOnRead",)),
                                    load(NEW, GPU, "cudnn_lstm", "load-error", "op-not-registered", ("X",)),
                                    load(NEW, NEW, "cudnn_lstm", *KERNEL)],
                  [artifact(NEW, "cudnn_lstm", device="GPU")])
    found = devices(results)
    assert found.needs == {"cudnn_lstm": "GPU"} and found.why["cudnn_lstm"] == "declared by the probe"
    # on a CPU consumer, whatever stopped it; on a GPU consumer it is a probe like any other
    assert [found.outcome(l) for l in results.loads] == [DEVICE, FAILS, DEVICE]
    assert found.portable(["dense", "cudnn_lstm"], OLD["id"]) == ["dense"]
    assert found.portable(["dense", "cudnn_lstm"], GPU["id"]) == ["dense", "cudnn_lstm"]


def test_a_missing_kernel_is_a_device_finding_and_an_undeclared_gpu_only_probe_is_seen() -> None:
    results = doc([OLD, NEW], [load(NEW, OLD, "cudnn_lstm", *KERNEL), load(NEW, NEW, "cudnn_lstm", *KERNEL),
                               load(NEW, OLD, "dense", *KERNEL[:2], ("Foo",)), load(NEW, NEW, "dense")])
    found = devices(results)
    # cudnn_lstm never ran without a GPU: a GPU probe; dense ran: only its one load is device-bound
    assert found.needs == {"cudnn_lstm": "GPU"} and "CudnnRNNV3" in found.why["cudnn_lstm"]
    assert [found.outcome(l) for l in results.loads] == [DEVICE, DEVICE, DEVICE, OK]


def test_harness_errors_are_not_findings_and_unknown_statuses_are_refused_when_read() -> None:
    results = doc([OLD, NEW], [load(NEW, OLD, "dense", "harness-error"), load(NEW, NEW, "dense", "harness-error")])
    found = devices(results)
    assert [found.outcome(l) for l in results.loads] == [HARNESS, HARNESS]
    grid, = grids(results, found)
    assert grid.square(NEW["id"], OLD["id"]).verdict == HARNESS and not grid.square(NEW["id"], OLD["id"]).loads
    kinds = {g.kind for g in groups(results, found)}
    assert kinds == {HARNESS}
    unknown = {**results.to_json(), "loads": [{**results.to_json()["loads"][0], "status": "something-new"}]}
    with pytest.raises(SandboxError, match=r"^x: not a valid results document: loads\[0\]\.status must be one of"):
        document.check(unknown, "x")


@pytest.mark.parametrize("letters, verdict, text, loads", [
    ("oo", OK, "ok", True), ("of", FAILS, "1/2", False), ("ff", FAILS, "✗", False), ("od", DIFFERS, "≠", False),
    ("oh", HARNESS, "bug", False), ("hf", FAILS, "1/2", False), ("og", OK, "ok", False), ("gg", DEVICE, "dev", False),
    ("ox", OK, "ok", True), ("xx", EXPORT, "exp", False), ("on", OK, "ok", True), ("nn", NA, "n/a", False),
    ("fgx", FAILS, "1/2", False), ("--", "-", "", False), ("dh", DIFFERS, "≠", False),
])
def test_a_squares_verdict_is_its_worst_version_finding_and_what_is_apart_is_a_mark(letters: str, verdict: str,
                                                                                    text: str, loads: bool) -> None:
    square = Square(letters)
    assert (square.verdict, square.text, square.loads) == (verdict, text, loads)
    assert set(square.marks) == {m for m in (DEVICE, EXPORT, HARNESS) if m in letters} - {verdict}


def test_marks_come_from_every_probe_and_the_verdict_from_those_chosen() -> None:
    square = Square("o", every="og")
    assert square.verdict == OK and square.marks == (DEVICE,) and square.loads


def test_a_failed_export_empties_the_squares_of_every_loader_of_its_format() -> None:
    results = doc([OLD, NEW], [load(OLD, c, p, fmt="tflite_int8", loader="tflite_interpreter")
                               for c in (OLD, NEW) for p in ("dense", "lstm")] +
                  [load(NEW, OLD, "dense", fmt="tflite_int8", loader="tflite_interpreter", status="not-applicable"),
                   load(NEW, NEW, "dense", fmt="tflite_int8", loader="tflite_interpreter")],
                  [artifact(NEW, "lstm", "crash", "tflite_int8", reason="the agent process died (exit -11)"),
                   artifact(NEW, "dense", fmt="tflite_int8")], probes=("dense", "lstm"))
    grid, = grids(results)
    assert grid.letters[(NEW["id"], NEW["id"])] == "ox"
    assert grid.square(NEW["id"], NEW["id"]).marks == (EXPORT,) and grid.square(NEW["id"], NEW["id"]).loads
    assert grid.letters[(NEW["id"], OLD["id"])] == "nx"  # OLD reads tflite_int8: it would have tried lstm
    assert export_problem(results.artifacts[0]) == "crash (SIGSEGV)"
    summary, = summaries(results)
    assert summary.rows[-1].notes == ("export failed: lstm: crash (SIGSEGV)",)


def test_a_producer_whose_every_export_failed_has_a_row_of_failed_exports() -> None:
    results = doc([OLD, NEW], [load(OLD, c, "dense") for c in (OLD, NEW)],
                  [artifact(NEW, "dense", "error", reason="NotEncodableError: no encoder")], probes=("dense",))
    grid, = grids(results)
    assert grid.producers == [OLD["id"], NEW["id"]]
    assert {grid.square(NEW["id"], c).verdict for c in (OLD["id"], NEW["id"])} == {EXPORT}
    assert "export failed: dense: error ValueError: NotEncodableError: no encoder" in summaries(results)[0].rows[-1].notes


def test_one_device_bound_probe_does_not_colour_a_pair_nor_make_the_newest_producer_none() -> None:
    cells = [OLD, NEW]
    loads = [load(p, c, "dense") for p in cells for c in cells]
    loads += [load(p, c, "cudnn_lstm", *KERNEL) for p in cells for c in cells]
    results = doc(cells, loads, [artifact(p, "cudnn_lstm", device="GPU") for p in cells])
    found = grids(results)
    grid, = found
    assert all(grid.square(p, c).loads for p in grid.producers for c in grid.consumers)
    summary, = summaries(results, found)
    assert [(r.ok, r.device) for r in summary.rows] == [("all", "all")]
    assert [(r.consumers, r.producers, r.newest) for r in summary.consumers] == [("all", "all", "2.21.0")]
    device, = groups(results)
    assert device.kind == DEVICE and device.title.startswith("cudnn_lstm needs a GPU") and "CudnnRNNV3" in device.title
    # every probe chosen: it does not run anywhere here
    assert not any(grid.square(p, c, chosen=(0, 1)).loads for p in grid.producers for c in grid.consumers)
    assert default_pair(found) == (NEW["id"], "saved_model", OLD["id"], "tf2_load")


def test_the_default_pair_is_the_newest_producer_and_the_oldest_consumer_that_loads_it() -> None:
    cells = [cell("1.15.5"), OLD, NEW]
    loads = [load(p, c, "dense", "ok" if p["tensorflow"] <= c["tensorflow"] or c is not cells[0] else "load-error",
                  loader=loader) for p in cells for c in cells for loader in ("tf1_session", "tf2_load")]
    loads = [l for l in loads if not (l["loader"] == "tf2_load" and l["consumer"] == cells[0]["id"])]
    results = doc(cells, loads, probes=("dense",))
    # tf1_session: NEW's model fails in 1.15 (NEW > 1.15), loads in OLD and NEW; tf2_load: OLD and NEW
    assert default_pair(grids(results)) == (NEW["id"], "saved_model", OLD["id"], "tf1_session")


# -- index.md answers, read back from its tables
def parse_runs(text: str, ordered: list[str]) -> set[str]:
    """'<= 1.15.5, 2.1.4 – 2.3.4, >= 2.10.1' over labels in order -> the labels."""
    out: set[str] = set()
    for part in [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]:
        if part == "all":
            out |= set(ordered)
        elif part.startswith("<= "):
            out |= set(ordered[:ordered.index(part[3:]) + 1])
        elif part.startswith(">= "):
            out |= set(ordered[ordered.index(part[3:]):])
        elif " – " in part:
            first, last = part.split(" – ")
            out |= set(ordered[ordered.index(first):ordered.index(last) + 1])
        else:
            out.add(part)
    return out


def tables(text: str) -> dict[tuple[str, str], list[list[list[str]]]]:
    """(format, loader) -> the tables under its "Each format" heading, as rows of cells."""
    summary = text[text.index("## Each format, in version ranges"):text.index("## Failures")]
    out = {}
    for section in re.split(r"^### ", summary, flags=re.M)[1:]:
        fmt, loader = re.match(r"`([^`]+)` loaded with `([^`]*)`", section).groups()  # type: ignore[union-attr]
        found, rows = [], []
        for line in section.splitlines() + [""]:
            if line.startswith("|-"):
                continue
            if line.startswith("|"):
                rows.append([c.strip() for c in line.strip("|").split(" | ")])
            elif rows:
                found.append(rows[1:])
                rows = []
        out[(fmt, loader)] = found
    return out


@functools.cache
def published(source: Path) -> tuple[ResultsDocument, str]:
    """A document and its index.md, read and rendered once."""
    results = document.load(source)
    return results, markdown.render(results)


@pytest.mark.parametrize("source", [SLICE, MAP], ids=["slice", "published map"])
def test_index_md_answers_newest_producer_and_oldest_consumer(source: Path) -> None:
    results, text = published(source)
    want = expected_of(results)
    by_label = {labels(results)[c]: c for c in want.cells}
    assert len(by_label) == len(want.cells)
    ordered = list(by_label)
    sections = tables(text)
    assert sections
    for (fmt, loader), (producers, consumers) in sections.items():
        for row in producers:  # saved with | loads in | ... : every producer of the range loads in exactly those
            for p in parse_runs(row[0], ordered):
                loads_in = {c for c in ordered if want.loads((fmt, loader, by_label[p], by_label[c]))}
                assert parse_runs(row[1], ordered) == loads_in, (fmt, loader, p)
        for row in consumers:  # loaded with | loads models saved with | newest
            for c in parse_runs(row[0], ordered):
                newest = want.newest_producer(fmt, loader, by_label[c])
                assert row[2] == (labels(results)[newest] if newest else "none"), (fmt, loader, c)
                from_ = {p for p in ordered if want.loads((fmt, loader, by_label[p], by_label[c]))}
                assert parse_runs(row[1], ordered) == from_, (fmt, loader, c)


def test_index_md_of_the_map_answers_the_questions_of_issue_16() -> None:
    """The two questions, read off index.md as a reader would: in the saved_model / tf1_session
    section the row of 1.15 names 2.11 newest; in saved_model / tf2_load, 2.21's row loads in >= 2.10."""
    results, text = published(MAP)
    sections = tables(text)
    ordered = [labels(results)[c] for c in expected_of(results).cells]
    serving = [l for l in ordered if l.startswith("1.15.")][-1]
    newest = [l for l in ordered if l.startswith("2.21.")][-1]
    consumers = sections[("saved_model", "tf1_session")][1]
    row, = [r for r in consumers if serving in parse_runs(r[0], ordered)]
    assert row[2].startswith("2.11.")
    producers = sections[("saved_model", "tf2_load")][0]
    row, = [r for r in producers if newest in parse_runs(r[0], ordered)]
    assert re.fullmatch(r">= 2\.10\.\d+", row[1]), row


def test_the_closing_summary_counts_device_bound_loads_apart_from_failing_pairs() -> None:
    from sandbox import display, summary
    cells = [OLD, NEW]
    loads = [load(p, c, "dense") for p in cells for c in cells] + [load(NEW, OLD, "dense", "load-error", "op-not-registered",
                                                                        ("DisableCopyOnRead",))]
    loads += [load(p, c, "cudnn_lstm", *KERNEL) for p in cells for c in cells]
    found = summary.summarize(doc(cells, loads[:2] + loads[3:], [artifact(p, "cudnn_lstm", device="GPU") for p in cells]))
    assert (found.ok, found.failed, found.device) == (3, 1, 4)
    pair, = [p for f in found.formats for p in f.pairs]
    assert (pair.producer, pair.consumer, pair.failed, pair.applicable) == (NEW["id"], OLD["id"], 1, 1)
    lines = display.closing_summary(found, "tally", 1.0, [Path(n) for n in "abcd"])
    assert "loads: 3 ok, 0 differ, 1 fail, 4 device-bound (0 not applicable)" in lines
    assert any("cudnn_lstm (GPU)" in line for line in lines)
