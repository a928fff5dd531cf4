"""`junit.xml`: one test case per (pair, probe, format, loader) so that CI
systems list every load; one per cell for cells that could not run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from sandbox.classify import FAILED
from sandbox.records import HARNESS_ERROR
from sandbox.report.tables import Results, first_line, pair

Load = dict[str, Any]


def render(results: Results) -> str:
    root = ET.Element("testsuites", name=f"sandbox {results['name']}")
    root.append(_cells(results))
    by: dict[tuple[str, str], list[Load]] = defaultdict(list)
    for load in results["loads"]:
        by[(load["format"], load["loader"] or "")].append(load)
    for (fmt, loader), loads in by.items():
        suite = ET.SubElement(root, "testsuite", name=f"{fmt}/{loader}")
        for load in loads:
            suite.append(_case(load))
        _count(suite)
    _count(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case(load: Load) -> ET.Element:
    case = ET.Element("testcase", classname=f"{load['format']}.{load['loader']}",
                      name=f"{load['probe']}: {pair(load['producer'], load['consumer'])}",
                      time=f"{load.get('seconds') or 0:.3f}")
    status = load["status"]
    if status == "not-applicable":
        ET.SubElement(case, "skipped", message=load.get("reason") or "not applicable")
    elif status == "outputs-differ":
        text = f"outputs differ: max abs err {load.get('max_abs_err')}, max rel err {load.get('max_rel_err')}"
        ET.SubElement(case, "failure", message=text, type="outputs-differ").text = text
    elif status == HARNESS_ERROR:  # not a finding: the harness failed (JUnit's "error", not "failure")
        error = ET.SubElement(case, "error", message=first_line(load.get("error"), 300), type=HARNESS_ERROR)
        error.text = f"sandbox's own code failed at {load.get('raised_in') or '?'}: {load.get('error') or ''}"
    elif status in FAILED:
        error = load.get("error") or status
        failure = ET.SubElement(case, "failure", message=first_line(error, 300),
                                type=load.get("category") or load.get("error_type") or status)
        failure.text = f"{status} ({load.get('error_type') or 'no error type'}): {error}"
    return case


def _cells(results: Results) -> ET.Element:
    """A cell that did not run is a skip (with its reason) or an error."""
    suite = ET.Element("testsuite", name="cells")
    for cell in results["cells"]:
        case = ET.SubElement(suite, "testcase", classname="cells", name=cell["id"],
                             time=f"{sum((cell.get('seconds') or {}).values()):.3f}")
        if cell["status"] == "skipped":
            ET.SubElement(case, "skipped", message=cell["reason"] or "skipped")
        elif cell["status"] != "ok":
            error = ET.SubElement(case, "error", message=cell["reason"] or cell["status"], type=cell["status"])
            error.text = cell.get("detail") or cell["reason"] or ""
    _count(suite)
    return suite


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    for kind in ("failures", "errors", "skipped"):
        tag = {"failures": "failure", "errors": "error", "skipped": "skipped"}[kind]
        element.set(kind, str(sum(case.find(tag) is not None for case in cases)))
