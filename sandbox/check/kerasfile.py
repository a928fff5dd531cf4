"""What a Keras file (.keras zip or .h5) says about itself, read without
Keras: the format, the Keras that wrote it, and the classes its config names
(with their modules where the format records them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import untrusted
from sandbox.agent import kerascode
from sandbox.check import limits
from sandbox.errors import SandboxError

CONFIG_DEPTH = 200  # a config nests models in models; JSON deeper than this is not a Keras config
MIN_CONFIG_LIMIT, CONFIG_PER_BYTE = 8 << 20, 16  # config.json read: at most 16 x the file (and 8 MiB at least)


@dataclass(frozen=True)
class KerasInfo:
    format: str  # "keras_v3" | "keras_h5"
    keras_version: str | None  # as the file records it ("3.9.0", "2.12.0", "2.2.4-tf")
    model_class: str  # "Functional", "Sequential", "Model"
    layers: tuple[str, ...]  # class names of the layers, sorted
    modules: tuple[str, ...]  # modules named by the config ("keras.src.models.functional"), sorted
    code: tuple[str, ...] = ()  # what of the config carries code (sandbox.agent.kerascode): Lambda layers...
    # per layer class, every key its configs in the file set: (("Dense", ("activation", "name", ...)), ...)
    config_keys: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def writer_major(self) -> int:
        """3 for Keras 3 files: the version says so, or the config names keras.src modules."""
        if self.keras_version and self.keras_version.split(".")[0].isdigit():
            return int(self.keras_version.split(".")[0])
        return 3 if any(m.startswith("keras.src.") for m in self.modules) else 2


def read(path: Path, max_bytes: int = limits.DEFAULT_MAX_BYTES) -> KerasInfo:
    """A .keras or .h5 file's config; a one-line SandboxError for a file over
    `max_bytes`, one whose config would take more than a small multiple of
    the file to read (a zip bomb), or one that is not a Keras file."""
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise SandboxError(f"{path}: not a Keras file (.keras, .h5)")
    size = os.path.getsize(path)
    limits.check_size(path, size, max_bytes)
    limit = min(kerascode.MAX_CONFIG, max(MIN_CONFIG_LIMIT, CONFIG_PER_BYTE * size))
    try:
        text = kerascode.config_text(str(path), limit)
    except ValueError as exc:
        raise SandboxError(f"{path}: {exc}") from None
    if text is None:
        what = "a .keras zip without config.json" if path.suffix == ".keras" else \
            "an HDF5 file without a Keras model_config (weights only?)"
        raise SandboxError(f"{path}: {what}")
    try:
        config = untrusted.parse_json(text, CONFIG_DEPTH)
    except ValueError as exc:
        raise SandboxError(f"{path}: its config is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise SandboxError(f"{path}: its config is not a JSON object")
    fmt = "keras_v3" if path.suffix == ".keras" else "keras_h5"
    return _from_config(fmt, config, _version(path, fmt), tuple(kerascode.carried(text)))


def _version(path: Path, fmt: str) -> str | None:
    """The Keras version the file records (metadata.json, or the keras_version attr)."""
    try:
        if fmt == "keras_v3":
            meta = kerascode.zip_member(str(path), "metadata.json", 1 << 20)
            found = untrusted.parse_json(meta).get("keras_version") if meta else None
        else:
            import h5py
            with h5py.File(path, "r") as f:
                found = f.attrs.get("keras_version")
    except (ValueError, OSError, AttributeError):
        return None
    return _text(found) if found is not None else None


def _text(value: Any) -> str:
    """h5py returns attributes as str or bytes, by how they were written."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


MODELS = ("Functional", "Sequential", "Model")


def _from_config(fmt: str, config: dict[str, Any], version: str | None, code: tuple[str, ...]) -> KerasInfo:
    layers: set[str] = set()
    modules: set[str] = set()
    keys: dict[str, set[str]] = {}

    def walk(model: dict[str, Any]) -> None:
        if isinstance(model.get("module"), str):
            modules.add(model["module"])
        inner = model.get("config")
        found = inner.get("layers", []) if isinstance(inner, dict) else inner if isinstance(inner, list) else []
        for layer in found:
            if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
                continue
            if layer["class_name"] in MODELS:
                walk(layer)
            else:
                layers.add(layer["class_name"])
                if isinstance(layer.get("module"), str):
                    modules.add(layer["module"])
                if isinstance(layer.get("config"), dict):
                    keys.setdefault(layer["class_name"], set()).update(str(k) for k in layer["config"])

    walk(config)
    return KerasInfo(fmt, version, str(config.get("class_name", "?")), tuple(sorted(layers)), tuple(sorted(modules)),
                     code, tuple((c, tuple(sorted(k))) for c, k in sorted(keys.items())))
