"""Results documents for tests: a test writes the JSON it cares about (a few
keys of a few rows); `of` fills in the keys results.schema.json requires with
neutral values and reads it with the one reader (sandbox.report.document)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.report import document
from sandbox.report.document import ResultsDocument

_TOP: dict[str, Any] = {"name": "t", "created": "2026-01-01T00:00:00Z", "sandbox_version": "0", "matrix": "matrix.toml",
        "probes": [], "formats": [], "cells": [], "artifacts": [], "loads": []}
_CELL: dict[str, Any] = {"status": "ok", "reason": None, "detail": None, "tensorflow": "", "python": "", "image": "cpu",
         "backend": "venv", "requirement": None, "resolved_as_of": None, "python_path": None, "environment": {},
         "seconds": {}, "has_registry": False}
_ARTIFACT: dict[str, Any] = {"status": "exported"}
_LOAD: dict[str, Any] = {"loader": None, "status": "ok", "category": None, "names": [], "static": None}


def of(data: dict[str, Any]) -> ResultsDocument:
    """The document of `data`, a results.json that may leave out required keys."""
    return ResultsDocument.from_json({
        **_TOP, **data,
        "cells": [{**_CELL, **c} for c in data.get("cells") or []],
        "artifacts": [{**_ARTIFACT, **a} for a in data.get("artifacts") or []],
        "loads": [{**_LOAD, **l} for l in data.get("loads") or []],
    })


def read(path: Path) -> dict[str, Any]:
    """The JSON of a results.json as the reader takes it (checked; an older schema version as the current)."""
    return document.load(path).to_json()
