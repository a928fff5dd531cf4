"""The results store and shards, timed in one invocation, each as a ratio to
the cold run (absolute seconds vary with the machine and its load).

    python benchmarks/bench_store.py [matrix.toml] [--skip-baseline]

Scenarios, in order, all on copies of this checkout in a temporary folder:
  cold          empty environment cache and results store (uv's download cache stays warm)
  rerun         the same matrix again: nothing to measure
  +1 cell       the matrix plus TF 2.15 on Python 3.11
  probe edited  one built-in probe's code changed (dense): only its exports and loads
  shards        every cell's export and load as separate processes, each with a
                store of its own (3 at a time), then merge
  baseline      what a user writes without sandbox: a noxfile with one session
                per cell that exports and one per cell that loads, pip-installing
                the same pins into fresh virtualenvs, measuring everything
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRA_CELL = '\n[[include]]\ntensorflow = "2.15"\npython = "3.11"\n'


def sandbox(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"sandbox {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def timed(label: str, work: object) -> float:
    start = time.monotonic()
    out = work() if callable(work) else None
    seconds = time.monotonic() - start
    tally = next((line for line in str(out).splitlines() if "measured" in line), "")
    print(f"{label:14} {seconds:7.1f}s  {tally.strip()}", flush=True)
    return seconds


def shards(matrix: Path, cwd: Path, env: dict[str, str], folder: Path) -> str:
    plan = json.loads(sandbox(["plan", str(matrix), "--json"], cwd, env))
    cells = [c["id"] for c in plan["cells"]]

    def job(verb: str, cell: str, *extra: str) -> str:
        own = {**env, "SANDBOX_STORE_DIR": str(folder / f"store-{verb}-{cell}")}
        return sandbox([verb, str(matrix), "--cell", cell, "--out", str(folder / f"{verb}-{cell}"), *extra], cwd, own)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda c: job("export", c), cells))
        exports = [str(folder / f"export-{c}") for c in cells]
        list(pool.map(lambda c: job("load", c, "--bundles", *exports), cells))
    loads = [str(folder / f"load-{c}") for c in cells]
    return sandbox(["merge", *exports, *loads, "--reports", str(folder / "reports")], cwd, env)


BASELINE_NOXFILE = '''
import json
import nox

PLAN = json.load(open("plan.json"))
CELLS = {c["id"]: c for c in PLAN["cells"] if not c["skip"]}
AGENT = AGENT_PATH


def venv(session, cell):
    """A fresh virtualenv for the cell with the same pins sandbox resolves."""
    c, folder = CELLS[cell], "venvs/" + cell
    pins = "pins-%s.txt" % cell
    session.run("sh", "-c", "printf '%s\\\\n' " + " ".join(c["requirements"]) + " | uv pip compile --quiet "
                "--python " + c["python_path"] + " " + " ".join(c["install_args"]) + " -o " + pins + " -",
                external=True, silent=True)
    session.run(c["python_path"], "-m", "venv", "--clear", folder, external=True, silent=True)
    session.run(folder + "/bin/pip", "install", "--quiet", "-r", pins, external=True, silent=True)
    return folder + "/bin/python"


@nox.session(venv_backend="none")
@nox.parametrize("cell", list(CELLS))
def export(session, cell):
    python = venv(session, cell)
    session.run(python, AGENT, "export", "--out", "exports/" + cell, "--probes", ",".join(PLAN["probes"]),
                "--formats", ",".join(PLAN["formats"]), external=True, silent=True)


@nox.session(venv_backend="none")
@nox.parametrize("cell", list(CELLS))
def load(session, cell):
    python = "venvs/%s/bin/python" % cell
    producers = ["--producer=%s=exports/%s" % (p, p) for p in CELLS]
    session.run(python, AGENT, "load", "--out", "loads/%s.jsonl" % cell, *producers, external=True, silent=True)
'''


def baseline(matrix: Path, cwd: Path, env: dict[str, str], folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.json").write_text(sandbox(["plan", str(matrix), "--json"], cwd, env))
    (folder / "noxfile.py").write_text(BASELINE_NOXFILE.replace("AGENT_PATH", repr(str(ROOT / "sandbox" / "agent"))))
    for sessions in ("export", "load"):
        done = subprocess.run([shutil.which("nox") or "nox", "-s", sessions], cwd=folder, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"baseline nox -s {sessions} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("matrix", nargs="?", default=ROOT / "matrix.toml", type=Path)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        code = work / "checkout"
        shutil.copytree(ROOT / "sandbox", code / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
        matrix = work / "matrix.toml"
        matrix.write_text(args.matrix.read_text())
        env = {**os.environ, "PYTHONPATH": str(code), "SANDBOX_CACHE_DIR": str(work / "cache")}
        env.pop("SANDBOX_STORE_DIR", None)
        run = ["run", str(matrix), "--work-dir", str(work / "runs"), "--reports", str(work / "reports")]
        times = {"cold": timed("cold", lambda: sandbox(run, work, env))}
        times["rerun"] = timed("rerun", lambda: sandbox(run, work, env))
        plus = work / "plus.toml"
        plus.write_text(matrix.read_text() + EXTRA_CELL)
        times["+1 cell"] = timed("+1 cell", lambda: sandbox(["run", str(plus), *run[2:]], work, env))
        zoo = code / "sandbox" / "agent" / "zoo.py"
        text = zoo.read_text()
        marker = 'name = "dense"'
        assert marker in text, "the dense probe moved: update the benchmark"
        zoo.write_text(text.replace(marker, marker + "\n    edited = True  # a change to this probe only", 1))
        times["probe edited"] = timed("probe edited", lambda: sandbox(run, work, env))
        zoo.write_text(text)
        times["shards"] = timed("shards", lambda: shards(matrix, work, env, work / "shards"))
        if not args.skip_baseline:
            times["baseline"] = timed("baseline", lambda: baseline(matrix, work, env, work / "baseline"))
    cold = times["cold"]
    print("\nratio to the cold run (cold = 1.00):")
    for label, seconds in times.items():
        print(f"  {label:14} {seconds / cold:6.3f}")


if __name__ == "__main__":
    main()
