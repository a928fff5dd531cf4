"""`sandbox check`: will this model load in TF X? A static verdict per loader
of X, from the model's contents (read without TensorFlow) against X's stored
registry, with the loader model of sandbox.check.static; no environment needed.

Loaders of one version disagree, so each gets its verdict:
- SavedModels: the TF1 Session loader (what TF Serving does: it checks what
  the serving signature and restore reach), tf.saved_model.load (TF 2.x: it
  instantiates every function) and, for Keras SavedModels, Keras' load_model.
- frozen GraphDefs: import_graph_def.
- .h5 / .keras: the Keras that X ships (tf.keras), or Keras X itself, from
  the layer classes, modules and config keys the file's config names (see
  keras_verdict).
- .tflite: the interpreter (TF's, or LiteRT's or tflite-runtime's X), from op
  versions against the highest versions it was measured to resolve and its
  Flex support (sandbox.check.static.tflite_check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox import runtimes
from sandbox.check.graph import GraphInfo
from sandbox.check.kerasfile import KerasInfo
from sandbox.check.static import static_check, tflite_check

WILL_FAIL, SHOULD_LOAD, UNKNOWN = "will fail", "should load", "unknown"
FUNCTIONAL_FROM = (2, 4)  # Keras configs name the model class "Functional" from tf.keras 2.4 on
# Keras 3 reads .h5 files of Keras 2: measured for 2.12's, not for 2.2.4-tf's (TF 1.13-1.15:
# "Error when deserializing class 'Dense'"); the releases between are not measured.
KERAS3_READS_H5_FROM = (2, 3)


@dataclass(frozen=True)
class Verdict:
    target: str
    verdict: str
    missing_ops: tuple[str, ...]
    unknown_attrs: tuple[str, ...]  # "Op.attr" that make the load fail
    ignored_attrs: tuple[str, ...]  # "Op.attr" the consumer drops or ignores
    ignored_ops: tuple[str, ...] = ()  # missing, but only in functions the load never runs
    loader: str = "tf1_session"
    reasons: tuple[str, ...] = ()  # why, where the verdict is not about ops (Keras, unknown)
    runtime: str = runtimes.TENSORFLOW  # what `target` is a release of: "tensorflow", "keras", "ai-edge-litert"...

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "runtime": self.runtime, "loader": self.loader, "verdict": self.verdict,
                "missing_ops": list(self.missing_ops), "unknown_attrs": list(self.unknown_attrs),
                "ignored_attrs": list(self.ignored_attrs), "ignored_ops": list(self.ignored_ops),
                "reasons": list(self.reasons)}


INLINE, SEPARATE = "inline", "separate"  # where a Keras SavedModel keeps its Keras metadata
METADATA_FILE_FROM = (2, 5)  # Keras reads keras_metadata.pb from 2.5 on


def keras_metadata(saved_model_pb: bytes, has_metadata_file: bool) -> str | None:
    """INLINE: the layers' JSON configs sit in saved_model.pb's object graph
    (Keras <= 2.5 writes them there); SEPARATE: only in keras_metadata.pb
    (later Keras); None: not a Keras SavedModel."""
    if b'"class_name"' in saved_model_pb:
        return INLINE
    return SEPARATE if has_metadata_file else None


def graph_loaders(model: GraphInfo, target: str, keras_metadata: str | None = None) -> list[str]:
    """The loaders of `target` that read this graph model."""
    if model.kind != "saved_model":
        return ["import_graph_def"]
    found = ["tf1_session"] + (["tf2_load"] if _version(target) >= (2, 0) else [])
    return found + (["keras"] if keras_metadata else [])


def graph_verdict(model: GraphInfo, registry: dict[str, Any], target: str, loader: str | None = None,
                  metadata: str | None = None) -> Verdict:
    """The verdict for one loader; by default the TF1 Session load for
    SavedModels (what TF Serving does), import_graph_def for frozen graphs."""
    loader = loader or ("tf1_session" if model.kind == "saved_model" else "import_graph_def")
    reasons: tuple[str, ...] = ()
    if loader == "keras":
        keras = registry.get("keras") or {}
        if keras.get("major", 2) >= 3:
            return Verdict(target, WILL_FAIL, (), (), (), loader="keras3",
                           reasons=("Keras 3 loads no SavedModel directories (only .keras and .h5 files)",))
        loader = "keras2"
        if metadata == SEPARATE and _version(str(keras.get("version", "0"))) < METADATA_FILE_FROM:
            reasons = (f"Keras {keras.get('version')} reads Keras metadata from saved_model.pb; this model "
                       "keeps it in keras_metadata.pb only",)
    op_attrs = {op: sorted(attrs) for op, attrs in model.op_attrs.items()}
    lazy = loader == "tf1_session"  # the others run (tf2_load, keras2) or import (frozen) everything
    found = static_check(op_attrs, {**registry, "tensorflow": target}, model.default_attrs, loader,
                         model.lazy_ops if lazy else [], model.lazy_attrs if lazy else {})
    verdict = WILL_FAIL if found.missing_ops or found.missing_attrs or reasons else SHOULD_LOAD
    return Verdict(target, verdict, found.missing_ops, found.missing_attrs, found.tolerated_attrs,
                   found.tolerated_ops, loader, reasons)


def graph_verdicts(model: GraphInfo, registry: dict[str, Any], target: str,
                   keras_metadata: str | None = None) -> list[Verdict]:
    """keras_metadata: see keras_metadata(); None for a SavedModel without Keras."""
    return [graph_verdict(model, registry, target, loader, keras_metadata)
            for loader in graph_loaders(model, target, keras_metadata)]


# The loader of each runtime's TFLite interpreter (sandbox/agent/loaders.py).
INTERPRETERS = {runtimes.TENSORFLOW: "tflite_interpreter", "ai-edge-litert": "ai_edge_litert",
                "tflite-runtime": "tflite_runtime"}


def tflite_verdict(ops: dict[str, int], registry: dict[str, Any], target: str, runtime: str = runtimes.TENSORFLOW) -> Verdict:
    loader = INTERPRETERS[runtime]
    found = tflite_check(ops, registry, loader)
    if found is None:
        return Verdict(target, UNKNOWN, (), (), (), loader=loader, runtime=runtime,
                       reasons=("no measurement of this release's TFLite interpreter",))
    flex = [op for op in found.missing_ops if op.startswith("Flex")]
    reasons = tuple(f"{op}: a select TF op; this interpreter has no Flex delegate" for op in flex)
    return Verdict(target, WILL_FAIL if found.missing_ops else SHOULD_LOAD, found.missing_ops, (), (),
                   loader=loader, reasons=reasons, runtime=runtime)


def keras_verdict(info: KerasInfo, registry: dict[str, Any], target: str, runtime: str = runtimes.TENSORFLOW) -> Verdict:
    """The file against the Keras `target` ships. Measured (TF 1.13-1.15,
    2.4, 2.11, 2.12, 2.18 with and without tf-keras): Keras 2 reads no Keras 3
    file (.h5: InputLayer's batch_shape; .keras: keras.src modules); Keras 3
    reads Keras 2 .h5 files (not TF 1.x's) but no Keras 2 .keras file (its
    keras.engine / tf_keras.src modules); Keras 2.2 (TF 1.x) knows no "Functional"; a layer class the
    target lacks fails by name."""
    keras = registry.get("keras")
    if not keras:
        return Verdict(target, UNKNOWN, (), (), (), loader="keras", runtime=runtime,
                       reasons=("no record of this release's tf.keras",))
    major, version = int(keras.get("major", 2)), str(keras.get("version", "?"))
    loader = "keras3" if major >= 3 else "keras2"
    missing = tuple(c for c in info.layers if c not in set(keras.get("layers", [])))
    reasons = [f"Keras {version} has no layer class {c}" for c in missing]
    if info.model_class == "Functional" and major < 3 and _version(version) < FUNCTIONAL_FROM:
        missing, reasons = missing + ("Functional",), reasons + [f"Keras {version} predates the Functional class"]
    reasons += _format_reasons(info, major, version)
    if major >= 3 and info.format == "keras_v3" and any("ambda" in c for c in info.code):
        reasons.append(f"Keras {version} refuses its Lambda in safe mode, the default of load_model "
                       "(safe_mode=False runs the code it carries)")
    unknown = _unknown_keys(info, keras, major)
    reasons += [f"Keras {version}'s {name.split('.')[0]} takes no config key '{name.split('.', 1)[1]}'" for name in unknown]
    return Verdict(target, WILL_FAIL if reasons else SHOULD_LOAD, missing, unknown, (), loader=loader,
                   reasons=tuple(reasons), runtime=runtime)


def _unknown_keys(info: KerasInfo, keras: dict[str, Any], major: int) -> tuple[str, ...]:
    """"Dense.quantization_config": config keys of the file's layers that the
    target's layer class takes no argument for (Keras passes a layer's config
    to its constructor, which refuses unknown keywords). Only for files of the
    target's own Keras generation: Keras 3 converts Keras 2 .h5 configs first."""
    accepted = keras.get("config_keys")
    if not isinstance(accepted, dict) or info.writer_major != major:
        return ()
    return tuple(f"{cls}.{key}" for cls, keys in info.config_keys if isinstance(accepted.get(cls), list)
                 for key in keys if key not in accepted[cls])


def _format_reasons(info: KerasInfo, major: int, version: str) -> list[str]:
    writer = info.writer_major
    if major < 3 and writer >= 3:
        return [f"a Keras {info.keras_version} file; Keras {version} reads no Keras 3 file"]
    if major >= 3 and info.format == "keras_h5" and _version(info.keras_version or "2.99") < KERAS3_READS_H5_FROM:
        return [f"Keras {version} reads no .h5 file of Keras {info.keras_version} (TF 1.x): "
                "its layer configs carry arguments Keras 3 rejects"]
    if info.format != "keras_v3":
        return []
    if major < 3 and _version(version) < (2, 12):
        return [f"Keras {version} predates the .keras format"]
    foreign = [m for m in info.modules if not m.startswith("keras.layers") and
               (m.startswith("keras.src.") if major < 3 else not m.startswith("keras.src."))]
    if major < 3:
        foreign += [m for m in info.modules if m.startswith("tf_keras.")]
    return [f"Keras {version} cannot import module {m}" for m in sorted(set(foreign))]


def _version(text: str) -> tuple[int, int]:
    parts = text.split(".") + ["0"]
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except ValueError:
        return (0, 0)
