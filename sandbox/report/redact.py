"""Publishing hygiene: a results document without where it ran.

A published report keeps what matters to a reader (versions, packages,
errors) and drops what only says where the run lived: the host name, and
every form of a local path, with or without its leading slash (TensorFlow
prints "defined at root/.cache/sandbox/envs/..."): the environments, run,
results-store, cache, package, interpreter, home, working and temporary
folders. Two sources: the layout any sandbox run has (".../sandbox/envs/",
".../cells/", pyenv and uv interpreters, homes, /tmp), which also holds for a
document measured on other machines (CI shards); and the folders and host
name of this machine (`Local.here()`). A pure function of the document and
`Local`: `redact(redact(d)) == redact(d)`; the redacted document shares with
the input every part that had nothing to redact (so the two together take
little more memory than one).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sandbox.report.document import CellRow, ResultsDocument, Row, read_row, row_json
from sandbox.store import within_a_store

HOST = "<host>"
# TF: "Op type not registered 'X' in binary running on myhost.example.org. Make sure ..."
_RUNNING_ON = re.compile(r"(running on )(?!<host>)[\w.-]+?(?=\.?(?:\s|$|['\"]))")
# An absolute path: starts after a non-path character, runs to whitespace, a quote or punctuation.
_PATH = re.compile(r"(?<![\w.~<>/-])/(?:[^\s'\"(),:;<>\[\]{}|`]+)")
# TF's "defined at" traces print a frame's file without its leading slash:
# "(defined at root/.cache/sandbox/envs/tf1.15.5-.../ops.py:1748)"
_DEFINED_AT = re.compile(r"(defined at )(?![<~/])([^\s'\"(),:;<>\[\]{}|`]+)")
# A path whose leading slash is gone anywhere else, from a folder every machine has
_BARE_ROOT = re.compile(r"(?<![\w.~<>/-])(?=(?:root|home/[^/\s]+|Users/[^/\s]+|tmp|var/tmp|private/tmp)/[^\s]*/)")
_BARE_ROOTS = ("root/", "home/", "Users/", "tmp/")
# Where a path's folder is replaced by a placeholder: the first anchor found names it.
_ANCHORS = (
    ("/sandbox/envs/", "<cache>/envs/"),  # environments in the sandbox cache
    ("/envs/", "<cache>/envs/"),
    ("/cells/", "<run>/cells/"),  # a run folder: runs/<matrix>/cells/<cell>/...
    ("/sandbox/results/", "<store>/"),  # the results store in the sandbox cache
    ("/sandbox/agent/", "<sandbox>/agent/"),  # the package's own agent code
    ("/.cache/sandbox/", "<cache>/"),
    ("/sandbox/", "<sandbox>/"),
)
# an environment or interpreter anywhere: whatever holds lib/pythonX.Y (a venv, pyenv, /usr)
_PYTHON = re.compile(r"^/.*?(?=/lib/python\d)")
# an interpreter of pyenv (~/.pyenv/versions/3.7.16/bin/python3) or uv (.../uv/python/cpython-3.11.7-.../bin/python3)
_INTERPRETER = re.compile(r"^/.*/(?:versions|python)/[^/]+(?=/bin/)")
_HOME = re.compile(r"^/(?:root|home/[^/]+|Users/[^/]+)(?=/|$)")
_TMP = ("/tmp/", "/var/tmp/", "/private/tmp/")


@dataclass(frozen=True)
class Local:
    """This machine's own folders (longest first, each with its placeholder) and host name."""

    folders: tuple[tuple[str, str], ...] = ()
    host: str | None = None

    @classmethod
    def here(cls) -> Local:
        return cls(_folders(), _host())

    def apply(self, value: str) -> str | None:
        """A path inside one of the folders, with the folder replaced; None if in none."""
        for folder, placeholder in self.folders:
            if value == folder or value.startswith(folder + "/"):
                return placeholder + value[len(folder):]
        return None


def _folders() -> tuple[tuple[str, str], ...]:
    home = Path.home()
    cache = Path(os.environ.get("SANDBOX_CACHE_DIR")
                 or Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "sandbox")
    store = Path(os.environ["SANDBOX_STORE_DIR"]) if os.environ.get("SANDBOX_STORE_DIR") else cache / "results"
    found = {str(store): "<store>", str(cache): "<cache>",
             str(Path(__file__).resolve().parents[1]): "<sandbox>",  # the package: a checkout or site-packages
             str(Path.cwd()): "<cwd>", tempfile.gettempdir(): "<tmp>",
             sys.prefix: "<python>", sys.base_prefix: "<python>", str(home): "~"}
    usable = {os.path.normpath(folder): placeholder for folder, placeholder in found.items()
              if folder and os.path.normpath(folder) not in ("/", ".")}
    return tuple(sorted(usable.items(), key=lambda fp: -len(fp[0])))


def _host() -> str | None:
    name = socket.gethostname().split(".")[0]
    return name if len(name) >= 2 and name != "localhost" else None


def redact(results: ResultsDocument, local: Local | None = None) -> ResultsDocument:
    """A copy of `results` with host names and local paths replaced by placeholders
    (`local`: this machine's folders and name; Local.here() by default)."""
    where = Local.here() if local is None else local
    top = {k: _strings(v, where) for k, v in results.scalars().items()}  # the input is not changed
    return replace(results, **{**top, "redacted": True},
                   cells=[_no_location(_row(c, where)) for c in results.cells],
                   artifacts=[_row(a, where) for a in results.artifacts],
                   loads=[_row(l, where) for l in results.loads],
                   witnesses=None if results.witnesses is None else [_row(w, where) for w in results.witnesses])


def _row(row: Row, local: Local) -> Row:
    data = row_json(row)
    new = _strings(data, local)
    return row if new is data else read_row(type(row), new)


def _no_location(cell: CellRow) -> CellRow:
    """A cell without the folder its environment lives in; a docker cell's image
    tag ("docker:sandbox-tf:...") stays."""
    env = cell.environment
    if str(env.get("location") or "").startswith(("/", "~", "<")):
        return replace(cell, environment={**env, "location": None})
    return cell


def text(value: str, local: Local | None = None) -> str:
    """One string with host names and local paths replaced."""
    where = local or Local()
    if where.host and where.host in value:
        value = re.sub(rf"(?<![\w.<-]){re.escape(where.host)}(?![\w>-])", HOST, value)
    if "/" not in value and "running on" not in value:
        return value
    if "running on" in value:
        value = _RUNNING_ON.sub(rf"\1{HOST}", value)
    if "defined at " in value:
        value = _DEFINED_AT.sub(lambda m: m.group(1) + path("/" + m.group(2), where), value)
    value = _bare(value, where)
    return _PATH.sub(lambda m: path(m.group(0), where), value)


def _bare(value: str, local: Local) -> str:
    """Paths without their leading slash: from a folder every machine has, or one of this machine's."""
    if any(root in value for root in _BARE_ROOTS):
        value = _BARE_ROOT.sub("/", value)
    for folder, _placeholder in local.folders:
        bare = folder.lstrip("/")
        if bare and bare in value:
            value = re.sub(rf"(?<![\w.~<>/-]){re.escape(bare)}(?=/|\b)", folder, value)
    return value


def path(value: str, local: Local | None = None) -> str:
    """"/root/.cache/sandbox/envs/tf1.13.2-py3.7-cpu-0d8f/lib/..." -> "<cache>/envs/tf1.13.2-py3.7-cpu-0d8f/lib/..."."""
    lead = len(value) - len(value.lstrip("/"))
    prefix, value = value[:lead - 1], value[lead - 1:]  # "file:///x": keep "//", redact "/x"
    return prefix + _one(value, local or Local())


def _one(value: str, local: Local) -> str:
    stored = within_a_store(value)
    if stored is not None:
        return "<store>/" + stored
    for anchor, placeholder in _ANCHORS:
        at = value.find(anchor)
        if at >= 0:
            return placeholder + value[at + len(anchor):]
    python = _PYTHON.match(value) or _INTERPRETER.match(value)
    if python:
        return "<python>" + value[python.end():]
    mine = local.apply(value)
    if mine is not None:
        return mine
    if _HOME.match(value):
        return _HOME.sub("~", value)
    for tmp in _TMP:
        if value.startswith(tmp):
            return "<tmp>/" + value[len(tmp):]
    return value


def _strings(value: Any, local: Local) -> Any:
    """`value` with every string redacted; a list or dict in which nothing
    changed is returned as it is (shared, not copied)."""
    if isinstance(value, str):
        new = text(value, local)
        return value if new == value else new
    if isinstance(value, list):
        items = [_strings(v, local) for v in value]
        return value if all(new is old for new, old in zip(items, value)) else items
    if isinstance(value, dict):
        pairs = {k: _strings(v, local) for k, v in value.items()}
        return value if all(pairs[k] is v for k, v in value.items()) else pairs
    return value
