"""Presets: chains of blendfx effects and pedalboard plugins saved as hand-editable TOML.

A preset is data, never code: it stores each processor's class name and parameter values, and
loading instantiates only classes from an allow-list (blendfx's effect registry and pedalboard's
built-in plugins). Nothing is pickled or evaluated.

File format::

    # subway-lofi: the train's rumble becomes a lofi groove.
    [preset]
    name = "subway-lofi"
    description = "..."

    [chain]
    type = "Chain"

    [[chain.plugins]]
    type = "Blend"
    prompt = "lofi hip hop, mellow keys"

    [[chain.plugins]]
    type = "pedalboard.Reverb"
    room_size = 0.3

Nested Chain/Mix objects nest as ``plugins`` arrays; an effect parameter that holds another
effect (a generator slot) is a sub-table with its own ``type``.
"""

from __future__ import annotations

import os
from enum import Enum
from importlib.resources import files
from pathlib import Path
from typing import Any

import pedalboard
import tomli_w

from .chain import PluginContainer
from .effect import EFFECT_REGISTRY, Effect, is_native_plugin, native_params
from .errors import ParameterError, PresetError
from .files import MAX_TOML_DEPTH, atomic_write_text, read_toml

__all__ = [
    "processor_to_dict",
    "processor_from_dict",
    "save_preset",
    "load_preset",
    "read_preset",
    "list_factory_presets",
    "factory_preset_path",
    "NATIVE_PLUGINS",
]

#: pedalboard plugins a preset may name (their parameters are plain numbers, booleans and
#: enums). Plugins that load external files (VST3/AU, Convolution by path) are left out on
#: purpose: a preset must not reach outside itself.
NATIVE_PLUGINS = (
    "Bitcrush", "Chorus", "Clipping", "Compressor", "Delay", "Distortion", "Gain",
    "GSMFullRateCompressor", "HighpassFilter", "HighShelfFilter", "Invert", "LadderFilter",
    "Limiter", "LowpassFilter", "LowShelfFilter", "MP3Compressor", "NoiseGate", "PeakFilter",
    "Phaser", "PitchShift", "Resample", "Reverb",
)


def _native_class(name: str) -> type:
    if name not in NATIVE_PLUGINS or not hasattr(pedalboard, name):
        raise PresetError(f"pedalboard.{name} is not an allowed preset plugin "
                          f"(allowed: {', '.join(NATIVE_PLUGINS)})")
    return getattr(pedalboard, name)


def processor_to_dict(proc: Any) -> dict[str, Any]:
    """Describe a blendfx effect, a pedalboard plugin or a Chain/Mix as a plain dict."""

    if is_native_plugin(proc):
        name = type(proc).__name__
        _native_class(name)  # refuse to save what could not be loaded
        return {"type": f"pedalboard.{name}", **native_params(proc)}
    if not isinstance(proc, Effect):
        raise PresetError(f"cannot store a {type(proc).__name__} in a preset")
    d: dict[str, Any] = {"type": type(proc).__name__}
    for name, value in proc.param_values().items():
        if value is None:
            continue  # TOML has no null: absent means "default"
        if isinstance(value, Effect) or is_native_plugin(value):
            d[name] = processor_to_dict(value)
        elif isinstance(value, Enum):
            d[name] = value.value
        else:
            d[name] = value
    if isinstance(proc, PluginContainer):
        d["plugins"] = [processor_to_dict(p) for p in proc]
    return d


def processor_from_dict(data: dict[str, Any], where: str = "chain", *, depth: int = 0) -> Any:
    """Build the processor a dict describes; ``where`` names its place in error messages.

    ``depth`` is how deep this dict sits in the outermost one: processors nested more than
    :data:`~blendfx.files.MAX_TOML_DEPTH` deep are a :class:`PresetError`.
    """

    if depth > MAX_TOML_DEPTH:
        raise PresetError(f"{where}: processors nested too deeply (more than {MAX_TOML_DEPTH})")
    if not isinstance(data, dict) or "type" not in data:
        raise PresetError(f"{where}: each processor needs a 'type' key")
    data = dict(data)
    type_name = data.pop("type")
    if not isinstance(type_name, str):
        raise PresetError(f"{where}.type must be a string, got {type_name!r}")
    if type_name.startswith("pedalboard."):
        cls = _native_class(type_name.split(".", 1)[1])
        plugin = cls()
        allowed = native_params(plugin)
        for key, value in data.items():
            if key not in allowed:
                raise PresetError(f"{where}.{key}: pedalboard.{cls.__name__} has no parameter "
                                  f"{key!r} (parameters: {', '.join(sorted(allowed))})")
            current = getattr(plugin, key)
            try:
                if hasattr(type(current), "__members__"):
                    value = type(current).__members__[value]
                setattr(plugin, key, value)
            except (KeyError, TypeError, ValueError) as exc:
                raise PresetError(f"{where}.{key} = {value!r} is not valid for "
                                  f"pedalboard.{cls.__name__}: {exc}") from None
        return plugin
    cls = EFFECT_REGISTRY.get(type_name)
    if cls is None:
        raise PresetError(f"{where}.type = {type_name!r} is not a known effect "
                          f"(known: {', '.join(sorted(EFFECT_REGISTRY))})")
    children = data.pop("plugins", None)
    params = cls.params()
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in params:
            raise PresetError(f"{where}.{key}: {type_name} has no parameter {key!r} "
                              f"(parameters: {', '.join(sorted(params))})")
        if isinstance(value, dict):
            value = processor_from_dict(value, f"{where}.{key}", depth=depth + 1)
        kwargs[key] = value
    try:
        if issubclass(cls, PluginContainer):
            if children is not None and not isinstance(children, list):
                raise PresetError(f"{where}.plugins must be an array of tables")
            items = [processor_from_dict(c, f"{where}.plugins[{i}]", depth=depth + 1)
                     for i, c in enumerate(children or [])]
            return cls(items, **kwargs)
        if children is not None:
            raise PresetError(f"{where}: only Chain and Mix take 'plugins'")
        return cls(**kwargs)
    except ParameterError as exc:
        raise PresetError(f"{where}: {exc}") from None


def read_preset(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a preset file (or a factory preset name) into its TOML dict, without building it."""
    path = _locate(path)
    data = read_toml(path, PresetError, "preset")
    if "chain" not in data:
        raise PresetError(f"{path}: a preset needs a [chain] table")
    return data


def load_preset(path: str | os.PathLike[str]) -> Any:
    """Load a preset file (or a factory preset name such as ``"subway-lofi"``).

    Returns the processor of its ``[chain]`` table (usually a :class:`~blendfx.Chain`).

    Raises
    ------
    PresetError
        Missing file, malformed TOML, unknown class, unknown key or bad value (the message names
        the key, e.g. ``chain.plugins[1].room_size``).
    """
    return processor_from_dict(read_preset(path)["chain"], "chain")


def save_preset(processor: Any, path: str | os.PathLike[str], *, name: str | None = None,
                description: str = "") -> Path:
    """Write ``processor`` (an effect, a plugin or a Chain) as a TOML preset, atomically."""

    path = Path(path)
    doc: dict[str, Any] = {"preset": {"name": name or path.stem, "description": description},
                           "chain": processor_to_dict(processor)}
    header = f"# {name or path.stem}: {description}\n" if description else ""
    atomic_write_text(path, header + tomli_w.dumps(doc))
    return path


def _factory_dir() -> Path:
    return Path(str(files("blendfx.factory_presets")))


def list_factory_presets() -> list[str]:
    """Names of the presets shipped with blendfx."""
    return sorted(p.stem for p in _factory_dir().glob("*.toml"))


def factory_preset_path(name: str) -> Path:
    """Path of a shipped preset by name; :class:`PresetError` naming the choices if unknown."""
    path = _factory_dir() / f"{name}.toml"
    if not path.is_file():
        raise PresetError(f"unknown preset {name!r} (factory presets: "
                          f"{', '.join(list_factory_presets()) or 'none'})")
    return path


def _locate(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.suffix != ".toml" and not p.exists() and os.sep not in str(path):
        return factory_preset_path(str(path))
    if not p.is_file():
        raise PresetError(f"preset file not found: {p}")
    return p
