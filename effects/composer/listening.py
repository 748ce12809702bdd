"""Listening to a noise the way a composer would: its pulse, its pitch and where its energy is.

:func:`listen` returns a :class:`Listening` with

- the **pulse**: a beat period and phase that put the noise's strongest periodic events on beats
  (a comb search over the onset strength envelope, the same envelope librosa's beat tracker and
  tempogram use), the downbeat, and, for long noises, small per-beat corrections so that the
  grid follows a drifting machine; a noise with no pulse (rain, a fan) says so, and the style's
  tempo is used with the phase still aligned to its strongest events;
- the **tonality**: stationary spectral peaks (hum and whine partials), their fundamental as a
  root pitch class with its offset from equal temperament in cents, and a pitch-class profile,
  from which :func:`choose_key` picks a key whose tonic or fifth is the hum;
- the **core**: the :class:`~blendfx.effects.MaskExtractor` mask of the noise's loudest
  spectro-temporal regions (on the fast Riffusion-grid analysis the amplifier and the yardstick
  use, computed in chunks), its mel energies folded onto analysis bands: which bands hold the
  core (its spectrum), when it is loud (its envelope) and its strongest events.

All frame-based quantities run at the mask's 100 frames per second.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from blendfx.buffers import to_channels_first, to_mono
from blendfx.dsp.melscale import mel_filters, onset_strength, power_to_db
from blendfx.effects.mask_extractor import MaskExtractor
from blendfx.spectral.analysis import fast_mel_filterbank, fast_spectrum, mel_center_frequencies, resample
from blendfx.spectral.params import SpectrogramParams
from blendfx.threads import cores, thread_pool
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d
from scipy.signal import find_peaks, get_window

from .melody import Melody, find_melody
from .theory import MODES, Key, hz_to_midi

__all__ = ["Pulse", "Tonality", "Core", "Listening", "Melody", "find_melody",
           "listen", "noise_spectra", "onset_envelope",
           "find_pulse", "find_tonality", "noise_mels", "core_profile", "choose_key", "band_edges",
           "refine_onsets",
           "fold_bands", "FPS"]

#: Analysis frames per second (the Riffusion image's 10 ms columns).
FPS = 100.0
#: How far (octaves) outside the style's tempo range a noise's pulse may pull the tempo before
#: the style's range wins (the prior halves at 0.83 of this).
PRIOR_OCTAVES = 0.5
#: Voiced share of a noise from which its melody keys the music when it has no hum.
MELODY_KEY_SHARE = 0.05


@dataclass
class Pulse:
    """A beat grid locked to the noise.

    Attributes
    ----------
    period_s : float
        Beat period in s (60 / BPM).
    beat_times : np.ndarray
        Times in s of every beat from the first one at or after 0 to the end of the noise,
        including per-beat corrections on long pulsed noises.
    downbeat : int
        Index into ``beat_times`` of the first bar's downbeat (0..3).
    locked : bool
        True when the noise has a pulse the grid follows; False when the tempo came from the
        style (the phase still aligns the strongest events with beats).
    strength : float
        Mean onset strength at the beats over its mean everywhere (1 = no alignment).
    """

    period_s: float
    beat_times: np.ndarray
    downbeat: int
    locked: bool
    strength: float

    @property
    def bpm(self) -> float:
        return 60.0 / self.period_s


@dataclass
class Tonality:
    """Stationary tonal content of a noise.

    Attributes
    ----------
    peaks_hz, peaks_db : np.ndarray
        Frequencies (Hz) and prominences (dB above the local spectral floor) of tonal peaks.
    root_pc : int or None
        Pitch class of the fundamental of the strongest harmonic series (None: no tone).
    root_hz : float or None
        That fundamental in Hz.
    tuning_cents : float
        Offset of the fundamental from the nearest equal-tempered note, -50..50 cents.
    profile : np.ndarray
        ``(12,)`` pitch-class weights of the peaks (after the tuning offset).
    """

    peaks_hz: np.ndarray
    peaks_db: np.ndarray
    root_pc: int | None
    root_hz: float | None
    tuning_cents: float
    profile: np.ndarray


@dataclass
class Core:
    """Where the noise's energy core is, on analysis bands and 10 ms frames.

    Attributes
    ----------
    edges_hz : np.ndarray
        ``(bands + 1,)`` band edges in Hz.
    spectrum : np.ndarray
        ``(bands,)`` core energy per band (power, summed over frames; 0 above 10 kHz).
    noise_spectrum : np.ndarray
        ``(bands,)`` all of the noise's energy per band.
    envelope : np.ndarray
        ``(frames,)`` core energy per frame.
    coverage : np.ndarray
        ``(frames,)`` share of each frame's mel rows inside the core (``Mask.columns()``).
    events : np.ndarray
        ``(events, 4)``: onset time in s, strength (peak envelope / its median), spectral
        centroid in Hz and duration in s of the core's strongest moments, strongest first.
    bands : np.ndarray
        ``(bands, frames)`` core energy per band and frame.
    """

    edges_hz: np.ndarray
    spectrum: np.ndarray
    noise_spectrum: np.ndarray
    envelope: np.ndarray
    coverage: np.ndarray
    events: np.ndarray
    bands: np.ndarray

    @property
    def centers_hz(self) -> np.ndarray:
        return np.sqrt(self.edges_hz[:-1] * self.edges_hz[1:])

    def band_range(self, share: float = 0.8) -> tuple[float, float]:
        """Frequencies (Hz) between which the central ``share`` of the core's energy lies."""
        total = self.spectrum.sum()
        if total <= 0:
            return 100.0, 4000.0
        cum = np.cumsum(self.spectrum) / total
        lo = int(np.searchsorted(cum, (1 - share) / 2))
        hi = int(np.searchsorted(cum, 1 - (1 - share) / 2))
        return float(self.edges_hz[lo]), float(self.edges_hz[min(hi + 1, len(self.edges_hz) - 1)])

    def centroid_hz(self) -> float:
        """Log-frequency centroid of the core spectrum in Hz."""
        total = self.spectrum.sum()
        if total <= 0:
            return 500.0
        return float(np.exp(np.sum(np.log(self.centers_hz) * self.spectrum) / total))


@dataclass
class Listening:
    """Everything :func:`listen` heard (see the module docstring)."""

    duration_s: float
    sample_rate: float
    onset: np.ndarray
    pulse: Pulse
    tonality: Tonality
    core: Core
    extras: dict = field(default_factory=dict)
    melody: Melody = field(default_factory=Melody.empty)


def band_edges(sample_rate: float, per_octave: int = 3, low_hz: float = 25.0) -> np.ndarray:
    """Edges in Hz of fractional-octave analysis bands from ``low_hz`` up to Nyquist."""
    top = sample_rate / 2.0
    n = int(np.floor(np.log2(top / low_hz) * per_octave))
    edges = low_hz * 2.0 ** (np.arange(n + 1) / per_octave)
    return np.append(edges, top) if top / edges[-1] > 2 ** (0.5 / per_octave) else edges


def fold_bands(spec: np.ndarray, freqs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Sum the rows of a ``(bins, frames)`` spectrogram (bin frequencies ``freqs`` in Hz,
    ascending) into the bands between ``edges``: ``(bands, frames)``."""
    nb = edges.size - 1
    out = np.zeros((nb, spec.shape[1]), dtype=np.float64)
    first = np.searchsorted(freqs, edges[:-1], side="left")
    last = np.searchsorted(freqs, edges[1:], side="left")
    for b in range(nb):  # bands are contiguous runs of bins: one vectorized sum each
        if last[b] > first[b]:
            out[b] = spec[first[b]:last[b]].sum(axis=0)
    return out


def noise_spectra(mono: np.ndarray, sample_rate: float, edges: np.ndarray,
                  chunk_frames: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The noise's short-time power (10 ms hop, ~46 ms Hann window, centred with zeros outside
    the signal, as ``librosa.stft`` frames it), kept only as what listening needs: librosa's
    128-band mel power (onsets) and the power in the analysis bands between ``edges`` (Hz),
    both ``(bands, frames)``, frames ``1 + n // hop``. Computed ``chunk_frames`` at a time, so
    a long noise never needs its whole spectrogram."""

    hop = max(1, int(round(sample_rate / FPS)))
    n_fft = int(2 ** np.round(np.log2(sample_rate * 0.046)))
    half = n_fft // 2
    mono = np.asarray(mono, dtype=np.float32)
    if mono.size < n_fft:  # shorter than one window: pad with silence
        mono = np.pad(mono, (0, n_fft - mono.size))
    frames = 1 + mono.size // hop
    padded = np.pad(mono, half)
    window = get_window("hann", n_fft).astype(np.float32)
    mel_fb = mel_filters(sr=sample_rate, n_fft=n_fft, n_mels=128)  # librosa's defaults
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel = np.empty((mel_fb.shape[0], frames), dtype=np.float32)
    bands = np.empty((edges.size - 1, frames))
    view = sliding_window_view(padded, n_fft)[::hop]
    for start in range(0, frames, chunk_frames):
        stop = min(start + chunk_frames, frames)
        spec = scipy.fft.rfft(view[start:stop] * window, axis=1)
        power = (spec.real ** 2 + spec.imag ** 2).T  # (bins, frames)
        mel[:, start:stop] = mel_fb @ power
        bands[:, start:stop] = fold_bands(power, freqs, edges)
    return mel, bands


def onset_envelope(mel_power: np.ndarray, sample_rate: float) -> np.ndarray:
    """Onset strength (librosa's spectral flux on a log-mel spectrogram) per 10 ms frame, from
    the 128-band mel power of :func:`noise_spectra`, scaled to mean 1 (all zeros for a signal
    without onsets)."""
    # (blendfx.dsp.melscale: librosa's functions, bit for bit, without librosa's import)
    env = onset_strength(power_to_db(mel_power, top_db=80.0), lag=1)
    env = np.maximum(env - np.median(env), 0.0)  # steady noise floor contributes no onsets
    mean = env.mean() if env.size else 0.0
    return (env / mean).astype(np.float64) if mean > 1e-12 else np.zeros_like(env, dtype=np.float64)


def _comb_scores(env: np.ndarray, periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best mean envelope value on a grid ``phase + k * period`` (frames) for each period, and
    the phase (frames) achieving it. Linear interpolation allows fractional periods."""
    n = env.size
    scores = np.zeros(periods.size)
    phases = np.zeros(periods.size)
    for i, p in enumerate(periods):
        k = int(np.floor((n - 1) / p))
        if k < 1:
            continue
        ph = np.arange(int(np.ceil(p)), dtype=np.float64)[:, None]
        pos = ph + p * np.arange(k)[None, :]
        valid = pos <= n - 1
        pos = np.minimum(pos, n - 1)
        lo = np.floor(pos).astype(int)
        frac = pos - lo
        hi = np.minimum(lo + 1, n - 1)
        val = (env[lo] * (1 - frac) + env[hi] * frac) * valid
        s = val.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        j = int(np.argmax(s))
        scores[i], phases[i] = s[j], ph[j, 0]
    return scores, phases


def find_pulse(env: np.ndarray, duration_s: float, tempo_range: tuple[float, float],
               default_bpm: float, *, lock: bool = True, search_tempo: bool = True) -> Pulse:
    """Phase-locked beat grid for an onset envelope at :data:`FPS` frames per second.

    Candidate periods cover the style's tempo range widened by half an octave each way (every
    octave of a noise's pulse has a representative there); each scores the excess of the
    comb's mean onset strength over the average (1), weighted by a prior that fades outside the
    style's range. A pulse counts when that score stands out from the other periods; otherwise
    the tempo is ``default_bpm`` and only the phase is fitted.

    Parameters
    ----------
    env : np.ndarray
        Onset strength, mean 1 (see :func:`onset_envelope`).
    duration_s : float
        Length of the noise in s.
    tempo_range : (float, float)
        The style's BPM range.
    default_bpm : float
        Tempo to use when the noise has no pulse.
    lock : bool
        False: ignore the noise entirely (``default_bpm``, first beat at 0).
    search_tempo : bool
        False: keep ``default_bpm`` (a tempo the user asked for) and fit only the phase.
    """

    lo_bpm, hi_bpm = tempo_range
    n = env.size
    if not lock or n < 8 or not env.any():
        return _grid(60.0 / default_bpm, 0.0, duration_s, 0, False, 1.0)
    env_t = maximum_filter1d(env, size=3)  # tolerate +-10 ms of jitter
    p_min = FPS * 60.0 / (hi_bpm * 2 ** 0.5)
    p_max = min(FPS * 60.0 / (lo_bpm / 2 ** 0.5), n / 2.0)
    if p_max <= p_min:
        p_max = p_min * 1.01
    periods = np.geomspace(p_min, p_max, 160)
    scores, phases = _comb_scores(env_t, periods)
    bpm = 60.0 * FPS / periods
    octaves_out = np.maximum(np.log2(lo_bpm / bpm), np.log2(bpm / hi_bpm)).clip(min=0.0)
    prior = np.exp(-((octaves_out / PRIOR_OCTAVES) ** 2))
    excess = (scores - env_t.mean()) * prior
    best = int(np.argmax(excess))
    spread = np.std(excess) + 1e-9
    beats_in_clip = duration_s / (periods[best] / FPS)
    locked = bool(search_tempo and excess[best] > 0.5 and beats_in_clip >= 3
                  and (excess[best] - np.median(excess)) / spread > 2.5)
    if locked:
        # refine the period around the winner with 0.1 % steps
        fine = periods[best] * np.linspace(0.985, 1.015, 61)
        fs, fp = _comb_scores(env_t, fine)
        j = int(np.argmax(fs))
        period, phase, strength = fine[j], fp[j], fs[j]
    else:
        # No pulse: the style's tempo. Within its range, take the tempo whose grid catches the
        # noise's strongest events best (the default tempo when none stands out).
        inside = prior >= 1.0
        period = FPS * 60.0 / default_bpm
        s, ph = _comb_scores(env_t, np.array([period]))
        phase, strength = ph[0], s[0]
        if search_tempo and inside.any() and excess[inside].max() > 1.15 * (strength - env_t.mean()) + 0.2:
            j = int(np.flatnonzero(inside)[np.argmax(excess[inside])])
            period, phase, strength = periods[j], phases[j], scores[j]
    phase = _refine_phase(env, env_t, period, phase)
    pulse = _grid(period / FPS, phase / FPS, duration_s, 0, locked, strength / env_t.mean())
    if locked and pulse.beat_times.size >= 16:
        pulse.beat_times = _follow_drift(env_t, pulse.beat_times, pulse.period_s)
    pulse.downbeat = _downbeat(env_t, pulse.beat_times)
    return pulse


def _refine_phase(env: np.ndarray, env_t: np.ndarray, period: float, phase: float) -> float:
    """Sub-frame phase: the offset within +-1.5 frames that puts beats on the onset peaks
    themselves rather than on their +-10 ms tolerance window."""
    best, best_score = phase, -np.inf
    n = env.size
    k = np.arange(int(np.floor((n - 1 - phase) / period)) + 1)
    for d in np.arange(-1.5, 1.51, 0.25):
        pos = phase + d + period * k
        pos = pos[(pos >= 0) & (pos <= n - 1)]
        if pos.size == 0:
            continue
        score = np.interp(pos, np.arange(n), env).mean() + 0.5 * np.interp(pos, np.arange(n), env_t).mean()
        if score > best_score + 1e-12:
            best, best_score = phase + d, score
    return float(best % period)


def _grid(period_s: float, phase_s: float, duration_s: float, downbeat: int, locked: bool,
          strength: float) -> Pulse:
    count = int(np.floor((duration_s - phase_s) / period_s)) + 1 if duration_s > phase_s else 1
    beats = phase_s + period_s * np.arange(max(count, 1))
    return Pulse(float(period_s), beats, downbeat, locked, float(strength))


def _follow_drift(env: np.ndarray, beats: np.ndarray, period_s: float) -> np.ndarray:
    """Nudge each beat towards the local onset peak (within 1/6 beat), so the grid follows a
    machine whose speed drifts over minutes. The nudges are a running median over 9 beats (no
    single stray onset moves a beat) then a running mean over 16 (the tempo glides rather than
    wobbling from beat to beat: the music keeps a steady feel)."""

    radius = max(1, int(period_s * FPS / 6))
    offsets = np.full(beats.size, np.nan)
    floor = 1.5 * env.mean()
    for i, b in enumerate(np.round(beats * FPS).astype(int)):
        lo, hi = max(0, b - radius), min(env.size, b + radius + 1)
        if hi - lo < 2:
            continue
        j = int(np.argmax(env[lo:hi]))
        if env[lo + j] > floor:
            offsets[i] = (lo + j - b) / FPS
    good = np.isfinite(offsets)
    if good.sum() < 4:
        return beats
    offsets = np.interp(np.arange(beats.size), np.flatnonzero(good), offsets[good])
    smooth = uniform_filter1d(median_filter(offsets, size=9, mode="nearest"), size=16, mode="nearest")
    out = beats + smooth
    # keep beats strictly increasing and inside the noise
    return np.maximum.accumulate(np.maximum(out, 0.0))


def _downbeat(env: np.ndarray, beats: np.ndarray) -> int:
    """Which of the first four beats starts a bar: the phase whose beats carry most onset."""
    if beats.size < 2:
        return 0
    idx = np.clip(np.round(beats * FPS).astype(int), 0, env.size - 1)
    vals = env[idx]
    sums = [vals[d::4].mean() if vals[d::4].size else 0.0 for d in range(4)]
    return int(np.argmax(np.round(sums, 9)))


def _median_spectrum(x: np.ndarray, sample_rate: float, nper: int,
                     max_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch's spectrum with median averaging (half-overlapping Hann segments of ``nper``
    samples, each less its mean), up to a constant factor, from at most ``max_segments``
    segments spread evenly over the signal: bin frequencies (Hz) and powers."""

    count = 1 + (x.size - nper) // (nper // 2)
    starts = (nper // 2) * np.unique(np.round(np.linspace(0, count - 1, min(count, max_segments)))
                                     .astype(np.int64))
    window = get_window("hann", nper).astype(np.float32)
    power = np.empty((starts.size, nper // 2 + 1), dtype=np.float32)
    for i in range(0, starts.size, 16):  # 16 segments per FFT batch
        seg = x[starts[i:i + 16, None] + np.arange(nper)[None, :]]
        seg = (seg - seg.mean(axis=1, keepdims=True)) * window
        spec = scipy.fft.rfft(seg, axis=1)
        power[i:i + 16] = spec.real ** 2 + spec.imag ** 2
    psd = np.median(power, axis=0).astype(np.float64)
    psd[1:-1] *= 2.0  # one-sided, as Welch's
    return np.fft.rfftfreq(nper, 1.0 / sample_rate), psd


def find_tonality(mono: np.ndarray, sample_rate: float, *, min_prominence_db: float = 10.0,
                  fmin: float = 40.0, fmax: float = 5000.0, max_segments: int = 160) -> Tonality:
    """Hum and whine partials: stationary narrow peaks of the median-averaged spectrum.

    The spectrum is Welch's with median averaging (so a passing bark does not count, a hum
    does), at about 2.7 Hz resolution, from at most ``max_segments`` segments spread over the
    noise (a hum is there all the time: 160 segments, a minute of a long noise, find it);
    peaks at least ``min_prominence_db`` above a running median floor are refined by parabolic
    interpolation. The fundamental is the candidate (each peak divided by 1..4) whose harmonic
    series explains most peak weight, minus a penalty per missing harmonic.
    """

    x = np.asarray(mono, dtype=np.float32)
    empty = Tonality(np.zeros(0), np.zeros(0), None, None, 0.0, np.zeros(12))
    if x.size < 2048 or not np.any(x):
        return empty
    nper = int(2 ** np.ceil(np.log2(sample_rate / 2.7)))
    while nper > x.size and nper > 2048:
        nper //= 2
    freqs, psd = _median_spectrum(x, sample_rate, nper, max_segments)
    logp = 10.0 * np.log10(psd + 1e-20)
    floor = median_filter(logp, size=31, mode="nearest")
    prom = logp - floor
    band = (freqs >= fmin) & (freqs <= min(fmax, sample_rate / 2 * 0.9))
    idx, _ = find_peaks(np.where(band, prom, 0.0), height=min_prominence_db, distance=3)
    if idx.size == 0:
        return empty
    # faint peaks far below the loudest one are not heard as a hum
    idx = idx[logp[idx] > logp[idx].max() - 40.0]
    idx = idx[np.argsort(prom[idx])[::-1][:24]]
    a, b, c = logp[idx - 1], logp[idx], logp[np.minimum(idx + 1, logp.size - 1)]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    hz = freqs[idx] + np.clip(shift, -0.5, 0.5) * (freqs[1] - freqs[0])
    weight = prom[idx] * np.clip((logp[idx] - (logp[idx].max() - 40.0)) / 40.0, 0.05, 1.0)
    f0 = _fundamental(hz, weight)
    midi = float(hz_to_midi(f0))
    tuning = (midi - round(midi)) * 100.0
    profile = np.zeros(12)
    pitches = hz_to_midi(hz) - tuning / 100.0
    dev = np.abs(pitches - np.round(pitches)) * 100.0
    np.add.at(profile, np.round(pitches).astype(int) % 12, weight * np.clip(1 - dev / 40.0, 0, 1))
    return Tonality(hz, prom[idx], int(round(midi)) % 12, float(f0), float(tuning), profile)


def _fundamental(hz: np.ndarray, weight: np.ndarray, tol: float = 0.015) -> float:
    top = hz.max()
    best, best_score = hz[int(np.argmax(weight))], -np.inf
    for f0 in np.unique(np.concatenate([hz / h for h in (1, 2, 3, 4)])):
        if f0 < 30.0:
            continue
        ratio = hz / f0
        harmonic = np.round(ratio)
        match = (harmonic >= 1) & (np.abs(ratio / np.maximum(harmonic, 1) - 1) < tol)
        if not match.any():
            continue
        highest = int(harmonic[match].max())
        found = len(set(harmonic[match].astype(int).tolist()))
        missing = max(0, min(highest, int(top / f0)) - found)
        score = weight[match].sum() - 0.6 * missing * weight.mean()
        if score > best_score + 1e-9:
            best, best_score = f0, score
    return float(best)


def choose_key(tonality: Tonality, modes: tuple[tuple[str, float], ...], rng: np.random.Generator,
               *, forced_mode: str | None = None, tune: bool = True) -> Key:
    """A key for the music: with a hum, the tonic or the fifth is the hum's pitch class and
    the mode is the one whose scale and tonic triad hold most of the partials' weight (weighted
    by the style's mode priors); without one, a seeded tonic and a prior-weighted mode.
    """
    names = [forced_mode] if forced_mode in MODES else [m for m, _ in modes]
    priors = {m: w for m, w in modes}
    if tonality.root_pc is None:
        weights = np.array([priors.get(m, 1.0) for m in names], dtype=np.float64)
        mode = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        return Key(int(rng.integers(12)), mode, 0.0)
    root = tonality.root_pc
    prof = tonality.profile / max(tonality.profile.sum(), 1e-9)
    best: tuple[float, Key] = (-np.inf, Key(root))
    for mode in names:
        for tonic, bonus in ((root, 0.25), ((root - 7) % 12, 0.0)):
            key = Key(tonic, mode)
            triad = {key.degree_pc(1), key.degree_pc(3), key.degree_pc(5)}
            fit = sum(p * (1.0 if pc in triad else 0.4 if key.contains(pc) else -1.0)
                      for pc, p in enumerate(prof))
            score = fit + bonus + 0.3 * priors.get(mode, 0.5)
            if score > best[0] + 1e-9:
                best = (score, key)
    key = best[1]
    return Key(key.tonic, key.mode, tonality.tuning_cents if tune else 0.0)


def noise_mels(mono: np.ndarray, sample_rate: float, chunk_frames: int = 1000,
               workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The noise's mel magnitudes and mel energies ``(512, frames)`` (low rows first) on
    Riffusion's grid, from :func:`blendfx.spectral.analysis.fast_spectrum` (the analysis the amplifier
    and the yardstick use), computed ``chunk_frames`` at a time so a long noise never needs its
    whole spectrogram in memory (the window's half, 5 hops, is taken from the neighbours, so
    the chunks join exactly), ``workers`` chunks at once."""

    p = SpectrogramParams()
    x = resample(np.asarray(mono, dtype=np.float32), sample_rate, p.sample_rate)
    hop = p.hop_length
    frames = x.size // hop
    margin = (p.win_length // 2) // hop  # 5 frames: a window's half in hops
    fb = fast_mel_filterbank()
    mags = np.zeros((p.num_frequencies, max(frames, 0)), np.float32)
    pows = np.zeros((p.num_frequencies, max(frames, 0)), np.float32)

    def chunk(start: int) -> None:
        stop = min(start + chunk_frames, frames)
        lo = max(0, start - margin)
        hi = min(x.size, (stop + margin) * hop)
        spec = fast_spectrum(x[lo * hop:hi], p.sample_rate, fft="scipy")  # (torch's import: 1.5 s)
        spec = spec[:, start - lo:start - lo + (stop - start)]
        mags[:, start:stop] = fb @ spec
        pows[:, start:stop] = fb @ (spec * spec)

    starts = range(0, max(frames, 0), chunk_frames)
    if len(starts) > 1 and workers > 1:  # chunks are independent: two at a time
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(chunk, starts))
    else:
        for start in starts:
            chunk(start)
    return mags, pows


def core_profile(band_power: np.ndarray, mel_energy: np.ndarray, mask_values: np.ndarray,
                 edges: np.ndarray) -> Core:
    """Fold the noise's core onto analysis bands.

    Parameters
    ----------
    band_power : np.ndarray
        The noise's ``(bands, frames)`` power in the bands between ``edges`` per 10 ms frame,
        for its whole spectrum (up to Nyquist; :func:`noise_spectra`).
    mel_energy : np.ndarray
        ``(512, frames)`` mel energies, low rows first (:func:`noise_mels`).
    mask_values : np.ndarray
        ``Mask.values``: ``(512, frames)`` in image coordinates (row 0 = 10 kHz).
    edges : np.ndarray
        Band edges in Hz.
    """

    frames = min(band_power.shape[1], mel_energy.shape[1], mask_values.shape[1])
    # the core: each mel pixel's energy times its mask value, rows folded into the bands
    core_rows = mel_energy[:, :frames] * mask_values[::-1, :frames]
    core = fold_bands(core_rows, mel_center_frequencies(), edges)
    envelope = core.sum(axis=0)
    coverage = mask_values[:, :frames].mean(axis=0)
    events = _events(envelope, core, edges)
    return Core(edges, core.sum(axis=1), band_power[:, :frames].sum(axis=1), envelope, coverage, events,
                core.astype(np.float32))


def _events(envelope: np.ndarray, core: np.ndarray, edges: np.ndarray,
            max_per_second: float = 4.0) -> np.ndarray:
    """The core's strongest moments: peaks of its envelope well above its median."""

    if envelope.size < 3 or not envelope.any():
        return np.zeros((0, 4))
    smooth = np.convolve(envelope, np.ones(3) / 3, mode="same")
    med = np.median(smooth[smooth > 0]) if np.any(smooth > 0) else 1.0
    idx, _ = find_peaks(smooth, height=2.0 * med, distance=int(FPS / max_per_second))
    if idx.size == 0:
        return np.zeros((0, 4))
    centers = np.sqrt(edges[:-1] * edges[1:])
    spec = core[:, idx] + 1e-30
    centroid = np.exp((np.log(centers)[:, None] * spec).sum(0) / spec.sum(0))
    # an event starts where its rise crosses 30 % of its peak and lasts while it stays above
    onsets = np.empty(idx.size)
    durations = np.empty(idx.size)
    for k, i in enumerate(idx):
        level = 0.3 * envelope[i]
        back = envelope[max(0, i - int(0.3 * FPS)):i + 1][::-1]
        below = np.flatnonzero(back < level)
        start = i - (below[0] - 1 if below.size else back.size - 1)
        ahead = envelope[i:i + int(FPS)]
        below = np.flatnonzero(ahead < level)
        stop = i + (below[0] if below.size else ahead.size)
        onsets[k] = start / FPS
        durations[k] = max(stop - start, 1) / FPS
    ev = np.stack([onsets, smooth[idx] / med, centroid, durations], axis=1)
    return ev[np.argsort(-ev[:, 1], kind="stable")]


def refine_onsets(events: np.ndarray, onset: np.ndarray, before_s: float = 0.03,
                  after_s: float = 0.08, min_ratio: float = 3.0) -> np.ndarray:
    """Core events with their onsets moved to the onset envelope's peak near them.

    The core's envelope comes from a 100 ms analysis window, so a click's event starts up to
    a few tens of ms early; the onset envelope (46 ms window, centred) peaks on the click. For
    each event, the highest onset-envelope frame from ``before_s`` before to ``after_s`` after
    its onset, if it stands ``min_ratio`` times above the envelope's mean (1), less one frame
    (the envelope peaks 0-10 ms after a click, and a hit a little early still masks it while a
    late one does not), becomes the onset (the duration keeps its end)."""
    if events.size == 0 or onset.size == 0:
        return events
    out = events.copy()
    lo_n, hi_n = int(round(before_s * FPS)), int(round(after_s * FPS))
    for k, (t, _, _, duration) in enumerate(events):
        i = int(round(t * FPS))
        a, b = max(0, i - lo_n), min(onset.size, i + hi_n + 1)
        if b <= a:
            continue
        j = a + int(np.argmax(onset[a:b]))
        if onset[j] >= min_ratio:
            out[k, 0] = max(j - 1, 0) / FPS
            out[k, 3] = max(float(t + duration - out[k, 0]), 1.0 / FPS)
    return out


def listen(noise: np.ndarray, sample_rate: float, *, tempo_range: tuple[float, float],
           default_bpm: float, core_fraction: float = 0.15, lock: bool = True,
           search_tempo: bool = True) -> Listening:
    """Analyse a noise (any layout) for the composer (see the module docstring).

    Parameters
    ----------
    noise : np.ndarray
        The noise, 1-D or 2-D in either orientation.
    sample_rate : float
        Hz.
    tempo_range, default_bpm
        The style's tempo range (BPM) and the tempo to use without a pulse.
    core_fraction : float
        Share of the noise's spectrogram pixels in the core (:class:`MaskExtractor` fraction).
    lock : bool
        Phase-lock the grid to the noise (False: ``default_bpm`` from time 0).
    search_tempo : bool
        False: keep ``default_bpm`` and lock only the phase.
    """

    data, _ = to_channels_first(noise)
    mono = to_mono(data).astype(np.float32)
    duration = mono.size / float(sample_rate)
    edges = band_edges(sample_rate)

    def find_core():
        mel_magnitude, mel_energy = noise_mels(mono, sample_rate,
                                               workers=min(2, cores()))
        mask = MaskExtractor(fraction=core_fraction, analysis="fast").extract(mono, sample_rate,
                                                                            mel=mel_magnitude)
        return mel_energy, mask

    # the core's analysis (torch) runs beside the pulse and tonality (numpy, scipy), which
    # release the GIL too: two cores listen at once where there are two
    with thread_pool(1, "blendfx-listen") as pool:
        core_job = pool.submit(find_core)
        mel_power, band_power = noise_spectra(mono, sample_rate, edges)
        env = onset_envelope(mel_power, sample_rate)
        pulse = find_pulse(env, duration, tempo_range, default_bpm, lock=lock, search_tempo=search_tempo)
        tonality = find_tonality(mono, sample_rate)
        melody = find_melody(mono, sample_rate)
        mel_energy, mask = core_job.result()
    core = core_profile(band_power, mel_energy, mask.values, edges)
    core.events = refine_onsets(core.events, env)
    extras = {"mask_rows": mask.rows(), "mask_columns": mask.columns()} if mask.values.size else {}
    if tonality.root_pc is None and melody.voiced_share >= MELODY_KEY_SHARE:
        tonality = _tonality_of(melody)
    return Listening(duration, float(sample_rate), env, pulse, tonality, core, extras, melody)


def _tonality_of(melody: Melody) -> Tonality:
    """A noise without a hum but with a voice (a howl, a call) keys the music by its melody:
    the root is the pitch class the notes dwell on most, tuned to the voice."""
    cents = melody.tuning_cents()
    profile = melody.profile(cents)
    root = int(np.argmax(profile))
    hz = float(440.0 * 2.0 ** ((root + 60 - 69 + cents / 100.0) / 12.0))
    return Tonality(np.zeros(0), np.zeros(0), root, hz, cents, profile)
