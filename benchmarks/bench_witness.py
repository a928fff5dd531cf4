"""What witnesses cost, timed in one invocation as ratios to the run they follow
(absolute seconds vary with the machine and its load).

    python benchmarks/bench_witness.py [matrix.toml]

On a copy of the matrix in a temporary folder, with a results store of its own
(environments come from the shared cache; build them first for a fair number):
  run           `sandbox run --no-witness`: every export and load measured (the baseline)
  witness       `sandbox witness REPORT`: every finding's witness run, one process each
  rerun         `sandbox run` again: nothing measured, every witness taken from the store
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATRIX = """
name = "bench-witness"
probes = ["batchnorm", "dense", "conv2d"]
formats = ["saved_model", "frozen_graph", "keras_h5", "tflite", "checkpoint"]
[[include]]
tensorflow = "1.15"
python = "3.7"
[[include]]
tensorflow = "2.18"
python = "3.11"
"""


def sandbox(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1, 4):  # 4: a witness refuted its finding (a result here)
        sys.exit(f"sandbox {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def timed(label: str, args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    out = sandbox(args, cwd, env)
    seconds = time.monotonic() - start
    said = [line.strip() for line in out.splitlines() if line.startswith(("measured", "witnesses of"))]
    print(f"{label:8} {seconds:7.1f}s  {'; '.join(said)}", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("matrix", nargs="?", type=Path, help="a matrix file (default: two cells, three probes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-witness-") as tmp:
        folder = Path(tmp)
        (folder / "matrix.toml").write_text(args.matrix.read_text() if args.matrix else MATRIX)
        env = {**os.environ, "SANDBOX_STORE_DIR": str(folder / "store"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        run = timed("run", ["run", "matrix.toml", "--no-witness"], folder, env)
        name = json.loads(next((folder / "reports").glob("*/results.json")).read_text())["name"]
        witness = timed("witness", ["witness", f"reports/{name}"], folder, env)
        rerun = timed("rerun", ["run", "matrix.toml"], folder, env)
        found = json.loads((folder / "reports" / name / "results.json").read_text()).get("witnesses") or []
        print(f"\n{len(found)} findings witnessed: witness / run = {witness / run:.2f}, rerun / run = {rerun / run:.3f} "
              f"({witness / max(len(found), 1):.1f}s per witness)")


if __name__ == "__main__":
    main()
