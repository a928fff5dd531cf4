"""A stand-in `tensorflow` wheel (a few lines of Python, no TF) and a venv cell
that installs it offline, for tests of how cached environments are built,
shared and repaired with real uv and real virtualenvs. Also a script:
`python fake_tf.py WHEELS LOG` provisions that cell and prints `reused`."""

from __future__ import annotations

import base64
import datetime
import hashlib
import sys
import zipfile
from pathlib import Path

from sandbox import matrix, plan
from sandbox.pythons import Interpreter
from sandbox.versions import Resolved

VERSION = "9.9.9"


def wheel(folder: Path, poison: Path) -> Path:
    """A wheel of `tensorflow` VERSION whose import fails while `poison` exists
    (and hangs while slow(poison) does)."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"tensorflow-{VERSION}.dist-info"
    files = {
        "tensorflow/__init__.py": (f"import os, time\nif os.path.exists({str(poison)!r}):\n"
                                   "    raise ImportError('poisoned for the test')\n"
                                   f"if os.path.exists({str(slow(poison))!r}):\n"
                                   f"    open({str(started(poison))!r}, 'w').write(str(os.getpid()))\n"
                                   "    time.sleep(600)\n"
                                   f"__version__ = {VERSION!r}\n"
                                   "class test:\n    @staticmethod\n    def is_gpu_available():\n        return False\n"),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: tensorflow\nVersion: {VERSION}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: fake_tf\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},sha256={_digest(text)},{len(text.encode())}" for name, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    path = folder / f"tensorflow-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def slow(poison: Path) -> Path:
    """While this file exists, the wheel's import writes its pid to started() and hangs."""
    return poison.with_name(poison.name + ".slow")


def started(poison: Path) -> Path:
    return poison.with_name(poison.name + ".started")


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def cell(wheels: Path) -> plan.Cell:
    """A venv cell on this Python that installs the fake TF from `wheels` only."""
    request = matrix.CellRequest(VERSION, "3.11", "cpu", "venv")
    me = Interpreter(Path(sys.executable), sys.version_info[:3], "x86_64", "PATH")
    release = Resolved("tensorflow", VERSION, datetime.datetime(2020, 1, 1))
    return plan.Cell(f"tf{VERSION}-py3.11-cpu", request, "cpu", "venv", me, release,
                     install_args=("--no-index", "--find-links", str(wheels)))


if __name__ == "__main__":
    from sandbox.envs import venv
    found = venv.VenvEnvironment(cell(Path(sys.argv[1]))).provision(Path(sys.argv[2]))
    print("reused" if found.reused else "built")
