"""Scoring a video: music written to picture, blended with the video's own sound, muxed back.

:func:`score_video` runs, in order:

1. :func:`blendfx.effects.video.analyze_video`: cuts, dissolves, motion, brightness, colour and
   the soundtrack (bad input raises :class:`~blendfx.effects.video.VideoError` before anything
   is written);
2. :func:`timeline_from_video`: a :class:`~blendfx.effects.composer.Timeline` whose tempo map
   puts every cut (and the middle of every dissolve) on a bar line (the tempo of each stretch
   between cuts is adjusted, the picture is not), in 4/4, the prompt's meter or one the
   picture chooses, sections at those bar lines, an intensity curve from the motion, a mode
   from the brightness when the prompt has no mood, and a register offset from the brightness;
3. the :class:`~blendfx.effects.Composer` writes and renders the music on that timeline; a
   diffusion generator (``generator="riffusion"`` or ``"audioldm2"``) then restyles it or
   writes the music from a prompt per shot, joined at the cuts (:func:`follow_picture`, which
   keys a session's tracks to a video track the same way);
4. :class:`~blendfx.effects.Blend` blends the music into the video's own soundtrack (the music
   alone when the video is silent), loudness-normalised to -16 LUFS under -1 dBTP;
5. :func:`blendfx.effects.video.mux_soundtrack` writes the video with the mix as its
   soundtrack, the picture's packets copied;
6. ``report.json`` and ``report.png``.

Everything is written into a staging folder beside the output folder and moved in at the end,
so a failed run leaves the output folder as it was.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import mido
import numpy as np
from blendfx.audio_io import write_audio
from blendfx.effect import EFFECT_REGISTRY, Effect
from blendfx.effects.amplifier import LoudnessNormalize
from blendfx.effects.blend import Blend, MusicTrack
from blendfx.effects.composer import Composer, Timeline, fit_tempo
from blendfx.effects.composer.midi import ticks_to_seconds
from blendfx.effects.composer.styles import style_from_prompt
from blendfx.effects.composer.timeline import METERS, meter_from_prompt
from blendfx.effects.video import Shot, VideoFeatures, analyze_video, mux_soundtrack
from blendfx.effects.video.mux import AUDIO_CODECS
from blendfx.errors import ParameterError
from blendfx.files import atomic_path
from PIL import Image, ImageDraw, ImageFont
from scipy.signal import resample_poly

__all__ = ["score_video", "timeline_from_video", "intensity_curve", "midi_bar_times", "shot_prompts",
           "apply_timeline", "follow_picture", "picture_prompts", "timeline_spec", "composer_tempo_range",
           "composer_meter",
           "MOTION_SCALE", "MIX_LUFS", "GENERATORS", "generator_of"]

#: Motion (mean absolute luma change per frame, 0..1) at which the intensity reaches 1 - 1/e.
MOTION_SCALE = 0.015
#: Loudness of OUT/mix.wav (LUFS), under a -1 dBTP ceiling.
MIX_LUFS = -16.0
#: Loudness of restyled music (LUFS; the Composer's own level).
MUSIC_LUFS = -18.0
#: Sample rate of the music and the mix (Hz).
SAMPLE_RATE = 44100
#: A soundtrack quieter than this peak (dBFS) counts as silent.
SILENT_DBFS = -80.0
#: What makes the music: the Composer alone, the Composer restyled by a Riffusion model
#: (MaskedImg2Img), or text-to-music by an AudioLDM 2 model (TextToMusic).
GENERATORS = ("composer", "riffusion", "audioldm2")


def generator_of(generator: str | None, model: str | None) -> str:
    """The generator a score uses: ``generator`` when given (one of :data:`GENERATORS`); else
    "composer" without a model, "audioldm2" for a folder whose ``model_index.json`` names an
    ``AudioLDM2Pipeline``, and "riffusion" for any other model.

    Raises
    ------
    ParameterError
        An unknown generator, or a model with ``generator="composer"``.
    """
    if generator is not None:
        if generator not in GENERATORS:
            raise ParameterError(f"generator = {generator!r} is not one of {', '.join(GENERATORS)}")
        if generator == "composer" and model:
            raise ParameterError(f"model = {model!r} needs generator 'riffusion' or 'audioldm2', "
                                 f"not 'composer'")
        return generator
    if not model:
        return "composer"
    index = Path(model).expanduser() / "model_index.json"
    try:
        name = json.loads(index.read_text()).get("_class_name") if index.is_file() else None
    except (OSError, ValueError, AttributeError):
        name = None
    return "audioldm2" if name == "AudioLDM2Pipeline" else "riffusion"


def intensity_curve(features: VideoFeatures, fps: float = 10.0,
                    smooth_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The picture's intensity (0..1) at ``fps`` points per second: ``1 - exp(-m / s)`` of
    the motion ``m`` smoothed over ``smooth_s`` seconds, ``s`` = :data:`MOTION_SCALE`.

    Returns
    -------
    (times_s, intensity) : (np.ndarray, np.ndarray)
    """
    t, m = features.curve("motion", fps)
    k = max(1, int(round(smooth_s * fps)))
    if k > 1 and m.size > k:
        m = np.convolve(np.pad(m, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k,
                        mode="valid")
    return t, 1.0 - np.exp(-m / MOTION_SCALE)


def timeline_from_video(features: VideoFeatures, duration_s: float | None = None, *,
                        tempo_range: tuple[float, float] = (70.0, 140.0), bpm: float | None = None,
                        offset_s: float = 0.0, meter: str = "4/4",
                        picture_s: tuple[float, float] | None = None,
                        ) -> tuple[Timeline, list[float], list[float]]:
    """A Composer timeline for a picture (see the module docstring, step 2).

    Parameters
    ----------
    features : VideoFeatures
    duration_s : float, optional
        Length of the music (default: the picture's); a soundtrack may run longer.
    tempo_range : (low, high)
        BPM range for the overall tempo (the style's); the picture's mean intensity picks the
        preferred tempo within it.
    bpm : float, optional
        Keep the overall tempo near this instead.
    offset_s : float
        Where the picture's 0 s falls on the music's time line (a session track's offset minus
        its source offset); cuts outside the music are left out.
    meter : str
        '4/4', '3/4', '6/8', '2/4', or 'auto': the picture chooses between 4/4 and 3/4, the
        one on whose bars more cuts land (fewer missed), on a tie the one whose stretches keep
        nearer one tempo (3/4 only when its spread of tempi is under 0.7 of 4/4's).
    picture_s : (start_s, end_s), optional
        Where the picture shows on the music's time line (a session's video item, trimmed):
        transitions outside it are left out. Default: everywhere.

    Returns
    -------
    timeline : Timeline
    kept, missed : list of float
        Hit points (s) on bar lines, and those dropped because their shot is shorter than a
        bar at 1.35 times the overall tempo.
    """
    duration = float(duration_s or features.duration_s)
    t, inten = intensity_curve(features)
    t = t + offset_s
    inside = (t >= 0.0) & (t < duration)
    if inside.any():
        t, inten = np.concatenate([[0.0], t[inside]]), np.concatenate([[inten[inside][0]], inten[inside]])
    shown = picture_s or (-math.inf, math.inf)
    hits = [tr.time_s + offset_s for tr in features.transitions
            if shown[0] < tr.time_s + offset_s < shown[1]]
    lo, hi = tempo_range
    prefer = lo + (hi - lo) * float(np.clip(inten.mean(), 0.0, 1.0)) if inten.size else None
    if meter != "auto" and meter not in METERS:
        raise ParameterError(f"meter = {meter!r} is not 'auto' or one of {', '.join(METERS)}")
    fits = {m: fit_tempo(duration, hits, bpm=bpm, tempo_range=tempo_range, prefer=prefer,
                         beats_per_bar=METERS[m])
            for m in (("4/4", "3/4") if meter == "auto" else (meter,))}
    if meter == "auto":
        four, three = fits["4/4"], fits["3/4"]
        better = len(three[2]) < len(four[2]) or (
            len(three[2]) == len(four[2]) and _spread(three[0], duration) < 0.7 * _spread(four[0], duration))
        meter = "3/4" if better else "4/4"
    tempo, kept, missed = fits[meter]
    cut_times = [tr.time_s + offset_s for tr in features.transitions
                 if tr.kind == "cut" and tr.time_s + offset_s in kept]
    brightness = float(np.mean(features.brightness))
    mode = "major" if brightness > 0.55 else "minor" if brightness < 0.35 else None
    register = float(np.clip((brightness - 0.5) * 12.0, -6.0, 6.0))
    step = max(1, t.size // 600)
    points = [(float(a), float(v)) for a, v in zip(t[::step], inten[::step], strict=True)]
    return (Timeline(duration_s=duration, tempo=tempo, sections=list(kept), intensity=points,
                     hits=cut_times, mode=mode, register=register, meter=meter), kept, missed)


def _spread(tempo: list[tuple[float, float]], duration: float) -> float:
    """How far a tempo map's stretches stray from one tempo: the length-weighted standard
    deviation of log tempo."""
    starts = np.array([a for a, _ in tempo] + [duration])
    lengths = np.maximum(np.diff(starts), 0.0)
    logs = np.log([b for _, b in tempo])
    if lengths.sum() <= 0:
        return 0.0
    mean = float(np.sum(lengths * logs) / lengths.sum())
    return float(np.sqrt(np.sum(lengths * (logs - mean) ** 2) / lengths.sum()))


def shot_words(shot: Shot) -> list[str]:
    """Words for a shot's look and pace: dark/bright, muted/colorful, warm/cool (the hue of a
    coloured shot: YUV hue angle 90-190 degrees is red to yellow, 220-360 green to blue), and
    calm/moving/energetic (the intensity of its mean motion)."""
    words = []
    if shot.brightness < 0.3:
        words.append("dark")
    elif shot.brightness > 0.6:
        words.append("bright")
    if shot.saturation < 0.08:
        words.append("muted")
    else:
        if shot.saturation > 0.3:
            words.append("colorful")
        if 90.0 <= shot.hue_deg <= 190.0:
            words.append("warm")
        elif shot.hue_deg >= 220.0:
            words.append("cool")
    pace = 1.0 - math.exp(-shot.motion / MOTION_SCALE)
    words.append("calm" if pace < 0.25 else "energetic" if pace > 0.7 else "moving")
    return words


def shot_prompts(features: VideoFeatures, prompt: str = "") -> list[tuple[float, float, str]]:
    """A text prompt per shot for text-conditioned generators: the user's ``prompt`` followed
    by the shot's words (:func:`shot_words`), e.g. ``'ambient piano, dark, cool, calm'``.

    Returns
    -------
    list of (start_s, end_s, text)
    """
    out = []
    for shot in features.shots:
        words = ", ".join(shot_words(shot))
        out.append((shot.start_s, shot.end_s, f"{prompt.strip()}, {words}" if prompt.strip() else words))
    return out


def apply_timeline(chain: Any, timeline: Timeline) -> int:
    """Give ``timeline`` to every Composer in a chain: Composers anywhere in it (generators of
    effects included), a Blend without a generator gets a Composer with its prompt and seed,
    and so does a Riffusion generator in Composer-guided mode (``start="guide"``) without a
    ``guide``. Returns how many Composers follow it now."""
    count = 0
    for proc in _walk(chain):
        if isinstance(proc, Composer) and proc.timeline is not timeline:
            proc.timeline = timeline
            count += 1
        elif isinstance(proc, Blend) and proc.generator is None:
            proc.generator = Composer(prompt=proc.prompt, seed=proc.seed, progress=proc.progress,
                                      timeline=timeline)
            count += 1
        elif _takes_shots(proc) and getattr(proc, "start", None) == "guide" \
                and "guide" in proc.params() and proc.guide is None:
            proc.guide = Composer(prompt=proc.prompt, seed=proc.seed, progress=proc.progress,
                                  timeline=timeline)
            count += 1
    return count


def _takes_shots(proc: Any) -> bool:
    """Whether ``proc`` is a generator that takes a prompt per shot and joins at cuts: an
    effect with a ``prompt`` parameter and ``prompts`` and ``cuts`` properties (the Riffusion
    generators, :class:`~blendfx.effects.TextToMusic`)."""
    cls = type(proc)
    return isinstance(proc, Effect) and "prompt" in proc.params() \
        and isinstance(getattr(cls, "prompts", None), property) \
        and isinstance(getattr(cls, "cuts", None), property)


def picture_prompts(features: VideoFeatures, prompt: str, timeline: Timeline, *, offset_s: float = 0.0,
                    tempo: bool = False, picture_s: tuple[float, float] | None = None,
                    ) -> list[tuple[float, float, str]]:
    """:func:`shot_prompts` on the music's clock: each shot moved by ``offset_s`` (where the
    picture's 0 s falls in the music), cut to ``[0, timeline.duration_s)`` and to
    ``picture_s`` (where the picture shows, default everywhere; shots outside are left out);
    with ``tempo``, each text ends with the tempo (BPM) of the timeline at the shot's middle
    (``'lofi, dark, calm, 96 bpm'``), for generators that take the tempo from the text alone.

    Returns
    -------
    list of (start_s, end_s, text)
    """
    lo, hi = picture_s or (0.0, timeline.duration_s)
    lo, hi = max(0.0, lo), min(timeline.duration_s, hi)
    out = []
    for a, b, text in shot_prompts(features, prompt):
        a, b = max(lo, a + offset_s), min(hi, b + offset_s)
        if b - a <= 1e-9:
            continue
        out.append((a, b, f"{text}, {_local_bpm(timeline, 0.5 * (a + b)):.0f} bpm" if tempo else text))
    return out


def follow_picture(chain: Any, features: VideoFeatures, timeline: Timeline, cuts: list[float], *,
                   offset_s: float = 0.0, picture_s: tuple[float, float] | None = None) -> dict[str, Any]:
    """Key every music maker in a chain to a picture; ``blendfx score`` and a session's tracks
    keyed by a video track both go through here.

    Composers follow ``timeline`` (:func:`apply_timeline`). Generators that take a prompt per
    shot (the Riffusion generators, ``TextToMusic``: :func:`_takes_shots`) get one from their
    own ``prompt`` and each shot's look (:func:`picture_prompts`; ``TextToMusic``, whose
    music keeps no tempo map, with the tempo of the shot's stretch, its class's
    ``prompt_tempo``) and join their windows or parts at ``cuts``.

    Parameters
    ----------
    chain : Effect or Chain
        Changed in place.
    features : VideoFeatures
        The picture.
    timeline : Timeline
        The music's timeline (:func:`timeline_from_video` with the same ``offset_s``).
    cuts : list of float
        Where the generators join (s, on the music's clock): the hit points on bar lines.
    offset_s : float
        Where the picture's 0 s falls on the music's clock.
    picture_s : (start_s, end_s), optional
        Where the picture shows on the music's clock (default: everywhere).

    Returns
    -------
    dict
        ``{"composers": n, "generators": [{"effect", "cuts", "prompts"}, ...]}`` (plain data,
        for reports and cache keys).
    """
    composers = apply_timeline(chain, timeline)
    generators = []
    for proc in _walk(chain):
        if not _takes_shots(proc):
            continue
        spans = picture_prompts(features, proc.prompt, timeline, offset_s=offset_s, picture_s=picture_s,
                                tempo=bool(getattr(proc, "prompt_tempo", False)))
        proc.prompts = spans or None
        proc.cuts = [c for c in cuts if 0.0 <= c <= timeline.duration_s]
        generators.append({"effect": type(proc).__name__, "cuts": [round(c, 6) for c in proc.cuts],
                           "prompts": [[round(a, 6), round(b, 6), text] for a, b, text in spans]})
    return {"composers": composers, "generators": generators}


def timeline_spec(timeline: Timeline) -> dict[str, Any]:
    """The timeline as plain data (for cache keys and reports)."""
    return {"duration_s": timeline.duration_s, "tempo": [list(x) for x in timeline.tempo],
            "sections": list(timeline.sections), "hits": list(timeline.hits),
            "intensity": [list(x) for x in timeline.intensity], "mode": timeline.mode,
            "register": timeline.register, "meter": timeline.meter}


def _music_prompt(chain: Any) -> str | None:
    """The prompt of the first music maker in a chain: a Composer, a Blend, or a generator
    that takes a prompt per shot (None when there is none)."""
    for proc in _walk(chain):
        if isinstance(proc, Composer | Blend) or _takes_shots(proc):
            return proc.prompt
    return None


def composer_tempo_range(chain: Any) -> tuple[tuple[float, float], float | None]:
    """The style tempo range (BPM) and prompt tempo of the first music maker's prompt in a
    chain (a Composer, a Blend, a Riffusion generator or TextToMusic: :func:`_music_prompt`),
    as ``blendfx score`` takes them from ``--prompt``; pop's when there is none."""
    understood = style_from_prompt(_music_prompt(chain) or "")
    return understood.style.tempo, understood.bpm


def composer_meter(chain: Any) -> str:
    """The meter the first music maker's prompt in a chain names (:func:`_music_prompt`,
    :func:`~blendfx.effects.composer.timeline.meter_from_prompt`), else 4/4."""
    return meter_from_prompt(_music_prompt(chain) or "") or "4/4"


def _walk(proc: Any):
    """Every processor inside ``proc`` (Chain/Mix children and effect-valued parameters), the
    Blend being walked before the generator it holds."""
    yield proc
    if isinstance(proc, Effect):
        for value in proc.param_values().values():
            if isinstance(value, Effect):
                yield from _walk(value)
        for child in getattr(proc, "plugins", []):
            yield from _walk(child)


def midi_bar_times(path_or_midi: Any, until_s: float) -> np.ndarray:
    """Bar lines (s) of a MIDI file (its tempo map and time signatures) up to ``until_s``."""
    mid = path_or_midi if isinstance(path_or_midi, mido.MidiFile) else mido.MidiFile(path_or_midi)
    tpb = mid.ticks_per_beat
    tempo: list[tuple[int, int]] = []
    sigs: list[tuple[int, int, int]] = []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempo.append((tick, msg.tempo))
            elif msg.type == "time_signature":
                sigs.append((tick, msg.numerator, msg.denominator))
    tm = np.array(sorted(tempo) or [(0, 500000)], dtype=np.int64)
    sigs = sorted(sigs) or [(0, 4, 4)]
    bars = []
    for i, (start, num, den) in enumerate(sigs):
        end = sigs[i + 1][0] if i + 1 < len(sigs) else None
        length = num * tpb * 4 // den
        tick = start
        while end is None or tick < end:
            s = float(ticks_to_seconds(np.array([tick]), tm, tpb)[0])
            if s > until_s + 1e-9:
                break
            bars.append(s)
            tick += length
    return np.asarray(bars)


def _local_bpm(timeline: Timeline, t: float) -> float:
    """The tempo (BPM) in force at ``t`` seconds."""
    return next(bpm for start, bpm in reversed(timeline.tempo) if start <= t + 1e-9)


def _soundtrack(features: VideoFeatures) -> np.ndarray | None:
    """The soundtrack at :data:`SAMPLE_RATE`, stereo, or None when absent or silent."""
    if features.audio is None or not features.audio.size:
        return None
    audio = features.audio
    peak = float(np.abs(audio).max())
    if peak <= 10 ** (SILENT_DBFS / 20):
        return None
    sr = int(round(features.sample_rate))
    if sr != SAMPLE_RATE:
        g = math.gcd(sr, SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, sr // g, axis=1)
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    return np.ascontiguousarray(audio, dtype=np.float32)


def score_video(video: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                prompt: str = "cinematic ambient", seed: int = 0, bpm: float | None = None,
                container: str | None = None, progress: bool = False, model: str | None = None,
                device: str | None = None, diffusion: dict[str, Any] | None = None,
                generator: str | None = None, meter: str | None = None) -> dict[str, Any]:
    """Score a video (see the module docstring) into ``out_dir``.

    Parameters
    ----------
    video : str or os.PathLike
        Any video FFmpeg decodes.
    out_dir : str or os.PathLike
        Output folder (created): ``music.wav``, ``music.mid``, ``mix.wav``,
        ``scored.<ext>``, ``report.json``, ``report.png``.
    prompt : str
        The Composer's prompt (genre, mood, instruments, '90 bpm').
    seed : int
        Makes the music deterministic with the prompt.
    bpm : float, optional
        Keep the overall tempo near this (a tempo in the prompt does the same).
    container : str, optional
        Extension of the scored video ('.mp4', '.mkv', '.webm', '.mov'); default: the source's
        when it is one of those, else '.mkv'.
    progress : bool
        The Composer's progress bar.
    model : str, optional
        The diffusion model (local diffusers folder or cached hub id) of ``generator``.
    device : str, optional
        Torch device of the diffusion model ('cpu', 'cuda', ...).
    diffusion : dict, optional
        More settings of the diffusion effect (steps, guidance, strength, ...).
    meter : str, optional
        '4/4', '3/4', '6/8', '2/4' or 'auto' (the picture chooses, see
        :func:`timeline_from_video`); default: the one the prompt names ('waltz', 'in 6/8':
        :func:`~blendfx.effects.composer.timeline.meter_from_prompt`), else 4/4.
    generator : {"composer", "riffusion", "audioldm2"}, optional
        What makes the music (default: :func:`generator_of`). "riffusion": the Composer's
        music restyled by :class:`~blendfx.effects.MaskedImg2Img` with a prompt per shot
        (:func:`shot_prompts`), its windows joined at the cuts, keeping the music's strongest
        parts (its beats and chords, so the cuts stay on its bar lines). "audioldm2":
        :class:`~blendfx.effects.TextToMusic` on a prompt per shot (with the shot's tempo in
        BPM), one part per shot joined at the cuts. ``music.mid`` is the Composer's score
        either way.

    Returns
    -------
    dict
        The report (also written as ``report.json``).

    Raises
    ------
    VideoError
        The video cannot be read (nothing is written).
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    kind = generator_of(generator, model)
    meter = meter or meter_from_prompt(prompt) or "4/4"
    if meter != "auto" and meter not in METERS:
        raise ParameterError(f"meter = {meter!r} is not 'auto' or one of {', '.join(METERS)}")
    video = os.fspath(video)
    out = Path(out_dir)
    effect = None
    if kind != "composer":  # the model first: a missing one fails before any work
        params = {"model": model or "", "prompt": prompt, "seed": seed, "progress": progress,
                  **({"device": device} if device else {}), **(diffusion or {})}
        effect = EFFECT_REGISTRY["MaskedImg2Img" if kind == "riffusion" else "TextToMusic"](**params)
        effect.load()
    features = analyze_video(video)
    timings["analysis_s"] = time.perf_counter() - started
    ext = (container or os.path.splitext(video)[1]).lower()
    if not ext.startswith("."):
        ext = "." + ext
    if ext not in AUDIO_CODECS or (ext == ".webm" and features.codec not in ("vp8", "vp9", "av1")):
        ext = ".mkv"
    track = _soundtrack(features)
    audio_s = features.audio.shape[1] / features.sample_rate if features.audio is not None else 0.0
    duration = max(features.duration_s, audio_s)
    n = int(round(duration * SAMPLE_RATE))
    understood = style_from_prompt(prompt)
    timeline, kept, missed = timeline_from_video(features, duration, tempo_range=understood.style.tempo,
                                                 bpm=bpm or understood.bpm, meter=meter)
    noise = np.zeros((2, n), dtype=np.float32)
    if track is not None:
        noise[:, : min(n, track.shape[1])] = track[:, :n]
    t0 = time.perf_counter()
    composer = Composer(prompt=prompt, seed=seed, progress=progress, timeline=timeline)
    music = composer.process(noise, SAMPLE_RATE)
    timings["compose_s"] = time.perf_counter() - t0
    label = "Composer"
    if effect is not None:
        t0 = time.perf_counter()
        follow_picture(effect, features, timeline, kept)  # as a session's keyed tracks
        if kind == "riffusion":
            music = effect(music, SAMPLE_RATE)
            label = f"MaskedImg2Img({model or 'default'}) over the Composer"
        else:
            music = effect(noise, SAMPLE_RATE)
            label = f"TextToMusic({model or 'default'})"
        music = LoudnessNormalize(target_lufs=MUSIC_LUFS, ceiling_dbtp=-1.0)(music, SAMPLE_RATE)
        timings["diffusion_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if track is not None:
        blend = Blend(generator=MusicTrack.from_array(music, SAMPLE_RATE, align="start"),
                      amp_mode="frame", min_gain_db=-6.0, progress=False, report=False)
        mix = blend(noise, SAMPLE_RATE)
    else:
        mix = music
    mix = LoudnessNormalize(target_lufs=MIX_LUFS, ceiling_dbtp=-1.0)(mix, SAMPLE_RATE)
    timings["blend_s"] = time.perf_counter() - t0

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        composer.export_midi(staging / "music.mid")
        write_audio(staging / "music.wav", music, SAMPLE_RATE)
        write_audio(staging / "mix.wav", mix, SAMPLE_RATE)
        t0 = time.perf_counter()
        mux_soundtrack(video, mix, SAMPLE_RATE, staging / f"scored{ext}")
        timings["mux_s"] = time.perf_counter() - t0
        bars = midi_bar_times(staging / "music.mid", duration)
        timings["total_s"] = time.perf_counter() - started
        report = _report(video, features, timeline, kept, missed, composer, bars, duration,
                         prompt, seed, f"scored{ext}", timings)
        report["music"]["generator"] = label
        with atomic_path(staging / "report.json") as tmp:
            tmp.write_text(json.dumps(report, indent=1))
        write_report_png(staging / "report.png", features, timeline, composer, bars, duration)
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("scored.*"):
            old.unlink()
        for item in staging.iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _report(video, f: VideoFeatures, timeline: Timeline, kept, missed, composer: Composer,
            bars: np.ndarray, duration: float, prompt: str, seed: int, scored: str,
            timings: dict[str, float]) -> dict[str, Any]:
    arrangement = composer.last_arrangement
    grid_bar_s = timeline.bar_times()
    hit_to_bar_ms = [round(1000.0 * float(np.min(np.abs(bars - h))), 3) for h in kept] if bars.size else []
    return {
        "video": {"path": os.fspath(video), "duration_s": round(f.duration_s, 4), "width": f.width,
                  "height": f.height, "fps": round(f.fps, 4), "codec": f.codec,
                  "variable_frame_rate": f.variable_frame_rate, "frames": f.frame_count,
                  "soundtrack": f.audio is not None, "notes": f.notes},
        "transitions": [{"kind": t.kind, "time_s": round(t.time_s, 4), "start_s": round(t.start_s, 4),
                         "end_s": round(t.end_s, 4), "strength": round(t.strength, 4)}
                        for t in f.transitions],
        "shots": [{"start_s": round(s.start_s, 4), "end_s": round(s.end_s, 4),
                   "motion": round(s.motion, 5), "brightness": round(s.brightness, 4),
                   "saturation": round(s.saturation, 4), "hue_deg": round(s.hue_deg, 1)}
                  for s in f.shots],
        "shot_prompts": [{"start_s": round(a, 4), "end_s": round(b, 4), "prompt": text}
                         for a, b, text in shot_prompts(f, prompt)],
        "music": {"prompt": prompt, "seed": seed, "style": arrangement.style.name,
                  "key": arrangement.key.name, "duration_s": round(duration, 4),
                  "meter": timeline.meter,
                  "tempo": [[round(a, 4), round(b, 3)] for a, b in timeline.tempo],
                  "bars": len(grid_bar_s) - 1,
                  "sections": [{"name": s.name, "bar": s.start_bar, "bars": s.bars,
                                "energy": round(s.energy, 3)} for s in arrangement.sections],
                  "hit_points_on_bar_lines_s": [round(h, 4) for h in kept],
                  "hit_points_missed_s": [round(h, 4) for h in missed],
                  "hit_to_bar_line_ms": hit_to_bar_ms},
        "files": {"music": "music.wav", "midi": "music.mid", "mix": "mix.wav", "video": scored,
                  "figure": "report.png"},
        "mix_lufs": MIX_LUFS,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


# -- the figure ----------------------------------------------------------------------------------
_W, _LEFT, _RIGHT = 990, 64, 14
_CUT = (214, 39, 40)
_BAR = (150, 150, 150)


def write_report_png(path: Path, f: VideoFeatures, timeline: Timeline, composer: Composer,
                     bars: np.ndarray, duration: float) -> None:
    """report.png: a strip of frames (1 per second), the motion and cut score with the cuts,
    the music's bar lines, sections and intensity on the same time axis (990 px wide)."""
    strip_h, panel_h, top = 80, 150, 30
    height = top + strip_h + 2 * (panel_h + 28) + 40
    img = Image.new("RGB", (_W, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=11)
    x0, x1 = _LEFT, _W - _RIGHT
    seconds = max(duration, 1e-6)

    def x_of(t: float) -> float:
        return x0 + t / seconds * (x1 - x0)

    name = os.path.basename(f.path)
    draw.text((_W / 2, 6), f"{name}: {len(f.cuts)} cuts, {len(timeline.tempo)} tempi in {timeline.meter}, "
              f"{composer.last_arrangement.key.name}", fill="black", font=ImageFont.load_default(size=13),
              anchor="mt")
    # the strip: each key frame fills its second, scaled to the strip's height
    ys = top
    for i, t in enumerate(f.keyframe_times):
        a = x_of(float(t))
        b = x_of(float(f.keyframe_times[i + 1]) if i + 1 < len(f.keyframe_times) else f.duration_s)
        w = max(1, int(round(b - a)))
        tile = Image.fromarray(f.keyframes[i]).resize((w, strip_h))
        img.paste(tile, (int(round(a)), ys))
    for c in f.cuts:
        draw.line((x_of(c), ys, x_of(c), ys + strip_h), fill=_CUT, width=2)
    draw.rectangle((x0, ys, x1, ys + strip_h), outline="black")
    # picture panel: motion (normalised) and cut score, cuts and dissolves
    ys = top + strip_h + 28
    box = (x0, ys, x1, ys + panel_h)
    draw.text((x0, ys - 4), "picture: motion (blue), cut score (grey), cuts (red), dissolves/fades "
              "(orange)", fill="black", font=font, anchor="lb")
    for tr in f.transitions:
        if tr.kind != "cut":
            draw.rectangle((x_of(tr.start_s), ys, max(x_of(tr.end_s), x_of(tr.start_s) + 1), ys + panel_h),
                           fill=(255, 224, 190))
    _curve(draw, box, f.times, f.cut_score, 1.0, seconds, (170, 170, 170))
    mmax = max(float(f.motion.max()), 1e-6)
    _curve(draw, box, f.times, f.motion, mmax, seconds, (31, 119, 180))
    for c in f.cuts:
        draw.line((x_of(c), ys, x_of(c), ys + panel_h), fill=_CUT, width=1)
    draw.rectangle(box, outline="black")
    # music panel: bar lines, sections, intensity
    ys = ys + panel_h + 28
    box = (x0, ys, x1, ys + panel_h)
    draw.text((x0, ys - 4), "music: bar lines (grey), sections, intensity (green), cuts (red)",
              fill="black", font=font, anchor="lb")
    for b in bars:
        draw.line((x_of(b), ys, x_of(b), ys + panel_h), fill=_BAR)
    bar_s = timeline.bar_times()
    for sec in composer.last_arrangement.sections:
        if sec.start_bar < bar_s.size:
            draw.text((x_of(float(bar_s[sec.start_bar])) + 3, ys + 3), sec.name, fill="black", font=font)
    pts = np.array(timeline.intensity) if timeline.intensity else np.zeros((0, 2))
    if pts.size:
        _curve(draw, box, pts[:, 0], pts[:, 1], 1.0, seconds, (44, 160, 44))
    for c in f.cuts:
        draw.line((x_of(c), ys + panel_h - 12, x_of(c), ys + panel_h), fill=_CUT, width=2)
    draw.rectangle(box, outline="black")
    # time axis
    step = next(s for s in (1, 2, 5, 10, 20, 30, 60, 120, 300, 600) if seconds / s <= 12)
    for t in np.arange(0.0, seconds + 1e-9, step):
        x = x_of(float(t))
        draw.line((x, ys + panel_h, x, ys + panel_h + 3), fill="black")
        draw.text((x, ys + panel_h + 5), f"{t:.0f}", fill="black", font=font, anchor="mt")
    draw.text(((x0 + x1) / 2, height - 6), "time (s)", fill="black", font=font, anchor="mb")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", compress_level=1)


def _curve(draw, box, t: np.ndarray, v: np.ndarray, vmax: float, seconds: float, colour) -> None:
    left, top, right, bottom = box
    if t.size < 2:
        return
    xs = left + np.asarray(t) / seconds * (right - left)
    ys = bottom - np.clip(np.asarray(v) / vmax, 0.0, 1.0) * (bottom - top - 4)
    keep = xs <= right
    if keep.sum() > 1:
        draw.line(list(zip(xs[keep].tolist(), ys[keep].tolist(), strict=True)), fill=colour, width=1)
