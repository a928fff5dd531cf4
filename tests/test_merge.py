"""shards.merge on bundles made by the real CLI, runner and store (the fake
agent, tests/fake_sandbox.py): the report it makes is the one a single machine
makes of the same matrix, cells in plan order, and a consumer's load bundle says
how its cell ended. The refusals of untrusted bundles are in test_shards.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fake_sandbox
import pytest
from test_shards import Shards

from sandbox import bundles, cellrun, shards
from sandbox.envs import EnvInfo, ProvisionFailed

# Plan order is the matrix's, not the ids' ("tf10.0-..." sorts before "tf2.0-...")
MATRIX = """
name = "sh"
tensorflow = ["2.0", "10.0"]
python = "3.11"
probes = ["batchnorm", "conv2d"]
formats = ["frozen_graph", "saved_model"]
"""
PLAN = ["tf2.0-py3.11-cpu", "tf10.0-py3.11-cpu"]
BROKEN = "import tensorflow failed in the cell: ImportError: libcudart.so.10.0: cannot open shared object file"


class BreaksAtProvision(fake_sandbox.FakeEnv):
    """The consumer's environment as a load job finds it on a machine of its own: broken."""

    def provision(self, log: Path) -> EnvInfo:
        raise ProvisionFailed("broken", BROKEN)


def _shards(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Shards:
    folder.mkdir(parents=True, exist_ok=True)
    made = Shards(folder, monkeypatch)
    (folder / "m.toml").write_text(MATRIX)
    return made


def _cells(folder: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads((folder / "reports" / "sh" / "results.json").read_text())["cells"]
    return found


def _load_ids(folder: Path) -> list[tuple[str, ...]]:
    loads = json.loads((folder / "reports" / "sh" / "results.json").read_text())["loads"]
    return [(l["consumer"], l["producer"], l["probe"], l["format"], l["loader"], l["status"]) for l in loads]


def test_merged_shards_make_the_report_of_one_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = _shards(tmp_path / "one", monkeypatch)
    one.sandbox("run", str(one.folder / "m.toml"), "--work-dir", str(one.folder / "runs"), "--reports",
                str(one.folder / "reports"), "--no-witness", machine="single")
    assert [c["id"] for c in _cells(one.folder)] == PLAN
    split = _shards(tmp_path / "split", monkeypatch)
    exports = [split.export(c) for c in PLAN]
    split.merge(exports + [split.load(c, exports) for c in reversed(PLAN)])
    assert [(c["id"], c["status"]) for c in _cells(split.folder)] == [(c, "ok") for c in PLAN]
    assert _load_ids(split.folder) == _load_ids(one.folder)


def test_a_load_bundle_says_how_its_cell_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell whose export job went well and whose load job found its environment
    broken is published broken, with the load job's reason (not ok, not a gap)."""
    split = _shards(tmp_path, monkeypatch)
    exports = [split.export(c) for c in PLAN]
    healthy = split.load(PLAN[0], exports)
    monkeypatch.setattr(cellrun, "environment", BreaksAtProvision)
    split.try_load(PLAN[1], exports, tmp_path / f"load-{PLAN[1]}")
    monkeypatch.setattr(cellrun, "environment", fake_sandbox.FakeEnv)
    read = [bundles.read(b) for b in [*exports, healthy, tmp_path / f"load-{PLAN[1]}"]]
    results, gaps = shards.merge(read, bundles.the_matrix(read))
    assert gaps == []
    assert [(r.state.id, r.state.status) for r in results] == [(PLAN[0], "ok"), (PLAN[1], "broken")]
    assert results[1].state.reason == BROKEN and results[1].loads == []
    assert {p for p, _ in results[0].loads} == set(PLAN)
