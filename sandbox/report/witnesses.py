"""The witness of each finding (results.json `witnesses`, sandbox.witness), as
the renderers show it: its outcome, and the script that reproduces it."""

from __future__ import annotations

from html import escape
from typing import Any

from sandbox.report.document import ResultsDocument
from sandbox.report.findings import Group
from sandbox.report.tables import first_line

Witness = dict[str, Any]
_KEY = ("consumer", "producer", "probe", "format", "loader")
WORDS = {"reproduced": "reproduced", "fails-otherwise": "not reproduced: fails otherwise",
         "loads": "not reproduced: loads", "beyond-reach": "beyond a script's reach", "not-run": "not run"}
_VERDICT = {"reproduced": "ok", "fails-otherwise": "fails", "loads": "fails", "beyond-reach": "na", "not-run": "na"}


def index(results: ResultsDocument) -> dict[tuple[str, ...], Witness]:
    """Witnesses by the load they re-ran."""
    return {tuple(str(w[k]) for k in _KEY): w for w in results.witnesses or []}


def of(group: Group, found: dict[tuple[str, ...], Witness]) -> Witness | None:
    """The witness of a finding: the one that re-ran one of its loads."""
    for load in group.loads:
        witness = found.get(tuple(str(getattr(load, k)) for k in _KEY))
        if witness is not None:
            return witness
    return None


def detail(witness: Witness) -> str:
    """Why, for a witness that did not reproduce its finding (or did not run)."""
    return "" if witness["outcome"] == "reproduced" else str(witness.get("why") or "")


def raised(witness: Witness) -> str:
    """What the witness raised, in one line ("" when it loaded)."""
    if not witness.get("error") and witness["status"] in ("ok", "not-run"):
        return ""
    return f"{witness.get('error_type') or witness['status']}: {first_line(witness.get('error'), 300)}".rstrip(": ")


def summary(witness: Witness | None) -> str:
    """One line: the outcome, and why when it is not "reproduced"."""
    if witness is None:
        return "no witness"
    said = detail(witness)
    return WORDS[witness["outcome"]] + (f" ({said})" if said else "")


def html(witness: Witness | None) -> str:
    """A table cell: the outcome, then "reproduce this" with the script to copy."""
    if witness is None:
        return '<td class="witness"><span class="muted">no witness</span></td>'
    outcome = witness["outcome"]
    cell = f'<td class="witness"><span class="badge v-{_VERDICT[outcome]}">{escape(WORDS[outcome])}</span>'
    if detail(witness):
        cell += f'<p class="muted">{escape(detail(witness))}</p>'
    if not witness.get("script"):
        return cell + "</td>"
    where = (f'In {escape(witness["consumer"])}, on the {escape(witness["format"])} of {escape(witness["probe"])} '
             f'saved by {escape(witness["producer"])}:')
    said = f'<p class="muted">It raised: <code>{escape(raised(witness))}</code></p>' if raised(witness) else ""
    return (f'{cell}<details><summary>reproduce this</summary>'
            f'<p class="muted">{where} <code>python witness.py {escape(witness.get("usage") or "MODEL_PATH")}</code></p>'
            '<button type="button" class="copy" onclick="navigator.clipboard.writeText('
            'this.nextElementSibling.textContent)">copy</button>'
            f'<pre class="script"><code>{escape(witness["script"])}</code></pre>{said}</details></td>')
