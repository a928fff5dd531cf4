"""The code a Keras model file carries, found without Keras: a Lambda layer
(Python bytecode, marshalled into the config: Keras 2's function_type
"lambda", Keras 3's `__lambda__` objects) or an object naming a module
outside Keras and TensorFlow (Keras imports that module to find the class or
function, whatever it is).

Keras' own safe mode does not hold everywhere: Keras 2 accepts `safe_mode`
for .h5 files and ignores it, Keras SavedModels revive Lambda layers, and
older Keras has no safe mode at all. So the agent refuses, in safe mode,
every file whose config carries code, in every Keras and format; the host's
`sandbox check` names what it found. Stdlib only (the host imports this
module too); Python 3.6 syntax.

The config is read as text: the fields are found by a pattern over the JSON
(or over the bytes of a protobuf holding it), each string value decoded as
JSON decodes it, so escapes (`\\u004cambda`) hide nothing and no nesting
depth matters."""
import json
import os
import re
import zipfile
from typing import List, Optional

MAX_CONFIG = 64 << 20  # bytes of config read; a larger one is refused in safe mode
CODE_CLASSES = ("Lambda", "__lambda__")
TRUSTED_MODULES = ("keras", "tf_keras", "tensorflow")
USER_PROBES = "sandbox_user_probes_"  # the agent's own imports of a matrix's probe modules (probes.load_module)
_STRING = r'"((?:[^"\\]|\\.)*)"'
_FIELD = re.compile(r'"(class_name|module|function_type)"\s*:\s*' + _STRING)


class CodeInModel(ValueError):
    """A model whose config carries code, refused in safe mode."""


def _decoded(raw: str) -> str:
    try:
        value = json.loads('"%s"' % raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def trusted(module: str) -> bool:
    return module.startswith(USER_PROBES) or any(module == m or module.startswith(m + ".") for m in TRUSTED_MODULES)


def carried(text: str) -> List[str]:
    """What in a config's text carries code, as sorted descriptions."""
    found = set()
    for match in _FIELD.finditer(text):
        key, value = match.group(1), _decoded(match.group(2))
        if key == "class_name" and value in CODE_CLASSES:
            found.add("a %s object (Python code)" % value if value.startswith("__") else "a %s layer" % value)
        elif key == "function_type" and value == "lambda":
            found.add("a marshalled lambda function")
        elif key == "module" and not trusted(value):
            found.add("an object of module %r (imported to load it)" % value[:100])
    return sorted(found)


def config_text(path: str, limit: int = MAX_CONFIG) -> Optional[str]:
    """The config of a .keras zip (config.json) or an .h5 (model_config). None
    when the file has none; ValueError when it cannot be read within `limit`."""
    if zipfile.is_zipfile(path):
        return zip_member(path, "config.json", limit)
    if path.endswith(".keras"):
        raise ValueError("not a .keras file (not a zip)")
    return _h5_config(path, limit)


def carried_in(path: str) -> List[str]:
    """What the Keras file (or Keras SavedModel folder) at `path` carries of
    code. ValueError when its config cannot be read within MAX_CONFIG."""
    if not os.path.isdir(path):
        return carried(config_text(path) or "")
    found = set()  # type: set
    for name in ("keras_metadata.pb", "saved_model.pb"):  # the layers' JSON: in either, by Keras version
        if os.path.isfile(os.path.join(path, name)):
            found.update(_scan(os.path.join(path, name)))
    return sorted(found)


CHUNK, OVERLAP = 16 << 20, 1 << 20


def _scan(path: str) -> List[str]:
    """carried() over a file of any size, read in overlapping chunks (a field
    is a few hundred bytes: none falls between two chunks)."""
    found = set()
    with open(path, "rb") as fh:
        tail = b""
        while True:
            block = fh.read(CHUNK)
            if not block:
                break
            found.update(carried((tail + block).decode("latin-1")))
            tail = (tail + block)[-OVERLAP:]
    return sorted(found)


def zip_member(path: str, name: str, limit: int) -> Optional[str]:
    """A member of a zip, read only up to `limit` bytes whatever its header says."""
    try:
        with zipfile.ZipFile(path) as archive:
            if name not in archive.namelist():
                return None
            if archive.getinfo(name).file_size > limit:
                raise ValueError("its %s is %d MiB uncompressed, more than %d MiB (a zip bomb?)"
                                 % (name, archive.getinfo(name).file_size >> 20, limit >> 20))
            with archive.open(name) as member:
                data = member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise ValueError("not a readable .keras zip: %s" % e)
    if len(data) > limit:
        raise ValueError("its %s is more than %d MiB uncompressed (a zip bomb?)" % (name, limit >> 20))
    return data.decode("utf-8", "replace")


def _h5_config(path: str, limit: int) -> Optional[str]:
    try:
        import h5py
    except ImportError:
        raise ValueError("h5py is not installed here: the .h5 config cannot be checked")
    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                return None
            # an attribute is stored uncompressed: no larger than the file (h5py 2.x has no get_id)
            size = (f.attrs.get_id("model_config").get_storage_size() if hasattr(f.attrs, "get_id")
                    else os.path.getsize(path))
            if size > limit:
                raise ValueError("its model_config is %d MiB, more than %d MiB" % (size >> 20, limit >> 20))
            raw = f.attrs["model_config"]
    except (OSError, KeyError) as e:
        raise ValueError("not a readable HDF5 file: %s" % e)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def refusal(path: str) -> Optional[CodeInModel]:
    """Why safe mode refuses the Keras file at `path` (it carries code, or its
    config cannot be checked), in every Keras; None when it does not. A bug
    here raises: it is not the model's doing."""
    try:
        found = carried_in(path)
    except (ValueError, OSError) as e:
        return CodeInModel("Requested the deserialization of a model whose config cannot be checked for code "
                           "(%s): refused in safe mode" % e)
    if not found:
        return None
    return CodeInModel("Requested the deserialization of %s: the model carries code, refused in safe mode in "
                       "every Keras and format (safe_mode; a repro spec opts out with keras_safe_mode = false)"
                       % ", ".join(found))
