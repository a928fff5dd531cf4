"""A report folder is written completely or not at all (sandbox.report.publish)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sandbox.errors import SandboxError
from sandbox.report import RENDERERS, document
from sandbox.report.document import ResultsDocument
from sandbox.report.publish import write_report
from sandbox.report.redact import redact

RECORDED = Path(__file__).parent / "data" / "default-results.json"
FILES = {"results.json", "index.md", "index.html", "junit.xml"}


@pytest.fixture
def results() -> ResultsDocument:
    return document.load(RECORDED)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _leftovers(*folders: Path) -> list[str]:
    return [p.name for f in folders for p in f.iterdir() if p.name.endswith(".tmp") or ".old." in p.name]


def test_a_new_report_holds_every_file(tmp_path: Path, results: ResultsDocument) -> None:
    out = write_report(results, tmp_path / "reports" / "x")
    assert {p.name for p in out.iterdir()} == FILES
    published = redact(results)  # without host names and local paths unless hide=False (test_report_redact.py)
    assert json.loads((out / "results.json").read_text()) == published.to_json()
    assert (out / "index.md").read_text() == RENDERERS["index.md"](published)
    assert oct(out.stat().st_mode & 0o777) == oct(0o755) and oct((out / "index.html").stat().st_mode & 0o777) == oct(0o644)
    assert _leftovers(tmp_path / "reports") == []


def test_a_report_folder_is_replaced_whole(tmp_path: Path, results: ResultsDocument) -> None:
    out = tmp_path / "x"
    out.mkdir()
    for name in FILES:
        (out / name).write_text("old")
    (out / ".index.html.abc.tmp").write_text("left by an older sandbox")
    write_report(results, out)
    assert {p.name for p in out.iterdir()} == FILES
    assert "old" not in {p.read_text() for p in out.iterdir()}
    assert _leftovers(tmp_path) == []


def test_other_files_in_the_folder_are_kept(tmp_path: Path, results: ResultsDocument) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "index.md").write_text("old")
    write_report(results, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert {p.name for p in tmp_path.iterdir()} == FILES | {"notes.txt"}
    assert (tmp_path / "index.md").read_text() != "old"


def test_a_file_that_cannot_be_replaced_leaves_the_old_report(tmp_path: Path, results: ResultsDocument) -> None:
    """The issue's case: index.html cannot be replaced. Nothing changes, nothing is left over."""
    (tmp_path / "notes.txt").write_text("mine")
    for name in ("results.json", "index.md", "junit.xml"):
        (tmp_path / name).write_text(f"old {name}")
    (tmp_path / "index.html").mkdir()
    before = _snapshot(tmp_path)
    with pytest.raises(SandboxError, match=r"index\.html.*unchanged"):
        write_report(results, tmp_path)
    assert _snapshot(tmp_path) == before and (tmp_path / "index.html").is_dir()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("fail_at", [1, 2, 3, 5, 7])
def test_a_rename_failing_midway_puts_every_old_file_back(tmp_path: Path, results: ResultsDocument,
                                                         monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for name in ("results.json", "index.md", "index.html"):  # junit.xml is new
        (folder / name).write_text(f"old {name}")
    before = _snapshot(folder)
    calls = []
    real = os.rename

    def flaky(src: Any, dst: Any) -> None:
        calls.append(src)
        if len(calls) == fail_at:
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "rename", flaky)
    with pytest.raises(SandboxError, match="No space left on device"):
        write_report(results, folder)
    assert _snapshot(folder) == before
    assert _leftovers(folder, tmp_path) == []


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_folder_swap_failing_keeps_the_old_folder(tmp_path: Path, results: ResultsDocument,
                                                   monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    out = tmp_path / "x"
    out.mkdir()
    (out / "index.md").write_text("old")
    calls = []
    real = os.rename

    def flaky(src: Any, dst: Any) -> None:
        calls.append(src)
        if len(calls) == fail_at:
            raise OSError(13, "Permission denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "rename", flaky)
    with pytest.raises(SandboxError, match="Permission denied"):
        write_report(results, out)
    assert _snapshot(out) == {"index.md": b"old"}
    assert _leftovers(tmp_path) == []


def test_an_unwritable_reports_folder_is_one_line(tmp_path: Path, results: ResultsDocument) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the reports folder should be")
    with pytest.raises(SandboxError) as raised:
        write_report(results, blocker / "x")
    assert str(blocker) in str(raised.value) and "--reports" in str(raised.value)
    assert "\n" not in str(raised.value)
    with pytest.raises(SandboxError, match="is not a folder"):
        write_report(results, blocker)
