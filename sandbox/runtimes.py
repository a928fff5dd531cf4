"""The runtimes a cell may hold instead of a TensorFlow build: standalone
Keras 3 on a backend, LiteRT (ai-edge-litert) and tflite-runtime.

A matrix names them by key (`keras = ">=3.0"`, `ai_edge_litert = "1.2"`); the
plan resolves each to a release of its package, on a Python it has wheels
for, with the cell's dependencies (and a Keras cell's backend) as of that
release. What each runtime reads and writes is the agent's to say
(sandbox/agent/catalog.py, keyed by the package name)."""

from __future__ import annotations

from dataclasses import dataclass

TENSORFLOW = "tensorflow"


@dataclass(frozen=True)
class Runtime:
    key: str  # the matrix key: "ai_edge_litert"
    package: str  # its distribution on the package index: "ai-edge-litert"
    module: str  # what imports it: "ai_edge_litert"
    prefix: str  # how cell ids start: litert1.2.0-py3.11-cpu
    title: str  # for people: "LiteRT"
    check: str  # the module a healthy cell imports (its binary part, where it has one)


RUNTIMES = {r.key: r for r in (
    Runtime("keras", "keras", "keras", "keras", "Keras", "keras"),
    Runtime("ai_edge_litert", "ai-edge-litert", "ai_edge_litert", "litert", "LiteRT", "ai_edge_litert.interpreter"),
    Runtime("tflite_runtime", "tflite-runtime", "tflite_runtime", "tflite-runtime", "tflite-runtime",
            "tflite_runtime.interpreter"),
)}
KEYS = tuple(RUNTIMES)


@dataclass(frozen=True)
class Backend:
    """A Keras backend: the distributions that carry its binary (the plan pins
    the newest one out when the Keras was released, as a TF cell's release),
    the ones installed beside it unpinned, and how cell ids name it."""

    name: str  # KERAS_BACKEND: "tensorflow", "jax"
    binaries: tuple[str, ...]  # in order of preference at equal versions
    unpinned: tuple[str, ...]  # resolved by the installer as of the cell's date
    prefix: str  # keras3.5.0-jax0.4.31-py3.12-cpu


# The torch backend is left out: PyPI's Linux torch wheels pull in the CUDA
# stack (~3 GB per environment) and the CPU-only wheels live on another index.
BACKENDS = {b.name: b for b in (
    Backend(TENSORFLOW, ("tensorflow-cpu", "tensorflow"), (), "tf"),
    Backend("jax", ("jaxlib",), ("jax",), "jax"),
)}
DEFAULT_BACKEND = TENSORFLOW


def package_of(runtime: str) -> str:
    """The distribution a cell's runtime is: "tensorflow" for TF cells."""
    return RUNTIMES[runtime].package if runtime in RUNTIMES else TENSORFLOW
