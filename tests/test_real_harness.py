"""Harness errors and the map's former `other` failures, in real environments.

One run of three cells (TF 1.15, 2.3 and 2.18) over a few probes and formats:
- a TF1-builder SavedModel read with tf.saved_model.load in TF 2.3 loads and
  gives the producer's outputs (the agent read its signature's input keys from
  the concrete function, None there: 'NoneType' object is not subscriptable);
- a TF 2.3 Keras SavedModel read by TF 1.15's Keras loads (revived as a bare
  Network without predict: called directly);
- TF 2.18's full-integer TFLite conversion of the LSTM probe segfaults: a
  crash that names its signal and the native function it died in;
- Keras 3 .h5 files read by older Keras name the class and keyword refused;
- a probe module whose own code fails is a harness error, never a finding:
  `sandbox run` exits 4 and says so, and an unchanged re-run measures nothing
  and still exits 4.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from results_schema import assert_valid
from sandbox_cli import results, sandbox

pytestmark = pytest.mark.real

TF115, TF23, TF218 = "tf1.15.5-py3.7-cpu", "tf2.3.4-py3.8-cpu", "tf2.18.1-py3.11-cpu"
BROKEN = '''
import numpy as np
from probes import Probe


class BrokenKeras(Probe):
    """Raw ops fine; its Keras twin has a bug of its own (a missing key)."""
    name = "broken_keras"
    input_shape = (2, 3)

    def init_params(self, rng):
        return {"w": rng.normal(0.0, 0.5, (3, 2)).astype(np.float32)}

    def forward(self, tf, params, x):
        return tf.matmul(x, params["w"])

    def keras_model(self, keras, params):
        return {}["units"]


PROBES = [BrokenKeras()]
'''
MATRIX = """
name = "harness"
probes = ["dense", "lstm", "broken_keras"]
probe_modules = ["broken.py"]
formats = ["saved_model_tf1", "keras_saved_model", "keras_h5", "tflite_int8"]
[[include]]
tensorflow = "1.15"
python = "3.7"
[[include]]
tensorflow = "2.3"
python = "3.8"
[[include]]
tensorflow = "2.18"
python = "3.11"
"""


def test_harness_errors_apart_and_the_former_other_failures_explained(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    (tmp_path / "matrix.toml").write_text(MATRIX)
    done = sandbox(["run", "matrix.toml"], tmp_path, expect=4)
    found = results(tmp_path, "harness")
    assert_valid(found)
    assert {c["id"]: c["status"] for c in found["cells"]} == {TF115: "ok", TF23: "ok", TF218: "ok"}
    loads = {(l["producer"], l["consumer"], l["probe"], l["format"], l["loader"]): l for l in found["loads"]}
    artifacts = {(a["producer"], a["probe"], a["format"]): a for a in found["artifacts"]}

    tf1_saved_model = loads[(TF115, TF23, "dense", "saved_model_tf1", "tf2_load")]
    assert tf1_saved_model["status"] == "ok" and tf1_saved_model["max_abs_err"] < tf1_saved_model["atol"]
    revived = loads[(TF23, TF115, "dense", "keras_saved_model", "keras2")]
    assert revived["status"] == "ok", revived

    crash = artifacts[(TF218, "lstm", "tflite_int8")]
    assert (crash["status"], crash["error_type"], crash["category"]) == ("crash", "SIGSEGV", "crash")
    assert "while exporting lstm/tflite_int8" in crash["reason"] and crash["names"] == ["SIGSEGV in calibrator._feed_tensors"]

    keyword = [l for key, l in loads.items() if key[0] == TF218 and key[1] != TF218 and key[3] == "keras_h5"
               and l["status"] == "load-error"]
    assert keyword and all(l["category"] in ("keras-config", "keras-deserialization") and l["names"] for l in keyword)
    assert any("InputLayer.batch_shape" in l["names"] for l in keyword), [(l["error"], l["names"]) for l in keyword]

    ours = [a for a in found["artifacts"] if a["status"] == "harness-error"]
    assert ours and {a["probe"] for a in ours} == {"broken_keras"}
    assert all(a["raised_in"].startswith("broken.py:") and a["error_type"] == "KeyError" for a in ours), ours
    assert all(a["category"] is None for a in ours)  # never a finding
    raw = [a for a in found["artifacts"] if a["probe"] == "broken_keras" and a["format"] == "saved_model_tf1"]
    assert {a["status"] for a in raw} == {"exported"}
    assert "harness errors: " in done.stdout and "broken.py:" in done.stdout
    failures = [l for l in found["loads"] if l["status"] in ("load-error", "run-error", "crash", "timeout")]
    assert all(l["category"] != "other" and l["names"] for l in failures), \
        [(l["error"], l["raised_in"]) for l in failures if l["category"] == "other" or not l["names"]]

    again = sandbox(["run", "matrix.toml"], tmp_path, expect=4)  # the same code: the same harness errors, reused
    assert "measured 0 exports, 0 loads" in again.stdout, again.stdout
