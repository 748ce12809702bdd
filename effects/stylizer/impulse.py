"""Synthetic room impulse responses with a given RT60 per octave band.

A diffuse reverberant tail is, to a good approximation, Gaussian noise whose energy decays
exponentially at a rate set by the reverberation time, band by band (Schroeder's statistical room
model; the same construction as Jot-style feedback-delay-network targets and Dattorro/Moorer's
"noise tails"). So the response here is a direct impulse plus seeded Gaussian noise, split into
octave bands with amplitude-complementary zero-phase weights (the bands sum back to the noise
exactly; neighbours cross over in a quarter octave around their common edge), each band
multiplied by ``10 ** (-3 t / RT60_band)`` (-60 dB of energy at RT60), and summed. The tail's
energy is set by the direct-to-reverberant ratio (DRR).
"""

from __future__ import annotations

import numpy as np
from blendfx.errors import ParameterError
from scipy import fft as sp_fft

__all__ = ["synthetic_ir", "band_weights"]

_MAX_LENGTH_S = 12.0
# crossover width between octave bands, octaves: narrow, so that an octave filter (edges at the
# geometric means of neighbouring centres) measures its own band's decay, not a neighbour's
# (a crossover from centre to centre put a slow 500 Hz decay into the 1 kHz octave's T30)
_TRANSITION_OCT = 0.25


def band_weights(freqs_hz: np.ndarray, centers_hz: np.ndarray,
                 transition_oct: float = _TRANSITION_OCT) -> np.ndarray:
    """Amplitude-complementary band weights ``(bands, len(freqs_hz))`` that sum to 1 everywhere.

    Adjacent bands cross over at their common edge (the geometric mean of their centres, where
    an octave filter's passband ends) with a ``cos^2`` / ``sin^2`` pair in log frequency
    ``transition_oct`` octaves wide; the lowest band extends to 0 Hz and the highest to Nyquist.
    ``transition_oct=1`` (with octave-spaced centres) crosses over from centre to centre.

    Parameters
    ----------
    freqs_hz : np.ndarray
        Frequencies in Hz.
    centers_hz : np.ndarray
        Band centres in Hz, ascending.
    transition_oct : float
        Width of each crossover in octaves (> 0, at most the centres' spacing).
    """
    centers = np.asarray(centers_hz, dtype=np.float64)
    logf = np.log2(np.maximum(np.asarray(freqs_hz, dtype=np.float64), 1e-3))
    logc = np.log2(centers)
    w = np.zeros((centers.size, logf.size))
    if centers.size == 1:
        w[0] = 1.0
        return w
    if not transition_oct > 0:
        raise ParameterError(f"transition_oct must be > 0 octaves, got {transition_oct}")
    # the share of the upper band at each crossover: 0 below its start, 1 above its end
    edges = 0.5 * (logc[1:] + logc[:-1])
    half = 0.5 * np.minimum(float(transition_oct), np.diff(logc))
    up = [np.sin(0.5 * np.pi * np.clip((logf - e + h) / (2.0 * h), 0.0, 1.0)) ** 2
          for e, h in zip(edges, half, strict=True)]
    for i in range(centers.size):
        lower = up[i - 1] if i > 0 else 1.0
        upper = 1.0 - up[i] if i + 1 < centers.size else 1.0
        w[i] = lower * upper
    return w


def synthetic_ir(rt60_s: np.ndarray, centers_hz: np.ndarray, sample_rate: float, *,
                 drr_db: float = 0.0, channels: int = 1, seed: int | np.random.Generator = 0,
                 predelay_s: float = 0.0, length_s: float | None = None,
                 band_gains_db: np.ndarray | None = None, early_s: float = 0.0,
                 early_to_late_db: float | None = None) -> np.ndarray:
    """A synthetic impulse response with the given reverberation time per band.

    Parameters
    ----------
    rt60_s : np.ndarray
        RT60 in s per band (finite, > 0).
    centers_hz : np.ndarray
        Band centres in Hz, ascending (octave bands in blendfx).
    sample_rate : float
        Sample rate in Hz.
    drr_db : float
        Direct-to-reverberant energy ratio in dB: the direct impulse (amplitude 1 at sample 0)
        has this many dB more energy than the whole tail.
    channels : int
        Number of output channels; each gets its own (decorrelated) tail, the same direct path.
    seed : int or np.random.Generator
        Seed (or generator) for the tail noise: same seed, same response.
    predelay_s : float
        Gap in s between the direct sound and the start of the tail.
    length_s : float, optional
        Length in s (default: the longest RT60 plus the pre-delay, where the tail is 60 dB down;
        at most 12 s).
    band_gains_db : np.ndarray, optional
        Level of each band's tail in dB relative to the others (the room's colouration; default
        0 dB: white noise before the decay, so each band's tail energy grows with its RT60). The
        tail as a whole still has the energy ``drr_db`` sets.
    early_s : float
        End of the early part of the response in s after the direct sound (early reflections).
    early_to_late_db : float, optional
        Energy of the tail before ``early_s`` over its energy after, in dB: the early part is
        raised (never lowered) to it, so the response holds more early reflections than a plain
        exponential tail (as rooms do). Default: the plain tail. The whole tail still has the
        energy ``drr_db`` sets.

    Returns
    -------
    np.ndarray
        ``(channels, samples)`` float32 response.
    """
    rt = np.asarray(rt60_s, dtype=np.float64)
    centers = np.asarray(centers_hz, dtype=np.float64)
    if rt.shape != centers.shape or rt.size == 0:
        raise ParameterError(f"rt60_s ({rt.shape}) and centers_hz ({centers.shape}) must be "
                             "non-empty and of the same length")
    if not (np.isfinite(rt).all() and (rt > 0).all()):
        raise ParameterError(f"rt60_s must be finite and > 0 s, got {np.round(rt, 3).tolist()}")
    gains = np.zeros(rt.size) if band_gains_db is None else np.asarray(band_gains_db, np.float64)
    if gains.shape != rt.shape or not np.isfinite(gains).all():
        raise ParameterError(f"band_gains_db must be finite, one per band ({rt.shape}), got "
                             f"{np.shape(band_gains_db)}")
    if channels < 1:
        raise ParameterError(f"channels must be >= 1, got {channels}")
    sr = float(sample_rate)
    if length_s is None:
        length_s = float(rt.max()) + predelay_s
    n = max(2, int(round(min(length_s, _MAX_LENGTH_S) * sr)))
    start = min(n - 1, max(1, int(round(predelay_s * sr))))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    m = n - start
    m_fft = sp_fft.next_fast_len(m, real=True)
    noise = rng.standard_normal((channels, m_fft))
    spec = sp_fft.rfft(noise, axis=-1)
    weights = band_weights(sp_fft.rfftfreq(m_fft, 1.0 / sr), centers)
    t = np.arange(m) / sr
    tail = np.zeros((channels, m))
    for w, rt_b, fc, g in zip(weights, rt, centers, gains, strict=True):
        band = sp_fft.irfft(spec * (w * 10.0 ** (g / 20.0)), n=m_fft, axis=-1)[:, :m]
        band = _flatten_envelope(band, sr, fc)
        tail += band * 10.0 ** (-3.0 * t / rt_b)  # amplitude: -60 dB of energy at t = RT60
    # fade the last 5 % so a response cut before -60 dB does not end in a click
    fade = max(1, m // 20)
    tail[:, -fade:] *= np.cos(0.5 * np.pi * np.arange(1, fade + 1) / fade)
    k = int(round(early_s * sr)) - start
    if early_to_late_db is not None and 0 < k < m:
        early = (tail[:, :k] ** 2).sum(axis=-1, keepdims=True)
        late = np.maximum((tail[:, k:] ** 2).sum(axis=-1, keepdims=True), 1e-30)
        want = late * 10.0 ** (early_to_late_db / 10.0)
        gain = np.sqrt(np.maximum(want / np.maximum(early, 1e-30), 1.0))
        # the raised early part joins the tail over its last fifth (no step)
        ramp = np.ones(k)
        j = max(1, k // 5)
        ramp[k - j:] = np.linspace(1.0, 0.0, j)
        tail[:, :k] *= 1.0 + (gain - 1.0) * ramp
    energy = np.maximum((tail ** 2).sum(axis=-1, keepdims=True), 1e-30)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / energy)
    out = np.zeros((channels, n))
    out[:, 0] = 1.0
    out[:, start:] += tail
    return out.astype(np.float32)


def _flatten_envelope(band: np.ndarray, sr: float, center_hz: float) -> np.ndarray:
    """Divide band-limited noise by its own short-term RMS (over about 4 periods of the octave's
    bandwidth), keeping its overall RMS.

    A narrow band of noise has a strongly fluctuating envelope, so a short response's measured
    decay would scatter from draw to draw (most in the low bands); a flattened envelope makes
    every draw decay as asked while the fine structure stays random.
    """
    win = max(8, int(round(4.0 / (center_hz / np.sqrt(2.0)) * sr)))
    if band.shape[-1] <= 2 * win:
        return band
    n = band.shape[-1]
    padded = np.pad(band * band, [(0, 0)] * (band.ndim - 1) + [(win // 2, win - win // 2)],
                    mode="edge")
    c = np.concatenate([np.zeros(band.shape[:-1] + (1,)), np.cumsum(padded, axis=-1)], axis=-1)
    power = (c[..., win: win + n] - c[..., :n]) / win  # mean of the win samples around each one
    rms = np.sqrt(np.mean(band * band, axis=-1, keepdims=True))
    return band * rms / np.sqrt(np.maximum(power, 1e-12 * rms * rms))
