"""Every report file renders from a recorded real results.json alone, and
says what the document says (the browser view is in test_report_browser.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sandbox import cli
from sandbox.classify import FAILED
from sandbox.report import document, html, junit, markdown
from sandbox.report.redact import redact
from sandbox.report.tables import grids, op_table

RECORDED = Path(__file__).parent / "data" / "default-results.json"


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return document.load(RECORDED)


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
    page = html.render(results)
    found = tags(page)
    assert not [t for t, a in found if t in ("link", "img", "iframe") or (t == "script" and "src" in a)]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "url(" not in page and "@import" not in page


def test_html_grids_agree_with_the_tables(results: dict[str, Any]) -> None:
    found = tags(html.render(results))
    boxes = [a for t, a in found if "grid-box" in classes(a)]
    expected = grids(results)
    assert [(a["data-format"], a["data-loader"]) for a in boxes] == [(g.format, g.loader) for g in expected]
    verdicts = [a["data-verdict"] for t, a in found if t == "td" and "v" in classes(a)]
    assert verdicts == [g.cells[(p, c)][0] for g in expected for p in g.producers for c in g.consumers]


def test_html_lists_every_load_and_every_failure_opens(results: dict[str, Any]) -> None:
    page = html.render(results)
    rows = [a for t, a in tags(page) if t == "tr" and "load" in classes(a)]
    assert len(rows) == len(results["loads"])
    bad = sum(l["status"] in FAILED or l["status"] == "outputs-differ" for l in results["loads"])
    assert page.count("<details>") == bad > 0
    for load in results["loads"]:
        if load["status"] in FAILED:  # the exact error, escaped
            assert escape(load["error"]) in page


def test_html_op_table_has_a_row_per_op(results: dict[str, Any]) -> None:
    pairs, rows = op_table(results)
    found = tags(html.render(results))
    assert len([a for t, a in found if t == "tr" and "op" in classes(a)]) == len(rows) > 0
    assert len([a for t, a in found if t == "th" and "pair" in classes(a)]) == len(pairs)


def test_junit_has_a_case_per_load_and_per_cell(results: dict[str, Any]) -> None:
    root = ET.fromstring(junit.render(results))
    cases = list(root.iter("testcase"))
    assert len(cases) == len(results["loads"]) + len(results["cells"])
    statuses = Counter(l["status"] for l in results["loads"])
    failing = sum(n for s, n in statuses.items() if s in FAILED or s == "outputs-differ")
    assert root.get("tests") == str(len(cases))
    assert root.get("failures") == str(failing) == str(len(list(root.iter("failure"))))
    assert root.get("skipped") == str(statuses["not-applicable"])
    failure = next(root.iter("failure"))
    assert failure.text and failure.get("message") and failure.get("type")


def test_report_command_writes_every_file(tmp_path: Path, results: dict[str, Any],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(RECORDED), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "index.md", "junit.xml", "results.json"]
    clean = redact(results)  # published without host names and local paths (test_report_redact.py)
    assert (tmp_path / "index.md").read_text() == markdown.render(clean)
    assert document.load(tmp_path) == clean
    assert "index.html" in capsys.readouterr().out
