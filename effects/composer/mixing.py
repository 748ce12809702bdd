"""Turning a :class:`~.midi.Score` into a stereo mix, and designing that mix for a noise.

Rendering (:func:`render_score`) is a pure function of the score: synthesize every part with
the built-in voices (:mod:`.synth`), apply its CC 7/11 volume and expression curves,
pan it, run its insert effects (pedalboard: high/low-pass, drive, compression, chorus), sum,
add a shared reverb bus, then the master: optional lo-fi wear, the master EQ, a DC-blocking
high-pass, and a loudness/peak normalization with a limiter so the result never clips. Every
setting comes from the score (its blendfx meta events or, for foreign files, defaults), so a
MIDI file written by the composer renders to exactly the audio the composer returned.

How the composer chooses those settings for a noise is :mod:`.mix_design`'s job.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pedalboard as pb
from blendfx.dsp.loudness import LoudnessMeter
from blendfx.threads import cores
from scipy.signal import firwin2, oaconvolve

from .midi import Part, Score
from .synth import note_tail_s, render_drums, render_part, voice_for_program

__all__ = ["render_score", "synthesize", "mix_parts", "mix_bus", "master", "normalize",
           "cc_to_gain", "control_gain", "ControlGain", "band_eq", "band_eq_taps", "brightness_factor",
           "part_voice", "score_length", "DEFAULT_SEND", "CEILING_DB", "TARGET_LUFS"]

#: Reverb send of parts without settings (foreign MIDI files).
DEFAULT_SEND = 0.15
#: Sample peak ceiling of every render (dBFS).
CEILING_DB = -1.0
#: Integrated loudness the master is normalized to when the peak allows (LUFS).
TARGET_LUFS = -18.0
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
    workers = workers or min(4, cores())
    if workers <= 1 or len(score.parts) <= 1:
        return [_synth_one(p, sample_rate, n) for p in score.parts]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: _synth_one(p, sample_rate, n), score.parts))


class ControlGain:
    """The gain of CC 7/11 events ``(k, 2)`` (time s, value) in a ``length``-sample render:
    amplitude ``(value / 127) ** 2`` (the General MIDI -40 log10 law), each step turned into a
    linear ramp of ``ramp_s`` (a moving average over the ramp).

    :attr:`constant` is the gain when it never changes (else None); :meth:`segment` gives any
    stretch of the curve on its own, so the composer can read the gain of a few excerpts
    without building the whole curve.
    """

    def __init__(self, events: np.ndarray, sample_rate: float, length: int, ramp_s: float = 0.005):
        events = np.asarray(events)
        times = np.asarray(events[:, 0], dtype=np.float64)
        gains = (np.asarray(events[:, 1], dtype=np.float64) / 127.0) ** 2
        starts = np.clip(np.round(times * sample_rate).astype(np.int64), 0, length)
        last = np.append(starts[1:] != starts[:-1], True)  # the last event at a sample wins
        starts, gains = starts[last], gains[last]
        self.before = 1.0 if starts[0] > 0 else float(gains[0])
        # the steps: the level before plus the changes; averaging over the ramp makes the change
        # at s reach (t - s + 1) / ramp of its size at sample t (all of it from s + ramp - 1 on)
        changes = np.diff(np.concatenate([[self.before], gains]))
        keep = (changes != 0) & (starts < length)
        self.starts, self.changes = starts[keep], changes[keep]
        self.levels = (self.before + np.cumsum(self.changes)).astype(np.float32)
        self.ramp = max(1, int(ramp_s * sample_rate))
        self.length = int(length)
        self.constant = float(self.before) if self.starts.size == 0 else None
        # ramps closer together than their length overlap; they are added in this many passes
        # of ramps that do not (one for the composer's 20 ms controller grid)
        self._stride = 1
        while self._stride < self.starts.size and np.any(
                self.starts[self._stride:] - self.starts[:-self._stride] < self.ramp - 1):
            self._stride += 1

    def segment(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The curve over samples ``[start, stop)``, float32."""
        stop = self.length if stop is None else int(stop)
        curve = np.empty(max(stop - start, 0), dtype=np.float32)
        if curve.size == 0:
            return curve
        first = int(np.searchsorted(self.starts, start, side="right"))  # steps after `start`
        last = int(np.searchsorted(self.starts, stop, side="left"))
        # the level in force at `start`, then each step's level up to the next step
        bounds = np.concatenate([[start], self.starts[first:last], [stop]]) - start
        values = np.concatenate([[self.levels[first - 1] if first > 0 else self.before],
                                 self.levels[first:last]]).astype(np.float32)
        curve[:] = np.repeat(values, np.diff(bounds))
        lo = int(np.searchsorted(self.starts, start - self.ramp + 1, side="right"))
        if lo < last:
            offsets = np.arange(self.ramp - 1)
            partial = ((offsets + 1.0) / self.ramp - 1.0).astype(np.float32)
            for k in range(self._stride):
                pick = np.arange(lo + k, last, self._stride)
                if pick.size == 0:
                    continue
                pos = (self.starts[pick][:, None] + offsets[None, :]).ravel() - start
                val = (self.changes[pick].astype(np.float32)[:, None] * partial[None, :]).ravel()
                inside = (pos >= 0) & (pos < curve.size)
                curve[pos[inside]] += val[inside]
        return curve


def control_gain(events: np.ndarray | None, sample_rate: float, length: int, start: int = 0,
                 stop: int | None = None, ramp_s: float = 0.005) -> np.ndarray | float | None:
    """Gain of CC 7/11 events ``(k, 2)`` (time s, value) over samples ``[start, stop)`` of a
    ``length``-sample render (see :class:`ControlGain`): a float when it is constant, a
    float32 curve otherwise, None without events."""
    if events is None or len(events) == 0:
        return None
    gain = ControlGain(events, sample_rate, length, ramp_s)
    return gain.constant if gain.constant is not None else gain.segment(start, stop)


def cc_to_gain(events: np.ndarray | None, sample_rate: float, length: int,
               ramp_s: float = 0.005) -> np.ndarray | None:
    """Gain curve ``(length,)`` float32 of CC 7/11 events ``(k, 2)`` (time s, value): amplitude
    ``(value / 127) ** 2`` (the General MIDI -40 log10 law), steps smoothed by a short ramp
    (see :func:`control_gain`)."""
    gain = control_gain(events, sample_rate, length, ramp_s=ramp_s)
    if gain is None or isinstance(gain, np.ndarray):
        return gain
    return np.full(length, gain, dtype=np.float32)


def _apply_channel_gain(part: Part, audio: np.ndarray, sample_rate: float, length: int,
                        in_place: bool) -> np.ndarray:
    """``audio`` times the part's CC 7 (volume) and CC 11 (expression) gain, a stretch at a time
    (no full-length gain curve); ``audio`` itself is scaled when ``in_place``."""
    curves = [ControlGain(part.controls[cc], sample_rate, length) for cc in (7, 11)
              if part.controls.get(cc) is not None and len(part.controls[cc])]
    if not curves:
        return audio
    if not in_place:
        audio = audio.copy()
    constant: np.ndarray | float = 1.0
    for curve in curves:
        if curve.constant is not None:
            constant = constant * np.float32(curve.constant)
    varying = [c for c in curves if c.constant is None]
    if not varying:
        audio *= constant
        return audio
    for a in range(0, length, _GAIN_BLOCK):
        b = min(a + _GAIN_BLOCK, length)
        gain: np.ndarray | float = 1.0
        for curve in curves:  # in controller order, as one whole curve would be multiplied
            gain = gain * (np.float32(curve.constant) if curve.constant is not None else curve.segment(a, b))
        audio[..., a:b] *= gain
    return audio


#: Samples per stretch when a channel's gain is applied.
_GAIN_BLOCK = 1 << 18


def _insert_fx(fx: dict, sample_rate: float):
    """pedalboard chain of a part's insert effects (None when it has none)."""

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


def mix_bus(score: Score, dry: list[np.ndarray | None], sample_rate: float, length: int, *,
            consume: bool = False) -> np.ndarray:
    """The stereo bus before the master: parts with their controllers, pans and inserts, the
    reverb bus and the lo-fi wear. Independent of the master settings, so the composer can
    design the master EQ from it.

    With ``consume``, each dry part is dropped from ``dry`` (set to None) as soon as its channel
    strip has read it, so a long piece never holds every dry part and every strip at once.
    Strips run in parallel; the panning and summing is split between two threads by time,
    every sample summed in part order, so the bus is the same on any number of cores.
    """

    def channel_strip(index: int) -> np.ndarray:
        part = score.parts[index]
        audio = np.asarray(dry[index], dtype=np.float32)
        owned = consume and audio is dry[index]  # ours to change in place
        if consume:
            dry[index] = None
        # (a part not ours gets a new buffer: the dry part stays as it was)
        audio = _apply_channel_gain(part, audio, sample_rate, length, in_place=owned)
        # inserts run on the mono part (none of them widens it), then it is panned
        chain = _insert_fx(part.meta.get("fx", {}), sample_rate)
        if chain is not None:
            audio = chain(audio[None] if audio.ndim == 1 else audio, sample_rate)
            audio = audio[0] if audio.shape[0] == 1 else audio
        return audio

    def placement(part: Part) -> tuple[np.float32, tuple[np.float32, np.float32]]:
        """A part's reverb send and, for a mono part, its pan weights (constant power)."""
        level = np.float32(part.meta.get("send", DEFAULT_SEND))
        pan = part.meta.get("pan")
        if pan is None and part.controls.get(10) is not None and len(part.controls[10]):
            pan = (float(part.controls[10][0, 1]) - 64.0) / 63.0
        theta = (float(np.clip(pan or 0.0, -1.0, 1.0)) + 1.0) * np.pi / 4.0
        return level, (np.float32(np.cos(theta) * np.sqrt(2.0)), np.float32(np.sin(theta) * np.sqrt(2.0)))

    # channel strips in parallel (pedalboard releases the GIL)
    workers = min(4, cores())
    order = range(len(score.parts))
    if workers > 1 and len(score.parts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            strips = list(pool.map(channel_strip, order))
    else:
        strips = [channel_strip(i) for i in order]
    places = [placement(p) for p in score.parts]
    bus = np.zeros((2, length), dtype=np.float32)
    send = np.zeros((2, length), dtype=np.float32)

    def sum_columns(lo: int, hi: int) -> None:
        """Pan and sum the strips into the bus and the send over samples [lo, hi), a cache-sized
        stretch at a time, in part order: every sample gets the same sums however the columns
        are split."""
        scratch = np.empty(_SUM_BLOCK, dtype=np.float32)
        for a in range(lo, hi, _SUM_BLOCK):
            b = min(a + _SUM_BLOCK, hi)
            tmp = scratch[:b - a]
            for audio, (level, weights) in zip(strips, places, strict=True):
                if audio.ndim == 1:
                    for ch, weight in enumerate(weights):
                        panned = np.multiply(audio[a:b], weight, out=tmp)
                        bus[ch, a:b] += panned
                        if level > 0:
                            panned *= level
                            send[ch, a:b] += panned
                else:
                    bus[:, a:b] += audio[:, a:b]
                    if level > 0:
                        for ch in range(2):
                            send[ch, a:b] += np.multiply(audio[ch, a:b], level, out=tmp)

    if workers > 1 and length >= 2 * _SUM_BLOCK:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda span: sum_columns(*span), [(0, length // 2), (length // 2, length)]))
    else:
        sum_columns(0, length)
    strips.clear()  # the strips are summed: their memory goes back
    room, wet = score.meta.get("reverb", (0.5, 1.0))
    if np.any(send):
        def reverb():
            return pb.Pedalboard([pb.HighpassFilter(cutoff_frequency_hz=180.0),
                                  pb.Reverb(room_size=float(room), damping=0.5, wet_level=float(wet),
                                            dry_level=0.0, width=1.0)])

        _add_lti(bus, reverb, send, sample_rate)
    send = None  # type: ignore[assignment]
    if score.meta.get("lofi"):
        def wear(x: np.ndarray) -> np.ndarray:
            chain = pb.Pedalboard([pb.Bitcrush(bit_depth=10.0),
                                   pb.Chorus(rate_hz=0.35, depth=0.08, mix=0.5, centre_delay_ms=4.0,
                                             feedback=0.0)])
            return chain(x[None], sample_rate)[0]

        bus = _per_channel(wear, bus)  # both effects treat the channels independently
    return bus


def _per_channel(process, audio: np.ndarray) -> np.ndarray:
    """``process`` (one channel in, one out) on each row of ``(channels, n)`` audio, two channels
    at a time where there are two cores (the same result either way)."""
    if audio.shape[0] > 1 and audio.shape[1] >= _SUM_BLOCK and cores() > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return np.stack(list(pool.map(process, audio)))
    return np.stack([process(x) for x in audio])


#: Samples per stretch when the strips are panned and summed (fits a core's cache).
_SUM_BLOCK = 1 << 15
#: Pieces of this many seconds or more are processed by a linear effect (the reverb) in two
#: halves at once; each half's tail is followed this far (s) past its end (the reverb has
#: decayed below -100 dB by then) and the second half starts after this much silence (s), in
#: which the effect's parameter smoothing settles.
_SPLIT_MIN_S, _SPLIT_TAIL_S, _SPLIT_PREROLL_S = 30.0, 3.0, 0.5


def _add_lti(out: np.ndarray, make_chain, audio: np.ndarray, sample_rate: float) -> None:
    """``out += chain(audio)`` for a linear, time-invariant pedalboard chain (a reverb), run on
    two halves of a long signal in parallel: the response to the whole is the sum of the
    responses to its halves (the first half's tail running on into the second). The split
    depends only on the length, so a piece renders the same on any machine."""
    n = audio.shape[-1]
    tail, pre = int(_SPLIT_TAIL_S * sample_rate), int(_SPLIT_PREROLL_S * sample_rate)
    if n < _SPLIT_MIN_S * sample_rate:
        out += make_chain()(audio, sample_rate)
        return
    mid = n // 2
    first = np.zeros((audio.shape[0], mid + tail), dtype=np.float32)
    first[:, :mid] = audio[:, :mid]
    second = np.zeros((audio.shape[0], pre + n - mid), dtype=np.float32)
    second[:, pre:] = audio[:, mid:]
    if cores() > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            a, b = pool.map(lambda x: make_chain()(x, sample_rate), (first, second))
    else:  # the same split on one core: the same numbers
        a, b = (make_chain()(x, sample_rate) for x in (first, second))
    out[:, :mid + tail] += a[:, :min(mid + tail, n)]
    out[:, mid:] += b[:, pre:]


def master(bus: np.ndarray, sample_rate: float, meta: dict) -> np.ndarray:
    """Master: the master EQ, a DC-blocking high-pass and normalization (never clipping)."""

    eq = meta.get("master_eq")
    bus = np.asarray(bus, dtype=np.float32)

    def channel(x: np.ndarray) -> np.ndarray:
        """The EQ and the high-pass, both linear and per channel."""
        if eq:
            x = band_eq(x, sample_rate, np.asarray(eq["edges"]), np.asarray(eq["gains_db"]))
        return pb.HighpassFilter(cutoff_frequency_hz=25.0)(x[None], sample_rate)[0]

    bus = _per_channel(channel, bus) if bus.ndim == 2 else channel(bus)
    return normalize(bus, sample_rate, float(meta.get("level_lufs", TARGET_LUFS)))


def normalize(audio: np.ndarray, sample_rate: float, target_lufs: float = TARGET_LUFS,
              ceiling_db: float = CEILING_DB) -> np.ndarray:
    """Gain to ``target_lufs`` (ITU-R BS.1770, measured as pyloudnorm does; RMS for clips under
    0.4 s), then a limiter and a final trim so the sample peak stays at or under ``ceiling_db``
    dBFS."""

    audio = np.asarray(audio, dtype=np.float32)
    peak = _peak(audio)
    if peak < 1e-9:
        return np.zeros_like(audio)
    loudness = _loudness(audio, sample_rate)
    gain = 10.0 ** ((target_lufs - loudness) / 20.0) if np.isfinite(loudness) else 1.0 / peak
    out = audio * np.float32(gain)
    ceiling = 10.0 ** (ceiling_db / 20.0)
    if _peak(out) > ceiling:
        def limit(x: np.ndarray) -> np.ndarray:
            limiter = pb.Limiter(threshold_db=ceiling_db - 2.0, release_ms=120.0)
            return limiter(x[None], sample_rate)[0]

        # pedalboard's limiter treats the channels independently: one thread each, the same
        # samples as one stereo call
        out = _per_channel(limit, out) if out.ndim == 2 else limit(out)
        top = _peak(out)
        if top > ceiling:
            out *= np.float32(ceiling / top)
    return out.astype(np.float32, copy=False)


def _peak(audio: np.ndarray) -> float:
    """Largest magnitude (no temporary copy of the signal)."""
    return max(float(audio.max()), -float(audio.min())) if audio.size else 0.0


def _loudness(audio: np.ndarray, sample_rate: float) -> float:
    if audio.shape[-1] < int(0.4 * sample_rate) + 1:
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        return 20.0 * np.log10(max(rms, 1e-12)) - 0.691

    # pyloudnorm's measurement, fed in blocks: no float64 copies of the whole piece
    meter = LoudnessMeter(sample_rate, audio.shape[0], audio.shape[1])
    for start in range(0, audio.shape[1], _METER_BLOCK):
        meter.add(audio[:, start:start + _METER_BLOCK])
    value = meter.integrated()
    return float(value) if np.isfinite(value) else -np.inf


#: Samples per block fed to the loudness meter.
_METER_BLOCK = 1 << 18


def render_score(score: Score, sample_rate: float, dry: list[np.ndarray] | None = None) -> np.ndarray:
    """Stereo ``(2, N)`` float32 render of a score (N from :func:`score_length`)."""
    n = score_length(score, sample_rate)
    if n <= 0:
        return np.zeros((2, 0), dtype=np.float32)
    if dry is None:
        dry = synthesize(score, sample_rate, n)
    return mix_parts(score, dry, sample_rate, n)


def band_eq_taps(sample_rate: float, edges: np.ndarray, gains_db: np.ndarray) -> np.ndarray | None:
    """The linear-phase FIR (odd length, float32) :func:`band_eq` applies; None when no band
    centre lies under Nyquist."""

    nyq = sample_rate / 2.0
    centers = np.sqrt(edges[:-1] * edges[1:])
    keep = centers < nyq
    if not keep.any():
        return None
    grid = np.concatenate([[0.0], np.geomspace(10.0, nyq, 256)])
    g_db = np.interp(np.log(np.maximum(grid, 1.0)), np.log(centers[keep]), np.asarray(gains_db)[keep])
    taps = int(2 * round(sample_rate * 0.025) + 1)  # 50 ms: fine enough for the lowest bands
    return firwin2(taps, grid / nyq, 10.0 ** (g_db / 20.0), window="hann").astype(np.float32)


def band_eq(audio: np.ndarray, sample_rate: float, edges: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """Apply per-band gains (dB, one per band between ``edges`` in Hz) with a linear-phase FIR
    (delay compensated); gains are interpolated on a log-frequency axis between band centres."""

    h = band_eq_taps(sample_rate, edges, gains_db)
    if h is None:
        return audio
    data = np.asarray(audio, dtype=np.float32)
    delay = (h.size - 1) // 2
    out = oaconvolve(data, h[None, :] if data.ndim == 2 else h, mode="full", axes=-1)
    return out[..., delay:delay + data.shape[-1]].astype(np.float32)
