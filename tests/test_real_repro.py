"""`sandbox repro` and `sandbox bisect` on real TensorFlow: two seed stories
from a reporter's artifact and a reporter's script, and a bisection over real
releases that must build no more environments than its bound."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sandbox_cli import ROOT, results, sandbox
from test_cli_json import assert_valid

from sandbox.bisect import bound

pytestmark = pytest.mark.real

EXAMPLES = ROOT / "examples" / "repro"


def spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_repro_of_a_reporters_frozen_graph(tmp_path: Path) -> None:
    path = spec(tmp_path, f"""
name = "matmul"
[producer]
artifact = "{EXAMPLES / 'batch_matmul_tf1.15.pb'}"
[consumers]
tensorflow = ["1.13", "1.15"]
[expect]
error = "Op type not registered 'BatchMatMulV2'"
""")
    done = sandbox(["repro", str(path)], tmp_path)
    assert "runs the reporter's script and model on this host" in done.stderr  # the venv backend says so
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("tf1.")}
    assert re.search(r"load-error\s+op-not-registered\s+BatchMatMulV2\s+BatchMatMulV2\s+yes$", rows["tf1.13.2-py3.7-cpu"])
    assert re.search(r"\bok\b.*\bno$", rows["tf1.15.5-py3.7-cpu"])
    # the same as a document (the store has every load now: nothing is measured again)
    found = json.loads(sandbox(["repro", str(path), "--json"], tmp_path).stdout)
    assert_valid(found, "repro")
    outcome = {(l["consumer"], l["loader"]): (l["status"], l["reproduced"]) for l in found["loads"]}
    assert outcome[("tf1.13.2-py3.7-cpu", "import_graph_def")] == ("load-error", True)
    assert outcome[("tf1.15.5-py3.7-cpu", "import_graph_def")] == ("ok", False)
    loads = {l["consumer"]: l for l in results(tmp_path, "matmul")["loads"]}
    assert loads["tf1.13.2-py3.7-cpu"]["static"]["missing_ops"] == ["BatchMatMulV2"]
    assert loads["tf1.15.5-py3.7-cpu"]["reason"] == "loaded; no reference inputs to run it on"


def test_repro_runs_the_reporters_script_in_the_producer_cell(tmp_path: Path) -> None:
    path = spec(tmp_path, f"""
name = "bn"
[producer]
tensorflow = "2.15"
python = "3.11"
script = "{EXAMPLES / 'make_batchnorm_model.py'}"
[consumers]
tensorflow = ["1.13", "1.15"]
loader = "tf1_session"
[expect]
error = "NodeDef mentions attr 'debug_name' not in Op<name=VarHandleOp"
""")
    done = sandbox(["repro", str(path)], tmp_path)
    assert "wrote a saved_model" in done.stdout
    loads = {l["consumer"]: l for l in results(tmp_path, "bn")["loads"] if l["loader"] == "tf1_session"}
    for consumer in ("tf1.13.2-py3.7-cpu", "tf1.15.5-py3.7-cpu"):
        assert loads[consumer]["names"] == ["VarHandleOp.debug_name"]
        assert "VarHandleOp.debug_name" in loads[consumer]["static"]["missing_attrs"]
    # the error names one attr; the static check names everything 1.13 lacks, DisableCopyOnRead
    # as tolerated (only in the save function, which 1.13 never checks) and as missing in 1.15
    static = {consumer: load["static"] for consumer, load in loads.items()}
    assert "FusedBatchNormV3" in static["tf1.13.2-py3.7-cpu"]["missing_ops"]
    assert static["tf1.13.2-py3.7-cpu"]["tolerated_ops"] == ["DisableCopyOnRead"]
    assert "DisableCopyOnRead" in static["tf1.15.5-py3.7-cpu"]["missing_ops"]
    assert done.stdout.count(" yes") == 2


def test_bisect_finds_the_first_release_that_loads_batch_matmul_v2(tmp_path: Path) -> None:
    done = sandbox(["bisect", str(EXAMPLES / "matmul_frozen_graph.toml"), "--work-dir", str(tmp_path / "runs")], tmp_path)
    header = re.search(r"bisecting (\d+) releases", done.stdout)
    assert header and int(header.group(1)) >= 4
    evaluated = [line for line in done.stdout.splitlines() if re.match(r"\s+tf1\.\d+\.\d+-py", line)]
    assert len(evaluated) <= bound(int(header.group(1)))
    assert "first change: 1.14.0 ('not reproduced'; 1.13.2 gives 'reproduced')" in done.stdout
    assert done.stdout.count("path: ") == 1


def test_a_corrupt_model_is_a_marked_failure_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pb"
    bad.write_bytes(b"\x0a\xff\xff\xff\x0f not a graph")
    path = spec(tmp_path, f'name = "corrupt"\n[producer]\nartifact = "{bad}"\n[consumers]\ntensorflow = ["1.15"]\n')
    sandbox(["repro", str(path)], tmp_path)
    [load] = results(tmp_path, "corrupt")["loads"]
    assert (load["status"], load["category"]) == ("load-error", "protobuf-parse"), load


LAMBDA_SCRIPT = """
import sys
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Lambda(lambda x: x * 2.0)])
model.save(sys.argv[1] + "/model.keras")
"""


@pytest.mark.parametrize("safe", [True, False])
def test_keras_loads_refuse_code_in_models_unless_the_spec_opts_out(tmp_path: Path, safe: bool) -> None:
    (tmp_path / "make.py").write_text(LAMBDA_SCRIPT)
    path = spec(tmp_path, f"""
name = "lambda"
[producer]
tensorflow = "2.18"
python = "3.11"
script = "make.py"
[consumers]
tensorflow = ["2.18"]
python = "3.11"
loader = "keras3"
keras_safe_mode = {str(safe).lower()}
""")
    sandbox(["repro", str(path)], tmp_path)
    [load] = [l for l in results(tmp_path, "lambda")["loads"] if l["loader"] == "keras3"]
    if safe:
        assert load["status"] == "load-error" and "safe_mode" in load["error"], load
    else:
        assert load["status"] == "ok", load


LAMBDA_H5_SCRIPT = """
import sys
import tensorflow as tf
# the Lambda leaves a mark when it runs in a consumer's agent (sys.argv[0] is the agent's folder there)
mark = "lambda t: (__import__('sys').argv[0].rstrip('/').endswith('agent') and "
mark += "open(%r + '/ran-' + __import__('tensorflow').__version__, 'a').close(), t * 2.0)[1]"
fn = eval(mark % sys.argv[1].rsplit('/model', 1)[0].rsplit('/', 1)[0])
inp = tf.keras.Input((3,))
tf.keras.Model(inp, tf.keras.layers.Lambda(fn)(inp)).save(sys.argv[1] + "/model.h5")
"""


@pytest.mark.parametrize("safe", [True, False])
def test_a_lambda_in_an_h5_runs_in_no_keras_in_safe_mode(tmp_path: Path, safe: bool) -> None:
    """Keras 2 (tf.keras of TF 2.15) and Keras 3 (TF 2.18) both accept
    safe_mode=True for a Keras 2 .h5 and run its Lambda (measured: the mark
    appears); in safe mode sandbox loads it in neither, and says why."""
    (tmp_path / "make.py").write_text(LAMBDA_H5_SCRIPT)
    path = spec(tmp_path, f"""
name = "lambda-h5"
[producer]
tensorflow = "2.15"
python = "3.11"
script = "make.py"
[consumers]
tensorflow = ["2.15", "2.18"]
python = "3.11"
keras_safe_mode = {str(safe).lower()}
""")
    sandbox(["repro", str(path)], tmp_path)
    keras = {(l["consumer"][:7], l["loader"]): l for l in results(tmp_path, "lambda-h5")["loads"]
             if l["status"] != "not-applicable"}
    assert set(keras) == {("tf2.15.", "keras2"), ("tf2.18.", "keras3")}, keras
    marks = sorted(p.name for p in (tmp_path / "runs").rglob("ran-*"))
    if safe:
        assert marks == []
        for load in keras.values():
            assert (load["status"], load["category"], load["names"]) == ("load-error", "keras-deserialization",
                                                                         ["Lambda"]), load
            assert "safe mode" in load["error"]
    else:
        assert marks == ["ran-2.15.1", "ran-2.18.1"]
        assert {l["status"] for l in keras.values()} == {"ok"}


KERAS_SAVED_MODEL_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
model.save(sys.argv[1] + "/served", save_format="tf")
"""


def test_repro_of_a_saved_model_folder_tries_the_keras_loaders_too(tmp_path: Path) -> None:
    (tmp_path / "make.py").write_text(KERAS_SAVED_MODEL_SCRIPT)
    path = spec(tmp_path, """
name = "keras-sm"
[producer]
tensorflow = "2.12"
python = "3.11"
script = "make.py"
[consumers]
tensorflow = ["2.18"]
python = "3.11"
[expect]
error = "File format not supported"
""")
    done = sandbox(["repro", str(path)], tmp_path)
    assert "wrote a keras_saved_model" in done.stdout
    loads = {l["loader"]: l for l in results(tmp_path, "keras-sm")["loads"]}
    # served by both SavedModel loaders; Keras 3's load_model refuses the folder: the reported bug
    assert loads["tf1_session"]["status"] == loads["tf2_load"]["status"] == "ok"
    assert (loads["keras3"]["status"], loads["keras3"]["category"]) == ("load-error", "keras-deserialization")
    assert loads["keras2"]["status"] == "not-applicable"  # no tf-keras in that cell
    assert re.search(r"keras3\s+load-error\s+keras-deserialization.*\byes$", done.stdout, re.M)


def test_a_loader_that_does_not_read_the_model_is_a_one_line_error(tmp_path: Path) -> None:
    path = spec(tmp_path, f"""
name = "wrong-loader"
[producer]
artifact = "{EXAMPLES / 'batch_matmul_tf1.15.pb'}"
[consumers]
tensorflow = ["1.15"]
loader = "keras3"
""")
    done = sandbox(["repro", str(path)], tmp_path, expect=2)
    assert done.stderr.strip().splitlines()[-1].endswith(
        "key 'consumers.loader': 'keras3' does not read a frozen_graph; loaders that do: import_graph_def")
    assert "Traceback" not in done.stderr


def test_a_loader_that_applied_in_no_consumer_names_those_that_did(tmp_path: Path) -> None:
    # keras2 reads .h5 files, but TF 2.18 without tf-keras has no Keras 2
    (tmp_path / "make.py").write_text(
        "import sys, tensorflow as tf\n"
        "tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)]).save(sys.argv[1] + '/m.h5')\n")
    path = spec(tmp_path, """
name = "no-keras2"
[producer]
tensorflow = "2.18"
python = "3.11"
script = "make.py"
[consumers]
tensorflow = ["2.18"]
python = "3.11"
loader = "keras2"
""")
    done = sandbox(["repro", str(path)], tmp_path, expect=2)
    assert done.stderr.strip().splitlines()[-1].endswith(
        "loader 'keras2' applied in no consumer (loaders that did: keras3)")


RANK3_MATMUL_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
x = tf.placeholder(tf.float32, [2, 3, 4], name="x")
y = tf.identity(tf.matmul(x, tf.constant(np.ones((2, 4, 5), np.float32))), name="y")
tf.train.write_graph(tf.get_default_graph().as_graph_def(), sys.argv[1], "model.pb", as_text=False)
"""


def test_bisect_over_producers_finds_the_first_release_whose_export_fails_in_a_consumer(tmp_path: Path) -> None:
    (tmp_path / "make.py").write_text(RANK3_MATMUL_SCRIPT)
    path = spec(tmp_path, """
name = "producers"
[producer]
tensorflow = ">=1.13.2,<=1.14.0"
python = "3.7"
script = "make.py"
[consumers]
tensorflow = ["1.13"]
python = "3.7"
[expect]
error = "Op type not registered 'BatchMatMulV2'"
""")
    done = sandbox(["bisect", str(path), "--work-dir", str(tmp_path / "runs")], tmp_path)
    assert "bisecting 2 producer releases (1.13.2 .. 1.14.0)" in done.stdout
    # 1.13's tf.matmul writes BatchMatMul, 1.14's BatchMatMulV2, which 1.13 lacks
    assert "first change: 1.14.0 ('reproduced'; 1.13.2 gives 'not reproduced')" in done.stdout
    # repro wants one producer
    bad = sandbox(["repro", str(path)], tmp_path, expect=2)
    assert "a range of producers is for `sandbox bisect`" in bad.stderr
