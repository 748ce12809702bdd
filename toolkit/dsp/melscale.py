"""Mel scales and filterbanks, the same numbers as librosa's, without importing librosa.

``import librosa`` and its lazily loaded submodules (numba-compiled helpers, audio decoders)
cost about a CPU-second in a fresh process, which a render or a short Composer run pays for a
filterbank and an onset envelope. These functions are line-by-line ports of librosa 0.11's
``hz_to_mel``, ``mel_to_hz``, ``mel_frequencies``, ``filters.mel``, ``power_to_db`` and
``onset.onset_strength`` (the cases blendfx uses), doing the same floating-point operations in
the same order, so their results are bit-identical (``tests/test_melscale.py`` checks it
against librosa).
"""

from __future__ import annotations

import numpy as np

__all__ = ["hz_to_mel", "mel_to_hz", "mel_frequencies", "mel_filters", "power_to_db",
           "onset_strength"]

_F_SP = 200.0 / 3  # Slaney: Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0  # the log region starts here (Hz)
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0  # mels per log step in the log region


def hz_to_mel(frequencies: float | np.ndarray, *, htk: bool = False) -> np.ndarray:
    """Hz to mels: HTK (``2595 log10(1 + f / 700)``) or Slaney (linear to 1 kHz, then log)."""
    frequencies = np.asanyarray(frequencies)
    if htk:
        return 2595.0 * np.log10(1.0 + frequencies / 700.0)
    mels = (frequencies - 0.0) / _F_SP
    if frequencies.ndim:
        log_t = frequencies >= _MIN_LOG_HZ
        mels[log_t] = _MIN_LOG_MEL + np.log(frequencies[log_t] / _MIN_LOG_HZ) / _LOGSTEP
    elif frequencies >= _MIN_LOG_HZ:
        mels = _MIN_LOG_MEL + np.log(frequencies / _MIN_LOG_HZ) / _LOGSTEP
    return mels


def mel_to_hz(mels: float | np.ndarray, *, htk: bool = False) -> np.ndarray:
    """Mels to Hz (the inverse of :func:`hz_to_mel`)."""
    mels = np.asanyarray(mels)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    freqs = 0.0 + _F_SP * mels
    if mels.ndim:
        log_t = mels >= _MIN_LOG_MEL
        freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    elif mels >= _MIN_LOG_MEL:
        freqs = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - _MIN_LOG_MEL))
    return freqs


def mel_frequencies(n_mels: int = 128, *, fmin: float = 0.0, fmax: float = 11025.0,
                    htk: bool = False) -> np.ndarray:
    """``n_mels`` frequencies (Hz) evenly spaced in mels from ``fmin`` to ``fmax`` (Hz)."""
    mels = np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels)
    return mel_to_hz(mels, htk=htk)


def mel_filters(*, sr: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                fmax: float | None = None, htk: bool = False, norm: str | None = "slaney",
                dtype: type = np.float32) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` over the rfft bins of ``n_fft``
    samples at ``sr`` Hz, between ``fmin`` and ``fmax`` (Hz, default ``sr / 2``); ``norm``
    'slaney' scales each triangle to unit area per Hz, None leaves peaks at 1."""
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    if fmax is None:
        fmax = float(sr) / 2
    n_mels = int(n_mels)
    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=dtype)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    if norm == "slaney":
        enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
        weights *= enorm[:, np.newaxis]
    return weights


def power_to_db(power: np.ndarray, *, top_db: float | None = 80.0, amin: float = 1e-10
                ) -> np.ndarray:
    """``10 log10(max(power, amin))`` in dB re 1, floored ``top_db`` under its maximum."""
    log_spec = 10.0 * np.log10(np.maximum(amin, power))
    log_spec -= 10.0 * np.log10(np.maximum(amin, np.abs(1.0)))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def onset_strength(log_spec: np.ndarray, *, lag: int = 1, n_fft: int = 2048,
                   hop_length: int = 512) -> np.ndarray:
    """Spectral flux onset strength of a ``(bands, frames)`` log spectrogram: the mean over
    bands of the positive difference to ``lag`` frames before, delayed by ``lag`` frames plus
    half a ``n_fft`` window in hops (librosa's centring; its defaults), ``(frames,)``."""
    flux = np.maximum(0.0, log_spec[..., lag:] - log_spec[..., :-lag])
    env = np.empty((1, flux.shape[-1]), dtype=flux.dtype)
    env[0] = np.mean(flux, axis=-2)
    env = np.pad(env, [(0, 0), (int(lag + n_fft // (2 * hop_length)), 0)], mode="constant")
    return env[0, :log_spec.shape[-1]]
