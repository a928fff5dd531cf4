"""Every report file renders from a recorded real results.json alone, and
says what the document says (the browser view is in test_report_browser.py)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import documents
import pytest
from documents import of
from verdicts import expected_of, needs

from sandbox import cli
from sandbox.classify import FAILED
from sandbox.report import document, html, junit, markdown
from sandbox.report.redact import redact
from sandbox.report.tables import grids, healthy, op_table

RECORDED = Path(__file__).parent / "data" / "default-results.json"
SLICE = Path(__file__).parent / "data" / "map-slice-results.json"  # tests/slice_results.py


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """The recorded document's JSON: what the tests expect is read off it; the renderers take of(results)."""
    return documents.read(RECORDED)


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def classes(attrs: dict[str, str | None]) -> set[str]:
    return set((attrs.get("class") or "").split())


def test_html_is_self_contained(results: dict[str, Any]) -> None:
    page = html.render(of(results))
    found = tags(page)
    assert not [t for t, a in found if t in ("link", "img", "iframe") or (t == "script" and "src" in a)]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "url(" not in page and "@import" not in page


BROKEN = {"load-error", "run-error", "crash", "timeout"}


def expected(results: dict[str, Any]) -> dict[tuple[str, str, str, str], str]:
    """(format, loader, producer, consumer) -> verdict, by the rules the legend states (tests/verdicts.py)."""
    want = expected_of(results)
    return {key: want.verdict(key) for key in want.squares}


def page_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


@pytest.mark.parametrize("recording", [RECORDED, SLICE])
def test_the_pickers_data_has_every_probes_outcome_in_every_square(recording: Path) -> None:
    results = documents.read(recording)
    data = page_data(html.render(of(results)))
    ids, probes = [c[0] for c in data["cells"]], [p[0] for p in data["probes"]]
    want = expected_of(results)
    words = {"o": "ok", "d": "differs", "f": "fails", "g": "device-bound", "h": "harness error", "n": "n/a",
             "x": "export failed"}
    found = {}
    for g in data["grids"]:
        width = len(ids) * len(probes)
        for row, producer in enumerate(g["p"]):
            for c, consumer in enumerate(ids):
                letters = g["s"][row * width + c * len(probes):row * width + (c + 1) * len(probes)]
                outcomes = {p: words[x] for p, x in zip(probes, letters) if x != "-"}
                if outcomes:
                    found[(g["f"], g["l"], ids[producer], consumer)] = outcomes
    assert found == want.squares
    # the loads that did not work, and only those, are listed: each with its exact error
    listed = sorted((g, p, c, probe) for key, items in data["bad"].items() for g, p, c in [key.split(",")]
                    for probe, *_ in items)
    assert len(listed) == sum(l["status"] in BROKEN or l["status"] == "outputs-differ" for l in results["loads"])
    errors = "\n".join(data["errors"])
    assert all(l["error"] in errors for l in results["loads"] if l["status"] in BROKEN)
    # the probes that need a device, and how that is known
    assert {p: d for p, d, _ in data["probes"] if d} == needs(results)


def test_html_lists_findings_not_loads(results: dict[str, Any]) -> None:
    page = html.render(of(results))
    found = tags(page)
    assert page.count("<tr") < len(results["loads"]) / 10  # ok and n/a loads are not rows
    groups = [a for t, a in found if t == "tr" and "group" in classes(a)]
    assert 0 < len(groups) < len([l for l in results["loads"] if l["status"] in BROKEN])
    for load in results["loads"]:
        for name in load["names"] if load["status"] in BROKEN else []:
            assert escape(name) in page


def test_html_squares_are_buttons_for_the_keyboard(results: dict[str, Any]) -> None:
    squares = [a for t, a in tags(html.render(of(results))) if t == "td" and "v" in classes(a)]
    assert len(squares) == len(grids(of(results))) * len(healthy(of(results))) ** 2 - sum(
        1 for g in grids(of(results)) for c in healthy(of(results)) for p in healthy(of(results)) if p not in g.producers)
    assert all((a.get("tabindex") == "0") == ("v-none" not in classes(a)) for a in squares)


def test_markdown_says_what_fails_in_ranges(results: dict[str, Any]) -> None:
    text = markdown.render(of(results))
    for heading in ("## Each format, in version ranges", "## Failures, grouped by signature", "## Grids", "## Cells"):
        assert heading in text
    # the finding of the README: SavedModels of new TF fail in old TF on debug_name
    assert re.search(r"from >= 2\.18\.1 fails in <= 1\.15\.5: VarHandleOp\.debug_name", text)
    for load in results["loads"]:
        for name in load["names"] if load["status"] in BROKEN else []:
            assert name in text
    assert len(text.splitlines()) < len(results["loads"]) / 4  # a summary, not a list of loads


def test_the_op_table_counts_pairs(results: dict[str, Any]) -> None:
    pairs, rows = op_table(of(results))
    found = tags(html.render(of(results)))
    assert len([a for t, a in found if t == "tr" and "op" in classes(a)]) == len(rows) > 0 and pairs


def test_junit_has_a_case_per_pair_and_format_and_per_cell(results: dict[str, Any]) -> None:
    root = ET.fromstring(junit.render(of(results)))
    cases = list(root.iter("testcase"))
    by: dict[tuple[str, str, str], list[str]] = {}
    for l in results["loads"]:
        by.setdefault((l["format"], l["producer"], l["consumer"]), []).append(l["status"])
    assert len(cases) == len(by) + len(results["cells"]) < len(results["loads"]) / 5
    bad = {k for k, s in by.items() if any(x in FAILED or x == "outputs-differ" for x in s)}
    skipped = {k for k, s in by.items() if set(s) == {"not-applicable"}}
    assert root.get("tests") == str(len(cases))
    assert root.get("failures") == str(len(bad)) == str(len(list(root.iter("failure")))) and bad
    assert root.get("skipped") == str(len(skipped))
    fmt, producer, consumer = sorted(bad)[0]
    [case] = [c for c in cases if c.get("classname") == fmt and c.get("name") == f"{producer} → {consumer}"]
    failure = case.find("failure")
    assert failure is not None and failure.text and failure.get("message") and failure.get("type")
    failing = [l for l in results["loads"] if (l["format"], l["producer"], l["consumer"]) == (fmt, producer, consumer)
               and (l["status"] in FAILED or l["status"] == "outputs-differ")]
    assert len(failure.text.splitlines()) == len(failing)  # every failing load of the pair, one line each
    assert all(f"{l['probe']} / {l['loader']}: {l['status']}" in failure.text for l in failing)


def test_report_command_writes_every_file(tmp_path: Path, results: dict[str, Any],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(RECORDED), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "index.md", "junit.xml", "results.json"]
    clean = redact(of(results))  # published without host names and local paths (test_report_redact.py)
    assert (tmp_path / "index.md").read_text() == markdown.render(clean)
    assert document.load(tmp_path) == clean
    assert "index.html" in capsys.readouterr().out


def test_markdown_holds_no_html_from_the_results(results: dict[str, Any]) -> None:
    """A cell id (a bundle's, a results.json's) once reached index.md as raw HTML."""
    hostile = copy.deepcopy(results)
    evil = '<img src=x onerror="alert(1)">'
    hostile["name"] = f"n{evil}"
    cell = hostile["cells"][0]
    old = cell["id"]
    cell["id"], cell["requirement"], cell["reason"] = f"tf{evil}-py3-cpu", evil, evil
    for load in hostile["loads"]:
        load["producer"] = cell["id"] if load["producer"] == old else load["producer"]
        load["consumer"] = cell["id"] if load["consumer"] == old else load["consumer"]
    text = markdown.render(of(hostile))
    assert "<img" not in text and "&lt;img" in text
