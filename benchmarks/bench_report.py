"""Size and first paint of the report at the size of the published map, as
ratios against the renderer of a baseline commit run in the same invocation.

    python benchmarks/bench_report.py [--baseline REF] [--cells 26] [--probes 7] [--repeat 3] [--keep DIR]
    python benchmarks/bench_report.py --baseline main --document reports/tf-map   # the published map itself

The document is tests/data/default-results.json scaled to every TF minor from
1.12 to 2.21 (tests/scaled_results.py: ~55,000 loads). Both renderers get the
same redacted document. First paint is the `first-contentful-paint` entry of
headless Chromium (Debian's `chromium`, driven by tests/chromium.py) opening
the page from a local file, and the end of its load event (parsed, scripts
run); the medians of --repeat fresh tabs. The budgets of
the map: index.html <= 5 MB and first paint < 1 s; index.md <= 1 MB.

The baseline (default: 726923b, the renderer before the pair picker) is read
with `git show` and imported beside the current package: its html.py and
markdown.py, with its own CSS and JS."""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import chromium  # noqa: E402
import scaled_results  # noqa: E402

from sandbox.report import html, markdown  # noqa: E402
from sandbox.report.document import ResultsDocument  # noqa: E402
from sandbox.report.redact import redact  # noqa: E402

BASELINE = "726923b"
BUDGETS = {"index.html": 5_000_000, "index.md": 1_000_000}
PAINT_BUDGET_MS = 1000.0

Render = Callable[[Any], str]  # a baseline before the typed document renders the JSON


def git_show(ref: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


MODULES = ("verdict", "tables", "findings", "headline", "pagedata", "html", "markdown")  # in import order


def baseline(ref: str, folder: Path) -> dict[str, Render]:
    """The baseline's renderers and the modules they read, imported from its sources
    under other module names (its html.py and markdown.py import its own tables.py, ...)."""
    assets = {name: git_show(ref, f"sandbox/report/assets/{name}") for name in ("report.css", "report.js")}
    have = [m for m in MODULES if _exists(ref, f"sandbox/report/{m}.py")]
    modules: dict[str, ModuleType] = {}
    for module in have:
        source = git_show(ref, f"sandbox/report/{module}.py")
        for other in have:
            source = source.replace(f"sandbox.report.{other}", f"baseline_{other}").replace(
                f"from sandbox.report import {other}\n", f"import baseline_{other} as {other}\n")
        path = folder / f"baseline_{module}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"baseline_{module}", path)
        assert spec and spec.loader
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[f"baseline_{module}"] = loaded
        spec.loader.exec_module(loaded)
        modules[module] = loaded
    modules["html"]._asset = assets.__getitem__  # its own CSS and JS, not today's
    return {"index.html": modules["html"].render, "index.md": modules["markdown"].render}


def _exists(ref: str, path: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{ref}:{path}"], cwd=ROOT, capture_output=True).returncode == 0


def paint_and_load(browser: chromium.Browser, page: Path, repeat: int) -> tuple[float, float]:
    """Median first contentful paint and load event end, in ms, over `repeat` fresh tabs."""
    paints, loads = [], []
    for _ in range(repeat):
        tab = chromium.Page(browser)
        tab.open(page)
        paints.append(tab.first_paint())
        loads.append(tab.load_time())
        tab.close()
    return statistics.median(paints), statistics.median(loads)


def measure(label: str, renderers: dict[str, Render], document: Any, folder: Path,
            browser: chromium.Browser, repeat: int) -> dict[str, float]:
    out = folder / label
    out.mkdir()
    found: dict[str, float] = {}
    for name, render in renderers.items():
        start = time.monotonic()
        text = render(document)
        found[f"{name} render s"] = time.monotonic() - start
        (out / name).write_text(text, encoding="utf-8")
        found[f"{name} bytes"] = (out / name).stat().st_size
    found["first paint ms"], found["load event ms"] = paint_and_load(browser, out / "index.html", repeat)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help=f"git ref of the baseline renderer (default {BASELINE})")
    parser.add_argument("--cells", type=int, default=len(scaled_results.MAP))
    parser.add_argument("--probes", type=int, default=scaled_results.PROBES)
    parser.add_argument("--repeat", type=int, default=3, help="first paints per page (median)")
    parser.add_argument("--keep", type=Path, help="write the pages here instead of a temporary folder")
    parser.add_argument("--document", type=Path,
                        help="a results.json to render instead of the scaled recording (e.g. reports/tf-map)")
    args = parser.parse_args()
    executable = chromium.find()
    if executable is None:
        sys.exit("chromium not found (scripts/system-deps.sh installs it)")
    if args.document:
        document = redact(ResultsDocument.from_json(json.loads((args.document / "results.json" if args.document.is_dir()
                                                                else args.document).read_text())))
    else:
        document = redact(ResultsDocument.from_json(scaled_results.scale(
            json.loads(scaled_results.RECORDED.read_text()), args.cells, args.probes)))
    data = document.to_json()  # what a baseline from before the typed document renders
    print(f"document: {len(document.cells)} cells, {len(document.loads)} loads; baseline {args.baseline}")
    with tempfile.TemporaryDirectory() as tmp, chromium.Browser(executable, timeout=300) as browser:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        base = measure("baseline", baseline(args.baseline, Path(tmp)), data, folder, browser, args.repeat)
        now = measure("current", {"index.html": html.render, "index.md": markdown.render}, document, folder,
                      browser, args.repeat)
    print(f"{'':22} {'baseline':>12} {'current':>12} {'ratio':>7}  budget")
    for key in now:
        budget = BUDGETS.get(key.split()[0]) if key.endswith("bytes") else \
            PAINT_BUDGET_MS if key == "first paint ms" else None
        verdict = "" if budget is None else ("ok" if now[key] <= budget else "OVER") + f" (<= {budget:,.0f})"
        print(f"{key:22} {base[key]:12,.1f} {now[key]:12,.1f} {now[key] / base[key]:7.3f}  {verdict}")


if __name__ == "__main__":
    main()
