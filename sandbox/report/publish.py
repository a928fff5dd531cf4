"""Publish a report folder: results.json and every rendering of it, written
completely or not at all.

Every file is rendered in memory, then written into a staging folder beside
`out` (same parent, so same file system), then swapped into place with
renames. A reader sees the old report or the new one, never a mix of the two,
and no staging file is left behind, whatever fails.

A folder that holds only a report is replaced whole (files a renderer no
longer writes go with it). A folder that also holds other files (a
results.json re-rendered where the user keeps it) keeps them: only the
report's files are swapped, each old one moved aside first so that a failure
puts every one of them back."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError
from sandbox.report import RENDERERS, document
from sandbox.report.redact import redact

_STAGING_SUFFIX = ".tmp"


def report_files() -> tuple[str, ...]:
    """The files of a report folder."""
    return (document.RESULTS_FILE, *RENDERERS)


def write_report(results: document.ResultsDocument, out: Path, hide: bool = True) -> Path:
    """results.json and every rendering of it, in `out`; returns `out`. Without host
    names and local paths (sandbox.report.redact) unless `hide` is False (--no-redact)."""
    if hide:
        results = redact(results)
    texts = {name: render(results) for name, render in RENDERERS.items()}
    check_writable(out)
    staging = Path(_guard(f"cannot write in {out.parent}",
                          lambda: tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=_STAGING_SUFFIX), out))
    try:
        _guard(f"cannot write the report in {staging}", lambda: _fill(staging, results, texts), out)
        _guard(f"cannot replace the report in {out}", lambda: _swap(staging, out, report_files()), out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def check_writable(out: Path) -> None:
    """Fail now, before a long run, if the report could not be published in `out`."""
    _guard(f"cannot create the reports folder {out.parent}", lambda: out.parent.mkdir(parents=True, exist_ok=True), out)
    if out.exists() and not out.is_dir():
        raise SandboxError(f"{out}: exists and is not a folder; remove it or write the report elsewhere (--reports/--out)")
    probe = Path(_guard(f"cannot write in {out.parent}",
                        lambda: tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=_STAGING_SUFFIX), out))
    probe.rmdir()


def _guard(what: str, action: Callable[[], Any], out: Path) -> Any:
    try:
        return action()
    except OSError as exc:
        why = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        raise SandboxError(f"{what}: {why}{where}; the report in {out} is unchanged. "
                           "Make the folder writable or choose another (--reports/--out)") from None


def _fill(staging: Path, results: document.ResultsDocument, texts: dict[str, str]) -> None:
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide published reports from a web server
    with open(staging / document.RESULTS_FILE, "w", encoding="utf-8") as fh:
        fh.writelines(document.chunks(results))  # as it is encoded: never the whole text in memory
    os.chmod(staging / document.RESULTS_FILE, 0o644)
    for name, text in texts.items():
        with open(staging / name, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(staging / name, 0o644)


def _swap(staging: Path, out: Path, names: tuple[str, ...]) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    own = set(report_files()) | set(names)
    foreign = [p for p in out.iterdir() if p.name not in own and not _is_staging(p, out)]
    if foreign:
        _swap_files(staging, out, names)
    else:
        _swap_folder(staging, out)


def _is_staging(path: Path, out: Path) -> bool:
    """A temporary file an older sandbox (or a crash) left inside the folder."""
    return path.name.startswith(".") and path.name.endswith(_STAGING_SUFFIX)


def _swap_folder(staging: Path, out: Path) -> None:
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old.", suffix=_STAGING_SUFFIX))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _swap_files(staging: Path, out: Path, names: tuple[str, ...]) -> None:
    """Swap the report's files one by one, old ones moved aside into staging;
    on any failure, every file is put back as it was."""
    aside = staging / ".old"
    aside.mkdir()
    for name in names:
        if (out / name).is_dir():
            raise IsADirectoryError(21, "is a folder, not a file", str(out / name))
    done: list[tuple[str, bool]] = []  # (name, had an old file)
    try:
        for name in names:
            existed = (out / name).exists()
            if existed:
                os.rename(out / name, aside / name)
            done.append((name, existed))
            os.rename(staging / name, out / name)
    except OSError:
        for name, existed in reversed(done):
            if existed:
                os.replace(aside / name, out / name)
            else:
                (out / name).unlink(missing_ok=True)
        raise
