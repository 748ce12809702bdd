"""The effect protocol: pedalboard's calling convention for Python effects.

pedalboard's ``Plugin`` cannot be subclassed from Python (DESIGN.md section 4), so blendfx
duck-types its interface. An :class:`Effect` subclass implements one method::

    def _process(self, audio, sample_rate, sidechain): ...   # (channels, samples) float32

and gets, from this base class:

- ``process(input_array, sample_rate, buffer_size=8192, reset=True, *, sidechain=None)`` and
  ``__call__``, with pedalboard's layout rules (1-D mono, 2-D either orientation, square raises
  unless an earlier chunk showed the layout, float32 out, zero-length passes through), and
  ``process_channels_first`` for audio already laid out ``(channels, samples)``;
- a lock per instance around processing, ``reset()`` and parameter changes, so an effect shared
  between threads or chains gives each call the output it would give alone;
  integer PCM input is scaled to [-1, 1) as audio libraries read it (int16 16384 -> 0.5;
  :func:`blendfx.buffers.as_float_audio`); float samples beyond +-1e4 (+80 dBFS: a unit
  mistake) are refused; the sample rate must lie in [8000, 384000] Hz (:func:`check_sample_rate`);
- arguments of the wrong type rejected with :class:`~blendfx.ParameterTypeError` (a
  ``TypeError``, as pedalboard raises);
- NaN/Inf input rejected with a clear error, and a non-finite result never returned;
- declared parameters that validate on assignment, and an error for unknown attribute names;
- ``reset()``, ``seed``, ``device``, ``supports_streaming``, ``is_effect``/``is_instrument``;
- registration in :data:`EFFECT_REGISTRY`, which presets use as their allow-list and the
  conformance suite uses to find every effect.

Effects that need a second signal (the amplifier needs the noise, the stylizer a reference) set
``uses_sidechain = True`` and read it as the ``sidechain`` argument, already in
``(channels, samples)`` float32. Inside a :class:`blendfx.Chain`, ``sidechain_key`` names which
signal keys the effect (default: the chain's sidechain if one was given, else the chain's input).
"""

from __future__ import annotations

import functools
import math
import operator
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

import numpy as np
import pedalboard

from .buffers import (
    as_float_audio,
    check_finite,
    check_sample_rate,
    fit_length,
    restore_layout,
    to_channels_first,
)
from .device import resolve_device, validate_device
from .errors import ParameterError, ParameterTypeError
from .params import IntParam, Param, StrParam, declared_params

__all__ = ["Effect", "EFFECT_REGISTRY", "EffectRegistry", "EffectParam", "register_effect",
           "is_processor", "is_native_plugin", "native_params", "check_sample_rate",
           "check_buffer_size", "check_reset"]

#: The entry-point group that names effect classes without importing them (``setup.cfg``).
ENTRY_POINT_GROUP = "blendfx.effects"


class EffectRegistry(MutableMapping):
    """Effect classes by name, loaded on first use.

    Holds the classes defined so far (every :class:`Effect` subclass registers itself) and the
    ones the installed packages declare in the ``blendfx.effects`` entry-point group, which are
    imported only when looked up: presets and sessions can name ``Composer`` without
    ``import blendfx`` loading torch. Presets instantiate only classes found here (or
    pedalboard's own plugins), never arbitrary code.
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self._group = group
        self._classes: dict[str, type[Effect]] = {}
        self._declared: dict[str, EntryPoint] | None = None
        self._hidden: set[str] = set()  # declared names deleted by the user (tests, plugins)
        self._lock = threading.RLock()

    def _entry_points(self) -> dict[str, EntryPoint]:
        if self._declared is None:
            self._declared = {ep.name: ep for ep in entry_points(group=self._group)}
        return self._declared

    def __getitem__(self, name: str) -> type[Effect]:
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        ep = self._entry_points().get(name)
        if ep is None or name in self._hidden:
            raise KeyError(name)
        # imported outside the lock: the module's import registers its classes (__setitem__),
        # possibly from another thread that holds the import lock
        cls = ep.load()
        with self._lock:
            return self._classes.setdefault(name, cls)

    def __setitem__(self, name: str, cls: type[Effect]) -> None:
        with self._lock:
            self._classes[name] = cls
            self._hidden.discard(name)

    def __delitem__(self, name: str) -> None:
        with self._lock:
            if name not in self:
                raise KeyError(name)
            self._classes.pop(name, None)
            if name in self._entry_points():
                self._hidden.add(name)

    def __contains__(self, name: object) -> bool:
        return name in self._classes or (name in self._entry_points() and name not in self._hidden)

    def __iter__(self) -> Iterator[str]:
        declared = [n for n in self._entry_points() if n not in self._hidden]
        return iter(dict.fromkeys([*self._classes, *declared]))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"EffectRegistry({sorted(self)})"


EFFECT_REGISTRY = EffectRegistry()

#: :attr:`Effect.min_seconds` of offline effects: a few analysis windows (100 ms BNMusic frames).
_OFFLINE_MIN_SECONDS = 0.25


def register_effect(cls: type[Effect]) -> type[Effect]:
    """Add an effect class to the registry (done automatically for every subclass)."""
    EFFECT_REGISTRY[cls.__name__] = cls
    return cls


def is_native_plugin(obj: Any) -> bool:
    """True for pedalboard's own (C++) plugins, including a ``pedalboard.Pedalboard``."""

    return isinstance(obj, pedalboard.Plugin)


def native_params(plugin: Any) -> dict[str, Any]:
    """Public read/write properties of a pedalboard plugin, as TOML-friendly values."""
    out: dict[str, Any] = {}
    for klass in type(plugin).__mro__:
        for name, attr in vars(klass).items():
            if name.startswith("_") or name in out or not isinstance(attr, property):
                continue
            if attr.fset is None or name in ("is_effect", "is_instrument", "reset"):
                continue
            value = getattr(plugin, name)
            if isinstance(value, bool | int | float | str):
                out[name] = value
            elif hasattr(value, "name") and hasattr(type(value), "__members__"):
                out[name] = value.name  # pybind11 enum, e.g. LadderFilter.Mode.LPF12
    return out


def is_processor(obj: Any) -> bool:
    """True for anything a :class:`Chain` can hold: a blendfx effect or a pedalboard plugin."""
    return isinstance(obj, Effect) or is_native_plugin(obj)


class EffectParam(Param):
    """A nested effect (a generator slot, a post-FX chain): a blendfx effect or pedalboard plugin."""

    kind = "effect"

    def __init__(self, default: Any = None, **kw: Any):
        kw.setdefault("optional", True)
        super().__init__(default, **kw)

    def validate(self, value: Any, owner: str) -> Any:
        if not is_processor(value):
            raise self._fail(owner, type(value).__name__,
                             "must be a blendfx effect or a pedalboard plugin", type_error=True)
        return value


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` under its instance's lock (once the instance has one)."""
    if getattr(method, "_holds_lock", False):
        return method

    @functools.wraps(method)
    def locked(self: Effect, *args: Any, **kwargs: Any) -> Any:
        lock = self.__dict__.get("_lock")
        if lock is None:  # called before Effect.__init__ made the lock
            return method(self, *args, **kwargs)
        with lock:
            return method(self, *args, **kwargs)

    locked._holds_lock = True  # type: ignore[attr-defined]
    return locked


SidechainArg = np.ndarray | Mapping[str, np.ndarray] | None


class Effect:
    """Base class of every blendfx effect.

    Parameters
    ----------
    **params
        Values for the effect's declared parameters; unknown names raise
        :class:`~blendfx.ParameterError`.

    Notes
    -----
    Calls on one instance (``process``, ``reset``, setting a parameter) are serialized by a
    re-entrant lock, so two threads or chains sharing an effect get the output they would get
    one after the other, and a parameter never changes in the middle of a call. A subclass's
    ``reset`` override runs under the lock too.
    """

    #: pedalboard's flags: blendfx effects transform audio; none are instruments.
    is_effect: ClassVar[bool] = True
    is_instrument: ClassVar[bool] = False
    #: True when processing a signal chunk by chunk with ``reset=False`` equals processing it
    #: whole. Offline effects (diffusion, composition) set False and render whole buffers.
    supports_streaming: ClassVar[bool] = True
    #: True when the effect reads a second signal (see module docstring).
    uses_sidechain: ClassVar[bool] = False
    #: True when the effect cannot run without its sidechain.
    requires_sidechain: ClassVar[bool] = False
    #: False for abstract helpers that should not be registered or run by the conformance suite.
    registered: ClassVar[bool] = True
    #: Shortest input ``_process`` sees, in seconds: a shorter input (and its sidechain) is
    #: zero-padded to it and the result cropped back to the input's length, so an offline
    #: effect's analysis windows always hold data (a 1-sample input gives 1 sample, not an
    #: error). Offline effects (``supports_streaming = False``) default to 0.25 s; streaming
    #: effects take any length as it comes (0).
    min_seconds: ClassVar[float] = 0.0

    seed = IntParam(0, min=0, max=2**32 - 1, doc="Random seed: same seed, same output.")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("registered", True) and not cls.__name__.startswith("_"):
            register_effect(cls)
        if "reset" in cls.__dict__:
            cls.reset = _locked(cls.__dict__["reset"])  # type: ignore[method-assign]
        if cls.__dict__.get("supports_streaming") is False and "min_seconds" not in cls.__dict__:
            cls.min_seconds = _OFFLINE_MIN_SECONDS
        if cls.uses_sidechain is True and "sidechain_key" not in declared_params(cls):
            cls.sidechain_key = StrParam(
                "", doc="Which signal keys this effect inside a Chain: a key name, 'input' for "
                "the chain's input, or '' for the chain's sidechain if given, else its input.")
            cls.sidechain_key.__set_name__(cls, "sidechain_key")

    def __init__(self, **params: Any) -> None:
        object.__setattr__(self, "_param_values", {})
        object.__setattr__(self, "_lock", threading.RLock())
        object.__setattr__(self, "_device", "auto")
        object.__setattr__(self, "_last_layout", None)  # the previous chunk's, for streams
        self._constructing = True
        for name, value in params.items():
            if name == "device":
                self.device = value
            elif name not in self.params():
                raise self._unknown(name)
            else:
                setattr(self, name, value)
        self._constructing = False
        self._reset_state()  # a container leaves the plugins it is given as they are

    # -- parameters -----------------------------------------------------------------------
    @classmethod
    def params(cls) -> dict[str, Param]:
        """The declared parameters of this class, by name."""
        cached = cls.__dict__.get("_params_cache")
        if cached is None:
            cached = declared_params(cls)
            type.__setattr__(cls, "_params_cache", cached)
        return cached

    def param_values(self) -> dict[str, Any]:
        """Current value of every declared parameter (what a preset stores)."""
        return {name: getattr(self, name) for name in self.params()}

    def _unknown(self, name: str) -> ParameterError:
        known = ", ".join(sorted(self.params())) or "none"
        return ParameterError(f"{type(self).__name__} has no parameter {name!r} (parameters: {known})")

    def __setattr__(self, name: str, value: Any) -> None:
        # Unknown public names are typos of parameter names: refuse them, as pedalboard does.
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        elif name in self.params() or isinstance(getattr(type(self), name, None), property):
            lock = self.__dict__.get("_lock")
            if lock is None:  # a subclass setting a value before Effect.__init__
                object.__setattr__(self, name, value)
                return
            with lock:  # never in the middle of a process call on another thread
                object.__setattr__(self, name, value)
        else:
            raise self._unknown(name)

    def _on_param_change(self, name: str) -> None:
        """Hook called after a parameter changes (e.g. to drop a cached analysis)."""

    # -- device -----------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """Torch device for effects that use one: 'auto' (CUDA when available), 'cpu', 'cuda:0'."""
        return self._device

    @device.setter
    def device(self, value: str) -> None:
        validate_device(value)
        object.__setattr__(self, "_device", str(value))

    @property
    def torch_device(self):
        """The resolved ``torch.device``."""

        return resolve_device(self._device)

    # -- processing -------------------------------------------------------------------------
    @_locked
    def reset(self) -> None:
        """Clear internal state (filter memories, tails, random state) to a fresh instance's.

        Also forgets the layout of the last chunk processed (as pedalboard's ``reset()`` does);
        ``process(..., reset=True)`` keeps it.
        """
        object.__setattr__(self, "_rng", np.random.default_rng(self.seed))
        object.__setattr__(self, "_last_layout", None)

    def _reset_state(self) -> None:
        """What ``process(..., reset=True)`` clears: by default everything :meth:`reset` does."""
        self.reset()

    def process(
        self,
        input_array: np.ndarray,
        sample_rate: float,
        buffer_size: int = 8192,
        reset: bool = True,
        *,
        sidechain: SidechainArg = None,
    ) -> np.ndarray:
        """Process audio, pedalboard style.

        Parameters
        ----------
        input_array : np.ndarray
            Samples in [-1, 1] (not enforced), float32 or float64; 1-D mono or 2-D in either
            orientation (the smaller dimension is channels). As in pedalboard, a chunk is read
            with the previous chunk's channel count, so a square or one-frame chunk of a
            stream keeps the stream's layout; until :meth:`reset` (``reset=True`` keeps it).
        sample_rate : float
            Sample rate in Hz.
        buffer_size : int
            Samples per block handed to pedalboard's plugins; blendfx effects process whole
            buffers.
        reset : bool
            Clear state first (True) or continue from the previous call (False, streaming).
        sidechain : np.ndarray, optional
            The key signal for effects with ``uses_sidechain``, any layout (an ambiguous shape is
            read in the input's), same sample rate.

        Returns
        -------
        np.ndarray
            float32 audio in the input's layout.
        """
        sample_rate = check_sample_rate(sample_rate)
        buffer_size = check_buffer_size(buffer_size)
        reset = check_reset(reset)
        with self._lock:
            data, layout = to_channels_first(input_array, last=self._last_layout)
            if data.shape[1] == 0 or data.shape[0] == 0:  # zero-length passes, in its own shape
                return np.array(input_array, dtype=np.float32)
            sc = _sidechain_channels_first(sidechain, layout)
            out = self.process_channels_first(data, sample_rate, buffer_size, reset, sidechain=sc)
            object.__setattr__(self, "_last_layout", layout)
        return restore_layout(out, layout)

    __call__ = process

    def process_channels_first(
        self,
        audio: np.ndarray,
        sample_rate: float,
        buffer_size: int = 8192,
        reset: bool = True,
        *,
        sidechain: SidechainArg = None,
    ) -> np.ndarray:
        """Process audio already laid out ``(channels, samples)``, with no layout guessing.

        What containers call for the effects they hold (a one-frame stereo chunk ``(2, 1)`` stays
        one stereo frame), and what :meth:`process` calls once it has read the caller's layout.

        Parameters
        ----------
        audio : np.ndarray
            ``(channels, samples)`` samples, float32 or float64 (1-D is mono).
        sample_rate : float
            Sample rate in Hz.
        buffer_size : int
            As in :meth:`process`.
        reset : bool
            As in :meth:`process`.
        sidechain : np.ndarray or mapping, optional
            The key signal, ``(channels, samples)`` (or 1-D mono), or a container's named
            signals laid out the same way.

        Returns
        -------
        np.ndarray
            ``(channels', samples')`` float32.
        """
        sample_rate = check_sample_rate(sample_rate)
        check_buffer_size(buffer_size)
        reset = check_reset(reset)
        data = _planar(audio, "audio")
        if data.shape[1] == 0:
            return data.copy()
        check_finite(data)
        n = data.shape[1]
        need = int(math.ceil(self.min_seconds * sample_rate)) if self.min_seconds else 0
        with self._lock:
            sc = self._resolve_sidechain(sidechain)
            if n < need:  # too short for the effect's analysis: padded, cropped back below
                data = fit_length(data, need)
                if sc is not None and n <= sc.shape[1] < need:
                    sc = fit_length(sc, need)
            if reset:
                layout = self._last_layout  # a reset by process keeps the stream's layout
                self._reset_state()
                object.__setattr__(self, "_last_layout", layout)
            out = self._process(data, sample_rate, sc)
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2:
            raise RuntimeError(f"{type(self).__name__}._process returned a {out.ndim}-D array")
        if n < need and out.shape[1] == need:
            out = out[:, :n]
        if not np.isfinite(out).all():
            raise RuntimeError(f"{type(self).__name__} produced NaN or infinite samples")
        return out

    def _resolve_sidechain(self, sidechain: SidechainArg) -> np.ndarray | None:
        if isinstance(sidechain, Mapping):
            sidechain = resolve_key(self, sidechain)
        if sidechain is None:
            if self.requires_sidechain:
                raise ParameterError(
                    f"{type(self).__name__} needs a sidechain signal: "
                    f"call process(audio, sample_rate, sidechain=key_audio)")
            return None
        sc = _planar(sidechain, "sidechain")
        check_finite(sc, name="sidechain")
        return sc

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        """Process ``(channels, samples)`` float32 audio; return ``(channels', samples')``."""
        raise NotImplementedError

    # -- conveniences -----------------------------------------------------------------------
    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.param_values().items()
                         if v is not None and not isinstance(v, Effect | list))
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.param_values() == other.param_values()  # type: ignore[union-attr]

    __hash__ = object.__hash__


def resolve_key(effect: Effect, keys: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Pick the sidechain an effect asked for from a Chain's named signals."""
    name = getattr(effect, "sidechain_key", "") or ""
    if not effect.uses_sidechain:
        return None
    if name:
        if name not in keys:
            raise ParameterError(
                f"{type(effect).__name__}.sidechain_key = {name!r} is not among the chain's "
                f"signals ({', '.join(sorted(keys))})")
        return keys[name]
    return keys.get("sidechain", keys.get("input"))


def _planar(audio: Any, name: str) -> np.ndarray:
    """``(channels, samples)`` float32 of audio already laid out so (1-D is mono)."""
    a = as_float_audio(audio, name)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ParameterError(f"{name} must be (channels, samples), got {a.ndim}-D")
    return a.astype(np.float32, copy=False)


def _sidechain_channels_first(sidechain: SidechainArg, layout: Any) -> SidechainArg:
    """The caller's sidechain signal(s) as ``(channels, samples)``, an ambiguous shape read in
    the input's layout."""
    if sidechain is None:
        return None
    if isinstance(sidechain, Mapping):
        return {key: to_channels_first(value, name=f"sidechain[{key!r}]", last=layout)[0]
                for key, value in sidechain.items()}
    return to_channels_first(sidechain, name="sidechain", last=layout)[0]


def check_buffer_size(buffer_size: int) -> int:
    """Return ``buffer_size`` (samples per block handed to pedalboard) as an int.

    Raises
    ------
    ParameterTypeError
        If it is not an integer (a float, a string), as pedalboard raises.
    ParameterError
        If it is below 1 (pedalboard hangs on 0).
    """
    if isinstance(buffer_size, bool | np.bool_):
        raise ParameterTypeError(f"buffer_size must be an integer number of samples, got {buffer_size!r}")
    try:
        size = operator.index(buffer_size)
    except TypeError:
        raise ParameterTypeError(
            f"buffer_size must be an integer number of samples, got {buffer_size!r}") from None
    if size < 1:
        raise ParameterError(f"buffer_size must be at least 1 sample, got {size}")
    return size


def check_reset(reset: bool) -> bool:
    """Return ``reset`` as a bool; a string or other non-flag raises :class:`ParameterTypeError`."""
    if isinstance(reset, bool | np.bool_ | int | np.integer):
        return bool(reset)
    raise ParameterTypeError(f"reset must be True or False, got {reset!r}")
