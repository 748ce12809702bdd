"""How musical a signal sounds, in two numbers: key clarity and tempo stability.

- :func:`key_clarity`: the best Pearson correlation of the signal's mean chroma (its energy folded
  onto the 12 pitch classes, tuned to the signal's own reference pitch) with the 24 Krumhansl-
  Kessler key profiles (12 major, 12 minor). A major scale or a cadence in one key reads about
  0.9, recorded tonal music 0.6-0.8, broadband noise about 0.3 or less.
- :func:`tempo_stability`: the share of overlapping windows (8 s, hop 2 s) whose local tempo
  (the autocorrelation peak of the onset strength envelope, 40-240 BPM) lies within 4 % of the
  median local tempo, with a tempo of twice or half the median counted as the same pulse. A
  steady click track reads 1.0, a click track whose tempo drifts by half its value reads low.

Both run on numpy/scipy alone (no librosa), about 0.1 s per minute of audio.
"""

from __future__ import annotations

import numpy as np
from blendfx.buffers import to_channels_first, to_mono
from blendfx.dsp.melscale import mel_filters, onset_strength, power_to_db
from blendfx.errors import ParameterError
from blendfx.spectral.analysis import resample
from scipy.signal import find_peaks, stft

__all__ = ["KRUMHANSL_MAJOR", "KRUMHANSL_MINOR", "chroma_profile", "key_clarity", "best_key",
           "local_tempi", "tempo_stability"]

#: Krumhansl-Kessler probe-tone ratings, tonic first (Krumhansl 1990).
KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

_RATE = 22050.0  # analysis rate of both measures, Hz
_N_FFT = 8192  # 0.37 s at 22.05 kHz: 2.7 Hz bins, a semitone apart from about 50 Hz up


def _mono(audio: np.ndarray, sample_rate: float, name: str) -> np.ndarray:
    data, _ = to_channels_first(audio, name=name)
    mono = to_mono(data).astype(np.float32)
    if sample_rate != _RATE:
        mono = resample(mono[None], sample_rate, _RATE)[0]
    return mono


def _tuning_cents(freqs: np.ndarray, mag: np.ndarray) -> float:
    """The signal's reference pitch offset from A440 in cents (-50..50): the magnitude-weighted
    circular mean of the spectral peaks' deviation from equal temperament."""
    spectrum = mag.mean(axis=1)
    band = (freqs > 80.0) & (freqs < 4000.0)
    peaks, _ = find_peaks(np.where(band, spectrum, 0.0), prominence=spectrum[band].max() * 0.02
                          if band.any() and spectrum[band].max() > 0 else 1.0)
    if peaks.size == 0:
        return 0.0
    # parabolic interpolation of each peak's frequency
    a, b, c = spectrum[peaks - 1], spectrum[peaks], spectrum[np.minimum(peaks + 1, spectrum.size - 1)]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(np.abs(denom) > 1e-12, denom, 1.0), 0.0)
    hz = (peaks + np.clip(shift, -0.5, 0.5)) * (freqs[1] - freqs[0])
    midi = 69.0 + 12.0 * np.log2(hz / 440.0)
    angle = 2.0 * np.pi * (midi - np.round(midi))
    weight = b * b
    mean = np.angle(np.sum(weight * np.exp(1j * angle)))
    return float(100.0 * mean / (2.0 * np.pi))


def chroma_profile(audio: np.ndarray, sample_rate: float, *, fmin: float = 55.0,
                   fmax: float = 5000.0) -> np.ndarray:
    """The mean chroma of ``audio``: a ``(12,)`` array, pitch class C first, summing to 1.

    Each STFT frame's magnitude spectrum (``fmin``-``fmax`` Hz) is folded onto semitones of the
    signal's own tuning (see :func:`_tuning_cents`), each bin's weight split between its two
    nearest semitones, folded onto pitch classes, normalized to its maximum (as librosa's
    ``chroma_stft`` does) and averaged over the frames that carry energy. All zeros for silence.

    Parameters
    ----------
    audio : np.ndarray
        Any layout (mixed to mono).
    sample_rate : float
        Hz.
    fmin, fmax : float
        Frequency range in Hz.
    """
    mono = _mono(audio, sample_rate, "audio")
    if mono.size < _N_FFT // 4 or not np.any(mono):
        return np.zeros(12)
    freqs, _, z = stft(mono, fs=_RATE, nperseg=min(_N_FFT, mono.size), noverlap=None, padded=False,
                       boundary=None)
    mag = np.abs(z).astype(np.float64)  # half-overlapping frames (scipy's default)
    cents = _tuning_cents(freqs, mag)
    keep = (freqs >= fmin) & (freqs <= fmax)
    semis = 69.0 + 12.0 * np.log2(freqs[keep] / 440.0) - cents / 100.0
    low = np.floor(semis)
    frac = semis - low
    fold = np.zeros((12, keep.sum()))
    cols = np.arange(keep.sum())
    np.add.at(fold, ((low.astype(int)) % 12, cols), 1.0 - frac)
    np.add.at(fold, ((low.astype(int) + 1) % 12, cols), frac)
    chroma = fold @ mag[keep]
    peak = chroma.max(axis=0)
    loud = peak > max(float(peak.max()), 1e-30) * 1e-3
    if not loud.any():
        return np.zeros(12)
    chroma = chroma[:, loud] / peak[loud]
    mean = chroma.mean(axis=1)
    return mean / mean.sum()


def best_key(profile: np.ndarray) -> tuple[int, str, float]:
    """The best-correlating Krumhansl-Kessler key of a 12-bin chroma profile (C first):
    ``(tonic pitch class, "major" or "minor", Pearson r)``; ``(0, "major", 0.0)`` for a flat one."""
    profile = np.asarray(profile, dtype=np.float64)
    if profile.shape != (12,):
        raise ParameterError(f"a chroma profile has 12 bins, not {profile.shape}")
    if np.ptp(profile) <= 0:
        return 0, "major", 0.0
    best = (0, "major", -1.0)
    for mode, template in (("major", KRUMHANSL_MAJOR), ("minor", KRUMHANSL_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(profile, np.roll(template, tonic))[0, 1])
            if r > best[2]:
                best = (tonic, mode, r)
    return best


def key_clarity(audio: np.ndarray, sample_rate: float) -> float:
    """Key clarity of ``audio``: the best correlation (-1..1) of its mean chroma
    (:func:`chroma_profile`) with the 24 Krumhansl-Kessler key profiles; 0.0 for silence.

    Higher is more tonal: a major scale about 0.9, recorded tonal music 0.6-0.8 (median of
    the shared recordings: ``benchmarks/composer.py``), white noise about 0.3 or less.
    """
    return best_key(chroma_profile(audio, sample_rate))[2]


def _onset_envelope(mono: np.ndarray) -> tuple[np.ndarray, float]:
    """Onset strength at 512-sample hops of 22.05 kHz (43 frames per second) and its rate."""
    hop, n_fft = 512, 2048
    if mono.size < n_fft:
        return np.zeros(0), _RATE / hop
    window = np.hanning(n_fft).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop] * window
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = mel_filters(sr=_RATE, n_fft=n_fft, n_mels=64) @ power.T
    env = onset_strength(power_to_db(mel, top_db=80.0), lag=1, n_fft=n_fft, hop_length=hop)
    return env.astype(np.float64), _RATE / hop


def local_tempi(audio: np.ndarray, sample_rate: float, *, window_s: float = 8.0, hop_s: float = 2.0,
                bpm_range: tuple[float, float] = (40.0, 240.0)) -> np.ndarray:
    """Local tempo in BPM of each ``window_s`` window (hop ``hop_s``) of ``audio``: the lag of
    the highest peak of the onset envelope's autocorrelation within ``bpm_range`` (parabolic
    interpolation), weighted by a log-normal prior around 120 BPM (librosa's tempo prior, 1
    octave wide) so that a pulse is named at its beat level. NaN for a window without onsets.
    A signal shorter than one window is one window."""
    mono = _mono(audio, sample_rate, "audio")
    env, fps = _onset_envelope(mono)
    if env.size == 0:
        return np.zeros(0)
    win = min(env.size, int(round(window_s * fps)))
    hop = max(1, int(round(hop_s * fps)))
    lags = np.arange(int(np.floor(60.0 * fps / bpm_range[1])), int(np.ceil(60.0 * fps / bpm_range[0])) + 1)
    lags = lags[(lags > 0) & (lags < win - 1)]
    if lags.size < 3:
        return np.full(1, np.nan)
    bpm_of_lag = 60.0 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpm_of_lag / 120.0)) ** 2)
    out = []
    for start in range(0, env.size - win + 1, hop):
        seg = env[start:start + win] - env[start:start + win].mean()
        size = 1 << int(np.ceil(np.log2(2 * win)))
        spec = np.fft.rfft(seg, size)
        ac = np.fft.irfft(spec * np.conj(spec), size)[:win]
        if ac[0] <= 1e-12:
            out.append(np.nan)
            continue
        ac = ac / ac[0]
        score = ac[lags] * prior
        i = int(np.argmax(score))
        lag = float(lags[i])
        if 0 < i < lags.size - 1:
            a, b, c = score[i - 1], score[i], score[i + 1]
            d = a - 2 * b + c
            if abs(d) > 1e-12:
                lag += float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))
        out.append(60.0 * fps / lag)
    return np.asarray(out)


def tempo_stability(audio: np.ndarray, sample_rate: float, *, tolerance: float = 0.04,
                    window_s: float = 8.0, hop_s: float = 2.0) -> float:
    """Share (0..1) of the :func:`local_tempi` windows within ``tolerance`` (4 %) of their median
    tempo, a window at twice or half the median counting as the same pulse; 0.0 when no window
    has onsets. A steady click track reads 1.0; white noise or a drifting click track low."""
    tempi = local_tempi(audio, sample_rate, window_s=window_s, hop_s=hop_s)
    tempi = tempi[np.isfinite(tempi)]
    if tempi.size == 0:
        return 0.0
    median = float(np.median(tempi))
    ratio = np.log2(tempi / median)
    folded = np.abs(ratio - np.round(ratio))  # octave-folded distance, in octaves
    return float(np.mean(folded <= np.log2(1.0 + tolerance)))
