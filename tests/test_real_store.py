"""The results store never drops a good measurement, on real TensorFlow (the
case of issue 17: one TF 2.15 cell, batchnorm and dense in saved_model and
keras_h5, whose exports differ byte for byte every time they are made):
re-measuring with --fresh, an artifact deleted from the store, two runs from
two folders sharing one store at once, and shards whose machines keep stale
stores all end with every load measured and the cell ok."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sandbox_cli import ROOT, results
from sandbox_cli import sandbox as run_sandbox
from test_real_incremental import tally

pytestmark = pytest.mark.real

MATRIX = """
name = "st"
tensorflow = ["2.15"]
python = "3.11"
probes = ["batchnorm", "dense"]
formats = ["saved_model", "keras_h5"]
"""
CELL = "tf2.15.1-py3.11-cpu"
# per probe: saved_model by tf1_session and tf2_load, keras_h5 by keras2 and keras3 (n/a: no Keras 3 in 2.15)
LOADS = 2 * 4


def sandbox(args: list[str], cwd: Path, store: Path, expect: int = 0) -> subprocess.CompletedProcess[str]:
    return run_sandbox(args, cwd, expect=expect, env={"SANDBOX_STORE_DIR": str(store)})


def outcomes(doc: dict[str, Any]) -> dict[tuple[str, ...], str]:
    return {(l["consumer"], l["producer"], l["probe"], l["format"], l["loader"]): l["status"] for l in doc["loads"]}


def healthy(doc: dict[str, Any]) -> None:
    assert [(c["id"], c["status"], c["reason"]) for c in doc["cells"]] == [(CELL, "ok", None)]
    assert len(doc["loads"]) == LOADS and len(outcomes(doc)) == LOADS
    assert {s for s in outcomes(doc).values()} <= {"ok", "not-applicable"}, outcomes(doc)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("store")
    (folder / "matrix.toml").write_text(MATRIX)
    done = sandbox(["run", "matrix.toml"], folder, folder / "store")
    assert tally(done.stdout) == (4, LOADS, 1, 0, 0)
    healthy(results(folder, "st"))
    return folder


def test_fresh_measures_everything_again_and_the_store_keeps_it(work: Path) -> None:
    """Once: the cell errored ("load needs --producer NAME=DIR or --items
    FILE"), 0 loads, and the report was overwritten with that."""
    before = results(work, "st")
    done = sandbox(["run", "matrix.toml", "--fresh"], work, work / "store")
    assert tally(done.stdout) == (4, LOADS, 1, 0, 0)
    fresh = results(work, "st")
    healthy(fresh)
    assert outcomes(fresh) == outcomes(before)
    done = sandbox(["run", "matrix.toml"], work, work / "store")
    assert tally(done.stdout) == (0, 0, 0, 4, LOADS)
    assert outcomes(results(work, "st")) == outcomes(fresh)


def test_an_artifact_deleted_from_the_store_is_exported_again(work: Path) -> None:
    """Its files and its loads gone: once the report was published with those loads missing, exit 0."""
    store = work / "store" / "v1"
    record = next(store.glob("exports/*/*/record.json"))
    files = json.loads(record.read_text())["payload"]["files_digest"]
    shutil.rmtree(record.parent / files)
    shutil.rmtree(store / "loads")
    done = sandbox(["run", "matrix.toml"], work, work / "store")
    assert tally(done.stdout) == (1, LOADS, 0, 3, 0)
    healthy(results(work, "st"))


def test_two_runs_from_two_folders_sharing_one_store_at_once(tmp_path: Path) -> None:
    """Both export the same artifacts at the same time; once the second one's
    loads found the other's files, set good records aside and loaded nothing."""
    store = tmp_path / "store"
    procs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "matrix.toml").write_text(MATRIX)
        procs.append(subprocess.Popen([sys.executable, "-m", "sandbox", "run", "matrix.toml"], cwd=tmp_path / name,
                                      env={**_env(), "SANDBOX_STORE_DIR": str(store)}, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for name, proc in zip(("a", "b"), procs):
        out, _ = proc.communicate(timeout=1800)
        assert proc.returncode == 0, out
        healthy(results(tmp_path / name, "st"))


def _env() -> dict[str, str]:
    import os
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def test_shards_on_machines_with_stale_stores_load_everything(tmp_path: Path) -> None:
    """The load machine's store holds the records of an earlier export of the
    cell (another bundle, other files, the same keys): once the load bundle
    held half the loads, said ok, and merge published the gap."""
    (tmp_path / "matrix.toml").write_text(MATRIX)
    export_store, load_store = tmp_path / "x-store", tmp_path / "l-store"

    def export(out: str, *extra: str) -> Path:
        sandbox(["export", "matrix.toml", "--cell", CELL, "--out", out, *extra], tmp_path, export_store)
        return tmp_path / out

    def load(bundle: Path, out: str, *extra: str) -> Path:
        sandbox(["load", "matrix.toml", "--cell", CELL, "--bundles", str(bundle), "--out", out, *extra], tmp_path,
                load_store)
        return tmp_path / out

    first = export("export-1")
    load(first, "load-1")
    second = export("export-2", "--fresh")  # the same cell exported anew: new files under the same keys
    for bundle in (load(second, "load-2"), load(second, "load-3", "--fresh")):
        data = json.loads((bundle / "bundle.json").read_text())
        assert len(data["loads"]) == LOADS and data["state"]["status"] == "ok", data["state"]
        sandbox(["merge", str(second), str(bundle), "--reports", "merged"], tmp_path, tmp_path / "m-store")
        healthy(json.loads((tmp_path / "merged" / "st" / "results.json").read_text()))
    done = sandbox(["merge", str(second), str(tmp_path / "load-1"), "--reports", "merged"], tmp_path,
                   tmp_path / "m-store", expect=2)
    assert "made from another export bundle" in done.stderr
