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


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(("argv", "hint"), [
    (["rn", "none.toml"], "did you mean 'run'?"),
    (["chek", "m.pb"], "did you mean 'check'?"),
    (["run", "none.toml", "--fres"], "did you mean '--fresh'?"),
    (["plan", "--jsn"], "did you mean '--json'?"),
    (["check", "m.pb", "--against", "all", "--max-model-siz", "3"], "did you mean '--max-model-size'?"),
])
def test_a_mistyped_verb_or_option_gets_a_did_you_mean(argv: list[str], hint: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert hint in _usage_error(argv, capsys)


@pytest.mark.parametrize("argv", [["run", "none.toml", "--fres"], ["run", "none.toml", "--no-wai"],
                                  ["check", "m.pb", "--again", "all"], ["merge", "b", "--allow"], ["diff", "a", "b", "--js"]])
def test_no_option_is_taken_by_a_prefix(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`run --fres` once meant `run --fresh`, silently (a matrix that does not
    exist: on old code the run stops at once)."""
    err = _usage_error(argv, capsys)
    assert "unrecognized arguments" in err or "required: --against" in err
