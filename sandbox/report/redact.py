"""Publishing hygiene: a results document without where it ran.

A published report keeps what matters to a reader (versions, packages,
errors) and drops what only says where the run lived: the host name in
TensorFlow's "running on <host>" errors, the cache, run and home folders in
paths (an interpreter becomes <python>/bin/python3), and the folders of the
environments. A pure function: the document in, a redacted one out, which
shares with it every part that had nothing to redact (so the two together
take little more memory than one); `redact(redact(d)) == redact(d)`.
"""

from __future__ import annotations

import re
from typing import Any

Results = dict[str, Any]

HOST = "<host>"
# TF: "Op type not registered 'X' in binary running on myhost.example.org. Make sure ..."
_RUNNING_ON = re.compile(r"(running on )(?!<host>)[\w.-]+?(?=\.?(?:\s|$|['\"]))")
# An absolute path: starts after a non-path character, runs to whitespace, a quote or punctuation.
_PATH = re.compile(r"(?<![\w.~<>/-])/(?:[^\s'\"(),:;<>\[\]{}|`]+)")
# Where a path's folder is replaced by a placeholder: the first anchor found names it.
_ANCHORS = (
    ("/sandbox/envs/", "<cache>/envs/"),  # environments in the sandbox cache
    ("/envs/", "<cache>/envs/"),
    ("/cells/", "<run>/cells/"),  # a run folder: runs/<matrix>/cells/<cell>/...
    ("/sandbox/agent/", "<sandbox>/agent/"),  # the package's own agent code
    ("/sandbox/", "<sandbox>/"),
)
_PYTHON = re.compile(r"^.*?/(?:versions|python\d[.\d]*|usr|opt)/.*?(?=/lib/python\d)")
# an interpreter of pyenv (~/.pyenv/versions/3.7.16/bin/python3) or uv (.../uv/python/cpython-3.11.7-.../bin/python3)
_INTERPRETER = re.compile(r"^/.*/(?:versions|python)/[^/]+(?=/bin/)")
_HOME = re.compile(r"^/(?:root|home/[^/]+|Users/[^/]+)(?=/|$)")


def redact(results: Results) -> Results:
    """`results` with host names and local paths replaced by placeholders (the
    input is not changed)."""
    out: Results = dict(_strings(results))
    if isinstance(out.get("cells"), list):
        out["cells"] = [_no_location(c) for c in out["cells"]]
    out["redacted"] = True
    return out


def _no_location(cell: Any) -> Any:
    """A cell without the folder its environment lives in; a docker cell's image
    tag ("docker:sandbox-tf:...") stays."""
    env = cell.get("environment") if isinstance(cell, dict) else None
    if isinstance(env, dict) and str(env.get("location") or "").startswith(("/", "~", "<")):
        return {**cell, "environment": {**env, "location": None}}
    return cell


def text(value: str) -> str:
    """One string with host names and local paths replaced."""
    if "/" not in value and "running on" not in value:
        return value
    value = _RUNNING_ON.sub(rf"\1{HOST}", value)
    return _PATH.sub(lambda m: path(m.group(0)), value)


def path(value: str) -> str:
    """"/root/.cache/sandbox/envs/tf1.13.2-py3.7-cpu-0d8f/lib/..." -> "<cache>/envs/tf1.13.2-py3.7-cpu-0d8f/lib/..."."""
    for anchor, placeholder in _ANCHORS:
        at = value.find(anchor)
        if at >= 0:
            return placeholder + value[at + len(anchor):]
    python = _PYTHON.match(value) or _INTERPRETER.match(value)
    if python:
        return "<python>" + value[python.end():]
    if _HOME.match(value):
        return _HOME.sub("~", value)
    for tmp in ("/tmp/", "/var/tmp/", "/private/tmp/"):
        if value.startswith(tmp):
            return "<tmp>/" + value[len(tmp):]
    return value


def _strings(value: Any) -> Any:
    """`value` with every string redacted; a list or dict in which nothing
    changed is returned as it is (shared, not copied)."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        items = [_strings(v) for v in value]
        return value if all(new is old for new, old in zip(items, value)) else items
    if isinstance(value, dict):
        pairs = {k: _strings(v) for k, v in value.items()}
        return value if all(pairs[k] is v for k, v in value.items()) else pairs
    return value
