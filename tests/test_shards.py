"""Bundles are untrusted input and merge refuses what is incomplete or
contradictory: shards made by the real CLI, runner and store with the fake
agent (tests/fake_sandbox.py), then tampered with as an attacker or a careless
CI job would. Each case is one line and exit 2 (the real shards run on
TensorFlow is in test_real_incremental.py and test_real_store.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fake_sandbox
import pytest

from sandbox import __version__, cellrun, cli, digests
from sandbox.bundles import BUNDLE_FILE, BundleError, read
from sandbox.cli import planning
from sandbox.store import STORE_SCHEMA, ResultsStore

MATRIX = """
name = "sh"
tensorflow = ["1.0", "2.0"]
python = "3.11"
probes = ["batchnorm", "conv2d"]
formats = ["frozen_graph", "saved_model"]
"""
CELLS = ("tf1.0-py3.11-cpu", "tf2.0-py3.11-cpu")
# each producer: 2 probes x (frozen_graph: 1 loader + saved_model: 2); 2 producers
LOADS_PER_CONSUMER = 2 * 2 * 3


class Shards:
    """A folder with the matrix, and the bundles of a run made job by job,
    every job on a 'machine' (results store) of its own."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str] | None = None) -> None:
        self.folder, self.monkeypatch, self.capsys = folder, monkeypatch, capsys
        monkeypatch.setattr(planning, "resolve", fake_sandbox.fake_plan)
        monkeypatch.setattr(cellrun, "environment", fake_sandbox.FakeEnv)
        monkeypatch.setenv("FAKE_AGENT_ZOO", "1")
        (folder / "m.toml").write_text(MATRIX)

    def sandbox(self, *args: str, machine: str = "merge", expect: int = 0) -> str:
        """cli.main on a machine of its own; its stderr (one line when it fails)."""
        self.monkeypatch.setenv("SANDBOX_STORE_DIR", str(self.folder / machine / "store"))
        if self.capsys is None:
            assert cli.main(list(args)) == expect
            return ""
        self.capsys.readouterr()
        code = cli.main(list(args))
        err = self.capsys.readouterr().err
        assert code == expect, err
        if expect == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("sandbox: error:") and "Traceback" not in err, err
        return err

    def export(self, cell: str, out: str | None = None) -> Path:
        path = self.folder / (out or f"export-{cell}")
        self.sandbox("export", str(self.folder / "m.toml"), "--cell", cell, "--out", str(path),
                     "--work-dir", str(self.folder / "runs"), machine=f"x-{cell}")
        return path

    def load(self, cell: str, exports: list[Path], out: str | None = None) -> Path:
        path = self.folder / (out or f"load-{cell}")
        self.try_load(cell, exports, path)
        return path

    def try_load(self, cell: str, exports: list[Path], out: Path, expect: int = 0, machine: str | None = None) -> str:
        return self.sandbox("load", str(self.folder / "m.toml"), "--cell", cell, "--bundles", *map(str, exports),
                            "--out", str(out), "--work-dir", str(self.folder / "runs"), machine=machine or f"l-{cell}",
                            expect=expect)

    def merge(self, bundles: list[Path], *extra: str, expect: int = 0) -> str:
        return self.sandbox("merge", *map(str, bundles), "--reports", str(self.folder / "reports"), *extra,
                            expect=expect)

    def results(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads((self.folder / "reports" / "sh" / "results.json").read_text())
        return found


def make_run(folder: Path) -> tuple[list[Path], list[Path]]:
    """Every export bundle, then every load bundle, of one run in `folder`
    (with the stores of its machines)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        once = Shards(folder, monkeypatch)
        exports = [once.export(c) for c in CELLS]
        return exports, [once.load(cell, exports) for cell in CELLS]


@pytest.fixture(scope="module")
def run_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    make_run(folder)
    return folder


@pytest.fixture
def shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Shards:
    return Shards(tmp_path, monkeypatch, capsys)


@pytest.fixture
def made(shards: Shards, run_once: Path) -> tuple[list[Path], list[Path]]:
    """Every export bundle, then every load bundle of the run (a copy of its own)."""
    shutil.copytree(run_once, shards.folder, dirs_exist_ok=True, symlinks=True)
    return [shards.folder / f"export-{c}" for c in CELLS], [shards.folder / f"load-{c}" for c in CELLS]


def edit(bundle: Path, change: Callable[[dict[str, Any]], None], resign: bool = True) -> None:
    """Change bundle.json; with `resign`, recompute its digest as a forger would."""
    path = bundle / BUNDLE_FILE
    data = json.loads(path.read_text())
    data.pop("digest")
    change(data)
    path.write_text(json.dumps({**data, "digest": digests.of_json(data)} if resign else data))


def record_file(bundle: Path, kind: str, key: str) -> Path:
    return Path(next(ResultsStore(bundle / "store").record_files([(kind, key)])))


def forge_record(bundle: Path, kind: str, key: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit a record's payload and recompute the record's own digest."""
    path = record_file(bundle, kind, key)
    data = json.loads(path.read_text())
    change(data["payload"])
    data["digest"] = digests.of_json(data["payload"])
    path.write_text(json.dumps(data))


def test_shards_merge_into_the_whole_run(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    shards.merge(exports + loads)
    found = shards.results()
    assert {c["id"]: c["status"] for c in found["cells"]} == dict.fromkeys(CELLS, "ok")
    assert len(found["loads"]) == 2 * LOADS_PER_CONSUMER
    assert len({(l["consumer"], l["producer"], l["probe"], l["format"], l["loader"]) for l in found["loads"]}) == \
        len(found["loads"])


# -- merge refuses what is incomplete or contradictory ------------------------------------------
def test_a_missing_load_bundle_is_refused_or_published_marked_error(shards: Shards,
                                                                    made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    err = shards.merge(exports + loads[:1], expect=2)
    assert "incomplete run" in err and CELLS[1] in err
    assert not (shards.folder / "reports").exists()
    err = shards.merge(exports + loads[:1], "--allow-incomplete", expect=1)
    assert CELLS[1] in err
    cells = {c["id"]: c for c in shards.results()["cells"]}
    assert cells[CELLS[1]]["status"] == "error" and "incomplete" in cells[CELLS[1]]["reason"]
    assert cells[CELLS[0]]["status"] == "ok"


def test_a_missing_export_bundle_is_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    err = shards.merge(exports[:1] + loads, expect=2)
    assert f"no export bundle of {CELLS[1]}" in err


def test_two_bundles_of_one_cell_are_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    again = shards.load(CELLS[0], exports, out="load-again")
    err = shards.merge(exports + loads + [again], expect=2)
    assert f"two load bundles of {CELLS[0]}" in err
    err = shards.merge(exports + [shards.export(CELLS[0], out="export-again")] + loads, expect=2)
    assert f"two export bundles of {CELLS[0]}" in err


def test_loads_made_from_other_exports_are_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    other = shards.export(CELLS[1], out="export-other")  # the same cell exported again: other files
    err = shards.merge([exports[0], other] + loads, expect=2)
    assert "made from another export bundle" in err and CELLS[1] in err


def test_a_load_bundle_missing_some_loads_is_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    edit(loads[0], lambda d: d.update(loads=d["loads"][:-3]))
    err = shards.merge(exports + loads, expect=2)
    assert f"3 of {LOADS_PER_CONSUMER} loads missing" in err and CELLS[0] in err


def test_a_load_of_a_producer_not_in_the_run_is_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    edit(loads[0], lambda d: d["loads"][0].__setitem__(0, "tf9.9-py3.11-cpu"))
    assert "no such artifact" in shards.merge(exports + loads, expect=2)


def test_a_load_moved_to_another_consumer_is_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    """Every record and digest in order, but the load was measured by the other
    consumer: its key, re-derived from what it claims, says so."""
    exports, loads = made
    theirs = json.loads((loads[1] / BUNDLE_FILE).read_text())["loads"][0]
    src = record_file(loads[1], "loads", theirs[1])
    dst = record_file(loads[0], "loads", theirs[1])
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)

    def swap(data: dict[str, Any]) -> None:
        data["loads"] = [theirs if e[0] == theirs[0] and _same_item(loads[0], e, loads[1], theirs) else e
                         for e in data["loads"]]
    edit(loads[0], swap)
    assert "its key is not the one" in shards.merge(exports + loads, expect=2)


def _same_item(bundle: Path, entry: list[str], other: Path, theirs: list[str]) -> bool:
    def item(b: Path, e: list[str]) -> tuple[str, ...]:
        payload = json.loads(record_file(b, "loads", e[1]).read_text())["payload"]
        return (e[0], payload["probe"], payload["format"], payload["loader"])
    return item(bundle, entry) == item(other, theirs)


# -- bundles are untrusted input ---------------------------------------------------------------
def test_an_edited_verdict_with_its_record_digest_recomputed_is_refused(
        shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    entry = json.loads((loads[0] / BUNDLE_FILE).read_text())["loads"][0]
    forge_record(loads[0], "loads", entry[1], lambda p: p.update(status="load-error", error="forged"))
    assert "is not the one its bundle.json names" in shards.merge(exports + loads, expect=2)


def test_an_edited_export_record_is_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    key = json.loads((exports[0] / BUNDLE_FILE).read_text())["artifacts"][0][0]
    forge_record(exports[0], "exports", key, lambda p: p.update(ops=["Forged"]))
    assert "is not the one its bundle.json names" in shards.merge(exports + loads, expect=2)
    assert "is not the one" in shards.sandbox("load", str(shards.folder / "m.toml"), "--cell", CELLS[0],
                                              "--bundles", *map(str, exports), "--out", str(shards.folder / "x"),
                                              expect=2)


@pytest.mark.parametrize("key", ["../v1", "../../v1", "/etc", "ab/../../../x", "AB" * 32, ".." + "0" * 62])
def test_a_key_that_is_not_a_digest_is_refused_and_nothing_outside_is_touched(
        shards: Shards, made: tuple[list[Path], list[Path]], key: str) -> None:
    """A load machine whose store already holds records: a bundle naming
    `../v1` once made `sandbox load` delete that whole store."""
    exports, _ = made
    machine = shards.folder / f"l-{CELLS[0]}" / "store"
    before = sorted(p.relative_to(machine).as_posix() for p in machine.rglob("*"))
    edit(exports[1], lambda d: d["artifacts"][0].__setitem__(0, key))
    err = shards.try_load(CELLS[0], exports, shards.folder / "again", expect=2)
    assert "not a valid bundle" in err
    assert sorted(p.relative_to(machine).as_posix() for p in machine.rglob("*")) == before
    assert not list(shards.folder.rglob("*.damaged*"))
    assert shards.merge(exports, expect=2)


def test_a_symlink_in_a_bundle_is_refused_not_followed(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    secret = shards.folder / "secret.txt"
    secret.write_text("not for the store")
    key = json.loads((exports[1] / BUNDLE_FILE).read_text())["artifacts"][0][0]
    [files] = [p for p in (exports[1] / "store" / "exports" / key[:2] / key).iterdir() if p.is_dir()]
    [model] = files.rglob("model.txt")
    model.unlink()
    model.symlink_to(secret)
    err = shards.try_load(CELLS[0], exports, shards.folder / "again", expect=2, machine="clean")
    assert "a symlink" in err and "refus" in err
    store = shards.folder / "clean" / "store"
    assert not [p for p in store.rglob("*") if p.is_file() and p.read_bytes() == secret.read_bytes()]
    assert "a symlink" in shards.merge(exports + loads, expect=2)


def test_a_device_file_in_a_bundle_is_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    os.mkfifo(exports[0] / "store" / "pipe")
    assert "a FIFO" in shards.merge(exports + loads, expect=2)


def test_the_bundle_folder_is_never_written(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    """A damaged record in a bundle is refused, not set aside (renamed) as the
    local store would."""
    exports, loads = made
    entry = json.loads((loads[0] / BUNDLE_FILE).read_text())["loads"][0]
    path = record_file(loads[0], "loads", entry[1])
    path.write_text(path.read_text().replace('"ok"', '"load-error"'))
    listing = sorted(p.as_posix() for p in loads[0].rglob("*"))
    assert "missing or damaged" in shards.merge(exports + loads, expect=2)
    assert sorted(p.as_posix() for p in loads[0].rglob("*")) == listing


def test_load_out_never_overwrites_a_bundle(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    before = (loads[0] / BUNDLE_FILE).read_text()
    err = shards.try_load(CELLS[0], exports, loads[0], expect=2)
    assert "never written over" in err and (loads[0] / BUNDLE_FILE).read_text() == before
    err = shards.sandbox("export", str(shards.folder / "m.toml"), "--cell", CELLS[0], "--out", str(exports[0]),
                         expect=2)
    assert "never written over" in err


BAD_FIELDS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("index a string", lambda d: d.update(index="0")),
    ("index out of the plan", lambda d: d.update(index=7)),
    ("facts a list", lambda d: d.update(facts=[])),
    ("facts without an id", lambda d: d["facts"].pop("id")),
    ("state a string", lambda d: d.update(state="ok")),
    ("state with an extra key", lambda d: d["state"].update(surprise=1)),
    ("state of another cell", lambda d: d["state"].update(id="tf9.9-py3.11-cpu")),
    ("artifacts a dict", lambda d: d.update(artifacts={})),
    ("artifact entry a string", lambda d: d.update(artifacts=["x"])),
    ("registry a number", lambda d: d.update(registry=3)),
    ("identity a list", lambda d: d.update(identity=[1])),
    ("info a string", lambda d: d.update(info="x")),
    ("plan empty", lambda d: d.update(plan=[])),
    ("matrix_text a number", lambda d: d.update(matrix_text=1)),
    ("an unknown field", lambda d: d.update(extra=True)),
    ("nested deeply", lambda d: d.update(info=_deep(200))),
]


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("what", "change"), BAD_FIELDS, ids=[w for w, _ in BAD_FIELDS])
def test_a_wrongly_shaped_bundle_is_one_line(shards: Shards, made: tuple[list[Path], list[Path]], what: str,
                                              change: Callable[[dict[str, Any]], None]) -> None:
    exports, loads = made
    edit(exports[0], change)
    shards.merge(exports + loads, expect=2)
    shards.try_load(CELLS[1], exports, shards.folder / "again", expect=2)


def test_a_deeply_nested_bundle_file_is_one_line(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    (exports[0] / BUNDLE_FILE).write_text('{"kind": "export", "info": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested" in shards.merge(exports + loads, expect=2)


def test_a_record_with_the_wrong_shape_is_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    """Digests in order (as a forger makes them), but a field of the wrong type."""
    exports, loads = made
    data = json.loads((exports[0] / BUNDLE_FILE).read_text())
    key = data["artifacts"][0][0]
    forge_record(exports[0], "exports", key, lambda p: p.update(tflite_ops=["x"]))
    payload = json.loads(record_file(exports[0], "exports", key).read_text())["payload"]
    edit(exports[0], lambda d: d["artifacts"][0].__setitem__(1, digests.of_json(payload)))
    assert "not a valid bundle" in shards.merge(exports + loads, expect=2)


# -- reading a single bundle ----------------------------------------------------------------------
def test_a_well_formed_bundle_reads(made: tuple[list[Path], list[Path]]) -> None:
    exports, loads = made
    assert read(exports[0]).cell == CELLS[0] and read(loads[1]).kind == "load"


@pytest.mark.parametrize(("change", "says"), [
    ({"sandbox_version": "0.0.1"}, "made by sandbox 0.0.1"),
    ({"store_schema": STORE_SCHEMA + 1}, "one sandbox version"),
    ({"kind": "other"}, "not a bundle"),
])
def test_a_bundle_from_elsewhere_is_refused(made: tuple[list[Path], list[Path]], change: dict[str, object],
                                            says: str) -> None:
    exports, _ = made
    edit(exports[0], lambda d: d.update(change))
    with pytest.raises(BundleError, match=says):
        read(exports[0])
    assert __version__


@pytest.mark.parametrize("text", ["", "{", "[]", '{"kind": "export"}', "\x00\xff"])
def test_a_damaged_bundle_file_is_one_line_from_the_cli(tmp_path: Path, text: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / BUNDLE_FILE).write_text(text, errors="surrogateescape")
    assert cli.main(["merge", str(folder), "--reports", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sandbox: error:") and "Traceback" not in err[0]


def test_a_folder_without_a_bundle_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["merge", str(tmp_path), "--reports", str(tmp_path / "r")]) == 2
    assert "not a bundle" in capsys.readouterr().err


def test_an_export_listed_twice_or_not_of_the_matrix_is_refused(shards: Shards,
                                                                made: tuple[list[Path], list[Path]]) -> None:
    """A forger re-signs bundle.json: an artifact twice would count its loads twice."""
    exports, loads = made
    twice = shards.folder / "twice"
    shutil.copytree(exports[0], twice)
    edit(twice, lambda d: d["artifacts"].append(d["artifacts"][0]))
    assert "there twice" in shards.merge([twice, exports[1]] + loads, expect=2)
    key = json.loads((exports[1] / BUNDLE_FILE).read_text())["artifacts"][0][0]
    forge_record(exports[1], "exports", key, lambda p: p.update(probe="lstm"))
    payload = json.loads(record_file(exports[1], "exports", key).read_text())["payload"]
    edit(exports[1], lambda d: d["artifacts"][0].__setitem__(1, digests.of_json(payload)))
    assert "not a probe and format of the matrix" in shards.merge([exports[0], exports[1]] + loads, expect=2)


def test_a_load_bundle_cannot_make_a_cell_that_did_not_run_ok(shards: Shards,
                                                              made: tuple[list[Path], list[Path]]) -> None:
    """The skipped cell's load bundle says ok (with no loads): once, merge took its word."""
    exports, loads = made
    edit(exports[1], lambda d: d["state"].update(status="skipped", reason="no such release"))
    digest = json.loads((exports[1] / BUNDLE_FILE).read_text())["digest"]
    edit(loads[0], lambda d: d.update(loads=[e for e in d["loads"] if e[0] != CELLS[1]]))
    for bundle in loads:
        edit(bundle, lambda d: d["exports"].update({CELLS[1]: digest}))
    edit(loads[1], lambda d: d.update(loads=[]))
    assert "says did not run" in shards.merge(exports + loads, expect=2)


def test_a_hard_link_in_a_bundle_is_refused(shards: Shards, made: tuple[list[Path], list[Path]]) -> None:
    """An unpacked archive can link a file of this machine into a bundle."""
    exports, loads = made
    outside = shards.folder / "outside.txt"
    outside.write_text("a file of this machine")
    os.link(outside, exports[0] / "store" / "linked.txt")
    assert "hard links" in shards.merge(exports + loads, expect=2)
