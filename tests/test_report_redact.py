"""Published reports carry no host name and no local path unless asked to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from documents import of
from leaks import leaks
from results_schema import assert_valid

from sandbox import cli
from sandbox.cli.parser import build_parser
from sandbox.report import document
from sandbox.report.document import ResultsDocument
from sandbox.report.publish import write_report
from sandbox.report.redact import Local, redact, text

RECORDED = Path(__file__).parent / "data" / "default-results.json"
# What the recorded run leaked: the VM's host name and the folders it ran in.
LEAKS = re.compile(r"running on vm\b|/root/|/work/main/|\.pyenv/versions")


@pytest.fixture(scope="module")
def results() -> ResultsDocument:
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


def test_the_recorded_run_leaks_and_its_redaction_does_not(results: ResultsDocument) -> None:
    before = results.to_json()
    assert LEAKS.search(json.dumps(before))  # else this test proves nothing
    clean = redact(results)
    after = clean.to_json()
    assert not LEAKS.search(json.dumps(after))
    assert after["redacted"] is True and redact(clean) == clean
    assert_valid(clean)
    # what matters stays: versions, packages, statuses, the op names in errors
    for old, new in zip(before["cells"], after["cells"]):
        assert new["python_path"].startswith("<python>/bin/python") and new["environment"]["location"] is None
        assert (new["tensorflow"], new["environment"]["packages"]) == (old["tensorflow"], old["environment"]["packages"])
    assert [(l["status"], l["names"]) for l in after["loads"]] == [(l["status"], l["names"]) for l in before["loads"]]
    assert results.to_json() == before and LEAKS.search(results.cells[0].python_path or "")  # input untouched


def test_a_docker_cells_image_tag_is_no_local_path() -> None:
    cells = [{"id": "d", "python_path": None, "environment": {"location": "docker:sandbox-tf:tf2.15.1-py3.11-cpu-docker-ab"}}]
    assert redact(of({"cells": cells})).cells[0].environment["location"] == "docker:sandbox-tf:tf2.15.1-py3.11-cpu-docker-ab"


@pytest.mark.parametrize("flags, leaks", [([], False), (["--no-redact"], True)])
def test_report_redacts_unless_told_not_to(tmp_path: Path, flags: list[str], leaks: bool) -> None:
    assert cli.main(["report", str(RECORDED), "--out", str(tmp_path), *flags]) == 0
    for name in ("results.json", "index.html", "index.md", "junit.xml"):
        assert bool(LEAKS.search((tmp_path / name).read_text())) == leaks, name


def test_run_merge_and_repro_take_the_flag() -> None:
    parser = build_parser()
    for verb in (["run"], ["repro", "spec.toml"], ["merge", "bundle"]):
        assert parser.parse_args([*verb]).redact is True
        assert parser.parse_args([*verb, "--no-redact"]).redact is False


def test_the_writer_redacts_unless_told_not_to(tmp_path: Path, results: ResultsDocument) -> None:
    write_report(results, tmp_path / "clean")
    write_report(results, tmp_path / "kept", hide=False)
    assert json.loads((tmp_path / "clean" / "results.json").read_text()) == redact(results).to_json()
    assert json.loads((tmp_path / "kept" / "results.json").read_text()) == results.to_json()


# Every form a local path takes in what TF, Keras and sandbox print, of another
# machine (the layout every run has) and of this one (its own folders and name).
ELSEWHERE = Local((("/srv/ci/store", "<store>"), ("/srv/ci", "<cwd>"), ("/home/ci", "~")), "runner-7")


@pytest.mark.parametrize("before, after", [
    # TF's "defined at" traces drop the leading slash
    ("used by node CudnnRNNV3 (defined at root/.cache/sandbox/envs/tf1.15.5-py3.7-cpu-98/lib/python3.7/site-packages/"
     "tensorflow_core/python/framework/ops.py:1748) with these attrs", "(defined at <cache>/envs/tf1.15.5-py3.7-cpu-98/"),
    ("node CudnnRNNV3 (defined at work/main/sandbox/agent/loaders.py:94) with", "(defined at <sandbox>/agent/loaders.py:94)"),
    ("(defined at home/ada/venv/lib/python3.11/site-packages/keras/a.py:3)", "(defined at <python>/lib/python3.11/"),
    # a slash-less path from a home folder anywhere in a text
    ("cannot open root/.cache/sandbox/results/v1/exports/ab/abc/files/x", "cannot open <store>/exports/ab/abc/files/x"),
    # the results store: in the cache, or anywhere (SANDBOX_STORE_DIR) by its layout
    ("filepath=/root/.cache/sandbox/results/v1/exports/15/1517/files/dense/keras_saved_model.",
     "filepath=<store>/exports/15/1517/files/dense/keras_saved_model."),
    ("filepath=/data/mine/v1/exports/15/1517/files/m.h5", "filepath=<store>/exports/15/1517/files/m.h5"),
    ("file:///root/models/x.pb", "file://~/models/x.pb"),
    ("Fatal error in /private/tmp/abc/x.py and /var/tmp/y/z", "<tmp>/abc/x.py and <tmp>/y/z"),
    # this machine's own folders, with and without the slash, and its host name as a word
    ("/srv/ci/runs/m.log and srv/ci/store/v2/x", "<cwd>/runs/m.log and <store>/v2/x"),
    ("host runner-7 said: runner-7.local failed", "host <host> said: <host>.local failed"),
    ("a runner-77 is another host", "a runner-77 is another host"),
])
def test_every_form_of_a_local_path(before: str, after: str) -> None:
    redacted = text(before, ELSEWHERE)
    assert after in redacted
    assert text(redacted, ELSEWHERE) == redacted  # idempotent


def test_nothing_of_this_machine_survives_redaction() -> None:
    """Paths of this machine's home, working folder, package, caches and temp
    folder, in every form, leave no leak the tests' own detector finds."""
    here = Local.here()
    forms = []
    for folder, _ in here.folders:
        for tail in ("/lib/python3.11/site-packages/tensorflow/a.py", "/runs/x/cells/c/artifacts/m.h5", "/x"):
            path = folder + tail
            forms += [f'File "{path}", line 3', f"(defined at {path.lstrip('/')}:12)", f"at {path}.", f"'{path}'"]
    if here.host:
        forms.append(f"in binary running on {here.host}. Make sure; {here.host} said")
    redacted = [text(f, here) for f in forms]
    assert [r for r in redacted if leaks(r)] == []
    assert all(text(r, here) == r for r in redacted)
