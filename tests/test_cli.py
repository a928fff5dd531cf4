from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import cli


def test_bad_matrix_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "matrix.toml"
    bad.write_text('tensorflow = ["1.15"]\nimgae = "cpu"\n')
    assert cli.main(["run", str(bad), "--work-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "imgae" in err and "did you mean 'image'" in err and "Traceback" not in err


def test_report_rerenders_a_results_file(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text('{"schema_version": 2, "name": "x", "created": "2026-01-01T00:00:00Z", "sandbox_version": "0", '
                       '"matrix": "m.toml", "probes": [], "formats": [], "cells": [], "loads": [], "artifacts": []}')
    assert cli.main(["report", str(results)]) == 0
    assert (tmp_path / "index.md").read_text().startswith("# TensorFlow compatibility: x")
    assert "<h1>TensorFlow compatibility: x</h1>" in (tmp_path / "index.html").read_text()
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")


def test_unreadable_results_is_an_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(tmp_path / "missing.json")]) == 2
    assert "cannot read results" in capsys.readouterr().err
