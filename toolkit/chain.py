"""``Chain`` (in series) and ``Mix`` (in parallel) for blendfx effects and pedalboard plugins.

pedalboard's own ``Pedalboard``/``Chain``/``Mix`` accept only native plugins. These containers
accept both, nest, and behave like a Python list (``None`` is an empty slot that passes audio
through, as in pedalboard). Each run of consecutive native plugins is handed to pedalboard as one
``pedalboard.Pedalboard``, so that stretch runs in C++ with the GIL released and keeps
pedalboard's latency compensation.

Threads: pedalboard locks every plugin of a ``process`` call (its C++ mutex, taken in address
order) and resets them inside that lock; the mutex is not reachable from Python, and a plugin's
``reset()`` called from Python takes no lock. So blendfx never resets a native plugin from
Python while processing: ``reset=True`` reaches the plugins through pedalboard's own ``process``.
An explicit :meth:`PluginContainer.reset` holds :func:`native_lock` of the plugins it resets,
which every native run of blendfx holds too, so it never runs inside another thread's
processing. blendfx effects and containers hold their own lock (see
:class:`~blendfx.effect.Effect`). Two chains sharing plugins, run from two threads, give the
outputs they give one after the other.

Streaming: a container remembers the previous chunk's layout like pedalboard (a ``(2, 2)`` or
``(2, 1)`` chunk after stereo chunks stays stereo) and hands its children ``(channels,
samples)`` audio that is never re-guessed, so chunks of any size equal one whole call.

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

import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, MutableSequence
from typing import Any, overload

import numpy as np
import pedalboard

from .buffers import fit_channels, fit_length
from .effect import (
    Effect,
    SidechainArg,
    check_buffer_size,
    check_reset,
    is_native_plugin,
    is_processor,
    native_params,
)
from .errors import ParameterTypeError

__all__ = ["Chain", "Mix", "PluginContainer", "native_lock", "run_native"]


def _check_item(item: Any, owner: str) -> Any:
    if item is not None and not is_processor(item):
        raise ParameterTypeError(
            f"a {owner} holds blendfx effects, pedalboard plugins or None, not "
            f"{type(item).__name__}")
    return item


def _check_items(items: Any, owner: str) -> list[Any]:
    # Any iterable of plugins, as pedalboard's (a container counts as the list of its plugins).
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise ParameterTypeError(f"a {owner} takes a list of plugins, not {type(items).__name__}")
    return [_check_item(p, owner) for p in items]


def _same_processor(a: Any, b: Any) -> bool:
    """Equal effects, or native plugins of one type with equal parameters (pedalboard's plugins
    compare by identity)."""
    if is_native_plugin(a) and is_native_plugin(b):
        return type(a) is type(b) and native_params(a) == native_params(b)
    return a == b


# -- native plugins and threads ------------------------------------------------------------------
_native_locks: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_native_locks_guard = threading.Lock()


def _native_family(plugins: Iterable[Any]) -> list[Any]:
    """The native plugins given and every plugin inside the native containers among them, in
    one global order (by id)."""
    out: dict[int, Any] = {}
    todo = [p for p in plugins if is_native_plugin(p)]
    while todo:
        p = todo.pop()
        if id(p) not in out:
            out[id(p)] = p
            if isinstance(p, pedalboard.PluginContainer):
                todo.extend(c for c in p if c is not None)
    return [out[k] for k in sorted(out)]


def _lock_of(plugin: Any) -> threading.RLock:
    lock = _native_locks.get(plugin)
    if lock is None:
        with _native_locks_guard:
            lock = _native_locks.get(plugin)
            if lock is None:
                lock = _native_locks[plugin] = threading.RLock()
    return lock


class _HeldNatives:
    """The context manager :func:`native_lock` returns."""

    __slots__ = ("_locks",)

    def __init__(self, locks: list[threading.RLock]) -> None:
        self._locks = locks

    def __enter__(self) -> None:
        taken = []
        try:
            for lock in self._locks:
                lock.acquire()
                taken.append(lock)
        except BaseException:
            for lock in reversed(taken):
                lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        for lock in reversed(self._locks):
            lock.release()


def native_lock(*plugins: Any) -> _HeldNatives:
    """Hold blendfx's lock of each native plugin given (and of the plugins inside native
    containers), taken in one global order so that two holders never deadlock.

    pedalboard's own per-plugin mutex is not reachable from Python, and its ``reset()`` and
    parameter setters take none. Every native run of blendfx (:func:`run_native`, the containers)
    and :meth:`PluginContainer.reset` hold this lock, so a thread can change a shared plugin's
    parameters or reset it without landing inside another thread's blendfx call::

        with native_lock(reverb):
            reverb.room_size = 0.8

    Do not process through a container while holding it: the container takes its own lock
    first, then this one.
    """
    return _HeldNatives([_lock_of(p) for p in _native_family(plugins)])


def run_native(plugins: Any, audio: np.ndarray, sample_rate: float, buffer_size: int = 8192,
               reset: bool = True) -> np.ndarray:
    """Process ``(channels, samples)`` audio through pedalboard plugins in series.

    The plugins run as one fresh ``pedalboard.Pedalboard`` (pedalboard locks them all for the
    call and, with ``reset``, resets them inside that lock), under :func:`native_lock`. The layout
    is never guessed: mono goes as a 1-D array, and a chunk with no more samples than channels
    is preceded by an empty ``(channels, 0)`` call that shows pedalboard the layout (it then
    reads the chunk as the previous call's, as in a stream) instead of padding the chunk, which
    would feed extra samples into the plugins' state.

    Parameters
    ----------
    plugins : pedalboard.Plugin or list of pedalboard.Plugin
        One plugin or a run of them (``None`` entries are skipped).
    audio : np.ndarray
        ``(channels, samples)`` float32.
    sample_rate : float
        Sample rate in Hz.
    buffer_size : int
        Samples per block inside pedalboard.
    reset : bool
        Reset the plugins first (True) or continue a stream (False).

    Returns
    -------
    np.ndarray
        ``(channels, samples')`` float32.
    """
    natives = [plugins] if is_native_plugin(plugins) else [p for p in plugins if p is not None]
    audio = np.asarray(audio, dtype=np.float32)
    channels, n = audio.shape
    if not natives or n == 0:
        return audio.copy()
    board = pedalboard.Pedalboard(natives)  # fresh: no layout remembered from other calls
    with native_lock(*natives):
        if channels == 1:
            out = board.process(np.ascontiguousarray(audio[0]), sample_rate,
                                buffer_size=buffer_size, reset=reset)
        else:
            if n <= channels:
                board.process(np.zeros((channels, 0), np.float32), sample_rate,
                              buffer_size=buffer_size, reset=False)
            out = board.process(np.ascontiguousarray(audio), sample_rate,
                                buffer_size=buffer_size, reset=reset)
    out = np.asarray(out, dtype=np.float32)
    return out[None, :] if out.ndim == 1 else out


# -- containers ------------------------------------------------------------------------------------
class PluginContainer(Effect, MutableSequence):
    """List behaviour shared by Chain and Mix.

    List operations hold the container's lock, as pedalboard's containers hold their mutex: a
    change waits for a call in progress on another thread.
    """

    registered = False

    def __init__(self, plugins: Iterable[Any] | None = None, **params: Any) -> None:
        items = [] if plugins is None else _check_items(plugins, type(self).__name__)
        object.__setattr__(self, "_plugins", items)
        super().__init__(**params)

    # MutableSequence ------------------------------------------------------------------------
    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index):
        with self._lock:
            return self._plugins[index]

    def __setitem__(self, index, value) -> None:
        owner = type(self).__name__
        value = _check_items(value, owner) if isinstance(index, slice) else _check_item(value, owner)
        with self._lock:
            self._plugins[index] = value

    def __delitem__(self, index) -> None:
        with self._lock:
            del self._plugins[index]

    def __len__(self) -> int:
        with self._lock:
            return len(self._plugins)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.plugins)

    def insert(self, index: int, value: Any) -> None:
        _check_item(value, type(self).__name__)
        with self._lock:
            self._plugins.insert(index, value)

    @property
    def plugins(self) -> list[Any]:
        """The contained effects and plugins (a copy; ``None`` for an empty slot)."""
        with self._lock:
            return list(self._plugins)

    # Effect ---------------------------------------------------------------------------------
    @property
    def supports_streaming(self) -> bool:  # type: ignore[override]
        return all(getattr(p, "supports_streaming", True) for p in self.plugins)

    @property
    def uses_sidechain(self) -> bool:  # type: ignore[override]
        return any(getattr(p, "uses_sidechain", False) for p in self.plugins)

    def reset(self) -> None:
        """Reset this container and everything in it (native plugins under :func:`native_lock`)."""
        super().reset()
        items = [p for p in self.__dict__.get("_plugins", []) if p is not None]
        natives = [p for p in items if is_native_plugin(p)]
        for p in items:
            if not is_native_plugin(p):
                p.reset()
        with native_lock(*natives):
            for p in natives:
                p.reset()

    def _reset_state(self) -> None:
        # process(..., reset=True) resets the children through their own calls (pedalboard's
        # inside its lock); here only the container's own state.
        Effect.reset(self)

    @Effect.device.setter
    def device(self, value: str) -> None:
        Effect.device.fset(self, value)
        for p in self.plugins:
            if isinstance(p, Effect):
                p.device = value

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = self.plugins, other.plugins  # type: ignore[attr-defined]
        return (self.param_values() == other.param_values()  # type: ignore[attr-defined]
                and len(mine) == len(theirs)
                and all(map(_same_processor, mine, theirs)))

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        items = self.plugins
        inner = ", ".join(repr(p) for p in items)
        s = "" if len(items) == 1 else "s"
        return f"<{type(self).__name__} with {len(items)} plugin{s}: [{inner}]>"

    def process_channels_first(self, audio: np.ndarray, sample_rate: float,
                               buffer_size: int = 8192, reset: bool = True, *,
                               sidechain: SidechainArg = None) -> np.ndarray:
        # Keep buffer_size and the key signals for the children; the base class validates,
        # locks and calls _process.
        with self._lock:
            object.__setattr__(self, "_buffer_size", check_buffer_size(buffer_size))
            object.__setattr__(self, "_reset_children", check_reset(reset))
            object.__setattr__(self, "_keys_arg", sidechain)
            return super().process_channels_first(audio, sample_rate, buffer_size, reset,
                                                  sidechain=None)

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
        if item is None:
            return audio
        if isinstance(item, PluginContainer):
            return item.process_channels_first(audio, sample_rate, self._buffer_size,
                                               self._reset_children, sidechain=keys)
        if isinstance(item, Effect):
            sc = keys if item.uses_sidechain else None
            return item.process_channels_first(audio, sample_rate, self._buffer_size,
                                               self._reset_children, sidechain=sc)
        return run_native(item, audio, sample_rate, self._buffer_size, self._reset_children)


class _Keys(dict):
    """The named signals a top-level container hands down to nested ones."""


class Chain(PluginContainer):
    """Effects and plugins in series: the output of each feeds the next.

    Parameters
    ----------
    plugins : iterable
        blendfx effects, pedalboard plugins, nested Chain/Mix objects, or ``None`` (an empty
        slot that passes audio through).
    """

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        keys = self._keys(audio)
        out = audio
        natives: list[Any] = []
        for item in self._plugins:
            if item is None:
                continue
            if is_native_plugin(item):
                natives.append(item)
                continue
            if natives:
                out = run_native(natives, out, sample_rate, self._buffer_size, self._reset_children)
                natives = []
            out = self._run(item, out, sample_rate, keys)
        if natives:
            out = run_native(natives, out, sample_rate, self._buffer_size, self._reset_children)
        return out


class Mix(PluginContainer):
    """Effects and plugins in parallel: each gets the same input; their outputs are summed.

    Outputs of different lengths are zero-padded to the longest; mono outputs are spread over
    the widest channel count. A ``None`` branch passes the input through (it is summed in dry).
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
