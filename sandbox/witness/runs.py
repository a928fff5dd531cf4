"""Witness every grouped finding of a results document: pick the load that
witnesses it, run its script in the consumer's environment (through the
environment interface: a venv or a confined, network-less container) on the
producer's artifact from the results store, read-only, and keep the result in
the store under what determines it (consumer environment, artifact files,
script), so an unchanged re-run runs none.

The script runs under WRAPPER, a few lines of harness that catch what it
raises and compare the outputs it leaves in `y` with the producer's reference
outputs; the script itself is exactly what the report shows."""

from __future__ import annotations

import json
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import commands, digests
from sandbox import events as ev
from sandbox.cellrun import CellRun
from sandbox.errors import CommandFailed, Interrupted, SandboxError
from sandbox.records import LoadStatus
from sandbox.report.document import LoadRow, ResultsDocument, WitnessRow, WitnessStatus
from sandbox.report.findings import groups
from sandbox.report.verdict import HARNESS
from sandbox.runner import Run
from sandbox.store import StoreError, write_text
from sandbox.witness import scripts
from sandbox.witness.verdict import classified, judge

MARK = "sandbox-witness: "
ERROR_CHARS = 8000  # of a witness's error: its head and tail (the cause is often last)
# Runs in the cell: argv = script, reference outputs ("" for none), atol, rtol, then the script's own arguments.
WRAPPER = r'''
import json, runpy, sys, traceback
def outcome():
    script, reference, atol, rtol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    sys.argv = [script] + sys.argv[5:]
    try:
        found = runpy.run_path(script, run_name="__main__")
    except (Exception, SystemExit) as e:
        frames = traceback.extract_tb(e.__traceback__)
        where = "%s:%s in %s" % frames[-1][:3] if frames else ""
        return {"status": "error", "error_type": type(e).__name__, "error": str(e), "where": where}
    if found.get("y") is None or not reference:
        return {"status": "ok", "compared": False}
    import numpy as np
    y, ref = np.asarray(found["y"]), np.load(reference)["y"]
    if y.shape != ref.shape:
        return {"status": "outputs-differ", "compared": True, "reason": "shape %s, not %s" % (y.shape, ref.shape)}
    err = float(np.max(np.abs(y.astype(np.float64) - ref.astype(np.float64)))) if y.size else 0.0
    ok = bool(np.allclose(y, ref, rtol=rtol, atol=atol))
    return {"status": "ok" if ok else "outputs-differ", "compared": True, "max_abs_err": err}
result = outcome()
sys.stdout.flush()
print("\n" + "sandbox-witness: " + json.dumps(result))
'''
NOT_RUN = "not-run"


@dataclass
class Item:
    """One finding's witness: its load, and (once prepared) what running it takes."""

    title: str
    load: LoadRow
    script: str = ""
    usage: str = ""
    key: str = ""
    args: list[str] = field(default_factory=list)
    readable: tuple[Path, ...] = ()
    result: dict[str, Any] | None = None  # stored or measured; status "not-run" with a reason


def chosen(results: ResultsDocument) -> list[Item]:
    """One load per grouped finding: the first that a script can witness whole
    (a checkpoint that failed in the probe's own code is a last resort)."""
    items = []
    for group in groups(results):
        if group.kind == HARNESS:
            continue  # our own code failed: a bug to fix, not a finding to witness
        whole = [l for l in group.loads if l.loader in scripts.loaders()
                 and not (l.loader == scripts.CHECKPOINT and l.status is LoadStatus.RUN_ERROR)]
        items.append(Item(group.signature.title, (whole or group.loads)[0]))
    return items


def attach(results: ResultsDocument, run: Run) -> list[WitnessRow]:
    """Witness every finding of `results` (missing witnesses are run in the
    cells of `run`) and put them into the document as `witnesses`."""
    items = chosen(results)
    witness(items, run)
    found = [entry(item) for item in items]
    results.witnesses = found
    return found


def witness(items: list[Item], run: Run) -> None:
    """Give every item its result: from the store, else run in its consumer's
    cell of `run` (cells in parallel, `run.jobs` at a time)."""
    cells = {c.cell.id: c for c in run.cells}
    for item in items:
        _prepare(item, run, cells)
    todo: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        if item.result is None:
            todo[item.load.consumer].append(item)
    reused = Counter(i.load.consumer for i in items if i.key and i.result is not None)
    run.each(lambda cell: _run_cell(cell, todo[cell.cell.id], reused[cell.cell.id], run),
             [cells[c] for c in todo])


def _prepare(item: Item, run: Run, cells: dict[str, CellRun]) -> None:
    """The script, the store key and the arguments of `item`; its stored
    result, or a not-run result saying why it cannot run."""
    found = _artifact(item, run, cells)
    if found is None:
        return
    identity, files, record, files_digest = found
    load = item.load
    try:
        spec = scripts.spec_for(load.loader or "", load.format, files, record)
    except SandboxError as exc:
        item.result = _not_run(str(exc))
        return
    item.script, item.usage = scripts.script(spec), scripts.usage(spec.loader)
    atol, rtol = load.atol or 0.0, load.rtol or 0.0
    item.key = digests.of_json(["witness", identity, files_digest, digests.of_json([item.script, WRAPPER]), atol, rtol])
    whole = spec.loader != scripts.CHECKPOINT  # a checkpoint's witness takes no inputs and leaves no outputs
    reference = files / str(record["outputs"]) if record.get("outputs") and whole else None
    inputs = [str(files / str(record["inputs"]))] if record.get("inputs") and whole else []
    item.args = [str(reference or ""), repr(atol), repr(rtol), str(files / str(record.get("path"))), *inputs]
    item.readable = (files,)
    item.result = None if run.fresh else run.store.get("witnesses", item.key)


def _artifact(item: Item, run: Run, cells: dict[str, CellRun]) -> tuple[str, Path, dict[str, Any], Any] | None:
    """(consumer identity, the producer's stored files, their manifest record,
    their digest); None, and the item not-run, when there are none."""
    load = item.load
    consumer, producer = cells.get(load.consumer), cells.get(load.producer)
    for name, cell in ((load.consumer, consumer), (load.producer, producer)):
        if cell is None or cell.cell.skip:
            item.result = _not_run(f"{name} is not a cell of this run's plan" if cell is None
                                   else f"{name} is skipped here: {cell.cell.skip}")
            return None
    assert consumer is not None and producer is not None
    export = run.keys.export(producer.result.identity, load.probe, load.format)
    payload = run.store.get_export(export)
    if payload is None or not run.store.verify_files(export, payload):
        item.result = _not_run("the producer's artifact is not in the results store (run the matrix to measure it)")
        return None
    files_digest = str(payload.get("files_digest"))
    files = run.store.files_dir(export, files_digest)
    return consumer.result.identity, files, run.store.manifest_record(export, files_digest), payload.get("files_digest")


def _not_run(reason: str) -> dict[str, Any]:
    return {"status": NOT_RUN, "reason": reason}


def _run_cell(cell: CellRun, items: list[Item], reused: int, run: Run) -> None:
    """The missing witnesses of one consumer, one process each."""
    start, done = time.monotonic(), Counter[str]()
    run.emit(ev.PhaseStarted(cell.cell.id, "witness", len(items), reused))
    try:
        env = cell.ready()
        for item in items:
            if run.stopping.is_set() or commands.stopping():
                raise Interrupted("the run was interrupted")
            item.result = _measure(item, cell, run) if env is not None else _not_run(
                f"the consumer's environment is not available: {cell.result.state.reason}")
            outcome, _ = judge(item.load, classified(item.result))
            done[outcome.value] += 1
            run.emit(ev.ItemDone(cell.cell.id, "witness", _what(item.load), outcome.value))
    except (Interrupted, StoreError):
        raise
    except Exception as exc:  # a harness bug in one cell must not stop the others
        for item in items:
            if item.result is None:
                item.result = _not_run(f"harness error: {type(exc).__name__}: {exc}")
        run.emit(ev.Note(cell.cell.id, "witness", f"harness error: {traceback.format_exc(limit=3)}"))
    finally:
        run.emit(ev.PhaseFinished(cell.cell.id, "witness", ev.counts(done), reused, time.monotonic() - start))


def _what(load: LoadRow) -> str:
    return "/".join(str(v) for v in (load.producer, load.probe, load.format, load.loader))


def _measure(item: Item, cell: CellRun, run: Run) -> dict[str, Any]:
    """Run one witness; store its result (not when interrupted)."""
    assert cell.env is not None
    script = run.run_dir / "witness" / f"{item.key[:digests.SHORT]}.py"
    write_text(script, item.script)
    log = cell.paths.logs / f"witness-{item.key[:digests.SHORT]}.log"
    start = time.monotonic()
    try:
        done = cell.env.run_python(["-c", WRAPPER, str(script), *item.args], log=log, timeout=run.matrix.timeout,
                                   readable=(script, *item.readable))
    except CommandFailed as exc:
        if exc.returncode is not None or exc.interrupted:
            raise
        result: dict[str, Any] = {"status": "timeout", "reason": f"no result after {run.matrix.timeout:.0f}s"}
    else:
        if done.interrupted:
            raise Interrupted("the run was interrupted")
        result = parse(done.output, done.returncode)
    result["seconds"] = round(time.monotonic() - start, 3)
    run.store.put("witnesses", item.key, result)
    return result


def parse(output: str, returncode: int) -> dict[str, Any]:
    """A witness's result from its output: the wrapper's last line, else a crash."""
    lines = output.splitlines()
    marked = [line for line in lines if line.startswith(MARK)]
    loaded = "loaded" in (line.strip() for line in lines)
    if not marked:
        what = "the container ran past its deadline" if returncode == 124 else f"the process died (exit {returncode})"
        return {"status": "timeout" if returncode == 124 else "crash", "reason": what,
                "error": commands.tail(output, 10) or None, "loaded": loaded}
    try:
        found: dict[str, Any] = json.loads(marked[-1][len(MARK):])
    except ValueError:
        return {"status": "crash", "reason": "unreadable witness output", "error": marked[-1][:400], "loaded": loaded}
    if found.get("status") == "error":
        found["status"] = "run-error" if loaded else "load-error"
    found["error"] = _cut(found.get("error"))
    return {**found, "loaded": loaded}


def _cut(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text) <= ERROR_CHARS:
        return text
    half = ERROR_CHARS // 2
    return f"{text[:half]}\n[… {len(text) - ERROR_CHARS} characters cut …]\n{text[-half:]}"


def entry(item: Item) -> WitnessRow:
    """The witness of one finding, as the results document carries it."""
    result = classified(item.result or _not_run("not run"))
    outcome, why = judge(item.load, result)
    load = item.load
    return WitnessRow(
        load.consumer, load.producer, load.probe, load.format, load.loader, finding=item.title,
        script=item.script or None, status=WitnessStatus(result["status"]), outcome=outcome, usage=item.usage or None,
        error_type=result.get("error_type"), error=result.get("error"), where=result.get("where"),
        reason=result.get("reason"), max_abs_err=result.get("max_abs_err"), seconds=result.get("seconds"),
        category=result["category"], names=tuple(result["names"]), why=why or None)
