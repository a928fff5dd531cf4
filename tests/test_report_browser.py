"""index.html in headless Chromium. The expected verdicts are computed here,
from results.json, by the few obvious lines of `expected` below, never by the
code that renders the page (sandbox.report.tables): a wrong verdict anywhere,
in the squares or in the pair picker, fails a test. Also: the picker's
findings and exact errors, the newest producer / oldest consumer that load,
the URL state, the keyboard, 420 px, and the budgets at map size. The
screenshots are kept in test-artifacts/."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import chromium
import pytest
import scaled_results
from packaging.version import Version

from sandbox.report import document, html, markdown
from sandbox.report.redact import redact

pytestmark = pytest.mark.chromium

RECORDED = Path(__file__).parent / "data" / "default-results.json"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BROKEN = {"load-error", "run-error", "crash", "timeout"}
Key = tuple[str, str, str, str]  # format, loader, producer, consumer


def expected(results: dict[str, Any]) -> dict[Key, str]:
    """The verdict of every (format, loader, producer, consumer) that has loads: a square
    fails when any probe's load or run fails, differs when any output differs, is n/a when
    the consumer has no such loader for any probe, else ok."""
    statuses: dict[Key, list[str]] = defaultdict(list)
    for l in results["loads"]:
        statuses[(l["format"], l["loader"], l["producer"], l["consumer"])].append(l["status"])
    out = {}
    for key, found in statuses.items():
        applicable = [s for s in found if s != "not-applicable"]
        out[key] = ("n/a" if not applicable else "fails" if BROKEN & set(applicable)
                    else "differs" if "outputs-differ" in applicable else "ok")
    return out


def oldest_first(results: dict[str, Any]) -> list[str]:
    ran = [c for c in results["cells"] if c["status"] == "ok"]
    return [c["id"] for c in sorted(ran, key=lambda c: Version(c["tensorflow"]))]  # stable: twins keep their order


@pytest.fixture(scope="module")
def browser() -> Iterator[chromium.Browser]:
    executable = chromium.find()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not installed (scripts/system-deps.sh installs it)")
        pytest.skip("chromium not found (apt-get install chromium); these tests always run in CI")
    with chromium.Browser(executable) as found:
        yield found


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return redact(document.load(RECORDED))


@pytest.fixture(scope="module")
def page_file(results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "index.html"
    path.write_text(html.render(results), encoding="utf-8")
    return path


@pytest.fixture
def page(browser: chromium.Browser, page_file: Path) -> Iterator[chromium.Page]:
    opened = chromium.Page(browser)
    opened.open(page_file)
    yield opened
    opened.close()


def test_loads_without_console_errors_or_network(page: chromium.Page) -> None:
    assert page.errors() == []
    assert [url for url in page.requests() if not url.startswith("file://")] == []
    assert page.evaluate("document.title") == "TensorFlow compatibility: default"


def test_the_error_detector_sees_errors(browser: chromium.Browser, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><script>console.error('boom'); undefinedFunction();</script>")
    other = chromium.Page(browser)
    other.open(bad)
    errors = other.errors()
    assert any("boom" in e for e in errors) and any("undefinedFunction" in e for e in errors)


SQUARES = """Array.from(document.querySelectorAll('.grid-box')).flatMap(box => {
    const cols = Array.from(box.querySelectorAll('thead th .cell-label')).map(s => s.title);
    return Array.from(box.querySelectorAll('tbody tr')).flatMap(tr => {
        const producer = tr.querySelector('th .cell-label').title;
        return Array.from(tr.querySelectorAll('td')).map((td, i) => [box.dataset.format, box.dataset.loader,
            producer, cols[i], Array.from(td.classList).find(c => c.startsWith('v-')).slice(2), td.textContent, td.tabIndex,
            getComputedStyle(td).backgroundColor]);
    });
})"""


def test_every_square_has_the_verdict_of_its_loads(page: chromium.Page, results: dict[str, Any]) -> None:
    want = expected(results)
    squares = page.evaluate(SQUARES)
    shown = {(f, l, p, c): v.replace("na", "n/a") for f, l, p, c, v, *_ in squares if v != "none"}
    assert shown == want
    colours: dict[str, set[str]] = defaultdict(set)
    for f, l, p, c, v, text, tab, colour in squares:
        colours[v].add(colour)
        assert (tab == 0) == (v != "none"), "every square with loads is reachable by Tab"
        if v == "fails":
            broken = [x for x in results["loads"] if (x["format"], x["loader"], x["producer"], x["consumer"]) ==
                      (f, l, p, c) and x["status"] in BROKEN]
            applicable = [x for x in results["loads"] if (x["format"], x["loader"], x["producer"], x["consumer"]) ==
                          (f, l, p, c) and x["status"] != "not-applicable"]
            assert text == ("✗" if len(broken) == len(applicable) else f"{len(broken)}/{len(applicable)}")
    assert all(len(c) == 1 for c in colours.values())  # one colour per verdict ...
    assert len({next(iter(c)) for c in colours.values()}) == len(colours)  # ... and verdicts look different


PICK = """(() => {
    const set = (id, value) => { const el = document.getElementById(id); el.value = value;
                                 el.dispatchEvent(new Event('change')); };
    return %s.map(([f, l, p, c]) => {
        set('p-format', f); set('p-loader', l); set('p-from', p); set('p-to', c);
        const answer = document.getElementById('answer');
        return [answer.dataset.verdict, answer.textContent, document.getElementById('newest').dataset.cell,
                document.getElementById('oldest').dataset.cell];
    });
})()"""


def test_the_picker_answers_every_pair(page: chromium.Page, results: dict[str, Any]) -> None:
    want = expected(results)
    order = oldest_first(results)
    keys = sorted(want)
    answers = page.evaluate(PICK % json.dumps(keys))
    for key, (verdict, text, newest, oldest) in zip(keys, answers):
        fmt, loader, producer, consumer = key
        assert verdict == want[key], key
        loads_in_consumer = [p for p in order if want.get((fmt, loader, p, consumer)) == "ok"]
        assert newest == (loads_in_consumer[-1] if loads_in_consumer else ""), key
        loads_producer = [c for c in order if want.get((fmt, loader, producer, c)) == "ok"]
        assert oldest == (loads_producer[0] if loads_producer else ""), key
        bad = [l for l in results["loads"] if (l["format"], l["loader"], l["producer"], l["consumer"]) == key
               and l["status"] in BROKEN]
        for load in bad:  # what breaks it, and an exact error of each finding
            assert all(name in text for name in load["names"]), (key, load["names"])
            assert load["probe"] in text
        if bad:
            assert any(l["error"] in text for l in bad), key


def test_squares_open_their_pair_by_keyboard(page: chromium.Page, results: dict[str, Any]) -> None:
    failing = sorted(k for k, v in expected(results).items() if v == "fails")[0]
    fmt, loader, producer, consumer = failing
    found = page.evaluate(f"""(() => {{
        const box = Array.from(document.querySelectorAll('.grid-box')).find(b =>
            b.dataset.format === {json.dumps(fmt)} && b.dataset.loader === {json.dumps(loader)});
        const cols = Array.from(box.querySelectorAll('thead th .cell-label')).map(s => s.title);
        const tr = Array.from(box.querySelectorAll('tbody tr')).find(r =>
            r.querySelector('th .cell-label').title === {json.dumps(producer)});
        const td = tr.querySelectorAll('td')[cols.indexOf({json.dumps(consumer)})];
        td.focus();
        td.dispatchEvent(new KeyboardEvent('keydown', {{key: 'Enter', bubbles: true}}));
        return [document.getElementById('answer').dataset.verdict, location.hash, document.activeElement.id];
    }})()""")
    assert found[0] == "fails" and found[2] == "answer"
    assert found[1] == "#" + urlencode({"from": producer, "format": fmt, "to": consumer, "loader": loader})
    moved = page.evaluate("""(() => {
        const td = document.querySelector('.grid-box tbody tr td[tabindex]');
        td.focus();
        td.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
        return document.activeElement !== td && document.activeElement.tagName === 'TD';
    })()""")
    assert moved


def test_every_view_has_a_url(browser: chromium.Browser, page_file: Path, results: dict[str, Any]) -> None:
    key = sorted(k for k, v in expected(results).items() if v == "fails")[-1]
    state = {"from": key[2], "format": key[0], "to": key[3], "loader": key[1], "f": key[0], "s": "problems",
             "q": "debug_name"}
    opened = chromium.Page(browser)
    opened.send("Page.navigate", url=page_file.resolve().as_uri() + "#" + urlencode(state))
    opened.open(page_file.with_name(page_file.name))  # wait for the load event of that navigation
    opened.evaluate(f"location.hash = {json.dumps('#' + urlencode(state))}")
    opened.evaluate("new Promise(r => setTimeout(r, 50))")
    found = opened.evaluate("""[['p-from', 'p-format', 'p-to', 'p-loader', 'f-format', 'f-status', 'f-text']
        .map(id => document.getElementById(id).value), document.getElementById('answer').dataset.verdict,
        document.querySelectorAll('.grid-box:not(.hidden)').length,
        Array.from(document.querySelectorAll('.grid-box:not(.hidden)')).every(b => b.dataset.format ===
            document.getElementById('f-format').value),
        Array.from(document.querySelectorAll('tr.group:not(.hidden)')).every(tr =>
            tr.textContent.includes('debug_name')),
        document.getElementById('grids').classList.contains('problems-only')]""")
    values, verdict, grids_shown, right_format, filtered, problems_only = found
    assert values == [key[2], key[0], key[3], key[1], key[0], "problems", "debug_name"]
    assert verdict == "fails" and grids_shown >= 1 and right_format and filtered and problems_only
    # and a change writes the URL back
    opened.evaluate("(s => { s.value = ''; s.dispatchEvent(new Event('change')); })(document.getElementById('f-status'))")
    assert "s=" not in opened.evaluate("location.hash") and "q=debug_name" in opened.evaluate("location.hash")
    opened.close()


@pytest.mark.parametrize("change", ["no loads", "no cell ran"])
def test_a_run_with_nothing_to_show_still_renders(browser: chromium.Browser, results: dict[str, Any],
                                                  tmp_path: Path, change: str) -> None:
    cells = results["cells"] if change == "no loads" else [dict(c, status="skipped") for c in results["cells"]]
    path = tmp_path / "index.html"
    path.write_text(html.render(dict(results, loads=[], cells=cells)), encoding="utf-8")
    tab = chromium.Page(browser)
    tab.open(path)
    assert tab.errors() == [] and "No loads" in tab.evaluate("document.getElementById('answer').textContent")
    tab.close()


def test_labels_are_unique_and_name_extra_packages(page: chromium.Page, results: dict[str, Any]) -> None:
    options = page.evaluate("Array.from(document.querySelectorAll('#p-from option')).map(o => [o.value, o.textContent])")
    assert sorted(v for v, _ in options) == sorted(oldest_first(results))
    texts = [t for _, t in options]
    assert len(set(texts)) == len(texts)
    assert any("+tf-keras" in t for v, t in options if v.endswith("+tf-keras"))


def test_usable_at_420_px(browser: chromium.Browser, page_file: Path) -> None:
    narrow = chromium.Page(browser, width=420, height=800)
    narrow.open(page_file)
    width, position, picker_right = narrow.evaluate("""[document.documentElement.scrollWidth,
        getComputedStyle(document.querySelector('nav.controls')).position,
        document.getElementById('answer').getBoundingClientRect().right]""")
    assert width <= 420 and picker_right <= 420
    assert position != "sticky"  # a sticky bar would cover the tables' headers on a phone
    narrow.screenshot(ARTIFACTS / "report-420.png", 0, 1600)
    narrow.close()


def test_screenshot_is_kept(page: chromium.Page) -> None:
    shot = ARTIFACTS / "report.png"
    page.screenshot(shot, 0, 2400)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


# -- the budgets of the published map, on the recorded run scaled to its size
@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    results = redact(scaled_results.scale(json.loads(RECORDED.read_text())))
    folder = tmp_path_factory.mktemp("map")
    (folder / "index.html").write_text(html.render(results), encoding="utf-8")
    (folder / "index.md").write_text(markdown.render(results), encoding="utf-8")
    return results, folder / "index.html", folder / "index.md"


def test_map_sized_report_keeps_its_budgets(browser: chromium.Browser, scaled: tuple[dict[str, Any], Path, Path]) -> None:
    results, page_path, md_path = scaled
    assert len(results["cells"]) >= 26 and len(results["loads"]) >= 45_000
    assert page_path.stat().st_size <= 5_000_000
    assert md_path.stat().st_size <= 1_000_000
    paints, nodes = [], 0
    for _ in range(3):
        tab = chromium.Page(browser)
        tab.open(page_path)
        paints.append(tab.first_paint())
        nodes = tab.evaluate("document.getElementsByTagName('*').length")
        assert tab.errors() == []
        tab.close()
    assert sorted(paints)[1] < 1000, paints
    # ok and n/a loads are not in the DOM one by one: far fewer elements than loads
    assert nodes < len(results["loads"]) / 2


def test_map_sized_picker_agrees_with_results(browser: chromium.Browser,
                                              scaled: tuple[dict[str, Any], Path, Path]) -> None:
    results, page_path, _ = scaled
    want = expected(results)
    keys = sorted(want)[::37]  # a spread of pairs over every grid
    tab = chromium.Page(browser)
    tab.open(page_path)
    answers = tab.evaluate(PICK % json.dumps(keys))
    assert [a[0] for a in answers] == [want[k] for k in keys]
    tab.close()
