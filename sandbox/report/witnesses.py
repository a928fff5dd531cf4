"""The witness of each finding (results.json `witnesses`, sandbox.witness), as
the renderers show it: its outcome, and the script that reproduces it."""

from __future__ import annotations

from html import escape

from sandbox.report.document import ResultsDocument, WitnessOutcome, WitnessRow
from sandbox.report.findings import Group
from sandbox.report.tables import first_line

Found = dict[tuple[str, str, str, str, str], WitnessRow]
WORDS = {WitnessOutcome.REPRODUCED: "reproduced", WitnessOutcome.FAILS_OTHERWISE: "not reproduced: fails otherwise",
         WitnessOutcome.LOADS: "not reproduced: loads", WitnessOutcome.BEYOND_REACH: "beyond a script's reach",
         WitnessOutcome.NOT_RUN: "not run"}
_VERDICT = {WitnessOutcome.REPRODUCED: "ok", WitnessOutcome.FAILS_OTHERWISE: "fails", WitnessOutcome.LOADS: "fails",
            WitnessOutcome.BEYOND_REACH: "na", WitnessOutcome.NOT_RUN: "na"}


def index(results: ResultsDocument) -> Found:
    """Witnesses by the load they re-ran."""
    return {w.key: w for w in results.witnesses or []}


def of(group: Group, found: Found) -> WitnessRow | None:
    """The witness of a finding: the one that re-ran one of its loads."""
    for load in group.loads:
        witness = found.get(load.key)
        if witness is not None:
            return witness
    return None


def detail(witness: WitnessRow) -> str:
    """Why, for a witness that did not reproduce its finding (or did not run)."""
    return "" if witness.outcome is WitnessOutcome.REPRODUCED else witness.why or ""


def raised(witness: WitnessRow) -> str:
    """What the witness raised, in one line ("" when it loaded)."""
    if not witness.error and not witness.status.raised:
        return ""
    return f"{witness.error_type or witness.status.value}: {first_line(witness.error, 300)}".rstrip(": ")


def summary(witness: WitnessRow | None) -> str:
    """One line: the outcome, and why when it is not "reproduced"."""
    if witness is None:
        return "no witness"
    said = detail(witness)
    return WORDS[witness.outcome] + (f" ({said})" if said else "")


def html(witness: WitnessRow | None) -> str:
    """A table cell: the outcome, then "reproduce this" with the script to copy."""
    if witness is None:
        return '<td class="witness"><span class="muted">no witness</span></td>'
    outcome = witness.outcome
    cell = f'<td class="witness"><span class="badge v-{_VERDICT[outcome]}">{escape(WORDS[outcome])}</span>'
    if detail(witness):
        cell += f'<p class="muted">{escape(detail(witness))}</p>'
    if not witness.script:
        return cell + "</td>"
    where = (f'In {escape(witness.consumer)}, on the {escape(witness.format)} of {escape(witness.probe)} '
             f'saved by {escape(witness.producer)}:')
    said = f'<p class="muted">It raised: <code>{escape(raised(witness))}</code></p>' if raised(witness) else ""
    return (f'{cell}<details><summary>reproduce this</summary>'
            f'<p class="muted">{where} <code>python witness.py {escape(witness.usage or "MODEL_PATH")}</code></p>'
            '<button type="button" class="copy" onclick="navigator.clipboard.writeText('
            'this.nextElementSibling.textContent)">copy</button>'
            f'<pre class="script"><code>{escape(witness.script)}</code></pre>{said}</details></td>')
