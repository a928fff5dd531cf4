"""An unchanged re-run does nothing (sandbox/ledger.py), through the real CLI
with fake cells (tests/fake_sandbox.py): no record read, no file written, the
report left as it was; anything that changed (a damaged record, a report
file, the matrix) takes the long way, and the report is rewritten only when
its document changed. (At the published map's size: benchmarks/bench_map.py;
on real TensorFlow: test_real_incremental.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandbox import ledger
from sandbox.store import ResultsStore

FAKE_SANDBOX = Path(__file__).resolve().parent / "fake_sandbox.py"
MATRIX = """
name = "small"
tensorflow = ["1.0", "2.0"]
python = "3.11"
probes = ["batchnorm", "conv2d"]
formats = ["frozen_graph", "saved_model"]
"""
UNCHANGED = "(unchanged: nothing read, nothing written)"


def run(folder: Path, *args: str) -> str:
    env = {**os.environ, "SANDBOX_STORE_DIR": str(folder / "store"), "FAKE_AGENT_ZOO": "1"}
    done = subprocess.run([sys.executable, str(FAKE_SANDBOX), "run", "m.toml", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def files(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file below `folder`: (inode, size, mtime); not the run's lock (it names its holder)."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and ".lock" not in path.name:
            st = path.stat()
            found[str(path.relative_to(folder))] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def test_an_unchanged_rerun_reads_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(MATRIX)
    first = run(tmp_path)
    assert "measured 8 exports, 24 loads" in first and UNCHANGED not in first
    before = {name: files(tmp_path / name) for name in ("reports", "store", "runs")}
    again = run(tmp_path)
    assert f"reused 8 exports, 24 loads from the store {UNCHANGED}" in again
    assert "loads: " in again and "2 cells in " in again  # the closing summary, as the first run's
    assert {name: files(tmp_path / name) for name in ("reports", "store", "runs")} == before


def test_a_damaged_record_is_measured_again_and_the_report_kept_when_its_document_is_the_same(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(MATRIX)
    run(tmp_path)
    report = files(tmp_path / "reports")
    [victim, *_] = [p for p in sorted((tmp_path / "store").rglob("loads/*/*.json")) if '"ok"' in p.read_text()]
    victim.write_text(victim.read_text().replace('"ok"', '"crash"'))  # its digest no longer matches
    again = run(tmp_path)
    assert "measured 0 exports, 1 loads, 0 registries" in again  # that one, alone
    assert files(tmp_path / "reports") == report  # measured again alike: the same document, not rewritten
    assert UNCHANGED in run(tmp_path)  # and now it is a re-run with nothing to do


def test_a_report_file_that_changed_is_rendered_again(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(MATRIX)
    run(tmp_path)
    page = tmp_path / "reports" / "small" / "index.html"
    page.write_text("edited by hand")
    again = run(tmp_path)
    assert UNCHANGED not in again and "measured 0 exports, 0 loads" in again
    assert page.read_text().startswith("<!DOCTYPE html>")  # rendered again (with this run's date)
    (tmp_path / "reports" / "small" / "junit.xml").unlink()
    run(tmp_path)
    assert (tmp_path / "reports" / "small" / "junit.xml").exists()


def test_an_edited_matrix_takes_the_long_way(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(MATRIX)
    run(tmp_path)
    (tmp_path / "m.toml").write_text(MATRIX.replace('"conv2d"]', '"conv2d", "dense"]'))
    again = run(tmp_path)
    assert UNCHANGED not in again and "measured 4 exports, 12 loads" in again  # dense: 2 x 2, 2 x 2 x 3
    entry = ledger.read(ResultsStore(tmp_path / "store" / "v1"), tmp_path / "reports" / "small")
    assert entry is not None and entry.complete and entry.reused == {"export": 12, "load": 36}
