"""The results document (results.json): its schema and how renderers read it.

The schema ships with the package (results.schema.json); tests validate every
document they produce against it, and every document read from a file is
validated against it before a renderer sees it (fastjsonschema: compiled
once, fast enough for the largest reports), so a bad file is one clear line
naming the record and key, not a traceback."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from sandbox.errors import SandboxError

SCHEMA_VERSION = 3
# Older versions read as the current one. 2 -> 3 added the status harness-error
# and optional fields: a version-2 document is a valid version-3 one whose
# harness errors (there was no word for them) are recorded as failures.
_READS = (2,)
SCHEMA_FILE = "results.schema.json"
RESULTS_FILE = "results.json"
_REQUIRED = {"name": str, "created": str, "sandbox_version": str, "matrix": str, "formats": list,
             "cells": list, "artifacts": list, "loads": list}

Results = dict[str, Any]


def chunks(results: Results) -> Iterator[str]:
    """results.json's text in pieces, to write as they come: the top level
    indented, each record of a list on a line of its own. Records go through
    the C encoder (an indented dump takes the pure-Python one, and several
    times the document's size in memory), and a diff of two reports shows one
    line per record that changed."""
    yield "{\n"
    keys = sorted(results)
    for i, key in enumerate(keys):
        value, end = results[key], (",\n" if i < len(keys) - 1 else "\n")
        if isinstance(value, list) and value:
            yield f" {json.dumps(key)}: [\n"
            last = len(value) - 1
            for j, item in enumerate(value):
                yield "  " + json.dumps(item, sort_keys=True) + (",\n" if j < last else "\n")
            yield " ]" + end
        else:
            yield f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{end}"
    yield "}\n"


def schema() -> dict[str, Any]:
    """The JSON Schema of results.json, as shipped in the package."""
    text = resources.files("sandbox.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load(path: Path) -> Results:
    """A results document from results.json, or from a report folder holding one."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SandboxError(f"{file}: cannot read results: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise SandboxError(f"{file}: cannot read results: not JSON ({_first_line(exc)})") from None
    if isinstance(data, dict) and data.get("schema_version") in _READS:
        data["schema_version"] = SCHEMA_VERSION
    check(data, str(file))
    return data  # type: ignore[no-any-return]


def check(data: Any, where: str) -> None:
    """Raise a one-line SandboxError unless `data` has the shape renderers need."""
    if not isinstance(data, dict):
        raise SandboxError(f"{where}: not a results document (expected a JSON object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        readable = ", ".join(str(v) for v in (*_READS, SCHEMA_VERSION))
        raise SandboxError(f"{where}: schema_version {version!r} is not supported (this sandbox reads "
                           f"{readable}); re-render it with the sandbox version that wrote it")
    for key, kind in _REQUIRED.items():
        if not isinstance(data.get(key), kind):
            raise SandboxError(f"{where}: key {key!r} is missing or not a {kind.__name__}")
    from fastjsonschema import JsonSchemaValueException  # here: every command imports this module

    try:
        _validator()(data)
    except JsonSchemaValueException as exc:
        message = _first_line(exc.message)
        what = message[5:] if message.startswith("data.") else "the document" + message.removeprefix("data")
        raise SandboxError(f"{where}: not a valid results document: {what} (see {SCHEMA_FILE} in the "
                           "sandbox package; regenerate it with `sandbox run`)") from None
    except RecursionError:
        raise SandboxError(f"{where}: not a valid results document: nested too deeply") from None


@functools.cache
def _validator() -> Callable[[Any], Any]:
    import fastjsonschema

    validate: Callable[[Any], Any] = fastjsonschema.compile(schema())
    return validate


def _first_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
