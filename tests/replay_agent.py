"""The agent's command line, answered from a recorded run (tests/replay.py
prepares the recording): every export, load and registry the host asks for
comes back as the recording has it, with no TensorFlow. Which cell it runs
in is read from the folder the host gives it (runs/<name>/cells/<cell>/...).
An item the recording lacks is not applicable ("not in the recording")."""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

REPLAY = os.environ["REPLAY_DIR"]


def arg(name: str) -> str:
    return sys.argv[sys.argv.index(name) + 1]


def cell_of(path: str, up: int) -> str:
    """The cell folder's name, `up` levels above `path`."""
    folder = os.path.abspath(path)
    for _ in range(up):
        folder = os.path.dirname(folder)
    return os.path.basename(folder)


def recorded(kind: str, cell: str) -> dict[str, Any]:
    with open(os.path.join(REPLAY, kind, cell + ".json")) as fh:
        found: dict[str, Any] = json.load(fh)
    return found


def append(fh: IO[str], record: dict[str, Any]) -> None:
    fh.write(json.dumps(record) + "\n")
    fh.flush()


def export() -> None:
    out = arg("--out")
    cell = cell_of(out, 1)
    artifacts = recorded("exports", cell)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "manifest.jsonl"), "a") as fh:
        append(fh, dict(recorded("registries", cell)["cell"], kind="cell"))
        for pair in arg("--only").split(","):
            probe, fmt = pair.split("/")
            append(fh, {"kind": "start", "probe": probe, "format": fmt})
            record = artifacts.get(pair) or {"probe": probe, "format": fmt, "status": "not-applicable",
                                              "reason": "not in the recording"}
            if record["status"] == "exported":
                folder = os.path.join(out, probe, fmt)
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, "model.bin"), "w") as model:
                    model.write(cell + "/" + pair)  # differs per cell, as real artifacts do
                record = dict(record, path=probe + "/" + fmt + "/model.bin")
            append(fh, dict(record, kind="artifact"))


def load() -> None:
    out = arg("--out")
    loads = recorded("loads", cell_of(out, 1))
    keys = ("producer", "probe", "format", "loader")
    with open(arg("--items")) as fh:
        items = [json.loads(line) for line in fh if line.strip()]
    with open(out, "a") as fh:
        for item in items:
            head = dict((k, item[k]) for k in keys)
            append(fh, dict(head, kind="start"))
            record = loads.get("|".join(item[k] for k in keys)) or {"status": "not-applicable",
                                                                   "reason": "not in the recording"}
            append(fh, dict(record, kind="load", **head))


def registry() -> None:
    with open(arg("--out"), "w") as fh:
        json.dump(recorded("registries", cell_of(arg("--out"), 1)), fh)


{"export": export, "load": load, "registry": registry}[sys.argv[1]]()
