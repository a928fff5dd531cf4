"""Validate a results document against the JSON Schema shipped in the package."""

from __future__ import annotations

from typing import Any

import jsonschema

from sandbox.report import document


def assert_valid(results: Any) -> None:
    """Fail with every violation, not only the first (of a ResultsDocument: of the JSON it writes)."""
    if isinstance(results, document.ResultsDocument):
        results = results.to_json()
    validator = jsonschema.Draft202012Validator(document.schema())
    problems = sorted(validator.iter_errors(results), key=lambda e: list(e.absolute_path))
    messages = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in problems[:20]]
    assert not problems, f"{len(problems)} schema violations:\n" + "\n".join(messages)
