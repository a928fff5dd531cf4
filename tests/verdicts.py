"""The verdicts a report must show, computed here from results.json by the few
plain lines of the rules its legend states, never by the code that renders it
(sandbox.report.verdict, tables, findings): the tests compare the two.

The rules: a load that failed is a device finding when its probe needs a device
(declared in its export records, or: it never ran on a consumer without a GPU
and a kernel was missing there) the consumer lacks, or when a kernel was missing
(category missing-kernel); else a version finding. harness-error is our bug. A
square's verdict over the probes that count is the first of fails, differs,
harness error, ok, device-bound, export failed, n/a among them; it loads when
it is ok and none of them is device-bound. By default a consumer counts the
probes that need no device it lacks. A pair of two reference cells (a related
map's) is that map's: "another map's", not measured here, where the producer
wrote the format (another consumer has a square of it)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from packaging.version import Version

from sandbox.report.document import ResultsDocument

FAILED = {"load-error", "run-error", "crash", "timeout"}
ORDER = ["fails", "differs", "harness error", "ok", "device-bound", "export failed", "n/a"]
Key = tuple[str, str, str, str]  # format, loader, producer, consumer


def gpu(cell: dict[str, Any]) -> bool:
    return ((cell.get("environment") or {}).get("gpus") or 0) > 0


def needs(results: dict[str, Any]) -> dict[str, str]:
    """probe -> the device it needs."""
    found = {a["probe"]: a["device"] for a in results["artifacts"] if a.get("device")}
    cpu_only = {c["id"] for c in results["cells"] if not gpu(c)}
    ran, missing = set(), set()
    for l in results["loads"]:
        if l["consumer"] in cpu_only and l["probe"] not in found:
            if l["status"] in ("ok", "outputs-differ"):
                ran.add(l["probe"])
            if l["status"] in FAILED and l.get("category") == "missing-kernel":
                missing.add(l["probe"])
    return {**found, **{p: "GPU" for p in missing - ran}}


def outcome(load: dict[str, Any], need: dict[str, str], gpus: set[str]) -> str:
    status = load["status"]
    if status in ("ok", "outputs-differ", "not-applicable"):
        return {"ok": "ok", "outputs-differ": "differs", "not-applicable": "n/a"}[status]
    if status not in FAILED:
        return "harness error"
    lacks = load["probe"] in need and load["consumer"] not in gpus
    return "device-bound" if lacks or load.get("category") == "missing-kernel" else "fails"


class Expected:
    """Every square's outcomes per probe, and its verdict for a choice of probes."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.need = needs(results)
        self.gpus = {c["id"] for c in results["cells"] if gpu(c)}
        self.references = {c["id"] for c in results["cells"] if c.get("role") == "reference"}
        self.cells = [c["id"] for c in sorted((c for c in results["cells"] if c["status"] == "ok"),
                                              key=lambda c: Version(c["tensorflow"]))]
        self.probes = sorted({l["probe"] for l in results["loads"]} | {a["probe"] for a in results["artifacts"]})
        self.squares: dict[Key, dict[str, str]] = defaultdict(dict)
        for l in results["loads"]:
            self.squares[(l["format"], l["loader"], l["producer"], l["consumer"])][l["probe"]] = \
                outcome(l, self.need, self.gpus)
        readers = {(f, ld, c) for (f, ld, _, c), found in self.squares.items() if set(found.values()) != {"n/a"}}
        grids = {(f, ld) for f, ld, _, _ in self.squares}
        for a in results["artifacts"]:
            if a["status"] in ("exported", "not-applicable") or a["producer"] not in self.cells:
                continue
            for f, ld in grids:
                for c in self.cells if f == a["format"] else []:
                    square = self.squares[(f, ld, a["producer"], c)]
                    square.setdefault(a["probe"], "export failed" if (f, ld, c) in readers else "n/a")

    def counted(self, consumer: str, probes: str = "") -> list[str]:
        """The probes that count: "" the device-portable ones, "all", or a comma list."""
        if probes == "all":
            return self.probes
        if probes:
            return probes.split(",")
        return [p for p in self.probes if p not in self.need or consumer in self.gpus]

    def verdict(self, key: Key, probes: str = "") -> str:
        if key[2] in self.references and key[3] in self.references and self.writes(*key[:3]):
            return "another map's"
        found = self.squares.get(key, {})
        mine = {found[p] for p in self.counted(key[3], probes) if p in found}
        return next((v for v in ORDER if v in mine), "none")

    def writes(self, fmt: str, loader: str, producer: str) -> bool:
        """Whether any consumer has a square of this producer's files of `fmt` (loads or a failed export)."""
        return any((fmt, loader, producer, c) in self.squares for c in self.cells)

    def loads(self, key: Key, probes: str = "") -> bool:
        found = self.squares.get(key, {})
        mine = [found[p] for p in self.counted(key[3], probes) if p in found]
        return self.verdict(key, probes) == "ok" and "device-bound" not in mine

    def newest_producer(self, fmt: str, loader: str, consumer: str, probes: str = "") -> str:
        found = [p for p in self.cells if self.loads((fmt, loader, p, consumer), probes)]
        return found[-1] if found else ""

    def oldest_consumer(self, fmt: str, loader: str, producer: str, probes: str = "") -> str:
        found = [c for c in self.cells if self.loads((fmt, loader, producer, c), probes)]
        return found[0] if found else ""


_MADE: dict[int, tuple[dict[str, Any] | ResultsDocument, Expected]] = {}


def expected_of(results: dict[str, Any] | ResultsDocument) -> Expected:
    """Expected(results), made once per document (the tests never change a document once made);
    of a ResultsDocument, from its JSON as results.json holds it."""
    found = _MADE.get(id(results))
    if found is None or found[0] is not results:
        data = results.to_json() if isinstance(results, ResultsDocument) else results
        found = _MADE[id(results)] = (results, Expected(data))
    return found[1]
