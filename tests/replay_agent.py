"""The agent's command line, answered from a recorded run (tests/replay.py
prepares the recording): every export, load and registry the host asks for
comes back as the recording has it, with no TensorFlow. Which cell it runs
in is read from the folder the host gives it (runs/<name>/cells/<cell>/...).
An item the recording lacks is not applicable ("not in the recording")."""

import json
import os
import sys

REPLAY = os.environ["REPLAY_DIR"]


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def cell_of(path, up):
    """The cell folder's name, `up` levels above `path`."""
    folder = os.path.abspath(path)
    for _ in range(up):
        folder = os.path.dirname(folder)
    return os.path.basename(folder)


def recorded(kind, cell):
    with open(os.path.join(REPLAY, kind, cell + ".json")) as fh:
        return json.load(fh)


def append(fh, record):
    fh.write(json.dumps(record) + "\n")
    fh.flush()


def export():
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


def load():
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


def registry():
    with open(arg("--out"), "w") as fh:
        json.dump(recorded("registries", cell_of(arg("--out"), 1)), fh)


{"export": export, "load": load, "registry": registry}[sys.argv[1]]()
