"""argparse as the command line wants it: no silent prefixes (`--fres` is not
`--fresh`), and a did-you-mean for a mistyped verb or option."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

_CHOICE = re.compile(r"invalid choice: '([^']*)'")
_UNRECOGNIZED = "unrecognized arguments: "


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (and its verbs' parsers) with allow_abbrev=False and
    hints in its usage errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._argv: list[str] = []

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._argv = list(args) if args is not None else sys.argv[1:]
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        super().error(message + self._hint(message))

    def _hint(self, message: str) -> str:
        choice = _CHOICE.search(message)
        if choice:
            return _closest(choice.group(1), list(self._verbs()) or self._choices())
        if message.startswith(_UNRECOGNIZED):
            words = message[len(_UNRECOGNIZED):].split()
            options = self._options()
            return "".join(_closest(w.split("=", 1)[0], options) for w in words if w.startswith("-"))
        return ""

    def _verbs(self) -> dict[str, argparse.ArgumentParser]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    def _choices(self) -> list[str]:
        return [str(c) for a in self._actions if a.choices for c in a.choices]

    def _options(self) -> list[str]:
        """The options of the verb being parsed (and the top level's)."""
        verbs = self._verbs()
        verb = next((verbs[a] for a in self._argv if a in verbs), None)
        parsers = [self] + ([verb] if verb is not None else [])
        return [o for p in parsers for a in p._actions for o in a.option_strings]


def _closest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
