"""Audio buffer layout, shared by every effect and by audio I/O.

blendfx follows pedalboard's rules (DESIGN.md section 4): a 1-D array is mono; for a 2-D array the
smaller dimension is channels, and the output keeps the input's orientation; a square 2-D array
is ambiguous and rejected unless an earlier chunk of the stream showed the layout (``last``: a
chunk is then read with the previous chunk's channel count, as pedalboard does). Internally
every stage works on ``(channels, samples)`` float32.

Examples
--------
>>> import numpy as np
>>> x = np.zeros((1000, 2))                 # samples x channels
>>> data, layout = to_channels_first(x)
>>> data.shape, data.dtype
((2, 1000), dtype('float32'))
>>> restore_layout(data, layout).shape
(1000, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, ParameterTypeError

__all__ = [
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "check_sample_rate",
    "as_float_audio",
    "check_peak",
    "MAX_ABS_SAMPLE",
    "Layout",
    "to_channels_first",
    "as_channels_first",
    "restore_layout",
    "check_finite",
    "fit_length",
    "fit_channels",
    "to_mono",
]


#: The sample rates blendfx accepts everywhere (effects, audio I/O, sessions, the CLI), in Hz.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000.0, 384000.0


def check_sample_rate(sample_rate: float, name: str = "sample_rate") -> float:
    """Return ``sample_rate`` as a float number of Hz.

    Raises :class:`ParameterTypeError` (a ``TypeError``, as pedalboard raises) when it is not a
    number, :class:`ParameterError` when it is out of range.

    The one check every entry point uses: a number in [8000, 384000] Hz
    (:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`). Rates outside it are refused rather than
    run: 1 Hz would make analysis windows of zero samples, 1e9 Hz windows of gigabytes.
    """
    if isinstance(sample_rate, bool | np.bool_ | str | bytes) or not hasattr(sample_rate, "__float__"):
        raise ParameterTypeError(f"{name} must be a number in Hz, got {sample_rate!r}")
    try:
        sr = float(sample_rate)
    except (TypeError, ValueError):
        raise ParameterTypeError(f"{name} must be a number in Hz, got {sample_rate!r}") from None
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:  # (NaN fails both comparisons)
        raise ParameterError(f"{name} = {sample_rate!r} Hz is out of range "
                             f"[{MIN_SAMPLE_RATE:g}, {MAX_SAMPLE_RATE:g}] Hz")
    return sr


#: Largest sample magnitude blendfx takes (+80 dBFS): audio is float samples in [-1, 1], and
#: a stream a hundred or a thousand times hotter is still audio (gain staging), but 1e4 and
#: beyond is a unit mistake (integer PCM values stored as floats) or garbage, on which spectra
#: and loudness overflow float32.
MAX_ABS_SAMPLE = 1e4


def check_peak(data: np.ndarray, name: str = "input_array") -> None:
    """Raise :class:`ParameterError` if a finite sample of ``data`` exceeds
    :data:`MAX_ABS_SAMPLE` (NaN and infinities are :func:`check_finite`'s to report)."""
    with np.errstate(invalid="ignore"):
        peak = float(np.max(np.abs(data)))
    if not math.isfinite(peak):
        finite = data[np.isfinite(data)]
        peak = float(np.max(np.abs(finite))) if finite.size else 0.0
    if peak > MAX_ABS_SAMPLE:
        raise ParameterError(
            f"{name} peaks at {peak:.4g} ({20 * math.log10(peak):+.0f} dBFS): blendfx takes "
            f"float samples in [-1, 1] and refuses magnitudes over {MAX_ABS_SAMPLE:g}; scale "
            f"the audio (integer PCM stored as floats: divide by 32768 for 16-bit)")


def as_float_audio(array: np.ndarray, name: str = "input_array") -> np.ndarray:
    """``array`` as float32 samples, integer PCM scaled to [-1, 1) as audio libraries read it.

    float16/32/64 pass as float32 (magnitudes over :data:`MAX_ABS_SAMPLE`, +80 dBFS, are a
    :class:`ParameterError`: see :func:`check_peak`); signed integers are divided by
    ``2 ** (bits - 1)`` (int16 16384 -> 0.5, as soundfile and scipy users expect); uint8 is
    8-bit WAV's offset binary, ``(x - 128) / 128``. Wider unsigned integers, booleans, complex
    numbers and objects have no audio meaning and raise :class:`ParameterTypeError`.
    """
    try:
        a = np.asarray(array)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ParameterTypeError(f"{name} must be a numeric audio array: {exc}") from None
    kind = a.dtype.kind
    if kind == "f":
        if a.size:
            check_peak(a, name)
        with np.errstate(over="ignore"):  # (nothing finite overflows after check_peak)
            return a.astype(np.float32, copy=False)
    if kind == "i":
        return (a.astype(np.float64) / float(2 ** (8 * a.dtype.itemsize - 1))).astype(np.float32)
    if kind == "u" and a.dtype.itemsize == 1:
        return ((a.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    raise ParameterTypeError(f"{name} must be float or integer PCM audio (int8/16/32/64, uint8), "
                             f"got dtype {a.dtype}")


@dataclass(frozen=True)
class Layout:
    """How the caller's array was laid out, so the output can be given back the same way.

    Attributes
    ----------
    ndim : int
        1 for a mono vector, 2 for a matrix.
    channels_last : bool
        True when the caller's 2-D array was ``(samples, channels)``.
    channels : int
        The number of channels the array held (0 when unknown). A stream's next chunk is read
        with it, as pedalboard reads a chunk with the previous chunk's channel count.
    """

    ndim: int
    channels_last: bool = False
    channels: int = 0


def to_channels_first(array: np.ndarray, name: str = "input_array",
                      last: Layout | None = None) -> tuple[np.ndarray, Layout]:
    """Return ``array`` as a ``(channels, samples)`` float32 array and its original layout.

    Parameters
    ----------
    array : np.ndarray
        Audio samples, 1-D (mono) or 2-D (either orientation; the smaller dimension is channels).
    name : str
        The argument's name, used in error messages.
    last : Layout, optional
        The layout of the previous chunk of the same stream. As in pedalboard, a dimension equal
        to its channel count is taken as the channels (so a ``(2, 1)`` chunk after stereo chunks
        is one stereo frame, not two mono samples), and a square chunk keeps its orientation.

    Raises
    ------
    ParameterTypeError
        If the array is not numeric (a string, an object array, a ragged list).
    ParameterError
        If the array is not 1-D or 2-D, or is square (more than one channel and sample) with
        no ``last`` layout to read it by, or is not audio (see :func:`as_float_audio`: integer
        PCM is scaled to [-1, 1), not passed raw).
    """
    a = as_float_audio(array, name)
    if a.ndim == 1:
        return a[None, :], Layout(ndim=1, channels=1)
    if a.ndim != 2:
        raise ParameterError(f"{name} must be 1-D (mono) or 2-D (channels x samples), got {a.ndim}-D")
    rows, cols = a.shape
    channels_last: bool | None = None
    if rows == cols and rows > 1:
        if last is None:
            raise ParameterError(
                f"{name} has square shape {a.shape}: cannot tell channels from samples; "
                "pass (channels, samples) with more samples than channels, or process a "
                "non-square chunk first (its layout is then kept for the stream)"
            )
        channels_last = last.ndim == 2 and last.channels_last
    elif last is not None and last.channels:
        if rows == last.channels:
            channels_last = False
        elif cols == last.channels:
            channels_last = True
    if channels_last is None:
        if rows == 0 or cols == 0:  # zero samples, not zero channels (as pedalboard reads them)
            channels_last = rows == 0
        else:
            channels_last = rows > cols
    if not channels_last:
        return a.astype(np.float32, copy=False), Layout(ndim=2, channels_last=False, channels=rows)
    return (np.ascontiguousarray(a.T, dtype=np.float32),
            Layout(ndim=2, channels_last=True, channels=cols))


def restore_layout(data: np.ndarray, layout: Layout) -> np.ndarray:
    """Give a ``(channels, samples)`` result back in the caller's layout, as float32.

    A mono input whose result has several channels comes back as ``(channels, samples)``.
    """
    data = np.asarray(data, dtype=np.float32)
    if layout.ndim == 1:
        return data[0] if data.shape[0] == 1 else data
    return np.ascontiguousarray(data.T) if layout.channels_last else data


def check_finite(data: np.ndarray, name: str = "input_array") -> None:
    """Raise :class:`ParameterError` if ``data`` holds NaN or infinite samples."""
    if data.size and not np.isfinite(data).all():
        bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise ParameterError(f"{name} contains {bad} NaN or infinite sample(s); clean it first")


def fit_length(data: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad ``(channels, samples)`` audio along time to exactly ``length`` samples."""
    n = data.shape[-1]
    if n == length:
        return data
    if n > length:
        return data[..., :length]
    pad = [(0, 0)] * (data.ndim - 1) + [(0, length - n)]
    return np.pad(data, pad)


def fit_channels(data: np.ndarray, channels: int) -> np.ndarray:
    """Return ``(channels, samples)`` audio with ``channels`` channels.

    Mono is copied to every channel; more channels than asked are averaged down to mono first.
    """
    c = data.shape[0]
    if c == channels:
        return data
    if c == 1:
        return np.repeat(data, channels, axis=0)
    mono = data.mean(axis=0, keepdims=True)
    return np.repeat(mono, channels, axis=0)


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average ``(channels, samples)`` audio (or pass a 1-D array) to a 1-D float32 mono signal."""
    data = np.asarray(data, dtype=np.float32)
    return data if data.ndim == 1 else data.mean(axis=0)


def as_channels_first(audio: np.ndarray) -> np.ndarray:
    """``(channels, samples)`` float32 of 1-D or 2-D audio. Unlike
    :func:`to_channels_first`, a square or zero-length array (e.g. one sample
    of mono passed as ``(1, 1)`` by an effect) counts as channels-first instead of raising: these helpers are
    called on buffers the effect protocol has already laid out."""
    a = np.asarray(audio)
    if a.ndim == 2 and (a.shape[0] == a.shape[1] or a.shape[1] == 0):
        return as_float_audio(a, "audio")
    return to_channels_first(a)[0]
