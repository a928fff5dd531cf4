"""Digests per code (sandbox/codemap.py, digests.AgentCode): an edit to one
loader re-measures only that loader's loads; to one exporter, its format's
exports and the loads of them; to one probe, its exports and loads; to code
several of them share, each of them; to the load verb, every load and no
export. Edits are made to a copy of the agent; what must change is written
here, from reading the agent, not computed by the code under test."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from test_runner import FakeEnv, make_cell

from sandbox import cellrun, codemap, digests, matrix, runner
from sandbox.agent import catalog
from sandbox.pythons import Interpreter
from sandbox.store import ResultsStore

PROBES = ("dense", "conv2d")
FORMATS = ("frozen_graph", "saved_model_tf1", "keras_h5", "tflite")


def agent_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "agent"
    shutil.copytree(digests.AGENT, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def edit(agent: Path, module: str, definition: str) -> None:
    """Add a statement at the top of `definition` ("def keras2(" or "class Dense(") in agent/module.py."""
    path = agent / f"{module}.py"
    lines = path.read_text().splitlines(keepends=True)
    [at] = [i for i, line in enumerate(lines) if line.startswith(definition)]
    end = next(i for i in range(at, len(lines)) if lines[i].rstrip().endswith(":"))  # a signature may wrap
    lines.insert(end + 1, "    _edited = True\n")
    path.write_text("".join(lines))


def table(agent: Path) -> dict[tuple[str, ...], str]:
    code = digests.AgentCode(agent=agent)
    found: dict[tuple[str, ...], str] = {("registry",): code.registry()}
    for probe in PROBES:
        for fmt in FORMATS:
            found[("export", probe, fmt)] = code.export(probe, fmt)
            for loader in catalog.loaders_for(fmt):
                found[("load", probe, fmt, loader)] = code.load(probe, fmt, loader)
    return found


def changed(tmp_path: Path, module: str, definition: str) -> set[tuple[str, ...]]:
    before = table(agent_copy(tmp_path))
    edited = agent_copy(tmp_path / "edited")
    edit(edited, module, definition)
    after = table(edited)
    return {k for k in before if before[k] != after[k]}


def every(kind: str, *, probe: str | None = None, fmt: str | None = None,
          loaders: tuple[str, ...] | None = None) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for p in PROBES:
        for f in FORMATS:
            if (probe or p) != p or (fmt or f) != f:
                continue
            if kind == "export":
                found.add(("export", p, f))
            found |= {("load", p, f, l) for l in catalog.loaders_for(f) if loaders is None or l in loaders}
    return found


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))  # the digests' cache starts empty


def test_one_loader_changes_only_its_loads(tmp_path: Path) -> None:
    assert changed(tmp_path, "loaders", "def keras2(") == every("load", loaders=("keras2",))


def test_code_two_loaders_share_changes_the_loads_of_both(tmp_path: Path) -> None:
    assert changed(tmp_path, "loaders", "def _keras_load(") == every("load", loaders=("keras2", "keras3"))


def test_one_exporter_changes_its_exports_and_their_loads(tmp_path: Path) -> None:
    assert changed(tmp_path, "exporters", "def tflite(") == every("export", fmt="tflite")
    assert changed(tmp_path / "2", "exporters", "def frozen_graph(") == every("export", fmt="frozen_graph")


def test_one_probe_changes_its_exports_and_loads(tmp_path: Path) -> None:
    assert changed(tmp_path, "zoo", "class Dense(") == every("export", probe="dense")


def test_the_load_verb_changes_every_load_and_no_export_and_the_registry_verb_only_the_registry(tmp_path: Path) -> None:
    assert changed(tmp_path, "verbs", "def load(") == every("load")
    assert changed(tmp_path / "2", "verbs", "def registry(") == {("registry",)}


def test_code_every_verb_runs_changes_everything_and_the_journal_writer_every_export_and_load(tmp_path: Path) -> None:
    assert changed(tmp_path, "verbs", "def main(") == every("export") | {("registry",)}
    assert changed(tmp_path / "2", "jsonl", "def dumps(") == every("export")  # the registry verb writes no journal


def test_the_agent_map_resolves_every_reference() -> None:
    """A name the map cannot find makes it count a whole module: keep none."""
    assert digests.agent_map().unresolved() == []
    tables = {ref: [e.key for e in unit.entries] for ref, unit in digests.agent_map().units.items() if unit.entries}
    assert set(tables) == {("exporters", "FORMATS"), ("loaders", "FUNCTIONS"), ("catalog", "LOADER_FORMATS")}
    assert set(tables[("exporters", "FORMATS")]) == set(matrix.FORMATS)
    assert set(tables[("loaders", "FUNCTIONS")]) == set(catalog.LOADER_FORMATS)
    assert codemap.WHOLE not in {name for _, name in digests.agent_map().units}


def test_a_run_remeasures_exactly_the_loads_of_an_edited_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the runner (fake agent): after keras2 is edited, only keras2's loads are measured."""
    agent = agent_copy(tmp_path)
    monkeypatch.setattr(digests, "AGENT", agent)
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    cells = [make_cell("1.0", me), make_cell("2.0", me)]
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell))
    monkeypatch.setenv("FAKE_AGENT_ZOO", "1")
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("dense",), ("frozen_graph", "keras_h5"), timeout=30)

    def run() -> runner.Run:
        done = runner.Run(mx, cells, tmp_path / "run", 2, lambda *a: None, ResultsStore(tmp_path / "store"))
        done.run()
        return done

    first = run()
    # 2 cells x 1 probe x 2 formats; loads: 2 consumers x 2 producers x (frozen_graph: 1 + keras_h5: keras2, keras3)
    assert (first.tally.counts["export"], first.tally.counts["load"]) == (4, 12)
    edit(agent, "loaders", "def keras2(")
    again = run()
    assert (again.tally.counts["export"], again.tally.counts["load"]) == (0, 4)  # keras2's: 2 x 2 pairs
    assert again.tally.counts["load-reused"] == 8 and again.tally.counts["export-reused"] == 4
