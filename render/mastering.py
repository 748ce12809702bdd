"""Mastering a mix that may not fit in memory: streaming loudness, true peak, and a limiter.

The renderer measures the mix block by block (pass 1), then writes it with one gain and a
true-peak limiter (pass 2), so a 60-minute mix never sits in memory whole.

- :class:`~blendfx.dsp.loudness.LoudnessMeter` (in the core, which the Composer's mixer shares):
  BS.1770-4 integrated loudness fed in blocks.
- :func:`true_peak_envelope`: per-sample true-peak estimate from 4x oversampling (BS.1770-4
  Annex 2).
- :func:`limiter_gain`: a look-ahead brick-wall gain curve that keeps the (oversampled) peak
  under a ceiling, computed from a signal with context on both sides, so blocks join seamlessly.

Loudness and true-peak helpers for whole arrays live in :mod:`blendfx.dsp.loudness`; this module
holds only what streaming mastering adds (block-wise metering, per-sample true-peak envelopes
with context, the limiter), and shares that module's oversampling filter.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from blendfx.dsp.loudness import OVERSAMPLE, TILE, oversampling_filter, tile_peaks
from scipy.ndimage import minimum_filter1d, uniform_filter1d

__all__ = ["true_peak_envelope", "true_peak_max", "limiter_gain", "limit",
           "limiter_context", "LIMITER_CONTEXT",
           "OVERSAMPLING", "db"]

#: True-peak oversampling factor (BS.1770-4: 4x), the same as blendfx.dsp.loudness's.
OVERSAMPLING = OVERSAMPLE
#: Samples of context the oversampling filter needs on each side of a block.
_TP_MARGIN = 32


def db(linear: float) -> float:
    """20 log10 of a linear amplitude; -inf for 0."""
    return float(20.0 * np.log10(linear)) if linear > 0 else float("-inf")


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
    env = _envelope(np.asarray(audio, dtype=np.float32), above)[0]
    n = env.size
    return env[margin:n - margin] if margin else env


def _envelope(audio: np.ndarray, above: float | None, mag: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """``true_peak_envelope`` without margins, and which samples hold exact values (the
    others hold sample magnitudes and are known to have true peaks <= ``above``). ``mag``:
    the sample magnitudes (max over channels), when the caller has them."""
    n = audio.shape[-1]
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, bool)
    env = np.abs(audio).max(axis=0) if mag is None else mag.copy()
    if above is None:
        _raise_to_interpolated(audio, env)
        return env, np.ones(n, bool)
    hot = _stretches_over(env, above / _interpolation_bound())
    if hot.sum() * _SEGMENT > n // 2:  # mostly loud: one pass is cheaper
        _raise_to_interpolated(audio, env)
        return env, np.ones(n, bool)
    exact = np.repeat(hot, _SEGMENT)[:n]
    starts, stops = _runs(hot, n)
    _oversample_runs(audio, starts, stops, env)
    return env, exact


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


_SEGMENT = 256  # samples per stretch in the pruned computations


def _raise_to_interpolated(audio: np.ndarray, env: np.ndarray) -> None:
    """Raise ``env`` (the sample magnitudes of ``audio``, max over channels) at every sample to
    the largest magnitude of the OVERSAMPLING - 1 interpolated values after it.

    The interpolation filter is :mod:`blendfx.dsp.loudness`'s (a Nyquist filter: its on-sample
    branch returns the samples themselves), so only the other branches are computed, as one
    float32 matrix product per 32-position tile (:func:`blendfx.dsp.loudness.tile_peaks`): about
    six times faster than three correlations, and equal to them to float32 rounding (5e-7
    relative; the correlations accumulated in float64).
    """
    n = env.size
    np.maximum(env, tile_peaks(audio, np.arange(-(-n // TILE))).ravel()[:n], out=env)


@lru_cache(maxsize=1)
def _reach() -> int:
    """Samples an interpolated value reads on each side of its position (at most)."""
    return oversampling_filter()[0].shape[0] // 2


def _interpolation_bound() -> float:
    """Largest possible ratio of an interpolated value to the largest nearby sample magnitude."""
    return oversampling_filter()[1]


def _stretches_over(mag: np.ndarray, level: float) -> np.ndarray:
    """Which ``_SEGMENT``-sample stretches (bool each) have a sample magnitude over ``level``
    in themselves or a neighbour (a loud sample near an edge lifts the next stretch's
    interpolated values too)."""
    seg, n = _SEGMENT, mag.size
    count = -(-n // seg)
    peaks = np.pad(mag, (0, count * seg - n)).reshape(count, seg).max(axis=1)
    over = peaks > level
    hot = over.copy()
    hot[1:] |= over[:-1]
    hot[:-1] |= over[1:]
    return hot


def _runs(stretches: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``[start, stop)`` of each run of consecutive True stretches."""
    edges = np.diff(np.concatenate([[0], stretches.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1) * _SEGMENT
    stops = np.minimum(np.flatnonzero(edges == -1) * _SEGMENT, n)
    return starts, stops


def _oversample_runs(audio: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                     out: np.ndarray) -> None:
    """Raise ``out`` over each ``[start, stop)`` to the largest magnitude of the interpolated
    values at each sample (``out`` holds the sample magnitudes there, or less when the caller
    accounts for them itself): :func:`_raise_to_interpolated` over the runs only.

    Only the 32-position tiles that cover the runs are interpolated, all in one call of
    :func:`blendfx.dsp.loudness.tile_peaks` on the signal itself (a tile reads its own context;
    beyond the signal's ends it reads the zeros the filter assumes).
    """
    if starts.size == 0:
        return
    first, last = starts // TILE, (stops - 1) // TILE + 1
    sizes = last - first
    # the tiles of every run, concatenated (runs are sorted; neighbours may share a tile)
    tiles = np.unique(np.arange(int(sizes.sum())) + np.repeat(first - (np.cumsum(sizes) - sizes),
                                                              sizes))
    inter = tile_peaks(audio, tiles).ravel()
    pos = (tiles[:, None] * TILE + np.arange(TILE)).ravel()
    run = np.searchsorted(starts, pos, side="right") - 1
    inside = (run >= 0) & (pos < stops[np.maximum(run, 0)])
    pos = pos[inside]
    out[pos] = np.maximum(out[pos], inter[inside])


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
    return limit(audio, ceiling, sample_rate, margin, lookahead_s=lookahead_s, hold_s=hold_s)[0]


def limit(audio: np.ndarray, ceiling: float, sample_rate: float, margin: int, peak_margin: int = 0,
          *, lookahead_s: float = 0.002, hold_s: float = 0.03) -> tuple[np.ndarray, float]:
    """:func:`limiter_gain` and the true peak of the limited signal, from one envelope.

    Returns ``(gain, peak)``: ``gain`` as :func:`limiter_gain` (for the samples between the
    ``margin`` context samples), and the exact true peak (linear) of ``audio * gain`` over those
    samples less ``peak_margin`` at each end (context for the oversampling filter, >= 32).

    The peak reuses the limiter's envelope instead of oversampling the output again: wherever
    the gain is constant over the interpolation filter's reach, the output's true peak is that
    gain times the input's. Only stretches where the gain moves, and stretches whose bound
    could still beat the running maximum, are oversampled.
    """
    audio = np.asarray(audio, dtype=np.float32)
    n = audio.shape[-1]
    mag = np.abs(audio).max(axis=0)
    env, exact = _envelope(audio, ceiling, mag)
    need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    hold = minimum_filter1d(need, _window(hold_s, sample_rate), mode="nearest")
    gain = uniform_filter1d(hold, _window(lookahead_s, sample_rate), mode="nearest")
    # float rounding in the average must not lift a sample above its requirement
    gain = np.minimum(gain, need).astype(np.float32)
    lo, hi = margin + peak_margin, n - margin - peak_margin
    if hi <= lo or peak_margin < _TP_MARGIN:
        peak = 0.0 if hi <= lo else true_peak_max(
            audio[:, margin:n - margin] * gain[margin:n - margin], peak_margin)
        return gain[margin:n - margin], peak
    peak = _peak_after_gain(audio, gain, mag, env, exact, lo, hi)
    return gain[margin:n - margin], peak


def _peak_after_gain(audio: np.ndarray, gain: np.ndarray, mag: np.ndarray, env: np.ndarray,
                     exact: np.ndarray, lo: int, hi: int) -> float:
    """Exact true peak of ``audio * gain`` over ``[lo, hi)``, given ``audio``'s sample
    magnitudes ``mag`` and envelope ``env`` (exact where ``exact``). Needs >= 32 samples of
    context around."""
    half = _reach()  # an interpolated value reads the samples within +-half
    g = gain[lo:hi]
    # moving[p]: the gain changes somewhere within p's reach
    steps = np.concatenate([[0], np.cumsum(gain[1:] != gain[:-1], dtype=np.int32)])
    moving = steps[lo + half:hi + half] != steps[lo - half:hi - half]
    scaled = mag[lo:hi] * g  # the output's sample magnitudes
    best = float(scaled.max())
    # constant gain over a value's reach: the output's true peak there is gain * env
    known = exact[lo:hi] & ~moving
    if known.any():
        best = max(best, float((env[lo:hi] * g)[known].max()))
    m = hi - lo
    count = -(-m // _SEGMENT)

    def per_stretch(values: np.ndarray, fill: float) -> np.ndarray:
        return np.pad(values, (0, count * _SEGMENT - m), constant_values=fill).reshape(
            count, _SEGMENT)

    # stretches where the gain moves: oversample the output itself
    todo = per_stretch(moving, False).any(axis=1)
    # stretches with unknown values: their bound (nearby samples times the interpolation
    # filter's largest gain) decides whether they could beat the maximum
    unknown = per_stretch(~exact[lo:hi] & ~moving, False).any(axis=1)
    # a value reads samples of its own stretch and at most the neighbouring ones
    peaks = per_stretch(scaled, 0.0).max(axis=1)
    edge = np.array([(mag[lo - _TP_MARGIN:lo] * gain[lo - _TP_MARGIN:lo]).max(),
                     (mag[hi:hi + _TP_MARGIN] * gain[hi:hi + _TP_MARGIN]).max()])
    near = peaks.copy()
    near[1:] = np.maximum(near[1:], peaks[:-1])
    near[:-1] = np.maximum(near[:-1], peaks[1:])
    near[0], near[-1] = max(near[0], edge[0]), max(near[-1], edge[1])
    bound = near * _interpolation_bound()
    todo |= unknown & (bound > best)
    starts, stops = _runs(todo, m)
    if starts.size:
        env_out = np.zeros(audio.shape[-1], np.float32)  # (the samples are in `best`)
        _oversample_runs(audio * gain, starts + lo, stops + lo, env_out)
        best = max(best, float(env_out[lo:hi].max()))
    return best
