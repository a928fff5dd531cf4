"""What a Keras file (.keras zip or .h5) says about itself, read without
Keras: the format, the Keras that wrote it, and the classes its config names
(with their modules where the format records them)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError


@dataclass(frozen=True)
class KerasInfo:
    format: str  # "keras_v3" | "keras_h5"
    keras_version: str | None  # as the file records it ("3.9.0", "2.12.0", "2.2.4-tf")
    model_class: str  # "Functional", "Sequential", "Model"
    layers: tuple[str, ...]  # class names of the layers, sorted
    modules: tuple[str, ...]  # modules named by the config ("keras.src.models.functional"), sorted
    # per layer class, every key its configs in the file set: (("Dense", ("activation", "name", ...)), ...)
    config_keys: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def writer_major(self) -> int:
        """3 for Keras 3 files: the version says so, or the config names keras.src modules."""
        if self.keras_version and self.keras_version.split(".")[0].isdigit():
            return int(self.keras_version.split(".")[0])
        return 3 if any(m.startswith("keras.src.") for m in self.modules) else 2


def read(path: Path) -> KerasInfo:
    if path.suffix == ".keras":
        return _from_config("keras_v3", *_zip_config(path))
    if path.suffix in (".h5", ".hdf5"):
        return _from_config("keras_h5", *_h5_config(path))
    raise SandboxError(f"{path}: not a Keras file (.keras, .h5)")


def _zip_config(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            meta = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise SandboxError(f"{path}: not a readable .keras file: {exc}") from None
    return config, meta.get("keras_version")


def _h5_config(path: Path) -> tuple[dict[str, Any], str | None]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
    except OSError as exc:
        raise SandboxError(f"{path}: not a readable HDF5 file: {exc}") from None
    if raw is None:
        raise SandboxError(f"{path}: an HDF5 file without a Keras model_config (weights only?)")
    try:
        return json.loads(_text(raw)), _text(version) if version is not None else None
    except ValueError as exc:
        raise SandboxError(f"{path}: its model_config is not JSON: {exc}") from None


def _text(value: Any) -> str:
    """h5py returns attributes as str or bytes, by how they were written."""
    return value.decode() if isinstance(value, bytes) else str(value)


MODELS = ("Functional", "Sequential", "Model")


def _from_config(fmt: str, config: dict[str, Any], version: str | None) -> KerasInfo:
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
                     tuple((c, tuple(sorted(k))) for c, k in sorted(keys.items())))
