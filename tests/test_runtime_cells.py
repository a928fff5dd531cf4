"""Runtime cells in a matrix and a plan: Keras on a backend, LiteRT,
tflite-runtime, the nightly TF, extra packages pinned by TF version, roles
(on a catalog built from real file names and upload dates, tests/test_plan.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_plan import PYTHONS, FakeCatalog, interp, x86  # noqa: F401  (x86: the autouse fixture)

from sandbox import matrix, plan
from sandbox.errors import ConfigError
from sandbox.pythons import Discovery

PYS = Discovery({"3.7": interp("3.7.16"), "3.11": interp("3.11.7")}, ("/py",))


def cells(text: str, tmp_path: Path, pythons: Discovery = PYS) -> list[plan.Cell]:
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return plan.plan(matrix.load(path), FakeCatalog(), pythons)


def test_each_runtime_is_a_family_of_its_own_beside_the_tf_cells(tmp_path: Path) -> None:
    found = cells("""
tensorflow = "2.15"
keras = "3.5"
keras_backend = ["jax", "tensorflow"]
ai_edge_litert = "1.2"
tflite_runtime = "2.14"
""", tmp_path)
    assert [c.id for c in found] == [
        "tf2.15.1-py3.11-cpu",
        # Keras 3.5.0 (2024-08-12) on the newest jaxlib out by then (0.4.31 of 2024-07-30, not 0.4.35)
        "keras3.5.0-jax0.4.31-py3.11-cpu",
        # ... and on the newest TensorFlow out by then: the catalog has tensorflow-cpu 2.15.1 (2024-03-09)
        "keras3.5.0-tf2.15.1-py3.11-cpu",
        "litert1.2.0-py3.11-cpu",
        "tflite-runtime2.14.0-py3.7-cpu",  # its only wheel is for Python 3.7
    ]
    jax, keras_tf, litert, tflite = found[1:]
    assert jax.requirements == ("keras==3.5.0", "jaxlib==0.4.31", "jax") and jax.tensorflow is None
    assert jax.variables == {"KERAS_BACKEND": "jax"} and jax.overrides == ()
    assert jax.install_args == ("--exclude-newer", "2024-08-13T00:00:00Z")  # a day after the Keras release
    assert jax.loaders == ("keras3",) and jax.writes("keras_v3") and not jax.writes("saved_model")
    assert jax.expected == {"keras": "3.5.0", "jaxlib": "0.4.31"}
    # TF pins its own keras (2.15 wants keras < 2.16): the Keras cell's keras overrides that pin
    assert keras_tf.requirements == ("keras==3.5.0", "tensorflow-cpu==2.15.1") and keras_tf.tensorflow == "2.15.1"
    assert keras_tf.overrides == ("keras==3.5.0",) and keras_tf.variables == {"KERAS_BACKEND": "tensorflow"}
    assert litert.requirements == ("ai-edge-litert==1.2.0",) and litert.tensorflow is None
    assert litert.loaders == ("ai_edge_litert",) and not litert.writes("tflite")
    assert tflite.loaders == ("tflite_runtime",) and tflite.as_of == "2023-10-04T00:00:00Z"
    assert found[0].loaders == tuple(n for n in found[0].loaders if n not in ("ai_edge_litert", "tflite_runtime"))


def test_an_include_may_pin_the_tensorflow_of_a_keras_cell(tmp_path: Path) -> None:
    [cell] = cells('[[include]]\nkeras = "3.0"\ntensorflow = "2.15"\npython = "3.11"', tmp_path)
    # Keras 3.0.5 (2024-02-14) on TF 2.15.1 (2024-03-09): the later release dates the dependencies
    assert cell.id == "keras3.0.5-tf2.15.1-py3.11-cpu"
    assert cell.as_of == "2024-03-10T00:00:00Z"


def test_a_keras_cell_with_no_backend_release_of_its_time_is_skipped(tmp_path: Path) -> None:
    # no TensorFlow with a Python 3.11 wheel was out by Keras 3.0.5's release in this catalog
    [cell] = cells('keras = "3.0"', tmp_path)
    assert cell.id == "keras3.0-tensorflow-pyauto-cpu" and cell.skip is not None
    assert "no installed Python (3.7, 3.11) has wheels for keras 3.0 and a tensorflow-cpu release out by then" in cell.skip


def test_runtime_ranges_expand_to_every_minor(tmp_path: Path) -> None:
    found = cells('keras = ">=3.0"\nkeras_backend = "jax"\n[[exclude]]\nkeras = "3.0"', tmp_path)
    assert [c.id for c in found] == ["keras3.5.0-jax0.4.31-py3.11-cpu"]  # 2.15.0 is outside the range


def test_the_nightly_cell_is_the_newest_build_with_a_wheel_here(tmp_path: Path) -> None:
    [cell] = cells('tensorflow = "nightly"', tmp_path)
    # the 2026-10-27 build has a macOS wheel only
    assert cell.id == "tf2.23.0.dev20261026-py3.11-cpu" and cell.nightly
    assert cell.requirement == "tf-nightly==2.23.0.dev20261026" and cell.tensorflow == "2.23.0.dev20261026"


def test_a_package_pinned_by_tf_version_is_taken_as_of_its_own_release(tmp_path: Path) -> None:
    [cell] = cells('tensorflow = "2.15"\npackages = ["tf-keras=={tensorflow_minor}.*"]', tmp_path)
    assert cell.id == "tf2.15.1-py3.11-cpu+tf-keras"
    assert cell.requirements == ("tensorflow==2.15.1", "tf-keras==2.15.*")
    # TF 2.15.1 (the `tensorflow` wheel, beside an extra package) came out on 2024-03-08 at 00:00, the
    # tf-keras 2.15.1 made for it 12 hours later: TF's date for the rest, tf-keras's own for tf-keras
    assert cell.install_args == ("--exclude-newer", "2024-03-09T00:00:00Z",
                                 "--exclude-newer-package", "tf-keras=2024-03-09T12:00:00Z")


def test_a_package_released_before_its_tf_takes_the_tf_date(tmp_path: Path) -> None:
    [cell] = cells('tensorflow = "2.15"\npackages = ["tf-keras==2.15.0"]', tmp_path)
    assert cell.install_args == ("--exclude-newer", "2024-03-09T00:00:00Z")


def test_roles_and_related_reports(tmp_path: Path) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text('related = ["tf-map"]\nai_edge_litert = "1.2"\nrole = "consumer"\n'
                    '[[include]]\ntensorflow = "2.15"\nrole = "producer"')
    mx = matrix.load(path)
    assert [(c.runtime, c.role) for c in mx.cells] == [("ai_edge_litert", "consumer"), ("", "producer")]
    assert mx.related == ("tf-map",)


def test_excludes_match_runtime_keys(tmp_path: Path) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text('keras = ["3.0", "3.5"]\nkeras_backend = ["jax", "tensorflow"]\n'
                    '[[exclude]]\nkeras = "3.0"\nkeras_backend = "jax"')
    assert [c.label for c in matrix.load(path).cells] == [
        "keras3.0-tensorflow-pyauto-cpu", "keras3.5-jax-pyauto-cpu", "keras3.5-tensorflow-pyauto-cpu"]


@pytest.mark.parametrize("text, message", [
    ('keras_backend = "jax"\ntensorflow = "2.15"', "key 'keras_backend': only Keras cells have a backend"),
    ('keras = "3.5"\nkeras_backend = "torch"', "key 'keras_backend': 'torch' is not one of tensorflow, jax"),
    ('keras = "three"', "key 'keras': 'three' is not a keras version like \"1.2\", or a range like \">=1.0\""),
    ('ai_edge_litert = "1.2"\nbackend = "docker"\npython = "3.11"',
     "key 'ai_edge_litert': ai_edge_litert cells run on the CPU in the venv backend"),
    ('tflite_runtime = "2.14"\nimage = "gpu"', "key 'tflite_runtime': tflite_runtime cells run on the CPU"),
    ('tensorflow = "2.15"\n[[include]]\nkeras = "3.5"\nai_edge_litert = "1.2"',
     "key 'include[0]': one runtime per cell, not keras and ai_edge_litert"),
    ('tensorflow = "2.15"\n[[include]]\nai_edge_litert = "1.2"\ntensorflow = "2.15"',
     "key 'include[0].tensorflow': a ai_edge_litert cell holds no TensorFlow"),
    ('tensorflow = "2.15"\n[[include]]\nkeras = "3.5"\nkeras_backend = "jax"\ntensorflow = "2.15"',
     "key 'include[0].tensorflow': pins the TensorFlow of the tensorflow backend, not of jax"),
    ('tensorflow = "2.15"\n[[include]]\ntensorflow = "2.15"\nkeras_backend = "jax"',
     "key 'include[0].keras_backend': only Keras cells have a backend"),
    ('tensorflow = "2.15"\nrole = "reader"', "key 'role': 'reader' is not one of both, producer, consumer"),
    ('tensorflow = "2.15"\n[[include]]\ntensorflow = "2.15"\nrole = "x"', "key 'include[0].role': 'x' is not one of"),
    ('tensorflow = "2.15"\nrelated = ["../x"]', "key 'related[0]': '../x' is not a plain folder name"),
    ('tensorflow = "2.15"\npackages = ["tf-keras=={tf_minor}.*"]', "key 'packages[0]': unknown placeholder '{tf_minor}'"),
    ('tensorflow = "2.15"\npackages = ["tf-keras==={"]', "key 'packages[0]': 'tf-keras==={' is not a requirement"),
    ('tensorflow = "nightly"\nbackend = "docker"\npython = "3.11"', "key 'tensorflow': the nightly TensorFlow cell runs in"),
    ('python = "3.11"', "key 'tensorflow': required (a list of versions like [\"1.15\", \"2.15\"]), or a runtime: keras"),
])
def test_bad_runtime_settings_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        matrix.load(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_runtime_without_a_wheel_for_any_installed_python_is_skipped(tmp_path: Path) -> None:
    [cell] = cells('tflite_runtime = "2.14"', tmp_path, Discovery({"3.11": interp("3.11.7")}, ()))
    assert cell.id == "tflite-runtime2.14-pyauto-cpu"
    assert cell.skip == "no installed Python has a tflite-runtime 2.14 wheel (it supports 3.7; found 3.11)"
    [cell] = cells('ai_edge_litert = "9.0"', tmp_path)
    assert cell.skip == "no ai-edge-litert release matches '9.0' on the package index for Linux x86_64"
