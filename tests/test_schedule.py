"""The run's scheduling policy (sandbox/schedule.py), pure: what a free
worker takes next, driven here by a small event simulation."""

from __future__ import annotations

import heapq

from sandbox import schedule
from sandbox.schedule import State, Task, next_task


def simulate(cells: dict[str, float], loads: dict[str, float], workers: int, per_batch: float = 0.0,
             weight: int = 10) -> tuple[float, list[tuple[float, Task]], float]:
    """Run the policy over `workers` with each cell's produce taking `cells[c]`
    and each of its batches taking loads[c] * (producers in it / all) +
    `per_batch` (an agent's start). (wall, started tasks, idle worker-seconds)."""
    state = State(list(cells), workers=workers)
    clock, idle, free = 0.0, 0.0, workers
    running: list[tuple[float, int, Task]] = []
    started: list[tuple[float, Task]] = []
    n = 0
    while True:
        while free and (task := next_task(state)) is not None:
            state.start(task)
            length = cells[task.cell] if task.kind == "produce" else \
                per_batch + loads[task.cell] * len(task.producers) / len(cells)
            heapq.heappush(running, (clock + length, n, task))
            started.append((clock, task))
            n, free = n + 1, free - 1
        if not running:
            assert state.over()
            return clock, started, idle
        end, _, task = heapq.heappop(running)
        idle += free * (end - clock)
        clock, free = end, free + 1
        if task.kind == "produce":
            state.produced(task.cell, True, weight)
        else:
            state.batch_over(task.cell, True)
        state.finished()


def test_every_cell_is_produced_before_any_load_starts_and_each_pair_is_loaded_once() -> None:
    wall, started, _ = simulate({"a": 1, "b": 1, "c": 1}, {"a": 3, "b": 3, "c": 3}, workers=1)
    kinds = [t.kind for _, t in started]
    assert kinds[:3] == ["produce"] * 3 and set(kinds[3:]) == {"load"}
    pairs = [(t.cell, p) for _, t in started if t.kind == "load" for p in t.producers]
    assert sorted(pairs) == sorted((c, p) for c in "abc" for p in "abc")
    assert wall == 3 + 9  # one worker: never idle


def test_a_worker_loads_instead_of_waiting_for_the_slowest_export() -> None:
    # 2 workers, one export four times as slow as the others: the barrier between
    # exports and loads would leave a worker idle for most of it
    cells = {"a": 1.0, "b": 1.0, "slow": 4.0}
    loads = {"a": 3.0, "b": 3.0, "slow": 3.0}
    wall, started, idle = simulate(cells, loads, workers=2)
    early = [t for at, t in started if t.kind == "load" and at < 4]
    assert early and all("slow" not in t.producers for t in early)  # loads of what is ready
    barrier = 4 + 9 / 2  # all exports done at 4 (a, b then slow), then 9 units of loads on 2 workers
    assert wall < barrier and idle < 1.5


def test_at_the_end_the_last_consumers_producers_are_split_over_the_free_workers() -> None:
    # the slowest consumer is the last to be ready: alone at the end it would keep one worker
    # busy while the other waits; split in halves (and halves again), both work to the end
    cells = {"a": 1.0, "b": 1.0, "slow": 1.0, "c": 1.0}
    loads = {"a": 2.0, "b": 2.0, "c": 2.0, "slow": 16.0}
    wall, started, idle = simulate(cells, loads, workers=2, per_batch=0.1)
    slow = [t for _, t in started if t.kind == "load" and t.cell == "slow"]
    assert len(slow) > 1 and sorted(p for t in slow for p in t.producers) == sorted(cells)
    unsplit = 2 + 16  # exports (4 on 2 workers), then the slow consumer's one batch, alone after the others
    ideal = 2 + (2 + 2 + 2 + 16) / 2
    assert wall < unsplit - 2 and wall < ideal + 3, (wall, ideal)


def test_the_consumer_with_the_most_to_load_goes_first_and_runs_one_batch_at_a_time() -> None:
    state = State(["x"], weight={"a": 10, "b": 30}, consumers=["a", "b"])
    state.start(next_task(state))  # type: ignore[arg-type]  # x still exports: no batch is split
    state.loaded = {"b": {"b"}}  # b has loaded itself: a has more to load
    first = next_task(state)
    assert first == Task("load", "a", ("a", "b"))
    state.start(first)
    second = next_task(state)
    assert second == Task("load", "b", ("a",))
    state.start(second)
    assert next_task(state) is None and not state.over()  # both loading: wait
    state.batch_over("a", True)
    state.batch_over("b", True)
    state.produced("x", False, 0)
    assert sorted(state.finished()) == ["a", "b"] and state.over()


def test_a_consumer_that_errored_loads_nothing_more_and_an_unhealthy_cell_is_no_producer() -> None:
    state = State(["a", "b"])
    for _ in ("a", "b"):
        state.start(next_task(state))  # type: ignore[arg-type]
    state.produced("a", True, 5)
    state.produced("b", False, 0)
    task = next_task(state)
    assert task == Task("load", "a", ("a",))
    state.start(task)
    state.batch_over("a", False)
    assert next_task(state) is None and state.over() and state.finished() == []
    assert schedule.State([]).over()
