from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import docker


def pytest_configure(config: pytest.Config) -> None:
    """Every test session measures into a results store of its own: a store
    left by an earlier session would let real tests pass without measuring.
    (Environments are still shared through the cache: they are rebuilt only
    when their recipe changes.)"""
    if "SANDBOX_STORE_DIR" not in os.environ:
        import tempfile
        os.environ["SANDBOX_STORE_DIR"] = tempfile.mkdtemp(prefix="sandbox-test-store-")


@pytest.fixture(autouse=True)
def no_environment_leaks() -> Iterator[None]:
    """Fail a test that changes os.environ and does not restore it."""
    before = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    yield
    after = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    assert before == after, f"test leaked environment changes: {set(before.items()) ^ set(after.items())}"


@pytest.fixture
def cache(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> object:
    """An empty sandbox cache for the test."""
    path = tmp_path / "cache"  # type: ignore[operator]
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    """The Docker Engine; tests that need it skip without one, unless
    SANDBOX_REQUIRE_DOCKER is set (CI), where that is a failure."""
    from sandbox.envs import engine
    try:
        return engine.connect()
    except engine.EngineUnavailable as exc:
        if os.environ.get("SANDBOX_REQUIRE_DOCKER"):
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def base_image(client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Debian image with only Python (no registry needed), built once per engine."""
    import docker_base
    return docker_base.ensure_image(client, tmp_path_factory.mktemp("base") / "base.log")
