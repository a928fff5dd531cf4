"""Runtime cells in real environments: Keras 3 on JAX and on TensorFlow,
LiteRT (ai-edge-litert) and tflite-runtime, beside a TF cell, with the
select-TF-ops (Flex) probe.

One run of five cells: TF 2.18, Keras 3.8 on TF 2.18, Keras 3.5 on JAX,
ai-edge-litert 1.2 and tflite-runtime 2.14. Every outcome the test relies on
is checked again with a few plain Keras / interpreter lines run in the
consumer's own environment (none of sandbox's agent code): what sandbox
measured must be what the runtime does.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sandbox_cli import results, sandbox

pytestmark = pytest.mark.real

MATRIX = """
name = "runtimes"
probes = ["dense", "flex"]
formats = ["keras_v3", "keras_h5", "tflite", "tflite_flex"]
ai_edge_litert = "1.2"
tflite_runtime = "2.14"

[[include]]
tensorflow = "2.18"
python = "3.11"

[[include]]   # Keras 3.8 on the TF 2.18 the other cell has (its wheels are cached)
keras = "3.8"
tensorflow = "2.18"
python = "3.11"

[[include]]
keras = "3.5"
keras_backend = "jax"
"""
TF = "tf2.18.1-py3.11-cpu"
KERAS_TF = "keras3.8.0-tf2.18.1-py3.11-cpu"
KERAS_JAX = "keras3.5.0-jax0.4.31-py3.12-cpu"
LITERT = "litert1.2.0-py3.12-cpu"
TFLITE_RUNTIME = "tflite-runtime2.14.0-py3.11-cpu"

# Plain Keras: load, run on the producer's reference input, compare with its outputs.
KERAS_WITNESS = """
import sys, numpy as np, keras
model = keras.models.load_model(sys.argv[1], compile=False)
x, ref = np.load(sys.argv[2])["x"], np.load(sys.argv[3])["y"]
y = keras.ops.convert_to_numpy(model(x, training=False))
print("backend", keras.backend.backend(), "ok" if np.allclose(y, ref, atol=1e-4, rtol=1e-3) else "differs")
"""
# A plain TFLite interpreter (argv[1]: "module:attribute"): allocate, invoke, compare; or how it refused.
TFLITE_WITNESS = """
import importlib, re, sys, numpy as np
module, _, name = sys.argv[1].partition(":")
Interpreter = importlib.import_module(module)
for part in name.split("."):
    Interpreter = getattr(Interpreter, part)
x, ref = np.load(sys.argv[3])["x"], np.load(sys.argv[4])["y"]
try:
    it = Interpreter(model_path=sys.argv[2])
    it.allocate_tensors()
except RuntimeError as e:
    print("refused", " ".join(sorted(set(re.findall(r"\\((Flex\\w*)\\) failed", str(e))))))
    sys.exit(0)
it.set_tensor(it.get_input_details()[0]["index"], x)
it.invoke()
y = it.get_tensor(it.get_output_details()[0]["index"])
print("ok" if np.allclose(y, ref, atol=1e-4, rtol=1e-3) else "differs")
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("runtimes")
    (folder / "matrix.toml").write_text(MATRIX)
    sandbox(["run", "matrix.toml", "--no-redact"], folder)  # environments' folders kept: the witnesses run there
    found = results(folder, "runtimes")
    from results_schema import assert_valid
    assert_valid(found)
    assert {c["id"]: c["status"] for c in found["cells"]} == dict.fromkeys(
        (TF, KERAS_TF, KERAS_JAX, LITERT, TFLITE_RUNTIME), "ok")
    return folder, found


def python_of(found: dict[str, Any], cell: str) -> str:
    [env] = [c["environment"] for c in found["cells"] if c["id"] == cell]
    return str(Path(env["location"]) / "bin" / "python")


def witness(found: dict[str, Any], cell: str, script: str, *args: str, backend: str | None = None) -> str:
    """`script` run with the cell's own interpreter, outside sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KERAS_", "TF_"))}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", **({"KERAS_BACKEND": backend} if backend else {})})
    done = subprocess.run([python_of(found, cell), "-c", script, *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def files(folder: Path, producer: str, probe: str, fmt: str) -> tuple[str, str, str]:
    """(model, reference inputs, reference outputs) of an artifact, through the
    run folder's view of the results store."""
    where = (folder / "runs" / "runtimes" / "cells" / producer / "artifacts" / probe / fmt).resolve()
    model = next(p for p in where.iterdir() if p.suffix in (".keras", ".h5", ".tflite"))
    outputs = where.parent / f"{fmt}.outputs.npz"
    return str(model), str(where.parent / "inputs.npz"), str(outputs if outputs.exists() else where.parent / "outputs.npz")


def load(found: dict[str, Any], producer: str, consumer: str, probe: str, fmt: str, loader: str) -> dict[str, Any]:
    hit: dict[str, Any]
    [hit] = [l for l in found["loads"] if (l["producer"], l["consumer"], l["probe"], l["format"], l["loader"])
             == (producer, consumer, probe, fmt, loader)]
    return hit


def test_runtime_cells_hold_no_tensorflow_where_the_runtime_needs_none(run: tuple[Path, dict[str, Any]]) -> None:
    _, found = run
    cells = {c["id"]: c for c in found["cells"]}
    for cell in (KERAS_JAX, LITERT, TFLITE_RUNTIME):
        assert cells[cell]["environment"]["tensorflow"] is None
        # nothing in the environment imports as tensorflow
        done = subprocess.run([python_of(found, cell), "-c", "import tensorflow"], capture_output=True, check=False)
        assert done.returncode != 0
    assert cells[KERAS_JAX]["environment"]["packages"]["jax"] == "0.4.31"
    assert cells[KERAS_JAX]["runtime"] == {"name": "keras", "package": "keras", "version": "3.5.0", "backend": "jax",
                                           "backend_version": "0.4.31"}
    assert cells[KERAS_TF]["environment"]["keras"] == "3.8.0"  # over the keras TF 2.18's pins brought in
    # a runtime cell writes only what its runtime writes
    written = {(a["producer"], a["format"]) for a in found["artifacts"]}
    assert {f for p, f in written if p == KERAS_JAX} == {"keras_v3", "keras_h5"}
    assert not {f for p, f in written if p in (LITERT, TFLITE_RUNTIME)}


@pytest.mark.parametrize("producer, consumer, backend", [
    (KERAS_TF, KERAS_JAX, "jax"),  # Keras 3.8 -> 3.5 (and TF backend -> JAX)
    (KERAS_JAX, KERAS_TF, "tensorflow"),  # Keras 3.5 on JAX -> 3.8 on TF
    (TF, KERAS_JAX, "jax"),  # TF 2.18's tf.keras (TF backend) -> JAX
])
def test_keras_files_cross_keras_versions_and_backends(run: tuple[Path, dict[str, Any]], producer: str, consumer: str,
                                                        backend: str) -> None:
    folder, found = run
    for fmt in ("keras_v3", "keras_h5"):
        measured = load(found, producer, consumer, "dense", fmt, "keras3")
        seen = witness(found, consumer, KERAS_WITNESS, *files(folder, producer, "dense", fmt), backend=backend)
        assert seen == f"backend {backend} {'ok' if measured['status'] == 'ok' else 'differs'}", (fmt, measured)
        assert measured["status"] == "ok" and measured["max_abs_err"] <= measured["atol"]


@pytest.mark.parametrize("consumer, loader, module", [
    (LITERT, "ai_edge_litert", "ai_edge_litert.interpreter:Interpreter"),
    (TFLITE_RUNTIME, "tflite_runtime", "tflite_runtime.interpreter:Interpreter"),
    (TF, "tflite_interpreter", "tensorflow:lite.Interpreter"),
])
def test_interpreters_and_the_flex_probe(run: tuple[Path, dict[str, Any]], consumer: str, loader: str,
                                         module: str) -> None:
    folder, found = run
    dense = load(found, TF, consumer, "dense", "tflite", loader)
    assert dense["status"] == "ok"
    assert witness(found, consumer, TFLITE_WITNESS, module, *files(folder, TF, "dense", "tflite")) == "ok"
    flex = load(found, TF, consumer, "flex", "tflite_flex", loader)
    seen = witness(found, consumer, TFLITE_WITNESS, module, *files(folder, TF, "flex", "tflite_flex"))
    if consumer == TF:  # TF's own interpreter has the Flex delegate
        assert (flex["status"], seen) == ("ok", "ok")
        assert flex["static"]["missing_ops"] == []
    else:  # a standalone interpreter has none: a finding naming the select TF op, and predicted
        assert seen == "refused FlexSinh"
        assert (flex["status"], flex["category"], flex["names"]) == ("load-error", "tflite-flex-op", ["FlexSinh"])
        assert flex["static"]["missing_ops"] == ["FlexSinh"]
    # the flex probe has no builtin-only TFLite export
    [builtin] = [a for a in found["artifacts"] if (a["producer"], a["probe"], a["format"]) == (TF, "flex", "tflite")]
    assert builtin["status"] == "not-applicable" and "converter rejects" in builtin["reason"]


def test_check_answers_for_the_runtimes(run: tuple[Path, dict[str, Any]]) -> None:
    """`sandbox check` of the Flex model against the runtimes' shipped
    registries says what the real loads did."""
    folder, found = run
    model = files(folder, TF, "flex", "tflite_flex")[0]
    done = sandbox(["check", model, "--against", "ai-edge-litert==1.2,tflite-runtime==2.14,tf==2.18", "--json"],
                   folder, expect=1)
    verdicts = {(t["runtime"], t["loader"]): (t["verdict"], t["missing_ops"]) for t in json.loads(done.stdout)["targets"]}
    assert verdicts == {("ai-edge-litert", "ai_edge_litert"): ("will fail", ["FlexSinh"]),
                        ("tflite-runtime", "tflite_runtime"): ("will fail", ["FlexSinh"]),
                        ("tensorflow", "tflite_interpreter"): ("should load", [])}
    keras = files(folder, KERAS_TF, "dense", "keras_v3")[0]
    done = sandbox(["check", keras, "--against", "keras==3.5", "--json"], folder)
    [target] = json.loads(done.stdout)["targets"]
    assert (target["runtime"], target["loader"], target["verdict"]) == ("keras", "keras3", "should load")
    assert load(found, KERAS_TF, KERAS_JAX, "dense", "keras_v3", "keras3")["status"] == "ok"


def test_a_runtime_whose_interpreter_cannot_run_is_a_broken_cell(tmp_path: Path) -> None:
    """ai-edge-litert 1.0.1 installed as of its release takes numpy 2.1, and
    its binary (built for numpy 1.x) imports but builds no interpreter: the
    cell is broken, with numpy's words, rather than failing every load."""
    (tmp_path / "matrix.toml").write_text('name = "litert10"\nprobes = ["dense"]\nformats = ["tflite"]\n'
                                          'ai_edge_litert = "1.0"\n')
    sandbox(["run", "matrix.toml"], tmp_path, expect=1)  # nothing measured
    [cell] = results(tmp_path, "litert10")["cells"]
    assert (cell["id"], cell["status"]) == ("litert1.0.1-py3.11-cpu", "broken")
    assert cell["reason"] == "ai-edge-litert 1.0.1 does not import or run in the cell"
    assert "numpy" in cell["detail"] and "_ARRAY_API not found" in cell["detail"]
