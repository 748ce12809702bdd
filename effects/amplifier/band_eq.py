"""Bark bands over the mel grid, and the static zero-phase EQ that gives each band its own gain.

The per-band mode of :class:`~blendfx.effects.AdaptiveAmplifier` splits the 512-row mel grid
(0-10 kHz) into ``bands`` bands of equal width in Bark (Zwicker's critical-band rate, so each
band covers about the same number of critical bands: 8 bands are ~2.8 Bark each, edges near
0.3, 0.6, 0.9, 1.3, 1.9, 2.8 and 4.3 kHz), chooses one gain per band, and applies the gains as
one linear-phase FIR filter whose response is flat inside each band and crossfades linearly in
dB over ``crossfade_bark`` around each band edge (no steps, so no ringing at the edges; above
the grid's top, 10 kHz, the top band's gain is held). The filter is zero-phase (its delay is
compensated), so the music keeps its timing against the noise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from blendfx.buffers import to_channels_first
from blendfx.errors import ParameterError
from blendfx.spectral.analysis import mel_center_frequencies
from blendfx.spectral.params import SpectrogramParams
from blendfx.spectral.psychoacoustics import bark
from scipy.signal import oaconvolve

__all__ = ["bark_band_edges", "mel_row_bark", "band_of_rows", "band_edges_hz", "band_curve_db",
           "apply_band_eq"]


def bark_band_edges(bands: int, params: SpectrogramParams | None = None) -> np.ndarray:
    """``(bands + 1,)`` band edges in Bark, equally spaced from the mel grid's bottom to its top."""
    if int(bands) < 1:
        raise ParameterError(f"bands = {bands} must be at least 1")
    p = params or SpectrogramParams()
    return np.linspace(float(bark(p.min_frequency)), float(bark(p.max_frequency)), int(bands) + 1)


@lru_cache(maxsize=8)
def mel_row_bark(params: SpectrogramParams | None = None) -> np.ndarray:
    """Bark position ``(mels,)`` of each mel row's centre frequency (rows low-first); cached,
    do not modify."""

    return np.asarray(bark(mel_center_frequencies(params)), dtype=np.float64)


def band_of_rows(edges_bark: np.ndarray, params: SpectrogramParams | None = None) -> np.ndarray:
    """Band index ``(mels,)`` of each mel row (rows low-first), from the band edges in Bark."""
    edges = np.asarray(edges_bark, dtype=np.float64)
    return np.clip(np.searchsorted(edges, mel_row_bark(params), side="right") - 1, 0, edges.size - 2)


def band_edges_hz(edges_bark: np.ndarray) -> np.ndarray:
    """The band edges in Hz (Bark inverted numerically, to 0.1 Hz over 0-24 kHz)."""
    grid = np.linspace(0.0, 24000.0, 240001)
    return np.interp(np.asarray(edges_bark, dtype=np.float64), bark(grid), grid)


def band_curve_db(band_gains_db: np.ndarray, edges_bark: np.ndarray, positions_bark: np.ndarray,
                  crossfade_bark: float = 1.0) -> np.ndarray:
    """Gain in dB at ``positions_bark``: each band's gain inside it, linear in dB across a
    ``crossfade_bark`` wide region around each inner edge (at most the narrower neighbour's
    width), the outer bands' gains held beyond the edges.

    Every value is a convex combination of two neighbouring band gains, so raising one band's
    gain never lowers the curve anywhere.
    """
    gains = np.asarray(band_gains_db, dtype=np.float64)
    edges = np.asarray(edges_bark, dtype=np.float64)
    if gains.size != edges.size - 1:
        raise ParameterError(f"{gains.size} band gains for {edges.size - 1} bands")
    if not np.all(np.isfinite(gains)):
        raise ParameterError("band gains must be finite dB values (mute with a zero output instead)")
    if gains.size == 1:
        return np.full(np.shape(positions_bark), gains[0])
    width = np.diff(edges)
    half = 0.5 * np.minimum(float(crossfade_bark), np.minimum(width[:-1], width[1:]))
    inner = edges[1:-1]
    # knots: band i's gain up to its upper edge minus half the crossfade, band i+1's from its
    # lower edge plus half the crossfade; np.interp holds the end values beyond the outer knots
    x = np.empty(2 * inner.size)
    y = np.empty(2 * inner.size)
    x[0::2], x[1::2] = inner - half, inner + half
    y[0::2], y[1::2] = gains[:-1], gains[1:]
    same = half == 0  # no crossfade: a step (keep the knots strictly ordered)
    x[1::2][same] = np.nextafter(inner[same], np.inf)
    return np.interp(np.asarray(positions_bark, dtype=np.float64), x, y)


def _fir_length(sample_rate: float) -> int:
    """FIR length: the power of two >= sample_rate / 8 (8,192 at 44.1 kHz: 5.4 Hz resolution)."""
    return int(2 ** np.ceil(np.log2(max(float(sample_rate) / 8.0, 64.0))))


def apply_band_eq(audio: np.ndarray, sample_rate: float, band_gains_db: np.ndarray,
                  edges_bark: np.ndarray, crossfade_bark: float = 1.0) -> np.ndarray:
    """Filter ``(channels, samples)`` audio with the band gains (dB), zero-phase.

    The response :func:`band_curve_db` is sampled on a ``sample_rate / 8``-sized FFT grid
    (5.4 Hz at 44.1 kHz), made linear-phase and windowed (Hann), and convolved; the filter's
    delay is removed, so the output lines up with the input sample for sample. Same length and
    channels as the input, float32.
    """

    data = np.asarray(audio, dtype=np.float32)
    if data.ndim != 2:
        data = to_channels_first(data)[0]
    if data.shape[1] == 0:
        return data.copy()
    length = _fir_length(sample_rate)
    freqs = np.fft.rfftfreq(length, 1.0 / float(sample_rate))
    response = 10.0 ** (band_curve_db(band_gains_db, edges_bark, bark(freqs), crossfade_bark) / 20.0)
    # zero-phase response -> even impulse response; centre it and window it (the periodic Hann
    # is symmetric about the centre and zero at the unpaired first tap): linear phase, delay L/2
    taps = np.roll(np.fft.irfft(response, length), length // 2)
    taps *= 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)
    out = oaconvolve(data, taps[None, :].astype(np.float32), mode="full", axes=-1)
    start = length // 2
    return np.ascontiguousarray(out[:, start:start + data.shape[1]], dtype=np.float32)
