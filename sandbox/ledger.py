"""What a run last published in a report folder, and from which records: an
unchanged re-run finds that nothing changed and does nothing at all.

A run's plan key is a digest of everything that decides its document before
a record is read: the matrix file, the planned cells (facts, skips,
environment identities), the digests of the agent code each measurement runs,
the host code that turns records into a report, and the options. After a
run, the ledger entry of its report folder (a record of the results store,
kind "published", keyed by the folder's absolute path) keeps that key, the
records the document was made from with their files' stats (inode, size,
mtime, as git's index does), the digests of the published files, of the
document (its `created` aside), and its closing summary.

A re-run with the same plan key, whose entry was complete (the store held
every record the run needed), whose records are all still there unchanged
and whose report files are as published, has nothing to measure and nothing
to write: `unchanged` says so after a few stats and hashes, where reading the
records back takes seconds at the published map's size (90,000 loads). A
re-run that does read them (anything changed) rewrites the report only when
its document differs from the one published (`same_document`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox import __version__, digests
from sandbox.agent import catalog
from sandbox.report import document
from sandbox.report.publish import report_files
from sandbox.store import ResultsStore, StoreError
from sandbox.summary import Summary, from_json, to_json

if TYPE_CHECKING:
    from sandbox.records import CellResult
    from sandbox.runner import Run

KIND = "published"


@dataclass(frozen=True)
class Entry:
    plan: str
    complete: bool  # a re-run would find every record it needs in the store
    records: str  # "kind key inode size mtime_ns" per line: the records the document was made from
    files: dict[str, str]  # report file -> sha256 of its bytes as published
    document: str  # digest of the published document, `created` aside
    summary: Summary
    reused: dict[str, int]  # "export" / "load" -> records the document holds (a re-run's tally)

    def to_json(self) -> dict[str, Any]:
        return {"plan": self.plan, "complete": self.complete, "records": self.records, "files": self.files,
                "document": self.document, "summary": to_json(self.summary), "reused": self.reused}


def plan_key(run: Run, redact: bool, witness: bool = True) -> str:
    """Everything that decides a run's document before any record is read."""
    matrix, code = run.matrix, run.keys.code
    codes = [[p, f, code.export(p, f), [code.load(p, f, loader) for loader in catalog.loaders_for(f)]]
             for p in matrix.probes for f in matrix.formats]
    cells = [[c.result.facts, c.cell.skip, c.result.identity] for c in run.cells]
    code.save()
    return digests.of_json(["plan", __version__, digests.host_code(), str(matrix.path),
                            matrix.path.read_text(encoding="utf-8"), cells, codes, code.registry(),
                            run.keys.keras_unsafe, redact, witness])


def _key(out: Path) -> str:
    return digests.of_json(["published", str(out.resolve())])


def read(store: ResultsStore, out: Path) -> Entry | None:
    data = store.get(KIND, _key(out))
    if data is None:
        return None
    try:
        return Entry(str(data["plan"]), bool(data["complete"]), str(data["records"]), dict(data["files"]),
                     str(data["document"]), from_json(data["summary"]), dict(data["reused"]))
    except (KeyError, TypeError, ValueError):
        return None  # written by another version: the run takes the long way and writes a new one


def write(store: ResultsStore, out: Path, entry: Entry) -> None:
    """Keep `entry` for the next run; a store that cannot be written (read-only,
    full) only costs that run the long way."""
    try:
        store.put(KIND, _key(out), entry.to_json())
    except StoreError:
        pass


def unchanged(store: ResultsStore, entry: Entry | None, plan: str, out: Path) -> bool:
    """Whether a run with `plan` would measure nothing and publish what `out` holds."""
    return (entry is not None and entry.plan == plan and entry.complete
            and entry.records == records(store, _listed(entry.records)) and entry.files == files(out))


def _listed(text: str) -> list[tuple[str, str]]:
    return [(kind, key) for kind, key, *_ in (line.split(" ") for line in text.splitlines())]


def records(store: ResultsStore, held: list[tuple[str, str]]) -> str:
    """The records' lines: kind, key and their files' stats (a missing file: zeros)."""
    lines = []
    for (kind, key), path in zip(held, store.record_files(held)):
        try:
            st = os.stat(path)
            lines.append(f"{kind} {key} {st.st_ino} {st.st_size} {st.st_mtime_ns}")
        except OSError:
            lines.append(f"{kind} {key} 0 0 0")
    return "\n".join(lines)


def held(results: list[CellResult]) -> list[tuple[str, str]]:
    return [record for result in results for record in result.records()]


def files(out: Path) -> dict[str, str]:
    """sha256 of each report file in `out` ("" for one that is missing)."""
    found = {}
    for name in report_files():
        try:
            found[name] = _sha256(out / name)
        except OSError:
            found[name] = ""
    return found


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def document_digest(results: document.ResultsDocument) -> str:
    """A document's digest, when it was made aside: two runs that found the
    same records make the same document."""
    h = hashlib.sha256()
    for chunk in document.chunks(results, leave_out=("created",)):
        h.update(chunk.encode())
    return h.hexdigest()


def same_document(entry: Entry | None, digest: str, out: Path) -> bool:
    """Whether `out` holds, as published, the document whose digest is `digest`."""
    return entry is not None and entry.document == digest and entry.files == files(out)


def entry_for(plan: str, store: ResultsStore, results: list[CellResult], digest: str, out: Path,
              found: Summary) -> Entry:
    """The ledger entry of a run that just published (or kept) its report in `out`."""
    reused = {"export": sum(len(r.artifacts) for r in results), "load": sum(len(r.loads) for r in results)}
    return Entry(plan, all(r.complete for r in results), records(store, held(results)), files(out), digest,
                 found, reused)


def tally_line(entry: Entry) -> str:
    """The tally of a re-run that found everything unchanged."""
    return (f"measured 0 exports, 0 loads, 0 registries; reused {entry.reused['export']} exports, "
            f"{entry.reused['load']} loads from the store (unchanged: nothing read, nothing written)")

