"""`junit.xml`: one test case per producer → consumer pair and format (does
a SavedModel of this producer load in that consumer?), failing when any of
its loads fails or differs, with every such load named in the failure; an
error when sandbox's own code failed on one (a harness error, not a finding);
skipped when its only probes need a device the consumer lacks (a device
finding, shown apart as the reports do); one per cell for cells that could
not run. A case per pair, not per load, keeps
the file small at the published map's size (90,000 loads) and lists what a
CI system should show: which pairs break, and why."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from sandbox.records import HARNESS_ERROR, CellStatus, LoadStatus
from sandbox.report.document import LoadRow, ResultsDocument
from sandbox.report.tables import first_line, pair
from sandbox.report.verdict import DEVICE, HARNESS, NA, VERSION_FINDINGS, Devices, devices

MAX_LISTED = 50  # failing loads spelled out in one case's failure text


def render(results: ResultsDocument) -> str:
    root = ET.Element("testsuites", name=f"sandbox {results.name}")
    root.append(_cells(results))
    by: dict[str, dict[tuple[str, str], list[LoadRow]]] = defaultdict(lambda: defaultdict(list))
    for load in results.loads:
        by[load.format][load.pair].append(load)
    order = {f: i for i, f in enumerate(results.formats)}
    devs = devices(results)
    for fmt in sorted(by, key=lambda f: (order.get(f, len(order)), f)):
        suite = ET.SubElement(root, "testsuite", name=fmt)
        for (producer, consumer), loads in by[fmt].items():
            suite.append(_case(fmt, producer, consumer, loads, devs))
        _count(suite)
    _count(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case(fmt: str, producer: str, consumer: str, loads: list[LoadRow], devs: Devices) -> ET.Element:
    seconds = sum(l.seconds or 0 for l in loads)
    case = ET.Element("testcase", classname=fmt, name=pair(producer, consumer), time=f"{seconds:.3f}")
    outcome = {id(l): devs.outcome(l) for l in loads}
    applicable = [l for l in loads if outcome[id(l)] != NA]
    bad = [l for l in applicable if outcome[id(l)] in VERSION_FINDINGS]
    ours = [l for l in applicable if outcome[id(l)] == HARNESS]
    if not applicable:
        ET.SubElement(case, "skipped", message=first_line(loads[0].reason, 300) or "not applicable")
    elif bad:
        kinds = sorted({l.category or l.error_type or l.status.value for l in bad})
        message = f"{len(bad)} of {len(applicable)} loads fail or differ: " + ", ".join(kinds)
        lines = [_line(l) for l in bad[:MAX_LISTED]] + [_ours(l) for l in ours[:MAX_LISTED]]
        if len(bad) > MAX_LISTED:
            lines.append(f"... and {len(bad) - MAX_LISTED} more (results.json has them all)")
        ET.SubElement(case, "failure", message=first_line(message, 300),
                      type=kinds[0] if len(kinds) == 1 else "several").text = "\n".join(lines)
    elif ours:  # not a finding: the harness failed (JUnit's "error", not "failure")
        error = ET.SubElement(case, "error", message=first_line(f"sandbox's own code failed on {len(ours)} of "
                                                                f"{len(applicable)} loads", 300), type=HARNESS_ERROR)
        error.text = "\n".join(_ours(l) for l in ours[:MAX_LISTED])
    elif all(outcome[id(l)] == DEVICE for l in applicable):
        ET.SubElement(case, "skipped", message="every probe tried needs a device this consumer lacks (device-bound)")
    return case


def _ours(load: LoadRow) -> str:
    return (f"{load.probe} / {load.loader}: harness error (sandbox's own code, not a finding) at "
            f"{load.raised_in or '?'}: {first_line(load.error, 300)}")


def _line(load: LoadRow) -> str:
    what = f"{load.probe} / {load.loader}: {load.status.value}"
    if load.status is LoadStatus.OUTPUTS_DIFFER:
        return f"{what}, max abs err {load.max_abs_err}, max rel err {load.max_rel_err}"
    names = ", ".join(load.names)
    kind = load.category or load.error_type or ""
    detail = f" ({kind}{': ' + names if names else ''})" if kind else ""
    return f"{what}{detail}: {first_line(load.error, 300)}"


def _cells(results: ResultsDocument) -> ET.Element:
    """A cell that did not run is a skip (with its reason) or an error."""
    suite = ET.Element("testsuite", name="cells")
    for cell in results.cells:
        case = ET.SubElement(suite, "testcase", classname="cells", name=cell.id,
                             time=f"{sum(cell.seconds.values()):.3f}")
        if cell.status is CellStatus.SKIPPED:
            ET.SubElement(case, "skipped", message=cell.reason or "skipped")
        elif not cell.ran:
            error = ET.SubElement(case, "error", message=cell.reason or cell.status.value, type=cell.status.value)
            error.text = cell.detail or cell.reason or ""
    _count(suite)
    return suite


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    for kind in ("failures", "errors", "skipped"):
        tag = {"failures": "failure", "errors": "error", "skipped": "skipped"}[kind]
        element.set(kind, str(sum(case.find(tag) is not None for case in cases)))
