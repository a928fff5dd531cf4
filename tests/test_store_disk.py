"""A results store on a disk that fills up, or turns read-only, under a real
sandbox process: one line and an exit code, never a traceback; what was
stored before stays, and the next run measures only the rest."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from supervision import start_fake_sandbox

TALLY = re.compile(r"measured (\d+) exports, (\d+) loads, (\d+) registries; reused (\d+) exports, (\d+) loads")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 KiB tmpfs for the store (root only: skipped where mounts are not allowed)."""
    disk = tmp_path / "store"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


MATRIX = """
name = "t"
tensorflow = ["1.0", "2.0"]
python = "3.11"
probes = ["batchnorm"]
formats = ["frozen_graph", "saved_model"]
timeout = 60
"""


def run(folder: Path) -> subprocess.CompletedProcess[str]:
    (folder / "matrix.toml").write_text(MATRIX)
    proc = start_fake_sandbox(folder, "-j", "1", hang=0)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_full_store_stops_the_run_with_one_line_and_keeps_what_it_stored(small_disk: Path) -> None:
    folder = small_disk.parent
    done = run(folder)
    assert done.returncode == 74, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "cannot write the results store" in line and "No space left on device" in line
    kept = [p for p in small_disk.rglob("*.json")]
    assert kept, "nothing was stored before the disk filled up"
    # nothing half-written is left behind: no temporary record, no half-copied export folder
    assert [p.name for p in small_disk.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".new-")] == []
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    again = run(folder)
    assert again.returncode == 0, again.stdout + again.stderr
    measured = TALLY.search(again.stdout)
    assert measured, again.stdout
    assert int(measured.group(4)) + int(measured.group(5)) > 0  # reused what the full disk kept


def test_an_unchanged_rerun_needs_no_write_to_the_store(small_disk: Path) -> None:
    folder = small_disk.parent
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    assert run(folder).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = run(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    measured = TALLY.search(done.stdout)
    assert measured and measured.groups()[:3] == ("0", "0", "0")
    assert os.statvfs(small_disk).f_flag & os.ST_RDONLY
