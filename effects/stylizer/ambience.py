"""A recording's stationary ambient bed: extraction, and re-synthesis to any length.

Extraction (:func:`extract_ambience`) first asks whether there is a stationary background at
all. A background shows as plateaus of the recording's broadband level: stretches of at least
0.3 s within 3 dB of its quietest frames that neither drift (a reverberation tail falls through
that level at 24 dB/s or more in rooms of up to 2.5 s) nor ripple; a recording whose level barely
moves (rain, an engine) is background throughout. Without one (reverberant music or speech in a
quiet room, whose quietest moments are the ends of decays) there is no ambience. With one, the
background's power spectrum is the mean periodogram of the plateau frames (a stationary bed is
the same under the loud parts), the bed is the recording filtered by the noise-over-signal gain
``min(1, N / P)`` per bin (``P`` smoothed over about 0.1 s; the Wiener estimate of the
background), then spectrally matched so its long-term spectrum equals ``N``; a bed measured in pauses
(under half the recording) is then scaled to the power ``N`` measured there (one seen only in
brief rests would come out up to 12 dB quiet).
Many recordings show their floor only in brief rests between notes, where a decay comes to
rest on it; such rests count as background only with evidence a reverberation tail cannot
fake (flat in every band from 20 Hz up, and long, or several agreeing in level and spectral
shape; see :func:`_floor_rests`). Either way the frames taken for the background must be
noise-like (median third-octave spectral flatness above ``_FLAT_MIN_DB``): in a long room,
continuous playing may never get quieter than a held note, whose partials stand out of its
spectrum. Foreground events
(a bark, a voice, a passing car) mostly fall out; the texture of the background (rain drops,
engine rumble, crowd murmur) stays, at the level measured in the pauses.

Re-synthesis (:func:`synthesize_ambience`) is randomized overlap-add of grains: half-overlapping
grains of the bed, taken at random positions (uniform, never continuing the previous grain) with
random polarity, under a power-complementary sine window. Uncorrelated grains under that window
add up to the bed's own power spectrum, and random positions leave no period for the ear (or an
autocorrelation) to find, however long the output. :func:`loop_ambience` is the naive
alternative, the bed tiled with crossfades, kept as the "separate & remix" baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from blendfx.buffers import fit_channels, to_channels_first
from blendfx.errors import ParameterError
from scipy.signal import ShortTimeFFT, lfilter
from scipy.signal.windows import hann

from .spectral_match import mean_power, smooth_octaves

__all__ = ["AmbienceModel", "extract_ambience", "synthesize_ambience", "loop_ambience",
           "repetition_peak", "MIN_REFERENCE_S"]

#: Shortest recording an ambience can be taken from, in s.
MIN_REFERENCE_S = 0.1

_SMOOTH_S = 0.1        # periodogram smoothing time constant, s
_MATCH_LIMIT_DB = 6.0  # largest spectral-matching correction of the bed, dB
_GRAIN_S = 0.5         # re-synthesis grain length, s
_DIGITAL_SILENCE = 1e-16  # frame power per sample below which a frame is digital silence
_SILENT_DB = -200.0    # level reported for a silent bed, dBFS
_PLATEAU_DB = 3.0      # a background plateau: frames within 3 dB of the quietest 5 % ...
_PLATEAU_MIN_S = 0.3   # ... in runs of at least 0.3 s ...
_PLATEAU_SLOPE = 3.0   # ... whose level drifts by at most 3 dB/s (a reverb tail falls 24 dB/s
                       # or faster in rooms of up to 2.5 s) ...
_PLATEAU_RIPPLE_DB = 1.5  # ... and fluctuates by at most 1.5 dB (std about the drift) ...
_PLATEAU_TOTAL_S = 0.5    # ... adding up to 0.5 s
_FLAT_MIN_DB = -2.0     # a background is noise-like: median third-octave spectral flatness
                        # (500 Hz-8 kHz) of its frames above this (benchmark references: pink
                        # floors -0.02 to -0.74 dB; a held harp note in a 2.3 s lobby -3.6 dB)
_REST_SMOOTH_S = 0.03  # envelope smoothing for rests, s
_REST_DB = 1.5         # a rest: the bottom of a quiet stretch (within 1.5 dB of its minimum) ...
_REST_MIN_S = 0.12     # ... at least this long ...
_REST_BANDS_HZ = (20.0, 90.0, 500.0, 2000.0, 5600.0, 11000.0)  # ... flat in each of these bands ...
_REST_SLOPE = 10.0     # ... (at most this many dB/s either way) ...
_REST_KNEE_S = 0.1     # ... after a fall: the level in the 0.1 s before it ...
_REST_KNEE = 10.0      # ... fell this many dB/s faster than within it
_REST_LONG_S = 0.3     # a rest this long and flat in every band is enough by itself
_REST_COUNT = 2        # separate rests that must agree ...
_REST_MATCH_DB = 1.5   # ... in level ...
_REST_SHAPE_DB = 1.5   # ... and in spectral shape (RMS over the bands)
_TEXTURE_SPREAD_DB = 6.0  # a recording whose level stays within 6 dB (10th-90th percentile)
                          # is all background (rain, an engine, room tone)


@dataclass(frozen=True)
class AmbienceModel:
    """The stationary background of a recording.

    Attributes
    ----------
    bed : np.ndarray
        ``(channels, samples)`` float32: the recording with its foreground removed.
    sample_rate : float
        Sample rate of ``bed`` in Hz.
    level_dbfs : float
        RMS level of the bed in dBFS (channels averaged).
    sar_db : float
        The recording's signal-to-ambience ratio in dB: power of everything that is not the bed
        over the bed's power.
    note : str
        Why the recording has no ambience ("" when it has one).
    """

    bed: np.ndarray
    sample_rate: float
    level_dbfs: float
    sar_db: float
    note: str = ""

    @property
    def duration_s(self) -> float:
        """Length of the bed in s."""
        return self.bed.shape[-1] / self.sample_rate


def _stft(n_fft: int, sample_rate: float) -> ShortTimeFFT:
    """Hann-windowed STFT with 75 % overlap (its ``istft`` inverts it exactly)."""
    return ShortTimeFFT(hann(n_fft, sym=False), hop=n_fft // 4, fs=sample_rate)


def _smoothed(power: np.ndarray, alpha: float) -> np.ndarray:
    """Recursively smoothed power along the last axis (time constant set by ``alpha``)."""
    return lfilter([1.0 - alpha], [1.0, -alpha], power, axis=-1, zi=alpha * power[..., :1])[0]


def extract_ambience(audio: np.ndarray, sample_rate: float) -> AmbienceModel:
    """The stationary ambient bed of a recording (background plateaus + Wiener gain).

    Parameters
    ----------
    audio : np.ndarray
        The recording, any layout; at least :data:`MIN_REFERENCE_S` long.
    sample_rate : float
        Sample rate in Hz.

    Returns
    -------
    AmbienceModel

    Raises
    ------
    ParameterError
        If the recording is shorter than :data:`MIN_REFERENCE_S`.
    """
    sr = float(sample_rate)
    data, _ = to_channels_first(audio, name="reference")
    n = data.shape[-1]
    if n < MIN_REFERENCE_S * sr:
        raise ParameterError(f"reference is {n / sr:.3f} s long; an ambience needs at least "
                             f"{MIN_REFERENCE_S:g} s of it")
    # ~46 ms frames (2048 at 44.1 kHz), shorter for very short recordings
    n_fft = 1 << int(np.round(np.log2(0.046 * sr)))
    n_fft = min(n_fft, 1 << int(np.log2(n // 2)))
    hop = n_fft // 4
    stft = _stft(n_fft, sr)
    spec = stft.stft(data.astype(np.float64), axis=-1)  # (channels, bins, frames)
    power = np.abs(spec) ** 2
    # statistics from the frames whose window lies wholly inside the recording (the padded
    # edge frames hold less power and would pass for quiet background); edges take the nearest
    first = stft.lower_border_end[1] - stft.p_min
    last = stft.upper_border_begin(n)[1] - stft.p_min
    if last - first < 2:
        first, last = 0, power.shape[-1]
    inner = power[..., first:last]

    if np.mean(inner.sum(axis=(0, 1)) <= _DIGITAL_SILENCE * n_fft * data.shape[0]) >= 0.1:
        # a gated recording (events separated by digital silence) has no background at all;
        # the smoothed minimum would only find the events' own fading remnants
        return AmbienceModel(bed=np.zeros_like(data, dtype=np.float32), sample_rate=sr,
                             level_dbfs=_SILENT_DB, sar_db=-_SILENT_DB)
    alpha = float(np.exp(-hop / (_SMOOTH_S * sr)))
    smooth_all = _smoothed(inner, alpha)
    plateau = _background_frames(smooth_all.mean(axis=0), stft.f, hop / sr, alpha)
    if plateau is None:
        # a floor seen only in short rests between notes, on a faster envelope
        alpha_r = float(np.exp(-hop / (_REST_SMOOTH_S * sr)))
        plateau = _rest_frames(_smoothed(inner, alpha_r).mean(axis=0), stft.f, hop / sr, alpha_r)
    if plateau is not None:
        # the background's spectrum: the mean power of the plateau frames (a stationary bed is
        # the same under the loud parts); each channel's own, then one gain for all channels
        noise = inner[..., plateau].mean(axis=-1).mean(axis=0)[:, None]
        if _flatness_db(noise[:, 0], stft.f) < _FLAT_MIN_DB:
            # the quietest stretch holds partials: a quiet held note (in a long room,
            # continuous playing may never get quieter than that), not a noise-like bed
            plateau = None
    if plateau is None:
        return AmbienceModel(bed=np.zeros_like(data, dtype=np.float32), sample_rate=sr,
                             level_dbfs=_SILENT_DB, sar_db=-_SILENT_DB,
                             note="no stationary background: the recording's quietest stretches "
                                  "are reverberation tails or quiet sounds, not a steady bed")
    smooth = smooth_all.mean(axis=0)
    inner = inner.mean(axis=0)
    gain = np.minimum(1.0, noise / np.maximum(smooth, 1e-30))
    # spectral matching: the bed's long-term spectrum must equal the background estimate's
    # (the Wiener gain also trims the background's own upward fluctuations)
    freqs = stft.f
    got = smooth_octaves(freqs, (gain ** 2 * inner).mean(axis=-1), 1.0 / 3.0)
    want = smooth_octaves(freqs, noise[:, 0], 1.0 / 3.0)
    ok = (got > 0) & (want > 0)
    correction = np.zeros(freqs.size)
    correction[ok] = np.clip(10.0 * np.log10(want[ok] / got[ok]), -_MATCH_LIMIT_DB, _MATCH_LIMIT_DB)
    gain = gain * (10.0 ** (correction / 20.0))[:, None]
    gain = np.pad(gain, ((0, 0), (first, power.shape[-1] - last)), mode="edge")
    bed = stft.istft(spec * gain[None], k1=n).astype(np.float32)
    p_bed = mean_power(bed)
    p_all = mean_power(data)
    # a bed measured in pauses (not a recording that is background throughout) at the level
    # measured there: the Wiener gain leaves a bed seen only in brief rests too quiet, by more
    # than the matching's limit. The background's share of the recording's power, from the
    # same periodograms
    want = p_all * float(noise.sum()) / max(float(inner.mean(axis=-1).sum()), 1e-30)
    if plateau.size < 0.5 * inner.shape[-1] and p_bed > 0.0 and want > 0.0:
        bed *= np.float32(np.sqrt(want / p_bed))
        p_bed = mean_power(bed)
    level = max(10.0 * np.log10(max(p_bed, 1e-30)), _SILENT_DB)
    sar = 10.0 * np.log10(max(p_all - p_bed, 1e-4 * p_all, 1e-20) / max(p_bed, 1e-20))
    return AmbienceModel(bed=bed, sample_rate=sr, level_dbfs=level, sar_db=sar)


def _flatness_db(spectrum: np.ndarray, freqs: np.ndarray) -> float:
    """Median over the third-octave bands from 500 Hz to 8 kHz of a mean power ``spectrum``'s
    spectral flatness in dB (geometric over arithmetic mean of the band's bins): about 0 dB for
    noise averaged over many frames, several dB below it where partials stand out."""
    out = []
    for k in range(-3, 10):
        c = 1000.0 * 2.0 ** (k / 3.0)
        band = (freqs >= c * 2.0 ** (-1.0 / 6.0)) & (freqs < c * 2.0 ** (1.0 / 6.0))
        p = spectrum[band]
        if p.size >= 3 and p.mean() > 0:
            out.append(10.0 * np.log10(np.exp(np.mean(np.log(p + 1e-300))) / p.mean()))
    return float(np.median(out)) if out else 0.0


def _background_frames(power: np.ndarray, freqs: np.ndarray, frame_s: float,
                       alpha: float) -> np.ndarray | None:
    """Frames (indices) where only a stationary background sounds, or None if there is none.

    ``power`` is the smoothed STFT power (bins, frames). On its broadband level (90 Hz-11 kHz,
    dB), a recording that stays within ``_TEXTURE_SPREAD_DB`` is all background (every frame
    counts). Otherwise the background shows as plateaus: runs of at least ``_PLATEAU_MIN_S``
    within ``_PLATEAU_DB`` of the quietest 5 % of frames, flat (drift at most
    ``_PLATEAU_SLOPE`` dB/s, ripple at most ``_PLATEAU_RIPPLE_DB``), adding up to
    ``_PLATEAU_TOTAL_S``. Reverberation tails fall through that level instead of resting on it,
    and a recording without a background has none (its quietest frames are the ends of decays).
    """
    measured = _level_db(power, freqs, alpha)
    if measured is None:
        return None
    level, skip = measured
    if np.percentile(level, 90) - np.percentile(level, 10) <= _TEXTURE_SPREAD_DB:
        return np.arange(skip, skip + level.size)
    near = level <= np.percentile(level, 5) + _PLATEAU_DB
    min_run = max(3, int(round(_PLATEAU_MIN_S / frame_s)))
    frames: list[np.ndarray] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], near.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a < min_run:
            continue
        t = np.arange(b - a) * frame_s
        slope, icpt = np.polyfit(t, level[a:b], 1)
        ripple = float(np.std(level[a:b] - (slope * t + icpt)))
        if abs(slope) <= _PLATEAU_SLOPE and ripple <= _PLATEAU_RIPPLE_DB:
            frames.append(np.arange(a, b) + skip)
    if frames and sum(f.size for f in frames) * frame_s >= _PLATEAU_TOTAL_S:
        return np.concatenate(frames)
    return None



def _level_db(power: np.ndarray, freqs: np.ndarray, alpha: float) -> tuple[np.ndarray, int] | None:
    """Level in dB per frame of the 90 Hz-11 kHz power, without the frames of the recursive
    smoothing's own start-up (its first time constants, ``skip`` frames); None when fewer than
    4 frames remain. Returns ``(level, skip)``."""
    band = (freqs >= 90.0) & (freqs < 11000.0)
    level = 10.0 * np.log10(power[band].sum(axis=0) + 1e-30)
    skip = min(level.size // 4, int(np.ceil(3.0 / max(1.0 - alpha, 1e-6))) // 4)
    level = level[skip:]
    return None if level.size < 4 else (level, skip)

def _rest_frames(power: np.ndarray, freqs: np.ndarray, frame_s: float,
                 alpha: float) -> np.ndarray | None:
    """Background frames (indices) from rests (see :func:`_floor_rests`), or None.

    ``power`` is the STFT power (bins, frames) smoothed recursively with ``alpha`` over
    ``_REST_SMOOTH_S``: the 0.1 s smoothing of :func:`_background_frames` lets a level fall at
    most 43 dB/s, so a decay would take 0.7-0.9 s to reach a floor 30-40 dB down and the rests
    in between notes would vanish."""
    measured = _level_db(power, freqs, alpha)
    if measured is None:
        return None
    level, skip = measured
    near = level <= np.percentile(level, 5) + _PLATEAU_DB
    return _floor_rests(power, freqs, level, near, frame_s, skip)


def _floor_rests(power: np.ndarray, freqs: np.ndarray, level: np.ndarray, near: np.ndarray,
                 frame_s: float, skip: int) -> np.ndarray | None:
    """Frames of a background that shows only in short rests, or None.

    Many recordings expose their floor only briefly, where a decay comes to rest on it before
    the next note. Such a rest is the flat bottom of a quiet stretch (frames within
    ``_REST_DB`` of the stretch's minimum, at least ``_REST_MIN_S`` long). A reverberant trough
    can look the same on the broadband level, so a rest counts only with evidence a tail cannot
    fake:

    - it is flat in every band (``_REST_BANDS_HZ``, 20 Hz up): no band falls or rises by more
      than ``_REST_SLOPE`` dB/s over it (a tail falls at 60 / RT60 dB/s in each band; the
      20-90 Hz band keeps a kick drum's long sub-bass tail from passing for a floor);
    - either it lasts ``_REST_LONG_S`` or more (within ``_REST_DB`` for that long, a tail
      would need an RT60 over 12 s in every band), or
    - the level stopped falling there (the broadband level in the ``_REST_KNEE_S`` before the
      rest fell at least ``_REST_KNEE`` dB/s faster than within it: a decay meeting a floor;
      a tail keeps its slope into the trough), and at least ``_REST_COUNT`` separate such rests
      agree: levels within ``_REST_MATCH_DB`` and spectral shapes (band levels re. their mean)
      within ``_REST_SHAPE_DB`` RMS of the quietest rest's. A stationary bed is the same in
      every pause; the ends of tails are where each note left them.

    ``level`` is the broadband level (dB) after the first ``skip`` frames, ``near`` its frames
    within ``_PLATEAU_DB`` of its 5th percentile. Returns the frames of the long rest or of the
    agreeing rests (indices into the unskipped frames).
    """
    edges_hz = _REST_BANDS_HZ
    bands = np.stack([power[(freqs >= lo) & (freqs < hi)].sum(axis=0)
                      for lo, hi in zip(edges_hz[:-1], edges_hz[1:], strict=True)])
    band_db = 10.0 * np.log10(bands[:, skip:] + 1e-30)
    min_run = max(3, int(round(_REST_MIN_S / frame_s)))
    knee = max(2, int(round(_REST_KNEE_S / frame_s)))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], near.astype(np.int8), [0]])))
    rests: list[tuple[float, np.ndarray, np.ndarray]] = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        bottom = level[a:b] <= level[a:b].min() + _REST_DB
        idx = np.flatnonzero(bottom)
        # the longest contiguous stretch of the bottom
        cuts = np.flatnonzero(np.diff(idx) > 1)
        pieces = np.split(idx, cuts + 1)
        core = max(pieces, key=len) + a
        if core.size < min_run or core[0] < knee:
            continue
        t = np.arange(core.size) * frame_s
        slopes = np.polyfit(t, band_db[:, core].T, 1)[0]
        if np.max(np.abs(slopes)) > _REST_SLOPE:
            continue
        if core.size * frame_s >= _REST_LONG_S:  # one long rest, flat in every band
            return core + skip
        inside = np.polyfit(t, level[core], 1)[0]
        tb = np.arange(knee) * frame_s
        before = np.polyfit(tb, level[core[0] - knee: core[0]], 1)[0]
        if inside - before < _REST_KNEE:
            continue
        shape = band_db[:, core].mean(axis=1)
        rests.append((float(level[core].mean()), shape - shape.mean(), core))
    if len(rests) < _REST_COUNT:
        return None
    rests.sort(key=lambda r: r[0])
    ref_level, ref_shape, _ = rests[0]
    agree = [r for r in rests
             if r[0] - ref_level <= _REST_MATCH_DB
             and np.sqrt(np.mean((r[1] - ref_shape) ** 2)) <= _REST_SHAPE_DB]
    if len(agree) < _REST_COUNT:
        return None
    return np.concatenate([r[2] for r in agree]) + skip


def _bed_for(model: AmbienceModel, channels: int) -> tuple[np.ndarray, bool]:
    """The bed with ``channels`` channels, and whether each channel needs its own grain
    positions (a mono bed spread to several channels: decorrelate them)."""
    bed = model.bed
    if bed.shape[0] == 1 and channels > 1:
        return bed, True
    return fit_channels(bed, channels), False


def synthesize_ambience(model: AmbienceModel, n_samples: int, channels: int,
                        rng: np.random.Generator, grain_s: float = _GRAIN_S) -> np.ndarray:
    """Re-synthesize the bed to ``n_samples`` by randomized overlap-add of grains.

    Parameters
    ----------
    model : AmbienceModel
        The bed to draw from.
    n_samples : int
        Output length in samples (at the model's sample rate).
    channels : int
        Output channels. A mono bed gives independent (decorrelated) channels; a bed with
        as many channels keeps its image.
    rng : np.random.Generator
        Source of the grain positions and polarities (same state, same output).
    grain_s : float
        Grain length in s (shortened to half the bed for short beds).

    Returns
    -------
    np.ndarray
        ``(channels, n_samples)`` float32 at the bed's level.
    """
    bed, independent = _bed_for(model, channels)
    out = np.zeros((channels, max(0, n_samples)), dtype=np.float32)
    if n_samples <= 0:
        return out
    length = bed.shape[-1]
    grain = int(min(grain_s * model.sample_rate, length // 2))
    grain -= grain % 2
    if grain < 16:
        return out
    hop = grain // 2
    # sine window: w^2 of half-overlapping grains sums to 1, so uncorrelated grains keep power
    window = np.sin(np.pi * (np.arange(grain) + 0.5) / grain).astype(np.float32)
    count = n_samples // hop + 2
    span = length - grain
    lanes = [np.arange(channels)] if not independent else [np.array([c]) for c in range(channels)]
    for lane in lanes:
        starts = _grain_starts(rng, count, span, hop, grain)
        signs = np.where(rng.random(count) < 0.5, np.float32(-1.0), np.float32(1.0))
        src = bed[:1] if independent else bed[lane]  # (lane channels, length)
        # each output block of ``hop`` samples is the tail half of grain k plus the head half
        # of grain k + 1 (half-overlapping grains)
        frames = np.lib.stride_tricks.sliding_window_view(src, hop, axis=-1)  # a view, no copy
        tails = frames[:, starts[:-1] + hop] * (signs[:-1, None] * window[hop:])
        heads = frames[:, starts[1:]] * (signs[1:, None] * window[:hop])
        blocks = (tails + heads).reshape(src.shape[0], -1)  # (lane channels, (count-1) * hop)
        out[lane] = blocks[:, :n_samples]
    return out


def _grain_starts(rng: np.random.Generator, count: int, span: int, hop: int,
                  grain: int) -> np.ndarray:
    """Uniform random grain positions in ``[0, span]`` that never continue the previous grain:
    two grains from one stretch of the bed would add coherently under the crossfade (a level
    bump, or comb filtering). Violations are redrawn (a few rounds suffice)."""
    starts = rng.integers(0, span + 1, size=count)
    if span < 2 * grain:  # a very short bed cannot avoid it
        return starts
    for _ in range(8):
        bad = np.nonzero(np.abs(starts[1:] - (starts[:-1] + hop)) < hop)[0] + 1
        if bad.size == 0:
            break
        starts[bad] = rng.integers(0, span + 1, size=bad.size)
    return starts


def loop_ambience(model: AmbienceModel, n_samples: int, channels: int,
                  crossfade_s: float = 0.1) -> np.ndarray:
    """The bed tiled to ``n_samples`` with equal-power crossfades (a plain loop).

    This is what "copy and paste" does (the separate & remix baseline): the loop repeats every
    ``duration - crossfade`` seconds.
    """
    bed = fit_channels(model.bed, channels)
    length = bed.shape[-1]
    out = np.zeros((channels, max(0, n_samples)), dtype=np.float32)
    if n_samples <= 0 or length == 0:
        return out
    fade = int(min(crossfade_s * model.sample_rate, length // 4))
    step = length - fade
    t = (np.arange(fade) + 0.5) / max(fade, 1)
    fade_in = np.sin(0.5 * np.pi * t).astype(np.float32)
    fade_out = np.cos(0.5 * np.pi * t).astype(np.float32)
    pos, first = 0, True
    while pos < n_samples:
        piece = bed.copy()
        if fade:
            if not first:
                piece[:, :fade] *= fade_in
            piece[:, -fade:] *= fade_out
        m = min(length, n_samples - pos)
        out[:, pos: pos + m] += piece[:, :m]
        pos += step
        first = False
    return out


def repetition_peak(audio: np.ndarray, sample_rate: float, min_lag_s: float = 0.5,
                    max_lag_s: float = 30.0, frame_s: float = 0.01) -> tuple[float, float]:
    """The strongest self-similarity of a sound's level envelope at lags of ``min_lag_s`` to
    ``max_lag_s`` seconds: what a loop gives away.

    The envelope is the level in dB of ``frame_s`` frames (channels pooled), its mean removed;
    the result is the largest value of its normalised, unbiased autocorrelation in the lag
    range, and that lag in s. A loop of period P gives a value near 1 at P; random textures
    stay near 0.

    Returns
    -------
    peak : float
        Autocorrelation coefficient (1 = exact repetition).
    lag_s : float
        Where it occurs, in s.
    """
    data, _ = to_channels_first(audio)
    hop = max(1, int(round(frame_s * float(sample_rate))))
    n = data.shape[-1] // hop
    if n < 4:
        return 0.0, 0.0
    power = (data[:, : n * hop].astype(np.float64) ** 2).reshape(data.shape[0], n, hop)
    env = 10.0 * np.log10(power.mean(axis=(0, 2)) + 1e-12)
    env -= env.mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(env, size)
    ac = np.fft.irfft(np.abs(spec) ** 2, size)[:n]
    if ac[0] <= 0:
        return 0.0, 0.0
    ac = ac / ac[0] / (1.0 - np.arange(n) / n)  # unbiased: each lag has fewer overlapping frames
    lo = max(1, int(round(min_lag_s / frame_s)))
    hi = min(n // 2, int(round(max_lag_s / frame_s)) + 1)  # beyond half the length it is noise
    if hi <= lo:
        return 0.0, 0.0
    i = int(np.argmax(ac[lo:hi]))
    return float(ac[lo + i]), (lo + i) * frame_s
