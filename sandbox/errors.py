"""The error taxonomy. Only the CLI turns these into messages and exit codes."""

from __future__ import annotations


class SandboxError(Exception):
    """A problem the user can act on: printed as one line, no traceback."""

    exit_code = 2


class ConfigError(SandboxError):
    """`matrix.toml` (or another input file) is malformed."""


class CommandFailed(SandboxError):
    """A subprocess exited non-zero or timed out."""

    exit_code = 3

    def __init__(self, command: list[str], returncode: int | None, output_tail: str, log: str | None,
                 *, interrupted: bool = False) -> None:
        self.command = command
        self.returncode = returncode
        self.output_tail = output_tail
        self.log = log
        self.interrupted = interrupted  # stopped by commands.stop_all (Ctrl-C, SIGTERM), not by itself
        what = "was interrupted" if interrupted else "timed out" if returncode is None else f"exited {returncode}"
        where = f" (log: {log})" if log else ""
        super().__init__(f"`{' '.join(command[:4])}{' ...' if len(command) > 4 else ''}` {what}{where}")


class Interrupted(SandboxError):
    """The run is being stopped (Ctrl-C, SIGTERM): no new command or container starts."""

    exit_code = 130


class HarnessError(SandboxError):
    """sandbox itself misbehaved: a bug to report, not a finding."""

    exit_code = 4
