"""Run the `sandbox` command as a user would, for the real end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# A probe module of one small probe (a scaled matmul): the real tests of pipelines and
# catalogs that need a quick, real model.
SCALE_PROBES = '''
import numpy as np
from probes import Probe


class Scale(Probe):
    name = "scale"
    input_shape = (2, 3)

    def init_params(self, rng):
        return {"w": rng.normal(0.0, 0.5, (3, 3)).astype(np.float32)}

    def forward(self, tf, params, x):
        return tf.matmul(x, params["w"]) * 2.0


PROBES = [Scale()]
'''


def sandbox(args: list[str], cwd: Path, timeout: float = 1800, expect: int = 0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m sandbox ARGS` in `cwd` (with `env` added to the environment);
    fails the test unless it exits `expect`."""
    # cwd is a scratch folder: make the package importable from this checkout too
    env = {**os.environ, **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)
    assert done.returncode == expect, done.stdout + done.stderr
    return done


def results(cwd: Path, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((cwd / "reports" / name / "results.json").read_text())
    return found


def run_matrix(folder: Path, text: str, name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Write `text` as folder/matrix.toml, run it there, return its results."""
    (folder / "matrix.toml").write_text(text)
    done = sandbox(["run", "matrix.toml"], folder)
    return done, results(folder, name)


def healthy_run(folder: Path, text: str, name: str, cells: tuple[str, ...]) -> dict[str, Any]:
    """Run a matrix whose every cell must be healthy and every export a
    finding (no harness error); its results, checked against the schema."""
    from results_schema import assert_valid
    _, found = run_matrix(folder, text, name)
    assert_valid(found)
    assert {c["id"]: c["status"] for c in found["cells"]} == dict.fromkeys(cells, "ok")
    assert [a for a in found["artifacts"] if a["status"] in ("error", "harness-error")] == []
    assert [l for l in found["loads"] if l["status"] == "harness-error"] == []
    return found


def artifact(results: dict[str, Any], producer: str, probe: str, fmt: str) -> dict[str, Any]:
    found: dict[str, Any]
    [found] = [a for a in results["artifacts"] if (a["producer"], a["probe"], a["format"]) == (producer, probe, fmt)]
    return found


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """A results document without what differs between two measurements of
    the same thing: when it was made, how long each step took, and where each
    machine kept its environment."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("created", "seconds", "location", "measured")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(doc)  # type: ignore[no-any-return]


def uncertain(doc: dict[str, Any]) -> dict[str, Any]:
    """Without the error texts and the names taken from them, nor the witnesses of the
    findings they make (TF 1.x names the first of several unknown attrs in no fixed
    order: one finding may then be two)."""
    return {**{k: v for k, v in doc.items() if k != "witnesses"},
            "loads": [{k: v for k, v in l.items() if k not in ("error", "names")} for l in doc["loads"]]}
