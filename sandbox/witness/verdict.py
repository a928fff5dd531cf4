"""Does a witness fail the way its finding did? The same class and culprit
(sandbox.classify), as the report groups findings (sandbox.report.findings):
a witness that would fall in its finding's group reproduces it.

Outcomes:
  reproduced       fails the same way (or its outputs differ alike)
  fails-otherwise  fails with another class or culprit: a bug of ours (the
                   agent's loader, or the witness script)
  loads            the plain load works: a bug of ours
  beyond-reach     a checkpoint whose failure is in the probe's own model code,
                   which no standalone script holds (the variables read back)
  not-run          the witness could not run (no environment, no artifact): why
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sandbox.classify import classify
from sandbox.records import LoadStatus
from sandbox.report.document import LoadRow, WitnessOutcome
from sandbox.report.findings import signature
from sandbox.report.redact import text as redact_text
from sandbox.report.tables import first_line
from sandbox.report.verdict import Devices
from sandbox.witness.scripts import CHECKPOINT

# Signatures compared as measured: no device needs read in (the witness and its load ran on one consumer).
_AS_MEASURED = Devices({}, {}, {})


def classified(witness: dict[str, Any]) -> dict[str, Any]:
    """`witness` (a stored result) with the category and names of its error."""
    found = classify(witness["status"], witness.get("error"), witness.get("error_type"))
    return {**witness, "category": found.category if found else None, "names": list(found.names) if found else []}


def judge(load: LoadRow, witness: dict[str, Any]) -> tuple[WitnessOutcome, str]:
    """The outcome of `witness` (a stored result, classified) for the finding `load`, and why in a sentence."""
    status = witness["status"]
    if status == "not-run":
        return WitnessOutcome.NOT_RUN, str(witness.get("reason") or "")
    if status == "ok":
        if load.loader == CHECKPOINT and load.status is LoadStatus.RUN_ERROR:
            return WitnessOutcome.BEYOND_REACH, ("the checkpoint's variables read back; the failure is in the probe's own model "
                                    "code run on them, which no standalone script holds")
        return WitnessOutcome.LOADS, ("the plain load works" + (" and gives the producer's outputs" if witness.get("compared") else "")
                         + ": the finding comes from sandbox's own code")
    theirs = signature(_as_load(load, witness), _AS_MEASURED)
    if theirs == signature(load, _AS_MEASURED) or _counted_alike(load, witness) or _same_culprits(load, witness) \
            or _unqualified(load, witness) or _same_error(load, witness) \
            or _both(load, witness, ("crash", "timeout")):
        return WitnessOutcome.REPRODUCED, ""
    how = "differs" if status == "outputs-differ" else "fails"
    return WitnessOutcome.FAILS_OTHERWISE, f"the plain load {how}: {theirs.title if theirs else status}"


def _as_load(load: LoadRow, witness: dict[str, Any]) -> LoadRow:
    """The witness's result as a load of the finding's artifact."""
    status = witness["status"]
    known = status in LoadStatus._value2member_map_  # else not a load's word: no finding (a harness error)
    return replace(load, status=LoadStatus(status) if known else LoadStatus.HARNESS_ERROR, category=witness.get("category"),
                   names=tuple(witness.get("names") or ()), static=None, error_type=witness.get("error_type"),
                   error=witness.get("error"))


def _same_culprits(load: LoadRow, witness: dict[str, Any]) -> bool:
    """Another of the ops or attrs the consumer lacks, named first: TF 1.x names
    one of several unknown attrs, in no fixed order."""
    static = load.static or {}
    missing = set(static.get("missing_ops") or []) | set(static.get("missing_attrs") or [])
    names = set(witness.get("names") or [])
    return (bool(names) and names <= missing and witness.get("category") == load.category
            and witness.get("error_type") == load.error_type)


_DIGITS = re.compile(r"\d+")


def _counted_alike(load: LoadRow, witness: dict[str, Any]) -> bool:
    """One message naming nothing, but for its numbers: TF numbers the functions
    a process traces (__inference_restored_function_body_377 in a fresh process,
    _34993 in the agent's, which loaded other models first)."""
    if load.names or witness.get("names") or not _alike(load, witness):
        return False
    return _same_first_line(load, witness)


def _alike(load: LoadRow, witness: dict[str, Any]) -> bool:
    return load.category == witness.get("category") and load.error_type == witness.get("error_type")


def _same_first_line(load: LoadRow, witness: dict[str, Any]) -> bool:
    mine, theirs = (_DIGITS.sub("N", redact_text(first_line(error, 400))) for error in (load.error, witness.get("error")))
    return bool(mine) and mine == theirs


def _same_error(load: LoadRow, witness: dict[str, Any]) -> bool:
    """The very error (its type and first line, numbers aside), where the agent
    named the culprit from what the script's error does not carry: the Keras
    frame that raised (a class), the artifact's op versions (CONV_2D@v2)."""
    if load.error_type != witness.get("error_type") or load.status.value != witness["status"]:
        return False
    return _same_first_line(load, witness)


def _unqualified(load: LoadRow, witness: dict[str, Any]) -> bool:
    """The same culprits, but for the class the agent named from the Keras frame
    that raised ("InputLayer.ragged"): a script's error carries no frames, so its
    witness names the keyword alone ("ragged")."""
    mine, theirs = list(load.names), list(witness.get("names") or [])
    if not mine or len(mine) != len(theirs) or not _alike(load, witness):
        return False
    return all(any(m == t or m.endswith("." + t) for m in mine) for t in theirs)


def _both(load: LoadRow, witness: dict[str, Any], categories: tuple[str, ...]) -> bool:
    """A crash (or a timeout) is one whatever the process printed on its way down."""
    return witness.get("category") in categories and witness.get("category") == load.category
