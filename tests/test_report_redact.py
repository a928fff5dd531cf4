"""Published reports carry no host name and no local path unless asked to."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from results_schema import assert_valid

from sandbox import cli
from sandbox.report import document
from sandbox.report.publish import write_report
from sandbox.report.redact import redact, text

RECORDED = Path(__file__).parent / "data" / "default-results.json"
# What the recorded run leaked: the VM's host name and the folders it ran in.
LEAKS = re.compile(r"running on vm\b|/root/|/work/main/|\.pyenv/versions")


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return document.load(RECORDED)


@pytest.mark.parametrize("before, after", [
    ("Op type not registered 'X' in binary running on vm. Make sure", "in binary running on <host>. Make sure"),
    ("running on build-17.example.org", "running on <host>"),
    ('File "/root/.cache/sandbox/envs/tf1.13.2-py3.7-cpu-0d8f/lib/python3.7/a.py", line 3',
     'File "<cache>/envs/tf1.13.2-py3.7-cpu-0d8f/lib/python3.7/a.py", line 3'),
    ("'/work/main/runs/default/cells/tf2.12.1-py3.11-cpu/artifacts/m.h5'", "'<run>/cells/tf2.12.1-py3.11-cpu/artifacts/m.h5'"),
    ("/home/ada/src/sandbox/sandbox/agent/loaders.py:51", "<sandbox>/agent/loaders.py:51"),
    ("/root/.pyenv/versions/3.7.16/lib/python3.7/runpy.py", "<python>/lib/python3.7/runpy.py"),
    ("on /root/.pyenv/versions/3.7.16/bin/python3, deps", "on <python>/bin/python3, deps"),
    ("/home/ada/.local/share/uv/python/cpython-3.11.7-linux-x86_64-gnu/bin/python3.11", "<python>/bin/python3.11"),
    ("/home/ada/models/x.pb and /tmp/pytest-1/x", "~/models/x.pb and <tmp>/pytest-1/x"),
    ("no path here: 1/2 and a/b", "no path here: 1/2 and a/b"),
])
def test_text(before: str, after: str) -> None:
    assert after in text(before)


def test_the_recorded_run_leaks_and_its_redaction_does_not(results: dict[str, Any]) -> None:
    assert LEAKS.search(json.dumps(results))  # else this test proves nothing
    clean = redact(results)
    assert not LEAKS.search(json.dumps(clean))
    assert clean["redacted"] is True and redact(clean) == clean
    assert_valid(clean)
    # what matters stays: versions, packages, statuses, the op names in errors
    for old, new in zip(results["cells"], clean["cells"]):
        assert new["python_path"].startswith("<python>/bin/python") and new["environment"]["location"] is None
        assert (new["tensorflow"], new["environment"]["packages"]) == (old["tensorflow"], old["environment"]["packages"])
    assert [(l["status"], l["names"]) for l in clean["loads"]] == [(l["status"], l["names"]) for l in results["loads"]]
    assert "python_path" in json.dumps(results["cells"][0]) and results["cells"][0]["python_path"]  # input untouched


def test_a_docker_cells_image_tag_is_no_local_path() -> None:
    cells = [{"id": "d", "python_path": None, "environment": {"location": "docker:sandbox-tf:tf2.15.1-py3.11-cpu-docker-ab"}}]
    assert redact({"cells": cells})["cells"][0]["environment"]["location"] == "docker:sandbox-tf:tf2.15.1-py3.11-cpu-docker-ab"


@pytest.mark.parametrize("flags, leaks", [([], False), (["--no-redact"], True)])
def test_report_redacts_unless_told_not_to(tmp_path: Path, flags: list[str], leaks: bool) -> None:
    assert cli.main(["report", str(RECORDED), "--out", str(tmp_path), *flags]) == 0
    for name in ("results.json", "index.html", "index.md", "junit.xml"):
        assert bool(LEAKS.search((tmp_path / name).read_text())) == leaks, name


def test_run_merge_and_repro_take_the_flag() -> None:
    parser = cli._parser()
    for verb in (["run"], ["repro", "spec.toml"], ["merge", "bundle"]):
        assert parser.parse_args([*verb]).redact is True
        assert parser.parse_args([*verb, "--no-redact"]).redact is False


def test_the_writer_redacts_unless_told_not_to(tmp_path: Path, results: dict[str, Any]) -> None:
    write_report(results, tmp_path / "clean")
    write_report(results, tmp_path / "kept", hide=False)
    assert json.loads((tmp_path / "clean" / "results.json").read_text()) == redact(results)
    assert json.loads((tmp_path / "kept" / "results.json").read_text()) == results
