"""The agent in a cell without TensorFlow (a runtime cell), on the host's
Python, which has none: every verb runs, and what needs TF is not applicable,
never an error; and the pieces that measure a runtime (Flex, Keras keys)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

AGENT = Path(__file__).resolve().parent.parent / "sandbox" / "agent"


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-E", "-s", "-B", str(AGENT), *args], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done


def records(path: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == kind]


def test_without_tensorflow_every_verb_runs_and_nothing_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    assert subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, check=False).returncode != 0
    agent("export", "--out", str(tmp_path / "out"), "--probes", "dense,batchnorm,flex",
          "--formats", "saved_model,keras_v3,tflite,tflite_flex,checkpoint")
    found = records(tmp_path / "out" / "manifest.jsonl", "artifact")
    assert {(r["status"], r["reason"]) for r in found} <= {("not-applicable", "no TensorFlow in this cell"),
                                                           ("not-applicable", "no Keras in this cell"),
                                                           ("not-applicable", "probe flex has no Keras model")}
    assert len(found) == 15
    [cell] = records(tmp_path / "out" / "manifest.jsonl", "cell")
    assert (cell["tensorflow"], cell["capabilities"]) == (None, {})
    # a stateful probe says it was not trained, and why
    trained = {r["trained"]["reason"] for r in found if r["probe"] == "batchnorm"}
    assert trained == {"no TensorFlow in this cell: the probe's raw ops (its training, its reference outputs) cannot run"}
    agent("registry", "--out", str(tmp_path / "registry.json"))
    registry = json.loads((tmp_path / "registry.json").read_text())
    assert (registry["tensorflow"], registry["ops"], registry["interpreters"]) == (None, {}, {})
    # a load that needs TF, or an interpreter the cell lacks: not applicable
    (tmp_path / "p").mkdir()
    model = tmp_path / "p" / "dense" / "tflite" / "model.tflite"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"")
    (tmp_path / "p" / "manifest.jsonl").write_text(json.dumps(
        {"kind": "artifact", "probe": "dense", "format": "tflite", "status": "exported",
         "path": "dense/tflite/model.tflite", "inputs": None, "outputs": None}) + "\n")
    agent("load", "--out", str(tmp_path / "loads.jsonl"), "--producer", f"p={tmp_path / 'p'}")
    loads = {r["loader"]: (r["status"], r["reason"]) for r in records(tmp_path / "loads.jsonl", "load")}
    assert loads == {"tflite_interpreter": ("not-applicable", "no TensorFlow in this cell"),
                     "ai_edge_litert": ("not-applicable", "ai-edge-litert is not installed in this cell"),
                     "tflite_runtime": ("not-applicable", "tflite-runtime is not installed in this cell")}


@pytest.fixture
def modules() -> Iterator[dict[str, Any]]:
    sys.path.insert(0, str(AGENT))
    try:
        import kerasapi
        import tflite_ops
        import tfliteinfo
        yield {"kerasapi": kerasapi, "tfliteinfo": tfliteinfo, "tflite_ops": tflite_ops}
    finally:
        sys.path.remove(str(AGENT))


def test_the_flex_model_is_one_select_tf_op(modules: dict[str, Any]) -> None:
    info = modules["tfliteinfo"]
    data = base64.b64decode(modules["tflite_ops"].FLEX_MODEL)
    assert info.flex_ops(data) == ["custom:FlexSinh"]
    assert info.operator_codes(data) == [{"op": "custom:FlexSinh", "version": 1}]


class _Interpreter:
    refusal = ""

    def __init__(self, model_content: bytes) -> None:
        self.model = model_content

    def allocate_tensors(self) -> None:
        if self.refusal:
            raise RuntimeError(self.refusal)


def test_flex_support_is_read_from_how_an_interpreter_prepares_the_flex_model(modules: dict[str, Any]) -> None:
    runs_flex = modules["tfliteinfo"].runs_flex

    class NoFlex(_Interpreter):
        refusal = "Select TensorFlow op(s), included in the given model, is(are) not supported by this interpreter."

    class Old(_Interpreter):
        refusal = "Model provided has model identifier 'TFL3', should be 'TFL2'"

    assert (runs_flex(_Interpreter), runs_flex(NoFlex), runs_flex(Old)) == (True, False, None)


def test_config_keys_follow_the_constructor_chain(modules: dict[str, Any]) -> None:
    kerasapi = modules["kerasapi"]

    class Layer:  # validates its keyword arguments, as Keras's base Layer does
        def __init__(self, name: str | None = None, **kwargs: Any) -> None:
            unknown = set(kwargs) - {"input_shape", "dtype"}
            if unknown:
                raise ValueError(f"Unrecognized keyword arguments passed to Layer: {unknown}")

    class Dense(Layer):
        def __init__(self, units: int, activation: str | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)

    class Fixed(Dense):  # takes no **kwargs: nothing more reaches the classes above
        def __init__(self, units: int) -> None:
            super().__init__(units)

    base = kerasapi._base_keys(Layer)
    assert base == ["input_shape", "dtype", "name"]
    assert kerasapi._init_keys(Dense, base) == ["activation", "dtype", "input_shape", "name", "units"]
    assert kerasapi._init_keys(Fixed, []) == ["units"]


def test_tf_keras_beside_keras_3_0_takes_the_keras_package_version(modules: dict[str, Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """TF 2.15/2.16 with Keras 3.0-3.2: tf.keras is keras._tf_keras.keras, which
    carries no __version__ (measured): it is Keras 3, not Keras 2."""
    import types
    kerasapi = modules["kerasapi"]
    package = types.ModuleType("keras")
    package.__version__ = "3.0.5"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keras", package)
    view = types.ModuleType("keras._tf_keras.keras")
    assert (kerasapi.version(view), kerasapi.is_keras3(view)) == ("3.0.5", True)
    old = types.ModuleType("tensorflow.python.keras.api._v2.keras")  # TF 2.x's own Keras 2
    assert kerasapi.version(old) == "2 (tf.keras)" and not kerasapi.is_keras3(old)
