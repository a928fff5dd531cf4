"""What the verbs share of their output: JSON on stdout, notes on stderr, the
display of a run, and the files a report is made of."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox import display
from sandbox.report import document


def print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=1))


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def progress(cells: list[str], quiet: bool = False, verbose: bool = False, live: bool = True,
              start: float | None = None) -> Iterator[display.Display]:
    """The output layer of a run: live on a terminal, plain lines elsewhere."""
    mode = display.pick_mode(sys.stdout, quiet)
    with display.Display("plain" if mode == "live" and not live else mode, verbose, start=start) as show:
        show.begin(cells)
        yield show


def outputs(out: Path) -> list[Path]:
    return [out / "index.html", out / "index.md", out / "junit.xml", out / document.RESULTS_FILE]
