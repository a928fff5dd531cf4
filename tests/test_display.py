"""What a user sees of a run: the live display in a real pseudo-terminal, the
plain lines of a pipe, -q and -v, the closing summary and the exit codes. Runs
are the real CLI and runner with fake environments and the fake agent
(tests/fake_sandbox.py; FAKE_AGENT_ZOO=1 exports every probe and format and
fails the loads whose producer is newer than the consumer)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from pathlib import Path

import pytest
from documents import of

from sandbox import cli, matrix, plan, summary
from sandbox.classify import FAILED
from sandbox.cli import planning
from sandbox.cli.parser import EXAMPLES, build_parser
from sandbox.report.document import ResultsDocument

ROOT = Path(__file__).resolve().parent.parent
FAKE_SANDBOX = ROOT / "tests" / "fake_sandbox.py"
SMALL = """
name = "small"
tensorflow = ["1.0", "2.0"]
python = "3.11"
probes = ["batchnorm", "conv2d"]
formats = ["frozen_graph", "saved_model"]
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def fake_env(folder: Path, **extra: str) -> dict[str, str]:
    # a store of its own: nothing measured by another test is reused
    return {**os.environ, "SANDBOX_STORE_DIR": str(folder / "store"), "FAKE_AGENT_ZOO": "1", **extra}


def fake_run(folder: Path, *args: str, matrix: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    """The fake sandbox on a pipe (not a terminal): the plain output."""
    if matrix is None:
        matrix = folder / "matrix.toml"
        shutil.copy(ROOT / "matrix.toml", matrix)  # the default matrix, with fake cells
    return subprocess.run([sys.executable, str(FAKE_SANDBOX), "run", str(matrix), *args], cwd=folder,
                          env=fake_env(folder, **extra), capture_output=True, text=True, timeout=300)


def test_plain_output_of_the_default_matrix_is_one_line_per_cell_phase(tmp_path: Path) -> None:
    done = fake_run(tmp_path, "-j", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) < 60, done.stdout
    results = json.loads((tmp_path / "reports" / "default" / "results.json").read_text())
    cells = [c["id"] for c in results["cells"]]
    assert len(cells) == 6
    for cell in cells:  # one line per phase of each cell, never one per load
        phases = [l.split()[3] for l in lines if l.startswith("[") and l.split()[2] == cell]
        assert phases.count("load") == 1 and phases.count("export") == 1 and phases.count("provision") == 1
    # the closing summary's counts, computed here from results.json itself
    statuses = Counter(l["status"] for l in results["loads"])
    failed = sum(n for s, n in statuses.items() if s in FAILED)
    assert failed > 0
    assert (f"loads: {statuses['ok']} ok, {statuses['outputs-differ']} differ, {failed} fail "
            f"({statuses['not-applicable']} not applicable)") in lines
    assert re.search(r"^6 cells in [0-9.ms ]+: 6 ok$", done.stdout, re.M)
    mx = matrix.load(tmp_path / "matrix.toml")
    assert f"measured {len(mx.probes) * len(mx.formats) * 6} exports, " in done.stdout
    # the fake's failures: a newer producer fails in an older consumer, naming <Probe>V2
    by_format = [l for l in lines if l.startswith("  frozen_graph (")]
    pairs = {(l["producer"], l["consumer"]) for l in results["loads"]
             if l["format"] == "frozen_graph" and l["status"] in FAILED}
    assert by_format and by_format[0].startswith(f"  frozen_graph ({len(pairs)} pairs): 1.14->1.13 10/10")
    assert "BatchnormV2" in by_format[0]
    assert lines[-2:] == ["report: reports/default/index.html reports/default/index.md reports/default/junit.xml",
                          "results: reports/default/results.json"]


def test_quiet_prints_only_the_summary_and_verbose_every_load(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(SMALL)
    quiet = fake_run(tmp_path, "-q", matrix=tmp_path / "m.toml")
    assert quiet.returncode == 0, quiet.stderr
    assert not any(l.startswith(("[", "matrix ", "  tf", "cell ")) for l in quiet.stdout.splitlines()), quiet.stdout
    assert quiet.stdout.splitlines()[0].startswith("2 cells in ")
    assert "reused 0 exports, 0 loads" in quiet.stdout and "results: reports/small/results.json" in quiet.stdout

    verbose = fake_run(tmp_path, "-v", "--fresh", matrix=tmp_path / "m.toml")
    loads = json.loads((tmp_path / "reports" / "small" / "results.json").read_text())["loads"]
    item_lines = [l for l in verbose.stdout.splitlines() if re.match(r"\[\s*\d+s\] \S+\s+load\s+tf.*: [a-z-]+$", l)]
    assert len(item_lines) == len(loads) == 2 * 2 * 6  # consumers x producers x (2 probes x 3 loaders in all)


def read_pty(args: list[str], cwd: Path, env: dict[str, str], columns: int = 130,
             term: str = "xterm-256color") -> tuple[int, str]:
    """Run a command on a real pseudo-terminal; its exit code and everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in env.items() if k not in ("NO_COLOR", "CI", "COLUMNS", "LINES")}
    proc = subprocess.Popen(args, cwd=cwd, env={**env, "TERM": term},
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_live_display_renders_in_a_terminal_and_ends_in_the_final_table(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(SMALL)
    code, raw = read_pty([sys.executable, str(FAKE_SANDBOX), "run", "m.toml", "-j", "2"], tmp_path,
                         fake_env(tmp_path, FAKE_AGENT_HANG="0.05"))
    assert code == 0, raw
    assert "\x1b[" in raw  # colours and cursor movement: a live display, not plain lines
    frames = ANSI.sub("", raw)
    # live rows: each cell with its phase and done/total counter, and the overall bar
    assert re.search(r"tf1\.0-py3\.11-cpu\s+load\s+━*\S*\s+\d+/12", frames), frames[-3000:]
    # the overall bar counts each stage's items: 2 cells x 2 probes x 2 formats exports, then
    # 2 consumers x 2 producers x 2 probes x 3 loaders (frozen_graph: 1, saved_model: 2) loads
    assert re.search(r"all cells: exports\s+━*\S*\s+\d/8\b", frames)
    assert re.search(r"all cells: loads\s+━+\s+24/24\b", frames)
    assert "━" in frames
    # what stays on screen when the display stops: the final table, then the summary
    final = ANSI.sub("", raw[raw.rindex("\x1b[?25h"):])  # the cursor comes back when the live display stops
    rows = [l for l in final.splitlines() if l.strip()]
    header = next(i for i, l in enumerate(rows) if l.startswith("cell") and "status" in l)
    table = rows[header + 2: header + 4]
    assert [r.split()[0] for r in table] == ["tf1.0-py3.11-cpu", "tf2.0-py3.11-cpu"], final
    assert all(" ok " in r for r in table)
    assert rows[header + 4].startswith("2 cells in ") and rows[-1] == "results: reports/small/results.json"
    assert "all cells" not in final and "[    " not in final  # no frame and no plain line after the table


def test_plain_lines_when_the_terminal_is_dumb(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(SMALL)
    code, raw = read_pty([sys.executable, str(FAKE_SANDBOX), "run", "m.toml"], tmp_path, fake_env(tmp_path),
                         term="dumb")
    assert code == 0, raw
    assert "all cells" not in raw and re.search(r"^\[\s*\d+s\] tf1\.0-py3\.11-cpu\s+load ", raw, re.M), raw


# -- the closing summary and the exit codes, in process -----------------------------------
def doc(loads: list[tuple[str, str, str, str, list[str]]], cells: dict[str, str]) -> ResultsDocument:
    return of({"formats": ["saved_model", "frozen_graph"],
               "cells": [{"id": c, "status": s, "reason": None if s == "ok" else "why"} for c, s in cells.items()],
               "loads": [{"producer": p, "consumer": c, "format": f, "probe": "dense", "status": s, "names": n}
                         for p, c, f, s, n in loads]})


def test_summary_counts_pairs_per_format_with_the_names() -> None:
    new, old, other = "tf2.18.1-py3.11-cpu", "tf1.13.2-py3.7-cpu", "tf2.18.1-py3.11-cpu+tf-keras"
    found = summary.summarize(doc([
        (new, old, "frozen_graph", "load-error", ["Einsum"]),
        (new, old, "frozen_graph", "load-error", ["MatMul.grad_a", "Einsum"]),
        (new, old, "frozen_graph", "ok", []),
        (new, old, "saved_model", "crash", []),
        (old, new, "saved_model", "outputs-differ", []),
        (old, new, "saved_model", "not-applicable", []),
    ], {old: "ok", new: "ok", other: "skipped"}))
    assert (found.ok, found.differ, found.failed, found.not_applicable) == (1, 1, 4 - 1, 1)
    assert found.cells == (("ok", 2), ("skipped", 1)) and found.problems == ((other, "skipped", "why"),)
    assert [f.format for f in found.formats] == ["saved_model", "frozen_graph"]  # the matrix's order
    [graph] = found.formats[1].pairs
    assert (graph.failed, graph.applicable, graph.names) == (2, 3, ("Einsum", "MatMul.grad_a"))
    assert found.pair(graph) == "2.18->1.13"


@pytest.mark.parametrize(("ids", "labels"), [
    (["tf1.13.2-py3.7-cpu", "tf2.18.1-py3.11-cpu", "tf2.18.1-py3.11-cpu+tf-keras"], ["1.13", "2.18", "2.18+tf-keras"]),
    (["tf2.18.0-py3.11-cpu", "tf2.18.1-py3.11-cpu"], ["2.18.0", "2.18.1"]),
    (["tf2.18.1-py3.10-cpu", "tf2.18.1-py3.11-cpu"], ["2.18.1-py3.10", "2.18.1-py3.11"]),
    (["tf2.18.1-py3.11-cpu", "tf2.18.1-py3.11-gpu"], ["2.18.1-py3.11-cpu", "2.18.1-py3.11-gpu"]),
    (["artifact", "tf2.18.1-py3.11-cpu"], ["artifact", "tf2.18.1-py3.11-cpu"]),
])
def test_short_labels_tell_cells_apart(ids: list[str], labels: list[str]) -> None:
    assert list(summary.short_labels(ids).values()) == labels


def test_a_run_in_which_every_cell_is_skipped_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.toml").write_text(SMALL)

    def skipped(path: Path, offline: bool) -> tuple[matrix.Matrix, list[plan.Cell]]:
        mx = matrix.load(path)
        return mx, [plan.Cell(f"tf{r.tensorflow}-py3.11-cpu", r, "cpu", "venv", skip="Python 3.11 not found")
                    for r in mx.cells]
    monkeypatch.setattr(planning, "resolve", skipped)
    monkeypatch.setenv("SANDBOX_STORE_DIR", str(tmp_path / "store"))
    code = cli.main(["run", str(tmp_path / "m.toml"), "--work-dir", str(tmp_path / "runs"),
                     "--reports", str(tmp_path / "reports"), "-q"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "2 cells in " in out and ": 2 skipped" in out and "nothing was measured" in out
    assert "  tf1.0-py3.11-cpu: skipped (Python 3.11 not found)" in out


@pytest.mark.parametrize("args", [["run", "-j", "0"], ["run", "-j", "-2"], ["repro", "x.toml", "-j", "none"],
                                  ["run", "-q", "-v"]])
def test_bad_options_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_every_option_and_argument_has_help_and_every_verb_an_example() -> None:
    parser = build_parser()
    assert "exit codes:" in parser.format_help() and "75" in parser.format_help()
    verbs = next(a.choices for a in parser._actions if isinstance(a.choices, dict))
    assert set(verbs) == set(EXAMPLES)
    for name, sub in verbs.items():
        assert "example:" in sub.format_help(), name
        for action in sub._actions:
            assert action.help, f"sandbox {name}: {action.dest} has no help"
