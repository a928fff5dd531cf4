"""Digests: one place for every hash the host computes.

What determines a measurement is hashed here: environments' recipes, the
agent's code, each probe's code, artifacts' files. The probe digest is taken
from the source of the probe's class (and the classes it derives from) plus
the code its module shares, so editing one probe changes only that probe's
digest; editing shared code changes them all. Source text, not `ast.dump`, so
the host's Python version does not change a digest.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path

AGENT = Path(__file__).resolve().parent / "agent"
BUILTIN_PROBES_MODULE = AGENT / "zoo.py"
SHORT = 12  # characters of a digest used in folder names


def of_json(data: object) -> str:
    """sha256 of the canonical JSON of `data`."""
    text = json.dumps(data, sort_keys=True)  # the form environment caches have always been named by
    return hashlib.sha256(text.encode()).hexdigest()


def short(data: object) -> str:
    return of_json(data)[:SHORT]


def of_files(root: Path, names: Iterable[str]) -> str:
    """sha256 over (name, content) of the files `names` below `root`."""
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode() + b"\0")
        with open(root / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def tree_files(root: Path) -> list[str]:
    """Every file below `root`, as sorted POSIX paths relative to it."""
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            found.append(Path(folder, name).relative_to(root).as_posix())
    return sorted(found)


def of_tree(root: Path) -> str:
    return of_files(root, tree_files(root))


@functools.lru_cache(maxsize=1)
def agent_code() -> str:
    """The agent's code, except the built-in probes (they have digests of their own)."""
    names = [p.name for p in AGENT.glob("*.py") if p != BUILTIN_PROBES_MODULE]
    return of_files(AGENT, names)


@functools.lru_cache(maxsize=1)
def host_code() -> str:
    """All of sandbox's own code, host and agent: what a harness error is
    stored with, so that any change (the fix) measures it again."""
    root = AGENT.parent
    return of_files(root, [name for name in tree_files(root) if name.endswith(".py")])


def probe_code(module: Path) -> dict[str, str]:
    """{probe name: digest} for the probe classes a module defines (classes with
    a literal `name = "..."`). A module whose probes cannot be found that way
    gives every probe the module's whole digest (under the key "*")."""
    return dict(_probe_code(module.read_text(encoding="utf-8"), str(module)))


@functools.lru_cache(maxsize=16)
def _probe_code(source: str, filename: str) -> tuple[tuple[str, str], ...]:
    """probe_code of a module's source (parsed once per process: a merge and a run both ask)."""
    tree = ast.parse(source, filename)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    probes = {name: cls for cls in classes.values() if (name := _probe_name(cls))}
    own: dict[str, list[str]] = {}
    for probe, cls in probes.items():
        own[probe] = [_segment(source, c) for c in _lineage(cls, classes)]
    in_lineage = {id(c) for cls in probes.values() for c in _lineage(cls, classes)}
    shared = [_segment(source, node) for node in tree.body
              if id(node) not in in_lineage and not _registration(node)]
    found = {probe: of_json([shared, parts]) for probe, parts in own.items()}
    found["*"] = of_json(source)
    return tuple(found.items())


def _probe_name(cls: ast.ClassDef) -> str | None:
    for node in cls.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "name" and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            return node.value.value
    return None


def _lineage(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> list[ast.ClassDef]:
    """The class and its ancestors defined in the same module, nearest first."""
    found, todo = [], [cls]
    while todo:
        node = todo.pop(0)
        if node in found:
            continue
        found.append(node)
        todo += [classes[b.id] for b in node.bases if isinstance(b, ast.Name) and b.id in classes]
    return found


def _registration(node: ast.stmt) -> bool:
    """Statements that only list probes (the zoo's register loop, a module's
    PROBES = [...]): adding a probe there is not a change to the others."""
    if isinstance(node, (ast.For, ast.Expr)):
        return True
    return (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "PROBES")


def _segment(source: str, node: ast.stmt) -> str:
    """ast.get_source_segment(source, node), with the source split into lines
    once (it splits it anew on every call: seconds for the zoo)."""
    if node.end_lineno is None or node.end_col_offset is None:
        return ast.dump(node)
    lines = _lines(source)
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        found = lines[first].encode()[node.col_offset:node.end_col_offset].decode()
    else:
        found = "".join([lines[first].encode()[node.col_offset:].decode(), *lines[first + 1:last],
                         lines[last].encode()[:node.end_col_offset].decode()])
    return found or ast.dump(node)


@functools.lru_cache(maxsize=8)
def _lines(source: str) -> list[str]:
    """Lines as the parser splits them (at \\n, \\r and \\r\\n only), endings kept."""
    return io.StringIO(source, newline="").readlines()


class ProbeCode:
    """Digests of everything of the agent that builds or loads each probe: the
    agent's code and the probe's own code (built-in zoo or a user module)."""

    def __init__(self, modules: Iterable[Path] = ()) -> None:
        self.digests: dict[str, str] = {}
        wholes = []
        for module in [BUILTIN_PROBES_MODULE, *modules]:
            codes = probe_code(module)
            wholes.append(codes.pop("*"))
            for probe, code in codes.items():
                self.digests.setdefault(probe, of_json([agent_code(), code]))
        # a probe not found statically: every module's whole code decides it
        self.fallback = of_json([agent_code(), wholes])

    def digest(self, probe: str) -> str:
        return self.digests.get(probe, self.fallback)
