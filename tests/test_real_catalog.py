"""The map keeps itself current (real TensorFlow): the scheduled job's flow
(run the range matrix, diff against the committed report with ci/diff.sh,
propose only when "changed") over a release catalog that gains a release,
then gains a patch of an existing minor. Each time exactly the new cell's
exports and its 2N+1 pairs' loads are measured, nothing else; a re-run with
nothing new measures nothing and proposes nothing.

The catalog is a local package index (PEP 691 JSON, SANDBOX_INDEX_URL) that
lists PyPI's own files of the chosen releases (so each cell resolves as it
would from PyPI, on environments other tests build too), one path per state
of the catalog."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_cli import ROOT, SCALE_PROBES, results, sandbox

from sandbox import versions

pytestmark = pytest.mark.real

MATRIX = """
name = "current"
tensorflow = ">=1.13"
python = "auto"
probe_modules = ["probes.py"]
probes = ["scale"]
formats = ["frozen_graph", "saved_model_tf1"]
"""
# The catalog, as it grows: a release (2.12.1) joins, then a patch (1.13.2) of a minor it has (1.13.1).
STATES = {"v1": ("1.13.1", "1.15.5"), "v2": ("1.13.1", "1.15.5", "2.12.1"), "v3": ("1.13.1", "1.13.2", "1.15.5", "2.12.1")}
PACKAGES = ("tensorflow", "tensorflow-cpu")
TALLY = re.compile(r"measured (\d+) exports, (\d+) loads, (\d+) registries; reused (\d+) exports, (\d+) loads")


@pytest.fixture(scope="module")
def index() -> Iterator[str]:
    """http://127.0.0.1:PORT: /<state>/<package>/ lists PyPI's files of that state's releases."""
    real = {package: versions._files(package, offline=False) for package in PACKAGES}
    pages: dict[str, bytes] = {}
    for state, kept in STATES.items():
        for package, files in real.items():
            listed = [f for f in files if _version(f["filename"]) in kept]
            pages[f"/{state}/{package}/"] = json.dumps({"files": listed}).encode()

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _version(filename: str) -> str:
    return filename.split("-")[1]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("catalog")
    (folder / "probes.py").write_text(SCALE_PROBES)
    (folder / "matrix.toml").write_text(MATRIX)
    shutil.copy(ROOT / "ci" / "diff.sh", folder / "diff.sh")
    return folder


def scheduled(work: Path, index: str, state: str) -> tuple[tuple[int, ...], dict[str, Any], bool]:
    """One scheduled run: the matrix against the catalog in `state`, then the
    diff against the committed report; a changed report is committed (the
    proposal, accepted). Returns the tally, the report and whether it changed."""
    env = {"SANDBOX_STORE_DIR": str(work / "store"), "SANDBOX_INDEX_URL": f"{index}/{state}"}
    done = sandbox(["run", "matrix.toml"], work, env=env)
    found = TALLY.search(done.stdout)
    assert found, done.stdout
    subprocess.run(["sh", "diff.sh", "committed", "reports/current", "out"], cwd=work, check=True,
                   env={**os.environ, **env, "PATH": _path()})  # `sandbox` of this checkout on PATH
    changed = bool(json.loads((work / "out" / "diff.json").read_text())["changed"])
    if changed:
        shutil.rmtree(work / "committed", ignore_errors=True)
        shutil.copytree(work / "reports" / "current", work / "committed")
    return tuple(int(n) for n in found.groups()), results(work, "current"), changed


def _path() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def involving(doc: dict[str, Any], cell: str) -> tuple[int, int]:
    """(artifacts of `cell`, loads with `cell` as producer or consumer), from the report."""
    return (sum(a["producer"] == cell for a in doc["artifacts"]),
            sum(cell in (l["producer"], l["consumer"]) for l in doc["loads"]))


def test_a_new_release_and_a_new_patch_cost_exactly_their_cell(work: Path, index: str) -> None:
    tally, first, changed = scheduled(work, index, "v1")
    assert [c["id"] for c in first["cells"]] == ["tf1.13.1-py3.7-cpu", "tf1.15.5-py3.7-cpu"] and changed
    assert tally == (len(first["artifacts"]), len(first["loads"]), 2, 0, 0)

    # a release joins the range: its exports and the 2N+1 pairs it is in (N = 2), nothing else
    tally, second, changed = scheduled(work, index, "v2")
    new = "tf2.12.1-py3.11-cpu"
    assert [c["id"] for c in second["cells"]] == [c["id"] for c in first["cells"]] + [new] and changed
    exports, loads = involving(second, new)
    assert {(l["producer"], l["consumer"]) for l in second["loads"] if new in (l["producer"], l["consumer"])} == \
        {(p, c) for p in (c["id"] for c in second["cells"]) for c in (c["id"] for c in second["cells"])
         if new in (p, c)}  # 2N+1 = 5 pairs
    assert tally == (exports, loads, 1, len(first["artifacts"]), len(first["loads"]))

    # nothing new: nothing measured, nothing to propose
    tally, third, changed = scheduled(work, index, "v2")
    assert tally == (0, 0, 0, len(second["artifacts"]), len(second["loads"])) and not changed

    # a patch of a minor the map has: its cell replaces the old one's, and only it is measured
    tally, fourth, changed = scheduled(work, index, "v3")
    patched = "tf1.13.2-py3.7-cpu"
    assert [c["id"] for c in fourth["cells"]] == [patched, "tf1.15.5-py3.7-cpu", new] and changed
    exports, loads = involving(fourth, patched)
    kept = len(fourth["loads"]) - loads
    assert tally == (exports, loads, 1, len(fourth["artifacts"]) - exports, kept)
    assert len({(l["producer"], l["consumer"]) for l in fourth["loads"] if patched in (l["producer"], l["consumer"])}) == 5
