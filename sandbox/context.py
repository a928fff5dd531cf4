"""What every cell of one run shares, handed to each cell as one frozen value:
the matrix's options, the keys, the store as this run sees it, the run folder,
the event sink, the stopping flag and the tally. A cell changes the run only
through these (the store, the tally, events); the scheduler (sandbox.runner)
reads what a cell found from the cell itself."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import digests
from sandbox import events as ev
from sandbox.keys import Keys
from sandbox.matrix import Matrix
from sandbox.records import HARNESS_ERROR, Artifact, Load
from sandbox.store import ResultsStore

# A harness error is stored like any record (the run that measured it shows
# it), with the digest of the code that made it: only that same code reuses
# it, so any change to sandbox (the fix) measures it again by itself.
HARNESS_CODE = "harness_code"


@dataclass
class Tally:
    """What a run measured and what it took from the store."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def line(self) -> str:
        c = self.counts
        return (f"measured {c['export']} exports, {c['load']} loads, {c['registry']} registries; "
                f"reused {c['export-reused']} exports, {c['load-reused']} loads from the store")


class StoreView:
    """The results store as one run sees it: every record the run writes is
    noted as measured, so it tells its own measurements from earlier runs'
    (and under --fresh, takes only its own)."""

    def __init__(self, store: ResultsStore, fresh: bool = False) -> None:
        self.store, self.fresh = store, fresh
        self._measured: set[str] = set()
        self._lock = threading.Lock()

    def stored(self, kind: str, key: str) -> dict[str, Any] | None:
        """The store's record, unless --fresh asks to measure it again (and
        this run has not yet), or it is a harness error that other code measured."""
        if self.fresh and not self.measured(key):
            return None
        return reusable(self.store.get_export(key) if kind == "exports" else self.store.get(kind, key))

    def measured(self, key: str) -> bool:
        """Whether this run measured the record of `key` (rather than finding it stored)."""
        with self._lock:
            return key in self._measured

    def put(self, kind: str, key: str, payload: dict[str, Any]) -> None:
        self.store.put(kind, key, payload)
        self._note(key)

    def put_export(self, key: str, payload: dict[str, Any], manifest: dict[str, Any] | None,
                   files: dict[str, Path]) -> dict[str, Any]:
        """Store an export and its files; returns the payload as stored (with its files' digest)."""
        _, stored = self.store.put_export(key, payload, manifest, files)
        self._note(key)
        return stored

    def _note(self, key: str) -> None:
        with self._lock:
            self._measured.add(key)


def payload(record: Artifact | Load) -> dict[str, Any]:
    """A measured record as the store keeps it (a harness error: with the code that made it)."""
    data = record.to_json()
    if record.status.value == HARNESS_ERROR:
        data[HARNESS_CODE] = digests.all_code()
    return data


def reusable(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored record, unless it is a harness error that other code measured."""
    if stored is not None and stored.get("status") == HARNESS_ERROR and stored.get(HARNESS_CODE) != digests.all_code():
        return None
    return stored


@dataclass(frozen=True)
class Context:
    """One run's options and shared services, as every cell of it sees them."""

    matrix: Matrix  # probes, formats, timeout, probe modules, tolerances
    keys: Keys
    records: StoreView  # the store as this run sees it (--fresh, what it measured)
    run_dir: Path  # absolute: container backends mount its paths at the same place inside
    emit: ev.Listener
    stopping: threading.Event  # set on Ctrl-C or a fatal error: cells start nothing more
    tally: Tally

    @property
    def store(self) -> ResultsStore:
        return self.records.store

    @property
    def keras_unsafe(self) -> bool:
        return self.keys.keras_unsafe

    def module_args(self) -> list[str]:
        """The agent's arguments naming the matrix's own probe modules."""
        return [arg for module in self.matrix.probe_modules for arg in ("--probe-module", str(module))]

    def load_args(self) -> list[str]:
        """The agent's `load` options: probe modules, tolerances, Keras safe mode."""
        default = self.matrix.tolerance("default")
        args = [*self.module_args(), "--atol", repr(default.atol), "--rtol", repr(default.rtol)]
        for probe in self.matrix.probes:
            tol = self.matrix.tolerance(probe)
            args += ["--tolerance", f"{probe}={tol.atol!r},{tol.rtol!r}"]
        return args + (["--keras-unsafe"] if self.keras_unsafe else [])
