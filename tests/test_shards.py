"""Bundles are refused with one line when they are not what they claim
(the real shards run is in test_real_incremental.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import __version__, cli, digests
from sandbox.shards import BUNDLE_FILE, BundleError, read
from sandbox.store import STORE_SCHEMA


def bundle(folder: Path, **changes: object) -> Path:
    data = {"kind": "export", "sandbox_version": __version__, "store_schema": STORE_SCHEMA, "matrix": "m",
            "matrix_path": "m.toml", "matrix_text": 'name = "m"\ntensorflow = ["2.18"]\n',
            "matrix_digest": digests.of_json('name = "m"\ntensorflow = ["2.18"]\n'), "index": 0,
            "facts": {"id": "tf2.18.1-py3.11-cpu"}, "state": {"id": "tf2.18.1-py3.11-cpu", "status": "ok"},
            "identity": "x", "info": {}, "registry": None, "artifacts": [], **changes}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUNDLE_FILE).write_text(json.dumps({**data, "digest": digests.of_json(data)}))
    return folder


def test_a_well_formed_bundle_reads(tmp_path: Path) -> None:
    assert read(bundle(tmp_path / "b")).cell == "tf2.18.1-py3.11-cpu"


@pytest.mark.parametrize(("edit", "says"), [
    ({"sandbox_version": "0.0.1"}, "made by sandbox 0.0.1"),
    ({"store_schema": STORE_SCHEMA + 1}, "one sandbox version"),
    ({"kind": "other"}, "not a bundle"),
])
def test_a_bundle_from_elsewhere_is_refused(tmp_path: Path, edit: dict[str, object], says: str) -> None:
    with pytest.raises(BundleError, match=says):
        read(bundle(tmp_path / "b", **edit))


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
