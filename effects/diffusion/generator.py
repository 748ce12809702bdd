"""The shared machinery of the diffusion generators (``OutpaintInpaint``, ``MaskedImg2Img``).

A diffusion generator turns a noise into music of the same length through Riffusion's
spectrogram images::

    noise ──► Riffusion image (true max kept) ──► windows (tiling.plan_windows)
          ──► wave 1: anchors, batched ──► wave 2: bridges pinned to the anchors, batched
          ──► VAE decode ──► assemble ──► inverse (tiling.invert_long) ──► music

Subclasses say what a batch of windows becomes (:meth:`_prepare_clip` and
:meth:`_generate`); this base class does the rest: parameters every generator shares, the shared
model handle, the guide (Composer-guided mode), batching, the progress bar, and the return to
audio at the caller's rate, length and channel count.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from blendfx.buffers import check_finite, fit_channels, fit_length, restore_layout, to_channels_first
from blendfx.effect import EFFECT_REGISTRY, Effect, EffectParam, check_sample_rate
from blendfx.errors import ParameterError
from blendfx.params import BoolParam, ChoiceParam, FloatParam, IntParam, StrParam
from blendfx.progress import progress_bar
from blendfx.spectral.analysis import resample
from blendfx.spectral.params import SpectrogramParams
from blendfx.spectral.spectrogram import converter, riffusion_image
from blendfx.spectral.spectrogram_image import SpectrogramImage

from .latents import tensor_to_pixels, window_seeds
from .models import SCHEDULERS, DiffusionModel, load_model
from .shots import ShotSchedule
from .tiling import Window, WindowPlan, assemble, invert_long, pad_columns, plan_windows

__all__ = ["DiffusionGenerator", "ClipJob", "generate_batched"]

#: Output peaks are kept at or below this (the inverse can overshoot a loud noise's level).
_PEAK_CEILING = 0.999
#: Columns (10 ms each) over which the music crossfades into a new stretch after a cut.
JOIN_FADE_COLUMNS = 8


@dataclass
class ClipJob:
    """One clip being generated: its window plan, padded per-column arrays and results.

    Attributes
    ----------
    samples, channels : int
        The caller's length and channel count, restored at the end.
    plan : WindowPlan
    scale : float
        The mel magnitude of pixel 0 for the inverse (the source's true maximum).
    guide_scale : float
        The guide music's maximum (``start="guide"``; 0 when the guide is silent).
    seed : int
        The seed of the effect that owns the clip: its windows' noise comes from
        ``window_seeds(seed, window index, stage)``, whichever batch they run in.
    arrays : dict
        ``(rows, plan.padded)`` arrays by name ("noise", "source", "core", ...).
    latents : dict
        Per output name, per window index, ``(4, h, w)`` latents.
    """

    samples: int
    channels: int
    plan: WindowPlan
    scale: float
    guide_scale: float = 0.0
    seed: int = 0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    latents: dict[str, dict[int, Any]] = field(default_factory=dict)

    def window(self, name: str, win: Window) -> np.ndarray:
        """The ``(rows, win.width)`` slice of array ``name`` under ``win``."""
        return self.arrays[name][:, win.start:win.stop]


class DiffusionGenerator(ShotSchedule, Effect):
    """Base of the Riffusion generators: ``process(noise, sr)`` -> music of the same length.

    Parameters (shared)
    -------------------
    prompt, negative_prompt : str
        Text conditioning.
    steps : int
        Scheduler steps at strength 1.
    guidance : float
        Classifier-free guidance scale (<= 1 disables it).
    scheduler : str
        "default" (the model's) or one of ddim, pndm, dpm++, euler, euler_a, lms, unipc.
    model : str
        Local diffusers folder or hub id; "" = ``$BLENDFX_RIFFUSION_MODEL`` or
        ``riffusion/riffusion-model-v1`` (from the local cache: never downloaded unless
        ``allow_download``).
    batch_size : int
        Windows per model call.
    start : {"noise", "guide"}
        Generate from the noise's image, or from the music of ``guide`` (Composer-guided mode).
    guide : Effect, optional
        A generator effect for ``start="guide"``; None = blendfx's Composer with this prompt
        and seed.
    inverse_iters, inverse_mel_iters : int, optional
        Griffin-Lim and mel-inversion iterations of the inverse (None: the converter's defaults).
    progress : bool
        Show a tqdm progress bar over the windows.
    """

    registered = False
    supports_streaming = False
    #: False: the music keeps its input's beat, so prompts per shot do not name a tempo
    #: (:func:`blendfx.render.score.follow_picture`).
    prompt_tempo = False

    prompt = StrParam("lofi", doc="What the music should be (text prompt).")
    negative_prompt = StrParam("", doc="What to avoid (negative prompt).")
    steps = IntParam(50, min=1, max=500, unit="steps", doc="Denoising steps at strength 1.")
    guidance = FloatParam(7.0, min=0.0, max=30.0, doc="Classifier-free guidance scale.")
    scheduler = ChoiceParam("default", list(SCHEDULERS), doc="Diffusion scheduler.")
    model = StrParam("", doc="Model folder or hub id ('' = $BLENDFX_RIFFUSION_MODEL or "
                             "riffusion/riffusion-model-v1 from the local cache).")
    allow_download = BoolParam(False, doc="Allow fetching the model from the hub (off: offline).")
    batch_size = IntParam(4, min=1, max=64, unit="windows", doc="Windows per model call.")
    start = ChoiceParam("noise", ["noise", "guide"],
                        doc="Start from the noise, or from the guide generator's music.")
    guide = EffectParam(None, doc="Generator for start='guide' (None: the Composer).")
    inverse_iters = IntParam(None, min=1, max=4000, optional=True,
                             doc="Griffin-Lim iterations of the inverse (None: default).")
    inverse_mel_iters = IntParam(None, min=1, max=4000, optional=True,
                                 doc="Mel-inversion iterations of the inverse (None: default).")
    progress = BoolParam(True, doc="Show a progress bar.")

    _handle: DiffusionModel | None = None
    _primed: tuple[np.ndarray, float, np.ndarray] | None = None

    def _window_prompts(self, chunk: list[tuple[ClipJob, Window]]) -> str | list[str]:
        """The prompt (one for all) or prompts (one per window of ``chunk``) to generate with."""
        if not self._prompts:
            return self.prompt
        fps = SpectrogramParams().frames_per_second
        out = []
        for job, win in chunk:
            a, b, _ = job.plan.segment_of(win)
            lo, hi = max(win.start, a), min(win.stop, b)
            out.append(self.prompt_at((0.5 * (lo + hi) if hi > lo else a) / fps))
        return out

    # -- the model ----------------------------------------------------------------------------
    def use_model(self, handle: DiffusionModel | None) -> None:
        """Run on an already built :class:`DiffusionModel` (overrides ``model``/``device``)."""
        self._handle = handle

    def load(self) -> DiffusionModel:
        """The shared model handle this effect runs on (loaded on first use)."""
        if self._handle is not None:
            return self._handle
        handle = load_model(self.model, device=self.device,
                            allow_download=True if self.allow_download else None)
        if not isinstance(handle, DiffusionModel):
            raise ParameterError(f"{type(self).__name__}.model = {handle.name!r} is a text-to-music model "
                                 f"(AudioLDM2Pipeline): it runs in TextToMusic; {type(self).__name__} "
                                 f"needs a Riffusion (Stable Diffusion) model")
        return handle

    @property
    def last_images(self) -> dict[str, SpectrogramImage]:
        """Images of the last processed clip: "source" and "music" (plus effect extras)."""
        return dict(getattr(self, "_last_images", {}))

    # -- processing ---------------------------------------------------------------------------
    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        primed, self._primed = self._primed, None
        if primed is not None and primed[1] == sample_rate and primed[0].shape == audio.shape \
                and np.array_equal(primed[0], audio):
            return primed[2].copy()
        return self._render([audio], sample_rate)[0]

    def prime(self, audio: np.ndarray, sample_rate: float, music: np.ndarray) -> None:
        """Hand over this effect's music for ``audio``, generated elsewhere (by
        :func:`generate_batched`, in a batch with other effects' windows): the next
        ``process`` of exactly this ``(channels, samples)`` audio at this rate returns it
        instead of generating again. Any other next call generates as usual; either way the
        primed result is used at most once."""
        audio, _ = to_channels_first(np.asarray(audio, np.float32), name="audio")
        music, _ = to_channels_first(np.asarray(music, np.float32), name="music")
        self._primed = (audio, float(sample_rate), music)

    def batch_key(self) -> tuple:
        """Effects with equal keys can share model calls (see :func:`generate_batched`): the
        same class and the same settings, except those that are per clip (seed, mask and
        inverse settings live in each clip's own job) or do not change results."""
        per_clip = {"seed", "progress", "batch_size", "inverse_iters", "inverse_mel_iters",
                    "guide", "fraction", "enlarge"}
        values = self.param_values()
        return (type(self), repr(self._prompts), repr(self._cuts)) + tuple(
            (k, repr(v)) for k, v in sorted(values.items()) if k not in per_clip)

    def process_many(self, clips: list[np.ndarray], sample_rate: float) -> list[np.ndarray]:
        """Generate music for several noises at once, batching windows across clips.

        Each result equals ``process(clip, sample_rate)`` (windows are seeded by their position
        in their own clip), returned in each clip's own layout.
        """

        sample_rate = check_sample_rate(sample_rate)
        datas, layouts = [], []
        for i, clip in enumerate(clips):
            data, layout = to_channels_first(clip, name=f"clips[{i}]")
            check_finite(data, name=f"clips[{i}]")
            datas.append(data)
            layouts.append(layout)
        with self._lock:
            self.reset()
            outs = self._render(datas, sample_rate)
        return [restore_layout(o, lay) for o, lay in zip(outs, layouts, strict=True)]

    def _render(self, clips: list[np.ndarray], sample_rate: float) -> list[np.ndarray]:
        model = None
        jobs: list[ClipJob | None] = []
        for audio in clips:
            if audio.shape[1] == 0:
                jobs.append(None)
                continue
            if model is None:
                model = self.load()
            jobs.append(self._make_job(audio, sample_rate, model))
        live = [j for j in jobs if j is not None and j.scale > 0]
        if live:
            self._run_waves(model, live)
        out = []
        for audio, job in zip(clips, jobs, strict=True):
            if job is None or job.scale <= 0:
                out.append(np.zeros_like(audio, dtype=np.float32))
            else:
                out.append(self._to_audio(model, job, sample_rate, last=job is live[-1]))
        return out

    def _make_job(self, audio: np.ndarray, sample_rate: float, model: DiffusionModel) -> ClipJob:
        noise = riffusion_image(audio, sample_rate, device=str(model.device))
        frames = noise.pixels.shape[1]
        if frames == 0 or not (noise.pixels < 255).any():
            # shorter than one 10 ms column, or silent: nothing to blend with, silence out
            return ClipJob(audio.shape[1], audio.shape[0], plan_windows(1), 0.0)
        fps = SpectrogramParams().frames_per_second
        plan = plan_windows(frames, multiple=model.width_multiple,
                            joins=[t * fps for t in self._cuts], join_fade=JOIN_FADE_COLUMNS)
        job = ClipJob(audio.shape[1], audio.shape[0], plan, noise.max_value, seed=self.seed)
        job.arrays["noise"] = pad_columns(noise.pixels.astype(np.float32), plan.padded)
        if self.start == "guide":
            guide = riffusion_image(self._guide_music(audio, sample_rate), sample_rate,
                                    device=str(model.device))
            job.arrays["guide"] = pad_columns(guide.pixels.astype(np.float32), plan.padded)
            job.guide_scale = guide.max_value if (guide.pixels < 255).any() else 0.0
        self._prepare_clip(job, audio, sample_rate, noise)
        return job

    def _guide_music(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        guide = self.guide
        if guide is None:
            composer = EFFECT_REGISTRY.get("Composer")
            if composer is None:
                raise ParameterError(
                    f"{type(self).__name__}.start = 'guide' needs a guide generator: set guide= "
                    f"to a generator effect, or install blendfx's Composer (blendfx.effects.Composer)")
            kwargs = {"prompt": self.prompt, "seed": self.seed}
            if "progress" in composer.params():
                kwargs["progress"] = self.progress
            guide = composer(**kwargs)
        music = np.asarray(guide.process(audio, sample_rate), dtype=np.float32)
        music, _ = to_channels_first(music, name="guide output")
        return fit_length(music, audio.shape[1])

    def _window_seeds(self, chunk: list[tuple[ClipJob, Window]], stage: int) -> list[int]:
        """One seed per window of ``chunk``, from its own clip's seed and index (so a window's
        result does not depend on the batch it runs in)."""
        return [window_seeds(job.seed, [win.index], stage)[0] for job, win in chunk]

    def _run_waves(self, model: DiffusionModel, jobs: list[ClipJob],
                   batch_size: int | None = None) -> None:
        batch_size = batch_size or self.batch_size

        total = sum(len(j.plan.windows) for j in jobs)
        with progress_bar(total=total, desc=type(self).__name__, unit="window",
                  disable=not self.progress) as bar:
            for kind in ("anchor", "bridge"):
                groups: dict[int, list[tuple[ClipJob, Window]]] = {}
                for job in jobs:
                    for win in job.plan.windows:
                        if win.kind == kind:
                            groups.setdefault(win.width, []).append((job, win))
                for items in groups.values():
                    for i in range(0, len(items), batch_size):
                        chunk = items[i:i + batch_size]
                        ctx_lat, ctx_cells = self._context(model, chunk)
                        results = self._generate(model, chunk, ctx_lat, ctx_cells)
                        for name, lat in results.items():
                            for (job, win), one in zip(chunk, lat, strict=True):
                                job.latents.setdefault(name, {})[win.index] = one
                        bar.update(len(chunk))

    def _context(self, model: DiffusionModel, chunk: list[tuple[ClipJob, Window]]):
        """Latents of the anchors' ends under each bridge's context, and where they apply."""

        f = model.vae_scale_factor
        h = chunk[0][0].arrays["noise"].shape[0] // f
        w = chunk[0][1].width // f
        lat = torch.zeros((len(chunk), model.latent_channels, h, w), device=model.device,
                          dtype=model.dtype)
        cells = torch.zeros((len(chunk), 1, h, w), dtype=torch.bool, device=model.device)
        for b, (job, win) in enumerate(chunk):
            if win.kind != "bridge":
                continue
            c = win.context // f
            final = job.latents["final"]
            lat[b, :, :, :c] = final[win.index - 1][:, :, -c:]
            lat[b, :, :, -c:] = final[win.index + 1][:, :, :c]
            cells[b, :, :, :c] = True
            cells[b, :, :, -c:] = True
        return lat, cells

    def _to_audio(self, model: DiffusionModel, job: ClipJob, sample_rate: float,
                  last: bool) -> np.ndarray:
        images = {name: self._decode_assemble(model, job, per_window)
                  for name, per_window in job.latents.items()}
        if last:
            self._finish_images(job, images, model.vae_scale_factor)
            src = "guide" if self.start == "guide" else "noise"
            self._last_images = {
                name: SpectrogramImage(np.clip(np.rint(img), 0, 255).astype(np.uint8), job.scale)
                for name, img in images.items()}
            self._last_images["source"] = SpectrogramImage(
                job.arrays[src][:, :job.plan.frames].astype(np.uint8), job.scale)
            self._last_images["music"] = self._last_images.pop("final")
        music44 = invert_long(images["final"], job.scale, converter(str(model.device)),
                              n_iter=self.inverse_iters, mel_iters=self.inverse_mel_iters,
                              seed=self.seed)
        music = resample(music44, SpectrogramParams.sample_rate, sample_rate)
        music = fit_length(music[None], job.samples)
        peak = float(np.abs(music).max()) if music.size else 0.0
        if peak > _PEAK_CEILING:
            music = music * np.float32(_PEAK_CEILING / peak)
        return fit_channels(music.astype(np.float32), job.channels)

    def _decode_assemble(self, model: DiffusionModel, job: ClipJob, per_window: dict) -> np.ndarray:

        images = []
        wins = list(job.plan.windows)
        for i in range(0, len(wins), self.batch_size):
            group = wins[i:i + self.batch_size]
            # windows of one width decode together; anchors and bridges may differ in width
            by_width: dict[int, list[Window]] = {}
            for w in group:
                by_width.setdefault(w.width, []).append(w)
            decoded = {}
            for same in by_width.values():
                pix = tensor_to_pixels(model.decode(torch.stack([per_window[w.index] for w in same])))
                decoded.update({w.index: p for w, p in zip(same, pix, strict=True)})
            images.extend(decoded[w.index] for w in group)
        return assemble(job.plan, images)

    # -- what subclasses implement ------------------------------------------------------------
    def _prepare_clip(self, job: ClipJob, audio: np.ndarray, sample_rate: float,
                      noise: SpectrogramImage) -> None:
        """Add the arrays :meth:`_generate` needs to ``job.arrays`` (padded to
        ``job.plan.padded`` columns) and set ``job.scale`` if not the noise's maximum."""

    def _finish_images(self, job: ClipJob, images: dict[str, np.ndarray], cell: int) -> None:
        """Adjust the extra (non-"final") assembled images before they go to
        :attr:`last_images` (``cell``: pixels per latent cell)."""

    def _generate(self, model: DiffusionModel, chunk: list[tuple[ClipJob, Window]], context_latents,
                  context_cells) -> dict[str, Any]:
        """Latents for a batch of windows of one width: ``{"final": (B, 4, h, w), ...}``.

        ``context_cells`` ``(B, 1, h, w)`` bool marks latent cells that must end equal to
        ``context_latents`` (a bridge's context; none for anchors). Extra names are decoded
        and assembled into :attr:`last_images` too.
        """
        raise NotImplementedError


def generate_batched(items: list[tuple[DiffusionGenerator, np.ndarray]], sample_rate: float,
                     batch_size: int | None = None) -> list[np.ndarray]:
    """Generate music for several (generator, noise) pairs, batching windows across them.

    Generators with equal :meth:`~DiffusionGenerator.batch_key` on the same model handle form a
    group: every window of every clip in the group goes through the model in chunks of
    ``batch_size`` windows (default: the group's first generator's ``batch_size``), anchors
    first, then bridges. Each window keeps the seed of its own generator and clip, so each
    result equals ``generator.process(noise, sample_rate)`` up to float rounding in batched
    kernels; each generator's ``last_images`` describe its own clip afterwards.

    Parameters
    ----------
    items : list of (DiffusionGenerator, np.ndarray)
        Generators (one item each: a generator may not appear twice) and their noises
        (``(channels, samples)``, any layout ``process`` accepts).
    sample_rate : float
        Hz, shared by every noise.
    batch_size : int, optional
        Windows per model call.

    Returns
    -------
    list of np.ndarray
        The music for each item, in the item's own layout.
    """

    sample_rate = check_sample_rate(sample_rate)
    if len({id(g) for g, _ in items}) != len(items):
        raise ParameterError("generate_batched: each generator may appear once (use "
                             "process_many for several clips of one generator)")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise ParameterError(f"batch_size must be >= 1 windows, got {batch_size!r}")
    datas, layouts = [], []
    for i, (_, clip) in enumerate(items):
        data, layout = to_channels_first(clip, name=f"items[{i}]")
        check_finite(data, name=f"items[{i}]")
        datas.append(data)
        layouts.append(layout)
    outs: list[np.ndarray | None] = [None] * len(items)
    with contextlib.ExitStack() as stack:
        for gen, _ in items:
            stack.enter_context(gen._lock)
            gen.reset()
        groups: dict[tuple, list[int]] = {}
        models: dict[int, DiffusionModel] = {}
        for i, ((gen, _), data) in enumerate(zip(items, datas, strict=True)):
            if data.shape[1] == 0:
                outs[i] = np.zeros_like(data, dtype=np.float32)
                continue
            model = gen.load()
            models[i] = model
            groups.setdefault((id(model), gen.batch_key()), []).append(i)
        for members in groups.values():
            model = models[members[0]]
            jobs = {i: items[i][0]._make_job(datas[i], sample_rate, model) for i in members}
            live = [jobs[i] for i in members if jobs[i].scale > 0]
            if live:
                items[members[0]][0]._run_waves(model, live, batch_size)
            for i in members:
                gen, job = items[i][0], jobs[i]
                outs[i] = (gen._to_audio(model, job, sample_rate, last=True) if job.scale > 0
                           else np.zeros_like(datas[i], dtype=np.float32))
    return [restore_layout(o, lay) for o, lay in zip(outs, layouts, strict=True)]
