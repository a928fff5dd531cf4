"""`sandbox check` against real loads, per loader, and the oldest releases.

One run of four cells: TF 1.0 (the oldest release with a wheel for an
installed Python, 3.6), 1.15, 2.4 and 2.11. Its artifacts are checked with
`sandbox check` against the stored registries of the consumers' releases, and
every verdict is compared with what the consumer's loader really did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sandbox_cli import healthy_run, sandbox

from sandbox import registries
from sandbox.check import readers, verdicts

pytestmark = pytest.mark.real

MATRIX = """
name = "check"
probes = ["batchnorm", "batch_matmul"]
formats = ["frozen_graph", "saved_model", "keras_saved_model", "keras_h5"]
[[include]]
tensorflow = "1.0"
python = "3.6"
[[include]]
tensorflow = "1.15"
python = "3.7"
[[include]]
tensorflow = "2.4"
python = "3.8"
[[include]]
tensorflow = "2.11"
python = "3.8"
"""
TF10, TF115, TF24, TF211 = "tf1.0.1-py3.6-cpu", "tf1.15.5-py3.7-cpu", "tf2.4.4-py3.8-cpu", "tf2.11.1-py3.8-cpu"
CELLS = (TF10, TF115, TF24, TF211)
# what a static check speaks to: the model's contents, not the run
STATIC = ("op-not-registered", "unknown-attr", "keras-deserialization", "tflite-op-version")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("check")


@pytest.fixture(scope="module")
def results(work: Path) -> dict[str, Any]:
    return healthy_run(work, MATRIX, "check", CELLS)


def artifact_path(work: Path, results: dict[str, Any], producer: str, probe: str, fmt: str) -> Path:
    found: dict[str, Any]
    [found] = [a for a in results["artifacts"] if (a["producer"], a["probe"], a["format"]) == (producer, probe, fmt)]
    return work / "runs" / "check" / "cells" / producer / "artifacts" / str(found["path"])


def verdicts_of(path: Path, consumer: str) -> dict[str, verdicts.Verdict]:
    """What `sandbox check PATH --against <consumer's release>` says, per loader."""
    release = consumer.split("-")[0][2:]
    version, registry = registries.load(release)
    assert version == release, "the consumer's exact release has a stored registry"
    return {v.loader: v for v in readers.open_model(path).verdicts(registry, version, registries.TENSORFLOW)}


def test_check_tells_the_tf1_serving_loader_and_tf_saved_model_load_apart(work: Path, results: dict[str, Any]) -> None:
    # A 2.11 Keras SavedModel whose Keras functions set AssignVariableOp.validate_shape
    # (new in 2.7), outside what serving and restore call: TF 2.4 serves it, and
    # fails it in tf.saved_model.load, which instantiates every function
    loads = {l["loader"]: l for l in results["loads"] if (l["producer"], l["consumer"], l["probe"], l["format"])
             == (TF211, TF24, "batchnorm", "keras_saved_model")}
    assert loads["tf1_session"]["status"] == "ok"
    assert (loads["tf2_load"]["status"], loads["tf2_load"]["names"]) == ("load-error", ["AssignVariableOp.validate_shape"])
    found = verdicts_of(artifact_path(work, results, TF211, "batchnorm", "keras_saved_model"), TF24)
    assert found["tf1_session"].verdict == verdicts.SHOULD_LOAD
    assert "AssignVariableOp.validate_shape" in found["tf2_load"].unknown_attrs
    assert found["tf2_load"].verdict == found["keras2"].verdict == verdicts.WILL_FAIL
    # and the command prints a row per loader
    done = sandbox(["check", str(artifact_path(work, results, TF211, "batchnorm", "keras_saved_model")),
                    "--against", "tf==2.4,tf==2.5"], work, expect=1)
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("tf==")]
    assert [(r[0], r[1]) for r in rows] == [(f"tf=={v}", loader) for v in ("2.4.4", "2.5.3")
                                             for loader in ("tf1_session", "tf2_load", "keras2")]


def test_every_check_verdict_agrees_with_the_real_load(work: Path, results: dict[str, Any]) -> None:
    compared = 0
    for load in results["loads"]:
        if load["status"] == "not-applicable" or load["category"] not in (None, *STATIC):
            continue
        path = artifact_path(work, results, load["producer"], load["probe"], load["format"])
        predicted = verdicts_of(path, load["consumer"]).get(load["loader"])
        assert predicted is not None, (load["loader"], load["format"])
        failed = load["status"] == "load-error"
        assert (predicted.verdict == verdicts.WILL_FAIL) == failed, (load, predicted)
        compared += 1
    assert compared >= 60


def test_the_oldest_release_names_the_op_it_lacks(work: Path, results: dict[str, Any]) -> None:
    # TF <= 1.4 says "No op named X in defined operations."
    for probe, op in (("batch_matmul", "BatchMatMulV2"), ("batchnorm", "FusedBatchNormV3")):
        [load] = [l for l in results["loads"] if (l["producer"], l["consumer"], l["probe"], l["format"])
                  == (TF115, TF10, probe, "frozen_graph")]
        assert f"No op named {op} in defined operations" in load["error"]
        assert (load["category"], load["names"][0]) == ("op-not-registered", op)
        assert op in load["static"]["missing_ops"]
    # its own artifacts load back in 1.15
    ok = [l for l in results["loads"] if l["producer"] == TF10 and l["consumer"] == TF115]
    assert ok and all(l["status"] == "ok" for l in ok)
