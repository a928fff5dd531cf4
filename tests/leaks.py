"""What a published page must not hold: a host name or a local path, in any
form (with or without its leading slash, as TF's "defined at" traces print
them), of any machine or of this one. Written apart from sandbox.report.redact,
so that the tests check the redaction against their own idea of a leak."""

from __future__ import annotations

import re
import socket
import tempfile
from pathlib import Path

# Any machine: TF's "running on <host>", home folders and the caches, interpreters
# and temp folders every sandbox run uses, with or without the leading slash.
_ANY = [
    r"running on (?!<host>)[\w-]",
    r"(?<![\w.~-])/?(?:root|home/[\w.-]+|Users/[\w.-]+)/",
    r"\.cache/sandbox",
    r"\.pyenv/versions/",
    r"uv/python/cpython-",
    r"defined at (?![<~])[\w.-]+/",  # TF's traces: a frame's file without its leading slash
    r"(?<![<\w])sandbox/(?:agent|envs|results)/",  # the package's or the cache's folders, not at a placeholder
    r"(?<![\w.~<>-])/?(?:tmp|var/tmp|private/tmp|var/folders)/[\w.-]+/",
]


def _this_machine() -> list[str]:
    """This machine's folders (without their leading slash: that form matches both) and host name."""
    folders = {str(Path.home()), str(Path.cwd()), tempfile.gettempdir(), str(Path(__file__).resolve().parents[1])}
    found = [rf"(?<![\w.<~-]){re.escape(f.lstrip('/'))}(?=/)" for f in folders if f.strip("/")]
    host = socket.gethostname().split(".")[0]
    if len(host) >= 2 and host != "localhost":
        found.append(rf"(?<![\w.<-]){re.escape(host)}(?![\w>-])")
    return found


LEAK = re.compile("|".join(f"(?:{p})" for p in _ANY + _this_machine()))


def leaks(text: str, limit: int = 5) -> list[str]:
    """The first `limit` leaks in `text`, each with some context."""
    return [text[max(0, m.start() - 60):m.end() + 60] for m, _ in zip(LEAK.finditer(text), range(limit))]
