"""The results store and the digests that address it (pure logic; the real
incremental runs are in test_real_incremental.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from test_runner import PROVISIONED, FakeEnv, make_cell

from sandbox import cellrun, collect, digests, matrix, runner
from sandbox import store as store_mod
from sandbox.errors import SandboxError
from sandbox.pythons import Interpreter
from sandbox.store import ResultsStore
from sandbox.untrusted import UnsafeInput

MODULE = '''
import numpy as np
from probes import Probe

SCALE = 2.0


def helper(x):
    return x * SCALE


class Base(Probe):
    def init_params(self, rng):
        return {"w": np.ones((2, 2), np.float32)}


class First(Base):
    name = "first"

    def forward(self, tf, params, x):
        return tf.matmul(x, params["w"])


class Second(Probe):
    name = "second"

    def forward(self, tf, params, x):
        return x + 1.0


PROBES = [First(), Second()]
'''


def digests_of(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "probes_module.py"
    path.write_text(text)
    return digests.probe_code(path)


def test_editing_one_probe_changes_only_its_digest(tmp_path: Path) -> None:
    before = digests_of(tmp_path, MODULE)
    after = digests_of(tmp_path, MODULE.replace("return x + 1.0", "return x + 2.0"))
    assert before["first"] == after["first"]
    assert before["second"] != after["second"]


def test_editing_a_base_class_changes_its_probes_only(tmp_path: Path) -> None:
    before = digests_of(tmp_path, MODULE)
    after = digests_of(tmp_path, MODULE.replace("np.ones((2, 2)", "np.zeros((2, 2)"))
    assert before["first"] != after["first"]
    assert before["second"] == after["second"]


def test_shared_code_changes_every_probe_and_listing_a_probe_changes_none(tmp_path: Path) -> None:
    before = digests_of(tmp_path, MODULE)
    shared = digests_of(tmp_path, MODULE.replace("SCALE = 2.0", "SCALE = 3.0"))
    assert before["first"] != shared["first"] and before["second"] != shared["second"]
    listed = digests_of(tmp_path, MODULE.replace("PROBES = [First(), Second()]", "PROBES = [Second(), First()]"))
    assert {k: v for k, v in listed.items() if k != "*"} == {k: v for k, v in before.items() if k != "*"}


def test_builtin_zoo_has_a_digest_per_builtin_probe() -> None:
    code = digests.ProbeCode()
    assert set(matrix.BUILTIN_PROBES) <= set(code.digests)
    assert len(set(code.digests.values())) == len(code.digests)


def test_a_record_reads_back_and_a_damaged_one_is_set_aside(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.put("loads", "ab" * 32, {"status": "ok", "seconds": 1.5})
    assert store.get("loads", "ab" * 32) == {"status": "ok", "seconds": 1.5}
    assert store.get("loads", "cd" * 32) is None
    path = tmp_path / "loads" / "ab" / f"{'ab' * 32}.json"
    path.write_text(path.read_text().replace('"ok"', '"outputs-differ"'))  # payload no longer matches its digest
    assert store.get("loads", "ab" * 32) is None
    assert not path.exists() and path.with_name(path.name + ".damaged").exists()
    path.write_text("{torn")
    assert store.get("loads", "ab" * 32) is None


def test_a_record_under_another_key_is_not_trusted(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.put("loads", "ab" * 32, {"status": "ok"})
    src = tmp_path / "loads" / "ab" / f"{'ab' * 32}.json"
    dst = tmp_path / "loads" / "cd" / f"{'cd' * 32}.json"
    dst.parent.mkdir(parents=True)
    dst.write_text(src.read_text())
    assert store.get("loads", "cd" * 32) is None


def test_export_files_are_verified_before_use(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "p" / "fmt").mkdir(parents=True)
    (source / "p" / "fmt" / "model.pb").write_bytes(b"graph")
    (source / "p" / "inputs.npz").write_bytes(b"x")
    store = ResultsStore(tmp_path / "store")
    key, payload = store.put_export("ef" * 32, {"probe": "p", "format": "fmt", "status": "exported"},
                                    {"kind": "artifact", "probe": "p"},
                                    {"p/fmt": source / "p" / "fmt", "p/inputs.npz": source / "p" / "inputs.npz"})
    folder = store.files_dir(key, payload["files_digest"])
    assert (folder / "p" / "fmt" / "model.pb").read_bytes() == b"graph"
    assert json.loads((folder / "manifest.jsonl").read_text())["probe"] == "p"
    assert store.get_export(key) == payload and payload["files_digest"]
    assert ResultsStore(tmp_path / "store").verify_files(key, payload)
    (folder / "p" / "fmt" / "model.pb").write_bytes(b"grapH")
    assert not ResultsStore(tmp_path / "store").verify_files(key, payload)
    assert store.get_export(key) is None  # set aside: the export is measured again


def test_the_store_names_the_files_of_an_export_and_finds_them_again(tmp_path: Path) -> None:
    """What the agent exported goes in under the names its record uses; the
    store answers where the exporter's folder and the record are."""
    source = tmp_path / "artifacts"
    (source / "p" / "fmt").mkdir(parents=True)
    (source / "p" / "fmt" / "model.pb").write_bytes(b"graph")
    (source / "p" / "outputs.npz").write_bytes(b"y")
    record = {"kind": "artifact", "probe": "p", "format": "fmt", "path": "p/fmt/model.pb",
              "inputs": "p/inputs.npz", "outputs": "p/outputs.npz"}
    files = store_mod.export_files(source, record)
    assert files == {"p/fmt": source / "p" / "fmt", "p/outputs.npz": source / "p" / "outputs.npz"}  # no inputs here
    store = ResultsStore(tmp_path / "store")
    key, payload = store.put_export("ab" * 32, {"probe": "p", "format": "fmt", "status": "exported"}, record, files)
    assert (store.artifact_dir(key, payload["files_digest"], "p", "fmt") / "model.pb").read_bytes() == b"graph"
    assert store.manifest_record(key, payload["files_digest"]) == record
    assert store.inside(tmp_path) and store.inside(tmp_path / "store") and not store.inside(source)
    elsewhere = "/home/ci/.cache/sandbox/results/v1/exports/ab/" + "ab" * 32 + "/model.pb"
    assert store_mod.within_a_store(elsewhere) == "exports/ab/" + "ab" * 32 + "/model.pb"
    assert store_mod.within_a_store(str(source / "p")) is None


def test_a_users_model_is_addressed_by_its_content(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    model = tmp_path / "m.pb"
    model.write_bytes(b"one")
    payload = {"probe": "repro", "format": "frozen_graph", "status": "exported"}
    first, _ = store.put_export(None, payload, {}, {"model/m.pb": model})
    again, _ = store.put_export(None, payload, {}, {"model/m.pb": model})
    model.write_bytes(b"two")
    other, _ = store.put_export(None, payload, {}, {"model/m.pb": model})
    assert first == again != other


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> tuple[dict, runner.Run]:  # type: ignore[type-arg]
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    cells = [make_cell("1.0", me), make_cell("2.0", me)]
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell))
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("batchnorm",), ("frozen_graph",), timeout=30)
    run = runner.Run(mx, cells, tmp_path / "run", 2, lambda *a: None, ResultsStore(tmp_path / "store"), **options)  # type: ignore[arg-type]
    return collect.collect(mx, run.run()).to_json(), run  # the JSON results.json would hold


def _comparable(results: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in results.items() if k != "created"}


def test_an_unchanged_rerun_measures_nothing_and_gives_the_same_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    PROVISIONED.clear()
    first, run = _run(tmp_path, monkeypatch)
    assert sorted(PROVISIONED) == ["tf1.0-py3.11-cpu", "tf2.0-py3.11-cpu"]
    assert run.tally.counts["load"] == 4 and run.tally.counts["export"] == 2  # 2 consumers x 2 producers
    PROVISIONED.clear()
    second, run = _run(tmp_path, monkeypatch)
    assert PROVISIONED == [] and run.tally.counts["load"] == run.tally.counts["export"] == 0
    assert run.tally.counts["load-reused"] == 4
    assert _comparable(second) == _comparable(first)
    PROVISIONED.clear()
    _, run = _run(tmp_path, monkeypatch, fresh=True)
    assert run.tally.counts["load"] == 4 and len(PROVISIONED) == 2


def test_a_damaged_load_record_is_measured_again_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = _run(tmp_path, monkeypatch)
    [victim, *_] = sorted((tmp_path / "store" / "loads").rglob("*.json"))
    victim.write_text(victim.read_text().replace('"ok"', '"crash"'))
    PROVISIONED.clear()
    second, run = _run(tmp_path, monkeypatch)
    assert run.tally.counts["load"] == 1 and run.tally.counts["load-reused"] == 3
    assert len(PROVISIONED) == 1  # only the consumer of that load
    assert _comparable(second) == _comparable(first)


def test_a_fresh_rerun_measures_everything_again_and_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--fresh on a store that holds the run: every export's new files go beside
    the old ones and every load is of the files its record names (the fake
    agent writes other bytes on every export, as TensorFlow does)."""
    first, _ = _run(tmp_path, monkeypatch)
    again, run = _run(tmp_path, monkeypatch, fresh=True)
    assert {c["id"]: c["status"] for c in again["cells"]} == {c["id"]: "ok" for c in first["cells"]}
    assert run.tally.counts["export"] == 2 and run.tally.counts["load"] == 4
    assert run.tally.counts["export-reused"] == run.tally.counts["load-reused"] == 0
    assert [l["status"] for l in again["loads"]] == ["ok"] * 4
    after, run = _run(tmp_path, monkeypatch)  # and the store now holds the fresh measurement
    assert run.tally.counts["load"] == 0 and run.tally.counts["load-reused"] == 4
    assert _comparable(after) == _comparable(again)


def test_two_runs_sharing_a_store_both_keep_every_measurement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run B (another folder, the same store) exports the same artifacts again
    between run A's exports and its loads: each run loads the files it exported."""
    me = Interpreter(Path(sys.executable), (3, 11, 0), "x86_64", "PATH")
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell))
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("batchnorm",), ("frozen_graph",), timeout=30)
    store = tmp_path / "store"

    def make(folder: str) -> runner.Run:
        cells = [make_cell("1.0", me), make_cell("2.0", me)]
        return runner.Run(mx, cells, tmp_path / folder, 2, lambda *a: None, ResultsStore(store), fresh=True)
    a, b = make("a"), make("b")
    for run in (a, b):
        run.each(lambda c: c.produce(True), run.cells)
    for run in (a, b):
        results = run.loads_only([s for c in run.cells for s in c.sources()], {c.cell.id: c.result for c in run.cells})
        assert [r.state.status for r in results] == ["ok", "ok"]
        assert sorted(l.status.value for r in results for _, l in r.loads) == ["ok"] * 4
    digests_a = {k: a_.files_digest for c in a.cells for k, a_ in c.result.artifacts}
    digests_b = {k: b_.files_digest for c in b.cells for k, b_ in c.result.artifacts}
    assert digests_a.keys() == digests_b.keys() and all(digests_a[k] != digests_b[k] for k in digests_a)


def test_deleted_files_are_exported_again_in_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An artifact's files and its loads gone from the store: the next run
    exports it again and loads it everywhere; nothing is published missing."""
    first, _ = _run(tmp_path, monkeypatch)
    [record] = [r for r in (tmp_path / "store" / "exports").rglob("record.json")][:1]
    for folder in record.parent.iterdir():
        if folder.is_dir():
            shutil.rmtree(folder)
    shutil.rmtree(tmp_path / "store" / "loads")
    again, run = _run(tmp_path, monkeypatch)
    assert {c["id"]: c["status"] for c in again["cells"]} == {c["id"]: "ok" for c in first["cells"]}
    assert run.tally.counts["export"] == 1 and run.tally.counts["load"] == 4
    assert len(again["loads"]) == 4


def test_a_damaged_record_of_any_shape_is_measured_again_not_a_harness_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records with a valid digest but a hostile payload (nested 100,000 deep,
    or of the wrong shape): set aside or measured again, never a cell error."""
    first, _ = _run(tmp_path, monkeypatch)
    loads = sorted((tmp_path / "store" / "loads").rglob("*.json"))
    exports = sorted((tmp_path / "store" / "exports").rglob("record.json"))
    deep = json.loads(loads[0].read_text())
    loads[0].write_text(json.dumps({**deep, "payload": {"status": "ok"}}).replace(
        '{"status": "ok"}', "[" * 100_000 + "]" * 100_000))
    for path, payload in ((loads[1], {"status": ["ok"]}), (exports[0], {"probe": "batchnorm", "files_digest": "../x"})):
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, "payload": payload, "digest": digests.of_json(payload)}))
    again, run = _run(tmp_path, monkeypatch)
    assert {c["id"]: (c["status"], c["reason"]) for c in again["cells"]} == \
        {c["id"]: ("ok", None) for c in first["cells"]}
    assert len(again["loads"]) == 4 and run.tally.counts["export"] == 1


def test_keys_that_are_not_digests_name_no_path(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    (tmp_path / "v1").mkdir()
    for key in ("../v1", "../../v1", "/etc/passwd", "ab" * 31 + "/.", "AB" * 32, "ab" * 32 + "\n"):
        for call in (lambda k=key: store.get("loads", k), lambda k=key: store.put("loads", k, {}),
                     lambda k=key: store.get_export(k), lambda k=key: store.export_dir(k),
                     lambda k=key: store.put_export(k, {}, None, {})):
            with pytest.raises(UnsafeInput, match="not a results-store key"):
                call()
    assert (tmp_path / "v1").is_dir()
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


def test_a_symlink_among_exported_files_is_refused_not_followed(tmp_path: Path) -> None:
    """What a cell's agent left (a docker cell writes into a host folder) is
    copied into the store only as folders and regular files."""
    secret = tmp_path / "secret"
    secret.write_text("host file")
    (tmp_path / "out" / "p" / "fmt").mkdir(parents=True)
    (tmp_path / "out" / "p" / "fmt" / "model.pb").symlink_to(secret)
    store = ResultsStore(tmp_path / "store")
    with pytest.raises(UnsafeInput, match="a symlink"):
        store.put_export("ab" * 32, {"probe": "p"}, {}, {"p/fmt": tmp_path / "out" / "p" / "fmt"})
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file() and p.read_text() == "host file"]
    assert not [p for p in (tmp_path / "store").rglob(".new-*")]


@pytest.mark.parametrize("module", [digests.BUILTIN_PROBES_MODULE, Path(__file__).parent.parent / "examples" / "my_probes.py"])
def test_probe_digests_take_exactly_the_source_segments_ast_gives(module: Path) -> None:
    """Digests are what stored records are keyed by: the fast segment reader
    must give ast.get_source_segment's text, byte for byte."""
    import ast
    source = module.read_text() + "\nclass Odd:\r\n    name = 'x\\fy'\r\n\r\n"
    for node in ast.parse(source).body:
        assert digests._segment(source, node) == (ast.get_source_segment(source, node) or ast.dump(node))


def test_a_consumer_with_nothing_left_to_load_starts_no_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files damaged that no one can export again (a shard's, a user's):
    the consumer is an error naming them; no agent starts with an empty list."""
    _, run = _run(tmp_path, monkeypatch)
    consumer = run.cells[0]
    sources = [s for c in run.cells for s in c.sources()]
    for source in sources:
        assert source.artifact.files_digest
        for model in run.store.files_dir(source.key, source.artifact.files_digest).rglob("model.txt"):
            model.write_text("damaged")
    shutil.rmtree(tmp_path / "store" / "loads")
    again = runner.Run(run.matrix, [consumer.cell], tmp_path / "again", 1, lambda *a: None, ResultsStore(tmp_path / "store"))
    [result] = again.loads_only(sources, {consumer.cell.id: consumer.result})
    assert result.state.status == "error" and "damaged" in str(result.state.reason) and result.loads == []
    assert not list((tmp_path / "again").rglob("load.log"))


def test_a_run_folder_that_holds_the_store_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run starts its folder afresh: --work-dir pointing above the store would delete it."""
    monkeypatch.setattr(cellrun, "environment", lambda cell: FakeEnv(cell))
    mx = matrix.Matrix(tmp_path / "m.toml", "t", (), ("batchnorm",), ("frozen_graph",), timeout=30)
    store = ResultsStore(tmp_path / "work" / "t" / "store")
    store.put("loads", "ab" * 32, {"status": "ok"})
    with pytest.raises(SandboxError, match="holds the results store"):
        runner.Run(mx, [], tmp_path / "work" / "t", 1, lambda *a: None, store).run()
    assert store.get("loads", "ab" * 32) == {"status": "ok"}


def test_a_journal_line_nested_too_deep_is_skipped_like_a_torn_one() -> None:
    from sandbox.store import json_objects
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000
    assert list(json_objects([deep, '{"kind": "load"}'])) == [{"kind": "load"}]


def test_a_renamed_export_file_fails_verification(tmp_path: Path) -> None:
    """The files' digest covers their names, not only their bytes: a SavedModel
    whose variables file took another name is another model (a file renamed by
    hand or by a forged bundle is caught like an edited one)."""
    source = tmp_path / "src" / "p" / "saved_model"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"graph")
    (source / "variables" / "variables.index").write_bytes(b"index")
    store = ResultsStore(tmp_path / "store")
    key, payload = store.put_export("ab" * 32, {"probe": "p", "format": "saved_model", "status": "exported"}, None,
                                    {"p/saved_model": source})
    folder = store.files_dir(key, payload["files_digest"])
    assert ResultsStore(tmp_path / "store").verify_files(key, payload)
    variables = folder / "p" / "saved_model" / "variables"
    (variables / "variables.index").rename(variables / "variables.indeX")
    assert not ResultsStore(tmp_path / "store").verify_files(key, payload)
    assert store.get_export(key) is None


def test_the_digest_of_a_tree_names_each_file(tmp_path: Path) -> None:
    """Same bytes under another name: another digest; back under the first name: the first."""
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "b").write_bytes(b"2")
    first = digests.of_tree(tmp_path)
    (tmp_path / "b").rename(tmp_path / "c")
    assert digests.of_tree(tmp_path) != first
    (tmp_path / "c").rename(tmp_path / "b")
    assert digests.of_tree(tmp_path) == first
