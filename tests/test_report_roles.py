"""A cell that only exports (role "producer") loads nothing: the report's
headline and its "loaded with" rows never speak of it as a consumer. The
expectations are read off the recorded default run by hand: which cells are
left to load, and the newest 1.x among them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from documents import of

from sandbox.report import headline
from sandbox.report.findings import summaries
from sandbox.report.tables import grids, labels

RECORDED = Path(__file__).parent / "data" / "default-results.json"
EXPORTS_ONLY = "tf1.15.5-py3.7-cpu"


def _producer_only(data: dict[str, Any], cell: str) -> dict[str, Any]:
    for c in data["cells"]:
        if c["id"] == cell:
            c["role"] = "producer"
    data["loads"] = [l for l in data["loads"] if l["consumer"] != cell]
    return data


def test_a_cell_that_only_exports_is_no_consumer_of_the_headline_or_the_loaded_with_rows() -> None:
    data = json.loads(RECORDED.read_text())
    assert any(c["id"] == EXPORTS_ONLY for c in data["cells"])
    before = "\n".join(headline.lines(of(json.loads(RECORDED.read_text()))))
    assert "| 1.15.5 loads models saved with" in before  # the newest 1.x of the recording, a consumer there
    results = of(_producer_only(data, EXPORTS_ONLY))
    text = "\n".join(headline.lines(results))
    assert "1.15.5 loads models saved with" not in text
    assert "| 1.14.0 loads models saved with" in text  # the newest 1.x that still loads
    label = labels(results)[EXPORTS_ONLY]
    for summary in summaries(results):
        assert all(label not in row.consumers for row in summary.consumers), (summary.format, summary.consumers)
    assert EXPORTS_ONLY in next(g for g in grids(results) if g.format == "frozen_graph").producers  # it still saves


def test_a_report_with_runtime_cells_counts_cells_by_what_they_run() -> None:
    data = json.loads(RECORDED.read_text())
    assert headline.counts(of(data)).startswith(f"{len(data['cells'])} TensorFlow cells (TensorFlow 1.13.2 to 2.18.1)")
    keras = {**data["cells"][-1], "id": "keras3.5.0-tf2.17.0-py3.12-cpu",
             "runtime": {"name": "keras", "package": "keras", "version": "3.5.0", "backend": "tensorflow"}}
    data["cells"].append(keras)
    assert headline.counts(of(data)).startswith(
        f"{len(data['cells'])} cells (TensorFlow 1.13.2 to 2.18.1, Keras 3.5.0)")


def test_each_loader_of_a_runtime_map_is_answered_by_its_own_newest_reader() -> None:
    """In reports/tflite-map LiteRT and tflite-runtime read with different
    loaders: the row of each names the newest cell that loaded with it, read
    off results.json here."""
    path = Path(__file__).parent.parent / "reports" / "tflite-map" / "results.json"
    data = json.loads(path.read_text())
    text = "\n".join(headline.lines(of(data)))
    for loader, title in (("ai_edge_litert", "LiteRT"), ("tflite_runtime", "tflite-runtime")):
        tried = {l["consumer"] for l in data["loads"] if l["loader"] == loader and l["status"] != "not-applicable"}
        versions = [c["runtime"]["version"] for c in data["cells"] if c["id"] in tried and c["status"] == "ok"]
        newest = max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
        row = next(line for line in text.splitlines() if line.startswith("| `tflite` ") and f"`{loader}`" in line)
        assert f"{title} {newest}:" in row, row
