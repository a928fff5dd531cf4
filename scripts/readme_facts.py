"""Write the README's facts from the published reports: every count, range and
"version X writes Y" it states about reports/tf-map and reports/default.

    python scripts/readme_facts.py          # after republishing a report

The README marks each fact, inline or as a block, with HTML comments that
GitHub does not show:

    <!-- fact:map-loads -->90,402<!-- /fact -->
    <!-- fact:map-headline -->
    ...
    <!-- /fact -->

This script fills every marked fact from the reports' results.json (it fails,
naming the claim, where the data no longer says what the README's words around
it say); tests/test_readme.py checks that the README holds what it writes."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.matrix import BUILTIN_PROBES, FORMATS  # noqa: E402
from sandbox.records import ArtifactStatus  # noqa: E402
from sandbox.report import document, headline, markdown  # noqa: E402
from sandbox.report.document import LoadRow, ResultsDocument  # noqa: E402
from sandbox.report.tables import grids, healthy, labels, op_table, runs  # noqa: E402
from sandbox.report.verdict import FAILS, OK, devices  # noqa: E402

README = ROOT / "README.md"
MAP = ROOT / "reports" / "tf-map" / "results.json"
DEFAULT = ROOT / "reports" / "default" / "results.json"
FACT = re.compile(r"<!-- fact:(?P<name>[\w-]+) -->(?P<value>.*?)<!-- /fact -->", re.S)
GRAPHS = ("saved_model", "saved_model_tf1", "frozen_graph")
# The excerpt of the default report's op table the README shows: the seed stories' ops, and pairs of them.
OPS = ("BatchMatMulV2", "FusedBatchNormV3", "Einsum", "Conv2D.explicit_paddings", "DisableCopyOnRead",
       "VarHandleOp.debug_name", "MatMul.grad_a")



class ClaimError(RuntimeError):
    """The data no longer says what the README's words say: rewrite the words."""


def facts(tf_map: ResultsDocument, default: ResultsDocument) -> dict[str, str]:
    """Every fact the README marks, by name."""
    out = {"map-headline": "\n" + "\n".join(headline.lines(tf_map)) + "\n",
           "map-claims": "\n" + "\n".join(claims(tf_map)) + "\n",
           "default-grid": "\n" + grid_excerpt(default, "saved_model_tf1", "tf1_session") + "\n",
           "default-ops": "\n" + ops_excerpt(default) + "\n",
           "keras-v3-writers": keras_v3_writers(tf_map),
           "default-probes": _selection(default)}
    for prefix, results in (("map", tf_map), ("default", default)):
        out[f"{prefix}-cells"] = str(len(healthy(results)))
        out[f"{prefix}-exports"] = f"{len(results.artifacts):,}"
        out[f"{prefix}-loads"] = f"{len(results.loads):,}"
    return out


def _selection(results: ResultsDocument) -> str:
    probes, formats = results.probes, results.formats
    return (f"{len(probes)} of the {len(BUILTIN_PROBES)} built-in probes and {len(formats)} of the "
            f"{len(FORMATS)} formats")


def grid_excerpt(results: ResultsDocument, fmt: str, loader: str) -> str:
    grid = next(g for g in grids(results) if (g.format, g.loader) == (fmt, loader))
    names = {c: c.rsplit("-", 1)[0] if c.endswith("-cpu") else c.replace("-cpu", "") for c in grid.consumers}
    rows = [[names[p], *(markdown.square_text(grid.square(p, c)) for c in grid.consumers)] for p in grid.producers]
    head = "| producer \\ consumer | " + " | ".join(names[c] for c in grid.consumers) + " |"
    line = "|" + "---|" * (len(grid.consumers) + 1)
    return "\n".join([head, line] + ["| " + " | ".join(r) + " |" for r in rows])


def ops_excerpt(results: ResultsDocument) -> str:
    pairs, rows = op_table(results)
    shown = [r for r in rows if r.name in OPS]
    names = labels(results)
    used = sorted({p for r in shown for p, mark in r.marks.items() if mark in ("both", "observed", "predicted")})
    short = {p: " -> ".join(_minor(names[c]) for c in p.split(" → ")) for p in used}
    head = "| op / attr | " + " | ".join(short[p] for p in used) + " |"
    line = "|" + "---|" * (len(used) + 1)
    body = ["| `" + r.name + "` | " + " | ".join(r.marks.get(p, "") if r.marks.get(p) != "predicted, yet loaded" else ""
                                                  for p in used) + " |" for r in sorted(shown, key=lambda r: OPS.index(r.name))]
    return "\n".join([head, line, *body])


def _minor(label: str) -> str:
    """"2.18.1 +tf-keras" -> "2.18 +tf-keras"."""
    version, _, rest = label.partition(" ")
    return " ".join([".".join(version.split(".")[:2]), rest]).strip()


def keras_v3_writers(results: ResultsDocument) -> str:
    """"Keras 2.12+, Keras 3": the Keras of the oldest producer that wrote a .keras file."""
    writers = {a.producer: str(a.writer or "") for a in results.artifacts
               if a.format == "keras_v3" and a.status is ArtifactStatus.EXPORTED}
    first = next(c for c in healthy(results) if c in writers)
    found = re.match(r"keras (\d+\.\d+)", writers[first])
    if not found:
        raise ClaimError(f"keras_v3: the first writer {first} names no Keras version ({writers[first]!r})")
    return f"Keras {found.group(1)}+"


def claims(results: ResultsDocument) -> list[str]:
    """What the map's measurements say, each sentence's versions from the data."""
    return [claim(results) for claim in CLAIMS]


def _writer(results: ResultsDocument, name: str, formats: tuple[str, ...] = GRAPHS) -> str:
    found = headline.first_writer(results, name, formats)
    if not found or not found[1]:
        raise ClaimError(f"{name}: not written by every producer from its first on ({found})")
    return found[0]


def _failing(results: ResultsDocument, name: str, formats: tuple[str, ...] = GRAPHS) -> list[LoadRow]:
    return [l for l in results.loads if name in l.names and l.format in formats]


def _before(results: ResultsDocument, label: str) -> str:
    names = labels(results)
    ids = healthy(results)
    return names[ids[[names[c] for c in ids].index(label) - 1]]


def _consumers(results: ResultsDocument, loads: list[LoadRow]) -> str:
    return runs(healthy(results), {l.consumer for l in loads}, labels(results))


def _fused_batch_norm(results: ResultsDocument) -> str:
    first = _writer(results, "FusedBatchNormV3")
    previous = _before(results, first)
    failing = _failing(results, "FusedBatchNormV3")
    if {l.category for l in failing} != {"op-not-registered"}:
        raise ClaimError("FusedBatchNormV3: not every failure naming it is op-not-registered")
    bare = sorted({labels(results)[l.consumer] for l in failing if l.error_type == "KeyError"})
    return (f"- `FusedBatchNormV3` is emitted from TF **{first}** on ({previous}'s `fused_batch_norm` still writes "
            "`FusedBatchNorm`), and an older consumer fails because the op is not *registered*, not because a "
            "kernel is missing." + (f" TF {', '.join(bare)}'s SavedModel loader reports it as a bare "
                                    "`KeyError: 'FusedBatchNormV3'`." if bare else ""))


def _batch_matmul(results: ResultsDocument) -> str:
    first = _writer(results, "BatchMatMulV2")
    consumers = _consumers(results, _failing(results, "BatchMatMulV2"))
    return (f"- `BatchMatMulV2` (rank-3 `matmul`) is written from TF **{first}** on and fails only in consumers "
            f"that predate it ({consumers}); the Python version plays no part.")


def _explicit_paddings(results: ResultsDocument) -> str:
    first = _writer(results, "Conv2D.explicit_paddings", ("frozen_graph",))
    consumers = _consumers(results, _failing(results, "Conv2D.explicit_paddings", ("frozen_graph",)))
    return (f"- A frozen graph from {first}+ fails in {consumers} on the `explicit_paddings` attr of `Conv2D` "
            "(with others); the static check names every missing op and attr, not only the first.")


def _debug_name(results: ResultsDocument) -> str:
    first = _writer(results, "VarHandleOp.debug_name", ("saved_model",))
    grid = next(g for g in grids(results) if (g.format, g.loader) == ("saved_model", "tf1_session"))
    names = labels(results)
    later = grid.producers[[names[p] for p in grid.producers].index(first):]
    ones = [c for c in grid.consumers if names[c].startswith("1.")]
    if not all(grid.square(p, c).verdict == FAILS for p in later for c in ones):
        raise ClaimError(f"VarHandleOp.debug_name: SavedModels from >= {first} do not fail in every TF 1.x")
    return (f"- SavedModels from TF >= **{first}** carry `debug_name` on `VarHandleOp` and fail in every TF 1.x "
            f"({runs(grid.consumers, set(ones), names)}).")


def _disable_copy_on_read(results: ResultsDocument) -> str:
    first = _writer(results, "DisableCopyOnRead", ("saved_model",))
    serving = [l for l in _failing(results, "DisableCopyOnRead", ("saved_model",)) if l.loader == "tf1_session"]
    return (f"- TF **{first}**+ SavedModels hold `DisableCopyOnRead` in their save function: TF "
            f"{_consumers(results, serving)} refuse them at load (`tf1_session`); older TF fails on them "
            "earlier, for ops its serving graph reaches.")


def _keras(results: ResultsDocument) -> str:
    """Which probes' Keras 2 .h5 files Keras 3 loads, over ranges of producers that behave alike."""
    found, names, ids = devices(results), labels(results), healthy(results)
    writers = _keras2_writers(results)
    failing: dict[str, set[str]] = {p: set() for p in ids if p in writers}
    loaded: dict[str, set[str]] = {p: set() for p in failing}
    for l in results.loads:
        if l.format == "keras_h5" and l.loader == "keras3" and l.producer in failing:
            outcome = found.outcome(l)
            (failing if outcome == FAILS else loaded)[l.producer].update([l.probe] if outcome in (FAILS, OK) else [])
    groups: list[tuple[list[str], tuple[str, ...], bool]] = []
    for producer in failing:
        key = (tuple(sorted(failing[producer])), bool(loaded[producer] - failing[producer]))
        if groups and groups[-1][1:] == key:
            groups[-1][0].append(producer)
        else:
            groups.append(([producer], *key))
    if not groups:
        raise ClaimError("keras_h5: no Keras 2 producer in the map")
    parts = [f"{runs(ids, set(ps), names)}: " + (f"all but {', '.join(bad)}" if bad else "all") if some else
             f"{runs(ids, set(ps), names)}: none" for ps, bad, some in reversed(groups)]
    return (f"- `.h5` files written by Keras 2 load in Keras 3 for these probes, by the TF that wrote them: "
            f"{'; '.join(parts)}. `.keras` files are written from {keras_v3_writers(results)}.")


def _keras2_writers(results: ResultsDocument) -> set[str]:
    return {a.producer for a in results.artifacts if str(a.writer or "").startswith("keras 2")}


CLAIMS: tuple[Callable[[ResultsDocument], str], ...] = (_fused_batch_norm, _batch_matmul, _explicit_paddings, _debug_name,
                                                _disable_copy_on_read, _keras)


def fill(text: str, found: dict[str, str]) -> str:
    """`text` with every marked fact replaced; a marker this script does not know is an error."""
    def value(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in found:
            raise ClaimError(f"README.md: unknown fact {name!r}")
        return f"<!-- fact:{name} -->{found[name]}<!-- /fact -->"
    return FACT.sub(value, text)


def main() -> None:
    found = facts(document.load(MAP), document.load(DEFAULT))
    README.write_text(fill(README.read_text(encoding="utf-8"), found), encoding="utf-8")


if __name__ == "__main__":
    main()
