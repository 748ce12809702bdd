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

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, ParameterTypeError

__all__ = [
    "Layout",
    "to_channels_first",
    "as_channels_first",
    "restore_layout",
    "check_finite",
    "fit_length",
    "fit_channels",
    "to_mono",
]


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
        no ``last`` layout to read it by.
    """
    try:
        a = np.asarray(array)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ParameterTypeError(f"{name} must be a numeric audio array: {exc}") from None
    if a.dtype.kind not in "fiu":
        raise ParameterTypeError(f"{name} must be a numeric audio array, got dtype {a.dtype}")
    if a.ndim == 1:
        return a.astype(np.float32, copy=False)[None, :], Layout(ndim=1, channels=1)
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
        return a.astype(np.float32, copy=False)
    return to_channels_first(a)[0]
