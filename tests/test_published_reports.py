"""The committed reports tell the truth: every failure they publish is
explained (a class that names its culprit, no `other`), none is a harness
error, and no page leaks a host name or a local path.

The walk re-classifies every distinct error signature of the failing loads
and exports with today's sandbox.classify, so a report measured before a
classifier change is checked against it too. Reports of one's own are
walked with SANDBOX_EXTRA_REPORTS=dir1:dir2 (folders holding results.json)."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from leaks import leaks

from sandbox.classify import FAILED, classify

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("index.html", "index.md", "results.json", "junit.xml")
EXTRA = [Path(p) for p in os.environ.get("SANDBOX_EXTRA_REPORTS", "").split(os.pathsep) if p]
REPORTS = sorted(p.parent for p in (ROOT / "reports").glob("*/results.json")) + EXTRA
_FAILED_EXPORT = ("error", "crash", "timeout")


def _signature(record: dict[str, Any], text: str) -> tuple[str, ...]:
    """What tells two failures apart for the classifier: status, type, where, first line (numbers normalised)."""
    line = (record.get(text) or "").strip().splitlines()
    first = re.sub(r"\d+", "N", line[0][:160]) if line else ""
    where = (record.get("raised_in") or "").split(":")[0]
    return (record["status"], record.get("error_type") or "", where, record.get("raised_by") or "", first)


def unexplained(results: dict[str, Any]) -> list[str]:
    """One line per distinct signature a reader would be left without an explanation for."""
    found: dict[tuple[str, ...], list[str]] = defaultdict(list)
    records = [("load", l, "error") for l in results["loads"]] + [("export", a, "reason") for a in results["artifacts"]]
    for kind, record, text in records:
        failed = record["status"] in (FAILED if kind == "load" else _FAILED_EXPORT)
        if record["status"] == "harness-error":
            found[("harness error", kind, *_signature(record, text))].append(_where(record))
        elif failed:
            got = classify(record["status"], record.get(text), record.get("error_type"), record.get("raised_in"),
                           record.get("raised_by"))
            if got is None or got.category == "other" or not got.names or record.get("category") == "other":
                found[("unexplained", kind, *_signature(record, text))].append(_where(record))
    return [f"{' | '.join(key)}  ({len(where)}x, e.g. {where[0]})" for key, where in sorted(found.items())]


def _where(record: dict[str, Any]) -> str:
    pair = f"{record['producer']} -> {record['consumer']}" if "consumer" in record else record["producer"]
    return f"{pair} {record['probe']}/{record['format']}/{record.get('loader') or 'export'}"


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: p.name)
def test_every_published_failure_is_explained_and_none_is_ours(report: Path) -> None:
    results = json.loads((report / "results.json").read_text(encoding="utf-8"))
    problems = unexplained(results)
    assert not problems, f"{report}: {len(problems)} signatures unexplained or harness errors:\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: p.name)
def test_published_pages_hold_no_host_name_or_local_path(report: Path) -> None:
    for name in PAGES:
        found = leaks((report / name).read_text(encoding="utf-8"))
        assert not found, f"{report / name} leaks:\n" + "\n".join(found)


def test_the_walk_tells_what_it_cannot_explain() -> None:
    """The walk itself: a harness error, an `other`, a failure without a culprit and a failed export are caught."""
    def load(status: str, error: str, **more: Any) -> dict[str, Any]:
        return {"producer": "a", "consumer": "b", "probe": "p", "format": "f", "loader": "l", "status": status,
                "error": error, "error_type": more.pop("error_type", "ValueError"), **more}
    results = {"loads": [load("ok", ""), load("load-error", "Op type not registered 'X' in binary"),
                         load("harness-error", "'NoneType' object is not subscriptable", raised_in="agent/loaders.py:74 in f"),
                         load("run-error", "something nobody expected"),
                         load("crash", "the agent process died (exit -11)", error_type="crash")],
               "artifacts": [{"producer": "a", "probe": "p", "format": "f", "status": "error", "error_type": "X",
                              "reason": "what?"},
                             {"producer": "a", "probe": "p", "format": "g", "status": "exported", "reason": None}]}
    lines = unexplained(results)
    assert len(lines) == 4
    assert sum(l.startswith("harness error | load") for l in lines) == 1
    assert sum(l.startswith("unexplained | export") for l in lines) == 1
