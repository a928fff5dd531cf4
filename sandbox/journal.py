"""Supervise an agent verb over its JSON-lines journal.

The agent writes a `start` record before each item and an end record after.
If the process dies or hangs, the item it was on has a start and no end: that
item is recorded as `crash` or `timeout` and the verb is resumed after it, so
one bad model never costs the results of the others.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sandbox.store import append_jsonl, read_jsonl

Record = dict[str, Any]


@dataclass(frozen=True)
class Verb:
    journal: Path
    end_kind: str  # "artifact" or "load"
    keys: tuple[str, ...]  # fields that name an item

    def key(self, record: Record) -> tuple[Any, ...]:
        return tuple(record.get(k) for k in self.keys)

    def pending(self) -> list[Record]:
        """Items started and never ended."""
        started: dict[tuple[Any, ...], Record] = {}
        for record in read_jsonl(self.journal):
            if record.get("kind") == "start":
                started[self.key(record)] = record
            elif record.get("kind") == self.end_kind:
                started.pop(self.key(record), None)
        return list(started.values())

    def close_pending(self, status: str, reason: str, describe: Callable[[Record], Record] | None = None) -> int:
        """End every pending item as `status` (error_type the same, `reason` its
        text), or with the fields `describe(start record)` gives. How many there were."""
        pending = self.pending()
        for record in pending:
            fields = describe(record) if describe else {"status": status, "error_type": status, "error": reason,
                                                          "reason": reason}
            append_jsonl(self.journal, {**record, "kind": self.end_kind, **fields})
        return len(pending)

    def ends(self) -> list[Record]:
        return [r for r in read_jsonl(self.journal) if r.get("kind") == self.end_kind]


class Watcher:
    """Calls `on_record` for each record appended to a journal while it runs."""

    def __init__(self, journal: Path, on_record: Callable[[Record], None], interval: float = 0.5) -> None:
        self.journal, self.on_record, self.interval = journal, on_record, interval
        self._stop = threading.Event()
        self._seen = sum(1 for _ in read_jsonl(journal))
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def _poll(self) -> None:
        records = list(read_jsonl(self.journal))
        for record in records[self._seen:]:
            self.on_record(record)
        self._seen = max(self._seen, len(records))
