"""Which of the agent's code decides a measurement: a map of its top-level
code and what each piece references, read with `ast` (the agent is never
imported here).

A unit is a top-level function, class or assignment of an agent module.
Its references are the names it uses that name other units: a bare name of
its own module, `module.name` of a sibling module the agent imports, a name
taken with `from module import name`. A module's other top-level statements
(imports, `if`/`try` blocks, calls) run whenever it is imported: they count
for everything that uses the module. A reference to a module as a whole
(`f(loaders)`) or to a name the map cannot find in it counts the whole
module. Over-counting is the safe side: it only re-measures.

Dispatch tables are the exception that makes digests per exporter and per
loader: a string-keyed entry of a literal, `{"keras2": keras2}` or
`[("saved_model", saved_model), ...]`, counts only for measurements that
select its key (a format, a loader or a probe name). The table's own text,
less its entries, counts for everyone who uses it.

`closure(roots, selectors, cut)` gathers the units a measurement runs and
`digest` hashes their source text (not `ast.dump`, so the host's Python
version does not change a digest).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

AUTOMATIC = ""  # the unit name of a module's statements that run on import
WHOLE = "*"  # a reference to every unit of a module

Ref = tuple[str, str]  # (module, unit name)


@dataclass(frozen=True)
class Entry:
    """One string-keyed entry of a dispatch table."""

    key: str
    text: str
    refs: frozenset[Ref]


@dataclass(frozen=True)
class Unit:
    module: str
    name: str
    text: str  # its source, less its dispatch entries
    refs: frozenset[Ref]
    entries: tuple[Entry, ...] = ()


class CodeMap:
    """The units of a folder of modules (the agent) and what they reference."""

    def __init__(self, folder: Path, keys: Iterable[str], skip: Iterable[str] = ()) -> None:
        """`keys`: the names measurements select by (formats, loaders); a
        module-level table's entry under one of them is a dispatch entry."""
        skipped, self.keys = set(skip), frozenset(keys)
        sources = {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py"))
                   if p.stem not in skipped}
        self.modules = frozenset(sources)
        self.units: dict[Ref, Unit] = {}
        for name, source in sources.items():
            for unit in module_units(name, source, self.modules, self.keys):
                previous = self.units.get((name, unit.name))
                if previous is not None:  # one name bound twice: both count
                    unit = Unit(name, unit.name, previous.text + "\n" + unit.text, previous.refs | unit.refs,
                                previous.entries + unit.entries)
                self.units[(name, unit.name)] = unit

    def of_module(self, module: str) -> list[Ref]:
        return [ref for ref in self.units if ref[0] == module]

    def closure(self, roots: Iterable[Ref], selectors: Iterable[str] = (), cut: Iterable[Ref] = ()) -> tuple[
            set[Ref], list[str]]:
        """The units `roots` run (never crossing into `cut`) and the texts of the
        dispatch entries whose key is among `selectors`."""
        selected, stop = set(selectors), set(cut)
        seen: set[Ref] = set()
        entries: list[str] = []
        todo = list(roots)
        while todo:
            ref = todo.pop()
            if ref in seen or ref in stop:
                continue
            if ref[1] == WHOLE or (ref[0] in self.modules and ref not in self.units):
                seen.add(ref)
                todo += self.of_module(ref[0])
                continue
            unit = self.units.get(ref)
            if unit is None:
                continue
            seen.add(ref)
            todo += list(unit.refs)
            if (ref[0], AUTOMATIC) in self.units:
                todo.append((ref[0], AUTOMATIC))
            for entry in unit.entries:
                if entry.key in selected or ref[1] == WHOLE:
                    entries.append(f"{ref[0]}.{ref[1]}[{entry.key}]: {entry.text}")
                    todo += list(entry.refs)
        return {r for r in seen if r in self.units}, sorted(entries)

    def digest(self, roots: Iterable[Ref], selectors: Iterable[str] = (), cut: Iterable[Ref] = ()) -> str:
        units, entries = self.closure(roots, selectors, cut)
        texts = [[m, n, self.units[(m, n)].text] for m, n in sorted(units)]
        return hashlib.sha256(json.dumps([texts, entries]).encode()).hexdigest()

    def unresolved(self) -> list[str]:
        """References the map could only resolve to a whole module (for tests:
        each one makes digests coarser than they need to be)."""
        found = []
        for unit in self.units.values():
            for module, name in sorted(unit.refs | {r for e in unit.entries for r in e.refs}):
                if name == WHOLE or (module, name) not in self.units:
                    found.append(f"{unit.module}.{unit.name or '<module>'} -> {module}.{name}")
        return found


def agent_map(folder: Path, keys: tuple[str, ...], skip: tuple[str, ...]) -> CodeMap:
    """The map of `folder`, made once per content of its modules."""
    stamp = hashlib.sha256(b"".join(p.read_bytes() + b"\0" for p in sorted(folder.glob("*.py")))).hexdigest()
    return _map(folder, keys, skip, stamp)


@functools.lru_cache(maxsize=8)
def _map(folder: Path, keys: tuple[str, ...], skip: tuple[str, ...], stamp: str) -> CodeMap:
    return CodeMap(folder, keys, skip)


def module_units(module: str, source: str, modules: frozenset[str], keys: frozenset[str]) -> Iterator[Unit]:
    """The units of one module's `source`; `modules`: the names of its sibling modules."""
    tree = ast.parse(source, module)
    names = _top_level_names(tree)
    aliases = _aliases(tree, modules)
    text = _Text(source)
    automatic: list[tuple[str, frozenset[Ref], list[Entry]]] = []
    for index, node in enumerate(tree.body):
        bound = _bound(node)
        table = keys if isinstance(node, (ast.Assign, ast.AnnAssign)) else frozenset()
        refs, entries, spans = _references(node, module, names, aliases, text, table)
        for name in bound:
            yield Unit(module, name, text.without(node, spans), refs, tuple(entries))
        if not bound and not (index == 0 and _is_docstring(node)):
            automatic.append((text.without(node, spans), refs, entries))
    if automatic:
        yield Unit(module, AUTOMATIC, "\n".join(t for t, _, _ in automatic),
                   frozenset().union(*(r for _, r, _ in automatic)), tuple(e for _, _, es in automatic for e in es))


def _bound(node: ast.stmt) -> list[str]:
    """The names a top-level definition or assignment binds (none for other statements)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign) and all(isinstance(t, (ast.Name, ast.Tuple)) for t in node.targets):
        return [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _top_level_names(tree: ast.Module) -> set[str]:
    return {name for node in tree.body for name in _bound(node)}


def _aliases(tree: ast.Module, modules: frozenset[str]) -> dict[str, Ref]:
    """Names that stand for a sibling module (name -> (module, WHOLE)) or for a
    unit of one (`from probes import Probe`), wherever the import is."""
    found: dict[str, Ref] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    found[alias.asname or alias.name] = (alias.name, WHOLE)
        elif isinstance(node, ast.ImportFrom) and node.module in modules and not node.level:
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name if alias.name != "*" else WHOLE)
    return found


def _references(node: ast.AST, module: str, names: set[str], aliases: dict[str, Ref], text: _Text,
                keys: frozenset[str]) -> tuple[frozenset[Ref], list[Entry], list[tuple[int, int]]]:
    """What `node` references apart from its dispatch entries (entries keyed by
    one of `keys`); the entries (with what they reference); where they are."""
    entries, spans = [], []
    inside: set[int] = set()
    for key, value, first, last in _dispatch(node, keys):
        refs = _names_in(value, module, names, aliases, set())
        if refs:
            span = (text.span(first)[0], text.span(last)[1])
            entries.append(Entry(key, text.cut(span), frozenset(refs)))
            spans.append(span)
            inside |= {id(n) for part in (first, last) for n in ast.walk(part)}
    return frozenset(_names_in(node, module, names, aliases, inside)), entries, spans


def _dispatch(node: ast.AST, keys: frozenset[str]) -> Iterator[tuple[str, ast.expr, ast.expr, ast.expr]]:
    """Entries keyed by one of `keys`: (key, value, first and last node of the entry's text)."""
    def key(k: ast.expr | None) -> str:
        return k.value if isinstance(k, ast.Constant) and k.value in keys else ""

    for sub in ast.walk(node):
        if isinstance(sub, ast.Dict):
            for k, v in zip(sub.keys, sub.values):
                if k is not None and key(k) and _is_reference(v):
                    yield key(k), v, k, v
        elif isinstance(sub, (ast.List, ast.Tuple)):
            for elt in sub.elts:
                if isinstance(elt, ast.Tuple) and len(elt.elts) == 2 and key(elt.elts[0]) and _is_reference(elt.elts[1]):
                    yield key(elt.elts[0]), elt.elts[1], elt, elt


def _is_reference(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) or (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name))


def _names_in(node: ast.AST, module: str, names: set[str], aliases: dict[str, Ref], skip: set[int]) -> set[Ref]:
    found: set[Ref] = set()
    bases: set[int] = set()
    for sub in ast.walk(node):
        if id(sub) in skip:
            continue
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id in aliases:
            target = aliases[sub.value.id]
            if target[1] == WHOLE:
                found.add((target[0], sub.attr))
                bases.add(id(sub.value))
    for sub in ast.walk(node):
        if id(sub) in skip or id(sub) in bases or not isinstance(sub, ast.Name) or not isinstance(sub.ctx, ast.Load):
            continue
        if sub.id in aliases:
            found.add(aliases[sub.id])
        elif sub.id in names:
            found.add((module, sub.id))
    return found


class _Text:
    """A module's source, cut by ast positions (UTF-8 byte columns)."""

    def __init__(self, source: str) -> None:
        self.data = source.encode("utf-8")
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def _offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self._offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self._offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def cut(self, span: tuple[int, int]) -> str:
        return self.data[span[0]:span[1]].decode("utf-8")

    def without(self, node: ast.stmt, spans: list[tuple[int, int]]) -> str:
        """`node`'s source (decorators too) with the `spans` (its dispatch entries) cut out."""
        start, end = self.span(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.decorator_list:
            start = self._offset(node.decorator_list[0].lineno, 0)
        parts, at = [], start
        for a, b in sorted(spans):
            parts.append(self.data[at:a])
            at = b
        parts.append(self.data[at:end])
        return b"".join(parts).decode("utf-8")
