"""Redaction time of a results document, as a ratio against the redaction of a
baseline commit run in the same invocation (redaction runs inside every
`sandbox run`, `merge` and `report`, over the whole document).

    python benchmarks/bench_redact.py [RESULTS_JSON] [--baseline REF] [--repeat 3]

Default document: reports/tf-map/results.json (the published map, ~90,000
loads). The baseline (default: 5b538dd, before every form of a local path and
the host name were redacted) is read with `git show` and imported beside the
current package. Both redact the same document; the medians of --repeat runs."""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.report.document import ResultsDocument  # noqa: E402
from sandbox.report.redact import redact  # noqa: E402


def _baseline(ref: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    source = subprocess.run(["git", "show", f"{ref}:sandbox/report/redact.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_redact.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_redact", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: Callable[[dict[str, Any]], dict[str, Any]] = module.redact
    return found


def _seconds(fn: Callable[[Any], Any], document: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(document)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=ROOT / "reports" / "tf-map" / "results.json")
    parser.add_argument("--baseline", default="5b538dd")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    document = json.loads(args.results.read_text(encoding="utf-8"))
    old = _seconds(_baseline(args.baseline), document, args.repeat)  # a baseline before the typed document: the JSON
    new = _seconds(redact, ResultsDocument.from_json(document), args.repeat)
    print(f"{args.results}: {len(document['loads'])} loads; redaction baseline {args.baseline} {old:.2f} s, "
          f"now {new:.2f} s: {new / old:.2f}x")


if __name__ == "__main__":
    main()
