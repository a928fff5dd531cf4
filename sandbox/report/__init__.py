"""Renderers: each reads only a results document (see sandbox.collect)."""

from __future__ import annotations

from typing import Callable

from sandbox.report import html, junit, markdown
from sandbox.report.document import ResultsDocument

# The files of a report folder, each rendered from the results document alone.
RENDERERS: dict[str, Callable[[ResultsDocument], str]] = {
    "index.md": markdown.render,
    "index.html": html.render,
    "junit.xml": junit.render,
}
