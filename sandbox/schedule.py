"""What a free worker of a run takes next: a pure policy over the run's state.

Every cell is produced first (provisioned, exported, its registry recorded),
in the plan's order: loads wait for producers, so producers go first. A
worker that finds no cell left to start loads: in the consumer with the most
items to load, every ready producer that consumer has not loaded yet, as one
batch (one agent process; a consumer runs one batch at a time). While the
last cells are still exporting, a worker that would otherwise wait takes
such a partial batch; the rest of that consumer's producers come in a later
batch. So no worker waits for the slowest export, and the loads of a
consumer start as soon as it and its first producers are ready, instead of
after every cell has exported. Biggest batch first keeps the tail short; near
the end (TAIL), a consumer's producers are split in halves that may run at
once (two agent processes in one environment), so the slowest consumer does
not load alone while the other cores wait.

Cells `apart` (a matrix's references: a related map's cells) load and are
loaded only in pairs with the others, never with each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# The end of a run: at most this many consumers with producers left per worker.
# Which consumer loads slowest is not known before it loads (Keras 3 cells are
# slow), so near the end each batch takes half of what its consumer has left:
# an agent start more per consumer, for a tail that workers share.
TAIL = 2


@dataclass(frozen=True)
class Task:
    kind: Literal["produce", "load"]
    cell: str
    producers: tuple[str, ...] = ()  # a load batch: whose artifacts


@dataclass
class State:
    """A run's progress, as the policy sees it."""

    to_produce: list[str]  # cells not started yet, in the order to start them
    weight: dict[str, int] = field(default_factory=dict)  # ready producer -> items its artifacts add to a batch
    workers: int = 1
    producing: set[str] = field(default_factory=set)
    consumers: list[str] = field(default_factory=list)  # healthy cells that load, in the order they became so
    loaded: dict[str, set[str]] = field(default_factory=dict)  # consumer -> producers it has taken
    loading: dict[str, int] = field(default_factory=dict)  # consumer -> its batches running
    done: set[str] = field(default_factory=set)  # consumers that load nothing more (finished, or errored)
    apart: frozenset[str] = frozenset()  # cells whose pairs with each other are another map's

    def pending(self, consumer: str) -> list[str]:
        taken = self.loaded.get(consumer, set())
        return [p for p in self.weight if p not in taken and self.paired(p, consumer)]

    def paired(self, producer: str, consumer: str) -> bool:
        """Whether this run loads `producer`'s artifacts in `consumer`."""
        return paired(self.apart, producer, consumer)

    def items(self) -> int:
        """Items every consumer known so far loads of every producer known so far."""
        return sum(w for c in self.consumers for p, w in self.weight.items() if self.paired(p, c))

    @property
    def producing_over(self) -> bool:
        return not self.to_produce and not self.producing

    def start(self, task: Task) -> None:
        if task.kind == "produce":
            self.to_produce.remove(task.cell)
            self.producing.add(task.cell)
        else:
            self.loading[task.cell] = self.loading.get(task.cell, 0) + 1
            self.loaded.setdefault(task.cell, set()).update(task.producers)

    def produced(self, cell: str, healthy: bool, weight: int, consumes: bool = True) -> None:
        """A cell was produced: when healthy, a producer (with `weight` items
        per consumer) and, unless it only produces (its role), a consumer."""
        self.producing.discard(cell)
        if healthy:
            if weight:
                self.weight[cell] = weight
            if consumes:
                self.consumers.append(cell)

    def batch_over(self, consumer: str, healthy: bool) -> None:
        self.loading[consumer] -= 1
        if not self.loading[consumer]:
            del self.loading[consumer]
        if not healthy:
            self.done.add(consumer)

    def finished(self) -> list[str]:
        """Consumers that will load nothing more (and were not said so before)."""
        if not self.producing_over:
            return []
        found = [c for c in self.consumers if c not in self.done and c not in self.loading and not self.pending(c)]
        self.done.update(found)
        return found

    def over(self) -> bool:
        return self.producing_over and not self.loading and all(
            c in self.done or not self.pending(c) for c in self.consumers)


def paired(apart: frozenset[str], producer: str, consumer: str) -> bool:
    """Whether a run whose cells `apart` are references loads `producer`'s artifacts in `consumer`."""
    return not (producer in apart and consumer in apart)


def next_task(state: State) -> Task | None:
    """The task a free worker takes now, or None: wait (something running may
    make work), or stop (`state.over()`)."""
    if state.to_produce:
        return Task("produce", state.to_produce[0])
    final = state.producing_over  # every producer is known: a consumer may run two batches at once
    candidates = [(sum(state.weight[p] for p in state.pending(c)), i, c) for i, c in enumerate(state.consumers)
                  if (final or c not in state.loading) and c not in state.done and state.pending(c)]
    if not candidates:
        return None
    _, _, consumer = max(candidates, key=lambda t: (t[0], -t[1]))
    producers = state.pending(consumer)
    if final and len(candidates) <= TAIL * state.workers and len(producers) > 1:
        producers = producers[: (len(producers) + 1) // 2]  # the other half for the next free worker
    return Task("load", consumer, tuple(producers))
