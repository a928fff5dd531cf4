"""The release catalog (sandbox/versions.py) on file lists written by hand:
which release a spec picks for a Python, which date its dependencies are
resolved as of, and how the cached catalog is read, refreshed and refused.
Expectations are the hand-written lists' own facts, not the code's output."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from sandbox import versions
from sandbox.errors import SandboxError
from sandbox.versions import Catalog, Wheel

MACHINE = platform.machine()
LINUX = f"manylinux2014_{MACHINE}"


def entry(filename: str, uploaded: str, requires: str = "") -> dict[str, str]:
    return {"filename": filename, "upload-time": uploaded, **({"requires-python": requires} if requires else {})}


FILES = {
    "tensorflow": [
        entry(f"tensorflow-2.15.0-cp311-cp311-{LINUX}.whl", "2023-11-14T10:00:00Z"),
        entry(f"tensorflow-2.15.1-cp311-cp311-{LINUX}.whl", "2024-03-08T10:00:00Z"),
        entry(f"tensorflow-2.15.1-cp39-cp39-{LINUX}.whl", "2024-03-09T12:00:00Z"),  # a later upload of the same release
        entry(f"tensorflow-2.16.0rc0-cp311-cp311-{LINUX}.whl", "2024-02-20T10:00:00Z"),
        entry(f"tensorflow-2.16.1-cp312-cp312-{LINUX}.whl", "2024-03-07T10:00:00Z"),
        entry("tensorflow-2.17.0-cp311-cp311-macosx_12_0_arm64.whl", "2024-07-11T10:00:00Z"),  # no wheel for Linux
        entry(f"tensorflow-0.12.0-cp35-cp35m-{LINUX}.whl", "2016-12-01T10:00:00Z"),
        entry("tensorflow-2.15.1.tar.gz", "2024-03-08T10:00:00Z"),  # not a wheel: ignored
    ],
    "tensorflow-cpu": [
        entry(f"tensorflow_cpu-2.15.1-cp311-cp311-{LINUX}.whl", "2024-03-08T11:00:00Z"),
        entry(f"tensorflow_cpu-2.14.1-cp311-cp311-{LINUX}.whl", "2023-11-15T10:00:00Z"),
    ],
    "keras": [
        entry("keras-3.5.0-py3-none-any.whl", "2024-08-12T10:00:00Z", ">=3.9"),
        entry("keras-3.0.0-py3-none-any.whl", "2023-11-28T10:00:00Z", ">=3.9"),
    ],
    "tf-nightly": [
        entry(f"tf_nightly-2.18.0.dev20240801-cp311-cp311-{LINUX}.whl", "2024-08-01T09:00:00Z"),
        entry(f"tf_nightly-2.18.0.dev20240802-cp311-cp311-{LINUX}.whl", "2024-08-02T09:00:00Z"),
        entry(f"tf_nightly-2.18.0.dev20240803-cp312-cp312-{LINUX}.whl", "2024-08-03T09:00:00Z"),
    ],
}


@pytest.fixture
def pypi(monkeypatch: pytest.MonkeyPatch) -> None:
    """No index named in the environment: the catalog is PyPI's."""
    for var in ("SANDBOX_INDEX_URL", "UV_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def catalog(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """A catalog whose every package reads FILES (no index)."""
    monkeypatch.setattr(versions, "_files", lambda package, offline: FILES.get(package, []))
    return Catalog()


def test_a_minor_picks_its_newest_patch_with_a_wheel_for_the_python(catalog: Catalog) -> None:
    found = catalog.resolve("2.15", "3.11", ("tensorflow",))
    assert found is not None and (found.package, found.version) == ("tensorflow", "2.15.1")
    # the release's date is its last upload (the cp39 wheel came a day later)
    assert found.uploaded == dt.datetime(2024, 3, 9, 12, tzinfo=dt.timezone.utc)
    assert found.requirement == "tensorflow==2.15.1"
    assert found.exclude_newer == "2024-03-10T12:00:00Z"  # dependencies as of a day after the release
    assert catalog.resolve("2.16", "3.11", ("tensorflow",)) is None  # 2.16.1 is cp312 only; rc0 is no release
    assert catalog.resolve("2.16", "3.12", ("tensorflow",)).version == "2.16.1"  # type: ignore[union-attr]
    assert catalog.resolve("2.17", "3.11", ("tensorflow",)) is None  # macOS only
    assert catalog.resolve("2.15.0", "3.11", ("tensorflow",)).version == "2.15.0"  # type: ignore[union-attr]


def test_at_equal_versions_the_earlier_package_wins_and_a_newer_version_beats_rank(catalog: Catalog) -> None:
    assert catalog.resolve("2.15", "3.11", ("tensorflow-cpu", "tensorflow")).package == "tensorflow-cpu"  # type: ignore[union-attr]
    assert catalog.resolve("2.15", "3.11", ("tensorflow", "tensorflow-cpu")).package == "tensorflow"  # type: ignore[union-attr]
    found = catalog.resolve("2.14", "3.11", ("tensorflow", "tensorflow-cpu"))
    assert found is not None and (found.package, found.version) == ("tensorflow-cpu", "2.14.1")


def test_a_pure_wheel_serves_every_python_its_requires_python_allows(catalog: Catalog) -> None:
    assert catalog.resolve("3.5", "3.11", ("keras",)).version == "3.5.0"  # type: ignore[union-attr]
    assert catalog.resolve("3.5", "3.8", ("keras",)) is None  # Requires-Python >=3.9
    assert catalog.pythons_for("3.5", ("keras",)) == []  # a pure wheel names no CPython
    assert catalog.pythons_for("2.15", ("tensorflow",)) == ["3.9", "3.11"]  # ordered as versions


def test_newest_honours_before_wanted_and_dev_releases(catalog: Catalog) -> None:
    on_11 = catalog.newest("3.11", ("tensorflow",))
    assert on_11 is not None and on_11.version == "2.15.1"  # 2.16.0rc0 is not final
    before = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert catalog.newest("3.11", ("tensorflow",), before=before).version == "2.15.0"  # type: ignore[union-attr]
    assert catalog.newest("3.11", ("tensorflow",), wanted=SpecifierSet("<2.15.1")).version == "2.15.0"  # type: ignore[union-attr]
    nightly = catalog.newest("3.11", ("tf-nightly",), final=False)
    assert nightly is not None and nightly.version == "2.18.0.dev20240802"  # the 0803 build is cp312 only
    assert catalog.newest("3.11", ("tf-nightly",)) is None  # final only: a nightly is none
    assert catalog.newest("3.13", ("tensorflow",)) is None
    # at equal versions the earlier package wins here too
    assert catalog.newest("3.11", ("tensorflow-cpu", "tensorflow")).package == "tensorflow-cpu"  # type: ignore[union-attr]
    assert catalog.newest("3.11", ("tensorflow", "tensorflow-cpu")).package == "tensorflow"  # type: ignore[union-attr]


def test_releases_are_the_newest_patch_of_each_minor_from_1_0_with_a_linux_wheel(catalog: Catalog) -> None:
    every = SpecifierSet("")
    assert catalog.releases(every, ("tensorflow",)) == [Version("2.15.1"), Version("2.16.1")]
    assert catalog.releases(every, ("tensorflow",), every_patch=True) == [
        Version("2.15.0"), Version("2.15.1"), Version("2.16.1")]
    assert catalog.releases(SpecifierSet(">=2.16"), ("tensorflow", "tensorflow-cpu")) == [Version("2.16.1")]
    assert catalog.releases(SpecifierSet("<2.15"), ("tensorflow", "tensorflow-cpu")) == [Version("2.14.1")]
    assert catalog.versions("tensorflow-cpu") == [Version("2.14.1"), Version("2.15.1")]


@pytest.mark.parametrize(("spec", "version", "expected"), [
    ("1.13", "1.13.2", True), ("1.13", "1.14.0", False), ("1.13", "1.13.0rc1", False),
    ("1.13", "1.1.3", False), ("2.15.1", "2.15.1", True), ("2.15.1", "2.15.10", False),
    ("2", "2.9.0", True), ("2.16.0rc0", "2.16.0rc0", True), ("2.16.0rc0", "2.16.0", False),
    ("nightly", "2.15.1", False), ("2.18", "2.18.0.dev20240801", False),
])
def test_a_version_spec_matches_final_releases_by_their_leading_parts(spec: str, version: str, expected: bool) -> None:
    assert versions.matches(spec, Version(version)) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("all", ""), (">=1.12", ">=1.12"), (" >=1.13,<2 ", "<2,>=1.13"), ("~=2.15", "~=2.15"), ("!=2.0", "!=2.0"),
    ("1.15", None), ("2.15.1", None), ("", None), (">=banana", None),
])
def test_a_range_is_a_specifier_set_and_a_version_is_not(text: str, expected: str | None) -> None:
    found = versions.version_range(text)
    assert (None if found is None else str(found)) == expected
    assert versions.is_range(text) is (expected is not None)


def test_names_sort_by_the_versions_inside_them() -> None:
    names = ["tf2.10.1-py3.10-cpu", "tf2.2.3-py3.8-cpu", "tf1.15.5-py3.7-cpu", "tf2.2.3-py3.8-gpu", "keras3.5.0"]
    assert sorted(names, key=versions.natural) == [
        "keras3.5.0", "tf1.15.5-py3.7-cpu", "tf2.2.3-py3.8-cpu", "tf2.2.3-py3.8-gpu", "tf2.10.1-py3.10-cpu"]
    assert versions.minor(Version("1.13.2")) == "1.13"
    assert versions.newest_per_minor([Version(v) for v in ("2.1.0", "2.0.4", "2.1.4", "2.0.1")]) == [
        Version("2.0.4"), Version("2.1.4")]
    assert not versions.is_final(Version("2.16.0rc0")) and not versions.is_final(Version("2.18.0.dev1"))
    assert versions.is_final(Version("2.15.1"))


def test_a_wheel_knows_the_pythons_and_platforms_it_serves() -> None:
    parsed = versions._wheel(entry(f"tensorflow-2.15.1-cp311-cp311-{LINUX}.whl", "2024-03-08T10:00:00Z"))
    assert parsed is not None and parsed.pythons == frozenset({"3.11"}) and not parsed.pure
    assert parsed.serves("3.11", MACHINE) and not parsed.serves("3.12", MACHINE)
    assert not parsed.serves("3.11", "riscv64")
    mac = Wheel(Version("1"), frozenset({"3.11"}), frozenset({"macosx_12_0_arm64"}), dt.datetime(2024, 1, 1))
    assert not mac.serves("3.11", "arm64")  # Linux only
    pure = versions._wheel(entry("keras-3.5.0-py3-none-any.whl", "2024-08-12T10:00:00Z", ">=3.9"))
    assert pure is not None and pure.pure and pure.pythons == frozenset()
    assert pure.serves("3.9", "anything") and not pure.serves("3.8", MACHINE)
    unreadable = Wheel(Version("1"), frozenset(), frozenset({"any"}), dt.datetime(2024, 1, 1), "not a specifier")
    assert unreadable.serves("3.6", MACHINE)  # an unreadable Requires-Python allows
    assert versions._wheel({"filename": "not-a-wheel.whl", "upload-time": "2024-01-01T00:00:00Z"}) is None
    assert versions._wheel({"upload-time": "2024-01-01T00:00:00Z"}) is None


def test_the_index_comes_from_the_environment_and_each_index_has_its_own_catalog(
        cache: Path, pypi: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert versions.index_url() == "https://pypi.org/simple"
    assert versions.catalog_file("keras") == cache / "catalog" / "keras.json"
    monkeypatch.setenv("PIP_INDEX_URL", "https://pip.example/simple/")
    assert versions.index_url() == "https://pip.example/simple"
    monkeypatch.setenv("UV_INDEX_URL", "https://uv.example/simple")
    assert versions.index_url() == "https://uv.example/simple"  # uv's before pip's
    monkeypatch.setenv("SANDBOX_INDEX_URL", "https://mine.example/simple")
    assert versions.index_url() == "https://mine.example/simple"
    other = versions.catalog_file("keras")
    assert other.name == "keras.json" and other.parent.parent == cache / "catalog"  # a folder per index


def test_the_cached_catalog_is_used_fresh_refetched_stale_and_kept_when_the_index_fails(
        cache: Path, pypi: None, monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[str] = []
    served = [entry("keras-3.5.0-py3-none-any.whl", "2024-08-12T10:00:00Z")]

    def fetch(package: str) -> list[dict[str, str]]:
        fetched.append(package)
        return served

    monkeypatch.setattr(versions, "_fetch", fetch)
    with pytest.raises(SandboxError, match="no usable cached release catalog for keras"):
        versions._files("keras", offline=True)
    assert versions._files("keras", offline=False) == served and fetched == ["keras"]
    path = versions.catalog_file("keras")
    assert json.loads(path.read_text()) == served and not path.with_suffix(".tmp").exists()
    assert versions._files("keras", offline=False) == served and fetched == ["keras"]  # fresh: not fetched again

    stale = time.time() - versions.CACHE_SECONDS - 60
    os.utime(path, (stale, stale))
    served = [entry("keras-3.6.0-py3-none-any.whl", "2024-10-01T10:00:00Z")]
    assert versions._files("keras", offline=False) == served and fetched == ["keras", "keras"]
    os.utime(path, (stale, stale))
    assert versions._files("keras", offline=True) == served and len(fetched) == 2  # offline: stale is used

    def down(package: str) -> list[dict[str, str]]:
        raise OSError("network is unreachable")

    monkeypatch.setattr(versions, "_fetch", down)
    assert versions._files("keras", offline=False) == served  # stale beats nothing
    path.write_text("{not json")
    with pytest.raises(SandboxError, match="cannot read the release catalog of keras from https://pypi.org/simple"):
        versions._files("keras", offline=False)
    path.write_text(json.dumps({"a": "dict"}))
    assert versions._read_cache(path) is None  # not a list: refetched, never trusted
