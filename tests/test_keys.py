"""sandbox.keys: each store key changes with what determines its record, and
with nothing else (a key that ignored one would reuse a wrong measurement; one
that took in more would measure again for nothing)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sandbox import matrix
from sandbox.keys import Keys
from sandbox.records import Artifact, ArtifactStatus, Source


def _matrix(tmp_path: Path, tolerance: str = "") -> matrix.Matrix:
    return matrix.parse(matrix.parse_toml(f'tensorflow = ["2.15"]\nprobes = ["dense", "lstm"]\n{tolerance}',
                                          tmp_path / "m.toml"), tmp_path / "m.toml")


def _source(files: str = "f1", producer: str = "p", key: str = "k") -> Source:
    return Source(producer, key, Artifact("dense", "saved_model", ArtifactStatus.EXPORTED, files_digest=files))


def test_a_load_key_is_the_consumer_the_files_the_loader_the_tolerance_and_keras_safe_mode(tmp_path: Path) -> None:
    keys = Keys.of(_matrix(tmp_path))
    base = keys.load("env", _source(), "tf2_load")
    assert keys.load("env", _source(producer="q", key="other"), "tf2_load") == base  # the same files: one load
    assert keys.load("env2", _source(), "tf2_load") != base
    assert keys.load("env", _source(files="f2"), "tf2_load") != base
    assert keys.load("env", _source(), "tf1_session") != base
    assert replace(keys, keras_unsafe=True).load("env", _source(), "tf2_load") != base
    looser = Keys.of(_matrix(tmp_path, "[tolerance.dense]\natol = 0.1\nrtol = 0.1\n"))
    assert looser.load("env", _source(), "tf2_load") != base
    other_probe = Keys.of(_matrix(tmp_path, "[tolerance.lstm]\natol = 0.1\nrtol = 0.1\n"))
    assert other_probe.load("env", _source(), "tf2_load") == base  # another probe's tolerance is not this load's


def test_export_and_registry_keys_are_their_environments_and_items(tmp_path: Path) -> None:
    keys = Keys.of(_matrix(tmp_path))
    assert keys.export("env", "dense", "saved_model") == keys.export("env", "dense", "saved_model")
    assert len({keys.export("env", "dense", "saved_model"), keys.export("env2", "dense", "saved_model"),
                keys.export("env", "lstm", "saved_model"), keys.export("env", "dense", "frozen_graph")}) == 4
    assert keys.registry("env") != keys.registry("env2")
    assert replace(keys, keras_unsafe=True).export("env", "dense", "saved_model") == keys.export("env", "dense", "saved_model")
