"""``TextToMusic``: music from a text prompt (or a prompt per shot) through AudioLDM 2.

A generator effect like the Riffusion ones: ``process(audio, sr)`` returns music as long as
``audio`` (with its channel count), the input itself only setting the length. The model is any
``AudioLDM2Pipeline`` (``cvssp/audioldm2-music`` by default, from the local cache or a folder;
never downloaded unless allowed), loaded through the shared model handle
(:func:`~.models.load_model`).

Long pieces and shots: the piece is cut at the prompt schedule's span boundaries and at
:attr:`~TextToMusic.cuts` (the picture's cuts), and every stretch longer than ``segment_s`` into
equal parts. Each part is generated on its own prompt (as PixMus stacks latents for long audio)
a little longer than it is, and the parts are joined with an equal-power crossfade that starts at
the join: over ``join_s`` (short) at a cut, so the new shot's music starts at the cut, and over
``overlap_s`` (longer) where a long shot is split. Each part is brought to the parts' median
RMS level so one shot does not jump out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from blendfx.buffers import fit_channels, fit_length
from blendfx.effect import Effect
from blendfx.errors import ParameterError
from blendfx.params import BoolParam, FloatParam, IntParam, StrParam
from blendfx.progress import progress_bar
from blendfx.spectral.analysis import resample

from .audio_model import TextToMusicModel
from .latents import window_seeds
from .models import DiffusionModel, load_model
from .shots import ShotSchedule

__all__ = ["TextToMusic", "Part", "plan_parts"]

#: Output peaks are kept at or below this.
_PEAK_CEILING = 0.999


@dataclass(frozen=True)
class Part:
    """One generated stretch: ``[start_s, end_s)`` plus ``fade_s`` after its end (the crossfade
    into the next part, which starts at ``end_s``), on prompt ``text``."""

    start_s: float
    end_s: float
    fade_s: float
    text: str

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s + self.fade_s


def plan_parts(duration_s: float, prompt: str, spans: tuple[tuple[float, float, str], ...] | None = None,
               cuts: list[float] | tuple[float, ...] = (), *, segment_s: float = 10.0, join_s: float = 0.1,
               overlap_s: float = 1.0, min_part_s: float = 0.25) -> list[Part]:
    """The parts a piece of ``duration_s`` seconds is generated in (see the module docstring).

    Joins fall at every cut and every span boundary inside the piece (closer than
    ``min_part_s`` to another join or an end: dropped), and inside stretches longer than
    ``segment_s`` (equal parts). Each part takes the prompt of the span holding its middle
    (``prompt`` where none does).
    """
    if not duration_s > 0:
        return []
    marks = sorted({float(t) for t in cuts} | {float(t) for a, b, _ in (spans or ()) for t in (a, b)})
    hard = [0.0]
    for t in marks:
        if min_part_s <= t <= duration_s - min_part_s and t - hard[-1] >= min_part_s:
            hard.append(t)
    hard.append(float(duration_s))
    bounds: list[tuple[float, bool]] = []  # (time, is a cut)
    for a, b in zip(hard[:-1], hard[1:], strict=True):
        n = max(1, int(np.ceil((b - a) / segment_s - 1e-9)))
        bounds += [(a + (b - a) * k / n, k == 0) for k in range(n)]
    bounds.append((float(duration_s), True))
    parts = []
    for (a, _), (b, cut) in zip(bounds[:-1], bounds[1:], strict=True):
        last = b >= duration_s
        fade = 0.0 if last else (join_s if cut else overlap_s)
        mid = 0.5 * (a + b)
        text = next((t for s0, s1, t in spans or () if s0 <= mid < s1), prompt)
        parts.append(Part(a, b, fade, text))
    return parts


class TextToMusic(ShotSchedule, Effect):
    """Text-to-music through a diffusers ``AudioLDM2Pipeline`` (see the module docstring).

    Parameters
    ----------
    prompt, negative_prompt : str
        Text conditioning (negative: what to avoid, used with guidance > 1).
    steps : int
        Denoising steps (AudioLDM 2's own default is 200; 100 is close in quality).
    guidance : float
        Classifier-free guidance scale (AudioLDM 2: 3.5).
    model : str
        An ``AudioLDM2Pipeline`` folder or hub id; "" = ``$BLENDFX_TEXT_TO_MUSIC_MODEL`` or
        ``cvssp/audioldm2-music`` from the local cache (never downloaded unless
        ``allow_download``).
    segment_s : float
        Longest part generated at once (s); AudioLDM 2 was trained on 10.24 s.
    join_s : float
        Crossfade (s) at a cut: the next shot's music is at full level this long after the cut.
    overlap_s : float
        Crossfade (s) where a stretch longer than ``segment_s`` is split.
    batch_size : int
        Parts per model call.
    progress : bool
        A progress bar over the parts.

    Attributes
    ----------
    prompts : list of (start_s, end_s, text) or None
        A prompt per shot (not a preset parameter).
    cuts : list of float
        Times (s) where the music must join (the picture's cuts; not a preset parameter).

    Examples
    --------
    >>> gen = TextToMusic(prompt="calm piano", model="/models/audioldm2-music")   # doctest: +SKIP
    >>> music = gen(np.zeros((2, 30 * 44100), np.float32), 44100)                 # doctest: +SKIP
    """

    supports_streaming = False
    #: Its music keeps no tempo map, so a prompt per shot names the shot's tempo (BPM) when
    #: the music is keyed to a picture (:func:`blendfx.render.score.follow_picture`).
    prompt_tempo = True

    prompt = StrParam("cinematic ambient music", doc="What the music should be (text prompt).")
    negative_prompt = StrParam("low quality, noise", doc="What to avoid (negative prompt).")
    steps = IntParam(100, min=1, max=1000, unit="steps", doc="Denoising steps.")
    guidance = FloatParam(3.5, min=0.0, max=30.0, doc="Classifier-free guidance scale.")
    model = StrParam("", doc="AudioLDM2Pipeline folder or hub id ('' = $BLENDFX_TEXT_TO_MUSIC_MODEL "
                             "or cvssp/audioldm2-music from the local cache).")
    allow_download = BoolParam(False, doc="Allow fetching the model from the hub (off: offline).")
    segment_s = FloatParam(10.24, min=1.0, max=60.0, unit="s", doc="Longest part generated at once.")
    join_s = FloatParam(0.1, min=0.0, max=2.0, unit="s", doc="Crossfade at a cut.")
    overlap_s = FloatParam(1.0, min=0.0, max=5.0, unit="s", doc="Crossfade where a long stretch is split.")
    batch_size = IntParam(4, min=1, max=64, unit="parts", doc="Parts per model call.")
    progress = BoolParam(True, doc="Show a progress bar.")

    _handle: TextToMusicModel | None = None

    # -- the model ----------------------------------------------------------------------------
    def use_model(self, handle: TextToMusicModel | None) -> None:
        """Run on an already loaded handle (overrides ``model``/``device``)."""
        self._handle = handle

    def load(self) -> TextToMusicModel:
        """The shared model handle (loaded on first use)."""
        handle = self._handle or load_model(self.model, device=self.device, kind="text2music",
                                            allow_download=True if self.allow_download else None)
        if isinstance(handle, DiffusionModel):
            raise ParameterError(f"TextToMusic.model = {handle.name!r} is a Stable Diffusion (Riffusion) "
                                 f"model; TextToMusic needs an AudioLDM2Pipeline (e.g. "
                                 f"cvssp/audioldm2-music); Riffusion models run in MaskedImg2Img "
                                 f"and OutpaintInpaint")
        return handle

    def plan(self, duration_s: float) -> list[Part]:
        """The parts a piece of ``duration_s`` is generated in (:func:`plan_parts`)."""
        return plan_parts(duration_s, self.prompt, self._prompts, self._cuts, segment_s=self.segment_s,
                          join_s=self.join_s, overlap_s=self.overlap_s)

    # -- processing ---------------------------------------------------------------------------
    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        samples = audio.shape[1]
        if samples == 0:
            return np.zeros_like(audio, dtype=np.float32)
        model = self.load()
        sr = model.sample_rate
        parts = self.plan(samples / sample_rate)
        waves: dict[int, np.ndarray] = {}
        order = sorted(range(len(parts)), key=lambda i: parts[i].seconds)
        with progress_bar(total=len(parts), desc="TextToMusic", unit="part",
                          disable=not self.progress) as bar:
            for k in range(0, len(order), self.batch_size):
                chunk = order[k:k + self.batch_size]
                seconds = max(parts[i].seconds for i in chunk)
                out = model.generate([parts[i].text for i in chunk], seconds,
                                     seeds=window_seeds(self.seed, chunk, 3),
                                     negative_prompt=self.negative_prompt, steps=self.steps,
                                     guidance=self.guidance)
                for i, wave in zip(chunk, out, strict=True):
                    waves[i] = wave[:int(round(parts[i].seconds * sr))]
                bar.update(len(chunk))
        music = _join(parts, [waves[i] for i in range(len(parts))], sr, samples / sample_rate)
        music = resample(music, sr, sample_rate)
        music = fit_length(music[None], samples)
        peak = float(np.abs(music).max())
        if peak > _PEAK_CEILING:
            music = music * np.float32(_PEAK_CEILING / peak)
        return fit_channels(music.astype(np.float32), audio.shape[0])


def _join(parts: list[Part], waves: list[np.ndarray], sr: int, duration_s: float) -> np.ndarray:
    """The parts' waveforms at their places, each at the parts' median RMS, crossfaded (equal
    power) over each part's ``fade_s`` after its end."""
    n = int(round(duration_s * sr))
    rms = np.array([float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) if w.size else 0.0
                    for w in waves])
    target = float(np.median(rms[rms > 0])) if (rms > 0).any() else 0.0
    tail = int(round(max((p.fade_s for p in parts), default=0.0) * sr))
    out = np.zeros(n + tail + 1, np.float32)
    fade_in = 0
    for part, wave, level in zip(parts, waves, rms, strict=True):
        w = wave.astype(np.float32) * np.float32(target / level if level > 0 else 0.0)
        a = int(round(part.start_s * sr))
        w = w[:max(0, out.size - a)].copy()
        fade_out = int(round(part.fade_s * sr))
        if fade_in:
            f = min(fade_in, w.size)
            ramp = np.sin(0.5 * np.pi * (np.arange(f) + 0.5) / fade_in).astype(np.float32)
            w[:f] *= ramp
        body = int(round((part.end_s - part.start_s) * sr))
        if fade_out and w.size > body:
            f = min(fade_out, w.size - body)
            w[body:body + f] *= np.cos(0.5 * np.pi * (np.arange(f) + 0.5) / fade_out).astype(np.float32)
            w = w[:body + f]
        out[a:a + w.size] += w
        fade_in = fade_out
    return out[:n]
