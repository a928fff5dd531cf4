"""Format-independent views of a results document: grids, op table, failures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from sandbox import runtimes
from sandbox.matrix import REFERENCE
from sandbox.report.document import CellRow, ExportRow, LoadRow, ResultsDocument
from sandbox.report.verdict import (
    DEVICE,
    DIFFERS,
    ELSEWHERE,
    EXPORT,
    FAILS,
    HARNESS,
    NA,
    NONE,
    TRIED,
    Devices,
    Square,
    choose,
    devices,
)

Pair = tuple[str, str, str, str | None]  # producer, format, consumer, loader: a pair a page opens on


@dataclass(frozen=True)
class Grid:
    """The squares of one format and loader: producers x consumers, one outcome per probe
    in each (sandbox.report.verdict)."""

    format: str
    loader: str | None  # null in a document whose loads name none
    producers: list[str]
    consumers: list[str]
    probes: list[str]  # the order of each square's letters
    letters: dict[tuple[str, str], str]  # (producer, consumer) -> one outcome per probe
    # consumer -> the positions of the probes its squares are coloured for: those that need no device it lacks
    chosen: dict[str, tuple[int, ...]]
    # (producer, consumer) -> its loads that fail, differ, are device-bound or harness errors
    problems: dict[tuple[str, str], list[LoadRow]] = field(default_factory=dict)
    # producer -> its exports of this format that failed (error, crash, timeout, harness error)
    exports: dict[str, list[ExportRow]] = field(default_factory=dict)
    exporters: frozenset[str] = frozenset()  # cells that only export (role "producer"): they load nothing

    @property
    def readers(self) -> list[str]:
        """The consumers that load: every cell but those that only export."""
        return [c for c in self.consumers if c not in self.exporters]

    def square(self, producer: str, consumer: str, chosen: Sequence[int] | None = None) -> Square:
        letters = self.letters.get((producer, consumer), NONE * len(self.probes))
        return choose(letters, self.chosen[consumer] if chosen is None else chosen)


# What a reader needs to know of each format and loader (the agent's exporters.py and loaders.py).
FORMAT_TEXT = {
    "saved_model": "SavedModel written by tf.saved_model.save (TF2 API)",
    "saved_model_tf1": "SavedModel written by the TF1 SavedModelBuilder",
    "frozen_graph": "frozen GraphDef (.pb, variables folded into constants)",
    "keras_saved_model": "Keras model saved in the SavedModel format (Keras 2)",
    "keras_h5": "Keras .h5 (HDF5) file",
    "keras_v3": "Keras .keras file (the Keras 3 format; late Keras 2 releases write it too)",
    "tf_keras_saved_model": "Keras SavedModel written by tf-keras (Keras 2 beside a Keras 3 TF)",
    "tf_keras_h5": ".h5 file written by tf-keras (Keras 2 beside a Keras 3 TF)",
    "tf_keras_v3": ".keras file written by tf-keras (Keras 2 beside a Keras 3 TF)",
    "tflite_dynamic": "TensorFlow Lite flatbuffer, dynamic-range quantized weights",
    "tflite_int8": "TensorFlow Lite flatbuffer, full-integer (int8) quantized",
    "tflite": "TensorFlow Lite flatbuffer",
    "tflite_flex": "TensorFlow Lite flatbuffer with select TF ops (Flex)",
    "checkpoint": "tf.train.Checkpoint restored into the probe's own model code",
}
LOADER_TEXT = {
    "tf1_session": "tf.compat.v1.saved_model.loader.load into a Session (TF1 serving path)",
    "tf2_load": "tf.saved_model.load (TF2 API), serving_default signature",
    "import_graph_def": "tf.import_graph_def of a frozen GraphDef",
    "keras2": "Keras 2 load_model (tf.keras up to TF 2.15, else tf-keras)",
    "keras3": "Keras 3 keras.models.load_model",
    "tflite_interpreter": "tf.lite.Interpreter: allocate and invoke",
    "checkpoint_restore": "tf.train.Checkpoint.restore into the probe's variables",
    "ai_edge_litert": "LiteRT's interpreter (ai_edge_litert.interpreter, no TF): allocate and invoke",
    "tflite_runtime": "the tflite-runtime package's interpreter (no TF): allocate and invoke",
}
TITLES = {runtimes.TENSORFLOW: "TensorFlow", **{r.package: r.title for r in runtimes.RUNTIMES.values()}}
RANKS = {name: i for i, name in enumerate(TITLES)}  # TF cells first, then each runtime's


def runtime(cell: CellRow) -> dict[str, Any]:
    """What a cell runs (results.json's cell.runtime; documents before runtime
    cells hold TF cells only)."""
    return cell.runtime or {"name": runtimes.TENSORFLOW, "version": cell.tensorflow}


def healthy(results: ResultsDocument) -> list[str]:
    """The cells that ran: TF cells oldest first, then each runtime's cells
    oldest first (ties: the document's order)."""
    return [c.id for c in sorted(results.healthy, key=_order)]


def _order(cell: CellRow) -> tuple[int, Version]:
    found = runtime(cell)
    return RANKS.get(str(found.get("name")), len(RANKS)), _version(found.get("version") or cell.tensorflow)


def base_label(cell: CellRow) -> str:
    """"2.18.1", "2.23.0.dev20261026 nightly", "Keras 3.5.0 (jax 0.4.31)", "LiteRT 1.2.0"."""
    found = runtime(cell)
    if found.get("name") == runtimes.TENSORFLOW:
        return str(cell.tensorflow or cell.id) + (" nightly" if found.get("nightly") else "")
    name = str(found.get("name"))
    text = f"{TITLES.get(name, name)} {found.get('version')}"
    if found.get("backend"):
        backend = "tf" if found["backend"] == runtimes.TENSORFLOW else found["backend"]
        text += f" ({backend} {found.get('backend_version') or ''})".replace(" )", ")")
    return text


def span(results: ResultsDocument) -> str:
    """What the healthy cells run, as ranges: "TensorFlow 1.12.3 to 2.21.0, LiteRT 1.0.1 to 2.3.0"."""
    cells = results.cell()
    found: dict[str, list[str]] = defaultdict(list)
    for cell in healthy(results):
        found[runtime(cells[cell]).get("name") or runtimes.TENSORFLOW].append(str(runtime(cells[cell]).get("version")))
    return ", ".join(f"{TITLES.get(n, n)} {v[0]}" + (f" to {v[-1]}" if v[-1] != v[0] else "") for n, v in found.items())


def references(results: ResultsDocument, ids: list[str]) -> frozenset[str]:
    """The cells of `ids` that are a related map's (role reference): their pairs are measured there."""
    cells = results.cell()
    return frozenset(c for c in ids if cells[c].role == REFERENCE)


def has_references(results: ResultsDocument) -> bool:
    """Whether the document holds a related map's cells (role reference)."""
    return any(c.role == REFERENCE for c in results.cells)


def pairs(results: ResultsDocument) -> tuple[int, str]:
    """How many producer -> consumer pairs the document measured, and how they were chosen:
    every healthy cell that exports by every one that loads (roles), but for pairs of two
    references (a related map's cells: measured there)."""
    cells, ids = results.cell(), healthy(results)
    roles = {c: cells[c].role or "both" for c in ids}
    refs = references(results, ids)
    wrote = {a.producer for a in results.artifacts}  # an interpreter cell writes nothing: no producer
    n = sum(1 for p in ids for c in ids if roles[p] != "consumer" and p in wrote and roles[c] != "producer"
            and not (p in refs and c in refs))
    if all(r == "both" for r in roles.values()):
        return n, "every cell loaded every cell's models"
    return n, ("every cell that loads loaded the models of every cell that exports"
               + (", but for pairs of two reference cells (a related map's, measured there)" if refs else ""))


def _version(text: str | None) -> Version:
    try:
        return Version(text or "0")
    except InvalidVersion:
        return Version("0")


def extra_packages(cell: CellRow) -> list[str]:
    """The packages a cell installed beside TF ("tf-keras"), from its id's "+name" suffixes."""
    return [p for p in cell.id.split("+")[1:] if p]


def labels(results: ResultsDocument) -> dict[str, str]:
    """A short label per cell, unique in the document: the TF version (or the
    runtime and its version: base_label), and of the Python, image, backend and
    extra packages only what tells same-version cells apart ("2.18.1" and
    "2.18.1 +tf-keras")."""
    cells = results.cells
    facets = {c.id: {"python": f"py{c.python or ''}", "image": c.image or "",
                     "backend": "" if c.backend in (None, "venv") else c.backend,
                     "packages": " ".join(f"+{p}" for p in extra_packages(c))} for c in cells}
    by_tf: dict[str, list[str]] = defaultdict(list)
    for c in cells:
        by_tf[base_label(c)].append(c.id)
    out = {}
    for tf, ids in by_tf.items():
        differ = [k for k in ("python", "image", "backend", "packages") if len({facets[i][k] for i in ids}) > 1]
        for i in ids:
            out[i] = " ".join([tf, *(facets[i][k] for k in differ if facets[i][k])])
    if len(set(out.values())) < len(out):  # still ambiguous (the same cell planned twice?): the ids are unique
        return {c.id: c.id for c in cells}
    return out


def runs(ordered: Sequence[str], chosen: set[str], names: dict[str, str]) -> str:
    """`chosen` of `ordered` as ranges the way caniuse writes support: "<= 1.15",
    "2.0 – 2.9", ">= 2.10", "all"; "" when nothing is chosen."""
    if not chosen:
        return ""
    if set(ordered) <= chosen:
        return "all"
    parts, start = [], None
    for i, item in enumerate([*ordered, None]):
        inside = item is not None and item in chosen
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            first, last = names[ordered[start]], names[ordered[i - 1]]
            if start == 0 and i - 1 > 0:
                parts.append(f"<= {last}")
            elif i == len(ordered) and i - 1 > start:
                parts.append(f">= {first}")
            else:
                parts.append(first if start == i - 1 else f"{first} – {last}")
            start = None
    return ", ".join(parts)


def probe_order(results: ResultsDocument) -> list[str]:
    """The document's probes, then any other probe its records name."""
    declared = list(results.probes)
    seen = {l.probe for l in results.loads} | {a.probe for a in results.artifacts}
    return declared + sorted(seen - set(declared))


def grids(results: ResultsDocument, found: Devices | None = None) -> list[Grid]:
    """One grid per format and loader (`found`: devices(results), when the caller has it)."""
    devs = devices(results) if found is None else found
    ids, probes = healthy(results), probe_order(results)
    at = {p: i for i, p in enumerate(probes)}
    by: dict[tuple[str, str | None], dict[tuple[str, str], list[LoadRow]]] = defaultdict(lambda: defaultdict(list))
    for load in results.loads:
        by[(load.format, load.loader)][load.pair].append(load)
    failed: dict[tuple[str, str], list[ExportRow]] = defaultdict(list)
    for artifact in results.artifacts:
        if artifact.failed:
            failed[(artifact.producer, artifact.format)].append(artifact)
    chosen = {c: tuple(at[p] for p in devs.portable(probes, c)) for c in ids}
    cells = results.cell()
    exporters = frozenset(c for c in ids if cells[c].role == "producer")  # cells that only export: they load nothing
    apart = references(results, ids)
    order = {f: i for i, f in enumerate(results.formats)}
    out = []
    for (fmt, loader) in sorted(by, key=lambda k: (order.get(k[0], 99), k[1])):
        pairs = by[(fmt, loader)]
        producers = [p for p in ids if failed.get((p, fmt)) or any(pairs.get((p, c)) for c in ids)]
        # a consumer none of whose loads of this grid applied has no such loader: an export that
        # failed left nothing it could have tried
        readers = {c for (_, c), loads in pairs.items() if any(l.status.applicable for l in loads)}
        letters = {(p, c): ELSEWHERE * len(at) if p in apart and c in apart else
                   _letters(pairs.get((p, c), []), failed.get((p, fmt), []), c in readers, at, devs)
                   for p in producers for c in ids}
        problems = {key: bad for key in letters if (bad := [l for l in pairs.get(key, []) if devs.outcome(l) in
                                                            (FAILS, DIFFERS, DEVICE, HARNESS)])}
        exports = {p: failed[(p, fmt)] for p in producers if failed.get((p, fmt))}
        out.append(Grid(fmt, loader, producers, ids, probes, letters, chosen, problems, exports, exporters))
    return out


def default_pair(found: list[Grid]) -> Pair | None:
    """(producer, format, consumer, loader): the pair a page opens on. Not the worst pair (it
    answers nobody's question) but the one most readers bring: "I save with a current
    TensorFlow: how old may the TensorFlow be that loads it?". So the newest producer that
    wrote the first format (grids follow the matrix's order of formats: saved_model first), with
    the loader that loads its model in the most consumers, and the oldest consumer that loads it
    (the producer's own cell when none does)."""
    if not found:
        return None
    best: tuple[int, str, str, str, str | None] | None = None
    for grid in (g for g in found if g.format == found[0].format):
        wrote = [p for p in grid.producers if any(set(grid.letters[(p, c)]) & TRIED for c in grid.consumers)]
        if not wrote:
            continue
        producer = wrote[-1]
        loads_in = [c for c in grid.consumers if grid.square(producer, c).loads]
        consumer = loads_in[0] if loads_in else (producer if producer in grid.consumers else grid.consumers[0])
        if best is None or len(loads_in) > best[0]:
            best = (len(loads_in), producer, grid.format, consumer, grid.loader)
    return best[1:] if best else None


def _letters(loads: list[LoadRow], failed: list[ExportRow], reads: bool, at: dict[str, int],
             devs: Devices) -> str:
    row = [NONE] * len(at)
    for load in loads:
        row[at[load.probe]] = devs.outcome(load)
    for artifact in failed:
        if row[at[artifact.probe]] == NONE:
            row[at[artifact.probe]] = EXPORT if reads else NA
    return "".join(row)


def pair(producer: str, consumer: str) -> str:
    return f"{producer} → {consumer}"


@dataclass(frozen=True)
class OpRow:
    name: str  # "FusedBatchNormV3" or "VarHandleOp.debug_name"
    marks: dict[str, str]  # "producer → consumer" -> "observed" | "predicted" | "both"
    formats: list[str]


def op_table(results: ResultsDocument) -> tuple[list[str], list[OpRow]]:
    """Rows: each op or op.attr named by a failure (observed) or by the
    static check (predicted); columns: the pairs where it fails."""
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    formats: dict[str, set[str]] = defaultdict(set)
    for load in results.loads:
        where = pair(load.producer, load.consumer)
        for name in load.names:
            seen[name][where].add("observed")
            formats[name].add(load.format)
        static = load.static or {}
        loaded = load.status.worked
        for name in (static.get("missing_ops") or []) + (static.get("missing_attrs") or []):
            # A prediction the real load contradicts: the static check is wrong,
            # or the loader drops or ignores that attr.
            seen[name][where].add("predicted, yet loaded" if loaded else "predicted")
            formats[name].add(load.format)
    pairs = sorted({p for marks in seen.values() for p in marks})
    rows = [OpRow(name, {p: _mark(kinds) for p, kinds in marks.items()}, sorted(formats[name]))
            for name, marks in sorted(seen.items())]
    return pairs, rows


def _mark(kinds: set[str]) -> str:
    if "observed" in kinds and "predicted" in kinds:
        return "both"
    return "observed" if "observed" in kinds else sorted(kinds)[-1]


def first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def measured(cell: CellRow) -> str:
    """When the cell's environment last measured (its registry, recorded by the run): "2026-12-01"."""
    return str(cell.environment.get("measured") or "")[:10]


def cell_environment(cell: CellRow) -> list[tuple[str, str]]:
    """(name, version) of what a cell ran: Python, TF, numpy, Keras, key packages."""
    env = cell.environment
    found = [("Python", env.get("python") or cell.python),
             ("TensorFlow", env.get("tensorflow") or cell.tensorflow), ("numpy", env.get("numpy")),
             ("keras", env.get("keras")), ("tf_keras", env.get("tf_keras"))]
    packages = env.get("packages") or {}
    found += [(name, version) for name, version in sorted(packages.items()) if name not in ("keras", "tf_keras")]
    return [(name, str(version)) for name, version in found if version]
