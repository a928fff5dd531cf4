"""A stand-in for the in-cell agent that speaks its journal protocol and
misbehaves on request: it dies on one export item and hangs on one load item,
each only on first try (the runner must record those and resume past them).

`--hang SECONDS` (or FAKE_AGENT_HANG=SECONDS in its environment, for runs
started through the real runner): every item sleeps that long instead, and
nothing crashes. `--item-timeout SECONDS` arms the real agent's watchdog
(sandbox/agent/watchdog.py), as the real agent does."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox", "agent"))
import watchdog  # noqa: E402  (the real agent's)

ITEMS = [("batchnorm", "frozen_graph"), ("batchnorm", "saved_model"), ("batch_matmul", "frozen_graph")]
CRASH_ON = ("batchnorm", "saved_model")
HANG_ON = ("batch_matmul", "frozen_graph")


def append(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def ended(path: str, kind: str, keys: tuple[str, ...]) -> set[tuple[Any, ...]]:
    if not os.path.exists(path):
        return set()
    with open(path) as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return {tuple(r[k] for k in keys) for r in records if r["kind"] == kind}


def arg(name: str, default: str | None = None) -> str:
    if name not in sys.argv:
        assert default is not None, f"{name} is required"
        return default
    return sys.argv[sys.argv.index(name) + 1]


HANG = float(arg("--hang", os.environ.get("FAKE_AGENT_HANG", "0")))
# FAKE_AGENT_ZOO=1: export every item asked for (--only), nothing crashes or
# hangs, and a load fails when its producer's TF is newer than the consumer's
# (read from the cell ids tfX.Y...), naming a missing op as TF's error would.
ZOO = os.environ.get("FAKE_AGENT_ZOO") == "1"


def tf_of(cell: str) -> tuple[int, ...]:
    return tuple(int(p) for p in cell[2:].split("-")[0].split(".") if p.isdigit())


def zoo_status(item: dict[str, str], out: str) -> dict[str, Any]:
    consumer = os.path.basename(os.path.dirname(os.path.abspath(out)))
    if item["probe"] == "einsum" and item["format"] == "tflite":
        return {"status": "not-applicable", "reason": "no such thing in the fake"}
    if tf_of(item["producer"]) > tf_of(consumer):
        return {"status": "load-error", "error_type": "NotFoundError",
                "error": "Op type not registered '{}V2' in binary running on fake.".format(item["probe"].title())}
    return {"status": "ok", "max_abs_err": 0.0, "max_rel_err": 0.0}


def work(item: tuple[str, ...], crash: bool = False, hang: float = 0.0) -> None:
    """One item: sleep HANG seconds in hang mode, else misbehave as told."""
    watchdog.begin("/".join(item))
    if HANG:
        time.sleep(HANG)
    elif crash:
        os._exit(139)
    else:
        time.sleep(hang)


def export() -> None:
    manifest = os.path.join(arg("--out"), "manifest.jsonl")
    done = ended(manifest, "artifact", ("probe", "format"))
    if not done:
        append(manifest, {"kind": "cell", "tensorflow": "fake"})
    only = [tuple(pair.split("/")) for pair in arg("--only").split(",")] if "--only" in sys.argv else ITEMS
    for probe, fmt in (only if ZOO else ITEMS):
        if (probe, fmt) in done or (probe, fmt) not in only:
            continue
        append(manifest, {"kind": "start", "probe": probe, "format": fmt})
        work((probe, fmt), crash=(probe, fmt) == CRASH_ON and not ZOO)
        os.makedirs(os.path.join(arg("--out"), probe, fmt), exist_ok=True)
        with open(os.path.join(arg("--out"), probe, fmt, "model.txt"), "w") as fh:
            fh.write(arg("--out") + os.urandom(4).hex())  # differs per export, as real artifacts do
        watchdog.end(functools.partial(append, manifest, {"kind": "artifact", "probe": probe, "format": fmt, "status": "exported",
                                                          "path": f"{probe}/{fmt}/model.txt",
                                                          "ops": ["Conv2D"], "op_attrs": {"Conv2D": ["T"]}}))


def load() -> None:
    out = arg("--out")
    done = ended(out, "load", ("producer", "probe", "format", "loader"))
    with open(arg("--items")) as fh:
        items = [json.loads(line) for line in fh if line.strip()]
    for item in items:
        key = tuple(item[k] for k in ("producer", "probe", "format", "loader"))
        if key in done:
            continue
        record = {k: item[k] for k in ("producer", "probe", "format", "loader")}
        append(out, dict(record, kind="start"))
        work(key, hang=60 if (item["probe"], item["format"]) == HANG_ON and not ZOO else 0)
        result = zoo_status(item, out) if ZOO else {"status": "ok"}
        watchdog.end(functools.partial(append, out, dict(record, kind="load", **result)))


def registry() -> None:
    with open(arg("--out"), "w") as fh:
        json.dump({"ops": {"Conv2D": {"attrs": ["T"]}}, "cell": {"kind": "cell", "tensorflow": "fake"}}, fh)


watchdog.start(float(arg("--item-timeout", "0")))
{"export": export, "load": load, "registry": registry}[sys.argv[1]]()
