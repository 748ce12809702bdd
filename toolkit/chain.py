"""``Chain`` (in series) and ``Mix`` (in parallel) for blendfx effects and pedalboard plugins.

pedalboard's own ``Pedalboard``/``Chain``/``Mix`` accept only native plugins. These containers
accept both, nest, and behave like a Python list. Each run of consecutive native plugins is
handed to pedalboard as one ``pedalboard.Pedalboard``, so that stretch runs in C++ with the GIL
released and keeps pedalboard's latency compensation.

Sidechains: ``chain(noise, sr)`` lets every effect inside that uses a sidechain read the chain's
input (the dry signal), so ``Chain([Composer(), AdaptiveAmplifier()])`` on a noise amplifies the
composed music against that noise without any array threading. ``chain(x, sr,
sidechain={"ref": ref})`` makes named signals available to effects whose ``sidechain_key`` names
them.

Examples
--------
>>> import numpy as np, pedalboard
>>> from blendfx import Chain
>>> from blendfx.effects import Utility
>>> chain = Chain([pedalboard.HighpassFilter(80), Utility(gain_db=-6), pedalboard.Reverb()])
>>> out = chain(np.zeros(44100, np.float32), 44100)
>>> len(chain), type(chain[-1]).__name__
(3, 'Reverb')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableSequence
from typing import Any, overload

import numpy as np
import pedalboard

from .buffers import fit_channels, fit_length
from .effect import Effect, SidechainArg, is_native_plugin, is_processor, native_params
from .errors import ParameterError

__all__ = ["Chain", "Mix", "PluginContainer"]


def _check_item(item: Any) -> Any:
    if not is_processor(item):
        raise ParameterError(
            f"a Chain holds blendfx effects and pedalboard plugins, not {type(item).__name__}")
    return item


def _same_processor(a: Any, b: Any) -> bool:
    """Equal effects, or native plugins of one type with equal parameters (pedalboard's plugins
    compare by identity)."""
    if is_native_plugin(a) and is_native_plugin(b):
        return type(a) is type(b) and native_params(a) == native_params(b)
    return a == b


class PluginContainer(Effect, MutableSequence):
    """List behaviour shared by Chain and Mix."""

    registered = False

    def __init__(self, plugins: Iterable[Any] | None = None, **params: Any) -> None:
        object.__setattr__(self, "_plugins", [_check_item(p) for p in (plugins or [])])
        super().__init__(**params)

    # MutableSequence ------------------------------------------------------------------------
    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index):
        return self._plugins[index]

    def __setitem__(self, index, value) -> None:
        if isinstance(index, slice):
            value = [_check_item(v) for v in value]
        else:
            _check_item(value)
        self._plugins[index] = value

    def __delitem__(self, index) -> None:
        del self._plugins[index]

    def __len__(self) -> int:
        return len(self._plugins)

    def insert(self, index: int, value: Any) -> None:
        self._plugins.insert(index, _check_item(value))

    @property
    def plugins(self) -> list[Any]:
        """The contained effects and plugins (a copy)."""
        return list(self._plugins)

    # Effect ---------------------------------------------------------------------------------
    @property
    def supports_streaming(self) -> bool:  # type: ignore[override]
        return all(getattr(p, "supports_streaming", True) for p in self._plugins)

    @property
    def uses_sidechain(self) -> bool:  # type: ignore[override]
        return any(getattr(p, "uses_sidechain", False) for p in self._plugins)

    def reset(self) -> None:
        super().reset()
        for p in getattr(self, "_plugins", []):
            p.reset()

    @Effect.device.setter
    def device(self, value: str) -> None:
        Effect.device.fset(self, value)
        for p in self._plugins:
            if isinstance(p, Effect):
                p.device = value

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.param_values() == other.param_values()  # type: ignore[attr-defined]
                and len(self) == len(other)  # type: ignore[arg-type]
                and all(map(_same_processor, self, other)))  # type: ignore[call-overload]

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        inner = ", ".join(repr(p) for p in self._plugins)
        return f"{type(self).__name__}([{inner}])"

    def process(self, input_array: np.ndarray, sample_rate: float, buffer_size: int = 8192,
                reset: bool = True, *, sidechain: SidechainArg = None) -> np.ndarray:
        # Keep buffer_size and the key signals for the children; the base class does layout,
        # validation and locking.
        with self._lock:
            object.__setattr__(self, "_buffer_size", int(buffer_size))
            object.__setattr__(self, "_reset_children", bool(reset))
            object.__setattr__(self, "_keys_arg", sidechain)
            return super().process(input_array, sample_rate, buffer_size, reset, sidechain=None)

    __call__ = process

    def _keys(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        arg = self._keys_arg
        if isinstance(arg, _Keys):  # handed down from an enclosing container
            return arg
        keys = _Keys(input=audio)
        if isinstance(arg, Mapping):
            keys.update(arg)
        elif arg is not None:
            keys["sidechain"] = arg
        return keys

    def _run(self, item: Any, audio: np.ndarray, sample_rate: float,
             keys: dict[str, np.ndarray]) -> np.ndarray:
        if isinstance(item, PluginContainer):
            return item.process(audio, sample_rate, self._buffer_size, self._reset_children,
                                sidechain=keys)
        if isinstance(item, Effect):
            sc = keys if item.uses_sidechain else None
            return item.process(audio, sample_rate, self._buffer_size, self._reset_children,
                                sidechain=sc)
        return run_native(item, audio, sample_rate, self._buffer_size, self._reset_children)


class _Keys(dict):
    """The named signals a top-level container hands down to nested ones."""


def run_native(plugin: Any, audio: np.ndarray, sample_rate: float, buffer_size: int,
                reset: bool) -> np.ndarray:
    # pedalboard guesses the layout from the smaller dimension: keep more samples than channels.
    channels, n = audio.shape
    padded = fit_length(audio, channels + 1) if n <= channels else audio
    out = plugin.process(np.ascontiguousarray(padded), sample_rate, buffer_size=buffer_size,
                         reset=reset)
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 1:
        out = out[None, :]
    return out[:, :n] if n <= channels else out


class Chain(PluginContainer):
    """Effects and plugins in series: the output of each feeds the next.

    Parameters
    ----------
    plugins : iterable
        blendfx effects, pedalboard plugins, or nested Chain/Mix objects.
    """

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        keys = self._keys(audio)
        out = audio
        natives: list[Any] = []
        for item in [*self._plugins, None]:
            if item is not None and is_native_plugin(item):
                natives.append(item)
                continue
            if natives:
                board = natives[0] if len(natives) == 1 else pedalboard.Pedalboard(natives)
                out = run_native(board, out, sample_rate, self._buffer_size,
                                  self._reset_children)
                natives = []
            if item is not None:
                out = self._run(item, out, sample_rate, keys)
        return out


class Mix(PluginContainer):
    """Effects and plugins in parallel: each gets the same input; their outputs are summed.

    Outputs of different lengths are zero-padded to the longest; mono outputs are spread over
    the widest channel count.
    """

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        if not self._plugins:
            return audio
        keys = self._keys(audio)
        outs = [self._run(item, audio, sample_rate, keys) for item in self._plugins]
        n = max(o.shape[1] for o in outs)
        c = max(o.shape[0] for o in outs)
        return np.sum([fit_channels(fit_length(o, n), c) for o in outs], axis=0)
