"""Digests: one place for every hash the host computes.

What determines a measurement is hashed here: environments' recipes, the
agent code it runs (AgentCode, from the map in sandbox.codemap), each probe's
code, artifacts' files. The probe digest is taken from the source of the
probe's class (and the classes it derives from) plus the code its module
shares, so editing one probe changes only that probe's digest; editing shared
code changes them all. Source text, not `ast.dump`, so the host's Python
version does not change a digest.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from sandbox import codemap
from sandbox.errors import SandboxError

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
def host_code() -> str:
    """The package's own code and data, less the agent's (AgentCode has that):
    what turns stored records into a report (collect, classify, the static
    check, the renderers) is decided here."""
    root = AGENT.parent
    names = [n for n in tree_files(root) if not n.startswith("agent/") and "__pycache__" not in n]
    return of_files(root, names)


@functools.lru_cache(maxsize=1)
def all_code() -> str:
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
    """The code of every probe: its module's parts (probe_code) and the agent
    code those parts reference."""

    def __init__(self, modules: Iterable[Path] = (), agent: Path = AGENT) -> None:
        self.digests: dict[str, str] = {}
        self.refs: dict[str, frozenset[codemap.Ref]] = {}
        wholes: list[str] = []
        every: set[codemap.Ref] = set()
        names = agent_map(agent).modules
        for module in [agent / BUILTIN_PROBES_MODULE.name, *modules]:
            codes = probe_code(module)
            wholes.append(codes.pop("*"))
            refs = probe_references(module, names)
            every |= refs
            for probe, code in codes.items():
                self.digests.setdefault(probe, code)
                self.refs.setdefault(probe, refs)
        # a probe not found statically: every module's whole code decides it
        self.fallback, self.fallback_refs = of_json(wholes), frozenset(every)

    def digest(self, probe: str) -> str:
        return self.digests.get(probe, self.fallback)

    def references(self, probe: str) -> frozenset[codemap.Ref]:
        return self.refs.get(probe, self.fallback_refs)


def probe_references(module: Path, agent: frozenset[str]) -> frozenset[codemap.Ref]:
    """The agent code a probe module references (`from probes import Probe`,
    `tfcompat.context()`), anywhere in it: it counts for each of its probes.
    `agent`: the agent's module names."""
    units = codemap.module_units(module.stem, module.read_text(encoding="utf-8"), agent, frozenset())
    return frozenset(ref for unit in units for ref in unit.refs if ref[0] in agent)


# The agent's modules, less the built-in probes (those have digests of their own, per probe).
AGENT_SKIP = ("__init__", BUILTIN_PROBES_MODULE.stem)
ENTRY: codemap.Ref = ("__main__", codemap.AUTOMATIC)  # `python agent VERB`: runs verbs.main
VERBS: dict[str, codemap.Ref] = {"export": ("verbs", "export"), "load": ("verbs", "load"),
                                 "registry": ("verbs", "registry")}


def agent_map(agent: Path = AGENT) -> codemap.CodeMap:
    """The map of the agent's code (`agent`: its folder; another one in tests)."""
    from sandbox.agent import catalog
    from sandbox.matrix import FORMATS
    return codemap.agent_map(agent, (*FORMATS, *catalog.LOADER_FORMATS), AGENT_SKIP)


class AgentCode:
    """Digests of exactly the agent code a measurement runs (sandbox.codemap):
    an export of (probe, format) runs the export verb, that format's exporter
    and the probe; a load of it by a loader runs all of that (its artifact is
    that code's output) and the load verb and that loader; the registry verb
    runs only its own code. Editing one loader re-measures its loads, one
    exporter its exports and their loads, one probe its exports and loads;
    code they share counts for each of them.

    Mapping the code takes a second (ast); a run asks for the same few digests
    thousands of times: the answers are kept in memory and, between runs, in
    the cache folder under a digest of every source they are made from."""

    def __init__(self, modules: Iterable[Path] = (), agent: Path | None = None) -> None:
        self.modules, self.agent = tuple(modules), agent or AGENT  # another folder: tests edit a copy
        sources = [hashlib.sha256(p.read_bytes()).hexdigest() for p in [*sorted(self.agent.glob("*.py")), *self.modules]]
        self._file = Path("code") / f"{of_json([host_code(), sys.version_info[:2], sources])}.json"
        self._known: dict[str, str] = _read_cache(self._file)
        self._added = False

    @functools.cached_property
    def probes(self) -> ProbeCode:
        return ProbeCode(self.modules, self.agent)

    @functools.cached_property
    def map(self) -> codemap.CodeMap:
        return agent_map(self.agent)

    def save(self) -> None:
        """Keep what was computed for the next run (a cache: a failure to write is no error)."""
        if self._added:
            _write_cache(self._file, self._known)
            self._added = False

    def _verb(self, verb: str, selectors: tuple[str, ...], roots: Callable[[], frozenset[codemap.Ref]] = frozenset) -> str:
        cut = [ref for name, ref in VERBS.items() if name != verb]
        return self.map.digest([ENTRY, VERBS[verb], *roots()], selectors, cut)

    def _cached(self, key: tuple[str, ...], compute: Callable[[], str]) -> str:
        name = "/".join(key)
        if name not in self._known:
            self._known[name], self._added = compute(), True
        return self._known[name]

    def export(self, probe: str, fmt: str) -> str:
        return self._cached(("export", probe, fmt), lambda: of_json([
            "export", self._verb("export", (fmt,), lambda: self.probes.references(probe)), self.probes.digest(probe)]))

    def load(self, probe: str, fmt: str, loader: str) -> str:
        return self._cached(("load", probe, fmt, loader), lambda: of_json([
            "load", self.export(probe, fmt), self._verb("load", (fmt, loader))]))

    def registry(self) -> str:
        return self._cached(("registry",), lambda: of_json(["registry", self._verb("registry", ())]))


def _read_cache(name: Path) -> dict[str, str]:
    from sandbox.store import cache_dir
    try:
        data = json.loads((cache_dir() / name).read_text())
    except (OSError, ValueError, SandboxError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_cache(name: Path, known: dict[str, str]) -> None:
    from sandbox.store import cache_dir, write_json
    try:
        write_json(cache_dir() / name, known)
    except (OSError, SandboxError):
        pass
