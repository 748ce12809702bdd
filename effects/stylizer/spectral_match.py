"""Long-term average spectra, smooth bounded matching EQ, and a spectral distance.

A recording's colouration shows in its long-term average spectrum (LTAS, Welch's averaged
periodogram). Matching one sound's LTAS to another's is a ratio of the two, smoothed in
fractional octaves (so the EQ follows the tonal balance, not individual partials), offset so the
EQ keeps the sound's power, and clipped to a range in dB (so a reference with nothing above
8 kHz cuts the highs by at most that much instead of muting them). The EQ is applied zero-phase
in the frequency domain.

:func:`ltas_distance_db` is the weight-free spectral distance used by tests and benchmarks: the
RMS difference in dB between two level-normalized log-mel long-term spectra.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from blendfx.buffers import to_channels_first
from blendfx.dsp.melscale import mel_filters
from scipy import fft as sp_fft

__all__ = [
    "mean_power",
    "ltas",
    "smooth_octaves",
    "matching_eq_db",
    "eq_gains",
    "apply_eq",
    "ltas_distance_db",
    "third_octave_levels_db",
    "third_octave_distance_db",
]


def mean_power(audio: np.ndarray) -> float:
    """Mean square of all samples (the integral of the long-term spectrum), accumulated in
    float64 without a float64 copy of the audio."""
    x = np.asarray(audio)
    if x.size == 0:
        return 0.0
    flat = x.reshape(1, -1)
    return float(np.einsum("ij,ij->", flat, flat, dtype=np.float64)) / x.size


def ltas(audio: np.ndarray, sample_rate: float, n_fft: int | None = None,
         max_frames: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Long-term average power spectral density of ``audio`` (channels averaged).

    Welch's method: Hann-windowed frames, half-overlapping, their periodograms averaged. Long
    signals use at most ``max_frames`` frames per channel, evenly spread over the whole signal
    (an average over 512 frames is already within a few tenths of a dB).

    Parameters
    ----------
    audio : np.ndarray
        Any layout.
    sample_rate : float
        Sample rate in Hz.
    n_fft : int, optional
        Frame length in samples (default: about 93 ms, 4096 at 44.1 kHz; shorter for signals
        shorter than that).
    max_frames : int
        Most frames averaged per channel.

    Returns
    -------
    freqs : np.ndarray
        Frequencies in Hz.
    psd : np.ndarray
        One-sided power spectral density in units^2 / Hz, averaged over channels.
    """
    data, _ = to_channels_first(audio)
    sr = float(sample_rate)
    n = data.shape[-1]
    if n_fft is None:
        n_fft = 1 << int(np.round(np.log2(0.093 * sr)))
    n_fft = int(max(16, min(n_fft, n)))
    frames = np.lib.stride_tricks.sliding_window_view(data, n_fft, axis=-1)
    count = frames.shape[1]
    step = max(n_fft // 2, (count - 1) // max(1, max_frames - 1) if count > max_frames else 1)
    window = _hann(n_fft)
    segs = frames[:, ::step] * window  # (channels, frames, n_fft)
    power = np.abs(sp_fft.rfft(segs, axis=-1)) ** 2
    psd = power.mean(axis=(0, 1)) / (sr * float(np.sum(window ** 2)))
    psd[1: (n_fft + 1) // 2] *= 2.0  # one-sided: fold the negative frequencies in
    return sp_fft.rfftfreq(n_fft, 1.0 / sr), psd


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def smooth_octaves(freqs: np.ndarray, psd: np.ndarray, fraction: float = 1.0 / 3.0) -> np.ndarray:
    """Fractional-octave smoothing of a power spectrum: each bin becomes the mean power over
    ``fraction`` of an octave centred on it (at least its own bin)."""
    freqs = np.asarray(freqs, dtype=np.float64)
    psd = np.asarray(psd, dtype=np.float64)
    half = 2.0 ** (fraction / 2.0)
    c = np.concatenate([[0.0], np.cumsum(psd)])
    lo = np.searchsorted(freqs, freqs / half, side="left")
    hi = np.searchsorted(freqs, freqs * half, side="right")
    idx = np.arange(freqs.size)
    lo = np.minimum(lo, idx)
    hi = np.maximum(hi, idx + 1)
    # cumulative sums lose the smallest values to rounding: never let that go below zero
    return np.maximum((c[hi] - c[lo]) / (hi - lo), 0.0)


def matching_eq_db(freqs: np.ndarray, source_psd: np.ndarray, target_psd: np.ndarray, *,
                   max_db: float = 9.0, smoothing_oct: float = 1.0 / 3.0,
                   fmin: float = 40.0, fmax: float | None = None) -> np.ndarray:
    """EQ curve in dB that turns the source's long-term spectral shape into the target's.

    Parameters
    ----------
    freqs : np.ndarray
        Frequencies in Hz shared by both spectra.
    source_psd, target_psd : np.ndarray
        Long-term power spectra (e.g. from :func:`ltas`); only their shapes matter.
    max_db : float
        Largest boost or cut in dB.
    smoothing_oct : float
        Smoothing width in octaves.
    fmin, fmax : float
        The EQ is fitted between these frequencies in Hz and held constant outside (default
        ``fmax``: 0.95 x Nyquist), where spectra are dominated by DC and anti-aliasing.

    Returns
    -------
    np.ndarray
        Gain in dB per frequency, within ``[-max_db, max_db]``, offset so that the source's
        total power is kept (as far as the limits allow).
    """
    freqs = np.asarray(freqs, dtype=np.float64)
    if fmax is None:
        fmax = 0.95 * freqs[-1]
    src = smooth_octaves(freqs, source_psd, smoothing_oct)
    tgt = smooth_octaves(freqs, target_psd, smoothing_oct)
    band = (freqs >= fmin) & (freqs <= fmax)
    if not band.any() or src[band].sum() <= 0 or tgt[band].sum() <= 0:
        return np.zeros(freqs.size)
    # normalise both to unit power in the fitted band, floor at -80 dB of the peak so empty
    # regions give a bounded (then clipped) ratio instead of infinities
    src_n = src / src[band].sum()
    tgt_n = tgt / tgt[band].sum()
    floor = 1e-8 * max(src_n[band].max(), tgt_n[band].max())
    ratio = 10.0 * np.log10((tgt_n + floor) / (src_n + floor))
    inside = np.nonzero(band)[0]
    ratio[: inside[0]] = ratio[inside[0]]
    ratio[inside[-1] + 1:] = ratio[inside[-1]]
    gains = np.clip(ratio, -max_db, max_db)
    weight = src_n / src_n.sum()
    for _ in range(4):  # keep the source's power: re-centre, re-clip (converges in a few steps)
        offset = 10.0 * np.log10(np.sum(weight * 10.0 ** (gains / 10.0)))
        gains = np.clip(gains - offset, -max_db, max_db)
    return gains


def eq_gains(freqs: np.ndarray, gains_db: np.ndarray, n_fft: int, sample_rate: float) -> np.ndarray:
    """Linear amplitude gains on the ``rfft`` grid of length ``n_fft`` for an EQ curve given in dB
    at ``freqs`` (interpolated in log frequency, constant beyond the ends)."""
    grid = sp_fft.rfftfreq(n_fft, 1.0 / float(sample_rate))
    f = np.asarray(freqs, dtype=np.float64)
    pos = f > 0
    logf = np.log(np.maximum(grid, f[pos][0]))
    db = np.interp(logf, np.log(f[pos]), np.asarray(gains_db, dtype=np.float64)[pos])
    return 10.0 ** (db / 20.0)


def apply_eq(audio: np.ndarray, sample_rate: float, freqs: np.ndarray,
             gains_db: np.ndarray) -> np.ndarray:
    """Apply an EQ curve (dB at ``freqs``) zero-phase to ``(channels, samples)`` audio.

    The whole signal is transformed at once; it is zero-padded by a quarter of its length (at
    least 8192 samples) so the smooth curve's short impulse response does not wrap around.
    """
    data = np.asarray(audio, dtype=np.float32)
    n = data.shape[-1]
    if n == 0:
        return data
    n_fft = sp_fft.next_fast_len(n + max(8192, n // 4), real=True)
    spec = sp_fft.rfft(data, n=n_fft, axis=-1)
    spec *= eq_gains(freqs, gains_db, n_fft, sample_rate).astype(np.complex64 if spec.dtype ==
                                                                   np.complex64 else np.complex128)
    return sp_fft.irfft(spec, n=n_fft, axis=-1)[..., :n].astype(np.float32)


@lru_cache(maxsize=8)
def _mel_weights(sample_rate: float, n_fft: int, n_mels: int) -> np.ndarray:
    return mel_filters(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=30.0,
                               fmax=min(16000.0, sample_rate / 2.0), htk=True, norm="slaney")


def ltas_distance_db(a: np.ndarray, b: np.ndarray, sample_rate: float, n_mels: int = 64,
                     floor_db: float = -60.0) -> float:
    """Spectral distance in dB between two sounds' long-term spectral shapes (lower = closer).

    Each sound's LTAS is pooled into ``n_mels`` mel bands (30 Hz to 16 kHz), normalised to unit
    total power and floored at ``floor_db`` below its loudest band; the result is the RMS over
    bands of the difference in dB. Level differences do not count, only the shape.
    """
    sr = float(sample_rate)
    n_fft = 1 << int(np.round(np.log2(0.093 * sr)))
    bands = []
    for x in (a, b):
        freqs, psd = ltas(x, sr, n_fft=n_fft)
        mel = _mel_weights(sr, (freqs.size - 1) * 2, n_mels) @ psd
        mel = mel / max(mel.sum(), 1e-30)
        level = 10.0 * np.log10(mel + 1e-30)
        bands.append(np.maximum(level, level.max() + floor_db))
    return float(np.sqrt(np.mean((bands[0] - bands[1]) ** 2)))


def third_octave_levels_db(audio: np.ndarray, sample_rate: float, fmin: float = 40.0,
                           fmax: float = 10000.0,
                           floor_db: float = -60.0) -> tuple[np.ndarray, np.ndarray]:
    """Long-term 1/3-octave band levels in dB re. the total over the bands (shape only),
    floored ``floor_db`` below the loudest band (so empty bands do not dominate a distance).

    Parameters
    ----------
    audio : np.ndarray
        Any layout (channels averaged in power).
    sample_rate : float
        Hz.
    fmin, fmax : float
        Limits in Hz for the band centres (1 kHz x 2^(k/3) inside them).
    floor_db : float
        Lowest level kept, in dB re. the loudest band.

    Returns
    -------
    centers : np.ndarray
        Band centres in Hz.
    levels : np.ndarray
        Level per band in dB, the bands' powers summing to 0 dB.
    """
    sr = float(sample_rate)
    freqs, psd = ltas(audio, sr, n_fft=1 << int(np.round(np.log2(0.186 * sr))))
    k = np.arange(np.ceil(3 * np.log2(fmin / 1000.0)), np.floor(3 * np.log2(fmax / 1000.0)) + 1)
    centers = 1000.0 * 2.0 ** (k / 3.0)
    c = np.concatenate([[0.0], np.cumsum(psd)])
    lo = np.searchsorted(freqs, centers * 2.0 ** (-1.0 / 6.0))
    hi = np.searchsorted(freqs, centers * 2.0 ** (1.0 / 6.0))
    band = np.maximum(c[hi] - c[lo], 0.0)
    level = 10.0 * np.log10(band / max(band.sum(), 1e-30) + 1e-30)
    return centers, np.maximum(level, level.max() + floor_db)


def third_octave_distance_db(a: np.ndarray, b: np.ndarray, sample_rate: float) -> float:
    """RMS over 1/3-octave bands (centres 50 Hz-8 kHz) of the difference in dB between two sounds'
    level-normalised long-term band levels: how differently they are coloured (lower = closer).
    """
    _, la = third_octave_levels_db(a, sample_rate)
    _, lb = third_octave_levels_db(b, sample_rate)
    return float(np.sqrt(np.mean((la - lb) ** 2)))
