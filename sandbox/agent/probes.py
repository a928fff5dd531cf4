"""The probe protocol, the registry of probes and their preparation.

A probe is a small model written once against raw TF ops (it must run in TF1
graph mode and under TF2 eager execution, and in TF 2.16+ where tf.keras is
Keras 3) and, where it makes sense, once more as a Keras model with the same
weights (for the Keras formats). The protocol, which user probe modules
follow too (see README, "Adding a probe"):

- ``name``: unique, used in file names and reports.
- ``input_shape``: the fixed shape of the reference input (batch first).
- ``init_params(rng)``: {name: float32 ndarray}, the initial parameters.
- ``forward(tf, params, x)``: the inference output for input tensor x, from
  raw ops (``tf`` is the tensorflow module; params are variables or tensors).
- optional ``train_steps`` and ``train_step(ctx, params, batch)``: training
  that changes state (see zoo.BatchNorm); ``state_report(before, after)``.
- optional ``reference(tf, params, x)``: the reference outputs where
  ``forward`` cannot run in the producer (GPU-only kernels on a CPU build);
  by default ``forward``. Raise Unbuildable("why") from ``forward`` where this
  TF cannot express the probe.
- optional ``keras_model(keras, params)``: a Keras model computing the same
  function with these weights; raise NoKeras("why") where it cannot.
- optional ``mistakes`` (names) and ``mistaken_forward(tf, params, x, name)``:
  the outputs a known loader mistake would compute; the producer records how
  far each is from the reference, proving the comparison would catch it.
- optional ``device``: the device the probe's graph needs to run ("GPU": it
  holds ops with GPU kernels only, like CuDNN's); None (the default) where any
  device runs it. It goes into every export record, so a report keeps such a
  probe's failures on a consumer without that device apart: they answer a
  device question, not a version question.

Built-in probes live in zoo.py; user modules define ``PROBES`` (a list of
Probe instances) and are loaded with --probe-module PATH.
"""
import collections
import importlib.util
import os
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import tfcompat


class NoKeras(Exception):
    """This probe has no Keras model in this Keras; the message says why."""


class Unbuildable(Exception):
    """This TF cannot build the probe's graph (an op it lacks); the message says why."""


class Probe(object):
    name = ""
    input_shape: Tuple[int, ...] = ()
    train_steps = 0
    device: Optional[str] = None  # "GPU": the graph runs only there (see the module's docstring)

    def seed(self) -> int:
        """A stable per-probe seed (the same in every cell and Python)."""
        return zlib.crc32(self.name.encode("utf-8")) & 0x7FFFFFFF

    def inputs(self, rng: np.random.RandomState) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, self.input_shape).astype(np.float32)

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def forward(self, tf: Any, params: Dict[str, Any], x: Any) -> Any:
        raise NotImplementedError

    def reference(self, tf: Any, params: Dict[str, Any], x: Any) -> Any:
        return self.forward(tf, params, x)

    def train_step(self, ctx: Any, params: Dict[str, Any], x: np.ndarray) -> Any:
        """One training step (an op in graph mode, executed in eager mode)."""
        return None

    def train_batch(self, rng: np.random.RandomState) -> np.ndarray:
        return self.inputs(rng)

    def state_report(self, before: Dict[str, np.ndarray],
                     after: Dict[str, np.ndarray]) -> Optional[Dict[str, Any]]:
        return None

    def keras_model(self, keras: Any, params: Dict[str, np.ndarray]) -> Any:
        raise NoKeras("probe %s has no Keras model" % self.name)

    mistakes: Tuple[str, ...] = ()

    def mistaken_forward(self, tf: Any, params: Dict[str, Any], x: Any, name: str) -> Any:
        raise NotImplementedError


PROBES: Dict[str, Probe] = collections.OrderedDict()


def register(probe: Probe) -> Probe:
    if not probe.name or probe.name in PROBES:
        raise ValueError("probe name %r is empty or taken" % probe.name)
    PROBES[probe.name] = probe
    return probe


def load_module(path: str) -> List[str]:
    """Import a user probe module by file path and register its PROBES."""
    name = "sandbox_user_probes_%d" % (zlib.crc32(os.path.abspath(path).encode("utf-8")) & 0xFFFF)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot import probe module %s" % path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore
    found = list(getattr(module, "PROBES", []))
    if not found:
        raise ImportError("probe module %s defines no PROBES list" % path)
    return [register(p).name for p in found]


class Prepared(object):
    """A trained probe: parameter values, reference inputs and outputs."""

    def __init__(self, probe: Probe, params: Dict[str, np.ndarray], x: np.ndarray,
                 y: Optional[np.ndarray], state: Optional[Dict[str, Any]]) -> None:
        self.probe = probe
        self.params = params
        self.x = x
        self.y = y
        self.state = state
        self.keras_cache: Any = None  # Keras module name -> (model, outputs), built by the Keras exporters


def reference_input(probe: Probe) -> np.ndarray:
    return probe.inputs(np.random.RandomState(probe.seed() + 1))


def fresh_params(probe: Probe) -> Dict[str, np.ndarray]:
    """Parameters a consumer starts from before restoring a checkpoint:
    another draw than the producer's, so a value not restored shows."""
    return probe.init_params(np.random.RandomState(probe.seed() + 7))


NOT_TRAINED = "no TensorFlow in this cell: the probe's raw ops (its training, its reference outputs) cannot run"


def prepare(probe: Probe) -> Prepared:
    """Initialise, train (if the probe has state) and compute reference outputs,
    in this cell's native context (eager where available, else graph). In a
    cell without TF (Keras on JAX) the raw ops cannot run: the parameters stay
    untrained, `y` is None and the Keras writers compute their own outputs."""
    rng = np.random.RandomState(probe.seed())
    initial = probe.init_params(rng)
    batch = probe.train_batch(rng)
    x = reference_input(probe)
    if not tfcompat.available():
        return Prepared(probe, initial, x, None, {"trained": False, "reason": NOT_TRAINED} if probe.train_steps else None)
    with tfcompat.context() as ctx:
        variables = ctx.variables(initial)
        if probe.train_steps:
            ctx.repeat(lambda: probe.train_step(ctx, variables, batch), probe.train_steps)
        params = ctx.values(variables)
        y = np.asarray(ctx.call(lambda t: probe.reference(ctx.tf, variables, t), x))
        wrong = dict((k, ctx.call(lambda t, k=k: probe.mistaken_forward(ctx.tf, variables, t, k), x))
                     for k in probe.mistakes)
    state = probe.state_report(initial, params)
    if wrong:
        state = dict(state or {})
        state["mistake_max_abs_err"] = dict((k, float(np.max(np.abs(v - y)))) for k, v in wrong.items())
    return Prepared(probe, params, x, y, state)
