"""Repro specs: validation, version expansion, artifact detection."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_plan import FakeCatalog

from sandbox import repro
from sandbox.errors import ConfigError, SandboxError
from sandbox.store import read_jsonl

EXAMPLES = Path(__file__).parent.parent / "examples" / "repro"


def spec(tmp_path: Path, text: str) -> repro.Spec:
    (tmp_path / "make.py").write_text("print('hi')\n")
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return repro.load_spec(path)


def test_examples_are_valid() -> None:
    for path in EXAMPLES.glob("*.toml"):
        loaded = repro.load_spec(path)
        assert loaded.source() is not None and loaded.source().exists()  # type: ignore[union-attr]


@pytest.mark.parametrize("text, message", [
    ('[producer]\nscript = "make.py"\n[consumers]\ntensorflow = "all"', "'producer.tensorflow': required"),
    ('[producer]\nartifact = "x.pb"\nscript = "make.py"\n[consumers]\ntensorflow = "all"', "exactly one of"),
    ('[producer]\nartifact = "nope.pb"\n[consumers]\ntensorflow = "all"', "nope.pb does not exist"),
    ('[producer]\nartifact = "make.py"\n[consumers]\ntensorflw = "all"', "did you mean 'tensorflow'"),
    ('[producer]\nartifact = "make.py"\n', "'consumers.tensorflow': required"),
    ('[producer]\nartifact = "make.py"\nformat = "onnx"\n[consumers]\ntensorflow = "all"', "unknown format 'onnx'"),
    ('[producer]\nartifact = "make.py"\nformat = "tflite"\n[consumers]\ntensorflow = "all"\nloader = "keras2"',
     "'consumers.loader': keras2 does not read a tflite (it reads keras_saved_model, saved_model, keras_v3, keras_h5)"),
    ('[producer]\nscript = "make.py"\ntensorflow = "latest"\n[consumers]\ntensorflow = "all"',
     "'producer.tensorflow': 'latest' is not a TensorFlow version"),
    ('[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = []', "'consumers.tensorflow': must not be empty"),
    ('[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = ""', "'consumers.tensorflow': empty"),
    ('[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = "all"\nimage = "tpu"', "'consumers.image': 'tpu'"),
    ('[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = "all"\ndocker_image = "x:{tf}"\n',
     "unknown placeholder '{tf}'"),
    ('timeout = nan\n[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = "all"', "key 'timeout'"),
    ('name = "a/b"\n[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = "all"', "key 'name'"),
    ('[producer]\nscript = "."\ntensorflow = "2.15"\n[consumers]\ntensorflow = "all"', "is not a file"),
    ('[producer]\nartifact = "make.py"\ntensorflow = ">=2.10"\n[consumers]\ntensorflow = "all"',
     "a range of producers needs a 'script'"),
    ('[producer]\nscript = "make.py"\ntensorflow = ">=2.1x,<"\n[consumers]\ntensorflow = "all"',
     "key 'producer.tensorflow': '>=2.1x,<' is not a version or a range"),
])
def test_bad_specs(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        spec(tmp_path, text)


def test_loaders_are_the_agents() -> None:
    """The agent's catalog; the names as the README documents them."""
    assert set(repro.agent_loaders()) >= {"tf1_session", "tf2_load", "import_graph_def", "keras2", "keras3",
                                          "tflite_interpreter", "checkpoint_restore"}


def test_ranges_expand_to_newest_patch_per_minor_or_every_patch(tmp_path: Path) -> None:
    s = spec(tmp_path, '[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = ">=1.12,<2"')
    assert repro.consumer_versions(s, FakeCatalog()) == ["1.13.2"]
    assert repro.consumer_versions(s, FakeCatalog(), every_patch=True) == ["1.13.1", "1.13.2"]
    listed = spec(tmp_path, '[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = ["1.13", "2.15"]')
    assert repro.consumer_versions(listed, FakeCatalog()) == ["1.13", "2.15"]
    with pytest.raises(SandboxError, match="no TensorFlow release matches"):
        repro.consumer_versions(spec(tmp_path, '[producer]\nartifact = "make.py"\n[consumers]\ntensorflow = ">9"'),
                                FakeCatalog())


def test_artifact_detection(tmp_path: Path) -> None:
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    assert repro.find_artifact(tmp_path) == (tmp_path / "sm", "saved_model")
    assert repro.find_artifact(EXAMPLES / "batch_matmul_tf1.15.pb")[1] == "frozen_graph"
    with pytest.raises(SandboxError, match="no model found"):
        repro.find_artifact(tmp_path / "sm" / "saved_model.pb")


def test_manifest_carries_the_static_ops(tmp_path: Path) -> None:
    repro.write_manifest(tmp_path, EXAMPLES / "batch_matmul_tf1.15.pb", "frozen_graph", "artifact")
    [record] = read_jsonl(tmp_path / "manifest.jsonl")
    assert "BatchMatMulV2" in record["ops"] and record["inputs"] is None


def test_a_corrupt_model_still_goes_to_the_consumers(tmp_path: Path) -> None:
    bad = tmp_path / "model.pb"
    bad.write_bytes(b"\x0a\xff\xff\xff not a graph")
    repro.write_manifest(tmp_path / "producer", bad, "frozen_graph", "artifact")
    [record] = read_jsonl(tmp_path / "producer" / "manifest.jsonl")
    assert record["status"] == "exported" and record["ops"] == []
    assert "corrupt or truncated GraphDef" in record["reason"]


def test_the_consumers_of_a_users_model_run_on_a_matrix_from_the_parser(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """run_consumers end to end (fake environments and agent): the model is stored
    as the one producer, every consumer loads it with each of its format's loaders,
    and the document is that of matrix.for_model's matrix."""
    import sys

    from test_runner import FakeEnv, make_cell

    from sandbox import cellrun, matrix
    from sandbox.pythons import Interpreter

    shutil.copy(EXAMPLES / "batch_matmul_tf1.15.pb", tmp_path / "model.pb")
    (tmp_path / "spec.toml").write_text('name = "mm"\n[producer]\nartifact = "model.pb"\n'
                                        '[consumers]\ntensorflow = ["1.13", "1.14"]\n')
    spec = repro.load_spec(tmp_path / "spec.toml")
    monkeypatch.setattr(cellrun, "environment", FakeEnv)
    producer = repro.prepare_producer(spec, tmp_path / "run", FakeCatalog(), {}, lambda e: None)  # type: ignore[arg-type]
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    cells = [make_cell(v, me) for v in ("1.13", "1.14")]
    found = repro.run_consumers(spec, cells, tmp_path / "run", producer, 2, lambda e: None)
    assert (found.probes, found.formats) == ([matrix.MODEL_PROBE], ["frozen_graph"])
    assert [(l.consumer, l.producer, l.loader, l.status.value) for l in found.loads] == [
        (c.id, "artifact", "import_graph_def", "ok") for c in cells]
    assert [c.status.value for c in found.cells] == ["ok", "ok"]
