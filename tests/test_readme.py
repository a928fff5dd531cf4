"""The README's sample output of `sandbox run matrix.toml` stays honest: every
line it shows is a line the tool prints for the published run of the default
matrix (reports/default/results.json): the plan, each cell phase's counts, the
final table and the closing summary, recomputed here from that document."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sandbox import display, summary
from sandbox.classify import FAILED
from sandbox.report.document import ResultsDocument
from sandbox.report.redact import text as redact_text

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- sample: sandbox run matrix.toml"
_FACTS = importlib.util.spec_from_file_location("readme_facts", ROOT / "scripts" / "readme_facts.py")
assert _FACTS and _FACTS.loader
readme_facts = importlib.util.module_from_spec(_FACTS)
_FACTS.loader.exec_module(readme_facts)
PHASE = re.compile(r"^\[\s*\d+s\] (?P<cell>\S+)\s+(?P<phase>provision|export|load)\s+(?P<rest>.*)$")


def sample() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index(MARKER):]
    start = block.index("```\n") + 4
    return block[start:block.index("\n```", start)].splitlines()


def published() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "reports" / "default" / "results.json").read_text())
    return data


def counts(words: str) -> Counter[str]:
    """'43 exported, 37 not-applicable' -> Counter."""
    return Counter({status: int(n) for n, status in (part.split(" ", 1) for part in words.split(", "))})


def test_the_readme_sample_is_what_sandbox_prints_for_the_published_run() -> None:
    lines, results = sample(), published()
    cells = {c["id"]: c for c in results["cells"]}
    # the matrix as the published run had it (matrix.toml may have moved on since: then
    # publish the default report again and refresh the sample with scripts/readme_sample.py)
    expected_plan = [f"matrix matrix.toml ({results['name']}): {len(cells)} cells, "
                     f"probes {', '.join(results['probes'])}; formats {', '.join(results['formats'])}"]
    expected_plan += [f"  {c['id']:28} {c['requirement']} on {c['python_path']}, deps as of {c['resolved_as_of'][:10]}"
                      for c in results["cells"]]
    # a published report is redacted (sandbox.report.redact): its interpreter paths are <python>/bin/...
    shown = [redact_text(line) for line in lines[:len(expected_plan)]] if results.get("redacted") else lines
    assert shown[:len(expected_plan)] == expected_plan
    rest = lines[len(expected_plan):]

    phases = [PHASE.match(l) for l in rest if l.startswith("[")]
    assert phases and all(phases), [l for l in rest if l.startswith("[")]
    seen: Counter[str] = Counter()
    for found in phases:
        assert found
        cell, phase, words = found["cell"], found["phase"], found["rest"]
        assert cell in cells
        seen[phase] += 1
        if phase == "provision":
            assert re.fullmatch(r"environment (built|reused) in \d+s", words), words
            continue
        side, noun = ("producer", "artifacts") if phase == "export" else ("consumer", "loads")
        records = results["artifacts"] if phase == "export" else results["loads"]
        mine = Counter(r["status"] for r in records if r[side] == cell)
        measured = re.fullmatch(rf"measured (\d+) {noun} in \d+s: (.*)", words)
        assert measured, words
        assert int(measured[1]) == sum(mine.values()) and counts(measured[2]) == mine, (cell, phase)
    assert seen["load"] == len(cells)  # every consumer's load line is shown

    header = next(i for i, l in enumerate(rest) if l.startswith("cell ") and "status" in l)
    table = rest[header + 2: header + 2 + len(cells)]
    for row in table:
        cell, status, *_, exports, loads, ok, differ, failed, _seconds = row.split()
        mine = Counter(l["status"] for l in results["loads"] if l["consumer"] == cell)
        assert status == cells[cell]["status"]
        assert int(exports) == sum(a["producer"] == cell for a in results["artifacts"])
        assert (int(loads), int(ok), int(differ), int(failed)) == (
            sum(mine.values()), mine["ok"], mine["outputs-differ"], sum(mine[s] for s in FAILED))

    # the closing summary: the lines `sandbox run` prints for this document (a
    # cold run measures everything: the tally follows from the document too)
    registries = sum(c["has_registry"] for c in results["cells"])
    tally = (f"measured {len(results['artifacts'])} exports, {len(results['loads'])} loads, {registries} registries; "
             "reused 0 exports, 0 loads from the store")
    paths = [Path("reports/default") / n for n in ("index.html", "index.md", "junit.xml", "results.json")]
    expected = display.closing_summary(summary.summarize(ResultsDocument.from_json(results)), tally, 0.0, paths)
    shown = rest[header + 2 + len(cells):]
    assert len(shown) == len(expected)
    for got, want in zip(shown, expected):
        assert _same(got, want, results), (got, want)


def _same(readme: str, tool: str, results: dict[str, Any]) -> bool:
    """Equal, but for the wall time, and for which ops a format's failures
    name: the published run and the sample's run name one more or less (each
    name shown must still be named by a failing load of that format)."""
    wall = re.compile(r" in [0-9.]+s:| in \d+m \d\ds:")
    readme, tool = wall.sub(" in T:", readme), wall.sub(" in T:", tool)
    if not readme.startswith("  ") or "; " not in readme:
        return readme == tool
    pairs, names = readme.split("; ", 1)
    fmt = pairs.split()[0]
    named = {n for l in results["loads"] if l["format"] == fmt for n in l.get("names") or []}
    listed = re.sub(r" \+\d+ more$", "", names).split(", ")
    return tool.split("; ", 1)[0] == pairs and set(listed) <= named


def test_the_readme_states_what_the_published_reports_say() -> None:
    """Every count, range and "version X writes Y" the README marks is what scripts/readme_facts.py
    writes from the committed reports (republish a report, then run that script)."""
    text = (ROOT / "README.md").read_text()
    marked = [(m["name"], m["value"]) for m in readme_facts.FACT.finditer(text)]
    found = readme_facts.facts(_document("tf-map"), _document("default"))
    assert {name for name, _ in marked} == set(found)  # every fact is in the README, and only those
    stale = [name for name, value in marked if value != found[name]]
    assert not stale, f"README facts no longer what the reports say: {stale}; run python scripts/readme_facts.py"
    # the README opens with what the map says, before how to build it
    assert text.index("## What the map says") < text.index("## Two commands")
    assert "](reports/tf-map/index.html)" in text[:text.index("## Two commands")]


def test_a_readme_claim_the_data_does_not_bear_out_stops_the_script() -> None:
    tf_map = _document("tf-map")
    broken = replace(tf_map, loads=[replace(l, category="missing-kernel") if "FusedBatchNormV3" in l.names else l
                                    for l in tf_map.loads])
    with pytest.raises(readme_facts.ClaimError, match="FusedBatchNormV3"):
        readme_facts.claims(broken)
    with pytest.raises(readme_facts.ClaimError, match="unknown fact"):
        readme_facts.fill("<!-- fact:no-such -->1<!-- /fact -->", {})


@functools.cache
def _document(name: str) -> ResultsDocument:
    from sandbox.report import document

    return document.load(ROOT / "reports" / name / "results.json")
