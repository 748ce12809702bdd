"""Turning a :class:`~blendfx.midi.Score` into a stereo mix, and designing that mix for a noise.

Rendering (:func:`render_score`) is a pure function of the score: synthesize every part with
the built-in voices (:mod:`blendfx.synth`), apply its CC 7/11 volume and expression curves,
pan it, run its insert effects (pedalboard: high/low-pass, drive, compression, chorus), sum,
add a shared reverb bus, then the master: optional lo-fi wear, the master EQ, a DC-blocking
high-pass, and a loudness/peak normalization with a limiter so the result never clips. Every
setting comes from the score (its blendfx meta events or, for foreign files, defaults), so a
MIDI file written by the composer renders to exactly the audio the composer returned.

Design (used by the composer, results stored in the score): :func:`follow_gain` turns the
noise's core envelope into a dynamics curve (loud where the noise is loud), :func:`gain_to_cc`
writes it as CC 11 automation, and :func:`match_eq` finds master EQ band gains that move the
music's long-term spectrum towards the noise core's.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .midi import Part, Score
from .synth import note_tail_s, render_drums, render_part, voice_for_program

__all__ = ["render_score", "synthesize", "mix_parts", "mix_bus", "master", "follow_gain", "gain_to_cc",
           "cc_to_gain",
           "match_eq", "band_eq", "normalize", "DEFAULT_SEND", "CEILING_DB"]

#: Reverb send of parts without settings (foreign MIDI files).
DEFAULT_SEND = 0.15
#: Sample peak ceiling of every render (dBFS).
CEILING_DB = -1.0
#: Integrated loudness the master is normalized to when the peak allows (LUFS).
TARGET_LUFS = -18.0
#: Limits of the master EQ's band gains (dB).
MAX_BOOST_DB = 18.0
MAX_CUT_DB = 30.0
#: Extra seconds rendered after the last note of a foreign MIDI file (release and reverb).
TAIL_S = 1.5


def part_voice(part: Part) -> str:
    """The built-in voice of a part: its blendfx setting, else 'drums' or the GM program's."""
    if part.is_drum:
        return "drums"
    return str(part.meta.get("voice") or voice_for_program(part.program))


def score_length(score: Score, sample_rate: float) -> int:
    """Samples to render: the composer's exact length, else the score plus a release tail."""
    if "length_s" in score.meta:
        return int(round(float(score.meta["length_s"]) * sample_rate))
    tail = max([note_tail_s(part_voice(p)) for p in score.parts if not p.is_drum] + [0.0])
    return int(round((score.length_s + min(tail, TAIL_S)) * sample_rate))


def _bend_function(part: Part, sample_rate: float):
    if part.bend.size == 0 or not np.any(part.bend[:, 1]):
        return None
    times, semis = part.bend[:, 0], part.bend[:, 1]

    def bend(start: int, n: int):
        t0 = start / sample_rate
        t1 = (start + n) / sample_rate
        i0 = np.searchsorted(times, t0, side="right") - 1
        first = semis[i0] if i0 >= 0 else 0.0
        inside = (times > t0) & (times < t1)
        if not inside.any():
            return None if first == 0.0 else np.full(n, 2.0 ** (first / 12.0))
        idx = np.clip(np.searchsorted(times, t0 + np.arange(n) / sample_rate, side="right") - 1, 0, None)
        curve = np.where(t0 + np.arange(n) / sample_rate >= times[0], semis[idx], 0.0)
        return 2.0 ** (curve / 12.0)

    return bend


def brightness_factor(value: float | np.ndarray) -> float | np.ndarray:
    """Timbre brightness factor of a CC 74 value: 64 -> 1, each 16 steps an octave of cutoff."""
    return 2.0 ** ((np.asarray(value, dtype=np.float64) - 64.0) / 16.0)


def _note_brightness(part: Part) -> np.ndarray | None:
    events = part.controls.get(74)
    if events is None or len(events) == 0 or part.notes.size == 0:
        return None
    idx = np.searchsorted(events[:, 0], part.notes[:, 0] + 1e-9, side="right") - 1
    values = np.where(idx >= 0, events[np.maximum(idx, 0), 1], 64.0)
    return brightness_factor(values)


def _synth_one(part: Part, sample_rate: float, length: int) -> np.ndarray:
    voice = part_voice(part)
    if voice == "drums":
        return render_drums(part.notes, sample_rate, length)
    return render_part(voice, part.notes, sample_rate, length, _bend_function(part, sample_rate),
                       _note_brightness(part))


def synthesize(score: Score, sample_rate: float, length: int | None = None,
               workers: int | None = None) -> list[np.ndarray]:
    """Dry audio of every part: ``(length,)`` mono for pitched parts, ``(2, length)`` for drums.

    Depends only on the notes, programs/voices, pitch bends and brightness (CC 74), not on
    volume, expression or mix settings, so the composer can design its mix from these dry
    parts and reuse them.
    """
    n = score_length(score, sample_rate) if length is None else int(length)
    workers = workers or min(4, os.cpu_count() or 1)
    if workers <= 1 or len(score.parts) <= 1:
        return [_synth_one(p, sample_rate, n) for p in score.parts]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: _synth_one(p, sample_rate, n), score.parts))


def cc_to_gain(events: np.ndarray | None, sample_rate: float, length: int,
               ramp_s: float = 0.005) -> np.ndarray | None:
    """Gain curve ``(length,)`` of CC 7/11 events ``(k, 2)`` (time s, value): amplitude
    ``(value / 127) ** 2`` (the General MIDI -40 log10 law), steps smoothed by a short ramp."""
    if events is None or len(events) == 0:
        return None
    times = np.asarray(events[:, 0], dtype=np.float64)
    gains = (np.asarray(events[:, 1], dtype=np.float64) / 127.0) ** 2
    if gains.size == 1 and times[0] <= 0:  # a channel volume set once: a constant
        return np.full(length, gains[0], dtype=np.float32)
    starts = np.clip(np.round(times * sample_rate).astype(np.int64), 0, length)
    curve = np.empty(length, dtype=np.float32)
    curve[: starts[0]] = 1.0 if starts[0] > 0 else gains[0]
    bounds = np.append(starts, length)
    for i, g in enumerate(gains):
        curve[bounds[i]:bounds[i + 1]] = g
    ramp = max(1, int(ramp_s * sample_rate))
    # moving average over the ramp (a running sum, O(length)) turns each step into a linear ramp
    padded = np.concatenate([np.full(ramp, curve[0], np.float64), curve])
    csum = np.cumsum(padded)
    return ((csum[ramp:] - csum[:-ramp]) / ramp).astype(np.float32)


def _channel_gain(part: Part, sample_rate: float, length: int) -> np.ndarray | float | None:
    """CC 7 (volume) times CC 11 (expression) of a part: a curve, a constant, or None."""
    gains = [cc_to_gain(part.controls.get(cc), sample_rate, length) for cc in (7, 11)]
    gains = [g for g in gains if g is not None]
    if not gains:
        return None
    out: np.ndarray | float = 1.0
    for g in gains:
        out = out * (np.float32(g[0]) if np.all(g == g[0]) else g)
    return out


def _insert_fx(fx: dict, sample_rate: float):
    """pedalboard chain of a part's insert effects (None when it has none)."""
    import pedalboard as pb

    plugins = []
    if fx.get("hp"):
        plugins.append(pb.HighpassFilter(cutoff_frequency_hz=float(fx["hp"])))
    if fx.get("lp"):
        plugins.append(pb.LowpassFilter(cutoff_frequency_hz=float(min(fx["lp"], 0.45 * sample_rate))))
    for freq, gain_db, q in fx.get("eq", []):
        plugins.append(pb.PeakFilter(cutoff_frequency_hz=float(min(freq, 0.45 * sample_rate)),
                                     gain_db=float(gain_db), q=float(q)))
    if fx.get("drive_db"):
        plugins.append(pb.Distortion(drive_db=float(fx["drive_db"])))
        plugins.append(pb.LowpassFilter(cutoff_frequency_hz=float(min(5500.0, 0.45 * sample_rate))))
        plugins.append(pb.Gain(gain_db=-float(fx["drive_db"]) * 0.5))
    if fx.get("comp"):
        threshold, ratio = fx["comp"]
        plugins.append(pb.Compressor(threshold_db=float(threshold), ratio=float(ratio),
                                     attack_ms=10.0, release_ms=120.0))
    if fx.get("chorus"):
        plugins.append(pb.Chorus(rate_hz=0.6, depth=0.25, mix=float(fx["chorus"]), centre_delay_ms=8.0))
    return pb.Pedalboard(plugins) if plugins else None


def mix_parts(score: Score, dry: list[np.ndarray], sample_rate: float, length: int) -> np.ndarray:
    """Mix dry parts with the score's controllers and settings, then master them."""
    return master(mix_bus(score, dry, sample_rate, length), sample_rate, score.meta)


def mix_bus(score: Score, dry: list[np.ndarray], sample_rate: float, length: int) -> np.ndarray:
    """The stereo bus before the master: parts with their controllers, pans and inserts, the
    reverb bus and the lo-fi wear. Independent of the master settings, so the composer can
    design the master EQ from it."""
    import pedalboard as pb

    bus = np.zeros((2, length), dtype=np.float32)
    send = np.zeros((2, length), dtype=np.float32)
    for part, audio in zip(score.parts, dry, strict=True):
        audio = np.asarray(audio, dtype=np.float32)
        if part.meta.get("eq_db") and score.meta.get("bands"):
            edges = np.asarray(score.meta["bands"])
            audio = band_eq(audio, sample_rate, edges, np.asarray(part.meta["eq_db"]))
        gain = _channel_gain(part, sample_rate, length)
        if gain is not None:
            audio = audio * gain
        # inserts run on the mono part (none of them widens it), then it is panned
        chain = _insert_fx(part.meta.get("fx", {}), sample_rate)
        if chain is not None:
            audio = chain(audio[None] if audio.ndim == 1 else audio, sample_rate)
            audio = audio[0] if audio.shape[0] == 1 else audio
        level = np.float32(part.meta.get("send", DEFAULT_SEND))
        if audio.ndim == 1:
            pan = part.meta.get("pan")
            if pan is None and part.controls.get(10) is not None and len(part.controls[10]):
                pan = (float(part.controls[10][0, 1]) - 64.0) / 63.0
            theta = (float(np.clip(pan or 0.0, -1.0, 1.0)) + 1.0) * np.pi / 4.0
            for ch, weight in enumerate((np.cos(theta), np.sin(theta))):
                panned = audio * np.float32(weight * np.sqrt(2.0))
                bus[ch] += panned
                if level > 0:
                    send[ch] += panned * level
        else:
            bus += audio
            if level > 0:
                send += audio * level
    room, wet = score.meta.get("reverb", (0.5, 1.0))
    if np.any(send):
        reverb = pb.Pedalboard([pb.HighpassFilter(cutoff_frequency_hz=180.0),
                                pb.Reverb(room_size=float(room), damping=0.5, wet_level=float(wet),
                                          dry_level=0.0, width=1.0)])
        bus += reverb(send, sample_rate)
    if score.meta.get("lofi"):
        wear = pb.Pedalboard([pb.Bitcrush(bit_depth=10.0),
                              pb.Chorus(rate_hz=0.35, depth=0.08, mix=0.5, centre_delay_ms=4.0,
                                        feedback=0.0)])
        bus = wear(bus, sample_rate)
    return bus


def master(bus: np.ndarray, sample_rate: float, meta: dict) -> np.ndarray:
    """Master: the master EQ, a DC-blocking high-pass and normalization (never clipping)."""
    import pedalboard as pb

    eq = meta.get("master_eq")
    if eq:
        bus = band_eq(bus, sample_rate, np.asarray(eq["edges"]), np.asarray(eq["gains_db"]))
    bus = pb.HighpassFilter(cutoff_frequency_hz=25.0)(bus.astype(np.float32), sample_rate)
    return normalize(bus, sample_rate, float(meta.get("level_lufs", TARGET_LUFS)))


def normalize(audio: np.ndarray, sample_rate: float, target_lufs: float = TARGET_LUFS,
              ceiling_db: float = CEILING_DB) -> np.ndarray:
    """Gain to ``target_lufs`` (ITU-R BS.1770 via pyloudnorm; RMS for clips under 0.4 s), then a
    limiter and a final trim so the sample peak stays at or under ``ceiling_db`` dBFS."""
    import pedalboard as pb

    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak < 1e-9:
        return np.zeros_like(audio)
    loudness = _loudness(audio, sample_rate)
    gain = 10.0 ** ((target_lufs - loudness) / 20.0) if np.isfinite(loudness) else 1.0 / peak
    out = audio * np.float32(gain)
    ceiling = 10.0 ** (ceiling_db / 20.0)
    if np.abs(out).max() > ceiling:
        limiter = pb.Limiter(threshold_db=ceiling_db - 2.0, release_ms=120.0)
        out = limiter(out, sample_rate)
        top = float(np.abs(out).max())
        if top > ceiling:
            out = out * np.float32(ceiling / top)
    return out.astype(np.float32)


def _loudness(audio: np.ndarray, sample_rate: float) -> float:
    if audio.shape[-1] < int(0.4 * sample_rate) + 1:
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        return 20.0 * np.log10(max(rms, 1e-12)) - 0.691
    import pyloudnorm as pyln

    value = pyln.Meter(int(round(sample_rate))).integrated_loudness(audio.T.astype(np.float64))
    return float(value) if np.isfinite(value) else -np.inf


def render_score(score: Score, sample_rate: float, dry: list[np.ndarray] | None = None) -> np.ndarray:
    """Stereo ``(2, N)`` float32 render of a score (N from :func:`score_length`)."""
    n = score_length(score, sample_rate)
    if n <= 0:
        return np.zeros((2, 0), dtype=np.float32)
    if dry is None:
        dry = synthesize(score, sample_rate, n)
    return mix_parts(score, dry, sample_rate, n)


# -- design --------------------------------------------------------------------------------------
def follow_gain(envelope: np.ndarray, fps: float, floor_db: float, *, attack_s: float = 0.01,
                release_s: float = 0.15, exponent: float = 0.5, lookahead_s: float = 0.03) -> np.ndarray:
    """Dynamics that follow the noise: a gain per frame in dB, 0 where the core is loudest.

    The core envelope (power) is raised to ``exponent`` (0.5: amplitude), expressed relative to
    its 95th percentile, smoothed like a compressor's detector (fast attack, slow release) and
    kept between ``floor_db`` and 0 dB. Offline, the curve can also rise ``lookahead_s``
    before the noise does, so instruments are already sounding when an event starts.
    """
    env = np.asarray(envelope, dtype=np.float64)
    if env.size == 0 or not np.any(env > 0):
        return np.zeros(env.size)
    ref = np.percentile(env[env > 0], 95)
    db = 10.0 * exponent * np.log10(np.maximum(env / ref, 1e-12))
    db = np.clip(db, floor_db, 0.0)
    a = np.exp(-1.0 / (max(attack_s, 1e-4) * fps))
    r = np.exp(-1.0 / (max(release_s, 1e-4) * fps))
    out = np.empty_like(db)
    level = db[0]
    # a peak detector in dB: rises with the attack constant, falls with the release constant
    for i, x in enumerate(db):
        coef = a if x > level else r
        level = coef * level + (1.0 - coef) * x
        out[i] = level
    if lookahead_s > 0:
        c = np.exp(-1.0 / (lookahead_s * fps))
        ahead = out[-1]
        for i in range(out.size - 1, -1, -1):
            ahead = max(out[i], c * ahead + (1.0 - c) * out[i])
            out[i] = ahead
    return out


def gain_to_cc(gain_db: np.ndarray, frame_ticks: np.ndarray, min_step: int = 1) -> np.ndarray:
    """CC 11 events ``(k, 3)`` (tick, 11, value) for a dB gain curve sampled at ``frame_ticks``;
    an event only where the 7-bit value changes by ``min_step`` or more."""
    value = np.clip(np.round(127.0 * 10.0 ** (np.asarray(gain_db) / 40.0)), 1, 127).astype(np.int64)
    keep = [0]
    for i in range(1, value.size):
        if abs(int(value[i]) - int(value[keep[-1]])) >= min_step:
            keep.append(i)
    idx = np.asarray(keep)
    ticks = np.asarray(frame_ticks, dtype=np.int64)[idx]
    ticks, first = np.unique(ticks, return_index=True)
    return np.column_stack([ticks, np.full(ticks.size, 11), value[idx][first]])


def _band_power(mono: np.ndarray, sample_rate: float, edges: np.ndarray,
                max_segments: int = 256) -> np.ndarray:
    """Long-term power per band: Hann-windowed periodograms of at most ``max_segments`` segments
    spread evenly over the signal (all of them for short signals)."""
    mono = np.asarray(mono, dtype=np.float32)
    nper = int(min(8192, max(256, 2 ** np.floor(np.log2(max(mono.size, 256))))))
    if mono.size < nper:
        mono = np.pad(mono, (0, nper - mono.size))
    count = min(max_segments, max(1, 2 * (mono.size - nper) // nper + 1))
    starts = np.linspace(0, mono.size - nper, count).astype(np.int64)
    frames = mono[starts[:, None] + np.arange(nper)[None, :]] * np.hanning(nper).astype(np.float32)
    psd = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(nper, 1.0 / sample_rate)
    return fold_bands(psd[:, None], freqs, edges)[:, 0]


def match_eq(mix: np.ndarray, sample_rate: float, target: np.ndarray, edges: np.ndarray, *,
             strength: float = 0.8, max_boost_db: float = MAX_BOOST_DB,
             max_cut_db: float = MAX_CUT_DB, keep_level: bool = False) -> np.ndarray:
    """Master EQ band gains (dB) that move ``mix``'s long-term spectrum towards ``target``.

    Both spectra are normalized to the same total power; the gain is ``strength`` times the dB
    difference, smoothed over neighbouring bands and limited to ``+max_boost_db`` /
    ``-max_cut_db``. Bands where the target has no energy (above the core's 10 kHz) are cut
    like the quietest core band. ``keep_level`` shifts the gains so the signal's total power
    is unchanged (for a track EQ that should not change the track's place in the mix).
    """
    data = np.asarray(mix, dtype=np.float64)
    mono = data.mean(axis=0) if data.ndim == 2 else data
    have = _band_power(mono, sample_rate, edges)
    want = np.asarray(target, dtype=np.float64)
    if have.sum() <= 0 or want.sum() <= 0:
        return np.zeros(edges.size - 1)
    have_db = 10.0 * np.log10(have / have.sum() + 1e-12)
    want_db = 10.0 * np.log10(want / want.sum() + 1e-12)
    floor = np.percentile(want_db[want > 0], 10) if np.any(want > 0) else -60.0
    want_db = np.maximum(want_db, floor - 10.0)
    gains = strength * (want_db - have_db)
    gains = np.convolve(np.pad(gains, 1, mode="edge"), np.array([0.25, 0.5, 0.25]), mode="valid")
    if keep_level:
        gains -= 10.0 * np.log10(np.sum(have * 10.0 ** (gains / 10.0)) / have.sum())
    gains -= gains.max() - min(gains.max(), max_boost_db)  # keep the boost within range
    return np.clip(gains, -max_cut_db, max_boost_db)


def band_eq(audio: np.ndarray, sample_rate: float, edges: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """Apply per-band gains (dB, one per band between ``edges`` in Hz) with a linear-phase FIR
    (delay compensated); gains are interpolated on a log-frequency axis between band centres."""
    from scipy.signal import firwin2, oaconvolve

    nyq = sample_rate / 2.0
    centers = np.sqrt(edges[:-1] * edges[1:])
    keep = centers < nyq
    if not keep.any():
        return audio
    grid = np.concatenate([[0.0], np.geomspace(10.0, nyq, 256)])
    g_db = np.interp(np.log(np.maximum(grid, 1.0)), np.log(centers[keep]), np.asarray(gains_db)[keep])
    taps = int(2 * round(sample_rate * 0.025) + 1)  # 50 ms: fine enough for the lowest bands
    h = firwin2(taps, grid / nyq, 10.0 ** (g_db / 20.0), window="hann")
    data = np.asarray(audio, dtype=np.float32)
    h = h.astype(np.float32)
    delay = (taps - 1) // 2
    out = oaconvolve(data, h[None, :] if data.ndim == 2 else h, mode="full", axes=-1)
    return out[..., delay:delay + data.shape[-1]].astype(np.float32)


# -- masking-aware balance ---------------------------------------------------------------------
def band_frames(mono: np.ndarray, sample_rate: float, edges: np.ndarray, hop: int) -> np.ndarray:
    """Power per band and frame ``(bands, frames)`` of a mono signal (Hann window of 2 hops)."""
    import librosa

    n_fft = int(2 ** np.ceil(np.log2(2 * hop)))
    spec = np.abs(librosa.stft(np.asarray(mono, dtype=np.float32), n_fft=n_fft, hop_length=hop,
                               center=True)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return fold_bands(spec, freqs, edges)


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


def k_weights(sample_rate: float, centers_hz: np.ndarray) -> np.ndarray:
    """Power weight of each band in ITU-R BS.1770 loudness (its K-weighting filter)."""
    import pyloudnorm as pyln
    from scipy.signal import freqz

    meter = pyln.Meter(int(round(sample_rate)))
    w = np.ones(centers_hz.size)
    for f in meter._filters.values():  # the high shelf and the RLB high-pass
        _, h = freqz(f.b, f.a, worN=np.minimum(centers_hz, sample_rate / 2 * 0.999), fs=sample_rate)
        w *= np.abs(h) ** 2 * f.passband_gain ** 2
    return w


def spreading_matrix(centers_hz: np.ndarray) -> np.ndarray:
    """Schroeder's spreading function between bands (power), on the Bark scale (DESIGN.md 8)."""
    f = np.asarray(centers_hz, dtype=np.float64) / 1000.0
    bark = 13.0 * np.arctan(0.76 * f) + 3.5 * np.arctan((f / 7.5) ** 2)
    dz = bark[:, None] - bark[None, :] + 0.474  # masker in column j, maskee in row i
    return 10.0 ** ((15.81 + 7.5 * dz - 17.5 * np.sqrt(1.0 + dz ** 2)) / 10.0)


def weighted_median(values: np.ndarray, weights: np.ndarray, resolution: float = 0.05) -> float:
    """The value below which half the weight lies (to ``resolution``), by a weighted histogram
    (linear time: this runs hundreds of times per balance)."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < resolution:
        return lo
    bins = int(np.ceil((hi - lo) / resolution)) + 1
    hist = np.bincount(((values - lo) / resolution).astype(np.int64), weights=weights, minlength=bins)
    cum = np.cumsum(hist)
    return lo + resolution * (int(np.searchsorted(cum, 0.5 * cum[-1])) + 0.5)


def masking_cost(mix: np.ndarray, core: np.ndarray, spread: np.ndarray, weights: np.ndarray, *,
                 fps: float = 50.0, smr_db: float = 21.0, match: float = 0.0) -> float:
    """Loudness cost (dB, up to a constant) of masking half the core's energy with ``mix``.

    ``mix`` and ``core`` are ``(bands, frames)`` powers at ``fps`` frames per second. With
    ``match`` > 0 the mix's long-term spectrum is first moved that far towards the core's, as
    the master EQ will do. The threshold is the mix spread across bands minus ``smr_db``; the
    gain needed is the energy-weighted median over the core's band-frames of core / threshold;
    the loudness is the K-weighted power of the 400 ms blocks that pass BS.1770's relative gate.
    """
    sel = core > 0
    if not sel.any():
        return 0.0
    if match > 0:
        have = mix.sum(axis=1) + 1e-30
        want = core.sum(axis=1) + 1e-30
        ratio_db = np.clip(10.0 * np.log10((want / want.sum()) / (have / have.sum())), -MAX_CUT_DB,
                           MAX_BOOST_DB)
        mix = mix * 10.0 ** (match * ratio_db / 10.0)[:, None]
    # einsum, not BLAS: small products like this one thrash a threaded BLAS on a busy machine
    thr = np.einsum("ij,jk->ik", spread, mix) * 10.0 ** (-smr_db / 10.0)
    need = 10.0 * np.log10(core[sel] / np.maximum(thr[sel], 1e-30))
    gain = weighted_median(need, core[sel])
    power = weights @ mix  # K-weighted power per frame
    block = max(1, int(round(0.4 * fps)))
    hop = max(1, block // 4)
    if power.size >= block:
        csum = np.concatenate([[0.0], np.cumsum(power)])
        blocks = (csum[block::hop] - csum[:-block:hop]) / block
        gated = blocks[blocks >= 0.1 * blocks.mean()] if blocks.size else blocks
        level = float(gated.mean()) if gated.size else float(power.mean())
    else:
        level = float(power.mean())
    return float(10.0 * np.log10(max(level, 1e-30)) + gain)


def auto_balance(tracks: list[np.ndarray], core: np.ndarray, centers_hz: np.ndarray, sample_rate: float,
                 *, low_db: float = -12.0, high_db: float | np.ndarray = 6.0, step_db: float = 3.0,
                 sweeps: int = 3, max_frames: int = 3000, fps: float = 50.0,
                 match: float = 0.0, tonal: np.ndarray | None = None,
                 min_tonal_share: float = 0.6) -> np.ndarray:
    """Track gains (dB) that minimize :func:`masking_cost` of the sum of the tracks: a mixing
    engineer balancing the band so it covers the noise's core with the least loudness
    (coordinate descent on a grid of ``step_db`` within ``[low_db, high_db]``; ``high_db`` may
    be one value per track).

    ``tracks`` are ``(bands, frames)`` powers on the same frames as ``core`` (``fps`` per
    second); ``match`` is the strength of the master EQ that will follow. Long pieces are
    evaluated on at most ``max_frames`` frames (whole 400 ms blocks, evenly spread).

    ``tonal`` marks the tracks that play notes (not drums or noise textures): they must keep
    at least ``min_tonal_share`` of the band's K-weighted power, so the result stays music and
    never turns into a noise that imitates the noise (each dB short costs 3 dB).
    """
    frames = core.shape[1]
    if frames > max_frames:
        block = max(1, int(round(0.4 * fps)))
        starts = np.linspace(0, frames - block, max(1, max_frames // block)).astype(int)
        idx = (starts[:, None] + np.arange(block)[None, :]).ravel()
    else:
        idx = np.arange(frames)
    stack = np.stack([t[:, idx] for t in tracks])  # (tracks, bands, frames)
    c = core[:, idx]
    spread = spreading_matrix(centers_hz)
    weights = k_weights(sample_rate, centers_hz)
    gains = np.zeros(len(tracks))
    highs = np.broadcast_to(np.asarray(high_db, dtype=np.float64), (len(tracks),))
    grid = np.arange(low_db, highs.max() + 1e-9, step_db)

    power = np.einsum("b,tbf->t", weights, stack)  # K-weighted power of each track
    tonal_mask = np.ones(len(tracks), bool) if tonal is None else np.asarray(tonal, bool)

    def cost(g):
        lin = 10.0 ** (g / 10.0)
        value = masking_cost(np.einsum("t,tbf->bf", lin, stack), c, spread, weights, fps=fps, match=match)
        total = float(lin @ power)
        if total > 0 and tonal_mask.any() and not tonal_mask.all():
            share = float(lin[tonal_mask] @ power[tonal_mask]) / total
            if share < min_tonal_share:
                value += 3.0 * 10.0 * np.log10(min_tonal_share / max(share, 1e-6))
        return value

    best = cost(gains)
    for _ in range(sweeps):
        changed = False
        for t in range(len(tracks)):
            for value in grid:
                if value == gains[t] or value > highs[t] + 1e-9:
                    continue
                trial = gains.copy()
                trial[t] = value
                score = cost(trial)
                if score < best - 1e-6:
                    best, gains, changed = score, trial, True
        if not changed:
            break
    return gains
