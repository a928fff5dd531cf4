"""The static check: an artifact's ops and attrs against a consumer's op
registry, with a model of what the consumer's loader tolerates.

Measured loader behaviour it models (TF 1.13-1.15, 2.3-2.5, 2.12, 2.18):
- An op the consumer lacks fails every graph loader.
- TF >= 2.5 ignores attrs its op definitions do not know (a 2.18 graph with
  VarHandleOp.debug_name loads in 2.12; a 2.11 Keras SavedModel whose
  functions set AssignVariableOp.validate_shape loads with
  tf.saved_model.load in 2.5). TF 2.0-2.4 does not (ATTRS_IGNORED_FROM):
  tf.saved_model.load and Keras' load_model instantiate every function of
  the library, so an unknown attr anywhere fails them (that 2.11 model fails
  in 2.3 and 2.4), while the Session loader of every release before 2.5
  checks a function body's attrs only when the function runs (the same
  model loads with it in 1.15, 2.3 and 2.4), and fails on unknown attrs of
  the main graph (2.18's VarHandleOp.debug_name in 2.4).
- TF 1.x SavedModel loaders remove, from the main graph, attrs the consumer
  does not know that hold the producer's default value (importer's
  _RemoveDefaultAttrs with the producer's stripped_op_list); function bodies
  and frozen GraphDefs (no producer op list) keep them, and those fail.
- TF 1.13 checks a function body's ops and attrs only when the function runs
  (see LAZY_FUNCTION_CHECK_BELOW); its Session loader runs the functions the
  serving signature and the restore op reach, so what sits only in other
  functions (a 2.x SavedModel's save function) does not stop the load. The
  artifact records which ops and attrs those are (lazy_ops, lazy_attrs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.agent import catalog

GRAPH_FORMATS = (*catalog.SAVED_MODELS, "frozen_graph", *catalog.KERAS_SAVED_MODELS)  # formats holding TF graphs
GRAPH_LOADERS = ("tf1_session", "tf2_load", "import_graph_def", "keras2")  # loaders that build TF graphs
SAVED_MODEL_LOADERS = ("tf1_session", "tf2_load", "keras2")
# Consumers older than this check function bodies only when a function runs.
# Measured (default matrix, 2.12 SavedModels whose save function holds
# DisableCopyOnRead): the tf1_session load and serving run succeed in 1.13.2,
# and fail at load with "Op type not registered 'DisableCopyOnRead'" in 1.14.0
# and 1.15.5, which check the whole function library. Older 1.x is assumed to
# behave like 1.13 (not measured).
LAZY_FUNCTION_CHECK_BELOW = (1, 14)
LAZY_LOADERS = ("tf1_session",)  # the loader whose run the artifact's lazy sets describe
LAZY_REASON = "only in functions the serving signature and restore never call; TF < 1.14 checks them when they run"
ATTRS_IGNORED_FROM = (2, 5)  # consumers from this release on ignore attrs their op definitions do not know
# Before 2.5 the Session loader checks a function body's attrs only when it runs (ops at
# load from 1.14): measured on 1.15, 2.3 and 2.4 with 2.4 / 2.11 Keras SavedModels.
LAZY_ATTR_REASON = ("only in functions the serving signature and restore never call; "
                    "the TF < 2.5 Session loader checks a function body's attrs when it runs")


@dataclass(frozen=True)
class Static:
    missing_ops: tuple[str, ...]  # the consumer lacks them and the load is predicted to fail
    missing_attrs: tuple[str, ...]  # "Op.attr": unknown to the consumer and predicted to fail
    tolerated_attrs: tuple[str, ...]  # unknown to the consumer, predicted harmless (see reasons)
    reasons: tuple[tuple[str, str], ...] = ()  # ("Op.attr" or "Op", why tolerated)
    tolerated_ops: tuple[str, ...] = ()  # the consumer lacks them, predicted harmless (see reasons)

    @property
    def names(self) -> tuple[str, ...]:
        return self.missing_ops + self.missing_attrs

    def as_dict(self) -> dict[str, Any]:
        return {"missing_ops": list(self.missing_ops), "missing_attrs": list(self.missing_attrs),
                "tolerated_attrs": list(self.tolerated_attrs), "tolerated_ops": list(self.tolerated_ops),
                "reasons": dict(self.reasons)}


def static_check(op_attrs: dict[str, list[str]], registry: dict[str, Any],
                 default_attrs: dict[str, list[str]] | None = None, loader: str | None = None,
                 lazy_ops: list[str] | None = None, lazy_attrs: dict[str, list[str]] | None = None) -> Static:
    """Every op of the artifact the consumer lacks, and every attr set on a node
    that the consumer's definition of that op does not know, split into those
    predicted to fail and those the consumer's loader is known to tolerate.
    lazy_ops, lazy_attrs: what the artifact holds only in functions its load
    never runs (sandbox.check.graph, Graph.run)."""
    ops = registry.get("ops", {})
    lazy = _checks_lazily(registry, loader)
    missing = sorted(op for op in op_attrs if op not in ops)
    tolerated_ops = tuple(op for op in missing if lazy and op in (lazy_ops or []))
    unknown = sorted((op, attr) for op, attrs in op_attrs.items() if op in ops
                     for attr in attrs if attr not in set(ops[op].get("attrs", [])))
    failing, tolerated = [], []
    lazy_attr = _checks_attrs_lazily(registry, loader)
    for op, attr in unknown:
        is_lazy = attr in (lazy_attrs or {}).get(op, [])
        why = _tolerated(op, attr, registry, default_attrs, loader) or (
            LAZY_REASON if lazy and is_lazy else LAZY_ATTR_REASON if lazy_attr and is_lazy else None)
        (tolerated.append((f"{op}.{attr}", why)) if why else failing.append(f"{op}.{attr}"))
    return Static(tuple(op for op in missing if op not in tolerated_ops), tuple(failing),
                  tuple(n for n, _ in tolerated), tuple(tolerated) + tuple((op, LAZY_REASON) for op in tolerated_ops),
                  tolerated_ops)


TFLITE_FORMATS = catalog.TFLITE
FLEX = "custom:Flex"  # select TF ops: custom ops the Flex delegate runs


def interpreter(registry: dict[str, Any], loader: str | None = None) -> dict[str, Any] | None:
    """What the registry measured of one TFLite interpreter (`loader`: its
    loader; None: the cell's own): {"ops": {op: highest version}, "flex": bool}.
    Older registries hold only the cell's own interpreter's ops."""
    found = registry.get("interpreters")
    if isinstance(found, dict) and found:
        entry = found.get(loader) if loader else next(iter(found.values()))
        return entry if isinstance(entry, dict) else None
    ops = registry.get("tflite_ops")
    return {"ops": ops, "flex": None} if isinstance(ops, dict) and loader in (None, "tflite_interpreter") else None


def tflite_check(tflite_ops: dict[str, int], registry: dict[str, Any], loader: str | None = None) -> Static | None:
    """A flatbuffer's builtin ops against the highest version of each that the
    consumer's interpreter resolves (measured by the registry verb): "WHILE"
    where it lacks the op, "FULLY_CONNECTED@v9" where it lacks that version;
    its select TF ops ("FlexSinh") where the interpreter has no Flex delegate.
    Other custom ops are the user's to register: not checked. None when the
    registry holds no measurement of that interpreter."""
    found = interpreter(registry, loader)
    runtime = found.get("ops") if found else None
    if not isinstance(runtime, dict):
        return None
    missing = []
    for op, version in sorted(tflite_ops.items()):
        if op.startswith(FLEX):
            if found and found.get("flex") is False:
                missing.append(op[len("custom:"):])
        elif op.startswith("custom:"):
            continue
        elif op not in runtime:
            missing.append(op)
        elif version > runtime[op]:
            missing.append(f"{op}@v{version}")
    return Static(tuple(missing), (), ())


def _checks_lazily(registry: dict[str, Any], loader: str | None) -> bool:
    version = _version(registry.get("tensorflow"))
    return loader in LAZY_LOADERS and version is not None and version < LAZY_FUNCTION_CHECK_BELOW


def _checks_attrs_lazily(registry: dict[str, Any], loader: str | None) -> bool:
    version = _version(registry.get("tensorflow"))
    return loader in LAZY_LOADERS and version is not None and version < ATTRS_IGNORED_FROM


def _tolerated(op: str, attr: str, registry: dict[str, Any], default_attrs: dict[str, list[str]] | None,
               loader: str | None) -> str | None:
    if loader is None:  # no loader model: every unknown attr counts
        return None
    if (_version(registry.get("tensorflow")) or (0, 0)) >= ATTRS_IGNORED_FROM:
        return "TF >= 2.5 ignores attrs its op definitions do not know"
    if loader in SAVED_MODEL_LOADERS and attr in (default_attrs or {}).get(op, []):
        return "holds the producer's default value; the SavedModel loader strips it"
    return None


def _version(version: Any) -> tuple[int, int] | None:
    """(major, minor) of "1.13.2"; None when unknown (the strictest model applies)."""
    parts = str(version).split(".") + ["0"]
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        return None
