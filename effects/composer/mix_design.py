"""Designing the composer's mix for a noise: settings that let little gain mask a lot.

The composer's score is rendered by :mod:`.mixing` from settings stored in its MIDI file;
this module chooses those settings from what :mod:`.listening` heard in the noise:

- :func:`track_settings`: each role's pan, reverb send and inserts (:data:`ROLE_MIX`), and a
  brightness (CC 74) that puts the voices' energy near the core's centre;
- :func:`expression`: CC 11 automation that follows the core's envelope (:func:`follow_gain`),
  deeper and faster for peaky noises, so the music is loud where the noise is;
- :func:`balance`: channel volumes (CC 7) chosen by :func:`auto_balance`, which minimizes a
  simple masking model's loudness cost (:func:`masking_cost`: Schroeder spreading on the Bark
  scale, a 21 dB signal-to-mask ratio, the energy-weighted median over the core, BS.1770
  K-weighting and gating) while the tracks that play notes keep most of the power;
- :func:`master_eq`: master EQ band gains that move the finished bus towards the core's
  spectrum.

The masking model here is a fast stand-in used to steer choices inside the composer; the
yardstick is :func:`blendfx.effects.blend.metrics.cost_to_mask_lu`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyloudnorm as pyln
import scipy.fft
from blendfx.threads import cores, one_blas_thread
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import freqz, get_window, oaconvolve

from .arrangement import TPB, Arrangement
from .listening import FPS, Listening, band_edges, fold_bands
from .midi import TrackSpec, seconds_to_ticks, ticks_to_seconds
from .mixing import ControlGain, band_eq_taps

__all__ = ["ROLE_MIX", "NOISE_ROLES", "track_settings", "expression", "gain_curve", "balance",
           "master_eq", "follow_gain", "gain_to_cc", "match_eq", "band_frames", "balance_frames", "k_weights",
           "spreading_matrix", "weighted_median", "core_cells", "masking_cost", "auto_balance",
           "MAX_BOOST_DB", "MAX_CUT_DB"]

#: Mix settings per role: pan, reverb send, insert effects, and how deeply its expression
#: follows the noise (1 = the full floor, 0 = not at all).
ROLE_MIX: dict[str, dict[str, Any]] = {
    "drums": {"pan": 0.0, "send": 0.06, "fx": {"hp": 30.0, "comp": [-16.0, 3.0]}, "follow": 0.7},
    "hits": {"pan": 0.0, "send": 0.12, "fx": {"hp": 40.0}, "follow": 0.0},
    "bass": {"pan": 0.0, "send": 0.0, "fx": {"hp": 30.0, "comp": [-18.0, 3.0]}, "follow": 0.8},
    "chords": {"pan": -0.25, "send": 0.18, "fx": {"hp": 110.0, "comp": [-20.0, 2.0]}, "follow": 0.9},
    "pad": {"pan": 0.25, "send": 0.3, "fx": {"hp": 140.0, "chorus": 0.35}, "follow": 1.0},
    "lead": {"pan": 0.1, "send": 0.22, "fx": {"hp": 180.0}, "follow": 0.5},
    "arp": {"pan": 0.35, "send": 0.28, "fx": {"hp": 220.0}, "follow": 0.8},
    "texture": {"pan": -0.35, "send": 0.2, "fx": {"hp": 150.0}, "follow": 1.0},
    "stabs": {"pan": -0.1, "send": 0.3, "fx": {"hp": 150.0}, "follow": 0.0},
    "follow": {"pan": 0.0, "send": 0.2, "fx": {"hp": 120.0}, "follow": 0.0},
}
#: Roles that play noise-like sounds rather than notes (kept a minority of the mix).
NOISE_ROLES = frozenset({"drums", "hits", "texture"})
#: Share of the band's K-weighted power the tracks that play notes keep at least (the rest:
#: drums, noise hits, textures), so that the music stays tonal (key clarity).
MIN_TONAL_SHARE = 0.6
#: Limits of the master EQ's band gains (dB).
MAX_BOOST_DB = 18.0
MAX_CUT_DB = 30.0
#: Channel volume (CC 7) of a track the balance leaves alone, in dB (value 90 of 127).
NOMINAL_VOLUME_DB = -6.0


# -- building blocks -----------------------------------------------------------------------------
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
    """CC 11 events ``(k, 3)`` (tick, 11, value) for a dB gain curve sampled at ``frame_ticks``:
    the 7-bit value (General MIDI's 40 log10 law) on a grid of ``min_step`` steps, written only
    where it changes."""
    value = 127.0 * 10.0 ** (np.asarray(gain_db, dtype=np.float64) / 40.0)
    value = np.clip(np.round(value / min_step) * min_step, 1, 127).astype(np.int64)
    if value.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    idx = np.concatenate([[0], np.flatnonzero(np.diff(value)) + 1])
    ticks = np.asarray(frame_ticks, dtype=np.int64)[idx]
    ticks, first = np.unique(ticks, return_index=True)
    return np.column_stack([ticks, np.full(ticks.size, 11), value[idx][first]])


def _segment_starts(n: int, nper: int, max_segments: int) -> np.ndarray:
    """Starts of at most ``max_segments`` segments of ``nper`` samples spread evenly over ``n``
    samples (half-overlapping ones for a short signal)."""
    count = min(max_segments, max(1, 2 * (n - nper) // nper + 1))
    return np.linspace(0, n - nper, count).astype(np.int64)


def _segment_length(n: int) -> int:
    return int(min(8192, max(256, 2 ** np.floor(np.log2(max(n, 256))))))


def _segments(audio: np.ndarray, starts: np.ndarray, nper: int, context: int = 0) -> np.ndarray:
    """``(segments, nper + 2 context)`` float32 excerpts of the mono sum of ``audio`` (channel
    mean), zero outside the signal."""
    audio = np.asarray(audio, dtype=np.float32)
    n = audio.shape[-1]
    out = np.zeros((starts.size, nper + 2 * context), dtype=np.float32)
    for k, s in enumerate(starts):
        lo, hi = int(s) - context, int(s) + nper + context
        a, b = max(lo, 0), min(hi, n)
        if b > a:
            piece = audio[..., a:b]
            out[k, a - lo:b - lo] = piece.mean(axis=0) if piece.ndim == 2 else piece
    return out


def _segments_band_power(frames: np.ndarray, sample_rate: float, edges: np.ndarray) -> np.ndarray:
    """Mean Hann-windowed periodogram of ``(segments, nper)`` frames, folded onto bands."""
    nper = frames.shape[1]

    psd = (np.abs(scipy.fft.rfft(frames * np.hanning(nper).astype(np.float32), axis=1)) ** 2).mean(axis=0)
    return fold_bands(psd[:, None], np.fft.rfftfreq(nper, 1.0 / sample_rate), edges)[:, 0]


def _band_power(mono: np.ndarray, sample_rate: float, edges: np.ndarray,
                max_segments: int = 256) -> np.ndarray:
    """Long-term power per band: Hann-windowed periodograms of at most ``max_segments`` segments
    spread evenly over the signal (all of them for short signals)."""
    mono = np.asarray(mono, dtype=np.float32)
    nper = _segment_length(mono.size)
    starts = _segment_starts(max(mono.size, nper), nper, max_segments)
    return _segments_band_power(_segments(mono, starts, nper), sample_rate, edges)


def _match_gains(have: np.ndarray, target: np.ndarray, strength: float, max_boost_db: float,
                 max_cut_db: float) -> np.ndarray:
    want = np.asarray(target, dtype=np.float64)
    if have.sum() <= 0 or want.sum() <= 0:
        return np.zeros(have.size)
    have_db = 10.0 * np.log10(have / have.sum() + 1e-12)
    want_db = 10.0 * np.log10(want / want.sum() + 1e-12)
    floor = np.percentile(want_db[want > 0], 10) if np.any(want > 0) else -60.0
    want_db = np.maximum(want_db, floor - 10.0)
    gains = strength * (want_db - have_db)
    gains = np.convolve(np.pad(gains, 1, mode="edge"), np.array([0.25, 0.5, 0.25]), mode="valid")
    gains -= gains.max() - min(gains.max(), max_boost_db)  # keep the boost within range
    return np.clip(gains, -max_cut_db, max_boost_db)


def match_eq(mix: np.ndarray, sample_rate: float, target: np.ndarray, edges: np.ndarray, *,
             strength: float = 0.8, max_boost_db: float = MAX_BOOST_DB,
             max_cut_db: float = MAX_CUT_DB) -> np.ndarray:
    """Master EQ band gains (dB) that move ``mix``'s long-term spectrum towards ``target``.

    Both spectra are normalized to the same total power; the gain is ``strength`` times the dB
    difference, smoothed over neighbouring bands and limited to ``+max_boost_db`` /
    ``-max_cut_db``. Bands where the target has no energy (above the core's 10 kHz) are cut
    like the quietest core band.
    """
    data = np.asarray(mix, dtype=np.float32)
    nper = _segment_length(data.shape[-1])
    starts = _segment_starts(max(data.shape[-1], nper), nper, 256)
    have = _segments_band_power(_segments(data, starts, nper), sample_rate, edges)
    return _match_gains(have, target, strength, max_boost_db, max_cut_db)


def band_frames(mono: np.ndarray, sample_rate: float, edges: np.ndarray, hop: int,
                frames: np.ndarray | None = None,
                gain: Callable[[int, int], np.ndarray | float | None] | None = None) -> np.ndarray:
    """Power per band and frame ``(bands, frames)`` of a signal's mono sum (Hann window of 2
    hops rounded up to a power of two, frames centred on multiples of ``hop``, zeros outside
    the signal, as ``librosa.stft`` frames it).

    ``frames`` picks frame indices (default: all of them, ``1 + n // hop``); only those are
    computed. ``gain(start, stop)`` gives a gain (a curve or a constant) the signal is
    multiplied by over samples ``[start, stop)`` first.
    """

    audio = np.asarray(mono, dtype=np.float32)
    n = audio.shape[-1]
    n_fft = int(2 ** np.ceil(np.log2(2 * hop)))
    half = n_fft // 2
    frames = np.arange(1 + n // hop) if frames is None else np.asarray(frames, dtype=np.int64)
    window = get_window("hann", n_fft).astype(np.float32)
    pieces = []
    for run in np.split(frames, np.flatnonzero(np.diff(frames) != 1) + 1):  # consecutive frames
        if run.size == 0:
            continue
        lo, hi = int(run[0]) * hop - half, int(run[-1]) * hop + half
        seg = np.zeros(hi - lo, dtype=np.float32)
        a, b = max(lo, 0), min(hi, n)
        if b > a:
            piece = audio[..., a:b]
            piece = piece.mean(axis=0) if piece.ndim == 2 else piece
            g = gain(a, b) if gain is not None else None
            seg[a - lo:b - lo] = piece * g if g is not None else piece
        pieces.append(sliding_window_view(seg, n_fft)[::hop][: run.size])
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    frames_all = np.concatenate(pieces) if pieces else np.zeros((0, n_fft), np.float32)
    out = np.zeros((edges.size - 1, frames_all.shape[0]))
    for i in range(0, frames_all.shape[0], 512):  # a few MB of spectrum at a time
        spec = np.abs(scipy.fft.rfft(frames_all[i:i + 512] * window, axis=1)) ** 2  # float32
        out[:, i:i + 512] = fold_bands(spec.T, freqs, edges)
    return out


def k_weights(sample_rate: float, centers_hz: np.ndarray) -> np.ndarray:
    """Power weight of each band in ITU-R BS.1770 loudness (its K-weighting filter)."""

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


def core_cells(core: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The core's band-frames with energy, as :func:`masking_cost` reads them: flat indices
    into ``core`` (C order, the order of ``core[core > 0]``) and their powers. Computed once
    for a search that scores many mixes against one core."""
    index = np.flatnonzero(core > 0)
    return index, core.reshape(-1)[index]


def masking_cost(mix: np.ndarray, core: np.ndarray, spread: np.ndarray, weights: np.ndarray, *,
                 fps: float = 50.0, smr_db: float = 21.0, match: float = 0.0,
                 cells: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Loudness cost (dB, up to a constant) of masking half the core's energy with ``mix``.

    ``mix`` and ``core`` are ``(bands, frames)`` powers at ``fps`` frames per second. With
    ``match`` > 0 the mix's long-term spectrum is first moved that far towards the core's, as
    the master EQ will do. The threshold is the mix spread across bands minus ``smr_db``; the
    gain needed is the energy-weighted median over the core's band-frames of core / threshold;
    the loudness is the K-weighted power of the 400 ms blocks that pass BS.1770's relative gate.
    ``cells`` is :func:`core_cells` of ``core`` where the caller has it (the same result).
    """
    index, core_power = core_cells(core) if cells is None else cells
    if not index.size:
        return 0.0
    if match > 0:
        have = mix.sum(axis=1) + 1e-30
        want = core.sum(axis=1) + 1e-30
        ratio_db = np.clip(10.0 * np.log10((want / want.sum()) / (have / have.sum())), -MAX_CUT_DB,
                           MAX_BOOST_DB)
        mix = mix * 10.0 ** (match * ratio_db / 10.0)[:, None]
    thr = (spread @ mix) * 10.0 ** (-smr_db / 10.0)
    need = 10.0 * np.log10(core_power / np.maximum(thr.reshape(-1).take(index), 1e-30))
    gain = weighted_median(need, core_power)
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


def balance_frames(frames: int, fps: float = 50.0, max_frames: int = 3000) -> np.ndarray:
    """The frames :func:`auto_balance` evaluates: all of them, or for long pieces whole 400 ms
    blocks spread evenly, ``max_frames`` at most."""
    if frames <= max_frames:
        return np.arange(frames)
    block = max(1, int(round(0.4 * fps)))
    starts = np.linspace(0, frames - block, max(1, max_frames // block)).astype(int)
    return (starts[:, None] + np.arange(block)[None, :]).ravel()


def auto_balance(tracks: list[np.ndarray], core: np.ndarray, centers_hz: np.ndarray, sample_rate: float,
                 *, low_db: float = -12.0, high_db: float | np.ndarray = 6.0, step_db: float = 3.0,
                 sweeps: int = 3, max_frames: int = 3000, fps: float = 50.0,
                 match: float = 0.0, tonal: np.ndarray | None = None,
                 min_tonal_share: float | None = None) -> np.ndarray:
    """Track gains (dB) that minimize :func:`masking_cost` of the sum of the tracks: a mixing
    engineer balancing the band so it covers the noise's core with the least loudness
    (coordinate descent on a grid of ``step_db`` within ``[low_db, high_db]``; ``high_db`` may
    be one value per track).

    ``tracks`` are ``(bands, frames)`` powers on the same frames as ``core`` (``fps`` per
    second); ``match`` is the strength of the master EQ that will follow. Long pieces are
    evaluated on at most ``max_frames`` frames (whole 400 ms blocks, evenly spread).

    ``tonal`` marks the tracks that play notes (not drums or noise textures): they must keep
    at least ``min_tonal_share`` of the band's K-weighted power, so the result stays music and
    never turns into a noise that imitates the noise (each dB short costs 3 dB); None:
    :data:`MIN_TONAL_SHARE`.
    """
    min_tonal_share = MIN_TONAL_SHARE if min_tonal_share is None else min_tonal_share
    idx = balance_frames(core.shape[1], fps, max_frames)
    stack = np.stack([t[:, idx] for t in tracks])  # (tracks, bands, frames)
    c = core[:, idx]
    spread = spreading_matrix(centers_hz)
    weights = k_weights(sample_rate, centers_hz)
    gains = np.zeros(len(tracks))
    highs = np.broadcast_to(np.asarray(high_db, dtype=np.float64), (len(tracks),))
    grid = np.arange(low_db, highs.max() + 1e-9, step_db)

    power = np.einsum("b,tbf->t", weights, stack)  # K-weighted power of each track
    tonal_mask = np.ones(len(tracks), bool) if tonal is None else np.asarray(tonal, bool)

    flat = stack.reshape(len(tracks), -1)
    cells = core_cells(c)  # the same for every trial mix

    def cost(g):
        lin = 10.0 ** (g / 10.0)
        mix = (lin @ flat).reshape(stack.shape[1:])
        value = masking_cost(mix, c, spread, weights, fps=fps, match=match, cells=cells)
        total = float(lin @ power)
        if total > 0 and tonal_mask.any() and not tonal_mask.all():
            share = float(lin[tonal_mask] @ power[tonal_mask]) / total
            if share < min_tonal_share:
                value += 3.0 * 10.0 * np.log10(min_tonal_share / max(share, 1e-6))
        return value

    with one_blas_thread():  # small products like these thrash a threaded BLAS on a busy machine
        return _descend(cost, gains, grid, highs, sweeps)


def _descend(cost: Callable[[np.ndarray], float], gains: np.ndarray, grid: np.ndarray, highs: np.ndarray,
             sweeps: int) -> np.ndarray:
    """Coordinate descent of ``cost`` over the gains, each on ``grid`` up to its ``highs``: one
    track at a time, each of its grid values tried with the others fixed, a value kept when it
    beats the best so far. The values of one track are scored two at a time where there are two
    cores (they do not depend on each other), then kept or not in grid order, as one by one."""
    workers = min(2, cores())
    best = cost(gains)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(sweeps):
            changed = False
            for t in range(gains.size):
                trials = []
                for value in grid:
                    if value == gains[t] or value > highs[t] + 1e-9:
                        continue
                    trial = gains.copy()
                    trial[t] = value
                    trials.append(trial)
                scores = list(pool.map(cost, trials)) if workers > 1 else [cost(x) for x in trials]
                for trial, score in zip(trials, scores, strict=True):
                    if score < best - 1e-6:
                        best, gains, changed = score, trial, True
            if not changed:
                break
    return gains


# -- the composer's design steps ----------------------------------------------------------------
def track_settings(arrangement: Arrangement, heard: Listening, match: float) -> list[TrackSpec]:
    """One :class:`~.midi.TrackSpec` per arranged track, with its role's mix settings
    (:data:`ROLE_MIX`, the style's drive and compression) and a brightness (CC 74) that follows
    the core's centre: brighter voices for a hiss, darker for a rumble, so the voices themselves
    already carry energy where the core is (``match`` 0 leaves the voices as designed)."""
    style = arrangement.style
    factor = float(np.clip(heard.core.centroid_hz() / 1200.0, 0.5, 6.0)) if match > 0 else 1.0
    brightness = int(np.clip(round(64 + 16 * np.log2(factor)), 0, 127))
    specs = []
    for plan in arrangement.tracks:
        mix = ROLE_MIX.get(plan.role, ROLE_MIX["chords"])
        fx = dict(mix["fx"])
        if plan.role == "chords" and style.drive_db:
            fx["drive_db"] = style.drive_db
        if plan.role in ("drums", "bass", "chords"):
            fx["comp"] = [fx.get("comp", [-18.0, 2.0])[0], style.compress_ratio]
        meta = {"voice": plan.voice, "role": plan.role, "pan": mix["pan"], "fx": fx,
                "send": round(mix["send"] * style.reverb[1] / 0.2, 4)}
        controls = np.zeros((0, 3), dtype=np.int64)
        if plan.voice != "drums" and brightness != 64:
            controls = np.array([[0, 74, brightness]], dtype=np.int64)
        specs.append(TrackSpec(plan.name, plan.channel, plan.program, plan.notes, controls,
                               tuning_cents=arrangement.key.tuning_cents, meta=meta))
    return specs


def expression(arrangement: Arrangement, specs: list[TrackSpec], heard: Listening,
               follow: float, envelope: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """CC 11 events ``(k, 3)`` per track index: dynamics that follow the noise core's envelope
    (or ``envelope``, a power curve at the analysis rate, 100 per second, such as a timeline's
    intensity), as deep as the style, the track's role and ``follow`` (0..1) allow. Peaky
    noises (barks, ticks) get deeper, faster dynamics than steady ones (rain, engines)."""
    env = heard.core.envelope if envelope is None else np.asarray(envelope, dtype=np.float64)
    if env.size == 0 or follow <= 0:
        return {}
    frames = np.arange(0, env.size, 2)  # a control point every 20 ms
    ticks = np.round(seconds_to_ticks(frames / FPS, arrangement.tempo_map, TPB)).astype(np.int64)
    controls: dict[int, np.ndarray] = {}
    curves: dict[float, np.ndarray] = {}
    depths = {i: ROLE_MIX.get(s.meta.get("role", ""), {}).get("follow", 0.0) * follow
              for i, s in enumerate(specs)}
    # crest: how far the core's loud frames stand above its typical frame, in dB
    active = env[env > 0]
    crest = 10.0 * np.log10(np.percentile(active, 95) / max(np.median(active), 1e-30)) \
        if active.size else 0.0
    peaky = float(np.clip((crest - 6.0) / 12.0, 0.0, 1.0))
    release = 0.15 - 0.09 * peaky
    scale = arrangement.style.follow_floor_db * (1.0 + 0.5 * peaky)
    if not any(d > 0 for d in depths.values()):
        return {}
    # one smoothed curve down to the deepest floor; each role then stops at its own floor
    deepest = follow_gain(env, FPS, scale * max(depths.values()), release_s=release,
                          exponent=0.5 + 0.25 * peaky)[frames]
    for i, depth in depths.items():
        if depth <= 0:
            continue
        if depth not in curves:
            curves[depth] = gain_to_cc(np.maximum(deepest, scale * depth), ticks, min_step=2)
        controls[i] = curves[depth]
    return controls


def gain_curve(events: np.ndarray | None, tempo_map: np.ndarray, sample_rate: float,
               n: int, start: int = 0, stop: int | None = None) -> np.ndarray | None:
    """The gain curve a track's CC events ``(k, 3)`` (tick, controller, value) will have when
    rendered, over samples ``[start, stop)`` of an ``n``-sample piece (all of it by default):
    float32, None without events."""
    if events is None or len(events) == 0:
        return None
    secs = ticks_to_seconds(events[:, 0], tempo_map, TPB)
    curve = ControlGain(np.column_stack([secs, events[:, 2]]), sample_rate, n)
    stop = n if stop is None else stop
    if curve.constant is not None:
        return np.full(stop - start, curve.constant, dtype=np.float32)
    return curve.segment(start, stop)


def balance(specs: list[TrackSpec], tempo_map: np.ndarray, controls: dict[int, np.ndarray],
            dry: list[np.ndarray], heard: Listening, sample_rate: float, n: int,
            match: float) -> dict[int, np.ndarray]:
    """``controls`` with a channel volume (CC 7) per track: the balance that covers the noise
    core with the least loudness (:func:`auto_balance`), within -12..+6 dB of the style's mix
    (noise-like textures at most 0 dB: they colour the band, the notes carry it).

    The dry tracks are heard with their expression (``controls``, ticks on ``tempo_map``), on
    the frames the balance evaluates only (:func:`balance_frames`)."""
    if match <= 0 or heard.core.spectrum.sum() <= 0:
        return controls
    edges = band_edges(sample_rate)
    hop = 2 * max(1, int(round(sample_rate / FPS)))  # 20 ms frames
    core = heard.core.bands
    frames = core.shape[1] // 2
    if frames < 2:
        return controls
    core = core[:, : 2 * frames].reshape(core.shape[0], frames, 2).sum(axis=2)
    idx = balance_frames(frames, FPS / 2)

    def heard_track(i: int) -> np.ndarray:
        events = controls.get(i)
        gain = None
        if events is not None and len(events):
            curve = ControlGain(np.column_stack([ticks_to_seconds(events[:, 0], tempo_map, TPB),
                                                 events[:, 2]]), sample_rate, n)
            gain = curve.segment if curve.constant is None else (lambda a, b, g=curve.constant: g)
        return band_frames(dry[i], sample_rate, edges, hop, frames=idx, gain=gain)

    # the tracks' analyses are independent (FFTs release the GIL): two at a time on two cores
    if len(dry) > 1 and cores() > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            tracks = list(pool.map(heard_track, range(len(dry))))
    else:
        tracks = [heard_track(i) for i in range(len(dry))]
    high = np.array([0.0 if s.meta.get("role") == "texture" else 6.0 for s in specs])
    tonal = np.array([s.meta.get("role") not in NOISE_ROLES for s in specs])
    gains = auto_balance(tracks, core[:, idx], np.sqrt(edges[:-1] * edges[1:]), sample_rate,
                         fps=FPS / 2, match=match, high_db=high, tonal=tonal, max_frames=idx.size)
    # which share of each band the notes hold in this balance: the master EQ lifts notes, not drums
    per_band = np.stack([t.sum(axis=1) for t in tracks]) * (10.0 ** (gains / 10.0))[:, None]
    total = per_band.sum(axis=0)
    heard.extras["tonal_share"] = np.where(total > 0, per_band[tonal].sum(axis=0) / np.maximum(total, 1e-30),
                                           1.0)
    out = dict(controls)
    for i, g in enumerate(gains):
        value = int(np.clip(round(127.0 * 10.0 ** ((g + NOMINAL_VOLUME_DB) / 40.0)), 1, 127))
        volume = np.array([[0, 7, value]], dtype=np.int64)
        existing = out.get(i)
        out[i] = volume if existing is None else np.vstack([volume, existing])
    return out


def master_eq(bus: np.ndarray, heard: Listening, sample_rate: float, match: float) -> dict:
    """``{"master_eq": {"edges": ..., "gains_db": ...}}``: band gains that move the mixed bus's
    spectrum towards the noise core's (two passes: the second corrects what the band smoothing
    and the FIR's skirts left over); {} when ``match`` is 0 or the core is empty. Where
    :func:`balance` left ``heard.extras["tonal_share"]`` (the share of each band the tracks
    that play notes hold), a band's lift above the median gain is scaled by that share.

    Both passes measure the same excerpts of the bus (:func:`match_eq`'s segments); the second
    filters only those, with the FIR's context, which is exactly what the whole equalized bus
    holds there."""

    if match <= 0 or heard.core.spectrum.sum() <= 0:
        return {}
    edges = band_edges(sample_rate)
    target = heard.core.spectrum
    nper = _segment_length(bus.shape[-1])
    starts = _segment_starts(max(bus.shape[-1], nper), nper, 256)
    have = _segments_band_power(_segments(bus, starts, nper), sample_rate, edges)
    gains = _match_gains(have, target, match, MAX_BOOST_DB, MAX_CUT_DB)
    taps = band_eq_taps(sample_rate, edges, gains)
    if taps is not None:
        context = (taps.size - 1) // 2
        shaped = oaconvolve(_segments(bus, starts, nper, context), taps[None, :], mode="valid", axes=-1)
        have = _segments_band_power(shaped.astype(np.float32), sample_rate, edges)
    gains = np.clip(gains + _match_gains(have, target, match, MAX_BOOST_DB, MAX_CUT_DB),
                    -MAX_CUT_DB, MAX_BOOST_DB)
    share = heard.extras.get("tonal_share")
    if share is not None and np.size(share) == gains.size:
        # a band the drums and noise textures fill gets only the notes' share of its lift above
        # the EQ's median: the EQ brings the notes to the core, not a noise that imitates it
        mid = float(np.median(gains))
        lift = np.clip(np.asarray(share, dtype=np.float64), 0.0, 1.0)
        gains = np.where(gains > mid, mid + (gains - mid) * lift, gains)
    return {"master_eq": {"edges": [round(float(e), 3) for e in edges],
                          "gains_db": [round(float(g), 3) for g in gains]}}
