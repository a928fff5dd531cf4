"""Broken and hostile input through the command line: one line naming the
file, key or path and what to do, the documented exit code, and nothing
built or run before the input is known to be good (issue 13)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import pytest
from test_plan import PYTHONS, FakeCatalog

from sandbox import cli, matrix, pythons, repro, runner, versions
from sandbox.errors import ConfigError, SandboxError


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sandbox: error: "), err
    assert "Traceback" not in err
    return err


@pytest.fixture
def offline_world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fake release catalog and interpreters; anything that would build an
    environment or run the reporter's code fails the test."""
    monkeypatch.setattr(versions, "Catalog", lambda offline=False: FakeCatalog())
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(pythons, "discover", lambda: PYTHONS)
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an environment was built or user code ran before the input was validated")

    monkeypatch.setattr(runner, "Run", forbidden)
    monkeypatch.setattr(repro, "prepare_producer", forbidden)


def test_a_matrix_path_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", str(tmp_path), "--offline"]) == ConfigError.exit_code
    assert f"{tmp_path}: is a folder; give the path of a .toml file" in one_line_error(capsys)


def test_a_binary_matrix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "matrix.toml"
    path.write_bytes(b"tensorflow = [\"2.15\"]\n\x89PNG\r\n\x1a\n\x00\xff")
    assert cli.main(["plan", str(path), "--offline"]) == 2
    assert f"{path}: not a text (UTF-8) TOML file" in one_line_error(capsys)


def test_a_huge_matrix_is_not_read_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text("# " + "x" * (2 << 20))
    assert cli.main(["plan", str(path)]) == 2
    assert "larger than 1024 KiB" in one_line_error(capsys)


def test_an_unwritable_cache_folder_even_for_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(blocker / "cache"))
    path = tmp_path / "matrix.toml"
    path.write_text('tensorflow = ["2.15"]\n')
    assert cli.main(["plan", str(path), "--offline"]) == 2
    err = one_line_error(capsys)
    assert f"cache folder {blocker / 'cache'} cannot be created" in err and "set SANDBOX_CACHE_DIR" in err


def test_an_unwritable_reports_folder_fails_before_the_run(tmp_path: Path, offline_world: None,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("not a folder")
    path = tmp_path / "matrix.toml"
    path.write_text('tensorflow = ["2.15"]\npython = "3.11"\n')
    assert cli.main(["run", str(path), "--reports", str(blocker), "--work-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert f"cannot create the reports folder {blocker}" in err and "--reports" in err


def test_report_into_a_folder_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = Path(__file__).parent / "data" / "default-results.json"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["report", str(results), "--out", str(blocker / "r")]) == 2
    assert "cannot create the reports folder" in one_line_error(capsys)


def test_results_whose_loads_lack_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    data = json.loads((Path(__file__).parent / "data" / "default-results.json").read_text())
    for load in data["loads"]:
        del load["status"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    assert cli.main(["report", str(path)]) == 2
    assert f"{path}: not a valid results document: loads[0] must contain ['status']" in one_line_error(capsys)
    assert cli.main(["diff", str(path), str(path)]) == 2
    one_line_error(capsys)


@pytest.mark.parametrize("verb", ["repro", "bisect"])
@pytest.mark.parametrize("name, consumers, extra, message", [
    ("", '"all"', 'timeout = "abc"', "key 'timeout': expected a positive number of seconds, got 'abc'"),
    ("", '"all"', "timeout = nan", "key 'timeout': expected a positive number of seconds, got nan"),
    ("", '"all"', "timeout = inf", "key 'timeout': expected a positive number of seconds, got inf"),
    ("", '"all"', "timeout = -5", "key 'timeout': expected a positive number of seconds, got -5"),
    ("", '">=1.13,<<2"', "", "key 'consumers.tensorflow': '>=1.13,<<2' is not a list, a range"),
    ("", '["2.15", "two"]', "", "key 'consumers.tensorflow[1]': 'two' is not a TensorFlow version"),
    ("", '">=9.0"', "", "no TensorFlow release matches '>=9.0'"),
    ("", '"all"', 'loader = "tf1_sesion"', "key 'consumers.loader': unknown loader 'tf1_sesion'; did you mean 'tf1_session'?"),
    ("", '"all"', 'python = "3.x"', "key 'consumers.python': '3.x' is not a Python version"),
    ("", '"all"', 'backend = "docker"', "key 'consumers.python': docker cells need an explicit Python"),
    ('name = "../../../victim"\n', '"all"', "", "key 'name': '../../../victim' is not a plain folder name"),
    ('name = ".."\n', '"all"', "", "key 'name': '..' is not a plain folder name"),
    ('name = ""\n', '"all"', "", "key 'name': must not be empty"),
])
def test_a_bad_spec_stops_before_the_producer_runs(tmp_path: Path, offline_world: None, capsys: pytest.CaptureFixture[str],
                                                   verb: str, name: str, consumers: str, extra: str, message: str) -> None:
    (tmp_path / "make.py").write_text("raise SystemExit('the reporter script must not run')\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "spec.toml").write_text(_spec(name, consumers, extra))
    code = cli.main([verb, str(tmp_path / "spec.toml"), "--work-dir", str(tmp_path / "runs" / "a" / "b")])
    assert code == 2
    assert message in one_line_error(capsys)
    assert victim.exists()


def _spec(name: str, consumers: str, extra: str) -> str:
    """A spec whose producer script must never run; `extra` goes under [consumers] (a timeout at the top)."""
    top = extra if extra.startswith("timeout") else ""
    consumer_extra = "" if top else extra
    return f'{name}{top}\n[producer]\nscript = "make.py"\ntensorflow = "2.15"\n[consumers]\ntensorflow = {consumers}\n{consumer_extra}\n'


def test_a_python_that_is_not_installed_is_reported_as_such(tmp_path: Path, offline_world: None,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text('tensorflow = ["2.15"]\npython = ["3.99", "3.7"]\n')
    assert cli.main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tf2.15-py3.99-cpu            skipped: Python 3.99 not found" in out
    assert "no wheel for it either (it has 3.11)" in out
    assert "tf2.15-py3.7-cpu             skipped: TensorFlow 2.15 has no wheel for Python 3.7 (it has 3.11)" in out


def test_an_os_error_nobody_foresaw_is_still_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def boom(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(matrix, "load", boom)
    assert cli.main(["plan", str(tmp_path / "m.toml")]) == SandboxError.exit_code
    assert f"cannot use {tmp_path / 'm.toml'}: Permission denied" in one_line_error(capsys)
