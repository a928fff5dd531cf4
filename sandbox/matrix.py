"""Read and validate `matrix.toml`, expand it to cell requests.

The file is parsed once into frozen dataclasses. Axes (`tensorflow`, `python`,
`image`, `backend`) form a cross product; `exclude` tables drop matching
combinations and `include` tables add cells, like a CI matrix.

`docker_image` is a setting, not an axis: the image reference docker cells run
in, top level or per include. It may name the cell's versions as
`{tensorflow}` (the resolved release, "2.15.1"), `{python}` ("3.11") and
`{gpu}` ("-gpu" in gpu cells, else ""), so one template serves every cell.

`python_image` is a setting too: where a venv cell's Python is not installed
here (a CI runner: uv offers no CPython below 3.8), the cell runs in this
image with the docker backend instead ("python:{python}-slim"), under the same
id. With it, `python = "auto"` means the newest Python the release has a wheel
for, installed or not, so that every machine plans the same cells.

`tensorflow` values may be ranges (">=1.12", ">=1.13,<2", "all"): every minor
release in it, found in the release catalog when the matrix is planned
(sandbox.plan), so a new TensorFlow release joins the matrix by itself;
"nightly" is the newest tf-nightly build.

Runtime cells (sandbox.runtimes): `keras`, `ai_edge_litert` and
`tflite_runtime` are axes of their own, versions or ranges like `tensorflow`;
each forms its own family of cells (crossed with python, image and backend,
and Keras with `keras_backend`), beside the TensorFlow cells. An include with
`keras` and `tensorflow` pins the TensorFlow of a Keras cell's backend.

`role` ("both", "producer", "consumer", "reference"; top level or per include)
says what a cell does: a map of runtimes lists TF cells as producers only, so
it loads their artifacts without measuring TF-to-TF pairs again; a map of
cells beside another (tf-keras and nightly cells beside the TF map) lists that
map's cells as references: they export and load, but only in pairs with this
map's own cells, never with each other (those pairs are the other map's). `related` names other
reports (folders beside this one) that the report links to.
"""

from __future__ import annotations

import ast
import difflib
import itertools
import math
import re
import string
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from sandbox import runtimes
from sandbox.errors import ConfigError
from sandbox.versions import is_range

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older host Pythons only
    import tomli as tomllib

AXES = ("tensorflow", "python", "image", "backend")
RUNTIME_AXES = (*runtimes.KEYS, "keras_backend")
FAMILIES = ("tensorflow", *runtimes.KEYS)  # each makes cells of its own kind
IMAGES = ("cpu", "gpu")
BACKENDS = ("venv", "docker")
ROLES = ("both", "producer", "consumer", "reference")
REFERENCE = "reference"  # its pairs with other reference cells are another map's
NIGHTLY = "nightly"  # tensorflow = "nightly": the newest tf-nightly build
# The agent's built-in probes and formats (sandbox/agent/zoo.py, exporters.py).
BUILTIN_PROBES = ("batchnorm", "batch_matmul", "conv2d", "dense", "lstm", "gru", "einsum", "layernorm",
                  "attention", "bn_inference", "quantizable", "cudnn_lstm", "flex")
FORMATS = ("saved_model", "saved_model_tf1", "frozen_graph", "keras_saved_model", "keras_h5", "keras_v3",
           "tf_keras_saved_model", "tf_keras_h5", "tf_keras_v3", "tflite", "tflite_dynamic", "tflite_int8",
           "tflite_flex", "checkpoint")
DEFAULT_PROBES = BUILTIN_PROBES
MODEL_PROBE = "repro"  # a user's model, in a repro: the one "probe" of its matrix, no module's
DEFAULT_FORMATS = FORMATS
DEFAULT_TOLERANCE = (1e-4, 1e-3)  # atol, rtol: numpy.allclose semantics
DEFAULTS: dict[str, Any] = {"python": "auto", "image": "cpu", "backend": "venv",
                            "keras_backend": runtimes.DEFAULT_BACKEND}
ENTRY_KEYS = (*AXES, *RUNTIME_AXES, "docker_image", "packages", "role")
TOP_KEYS = (*ENTRY_KEYS, "name", "probes", "formats", "timeout", "include", "exclude", "probe_modules", "tolerance",
            "related", "python_image")
# The official images: tensorflow/tensorflow:2.15.0 and tensorflow/tensorflow:2.15.0-gpu.
DEFAULT_DOCKER_IMAGE = "tensorflow/tensorflow:{tensorflow}{gpu}"
PLACEHOLDERS = ("tensorflow", "python", "gpu")
# in `packages`: the cell's TF release ("2.20.0") and its minor ("2.20"), as
# in "tf-keras=={tensorflow_minor}.*" (the tf-keras made for that TF)
PACKAGE_PLACEHOLDERS = ("tensorflow", "tensorflow_minor")

_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?((a|b|rc)\d+)?$")
_PY_VERSION = re.compile(r"^3\.\d+$")


@dataclass(frozen=True)
class CellRequest:
    """One combination asked for; versions not yet resolved."""

    tensorflow: str  # "" in a runtime cell whose backend TF is not pinned
    python: str  # "3.7" or "auto"
    image: str
    backend: str
    docker_image: str = ""  # a template (see the module doc); "" for venv cells
    packages: tuple[str, ...] = ()  # requirements installed beside TF, e.g. "tf-keras"
    runtime: str = ""  # "" for a TF cell, else a runtimes.RUNTIMES key ("keras")
    version: str = ""  # the runtime's version or range
    keras_backend: str = ""  # Keras cells: a runtimes.BACKENDS name
    role: str = "both"

    @property
    def label(self) -> str:
        suffix = "" if self.backend == "venv" else f"-{self.backend}"
        head = f"tf{self.tensorflow}"
        if self.runtime:
            head = f"{runtimes.RUNTIMES[self.runtime].prefix}{self.version}" + (
                f"-{self.keras_backend}" if self.keras_backend else "")
        return f"{head}-py{self.python}-{self.image}{suffix}{packages_suffix(self.packages)}"

    def value(self, key: str) -> str:
        """The request's value for a matrix key (exclude tables match on these)."""
        if key in runtimes.RUNTIMES:
            return self.version if self.runtime == key else ""
        return str(getattr(self, key))


def packages_suffix(packages: tuple[str, ...]) -> str:
    """"+tf-keras" for a cell with extra packages: part of its id."""
    return "".join(f"+{Requirement(fill_packages((p,), '0.0.0')[0]).name}" for p in packages)


def fill_packages(packages: tuple[str, ...], tensorflow: str) -> tuple[str, ...]:
    """The packages with their placeholders filled for a cell's TF release."""
    minor = ".".join(tensorflow.split(".")[:2])
    return tuple(p.format(tensorflow=tensorflow, tensorflow_minor=minor) for p in packages)


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


@dataclass(frozen=True)
class Matrix:
    path: Path
    name: str
    cells: tuple[CellRequest, ...]
    probes: tuple[str, ...]
    formats: tuple[str, ...]
    timeout: float
    probe_modules: tuple[Path, ...] = ()
    tolerances: tuple[tuple[str, Tolerance], ...] = ()  # per probe; "default" for the rest
    # the exclude tables, applied again to the cells a range expands to
    excludes: tuple[tuple[tuple[str, str], ...], ...] = ()
    python_image: str = ""  # where a venv cell's Python is missing: run it in this image (docker backend)
    related: tuple[str, ...] = ()  # other reports (by name) this one links to

    def excluded(self, cell: CellRequest) -> bool:
        return any(_matches(cell, dict(pattern)) for pattern in self.excludes)

    def tolerance(self, probe: str) -> Tolerance:
        found = dict(self.tolerances)
        return found.get(probe) or found.get("default") or Tolerance(*DEFAULT_TOLERANCE)


def load(path: Path) -> Matrix:
    """Parse and validate `path`; raise ConfigError with a one-line message."""
    return parse(read_toml(path), path)


MAX_TOML_BYTES = 1 << 20  # a matrix or a repro spec is a few hundred bytes


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML table in `path`; a ConfigError naming the file for anything
    that is not a readable, reasonably small UTF-8 TOML file."""
    if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO would block the read
        raise ConfigError(f"{path}: not a regular file; give the path of a .toml file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TOML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; give the path of a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if len(raw) > MAX_TOML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_TOML_BYTES // 1024} KiB; is this the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) TOML file: byte {exc.start} is {raw[exc.start]:#04x}") from None
    return parse_toml(text, path)


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """The TOML table in `text` (read from `path`, which errors name)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def for_model(data: dict[str, Any], path: Path, fmt: str) -> Matrix:
    """A repro's matrix: the consumer cells `data` gives, parsed as a matrix
    file's, loading one user's model in `fmt` (a format of the matrix) as its
    one probe, MODEL_PROBE, which no probe module defines."""
    assert not {"probes", "formats", "probe_modules", "tolerance"} & set(data), "a model's matrix has its one probe"
    return replace(parse({**data, "formats": [fmt]}, path), probes=(MODEL_PROBE,))


def parse(data: dict[str, Any], path: Path) -> Matrix:
    where = str(path)
    check_keys(data, TOP_KEYS, where, "")
    includes = [_entry(e, f"include[{i}]", where) for i, e in enumerate(_tables(data, "include", where))]
    families = [f for f in FAMILIES if f in data]
    if not families and not includes:
        raise ConfigError(f"{where}: key 'tensorflow': required (a list of versions like [\"1.15\", \"2.15\"]), "
                          f"or a runtime: {', '.join(runtimes.KEYS)}")
    if "keras_backend" in data and "keras" not in data:
        raise ConfigError(f"{where}: key 'keras_backend': only Keras cells have a backend; add keras = [...]")
    axes = {axis: _axis(data, axis, where) for axis in AXES + RUNTIME_AXES if axis in data or axis in DEFAULTS}
    excludes = [_entry(e, f"exclude[{i}]", where) for i, e in enumerate(_tables(data, "exclude", where))]
    image = docker_image(data.get("docker_image", DEFAULT_DOCKER_IMAGE), "docker_image", where)
    packages = _packages(data.get("packages", []), "packages", where)
    role = _role(data.get("role", "both"), "role", where)
    raw_includes = _tables(data, "include", where)
    cells: list[CellRequest] = []
    for family in families:
        names = (family, *_family_axes(family))
        for combo in itertools.product(*(axes[a] for a in names)):
            cell = _request(family, dict(zip(names, combo)), image, packages, role)
            if not any(_matches(cell, ex) for ex in excludes):
                cells.append(_checked(cell, "", where))
    for i, inc in enumerate(includes):
        raw = raw_includes[i]
        family = _include_family(inc, f"include[{i}]", where)
        values = {a: inc.get(a, axes[a][0] if a in axes and a not in FAMILIES else "")
                  for a in (*AXES, *RUNTIME_AXES)}
        extra = _packages(raw["packages"], f"include[{i}].packages", where) if "packages" in raw else packages
        entry_role = _role(raw["role"], f"include[{i}].role", where) if "role" in raw else role
        cell = _request(family, values, inc.get("docker_image", image), extra, entry_role)
        cells.append(_checked(cell, f"include[{i}].", where))
    modules = tuple(_module(m, path, f"probe_modules[{i}]")
                    for i, m in enumerate(_strings(data.get("probe_modules", []), "probe_modules", where, empty=True)))
    probes = _once(tuple(_strings(data.get("probes", list(DEFAULT_PROBES)), "probes", where)), "probes", where)
    known = _user_probes(modules, data.get("probe_modules"), where)
    tolerances = _tolerances(data.get("tolerance", {}), where)
    if known is not None:  # else some user probe's name is only known when its module runs, in the cells
        _known(probes, BUILTIN_PROBES + known, "probes", where)
        for probe, _ in tolerances:
            _known((probe,), ("default", *BUILTIN_PROBES, *known), f"tolerance.{probe}", where, "probe")
    return Matrix(
        path=path,
        name=safe_name(data.get("name", path.stem if path.stem != "matrix" else "default"), "name", where),
        cells=tuple(dict.fromkeys(cells)),
        probes=probes,
        formats=_once(_known(tuple(_strings(data.get("formats", list(DEFAULT_FORMATS)), "formats", where)),
                             FORMATS, "formats", where), "formats", where),
        timeout=number(data.get("timeout", 900), "timeout", where),
        probe_modules=modules,
        tolerances=tolerances,
        excludes=tuple(tuple(sorted(ex.items())) for ex in excludes),
        python_image=docker_image(data["python_image"], "python_image", where) if "python_image" in data else "",
        related=tuple(safe_name(r, f"related[{i}]", where)
                      for i, r in enumerate(_strings(data.get("related", []), "related", where, empty=True))),
    )


def _family_axes(family: str) -> tuple[str, ...]:
    """The axes a family's cells are crossed with (its own version axis aside)."""
    shared = ("python", "image", "backend")
    return (*shared, "keras_backend") if family == "keras" else shared


def _include_family(entry: dict[str, str], key: str, where: str) -> str:
    """What kind of cell an include adds: the runtime it names, else a TF cell."""
    named = [k for k in runtimes.KEYS if k in entry]
    if len(named) > 1:
        raise ConfigError(f"{where}: key '{key}': one runtime per cell, not {' and '.join(named)}")
    if not named and "tensorflow" not in entry:
        raise ConfigError(f"{where}: key 'include': each entry needs 'tensorflow' or a runtime "
                          f"({', '.join(runtimes.KEYS)})")
    family = named[0] if named else "tensorflow"
    if "tensorflow" in entry and family not in ("tensorflow", "keras"):
        raise ConfigError(f"{where}: key '{key}.tensorflow': a {family} cell holds no TensorFlow "
                          "(only a Keras cell's tensorflow backend does)")
    if "keras_backend" in entry and family != "keras":
        raise ConfigError(f"{where}: key '{key}.keras_backend': only Keras cells have a backend")
    if family == "keras" and "tensorflow" in entry and entry.get("keras_backend", "tensorflow") != "tensorflow":
        raise ConfigError(f"{where}: key '{key}.tensorflow': pins the TensorFlow of the tensorflow backend, "
                          f"not of {entry['keras_backend']}")
    return family


def _request(family: str, values: dict[str, str], docker_image: str, packages: tuple[str, ...],
             role: str) -> CellRequest:
    runtime = "" if family == "tensorflow" else family
    return CellRequest(values.get("tensorflow", ""), values["python"], values["image"], values["backend"],
                       docker_image=docker_image if values["backend"] == "docker" else "", packages=packages,
                       runtime=runtime, version=values.get(family, "") if runtime else "",
                       keras_backend=values.get("keras_backend", "") if runtime == "keras" else "", role=role)


def _role(value: Any, key: str, where: str) -> str:
    text = as_string(value, key, where)
    if text not in ROLES:
        raise ConfigError(f"{where}: key '{key}': '{text}' is not one of {', '.join(ROLES)}")
    return text


def _packages(value: Any, key: str, where: str) -> tuple[str, ...]:
    """Extra requirements of a cell, resolved with TF as of its release date
    (see sandbox.plan for pinned ones); they may name the TF release as
    {tensorflow} or {tensorflow_minor}."""
    found = []
    for i, text in enumerate(_strings(value, key, where, empty=True)):
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
            unknown = [f for f in fields if f not in PACKAGE_PLACEHOLDERS]
            if unknown:
                raise ConfigError(f"{where}: key '{key}[{i}]': unknown placeholder '{{{unknown[0]}}}'; expected "
                                  f"{', '.join(f'{{{p}}}' for p in PACKAGE_PLACEHOLDERS)}")
            Requirement(fill_packages((text,), "1.0.0")[0])
        except (InvalidRequirement, ValueError):
            raise ConfigError(f"{where}: key '{key}[{i}]': '{text}' is not a requirement like \"tf-keras\" "
                              "or \"tf-keras=={tensorflow_minor}.*\"") from None
        found.append(text)
    return tuple(found)


def _checked(cell: CellRequest, prefix: str, where: str) -> CellRequest:
    """`prefix`: "" for the top level's cells, "include[0]." for an include's."""
    if cell.backend == "docker" and cell.python == "auto":
        # The Python of a docker cell is the image's: the plan cannot find it on the host.
        raise ConfigError(f"{where}: key '{prefix}python': docker cells need an explicit Python version, the one "
                          f"in the image (like python = \"3.11\"), not \"auto\"")
    if cell.runtime and (cell.backend != "venv" or cell.image != "cpu"):
        # The docker backend builds TensorFlow images; no runtime here has a GPU build on PyPI.
        raise ConfigError(f"{where}: key '{prefix}{cell.runtime}': {cell.runtime} cells run on the CPU in the venv backend "
                          f"(not image = \"{cell.image}\", backend = \"{cell.backend}\")")
    if cell.tensorflow == NIGHTLY and cell.backend != "venv":
        raise ConfigError(f"{where}: key '{prefix}tensorflow': the nightly TensorFlow cell runs in the venv backend")
    return cell


def docker_image(value: Any, key: str, where: str) -> str:
    text = as_string(value, key, where)
    if not text or any(c.isspace() for c in text):
        raise ConfigError(f"{where}: key '{key}': {text!r} is not an image reference like \"python:3.11-slim\"")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"{where}: key '{key}': {exc} in {text!r}") from None
    for name in fields:
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
            hint = f"; did you mean '{{{close[0]}}}'?" if close else f"; expected {', '.join(f'{{{p}}}' for p in PLACEHOLDERS)}"
            raise ConfigError(f"{where}: key '{key}': unknown placeholder '{{{name}}}'{hint}")
    return text


def _known(values: tuple[str, ...], known: tuple[str, ...], key: str, where: str,
           what: str | None = None) -> tuple[str, ...]:
    """`values` (the list at `key`, or one value named `what`) when each is one of `known`."""
    for i, value in enumerate(values):
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of {', '.join(known)}"
            at = key if what else f"{key}[{i}]"
            raise ConfigError(f"{where}: key '{at}': unknown {what or key[:-1]} '{value}'; {hint}")
    return values


def _once(values: tuple[str, ...], key: str, where: str) -> tuple[str, ...]:
    """A list where each value appears once: a repeated probe or format would be measured and counted twice."""
    for i, value in enumerate(values):
        if value in values[:i]:
            raise ConfigError(f"{where}: key '{key}[{i}]': '{value}' is listed twice (first as {key}[{values.index(value)}]); "
                              "list each once")
    return values


def _module(value: str, matrix: Path, key: str) -> Path:
    found = (matrix.parent / value).resolve()
    if not found.is_file() or found.suffix != ".py":
        raise ConfigError(f"{matrix}: key '{key}': no Python file {found}")
    return found


def _user_probes(modules: tuple[Path, ...], raw: Any, where: str) -> tuple[str, ...] | None:
    """The probe names the user modules define, read on the host without
    running them (they import TensorFlow); None when a name can only be known
    by running its module. A module that does not parse, defines no PROBES,
    or reuses a built-in probe's name is a ConfigError now, before any cell."""
    names: list[str] = []
    complete = True
    for i, module in enumerate(modules):
        key = f"probe_modules[{i}]" if isinstance(raw, list) else "probe_modules"
        found = probe_names(module, key, where)
        if found is None:
            complete = False
            continue
        for name in found:
            if name in BUILTIN_PROBES or name in names:
                raise ConfigError(f"{where}: key '{key}': {module} defines probe '{name}', a name already taken; rename it")
            names.append(name)
    return tuple(names) if complete else None


def probe_names(module: Path, key: str, where: str) -> list[str] | None:
    """The `name`s of the probes in a user module's top-level `PROBES = [...]`,
    from its syntax tree: each entry an instance `Cls(...)` of a class of the
    module whose body (or a base class's in the module) sets `name = "..."`.
    None when an entry is anything else (it is then checked in the cell)."""
    try:
        source = module.read_bytes()
        tree = ast.parse(source, filename=str(module))
    except OSError as exc:
        raise ConfigError(f"{where}: key '{key}': cannot read {module}: {exc.strerror or exc}") from None
    except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes
        line = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
        msg = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise ConfigError(f"{where}: key '{key}': {module}{line}: {msg}; fix the probe module") from None
    except RecursionError:
        raise ConfigError(f"{where}: key '{key}': {module}: nested too deeply to parse") from None
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    listed = [node.value for node in tree.body if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "PROBES" for t in node.targets)]
    listed += [node.value for node in tree.body if isinstance(node, ast.AnnAssign) and node.value is not None
               and isinstance(node.target, ast.Name) and node.target.id == "PROBES"]
    if not listed:
        raise ConfigError(f"{where}: key '{key}': {module} defines no top-level PROBES list "
                          "(PROBES = [MyProbe()]; see examples/my_probes.py)")
    entries = listed[-1]
    if not isinstance(entries, (ast.List, ast.Tuple)):
        return None
    if not entries.elts:
        raise ConfigError(f"{where}: key '{key}': {module}: PROBES is empty; list the probes, like PROBES = [MyProbe()]")
    names = []
    for entry in entries.elts:
        name = _class_name(entry, classes)
        if name is None:
            return None
        names.append(name)
    return names


def _class_name(entry: ast.expr, classes: dict[str, ast.ClassDef]) -> str | None:
    """"batchnorm" for `BatchNorm()` when class BatchNorm (or a base in the module) sets name = "batchnorm"."""
    if not (isinstance(entry, ast.Call) and isinstance(entry.func, ast.Name)):
        return None
    todo, seen = [entry.func.id], set()
    while todo:
        cls = classes.get(todo.pop(0))
        if cls is None or cls.name in seen:
            continue
        seen.add(cls.name)
        for stmt in cls.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
            value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
            if any(isinstance(t, ast.Name) and t.id == "name" for t in targets):
                return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
        todo += [b.id for b in cls.bases if isinstance(b, ast.Name)]
    return None


def _tolerances(table: Any, where: str) -> tuple[tuple[str, Tolerance], ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: key 'tolerance': expected tables like [tolerance.batchnorm] atol = 1e-4")
    found = []
    for probe, entry in table.items():
        key = f"tolerance.{probe}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: key '{key}': expected a table with atol and/or rtol")
        check_keys(entry, ("atol", "rtol"), where, f"{key}.")
        atol, rtol = (number(entry.get(k, default), f"{key}.{k}", where, zero=True)
                      for k, default in zip(("atol", "rtol"), DEFAULT_TOLERANCE))
        found.append((probe, Tolerance(atol, rtol)))
    return tuple(found)


def _matches(cell: CellRequest, pattern: dict[str, str]) -> bool:
    return all(cell.value(k) == v for k, v in pattern.items())


def check_keys(table: dict[str, Any], allowed: tuple[str, ...], where: str, prefix: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {', '.join(allowed)}"
            raise ConfigError(f"{where}: key '{prefix}{key}': unknown key{hint}")


def _axis(data: dict[str, Any], axis: str, where: str) -> list[str]:
    raw = data.get(axis, DEFAULTS.get(axis, []))
    values = _strings(raw, axis, where)
    for i, value in enumerate(values):
        check_value(axis, value, f"{axis}[{i}]" if isinstance(raw, list) else axis, where)
    return values


def _entry(table: Any, key: str, where: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: key '{key}': expected a table like {{tensorflow = \"1.15\"}}")
    check_keys(table, ENTRY_KEYS, where, f"{key}.")
    entry = {k: as_string(v, f"{key}.{k}", where) for k, v in table.items() if k != "packages"}
    for k, v in entry.items():
        if k == "docker_image":
            docker_image(v, f"{key}.{k}", where)
        elif k == "role":
            _role(v, f"{key}.{k}", where)
        else:
            check_value(k, v, f"{key}.{k}", where)
    return entry


def check_value(axis: str, value: str, key: str, where: str) -> None:
    problem = None
    if axis == "tensorflow" and not _VERSION.match(value) and not is_range(value) and value != NIGHTLY:
        problem = (f"'{value}' is not a TensorFlow version like \"1.15\" or \"2.15.1\", or a range like \">=1.12\" "
                   f"(or \"{NIGHTLY}\")")
    elif axis in runtimes.RUNTIMES and not _VERSION.match(value) and not is_range(value):
        problem = f"'{value}' is not a {runtimes.RUNTIMES[axis].package} version like \"1.2\", or a range like \">=1.0\""
    elif axis == "keras_backend" and value not in runtimes.BACKENDS:
        problem = f"'{value}' is not one of {', '.join(runtimes.BACKENDS)}"
    elif axis == "python" and value != "auto" and not _PY_VERSION.match(value):
        problem = f"'{value}' is not a Python version like \"3.7\" (or \"auto\")"
    elif axis == "image" and value not in IMAGES:
        problem = f"'{value}' is not one of {', '.join(IMAGES)}"
    elif axis == "backend" and value not in BACKENDS:
        problem = f"'{value}' is not one of {', '.join(BACKENDS)}"
    if problem:
        raise ConfigError(f"{where}: key '{key}': {problem}")


def _tables(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{where}: key '{key}': expected an array of tables ([[{key}]])")
    return value


def _strings(value: Any, key: str, where: str, empty: bool = False) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items and not empty:
        raise ConfigError(f"{where}: key '{key}': must not be empty")
    return [as_string(v, f"{key}[{i}]" if isinstance(value, list) else key, where) for i, v in enumerate(items)]


def as_string(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str):
        kind = type(value).__name__
        raise ConfigError(f"{where}: key '{key}': expected a string, got {value!r} ({kind}); quote versions: \"{value}\"")
    return value


def number(value: Any, key: str, where: str, zero: bool = False) -> float:
    """A finite number > 0 (>= 0 with `zero`): nan, inf and negatives mean nothing here."""
    bad = (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
           or value < 0 or (value == 0 and not zero))
    if bad:
        what = "a number >= 0" if zero else "a positive number of seconds"
        raise ConfigError(f"{where}: key '{key}': expected {what}, got {value!r}")
    return float(value)


_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")
MAX_NAME = 100


def safe_name(value: Any, key: str, where: str) -> str:
    """A name used as a folder under the reports and work folders (a run
    deletes and rewrites what is there): one plain path component."""
    text = as_string(value, key, where)
    problem = None
    if not text.strip():
        problem = "must not be empty"
    elif text in (".", "..") or _UNSAFE_NAME.search(text):
        problem = f"{text!r} is not a plain folder name (no '/', '\\', control characters, '.' or '..')"
    elif text != text.strip() or text.startswith("-") or len(text) > MAX_NAME:
        problem = f"{text!r} is not a plain folder name (no leading '-' or spaces, at most {MAX_NAME} characters)"
    if problem:
        raise ConfigError(f"{where}: key '{key}': {problem}; use letters, digits, '-', '_' and '.', like name = \"my-matrix\"")
    return text
