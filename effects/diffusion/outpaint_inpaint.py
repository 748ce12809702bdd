"""``OutpaintInpaint``: BNMusic stage 1, noise-aligned music by outpainting then inpainting."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from blendfx.effects.mask_extractor import MaskExtractor
from blendfx.params import BoolParam, FloatParam, IntParam
from blendfx.spectral.mask import enlarge_mask
from blendfx.spectral.spectrogram_image import SpectrogramImage

from .generator import ClipJob, DiffusionGenerator
from .latents import cell_means, inpaint_latents, pixels_to_tensor
from .models import DiffusionModel
from .tiling import Window, pad_columns

__all__ = ["OutpaintInpaint"]


class OutpaintInpaint(DiffusionGenerator):
    """Music aligned to a noise's loudest regions, with Riffusion (BNMusic stage 1).

    1. The noise becomes a Riffusion image; :class:`MaskExtractor` finds its core (the loudest
       ``fraction`` of pixels).
    2. Pass 1 (outpaint): the core is kept and everything around it is generated with the
       prompt, so the music takes the noise's rhythm and spectral shape from the core.
    3. Pass 2 (inpaint): the mask is inverted: the core, enlarged by ``enlarge`` pixels, is
       generated as music and the outpainted music around it is kept.
    4. The image goes back to audio with the noise's true maximum as scale.

    Inputs longer than 5.12 s run in windows that continue each other (see
    :mod:`.tiling`); windows are batched ``batch_size`` at a time. The core is decided
    per 8 x 8-pixel latent cell (a cell is core when at least half its pixels are).

    Parameters
    ----------
    strength_outpaint, strength_inpaint : float
        Strength of pass 1 and pass 2 (1: the repainted region starts from pure noise; less
        keeps some of the noise's own texture there).
    guide_strength : float
        Pass-1 strength when ``start="guide"``: how far from the guide's music (Composer-guided
        mode) the outpainted region may move (Riffusion's img2img default 0.75).
    fraction : float
        Share of pixels in the core, 0.01 to 0.5 (BNMusic: 0.10 to 0.20).
    enlarge : int
        Pixels the core grows by for the inpainting pass (BNMusic: "slightly enlarged").
    keep_intermediate : bool
        Also decode pass 1 into ``last_images["outpainted"]`` (one more VAE decode per window),
        with the kept core shown exactly as the noise's pixels (BNMusic's x_Mid). Pass 2 itself
        continues from pass 1's latents, with no VAE round trip in between.

    Shared parameters (prompt, steps, guidance, model, batch_size, start/guide, ...) are
    described in :class:`.generator.DiffusionGenerator`.

    Examples
    --------
    >>> gen = OutpaintInpaint(prompt="lofi hip hop", model="/models/riffusion")   # doctest: +SKIP
    >>> music = gen(noise, 44100)              # same length as the noise          # doctest: +SKIP
    """

    strength_outpaint = FloatParam(1.0, min=0.05, max=1.0, doc="Pass-1 (outpaint) strength.")
    strength_inpaint = FloatParam(1.0, min=0.05, max=1.0, doc="Pass-2 (inpaint) strength.")
    guide_strength = FloatParam(0.75, min=0.05, max=1.0,
                                doc="Pass-1 strength when starting from the guide's music.")
    fraction = FloatParam(0.15, min=0.01, max=0.5, doc="Share of pixels in the noise's core.")
    enlarge = IntParam(2, min=0, max=32, unit="px", doc="Core growth for the inpainting pass.")
    keep_intermediate = BoolParam(False, doc="Keep the outpainted pass-1 image in last_images.")

    def _prepare_clip(self, job: ClipJob, audio: np.ndarray, sample_rate: float,
                      noise: SpectrogramImage) -> None:
        core = MaskExtractor(fraction=self.fraction).extract(audio, sample_rate).binary()
        core = core[:, :noise.pixels.shape[1]]
        job.arrays["core"] = pad_columns(core.astype(np.float32), job.plan.padded, "constant")
        grown = enlarge_mask(core, self.enlarge).astype(np.float32)
        job.arrays["core_grown"] = pad_columns(grown, job.plan.padded, "constant")

    def _finish_images(self, job: ClipJob, images: dict[str, np.ndarray], cell: int) -> None:
        if "outpainted" in images:
            frames = job.plan.frames
            keep = cell_means(job.arrays["core"][None], cell)[0, 0].numpy() >= 0.5
            keep = np.kron(keep, np.ones((cell, cell), bool))[:, :frames]
            images["outpainted"] = np.where(keep, job.arrays["noise"][:, :frames],
                                            images["outpainted"])

    def _generate(self, model: DiffusionModel, chunk: list[tuple[ClipJob, Window]], context_latents,
                  context_cells) -> dict[str, Any]:
        f = model.vae_scale_factor

        def stack(name: str) -> np.ndarray:
            return np.stack([job.window(name, win) for job, win in chunk])

        def cells(name: str):
            return (cell_means(stack(name), f) >= 0.5).to(model.device)

        keep = cells("core")
        source = model.encode(pixels_to_tensor(stack("noise")))
        strength = self.strength_outpaint
        if self.start == "guide":
            guide = model.encode(pixels_to_tensor(stack("guide")))
            source = torch.where(keep, source, guide)
            strength = self.guide_strength
        source = torch.where(context_cells, context_latents, source)
        common = dict(prompt=self._window_prompts(chunk), negative_prompt=self.negative_prompt,
                      steps=self.steps,
                      guidance=self.guidance, scheduler=self.scheduler)
        repaint = ~keep & ~context_cells
        outpainted = source
        if repaint.any():
            outpainted = inpaint_latents(model, source, repaint, strength=strength,
                                         seeds=self._window_seeds(chunk, 1), **common)
        repaint = cells("core_grown") & ~context_cells
        final = outpainted
        if repaint.any():
            final = inpaint_latents(model, outpainted, repaint, strength=self.strength_inpaint,
                                    seeds=self._window_seeds(chunk, 2), **common)
        out = {"final": final}
        if self.keep_intermediate:
            out["outpainted"] = outpainted
        return out
