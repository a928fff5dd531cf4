"""A slice of the published map for the report tests: a few of its cells, every
probe, a few formats, as measured (reports/tf-map/results.json).

The slice holds what the default matrix's recording lacks: the GPU-only probe
cudnn_lstm on CPU consumers, exports that failed (TF 2.0.4's saved_model
errors, TF 2.14.1's tflite_int8 crashes), TF1 SavedModels read with tf2_load in
TF 2.3 (the loader bug issue 16 found), and the pairs of the issue's questions
(TF 1.15 serving SavedModels of 2.11/2.12, TF 2.21's SavedModel in 2.11/2.12).

    python tests/slice_results.py [reports/tf-map/results.json] [tests/data/map-slice-results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CELLS = ("tf1.15.5-py3.7-cpu", "tf2.0.4-py3.7-cpu", "tf2.3.4-py3.8-cpu", "tf2.11.1-py3.10-cpu",
         "tf2.12.1-py3.11-cpu", "tf2.14.1-py3.11-cpu", "tf2.21.0-py3.13-cpu")
FORMATS = ("saved_model", "saved_model_tf1", "frozen_graph", "keras_h5", "tflite_int8", "checkpoint")


def cut(results: dict[str, Any], cells: tuple[str, ...] = CELLS, formats: tuple[str, ...] = FORMATS) -> dict[str, Any]:
    keep = set(cells)
    return dict(results, name="tf-map-slice",
                cells=[c for c in results["cells"] if c["id"] in keep],
                formats=[f for f in results["formats"] if f in formats],
                artifacts=[a for a in results["artifacts"] if a["producer"] in keep and a["format"] in formats],
                loads=[l for l in results["loads"] if l["producer"] in keep and l["consumer"] in keep
                       and l["format"] in formats])


def main(source: Path, target: Path) -> None:
    target.write_text(json.dumps(cut(json.loads(source.read_text())), indent=None, sort_keys=True) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]) if args else ROOT / "reports" / "tf-map" / "results.json",
         Path(args[1]) if len(args) > 1 else ROOT / "tests" / "data" / "map-slice-results.json")
