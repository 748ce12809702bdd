"""Mastering a mix that may not fit in memory: streaming loudness, true peak, and a limiter.

The renderer measures the mix block by block (pass 1), then writes it with one gain and a
true-peak limiter (pass 2), so a 60-minute mix never sits in memory whole.

- :class:`LoudnessMeter`: ITU-R BS.1770-4 integrated loudness (K-weighting, 400 ms blocks with
  75 % overlap, -70 LUFS absolute and -10 LU relative gates), fed in blocks. Its block
  boundaries, filters and gating are pyloudnorm's, so it agrees with
  ``pyloudnorm.Meter(rate).integrated_loudness`` to within float rounding, without holding the
  signal.
- :func:`true_peak_envelope`: per-sample true-peak estimate from 4x oversampling (BS.1770-4
  Annex 2).
- :func:`limiter_gain`: a look-ahead brick-wall gain curve that keeps the (oversampled) peak
  under a ceiling, computed from a signal with context on both sides, so blocks join seamlessly.

Loudness and true-peak helpers for whole arrays live in :mod:`blendfx.loudness`; this module
holds only what streaming mastering adds (block-wise metering, per-sample true-peak envelopes
with context, the limiter), and shares that module's oversampling filter.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from blendfx.loudness import OVERSAMPLE
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import sosfilt

__all__ = ["LoudnessMeter", "true_peak_envelope", "true_peak_max", "limiter_gain",
           "limiter_context", "LIMITER_CONTEXT",
           "OVERSAMPLING", "db"]

#: True-peak oversampling factor (BS.1770-4: 4x), the same as blendfx.loudness's.
OVERSAMPLING = OVERSAMPLE
#: Samples of context the oversampling filter needs on each side of a block.
_TP_MARGIN = 32


def db(linear: float) -> float:
    """20 log10 of a linear amplitude; -inf for 0."""
    return float(20.0 * np.log10(linear)) if linear > 0 else float("-inf")


class LoudnessMeter:
    """Integrated loudness (LUFS) of a signal fed in consecutive blocks.

    Parameters
    ----------
    sample_rate : float
        Hz.
    channels : int
        Channel count of the blocks (1 to 5; BS.1770 weights surround channels 1.41).
    total_samples : int
        Length of the whole signal in samples (the block grid depends on it, as in pyloudnorm).

    Examples
    --------
    >>> meter = LoudnessMeter(44100, 2, len_total)              # doctest: +SKIP
    >>> for block in blocks: meter.add(block)                   # doctest: +SKIP
    >>> meter.integrated()                                      # doctest: +SKIP
    -23.0
    """

    _BLOCK_S = 0.4
    _STEP = 0.25  # 75 % overlap

    def __init__(self, sample_rate: float, channels: int, total_samples: int) -> None:
        import pyloudnorm

        self.rate = float(sample_rate)
        self.channels = int(channels)
        self.total = int(total_samples)
        filters = pyloudnorm.Meter(self.rate)._filters  # the K-weighting stages pyloudnorm uses
        self._gain = float(np.prod([f.passband_gain for f in filters.values()]))
        self._sos = np.vstack([np.concatenate([f.b, f.a]) for f in filters.values()])
        self._zi = np.zeros((self.channels, self._sos.shape[0], 2))
        t = self.total / self.rate
        n_blocks = int(np.round((t - self._BLOCK_S) / (self._BLOCK_S * self._STEP))) + 1
        self._n_blocks = max(n_blocks, 0) if t >= self._BLOCK_S else 0
        j = np.arange(self._n_blocks)
        self._lower = (self._BLOCK_S * (j * self._STEP) * self.rate).astype(np.int64)
        self._upper = (self._BLOCK_S * (j * self._STEP + 1) * self.rate).astype(np.int64)
        self._edges = np.unique(np.concatenate([self._lower, self._upper, [0]]))
        # energy of each segment between consecutive edges, per channel
        self._segments = np.zeros((self.channels, max(len(self._edges) - 1, 0)))
        self._pos = 0

    def add(self, block: np.ndarray) -> None:
        """Feed the next ``(channels, samples)`` block."""
        block = np.asarray(block, dtype=np.float64)
        n = block.shape[1]
        if n == 0 or self._segments.shape[1] == 0:
            self._pos += n
            return
        y = np.empty_like(block)
        for c in range(self.channels):
            y[c], self._zi[c] = sosfilt(self._sos, block[c], zi=self._zi[c])
        sq = np.square(y * self._gain)
        start, end = self._pos, self._pos + n
        # Segment k covers [edges[k], edges[k+1]); add this block's share to each one it touches.
        first = max(int(np.searchsorted(self._edges, start, side="right")) - 1, 0)
        last = min(int(np.searchsorted(self._edges, end, side="left")), len(self._edges) - 1)
        if first < last:
            cuts = np.clip(self._edges[first:last + 1], start, end) - start
            csum = np.concatenate([np.zeros((self.channels, 1)), np.cumsum(sq, axis=1)], axis=1)
            self._segments[:, first:last] += csum[:, cuts[1:]] - csum[:, cuts[:-1]]
        self._pos = end

    def block_energies(self) -> np.ndarray:
        """Mean square ``z[channel, block]`` of the K-weighted signal (BS.1770 eq. 1)."""
        csum = np.concatenate([np.zeros((self.channels, 1)), np.cumsum(self._segments, axis=1)],
                              axis=1)
        lo = np.searchsorted(self._edges, self._lower)
        hi = np.searchsorted(self._edges, self._upper)
        return (csum[:, hi] - csum[:, lo]) / (self._BLOCK_S * self.rate)

    def integrated(self, gain_db: float = 0.0) -> float:
        """Gated integrated loudness in LUFS (-inf for silence or under 0.4 s).

        ``gain_db`` gives the loudness of the same signal scaled by that gain, exactly (the
        gates included) and without filtering it again.
        """
        if self._n_blocks == 0:
            return float("-inf")
        z = self.block_energies() * 10.0 ** (gain_db / 10.0)
        weights = np.array([1.0, 1.0, 1.0, 1.41, 1.41])[: self.channels, None]
        with np.errstate(divide="ignore"):
            loud = -0.691 + 10.0 * np.log10((weights * z).sum(axis=0))
        gated = loud >= -70.0
        if not gated.any():
            return float("-inf")
        rel = -0.691 + 10.0 * np.log10((weights[:, 0] * z[:, gated].mean(axis=1)).sum()) - 10.0
        gated = (loud > rel) & (loud > -70.0)
        if not gated.any():
            return float("-inf")
        power = (weights[:, 0] * z[:, gated].mean(axis=1)).sum()
        return float(-0.691 + 10.0 * np.log10(power)) if power > 0 else float("-inf")


def true_peak_envelope(audio: np.ndarray, margin: int = 0, above: float | None = None
                       ) -> np.ndarray:
    """Per-sample true-peak magnitude of ``(channels, samples)`` audio (max over channels).

    Each sample's value is the largest magnitude among its ``OVERSAMPLING`` oversampled points
    and the sample itself. ``margin`` samples at each end are context only and are dropped from
    the result; give at least 32 for values that do not depend on the block edges.

    With ``above``, only stretches that could reach that level are oversampled (the others get
    their sample magnitudes, which are then known to stay under ``above``): every value that
    exceeds ``above`` is exact, at a fraction of the cost.
    """
    audio = np.asarray(audio, dtype=np.float32)
    n = audio.shape[-1]
    if n == 0:
        return np.zeros(0, np.float32)
    if above is None:
        env = _oversampled(audio)
    else:
        env = np.abs(audio).max(axis=0)
        runs = _segments_over(env, above / _interpolation_bound())
        if sum(b - a for a, b in runs) > n // 3:  # mostly loud: one pass is cheaper
            env = _oversampled(audio)
        else:
            for a, b in runs:
                lo, hi = max(a - _TP_MARGIN, 0), min(b + _TP_MARGIN, n)
                env[a:b] = _oversampled(audio[:, lo:hi])[a - lo:b - lo]
    return env[margin:n - margin] if margin else env


def true_peak_max(audio: np.ndarray, margin: int = 0, at_least: float = 0.0) -> float:
    """``max(at_least, true_peak_envelope(audio, margin).max())``, oversampling only the
    stretches where the maximum can be (those whose samples, times the interpolation filter's
    largest gain, could beat the loudest sample or ``at_least``)."""
    audio = np.asarray(audio, dtype=np.float32)
    n = audio.shape[-1]
    core = np.abs(audio[:, margin:n - margin] if margin else audio).max(axis=0)
    if core.size == 0:
        return at_least
    best = max(at_least, float(core.max()))
    env = true_peak_envelope(audio, margin, above=best)
    return max(best, float(env.max()))


_SEGMENT = 1024  # samples per stretch in the pruned computations


def _oversampled(audio: np.ndarray) -> np.ndarray:
    """Per-sample max over channels of |x| and its OVERSAMPLING - 1 interpolated neighbours.

    The interpolation filter is :mod:`blendfx.loudness`'s (a Nyquist filter: its on-sample
    branch returns the samples themselves), so only the other branches are computed, each as a
    short correlation, without building the oversampled signal.
    """
    from scipy.ndimage import correlate1d

    env = np.abs(audio).max(axis=0)
    for taps in _branches():
        y = correlate1d(audio, taps, axis=-1, mode="constant")
        np.maximum(env, np.abs(y).max(axis=0), out=env)
    return env


@lru_cache(maxsize=1)
def _branches() -> tuple[np.ndarray, ...]:
    """Centred correlation kernels of the inter-sample branches of blendfx.loudness's filter.

    Branch r gives the value at ``m + r/4`` from ``x[m - k/2 + 1 .. m + k/2]``; a leading zero
    makes the kernel odd-length and centred on ``m``.
    """
    from blendfx.loudness import _polyphase

    taps, _ = _polyphase()
    return tuple(np.concatenate([[0.0], taps[:, r]]).astype(np.float32)
                 for r in range(taps.shape[1]))


def _interpolation_bound() -> float:
    """Largest possible ratio of an interpolated value to the largest nearby sample magnitude."""
    from blendfx.loudness import _polyphase

    return _polyphase()[1]


def _segments_over(mag: np.ndarray, level: float) -> list[tuple[int, int]]:
    """Stretches of ``_SEGMENT`` samples (with neighbours, for the filter's reach) whose sample
    magnitude exceeds ``level`` somewhere."""
    seg, n = _SEGMENT, mag.size
    count = -(-n // seg)
    peaks = np.pad(mag, (0, count * seg - n)).reshape(count, seg).max(axis=1)
    hot = peaks > level
    # a loud sample near a stretch's edge also lifts the neighbouring stretch's interpolation
    hot[1:] |= hot[:-1].copy()
    hot[:-1] |= (peaks > level)[1:]
    out: list[tuple[int, int]] = []
    for k in np.flatnonzero(hot):
        a, b = int(k) * seg, min(int(k) * seg + seg, n)
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _window(seconds: float, sample_rate: float) -> int:
    return 2 * max(1, int(round(seconds * sample_rate / 2))) + 1  # odd: centred filters


def limiter_context(sample_rate: float, lookahead_s: float = 0.002, hold_s: float = 0.03) -> int:
    """Samples of context :func:`limiter_gain` needs on each side of the samples it returns."""
    return (_window(hold_s, sample_rate) + _window(lookahead_s, sample_rate)) // 2 + _TP_MARGIN + 2


#: Default context (samples) at 48 kHz and below; the renderer calls :func:`limiter_context`.
LIMITER_CONTEXT = limiter_context(48000)


def limiter_gain(audio: np.ndarray, ceiling: float, sample_rate: float, margin: int, *,
                 lookahead_s: float = 0.002, hold_s: float = 0.03) -> np.ndarray:
    """Gain curve (linear, <= 1) that keeps ``audio``'s true peak at or under ``ceiling``.

    The required gain ``min(1, ceiling / true_peak)`` is held by a minimum filter over
    ``hold_s`` and smoothed by a moving average over ``lookahead_s``; every average is over
    minima whose windows contain the sample itself, so the result never exceeds the required
    gain at any sample (a brick wall), while it moves smoothly (no clicks) and early (look-ahead).

    Parameters
    ----------
    audio : np.ndarray
        ``(channels, samples)`` with ``margin`` samples of context at each end.
    ceiling : float
        Linear true-peak ceiling (10 ** (dBTP / 20)).
    sample_rate : float
        Hz.
    margin : int
        Context samples at each end, at least :func:`limiter_context`; the result covers the
        samples in between.
    """
    env = true_peak_envelope(audio, above=ceiling)
    need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    hold = minimum_filter1d(need, _window(hold_s, sample_rate), mode="nearest")
    gain = uniform_filter1d(hold, _window(lookahead_s, sample_rate), mode="nearest")
    # float rounding in the average must not lift a sample above its requirement
    gain = np.minimum(gain, need)
    n = audio.shape[-1]
    return gain[margin:n - margin].astype(np.float32)
