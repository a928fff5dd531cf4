"""Reference cells (role "reference": a related map's cells) are measured only
in pairs with the matrix's own cells, never with each other: the scheduler
never batches such a pair, a run loads none and counts none as missing (so an
unchanged re-run measures nothing), and the report marks those squares as
the related map's instead of "does not write this". Expectations are the
pairs written out by hand."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from documents import of
from test_runner import FakeEnv

from sandbox import cellrun, collect, matrix, plan, runner
from sandbox.pythons import Interpreter
from sandbox.report import html, markdown
from sandbox.report.tables import grids, pairs
from sandbox.report.verdict import ELSEWHERE
from sandbox.schedule import State, Task, next_task
from sandbox.store import ResultsStore
from sandbox.versions import Resolved

RECORDED = Path(__file__).parent / "data" / "default-results.json"


def test_the_scheduler_never_batches_a_pair_of_two_references() -> None:
    state = State(["a", "b", "new"], workers=1, apart=frozenset({"a", "b"}))
    for cell in ("a", "b", "new"):
        assert next_task(state) == Task("produce", cell)
        state.start(Task("produce", cell))
        state.produced(cell, True, 10)
    assert state.items() == 10 * (3 * 3 - 2 * 2)  # a->new, b->new, new->a, new->b, new->new
    taken = []
    while (task := next_task(state)) is not None:
        state.start(task)
        taken += [(p, task.cell) for p in task.producers]
        state.batch_over(task.cell, True)
    assert sorted(taken) == [("a", "new"), ("b", "new"), ("new", "a"), ("new", "b"), ("new", "new")]
    assert state.over()


def _cell(name: str, me: Interpreter, role: str, packages: tuple[str, ...] = ()) -> plan.Cell:
    request = matrix.CellRequest(name, "3.11", "cpu", "venv", packages=packages, role=role)
    cell_id = plan.cell_id(f"{name}.0", "3.11", "cpu", packages=packages)
    return plan.Cell(cell_id, request, "cpu", "venv", me, Resolved("tensorflow", f"{name}.0", dt.datetime(2024, 1, 1)))


def test_a_run_loads_references_only_in_pairs_with_its_own_cells(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_AGENT_ZOO", "1")  # every item asked for exports
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    old, new = _cell("2.15", me, "reference"), _cell("2.16", me, "reference")
    mine = _cell("2.16", me, "both", ("tf-keras",))
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell))
    mx = matrix.Matrix(tmp_path / "m.toml", "extras", (), ("dense",), ("saved_model",), timeout=30)
    store = ResultsStore(tmp_path / "store")
    found = runner.Run(mx, [old, new, mine], tmp_path / "run", 2, lambda e: None, store).run()
    results = collect.collect(mx, found).to_json()
    assert {(l["producer"], l["consumer"]) for l in results["loads"]} == {
        (old.id, mine.id), (new.id, mine.id), (mine.id, mine.id), (mine.id, old.id), (mine.id, new.id)}
    assert {c["id"]: c["role"] for c in results["cells"]} == {old.id: "reference", new.id: "reference", mine.id: "both"}
    assert all(r.complete for r in found)  # nothing counted as missing: a re-run measures nothing
    again = runner.Run(mx, [old, new, mine], tmp_path / "run", 2, lambda e: None, store)
    again.run()
    assert again.tally.counts["load"] == 0 and again.tally.counts["load-reused"] == len(results["loads"])


def test_a_shard_of_a_reference_cell_takes_the_plans_references(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`sandbox load --cell` runs one cell: which producers are references comes from the whole plan."""
    monkeypatch.setenv("FAKE_AGENT_ZOO", "1")
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    old, new, mine = _cell("2.15", me, "reference"), _cell("2.16", me, "reference"), _cell("2.17", me, "both")
    assert plan.references([old, new, mine]) == frozenset({old.id, new.id})
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell))
    mx = matrix.Matrix(tmp_path / "m.toml", "extras", (), ("dense",), ("saved_model",), timeout=30)
    whole = runner.Run(mx, [old, new, mine], tmp_path / "run", 1, lambda e: None, ResultsStore(tmp_path / "s"))
    whole.run(loads=False)
    shard = runner.Run(mx, [new], tmp_path / "shard", 1, lambda e: None, ResultsStore(tmp_path / "s"),
                       references=plan.references([old, new, mine]))
    [result] = shard.loads_only(whole.sources(), {new.id: whole.cells[1].result})
    assert {p for p, _ in result.loads} == {mine.id}


def _with_references(refs: set[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    for c in data["cells"]:
        if c["id"] in refs:
            c["role"] = "reference"
    data["loads"] = [l for l in data["loads"] if not (l["producer"] in refs and l["consumer"] in refs)]
    return data


def test_the_report_marks_pairs_of_two_references_as_the_related_maps() -> None:
    data = json.loads(RECORDED.read_text())
    ids = [c["id"] for c in data["cells"] if c["status"] == "ok"]
    refs = set(ids[:-1])  # every cell but the newest is the related map's
    results = of(_with_references(refs))
    n, how = pairs(results)
    assert n == len(ids) ** 2 - len(refs) ** 2
    assert "but for pairs of two reference cells" in how
    for grid in grids(results):
        for p in grid.producers:
            for c in grid.consumers:
                assert (set(grid.letters[(p, c)]) == {ELSEWHERE}) == (p in refs and c in refs), (grid.format, p, c)
    page, text = html.render(results), markdown.render(results)
    assert "another map&#x27;s</b>" in page and f"{n} producer → consumer pairs" in page
    assert "another map's" in text and f"{n} producer → consumer pairs" in text
    plain = of(json.loads(RECORDED.read_text()))  # a report without references says nothing of them
    assert "another map&#x27;s</b>" not in html.render(plain) and "another map" not in markdown.render(plain)
    assert pairs(plain) == (len(ids) ** 2, "every cell loaded every cell's models")
