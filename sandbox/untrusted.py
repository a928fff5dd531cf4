"""Input sandbox did not write itself (bundles from CI runners, records of a
shared store, files a cell's agent left): JSON read within size and depth
limits, and folder trees taken only as plain folders and regular files.

A symlink, a device, a FIFO or a socket in such a tree is refused, never
followed or opened: following one would copy (or publish) a file from outside
the tree, or block on a read. Paths are kept relative to the tree's root, so
nothing outside it is ever read, written, renamed or deleted through them."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError

MAX_DEPTH = 32  # records and bundles nest a handful of levels; a Keras config a few more


class UnsafeInput(SandboxError):
    """Input that sandbox refuses to follow or to parse."""


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects in `data` nest deeper than `limit` (no recursion:
    a hostile document must not exhaust the stack here either)."""
    todo: list[tuple[Any, int]] = [(data, 0)]
    while todo:
        value, level = todo.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if level >= limit:
            return True
        todo.extend((child, level + 1) for child in children)
    return False


def parse_json(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """JSON nested at most `limit` deep; ValueError (one line) otherwise."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if too_deep(data, limit):
        raise ValueError(f"nested deeper than {limit} levels")
    return data


def read_json(path: Path, max_bytes: int, limit: int = MAX_DEPTH) -> Any:
    """A regular file of at most `max_bytes` holding JSON nested at most
    `limit` deep. FileNotFoundError passes through; anything else is ValueError."""
    info = os.stat(path, follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file")
    if info.st_size > max_bytes:
        raise ValueError(f"larger than {max_bytes >> 20} MiB")
    with open(path, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ValueError(f"larger than {max_bytes >> 20} MiB")
    return parse_json(raw, limit)


def regular_files(root: Path, single: bool = False) -> list[str]:
    """Every file below `root` as sorted POSIX paths relative to it; UnsafeInput
    for anything in the tree that is not a folder or a regular file, or a root
    that is not a folder; with `single`, for a file with other hard links too
    (an unpacked archive can link a file from outside the tree)."""
    return sorted(name for name, is_dir in _tree(root, single) if not is_dir)


def _tree(root: Path, single: bool = False) -> list[tuple[str, bool]]:
    """(path relative to `root`, is a folder) for everything below `root`."""
    if not stat.S_ISDIR(os.stat(root, follow_symlinks=False).st_mode):
        raise UnsafeInput(f"{root}: not a folder (a symlink or a file); refusing it")
    found, todo = [], [root]
    while todo:
        folder = todo.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                mode = entry.stat(follow_symlinks=False).st_mode
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    raise UnsafeInput(f"{entry.path}: {_kind(mode)}; refusing to follow or read it "
                                      "(only folders and regular files are taken)")
                if single and stat.S_ISREG(mode) and entry.stat(follow_symlinks=False).st_nlink > 1:
                    raise UnsafeInput(f"{entry.path}: a file with other hard links; refusing it (it may be a "
                                      "file from outside, linked in)")
                found.append((Path(entry.path).relative_to(root).as_posix(), stat.S_ISDIR(mode)))
                if stat.S_ISDIR(mode):
                    todo.append(Path(entry.path))
    return found


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def copy(src: Path, dst: Path) -> None:
    """Copy a regular file or a plain folder tree (UnsafeInput for a symlink,
    device, FIFO or socket anywhere in it); the copy holds only regular files."""
    mode = os.stat(src, follow_symlinks=False).st_mode
    dst.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISREG(mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
        return
    if not stat.S_ISDIR(mode):
        raise UnsafeInput(f"{src}: {_kind(mode)}; refusing to follow or read it (only folders and regular files are taken)")
    dst.mkdir(exist_ok=True)
    for name, is_dir in sorted(_tree(src)):
        if is_dir:
            (dst / name).mkdir(parents=True, exist_ok=True)
        else:
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, dst / name, follow_symlinks=False)
