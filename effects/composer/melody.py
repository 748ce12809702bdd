"""The noise's own melody: the pitch of its voiced, harmonic sounds (a rooster, a howl, a cry, a
miaow, a whistle, a bird), as notes the composer can double.

:func:`find_melody` follows the strongest harmonic series frame by frame (subharmonic summation
over spectral-peak prominences on a third-of-a-semitone grid, 20 ms hop at 16 kHz), keeps the
frames whose harmonics stand well above the local spectral floor (broadband noise, rain or an
engine's rumble have none), and cuts the pitch track into notes wherever it moves by more than
a semitone. About 30 ms of CPU per second of noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from blendfx.spectral.analysis import resample
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter1d

__all__ = ["Melody", "find_melody", "MELODY_RATE", "MELODY_HOP_S"]

#: Analysis rate (Hz) and hop (s) of :func:`find_melody`.
MELODY_RATE = 16000.0
MELODY_HOP_S = 0.02
_N_FFT = 2048  # 128 ms: 7.8 Hz bins
_PER_OCTAVE = 36  # pitch grid: a third of a semitone
_GRID_LOW = 60.0  # Hz
_HARMONICS = 5
_MAX_PROMINENCE_DB = 30.0


@dataclass
class Melody:
    """Notes of the noise's voiced, harmonic sounds.

    Attributes
    ----------
    notes : np.ndarray
        ``(notes, 4)``: onset in s, offset in s, pitch as a fractional MIDI number (the median
        over the note; 69 = A440) and clarity (the mean prominence of its harmonics over the
        local spectral floor, dB), in time order.
    voiced_share : float
        Share (0..1) of the noise's duration inside notes.
    pitch : np.ndarray
        ``(frames,)`` the frame-wise pitch (MIDI, NaN where unvoiced), one frame per 20 ms.
    """

    notes: np.ndarray
    voiced_share: float
    pitch: np.ndarray

    @classmethod
    def empty(cls) -> Melody:
        return cls(np.zeros((0, 4)), 0.0, np.zeros(0))

    def profile(self, tuning_cents: float = 0.0) -> np.ndarray:
        """``(12,)`` pitch-class weights (duration x clarity) of the notes, C first, after
        removing ``tuning_cents`` from every pitch."""
        out = np.zeros(12)
        if self.notes.size:
            pcs = np.round(self.notes[:, 2] - tuning_cents / 100.0).astype(int) % 12
            np.add.at(out, pcs, (self.notes[:, 1] - self.notes[:, 0]) * self.notes[:, 3])
        return out

    def tuning_cents(self) -> float:
        """Weighted circular mean of the notes' offsets from equal temperament, -50..50 cents."""
        if not self.notes.size:
            return 0.0
        weight = (self.notes[:, 1] - self.notes[:, 0]) * self.notes[:, 3]
        angle = 2.0 * np.pi * (self.notes[:, 2] - np.round(self.notes[:, 2]))
        return float(100.0 * np.angle(np.sum(weight * np.exp(1j * angle))) / (2.0 * np.pi))


def _grid_edges(freqs: np.ndarray, n: int) -> np.ndarray:
    """FFT-bin start index of each pitch-grid cell (a third of a semitone wide, at least one bin)."""
    centers = _GRID_LOW * 2.0 ** (np.arange(n) / _PER_OCTAVE)
    lo = centers * 2.0 ** (-0.5 / _PER_OCTAVE)
    starts = np.searchsorted(freqs, lo)
    return np.maximum.accumulate(np.minimum(starts, freqs.size - 1))


def find_melody(mono: np.ndarray, sample_rate: float, *, fmin: float = 90.0, fmax: float = 2000.0,
                min_clarity_db: float = 9.0, min_note_s: float = 0.1, range_db: float = 40.0) -> Melody:
    """The noise's melody (see the module docstring).

    Parameters
    ----------
    mono : np.ndarray
        ``(samples,)`` the noise, mixed to mono.
    sample_rate : float
        Hz.
    fmin, fmax : float
        Range of the fundamental in Hz.
    min_clarity_db : float
        A frame is voiced when its harmonics stand on average at least this far (dB) above
        the local spectral floor (a moving average of the log spectrum over 1/3 octave).
    min_note_s : float
        Shortest note kept, s.
    range_db : float
        Frames more than this far (dB) under the loudest frame are unvoiced.
    """
    x = np.asarray(mono, dtype=np.float32)
    if x.size == 0 or not np.any(x):
        return Melody.empty()
    x = resample(x[None], sample_rate, MELODY_RATE)[0]
    hop = int(round(MELODY_HOP_S * MELODY_RATE))
    if x.size < _N_FFT:
        x = np.pad(x, (0, _N_FFT - x.size))
    padded = np.pad(x, _N_FFT // 2)
    frames = sliding_window_view(padded, _N_FFT)[::hop]
    window = np.hanning(_N_FFT).astype(np.float32)
    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / MELODY_RATE)
    n_grid = int(np.floor(_PER_OCTAVE * np.log2(MELODY_RATE / 2 * 0.95 / _GRID_LOW)))
    starts = _grid_edges(freqs, n_grid)
    level = np.empty(frames.shape[0])
    prominence = np.empty((frames.shape[0], n_grid), dtype=np.float32)
    for a in range(0, frames.shape[0], 1024):  # in chunks: a long noise never holds its spectrogram
        spec = scipy.fft.rfft(frames[a:a + 1024] * window, axis=1)
        power = spec.real ** 2 + spec.imag ** 2
        db = 10.0 * np.log10(power + 1e-12)
        level[a:a + 1024] = 10.0 * np.log10(power.sum(axis=1) + 1e-12)
        # local floor: the log spectrum averaged over about a third of an octave around each bin
        floor = uniform_filter1d(db, size=25, axis=1, mode="nearest")
        prom = np.clip(db - floor, 0.0, _MAX_PROMINENCE_DB)
        prominence[a:a + 1024] = np.maximum.reduceat(prom, starts, axis=1)[:, :n_grid]
    # subharmonic summation: each candidate fundamental collects its harmonics' prominences
    lo = int(np.ceil(_PER_OCTAVE * np.log2(fmin / _GRID_LOW)))
    hi = int(np.floor(_PER_OCTAVE * np.log2(fmax / _GRID_LOW)))
    shifts = [int(round(_PER_OCTAVE * np.log2(h))) for h in range(1, _HARMONICS + 1)]
    weights = 0.85 ** np.arange(_HARMONICS)
    cand = np.arange(lo, hi + 1)
    salience = np.zeros((prominence.shape[0], cand.size), dtype=np.float32)
    counted = np.zeros(cand.size)
    for s, wgt in zip(shifts, weights, strict=True):
        ok = cand + s < n_grid
        salience[:, ok] += wgt * prominence[:, cand[ok] + s]
        counted[ok] += wgt
    salience /= np.maximum(counted, 1e-9)  # mean prominence of the harmonics, dB
    best = np.argmax(salience, axis=1)
    clarity = salience[np.arange(best.size), best]
    midi = 69.0 + 12.0 * np.log2(_GRID_LOW * 2.0 ** (cand[best] / _PER_OCTAVE) / 440.0)
    voiced = (clarity >= min_clarity_db) & (level >= level.max() - range_db)
    pitch = np.where(voiced, midi, np.nan)
    notes = _notes(pitch, clarity, min_note_s)
    total = x.size / MELODY_RATE
    share = float(np.sum(notes[:, 1] - notes[:, 0]) / total) if notes.size and total > 0 else 0.0
    return Melody(notes, share, pitch)


def _notes(pitch: np.ndarray, clarity: np.ndarray, min_note_s: float) -> np.ndarray:
    """Cut a frame-wise pitch track into notes: a note runs while its frames stay within a
    semitone of its running median; a one-frame gap is bridged."""
    out = []
    start, members = None, []

    def close(end: int) -> None:
        if start is not None and (end - start) * MELODY_HOP_S >= min_note_s - 1e-9:
            values = pitch[members]
            out.append((start * MELODY_HOP_S, end * MELODY_HOP_S, float(np.median(values)),
                        float(np.mean(clarity[members]))))

    gap = 0
    for i, p in enumerate(pitch):
        if np.isnan(p):
            gap += 1
            if start is not None and gap > 1:
                close(i - gap + 1)
                start, members = None, []
            continue
        gap = 0
        if start is not None and abs(p - np.median(pitch[members[-5:]])) > 1.0:
            close(i)
            start, members = None, []
        if start is None:
            start = i
        members.append(i)
    if start is not None:
        close(members[-1] + 1)
    return np.array(out, dtype=np.float64).reshape(-1, 4)
