from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox import matrix
from sandbox.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return path


def test_cross_product_with_include_and_exclude(tmp_path: Path) -> None:
    m = matrix.load(write(tmp_path, """
tensorflow = ["1.15", "2.15"]
python = ["3.7", "3.11"]
[[exclude]]
tensorflow = "2.15"
python = "3.7"
[[exclude]]
tensorflow = "1.15"
python = "3.11"
[[include]]
tensorflow = "1.13"
"""))
    assert [c.label for c in m.cells] == ["tf1.15-py3.7-cpu", "tf2.15-py3.11-cpu", "tf1.13-py3.7-cpu"]
    assert m.name == "default" and m.probes == matrix.DEFAULT_PROBES


def test_python_defaults_to_auto(tmp_path: Path) -> None:
    m = matrix.load(write(tmp_path, 'name = "x"\ntensorflow = "2.15"\n'))
    assert m.cells == (matrix.CellRequest("2.15", "auto", "cpu", "venv"),)


@pytest.mark.parametrize("text, message", [
    ('tensorflw = ["1.15"]', "matrix.toml: key 'tensorflw': unknown key; did you mean 'tensorflow'?"),
    ("tensorflow = [1.15]", "key 'tensorflow[0]': expected a string, got 1.15 (float)"),
    ('tensorflow = ["1.15"]\nimage = "tpu"', "key 'image': 'tpu' is not one of cpu, gpu"),
    ('tensorflow = ["one"]', "key 'tensorflow[0]': 'one' is not a TensorFlow version"),
    ('tensorflow = ">=1.x"', "key 'tensorflow': '>=1.x' is not a TensorFlow version like \"1.15\" or \"2.15.1\", "
                             "or a range like \">=1.12\""),
    ('tensorflow = ["1.15"]\npython = "2"', "key 'python': '2' is not a Python version"),
    ('tensorflow = ["1.15"]\n[[include]]\npyton = "3.7"', "key 'include[0].pyton': unknown key; did you mean 'python'?"),
    ('tensorflow = ["1.15"]\ntimeout = -1', "key 'timeout': expected a positive number"),
    ('python = "3.7"', "key 'tensorflow': required"),
    ("tensorflow = [", "invalid TOML"),
    ("tensorflow = []", "key 'tensorflow': must not be empty"),
])
def test_bad_input_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        matrix.load(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        matrix.load(tmp_path / "nope.toml")


def test_default_matrix_is_valid() -> None:
    m = matrix.load(Path(__file__).parent.parent / "matrix.toml")
    assert len(m.cells) >= 5


def test_docker_cells_have_their_own_ids_and_an_image_template(tmp_path: Path) -> None:
    m = matrix.load(write(tmp_path, """
tensorflow = "2.15"
python = "3.11"
backend = ["venv", "docker"]
docker_image = "python:{python}-slim"
[[include]]
tensorflow = "2.15.0"
python = "3.11"
image = "gpu"
backend = "docker"
docker_image = "tensorflow/tensorflow:{tensorflow}{gpu}"
"""))
    assert [c.label for c in m.cells] == ["tf2.15-py3.11-cpu", "tf2.15-py3.11-cpu-docker", "tf2.15.0-py3.11-gpu-docker"]
    assert [c.docker_image for c in m.cells] == ["", "python:{python}-slim", "tensorflow/tensorflow:{tensorflow}{gpu}"]


def test_docker_image_defaults_to_the_official_images(tmp_path: Path) -> None:
    m = matrix.load(write(tmp_path, 'tensorflow = "2.15.0"\npython = "3.11"\nbackend = "docker"'))
    assert m.cells[0].docker_image == matrix.DEFAULT_DOCKER_IMAGE == "tensorflow/tensorflow:{tensorflow}{gpu}"


@pytest.mark.parametrize("text, message", [
    ('tensorflow = "2.15"\nbackend = "dokcer"', "key 'backend': 'dokcer' is not one of venv, docker"),
    ('tensorflow = "2.15"\ndocker_imag = "x"', "key 'docker_imag': unknown key; did you mean 'docker_image'?"),
    ('tensorflow = "2.15"\npython = "3.11"\ndocker_image = "tf:{tensorfow}"',
     "key 'docker_image': unknown placeholder '{tensorfow}'; did you mean '{tensorflow}'?"),
    ('tensorflow = "2.15"\ndocker_image = "a b"', "key 'docker_image': 'a b' is not an image reference"),
    ('tensorflow = "2.15"\ndocker_image = "tf:{"', "key 'docker_image': Single '{' encountered"),
    ('tensorflow = "2.15"\nbackend = "docker"', "key 'python': docker cells need an explicit Python version"),
    ('tensorflow = "2.15"\n[[include]]\ntensorflow = "2.15"\nbackend = "docker"',
     "key 'include[0].python': docker cells need an explicit Python version"),
    ('tensorflow = "2.15"\n[[include]]\ntensorflow = "2.15"\ndocker_imge = "x"',
     "key 'include[0].docker_imge': unknown key; did you mean 'docker_image'?"),
])
def test_bad_docker_settings_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        matrix.load(write(tmp_path, text))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_auto_python_is_fine_where_docker_cells_are_excluded(tmp_path: Path) -> None:
    m = matrix.load(write(tmp_path, 'tensorflow = "2.15"\nbackend = ["venv", "docker"]\n[[exclude]]\nbackend = "docker"'))
    assert [c.label for c in m.cells] == ["tf2.15-pyauto-cpu"]


def test_tolerances_per_probe_with_a_default(tmp_path: Path) -> None:
    m = matrix.load(write(tmp_path, """
tensorflow = ["1.15"]
[tolerance.default]
atol = 1e-5
[tolerance.lstm]
atol = 1e-3
rtol = 0.01
"""))
    assert m.tolerance("lstm") == matrix.Tolerance(1e-3, 0.01)
    assert m.tolerance("dense") == matrix.Tolerance(1e-5, matrix.DEFAULT_TOLERANCE[1])
    assert m.formats == matrix.FORMATS and m.probes == matrix.BUILTIN_PROBES


@pytest.mark.parametrize("text, message", [
    ('tensorflow = ["1.15"]\n[tolerance.lstm]\natl = 1', "key 'tolerance.lstm.atl': unknown key; did you mean 'atol'?"),
    ('tensorflow = ["1.15"]\n[tolerance.lstm]\natol = "big"', "key 'tolerance.lstm.atol': expected a number >= 0"),
    ('tensorflow = ["1.15"]\nformats = ["keras_h6"]', "key 'formats[0]': unknown format 'keras_h6'; did you mean 'keras_h5'?"),
    ('tensorflow = ["1.15"]\nprobes = ["lstn"]', "key 'probes[0]': unknown probe 'lstn'; did you mean 'lstm'?"),
    ('tensorflow = ["1.15"]\nprobe_modules = ["nope.py"]', "key 'probe_modules[0]': no Python file"),
])
def test_bad_probe_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        matrix.load(write(tmp_path, text))


def test_user_probe_modules_resolve_beside_the_matrix(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("from probes import Probe\nclass Mine(Probe):\n    name = 'my_probe'\nPROBES = [Mine()]\n")
    m = matrix.load(write(tmp_path, 'tensorflow = ["1.15"]\nprobes = ["my_probe"]\nprobe_modules = ["mine.py"]\n'))
    assert m.probe_modules == ((tmp_path / "mine.py").resolve(),) and m.probes == ("my_probe",)


def test_extra_packages_per_matrix_or_include_name_the_cell(tmp_path: Path) -> None:
    m = matrix.load(write(tmp_path, """
tensorflow = "2.18"
python = "3.11"
packages = ["tf-keras"]
[[include]]
tensorflow = "2.12"
python = "3.11"
packages = []
"""))
    assert [(c.label, c.packages) for c in m.cells] == [("tf2.18-py3.11-cpu+tf-keras", ("tf-keras",)),
                                                        ("tf2.12-py3.11-cpu", ())]


def test_a_bad_package_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'packages\[0\]': 'tf keras!' is not a requirement like \"tf-keras\""):
        matrix.load(write(tmp_path, 'tensorflow = "2.18"\npackages = ["tf keras!"]'))


@pytest.mark.parametrize("name", ["../../x", "..", ".", "", " ", "a/b", "a\\\\b", "-rf", "x\\u0000y", "x" * 101])
def test_a_name_must_be_a_plain_folder_name(tmp_path: Path, name: str) -> None:
    """`sandbox run` deletes and rewrites runs/<name> and reports/<name>."""
    with pytest.raises(ConfigError, match="key 'name': .*(not a plain folder name|must not be empty)"):
        matrix.load(write(tmp_path, f'name = "{name}"\ntensorflow = ["1.15"]\n'))


@pytest.mark.parametrize("name", ["default", "my-matrix_2.15", "nightly+tf-keras", "Mein Lauf"])
def test_plain_names_are_kept(tmp_path: Path, name: str) -> None:
    assert matrix.load(write(tmp_path, f'name = "{name}"\ntensorflow = ["1.15"]\n')).name == name


@pytest.mark.parametrize("value, shown", [("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("0", "0"), ("-1", "-1"),
                                          ('"abc"', "'abc'"), ("true", "True")])
def test_timeouts_must_be_finite_and_positive(tmp_path: Path, value: str, shown: str) -> None:
    with pytest.raises(ConfigError, match=f"key 'timeout': expected a positive number of seconds, got {shown}$"):
        matrix.load(write(tmp_path, f'tensorflow = ["1.15"]\ntimeout = {value}\n'))


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_tolerances_must_be_finite(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="key 'tolerance.dense.atol': expected a number >= 0"):
        matrix.load(write(tmp_path, f'tensorflow = ["1.15"]\n[tolerance.dense]\natol = {value}\n'))


PROBE = "from probes import Probe\n\n\nclass Base(Probe):\n    name = 'base_probe'\n\n\nclass Mine(Base):\n    input_shape = (1, 2)\n\n\n"


@pytest.mark.parametrize("module, probes, message", [
    ("def broken(:\n    pass\nPROBES = []\n", '["batchnorm"]', r"mine\.py line 1: invalid syntax"),
    (PROBE + "PROBES = [Mine()]\n", '["base_probe", "mine"]', r"key 'probes\[1\]': unknown probe 'mine'"),
    (PROBE + "PROBES = [Mine()]\n", '["bas_probe"]', r"unknown probe 'bas_probe'; did you mean 'base_probe'\?"),
    (PROBE, '["base_probe"]', r"mine\.py defines no top-level PROBES list"),
    (PROBE + "PROBES = []\n", '["base_probe"]', r"PROBES is empty"),
    (PROBE.replace("base_probe", "lstm") + "PROBES = [Mine()]\n", '["lstm"]', r"defines probe 'lstm', a name already taken"),
    ("PROBES = [1]\x00\n", '["x"]', r"mine\.py: source code string cannot contain null bytes"),
])
def test_probe_modules_are_checked_on_the_host(tmp_path: Path, module: str, probes: str, message: str) -> None:
    """Without importing them (they import TF): a syntax error or an unknown
    probe is known before any environment is provisioned."""
    (tmp_path / "mine.py").write_text(module)
    with pytest.raises(ConfigError, match=message):
        matrix.load(write(tmp_path, f'tensorflow = ["1.15"]\nprobes = {probes}\nprobe_modules = ["mine.py"]\n'))


def test_probe_names_found_through_base_classes_and_the_example() -> None:
    example = Path(__file__).parent.parent / "examples" / "my_probes.py"
    assert matrix.probe_names(example, "probe_modules", "m.toml") == ["softplus_mlp"]


def test_probe_names_computed_at_run_time_are_left_to_the_cell(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("from probes import Probe\nPROBES = [make(n) for n in ('a', 'b')]\n")
    m = matrix.load(write(tmp_path, 'tensorflow = ["1.15"]\nprobes = ["a"]\nprobe_modules = ["mine.py"]\n'))
    assert m.probes == ("a",)


@pytest.mark.parametrize("text, message", [
    ('probes = ["dense", "conv2d", "dense"]', "key 'probes[2]': 'dense' is listed twice (first as probes[0])"),
    ('formats = ["saved_model", "saved_model"]', "key 'formats[1]': 'saved_model' is listed twice"),
    ('[tolerance.nosuchprobe]\natol = 1e-3', "key 'tolerance.nosuchprobe': unknown probe 'nosuchprobe'"),
    ('[tolerance.batchnrom]\natol = 1e-3', "did you mean 'batchnorm'?"),
])
def test_repeated_probes_and_formats_and_unknown_tolerances_are_refused(tmp_path: Path, text: str, message: str) -> None:
    """A repeated probe or format was measured and counted twice; a tolerance
    for a probe that does not exist was ignored without a word."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        matrix.load(write(tmp_path, f'tensorflow = ["2.15"]\n{text}\n'))


def test_a_tolerance_for_a_probe_not_in_this_matrix_but_known_is_fine(tmp_path: Path) -> None:
    m = matrix.load(write(tmp_path, 'tensorflow = ["2.15"]\nprobes = ["dense"]\n[tolerance.attention]\natol = 1e-3\n'))
    assert m.tolerance("attention").atol == 1e-3
