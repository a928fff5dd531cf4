"""harness-error: a failure of sandbox's own code is decided by the frame that
raised it, carried by the agent's records, the store, collect, the summary and
every renderer, never counted as a failure, and makes `sandbox run` exit 4."""

from __future__ import annotations

import fractions
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import documents
import pytest
from documents import of
from results_schema import assert_valid

from sandbox import cli, context, crashes, digests, summary
from sandbox.cli import environments, sharding
from sandbox.display import closing_summary
from sandbox.errors import SandboxError
from sandbox.records import Artifact, ArtifactStatus, CellResult, CellState, Load, LoadStatus
from sandbox.report import diff, document, junit, verdict
from sandbox.report.document import ResultsDocument
from sandbox.report.publish import write_report

AGENT = Path(__file__).resolve().parent.parent / "sandbox" / "agent"
RECORDED = Path(__file__).parent / "data" / "default-results.json"


@pytest.fixture
def agent() -> Iterator[Any]:
    """The agent's modules, as the agent imports them (top-level names)."""
    sys.path.insert(0, str(AGENT))
    try:
        import blame
        import loaders
        import texts
        import verbs
        yield type("Agent", (), {"blame": blame, "loaders": loaders, "verbs": verbs, "texts": texts})
    finally:
        sys.path.remove(str(AGENT))


def _raised(fn: Any, *args: Any) -> BaseException:
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001  (any exception is what the test looks at)
        return e
    raise AssertionError("did not raise")


# -- who raised it ------------------------------------------------------------------
def test_an_error_raised_in_the_agents_own_code_is_a_harness_error(agent: Any) -> None:
    # the agent's own check raising, and a C builtin failing on the agent's argument (len(None))
    for e in (_raised(agent.loaders._only, ["a", "b"], "x"), _raised(agent.texts.shorten, None, 3)):
        assert agent.blame.is_harness(e)
        assert agent.blame.raised_in(e).startswith(("agent/loaders.py:", "agent/texts.py:"))
        assert agent.blame.describe(e)["raised_by"] is None


def test_an_error_raised_in_the_library_is_not(agent: Any) -> None:
    e = _raised(json.loads, "{oops")
    assert not agent.blame.is_harness(e)
    assert agent.blame.raised_in(e).startswith("json/decoder.py:")
    assert agent.blame.raised_by(e) == "JSONDecoder.raw_decode"
    assert agent.blame.raised_by(_raised(fractions.Fraction, "x")) == "Fraction.__new__"  # a cls frame


def test_a_probe_modules_own_code_is_ours(agent: Any, tmp_path: Path) -> None:
    module = tmp_path / "my_probes.py"
    module.write_text("def forward():\n    return {}['w']\n")
    code = compile(module.read_text(), str(module), "exec")
    space: dict[str, Any] = {}
    exec(code, space)
    assert not agent.blame.is_harness(_raised(space["forward"]))
    agent.blame.add_harness_file(str(module))
    assert agent.blame.is_harness(_raised(space["forward"]))


def _load_with(agent: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fn: Any) -> dict[str, Any]:
    """The agent's _load_one on an artifact whose loader is `fn`."""
    import numpy as np
    np.savez(tmp_path / "inputs.npz", x=np.zeros(2))
    np.savez(tmp_path / "outputs.npz", y=np.zeros(2))
    monkeypatch.setitem(agent.loaders.LOADERS, "fake", (("fmt",), fn))
    artifact = {"path": "m", "inputs": "inputs.npz", "outputs": "outputs.npz", "format": "fmt", "probe": "p"}
    result: dict[str, Any] = agent.verbs._load_one(str(tmp_path), artifact, "fake", 1e-4, 1e-3)
    return result


def test_the_agent_records_a_load_by_who_raised(agent: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    library = _load_with(agent, monkeypatch, tmp_path,
                         lambda path, x, a: agent.loaders._phase("load", lambda: json.loads("{oops")))
    assert (library["status"], library["error_type"]) == ("load-error", "JSONDecodeError")
    assert library["raised_by"] == "JSONDecoder.raw_decode"
    ours = _load_with(agent, monkeypatch, tmp_path,
                      lambda path, x, a: agent.loaders._phase("run", lambda: agent.loaders._only(["a", "b"], "x")))
    assert (ours["status"], ours["error_type"]) == ("harness-error", "ValueError")
    assert ours["raised_in"].startswith("agent/loaders.py:") and "in _only" in ours["raised_in"]
    outside = _load_with(agent, monkeypatch, tmp_path, lambda path, x, a: agent.loaders._only([], "x"))
    assert outside["status"] == "harness-error" and "outside the loader's" in outside["reason"]


def test_an_artifact_the_host_names_and_the_folder_lacks_is_a_harness_error(agent: Any, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "manifest.jsonl").write_text("")
    out = tmp_path / "loads.jsonl"
    item = {"producer": "x", "dir": str(tmp_path / "p"), "probe": "dense", "format": "saved_model", "loader": "tf2_load"}
    agent.verbs.load([item], str(out), False, {}, (1e-4, 1e-3))
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (record["kind"], record["status"]) == ("load", "harness-error")
    assert Load.from_agent(record).status is LoadStatus.HARNESS_ERROR


# -- errors kept whole where it counts ----------------------------------------------
def test_a_long_error_keeps_its_head_and_tail_and_marks_the_cut(agent: Any) -> None:
    text = "Error when deserializing class 'Dense' using config={" + "'x': 1, " * 1000 + \
           "}.\n\nException encountered: Unrecognized keyword arguments passed to Dense: {'quantization_config': None}"
    short = agent.verbs._error_text(ValueError(text))
    assert len(short) <= agent.verbs.ERROR_CHARS
    assert short.startswith("Error when deserializing class 'Dense'") and short.endswith("{'quantization_config': None}")
    cut = int(re.search(r"\.\.\. \[(\d+) characters cut\] \.\.\.", short).group(1))  # type: ignore[union-attr]
    assert cut == len(text) - (len(short) - len(agent.texts.CUT % cut))  # what is cut is said exactly
    assert agent.texts.shorten("short", 10) == "short"
    from sandbox.classify import classify
    assert classify("load-error", short).names == ("Dense.quantization_config",)  # type: ignore[union-attr]


# -- how an agent died ----------------------------------------------------------------
def test_a_real_segfault_is_a_crash_that_names_its_signal_and_frame(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text("import ctypes\n\ndef convert():\n    ctypes.string_at(0)\n\nconvert()\n")
    done = subprocess.run([sys.executable, "-X", "faulthandler", str(script)], capture_output=True, text=True)
    end = crashes.ending(done.returncode, done.stdout + done.stderr, 60)
    assert (end.status, end.error_type) == ("crash", "SIGSEGV")
    assert end.raised_in is not None and end.raised_in.endswith("in string_at")
    fields = end.fields("export", {"probe": "lstm", "format": "tflite_int8"})
    assert "died of SIGSEGV" in fields["error"] and "while exporting lstm/tflite_int8" in fields["error"]
    assert crashes.ending(139, "", 60).error_type == "SIGSEGV"  # a container's main process: 128 + 11


@pytest.mark.parametrize("returncode, output, status, error_type", [
    (1, 'Traceback (most recent call last):\n  File "/x/sandbox/agent/verbs.py", line 3, in run\nKeyError: 3\n',
     "harness-error", "exit 1"),
    (2, "agent: error: unknown probe nope", "harness-error", "exit 2"),
    (0, "", "harness-error", "exit 0"),
    (124, "Timeout: main thread (most recent call first):\n  File \"/e/site-packages/tensorflow/x.py\", line 9 in run\n",
     "timeout", "timeout"),
    (None, "", "timeout", "timeout"),
])
def test_other_endings(returncode: int | None, output: str, status: str, error_type: str) -> None:
    end = crashes.ending(returncode, output, 60)
    assert (end.status, end.error_type) == (status, error_type)
    if returncode == 1:
        assert end.raised_in == "verbs.py:3 in run" and "KeyError: 3" in end.reason
    if returncode == 124:
        assert end.raised_in == "tensorflow/x.py:9 in run"


# -- the store ---------------------------------------------------------------------
def test_a_stored_harness_error_is_reused_by_the_same_code_only(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = Load("dense", "saved_model", "tf2_load", LoadStatus.HARNESS_ERROR, "TypeError", "x", raised_in="agent/a.py:1 in f")
    good = Load("dense", "saved_model", "tf2_load", LoadStatus.OK)
    stored, kept = context.payload(bad), context.payload(good)
    export = context.payload(Artifact("dense", "saved_model", ArtifactStatus.HARNESS_ERROR, reason="x"))
    assert stored[context.HARNESS_CODE] == digests.all_code() and context.HARNESS_CODE not in kept
    assert context.reusable(stored) == stored and context.reusable(kept) == kept
    monkeypatch.setattr(digests, "all_code", lambda: "the fixed code")
    assert context.reusable(stored) is None  # measured again, by itself
    assert context.reusable(kept) == kept  # findings stay
    assert Load.from_agent(stored) == bad  # the digest is the store's, not the record's
    assert context.reusable(export) is None


# -- the document, summary, renderers and exit codes -----------------------------------
def _with_harness_errors() -> ResultsDocument:
    results = documents.read(RECORDED)
    first = next(l for l in results["loads"] if l["status"] == "ok")
    failing = next(l for l in results["loads"] if l["status"] == "load-error")
    for load in (first, failing):
        load.update(status="harness-error", error_type="TypeError", error="'NoneType' object is not subscriptable",
                    raised_in="agent/loaders.py:74 in tf2_load", raised_by=None, category=None, names=[])
    results["artifacts"][0].update(status="harness-error", reason="boom", error_type="KeyError",
                                   raised_in="agent/exporters.py:9 in x", category=None, names=[])
    return ResultsDocument.from_json(results)


def test_harness_errors_are_valid_counted_apart_and_never_failures() -> None:
    results = _with_harness_errors()
    assert_valid(results)
    found = summary.summarize(results)
    before = summary.summarize(document.load(RECORDED))
    assert len(found.harness) == 3 and before.harness == ()
    assert (found.ok, found.failed) == (before.ok - 1, before.failed - 1)
    lines = closing_summary(found, "tally", 1.0, [Path(n) for n in "abcd"])
    header = next(i for i, l in enumerate(lines) if l.startswith("harness errors: 3"))
    assert "agent/loaders.py:74 in tf2_load" in "\n".join(lines[header:header + 4])


def test_a_square_with_a_harness_error_is_neither_red_nor_ok() -> None:
    found = verdict.Devices({}, {}, {})
    ok, bad, failed = (found.outcome(l) for l in of({"loads": [
        {"producer": "p", "consumer": "c", "probe": "p", "format": "f", "status": status}
        for status in ("ok", "harness-error", "run-error")]}).loads)
    assert bad == verdict.HARNESS
    assert verdict.Square(ok + bad).verdict == verdict.HARNESS and not verdict.Square(ok + bad).loads
    assert verdict.Square(bad).verdict == verdict.HARNESS
    assert verdict.Square(bad + failed).verdict == verdict.FAILS  # what failed, failed
    assert verdict.Square(ok + failed + bad).marks == (verdict.HARNESS,)


def test_renderers_show_harness_errors_as_such(tmp_path: Path) -> None:
    results = _with_harness_errors()
    out = write_report(results, tmp_path / "r")
    xml = (out / "junit.xml").read_text()
    # a case per pair: the pair whose only problem is ours is an error; the other fails, and names ours apart
    assert xml.count('type="harness-error"') == 1 and xml.count("harness error (sandbox's own code") == 2
    assert "harness error" in (out / "index.md").read_text()
    assert '"h"' in (out / "index.html").read_text() or "harness error" in (out / "index.html").read_text()


def test_diff_flags_a_new_harness_error_and_gates_on_it() -> None:
    old, new = document.load(RECORDED), _with_harness_errors()
    changes = diff.diff(old, new)
    harness = [c for c in changes if c.kind == diff.HARNESS]
    assert len(harness) == 2 and diff.gates(changes)
    assert not [c for c in changes if c.kind == diff.NEWLY_WORKING]  # a failure we no longer measure is not fixed


def test_the_exit_code_is_4_with_any_harness_error() -> None:
    state = CellState("c", status="ok")
    clean = CellResult({}, state, loads=[("p", Load("d", "f", "l", LoadStatus.OK))])
    ours = CellResult({}, state, loads=[("p", Load("d", "f", "l", LoadStatus.HARNESS_ERROR))])
    export = CellResult({}, state, artifacts=[("k", Artifact("d", "f", ArtifactStatus.HARNESS_ERROR))])
    broken = CellResult({}, CellState("c", status="harness-error"))
    errored = CellResult({}, CellState("c", status="error"))
    assert [sharding.exit_code([r]) for r in (clean, ours, export, broken, errored)] == [0, 4, 4, 4, 1]
    assert sharding.exit_code([errored, ours]) == 4


INTERNAL = "sandbox: internal error: KeyError: 'nope' (a bug in sandbox: please report it; --debug shows the trace)"


@pytest.mark.parametrize("argv, traceback", [(["pythons"], False), (["--debug", "pythons"], True),
                                             (["pythons", "--debug"], True)])
def test_an_unexpected_exception_in_the_cli_is_one_line_and_exit_4(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str], argv: list[str],
                                                                    traceback: bool) -> None:
    """A bug of ours (here a verb that raises KeyError) is one line and exit 4; --debug adds the trace."""
    def broken(args: Any) -> int:
        return int({"a": "1"}["nope"])
    monkeypatch.setattr(environments, "cmd_pythons", broken)
    assert cli.main(argv) == 4
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines[-1] == INTERNAL and out == ""
    assert ("Traceback (most recent call last):" in err) == traceback and (len(lines) == 1) != traceback


def test_a_version_2_document_is_read_and_version_1_is_one_line(tmp_path: Path) -> None:
    data = json.loads(RECORDED.read_text())
    data["schema_version"] = 2
    (tmp_path / "results.json").write_text(json.dumps(data))
    assert document.load(tmp_path).schema_version == document.SCHEMA_VERSION == 3
    data["schema_version"] = 1
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(SandboxError, match=r"schema_version 1 is not supported \(this sandbox reads 2, 3\)"):
        document.load(tmp_path)


def test_junit_counts_harness_errors_as_errors() -> None:
    xml = junit.render(_with_harness_errors())
    assert 'errors="' in xml
