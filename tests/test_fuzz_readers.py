"""Fuzzing the readers of untrusted files (issue 13): every mutant of a real
file gets a verdict or a one-line SandboxError, within a time bound (the
hypothesis deadline) and a memory bound (peak RSS growth over the run),
never a traceback or a hang.

Readers: GraphDef and SavedModel (sandbox.check.graphfile, the host's `sandbox
check`), the TFLite flatbuffer reader (sandbox/agent/tfliteinfo.py: it runs
in the cells only, not on the host; its contract is a list or ValueError),
results.json (sandbox.report.document, then every renderer), matrix and repro
spec TOML (sandbox.matrix, sandbox.repro, then planning), shard bundles
(bundle.json and the records of a bundle's store, re-signed as a forger
would, then merge and collect: sandbox.bundles, sandbox.shards), and Keras
configs (.keras zips and .h5 files: sandbox.check.kerasfile, and the code finder the
agent shares, sandbox/agent/kerascode.py).

Seeds are real files: tests/data/models was written by TF 2.12 (a SavedModel
with a variable and a serving signature, its frozen graph, its TFLite
conversion) and by tf.keras of TF 2.15 and 2.18 (a Keras 2 .h5 and a Keras 3
.keras with a Lambda layer: make_keras_lambda.py), examples/repro holds a TF
1.15 frozen graph; bundles are those of a run with the fake agent
(test_shards.make_run). Mutations are
byte edits (flip, overwrite, insert, delete, truncate, duplicate a range)
and, for text formats, splices of tokens that mean trouble (nan, inf, "..",
NUL, unbalanced brackets). Derandomized, so CI is repeatable; set
SANDBOX_FUZZ_EXAMPLES=N (per reader) and SANDBOX_FUZZ_RANDOM=1 to fuzz longer."""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_plan import PYTHONS, FakeCatalog

from sandbox import bundles, collect, digests, matrix, plan, registries, repro, shards
from sandbox.check import graphfile, kerasfile, verdicts
from sandbox.errors import SandboxError
from sandbox.report import RENDERERS, document

ROOT = Path(__file__).parent.parent
MODELS = Path(__file__).parent / "data" / "models"
AGENT = ROOT / "sandbox" / "agent"
EXAMPLES = int(os.environ.get("SANDBOX_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=3), derandomize=not os.environ.get("SANDBOX_FUZZ_RANDOM"),
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])
MAX_GROWTH_MB = 300  # peak RSS growth over one reader's whole run
TOKENS = [b"nan", b"inf", b"-inf", b"-1", b"0", b"1e999", b'""', b"[]", b"{}", b'"../../x"', b'".."', b"\x00", b"\xff",
          b"null", b"true", b"[[include]]", b"[consumers]", b'"\\u0000"', b"{", b"[", b"]", b'"', b"=", b"\n", b",",
          b"9" * 40, b'"' + b"a" * 300 + b'"', b"[" * 200, b'{"a":' * 50, b'"tf1_session"', b'">=99"', b'"3.99"']
COUNTS: dict[str, int] = {}  # mutants tried per reader
ERRORS: dict[str, int] = {}  # of which ended in the one-line error


@st.composite
def mutants(draw: st.DrawFn, seed: bytes, text: bool = False) -> bytes:
    data = bytearray(seed)
    kinds = ["flip", "set", "insert", "delete", "truncate", "duplicate"] + (["token"] * 3 if text else [])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and pos < len(data):
            data[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "token":
            size = draw(st.integers(0, 8))
            data[pos:pos + size] = draw(st.sampled_from(TOKENS))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "duplicate":
            size = draw(st.integers(1, 256))
            data[pos:pos] = data[pos:pos + size]
    return bytes(data)


def verdict_or_one_line(reader: str, read: Callable[[], Any], errors: tuple[type[Exception], ...] = (SandboxError,)) -> None:
    """The contract: a result, or one of `errors` with a one-line message."""
    COUNTS[reader] = COUNTS.get(reader, 0) + 1
    try:
        read()
    except errors as exc:
        ERRORS[reader] = ERRORS.get(reader, 0) + 1
        text = str(exc)
        assert text and "\n" not in text and "Traceback" not in text, f"{reader}: {text!r}"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def memory_bound(request: pytest.FixtureRequest) -> Iterator[None]:
    before = _peak_mb()
    yield
    grown = _peak_mb() - before
    name = request.node.name.removeprefix("test_fuzz_")
    print(f"\nfuzz {name}: {COUNTS.get(name, 0)} mutants ({ERRORS.get(name, 0)} one-line errors), "
          f"peak RSS grew {grown:.0f} MB")
    assert grown < MAX_GROWTH_MB, f"{name}: peak RSS grew {grown:.0f} MB"


@pytest.fixture(scope="module")
def registry() -> dict[str, Any]:
    return registries.load("2.15")[1]


def _model_verdict(path: Path, registry: dict[str, Any]) -> None:
    info = graphfile.read_model(path)
    verdicts.graph_verdict(info, registry, "2.15.1")


FROZEN_SEEDS = [(MODELS / "frozen.pb").read_bytes(), (ROOT / "examples" / "repro" / "batch_matmul_tf1.15.pb").read_bytes()]
SAVED_SEED = (MODELS / "saved_model.pb").read_bytes()


@FUZZ
@given(data=st.sampled_from(FROZEN_SEEDS).flatmap(mutants))
def test_fuzz_graphdef(tmp_path: Path, registry: dict[str, Any], memory_bound: None, data: bytes) -> None:
    path = tmp_path / "model.pb"
    path.write_bytes(data)
    verdict_or_one_line("graphdef", lambda: _model_verdict(path, registry))


@FUZZ
@given(data=mutants(SAVED_SEED))
def test_fuzz_saved_model(tmp_path: Path, registry: dict[str, Any], memory_bound: None, data: bytes) -> None:
    (tmp_path / "saved_model.pb").write_bytes(data)
    verdict_or_one_line("saved_model", lambda: _model_verdict(tmp_path, registry))


@pytest.fixture(scope="module")
def tfliteinfo() -> Any:
    sys.path.insert(0, str(AGENT))
    try:
        import tfliteinfo as module
    finally:
        sys.path.remove(str(AGENT))
    return module


@FUZZ
@given(data=mutants((MODELS / "model.tflite").read_bytes()))
def test_fuzz_tflite(tfliteinfo: Any, memory_bound: None, data: bytes) -> None:
    verdict_or_one_line("tflite", lambda: tfliteinfo.operator_codes(data), (ValueError,))


def _small_results() -> bytes:
    """The recorded real results, cut to a few records of each kind (renderers stay fast)."""
    full = json.loads((Path(__file__).parent / "data" / "default-results.json").read_text())
    small = {**full, "cells": full["cells"][:3], "artifacts": full["artifacts"][:6],
             "loads": [l for l in full["loads"] if l["status"] != "ok"][:6] + full["loads"][:4]}
    document.check(small, "seed")
    return json.dumps(small, indent=1).encode()


RESULTS_SEED = _small_results()


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=True), st.text(max_size=5),
                        st.builds(list), st.builds(dict), st.builds(lambda: [None]), st.builds(lambda: {"": None}))


@st.composite
def json_mutants(draw: st.DrawFn, seed: bytes) -> bytes:
    """Structural edits of a JSON document: a key dropped or a value replaced
    anywhere in it (what byte edits rarely reach: valid JSON, wrong shape)."""
    doc = json.loads(seed)
    for _ in range(draw(st.integers(1, 3))):
        parent, key = _random_place(draw, doc)
        if parent is None:
            break
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(JSON_VALUES)
    return json.dumps(doc).encode()


def _random_place(draw: st.DrawFn, doc: Any) -> tuple[Any, Any]:
    """A container somewhere in `doc` and one of its keys (or indexes)."""
    parent, key = None, None
    node = doc
    while isinstance(node, (dict, list)) and node:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = node[key]
        if draw(st.integers(0, 3)) == 0:
            break
    return parent, key


def _render(path: Path) -> None:
    results = document.load(path)
    for render in RENDERERS.values():  # a document that passed the check must render
        render(results)


@FUZZ
@given(data=st.one_of(mutants(RESULTS_SEED, text=True), json_mutants(RESULTS_SEED)))
def test_fuzz_results_json(tmp_path: Path, memory_bound: None, data: bytes) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(data)
    verdict_or_one_line("results_json", lambda: _render(path))


MATRIX_SEEDS = [(ROOT / "matrix.toml").read_bytes(), b"""name = "fuzz"
tensorflow = ["1.13", "2.15"]
python = ["3.7", "3.11"]
backend = ["venv", "docker"]
docker_image = "tensorflow/tensorflow:{tensorflow}{gpu}"
probes = ["dense", "softplus_mlp"]
probe_modules = ["my_probes.py"]
formats = ["saved_model", "frozen_graph"]
timeout = 600
packages = ["tf-keras"]
[[exclude]]
tensorflow = "1.13"
python = "3.11"
[[include]]
tensorflow = "2.12"
python = "3.11"
backend = "docker"
packages = []
[tolerance.dense]
atol = 1e-4
"""]


def _plan_matrix(path: Path) -> None:
    plan.plan(matrix.load(path), FakeCatalog(), PYTHONS)


@FUZZ
@given(data=st.sampled_from(MATRIX_SEEDS).flatmap(lambda seed: mutants(seed, text=True)))
def test_fuzz_matrix_toml(tmp_path: Path, memory_bound: None, data: bytes) -> None:
    shutil.copy(ROOT / "examples" / "my_probes.py", tmp_path / "my_probes.py")
    path = tmp_path / "matrix.toml"
    path.write_bytes(data)
    verdict_or_one_line("matrix_toml", lambda: _plan_matrix(path))


SPEC_SEEDS = [p.read_bytes() for p in sorted((ROOT / "examples" / "repro").glob("*.toml"))]


def _plan_spec(path: Path) -> None:
    spec = repro.load_spec(path)
    repro.plan_cells(spec, repro.consumer_versions(spec, FakeCatalog()), FakeCatalog(), PYTHONS, spec.name)


@FUZZ
@given(data=st.sampled_from(SPEC_SEEDS).flatmap(lambda seed: mutants(seed, text=True)))
def test_fuzz_spec_toml(tmp_path: Path, memory_bound: None, data: bytes) -> None:
    for name in ("make_batchnorm_model.py", "batch_matmul_tf1.15.pb"):
        shutil.copy(ROOT / "examples" / "repro" / name, tmp_path / name)
    path = tmp_path / "spec.toml"
    path.write_bytes(data)
    verdict_or_one_line("spec_toml", lambda: _plan_spec(path))


@pytest.fixture(scope="module")
def shard_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    from test_shards import make_run
    return make_run(tmp_path_factory.mktemp("bundles"))


def _merge(folders: list[Path]) -> None:
    found = bundles.read_all(folders)
    mx = bundles.the_matrix(found)
    results, _ = shards.merge(found, mx)
    document.check(collect.collect(mx, results).to_json(), "merged")


def _resign(path: Path, text: bytes) -> None:
    """Write a mutant of a JSON file holding a digest, its digest recomputed
    when it is still a JSON object with one (a forger's bundle, not a torn one)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        path.write_bytes(text)
        return
    if isinstance(data, dict) and "digest" in data and path.name == "bundle.json":
        data.pop("digest")
        data = {**data, "digest": digests.of_json(data)}
    elif isinstance(data, dict) and isinstance(data.get("payload"), dict):
        data["digest"] = digests.of_json(data["payload"])
    path.write_text(json.dumps(data))


@FUZZ
@given(which=st.sampled_from(["export", "load", "record"]), choice=st.data())
def test_fuzz_bundles(tmp_path: Path, shard_run: tuple[list[Path], list[Path]], memory_bound: None, which: str,
                      choice: st.DataObject) -> None:
    exports, loads = shard_run
    seed = exports[0] if which == "export" else loads[-1]
    bundle = tmp_path / seed.name  # the one mutant; the others are read where they are (merge writes none)
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(seed, bundle)
    copies = [bundle if b == seed else b for b in exports + loads]
    target = bundle / "bundle.json"
    if which == "record":
        target = sorted((bundle / "store").rglob("*.json"))[0]
    original = target.read_bytes()
    _resign(target, choice.draw(st.one_of(mutants(original, text=True), json_mutants(original))))
    if which == "record":  # and bundle.json names the forged record's digest, as a forger would
        data = json.loads((bundle / "bundle.json").read_text())
        try:
            forged = json.loads(target.read_text())
            data["loads"] = [[p, k, digests.of_json(forged["payload"]) if k == forged.get("key") else d]
                             for p, k, d in data["loads"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        _resign(bundle / "bundle.json", json.dumps(data).encode())
    verdict_or_one_line("bundles", lambda: _merge(copies))


KERAS_SEEDS = {name: (MODELS / name).read_bytes() for name in ("keras3_lambda.keras", "keras2_lambda.h5")}


def _keras_config(name: str) -> bytes:
    if name.endswith(".keras"):
        with zipfile.ZipFile(MODELS / name) as archive:
            return archive.read("config.json")
    import h5py
    with h5py.File(MODELS / name, "r") as f:
        raw = f.attrs["model_config"]
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def _write_keras(path: Path, config: bytes) -> None:
    if path.suffix == ".keras":
        with zipfile.ZipFile(MODELS / path.name) as seed, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for member in seed.namelist():
                out.writestr(member, config if member == "config.json" else seed.read(member))
        return
    import h5py
    shutil.copy(MODELS / path.name, path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = config.decode("utf-8", "replace")


def _keras_verdict(path: Path, registry: dict[str, Any]) -> None:
    info = kerasfile.read(path)
    verdicts.keras_verdict(info, registry, "2.15.1")


@FUZZ
@given(name=st.sampled_from(sorted(KERAS_SEEDS)), choice=st.data())
def test_fuzz_keras_config(tmp_path: Path, registry: dict[str, Any], memory_bound: None, name: str,
                           choice: st.DataObject) -> None:
    """The config inside a real Keras 3 .keras and a real Keras 2 .h5 (both with
    a Lambda), mutated; and whole-file byte edits of them."""
    path = tmp_path / name
    if choice.draw(st.booleans()):
        seed = _keras_config(name)
        _write_keras(path, choice.draw(st.one_of(mutants(seed, text=True), json_mutants(seed))))
    else:
        path.write_bytes(choice.draw(mutants(KERAS_SEEDS[name])))
    verdict_or_one_line("keras_config", lambda: _keras_verdict(path, registry))
