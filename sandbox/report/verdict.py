"""The verdict model of a report: what one load says, and what a producer ->
consumer square says for the probes a reader cares about.

One load (or missing load) has one outcome, a letter in the page's data:

- ``o`` ok, ``d`` differs: it loaded and ran; its outputs match the producer's, or not;
- ``f`` fails: TensorFlow or Keras refused to load or run it: a version finding;
- ``g`` device-bound: it needs a device the consumer lacks. Either its probe
  declares one (``device = "GPU"``: ops with GPU kernels only) and the consumer
  has none, or it failed for a kernel missing on the consumer's devices. A
  device finding, never a version finding;
- ``h`` harness error: sandbox's own code failed: a bug of ours, not a finding;
- ``n`` n/a: the consumer has no such loader;
- ``x`` export failed: the producer's export of this probe and format failed
  (error, crash, timeout, harness error), so there was nothing to load;
- ``-`` nothing: the producer does not write it.

A square holds one outcome per probe. Its verdict for the chosen probes is
the first of fails, differs, harness error, ok, device-bound, export failed,
n/a that is present: a version finding decides it; a harness error hides what
its probe would have done, so a square holding one is never "ok";
device-bound probes and failed exports are marks beside the verdict, and
its colour only when they are all it holds. A square "loads" (the newest
producer, the oldest consumer) when it is ok with no device-bound probe among
those chosen. The default choice is the device-portable probes: for each
consumer, every probe that needs no device it lacks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sandbox.records import LoadStatus
from sandbox.report.document import CellRow, LoadRow, ResultsDocument

OK, DIFFERS, FAILS, DEVICE, HARNESS, NA, EXPORT, NONE = "o", "d", "f", "g", "h", "n", "x", "-"
ELSEWHERE = "e"  # a pair of two reference cells: the related map's, not measured here
# The verdict of a square is the first of these among its chosen probes' outcomes.
PRECEDENCE = (FAILS, DIFFERS, HARNESS, OK, DEVICE, EXPORT, NA, ELSEWHERE)
# Outcomes shown as a mark beside another verdict.
APART = (DEVICE, EXPORT, HARNESS)
# Outcomes that are version findings: TensorFlow or Keras refused it, or it computed otherwise.
VERSION_FINDINGS = frozenset((FAILS, DIFFERS))
# Outcomes of a load that was tried (k/n: k of these n fail).
TRIED = frozenset((OK, DIFFERS, FAILS, DEVICE, HARNESS))
WORDS = {OK: "ok", DIFFERS: "differs", FAILS: "fails", DEVICE: "device-bound", HARNESS: "harness error",
         NA: "n/a", EXPORT: "export failed", NONE: "none", ELSEWHERE: "another map's"}
SLUGS = {OK: "ok", DIFFERS: "differs", FAILS: "fails", DEVICE: "device", HARNESS: "harness", NA: "na",
         EXPORT: "export", NONE: "none", ELSEWHERE: "elsewhere"}
LEGEND = {
    OK: "every probe that counts loads, with the producer's outputs",
    DIFFERS: "loads, but some outputs differ from the producer's",
    FAILS: "TensorFlow or Keras refuses it: a version finding (k/n: k of n probes fail)",
    DEVICE: "a probe needs a device this consumer lacks (a GPU-only op): not a version finding",
    HARNESS: "sandbox's own code failed: a bug of ours, not a finding",
    NA: "this consumer has no such loader",
    EXPORT: "the producer's export failed (error, crash, timeout): nothing to load",
    NONE: "the producer does not write this",
    ELSEWHERE: "both cells are a related map's (references): the pair is measured there, not here",
}
GPU = "GPU"
_PLAIN = {LoadStatus.OK: OK, LoadStatus.OUTPUTS_DIFFER: DIFFERS, LoadStatus.NOT_APPLICABLE: NA}
_CPU = frozenset({"CPU"})


@dataclass(frozen=True)
class Devices:
    """Which probes need which device, and which devices each cell has."""

    needs: dict[str, str]  # probe -> the device it needs ("GPU")
    why: dict[str, str]  # probe -> how that is known: "declared by the probe" or what the loads showed
    has: dict[str, frozenset[str]]  # cell -> its devices

    def outcome(self, load: LoadRow) -> str:
        status = load.status
        if status in _PLAIN:
            return _PLAIN[status]
        if not status.failed:  # a harness error: not a finding
            return HARNESS
        need = self.needs.get(load.probe)
        if need and need not in self.has.get(load.consumer, _CPU):
            return DEVICE
        return DEVICE if load.category == "missing-kernel" else FAILS

    def portable(self, probes: Iterable[str], consumer: str) -> list[str]:
        """The probes that need no device `consumer` lacks: what its squares are judged by, by default."""
        has = self.has.get(consumer, _CPU)
        return [p for p in probes if self.needs.get(p, "CPU") in has]


def cell_devices(cell: CellRow) -> frozenset[str]:
    gpus = cell.environment.get("gpus")
    return _CPU | {GPU} if isinstance(gpus, int) and gpus > 0 else _CPU


def devices(results: ResultsDocument) -> Devices:
    """Declared needs (each artifact record carries its probe's), and for a probe
    that declares none but never ran on a consumer without a GPU, where a kernel
    was missing for it (a document written before probes declared it, a user's
    probe that does not say): a GPU too."""
    has = {c.id: cell_devices(c) for c in results.cells}
    needs = {a.probe: str(a.device) for a in results.artifacts if a.device}
    why = {p: "declared by the probe" for p in needs}
    for probe, kernels in _gpu_only(results.loads, has, set(needs)).items():
        needs[probe] = GPU
        why[probe] = f"it ran on no consumer without a GPU, where {', '.join(kernels)} had no kernel"
    return Devices(needs, why, has)


def _gpu_only(loads: list[LoadRow], has: dict[str, frozenset[str]], known: set[str]) -> dict[str, list[str]]:
    ran: set[str] = set()
    kernels: dict[str, set[str]] = defaultdict(set)
    for load in loads:
        probe = load.probe
        if probe in known or GPU in has.get(load.consumer, _CPU):
            continue
        if load.status.worked:
            ran.add(probe)
        elif load.status.failed and load.category == "missing-kernel":
            kernels[probe].update(load.names or ["an op"])
    return {p: sorted(names) for p, names in kernels.items() if p not in ran}


@dataclass(frozen=True)
class Square:
    """The outcomes of the chosen probes in one producer -> consumer square, and
    of every probe (what is shown apart is shown whatever the choice)."""

    letters: str
    every: str = ""

    @property
    def verdict(self) -> str:
        return next((v for v in PRECEDENCE if v in self.letters), NONE)

    @property
    def marks(self) -> tuple[str, ...]:
        """What is shown apart beside the verdict (device-bound, export failed, harness error)."""
        return tuple(m for m in APART if m in (self.every or self.letters) and m != self.verdict)

    @property
    def failed(self) -> int:
        return self.letters.count(FAILS)

    @property
    def tried(self) -> int:
        return sum(1 for x in self.letters if x in TRIED)

    @property
    def loads(self) -> bool:
        """Every chosen probe that was tried loads and matches, and none needs a device this consumer lacks."""
        return self.verdict == OK and DEVICE not in self.letters

    @property
    def text(self) -> str:
        """The square's few characters in a grid."""
        verdict = self.verdict
        if verdict == FAILS:
            return "✗" if self.failed == self.tried else f"{self.failed}/{self.tried}"
        return {OK: "ok", DIFFERS: "≠", DEVICE: "dev", HARNESS: "bug", NA: "n/a", EXPORT: "exp", ELSEWHERE: "↗"}.get(verdict, "")


def choose(letters: str, chosen: Sequence[int]) -> Square:
    """The square of the probes at positions `chosen` of `letters` (one outcome per probe)."""
    return Square("".join(letters[i] for i in chosen), letters)
