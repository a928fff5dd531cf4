"""Who raised an exception: our own code (a harness error) or the library it
drives (TensorFlow, Keras, numpy, h5py: a finding), and where.

Decided by the frame that raised it, never by its text: the innermost frame of
the traceback is in one of the harness's files (the agent's modules, a user's
probe module) or in the library's. An exception raised by C code has no frame
of its own, so it counts for the Python frame that called it: a subscript of a
None (or of a protobuf map) in the agent is the agent's.

Python 3.6 syntax, stdlib only.
"""
import os
import sys
from typing import Any, List, Optional, Set

AGENT_DIR = os.path.dirname(os.path.abspath(__file__))
_HARNESS_FILES = set()  # type: Set[str]  # user probe modules (the agent's own files: AGENT_DIR)
_PACKAGE_DIRS = ("site-packages", "dist-packages")


def add_harness_file(path: str) -> None:
    """A user's probe module: its code is part of the harness too."""
    _HARNESS_FILES.add(os.path.abspath(path))


def _frames(e: BaseException) -> List[Any]:
    """The traceback's frames, outermost first."""
    frames = []
    tb = e.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _ours(filename: str) -> bool:
    path = os.path.abspath(filename)
    return os.path.dirname(path) == AGENT_DIR or path in _HARNESS_FILES


def is_harness(e: BaseException) -> bool:
    """Raised by the harness's own code (a bug of ours), not by the library."""
    if type(e).__module__.startswith("google.protobuf"):
        return False  # a model file protobuf cannot parse (its C++ parser raises from our call: no frame of its own)
    frames = _frames(e)
    return bool(frames) and _ours(frames[-1][0].f_code.co_filename)


def where(filename: str) -> str:
    """A file as a reader knows it, without local folders: "agent/loaders.py",
    "tensorflow/python/keras/engine/input_layer.py", "json/decoder.py"."""
    path = os.path.abspath(filename)
    if os.path.dirname(path) == AGENT_DIR:
        return "agent/" + os.path.basename(path)
    parts = path.split(os.sep)
    for marker in _PACKAGE_DIRS:
        if marker in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(marker):])
    for i in range(len(parts) - 2, -1, -1):  # the standard library: lib/python3.11/json/decoder.py
        if parts[i].startswith("python") and i > 0 and parts[i - 1] == "lib":
            return "/".join(parts[i + 1:])
    return os.path.basename(path)


def raised_in(e: BaseException) -> Optional[str]:
    """The innermost frame: "agent/loaders.py:74 in tf2_load"."""
    frames = _frames(e)
    if not frames:
        return None
    frame, line = frames[-1]
    return "%s:%d in %s" % (where(frame.f_code.co_filename), line, frame.f_code.co_name)


def raised_by(e: BaseException) -> Optional[str]:
    """The library object at work where it was raised: the innermost library
    frame that is a method ("InputLayer.__init__", "MultiHeadAttention.from_config")."""
    for frame, _line in reversed(_frames(e)):
        if _ours(frame.f_code.co_filename):
            continue
        owner = _owner(frame)
        if owner is not None:
            return "%s.%s" % (owner, frame.f_code.co_name)
    return None


def _owner(frame: Any) -> Optional[str]:
    """The class of a method frame's `self` (or a classmethod's `cls`), unless it is ours."""
    code = frame.f_code
    first = code.co_varnames[0] if code.co_argcount else None
    value = frame.f_locals.get(first) if first in ("self", "cls") else None
    if value is None:
        return None
    cls = value if first == "cls" and isinstance(value, type) else type(value)
    module = sys.modules.get(getattr(cls, "__module__", None) or "")
    source = getattr(module, "__file__", None)
    return None if source and _ours(source) else cls.__name__


def describe(e: BaseException) -> dict:
    """The fields a record carries about an exception's origin."""
    return {"raised_in": raised_in(e), "raised_by": None if is_harness(e) else raised_by(e)}
