"""Planning and release resolution, on a catalog built from real file names."""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path

import pytest

from sandbox import cli, matrix, plan, versions
from sandbox.cli import environments
from sandbox.errors import ConfigError, SandboxError
from sandbox.pythons import Discovery, Interpreter

Wheels = list[tuple[str, ...]]  # (file name, upload time[, requires-python])
FILES: Wheels = [
    ("tensorflow-1.13.1-cp37-cp37m-manylinux1_x86_64.whl", "2019-02-26T00:00:00Z"),
    ("tensorflow-1.13.2-cp37-cp37m-manylinux1_x86_64.whl", "2019-07-15T10:00:00Z"),
    ("tensorflow-1.13.2-cp36-cp36m-manylinux1_x86_64.whl", "2019-07-16T09:27:42Z"),
    ("tensorflow-1.13.2-cp37-cp37m-macosx_10_11_x86_64.whl", "2019-07-15T10:00:00Z"),
    ("tensorflow-2.15.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "2024-03-08T00:00:00Z"),
    ("tensorflow-2.16.0rc0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "2024-02-01T00:00:00Z"),
    ("tensorflow-1.11.0-cp36-cp36m-manylinux1_x86_64.whl", "2018-09-27T00:00:00Z"),
]
CPU_FILES: Wheels = [
    ("tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "2024-03-09T00:00:00Z"),
]
# Runtimes beside TF (file names and dates as on PyPI)
RUNTIME_FILES: dict[str, Wheels] = {
    "tf-keras": [("tf_keras-2.15.0-py3-none-any.whl", "2023-11-07T00:00:00Z"),
                 ("tf_keras-2.15.1-py3-none-any.whl", "2024-03-08T12:00:00Z")],
    "keras": [("keras-3.0.5-py3-none-any.whl", "2024-02-14T00:00:00Z", ">=3.9"),
              ("keras-3.5.0-py3-none-any.whl", "2024-08-12T00:00:00Z", ">=3.9"),
              ("keras-2.15.0-py3-none-any.whl", "2023-11-07T00:00:00Z", ">=3.9")],
    "jaxlib": [("jaxlib-0.4.24-cp311-cp311-manylinux2014_x86_64.whl", "2024-02-07T00:00:00Z"),
               ("jaxlib-0.4.31-cp311-cp311-manylinux2014_x86_64.whl", "2024-07-30T00:00:00Z"),
               ("jaxlib-0.4.35-cp311-cp311-manylinux2014_x86_64.whl", "2024-10-22T00:00:00Z")],
    "ai-edge-litert": [("ai_edge_litert-1.2.0-cp311-cp311-manylinux_2_17_x86_64.whl", "2025-03-13T00:00:00Z")],
    "tflite-runtime": [("tflite_runtime-2.14.0-cp37-cp37m-manylinux2014_x86_64.whl", "2023-10-03T00:00:00Z")],
    "tf-nightly": [("tf_nightly-2.23.0.dev20261025-cp311-cp311-manylinux_2_27_x86_64.whl", "2026-10-25T00:00:00Z"),
                   ("tf_nightly-2.23.0.dev20261026-cp311-cp311-manylinux_2_27_x86_64.whl", "2026-10-26T00:00:00Z"),
                   ("tf_nightly-2.23.0.dev20261027-cp311-cp311-macosx_12_0_arm64.whl", "2026-10-27T00:00:00Z")],
}


class FakeCatalog(versions.Catalog):
    def __init__(self) -> None:
        super().__init__(offline=True)
        for package, files in (("tensorflow", FILES), ("tensorflow-cpu", CPU_FILES), ("tensorflow-gpu", []),
                               *RUNTIME_FILES.items()):
            wheels = [versions._wheel({"filename": f[0], "upload-time": f[1], "requires-python": f[2] if len(f) > 2 else ""})
                      for f in files]
            self._wheels[package] = [w for w in wheels if w]


def interp(version: str) -> Interpreter:
    major, minor, patch = map(int, version.split("."))
    return Interpreter(Path(f"/py/{version}/bin/python3"), (major, minor, patch), "x86_64", "pyenv")


PYTHONS = Discovery({"3.7": interp("3.7.16"), "3.11": interp("3.11.7")}, ("PATH", "/py"))


@pytest.fixture(autouse=True)
def x86(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")


def test_minor_means_newest_patch_for_that_python() -> None:
    found = FakeCatalog().resolve("1.13", "3.7", ("tensorflow",))
    assert found is not None and found.requirement == "tensorflow==1.13.2"
    # the release's last upload (any Python) dates it; a day later bounds its dependencies
    assert found.uploaded == dt.datetime(2019, 7, 16, 9, 27, 42, tzinfo=dt.timezone.utc)
    assert found.exclude_newer == "2019-07-17T09:27:42Z"


def test_prereleases_only_when_asked() -> None:
    catalog = FakeCatalog()
    assert catalog.resolve("2.16", "3.11", ("tensorflow",)) is None
    found = catalog.resolve("2.16.0rc0", "3.11", ("tensorflow",))
    assert found is not None and found.version == "2.16.0rc0"


def test_cpu_build_preferred_at_equal_version() -> None:
    found = FakeCatalog().resolve("2.15", "3.11", plan.PACKAGES["cpu"])
    assert found is not None and found.requirement == "tensorflow-cpu==2.15.1"


def cells(text: str, tmp_path: Path) -> list[plan.Cell]:
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return plan.plan(matrix.load(path), FakeCatalog(), PYTHONS)


def test_auto_picks_newest_installed_python_with_a_wheel(tmp_path: Path) -> None:
    found = cells('tensorflow = ["1.13", "2.15"]', tmp_path)
    assert [c.id for c in found] == ["tf1.13.2-py3.7-cpu", "tf2.15.1-py3.11-cpu"]
    assert found[0].install_args == ("--exclude-newer", "2019-07-17T09:27:42Z")


def test_unavailable_cells_are_skipped_with_a_reason(tmp_path: Path) -> None:
    found = cells("""
tensorflow = ["1.99", "1.13"]
python = ["3.11", "3.6"]
""", tmp_path)
    reasons = {c.id: c.skip for c in found}
    assert reasons["tf1.99-py3.11-cpu"] == "no TensorFlow release matches '1.99' on the package index"
    assert reasons["tf1.13-py3.11-cpu"] == "TensorFlow 1.13 has no wheel for Python 3.11 (it has 3.6, 3.7)"
    assert "Python 3.6 not found" in str(reasons["tf1.13-py3.6-cpu"])
    assert "uv python install 3.6" in str(reasons["tf1.13-py3.6-cpu"])


def test_same_resolved_cell_is_planned_once(tmp_path: Path) -> None:
    assert len(cells('tensorflow = ["1.13", "1.13.2"]', tmp_path)) == 1


def test_old_tf_gets_an_old_setuptools(tmp_path: Path) -> None:
    pys = Discovery({"3.6": interp("3.6.15")}, ())
    [cell] = plan.plan(matrix.parse({"tensorflow": "1.11", "python": "3.6"}, tmp_path / "m.toml"), FakeCatalog(), pys)
    assert cell.install_args[-2:] == ("--exclude-newer-package", "setuptools=2020-01-01")


def test_gpu_cells_install_cuda_wheels_from_2_14(tmp_path: Path) -> None:
    [cell] = cells('tensorflow = "2.15"\nimage = "gpu"', tmp_path)
    assert cell.requirement == "tensorflow[and-cuda]==2.15.1"


def test_docker_cells_need_no_host_python_and_fill_the_image_template(tmp_path: Path) -> None:
    found = cells("""
tensorflow = "2.15"
python = "3.11"
backend = ["venv", "docker"]
image = ["cpu", "gpu"]
""", tmp_path)
    assert [c.id for c in found] == ["tf2.15.1-py3.11-cpu", "tf2.15.1-py3.11-cpu-docker", "tf2.15.1-py3.11-gpu",
                                     "tf2.15.1-py3.11-gpu-docker"]
    docker_cpu, docker_gpu = found[1], found[3]
    assert docker_cpu.python is None and docker_cpu.python_version == "3.11"
    assert docker_cpu.docker_image == "tensorflow/tensorflow:2.15.1"
    assert docker_gpu.docker_image == "tensorflow/tensorflow:2.15.1-gpu"
    assert docker_cpu.requirement == "tensorflow-cpu==2.15.1" and docker_cpu.install_args == found[0].install_args
    assert docker_gpu.where == "image tensorflow/tensorflow:2.15.1-gpu"


def test_docker_cell_python_missing_on_the_host_is_no_reason_to_skip(tmp_path: Path) -> None:
    pys = Discovery({}, ())
    text = {"tensorflow": "1.13", "python": "3.7", "backend": "docker", "docker_image": "py:{python}"}
    [cell] = plan.plan(matrix.parse(text, tmp_path / "m.toml"), FakeCatalog(), pys)
    assert (cell.id, cell.skip, cell.docker_image) == ("tf1.13.2-py3.7-cpu-docker", None, "py:3.7")
    text["python"] = "3.11"
    [cell] = plan.plan(matrix.parse(text, tmp_path / "m.toml"), FakeCatalog(), pys)
    assert cell.skip == "TensorFlow 1.13 has no wheel for Python 3.11 (it has 3.6, 3.7)"


def test_cells_with_extra_packages_install_tensorflow_itself(tmp_path: Path) -> None:
    # tf-keras depends on `tensorflow`: beside tensorflow-cpu it would pull in a second TF
    [cell] = cells('tensorflow = "2.15"\npython = "3.11"\npackages = ["tf-keras~=2.15.0"]', tmp_path)
    assert cell.id == "tf2.15.1-py3.11-cpu+tf-keras"
    assert cell.requirements == ("tensorflow==2.15.1", "tf-keras~=2.15.0")


def test_a_range_is_every_minor_in_the_catalog(tmp_path: Path) -> None:
    # 1.11 is older than the range, 2.16.0rc0 a pre-release, the macOS wheel another platform
    assert [c.id for c in cells('tensorflow = ">=1.12"', tmp_path)] == ["tf1.13.2-py3.7-cpu", "tf2.15.1-py3.11-cpu"]
    # "all": 1.11 too, whose only wheel is for Python 3.6, which is not installed: a skip with its reason
    found = cells('tensorflow = "all"', tmp_path)
    assert [(c.id, bool(c.skip)) for c in found] == [("tf1.11-pyauto-cpu", True), ("tf1.13.2-py3.7-cpu", False),
                                                      ("tf2.15.1-py3.11-cpu", False)]
    found = cells('tensorflow = ">=1.12,<2"\n[[include]]\ntensorflow = ">=2"\npython = "3.11"', tmp_path)
    assert [c.id for c in found] == ["tf1.13.2-py3.7-cpu", "tf2.15.1-py3.11-cpu"]


def test_excludes_apply_to_the_minors_of_a_range(tmp_path: Path) -> None:
    found = cells('tensorflow = ">=1.12"\n[[exclude]]\ntensorflow = "1.13"', tmp_path)
    assert [c.id for c in found] == ["tf2.15.1-py3.11-cpu"]


def test_a_range_that_matches_nothing_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"matrix.toml: key 'tensorflow': no TensorFlow release .* matches '>=3'"):
        cells('tensorflow = ">=3"', tmp_path)


# A catalog with a Keras 3 era TF: the map's tf-keras cells start at 2.16.
MAP_FILES: dict[str, Wheels] = {
    "tensorflow": [*FILES, ("tensorflow-2.16.2-cp311-cp311-manylinux_2_17_x86_64.whl", "2024-06-28T00:00:00Z")],
    "tensorflow-cpu": [*CPU_FILES, ("tensorflow_cpu-2.16.2-cp311-cp311-manylinux_2_17_x86_64.whl", "2024-06-28T00:00:00Z")],
    "tf-keras": [*RUNTIME_FILES["tf-keras"], ("tf_keras-2.16.0-py3-none-any.whl", "2024-03-09T00:00:00Z")],
    "tf-nightly": RUNTIME_FILES["tf-nightly"],
}


class MapCatalog(FakeCatalog):
    def __init__(self) -> None:
        super().__init__()
        for package, files in MAP_FILES.items():
            self._wheels[package] = [w for w in (versions._wheel({"filename": f, "upload-time": t}) for f, t in files) if w]


MAP_CELLS = ["tf1.13.2-py3.7-cpu", "tf2.15.1-py3.11-cpu", "tf2.16.2-py3.11-cpu"]
EXTRA_CELLS = ["tf2.16.2-py3.11-cpu+tf-keras", "tf2.23.0.dev20261026-py3.11-cpu"]


def test_the_map_matrix_is_every_minor_from_1_12(tmp_path: Path) -> None:
    mx = matrix.load(Path(__file__).parent.parent / "matrices" / "tf-map.toml")
    assert [(c.tensorflow, c.packages) for c in mx.cells] == [(">=1.12", ())]  # every minor
    assert (mx.probes, mx.formats) == (matrix.BUILTIN_PROBES, matrix.FORMATS)
    assert [c.id for c in plan.plan(mx, MapCatalog(), PYTHONS)] == MAP_CELLS
    # tf-keras beside every minor from 2.16 (the one made for it); the nightly build; the map's
    # cells as references (measured only in pairs with those)
    extras = matrix.load(Path(__file__).parent.parent / "matrices" / "tf-extras.toml")
    assert [(c.tensorflow, c.packages, c.role) for c in extras.cells] == [
        (">=1.12", (), "reference"), (">=2.16", ("tf-keras=={tensorflow_minor}.*",), "both"), ("nightly", (), "both")]
    assert extras.related == ("tf-map", "keras-map", "tflite-map")
    cells = plan.plan(extras, MapCatalog(), PYTHONS)
    assert [c.id for c in cells] == MAP_CELLS + EXTRA_CELLS
    assert plan.references(cells) == frozenset(MAP_CELLS)


def test_plan_resolves_the_map_offline_from_the_cached_catalog(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for package, files in MAP_FILES.items():
        path = cache / "catalog" / f"{package}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([{"filename": f, "upload-time": t} for f, t in files]))
    mx = Path(__file__).parent.parent / "matrices" / "tf-map.toml"
    assert cli.main(["plan", "--offline", str(mx)]) == 0
    out = capsys.readouterr().out
    assert "(tf-map): 3 cells" in out  # every minor >= 1.12 the cached catalog holds
    assert all(cell in out for cell in MAP_CELLS)


@pytest.mark.parametrize(("cell_id", "backend", "packages", "requirements"), [
    ("tf2.15.1-py3.11-cpu", "venv", (), ("tensorflow-cpu==2.15.1",)),
    ("tf2.15.1-py3.11-cpu+tf-keras", "venv", ("tf-keras",), ("tensorflow==2.15.1", "tf-keras")),
    ("tf2.15.1-py3.11-cpu-docker", "docker", (), ("tensorflow-cpu==2.15.1",)),
    ("tf1.13.2-py3.7-cpu", "venv", (), ("tensorflow==1.13.2",)),
])
def test_shell_takes_every_cell_id_plan_prints(tmp_path: Path, cell_id: str, backend: str, packages: tuple[str, ...],
                                               requirements: tuple[str, ...]) -> None:
    """`sandbox shell` once refused the default matrix's own ...+tf-keras cell."""
    cell = environments.shell_cell(cell_id, tmp_path / "none.toml", FakeCatalog(), PYTHONS)
    assert (cell.id, cell.backend, cell.request.packages, cell.requirements) == (cell_id, backend, packages, requirements)


def test_shell_takes_a_cell_from_the_matrix_with_its_pinned_packages(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('tensorflow = ["2.15"]\npython = "3.11"\npackages = ["tf-keras==2.15.0"]\n')
    cell = environments.shell_cell("tf2.15.1-py3.11-cpu+tf-keras", path, FakeCatalog(), PYTHONS)
    assert cell.requirements == ("tensorflow==2.15.1", "tf-keras==2.15.0")
    with pytest.raises(SandboxError, match="is not a cell id like"):
        environments.shell_cell("tf2.15.1_py3.11", path, FakeCatalog(), PYTHONS)
