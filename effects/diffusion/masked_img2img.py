"""``MaskedImg2Img``: music from everyday sounds by mask-based (differential) img2img."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from blendfx.errors import ParameterError
from blendfx.params import FloatParam, IntParam
from blendfx.spectral.spectrogram_image import SpectrogramImage
from PIL import Image, ImageEnhance

from .generator import ClipJob, DiffusionGenerator
from .latents import cell_means, differential_img2img_latents, pixels_to_tensor
from .models import DiffusionModel
from .tiling import Window

__all__ = ["MaskedImg2Img", "hold_map"]


def hold_map(pixels: np.ndarray, brightness: float = 0.05, contrast: float = 200.0,
             downshift: int = 150) -> np.ndarray:
    """The mask-based diffusion paper's mask of a spectrogram image, as hold fractions.

    Steps (PIL, as the paper's notebooks): invert the image (loud becomes bright), scale its
    brightness by ``brightness``, stretch its contrast by ``contrast`` around the image's mean
    (PIL ``ImageEnhance.Contrast``), then "downshift": ``x - d if x > d else 0``. The result
    divided by 255 is how long each pixel stays pinned to the source: 0 = free from the first
    step, 1 = kept. With the defaults the louder-than-average pixels are held for
    (255 - 150) / 255 = 41 % of the steps and the rest are free.

    Parameters
    ----------
    pixels : np.ndarray
        ``(rows, columns)`` Riffusion image values 0..255 (0 = loudest).
    brightness : float
        Brightness factor, 0 to 1 (paper: 0.05).
    contrast : float
        Contrast factor, 1 to 1000 (paper: 200).
    downshift : int
        0 to 255 (paper: 150 by default, 40 in its ablation; larger frees more).

    Returns
    -------
    np.ndarray
        ``(rows, columns)`` float32 in [0, 1].
    """

    if not 0 <= downshift <= 255:
        raise ParameterError(f"downshift = {downshift} is out of range [0, 255]")
    pix = np.clip(np.rint(np.asarray(pixels, np.float32)), 0, 255).astype(np.uint8)
    img = Image.fromarray(255 - pix)  # 2-D uint8: an "L" image
    img = ImageEnhance.Brightness(img).enhance(float(brightness))
    img = ImageEnhance.Contrast(img).enhance(float(contrast))
    x = np.asarray(img, dtype=np.float32)
    x = np.where(x > downshift, x - downshift, 0.0)
    return (x / 255.0).astype(np.float32)


class MaskedImg2Img(DiffusionGenerator):
    """Img2img of the noise's spectrogram that keeps its loud structure (mask-based diffusion).

    The mask of the paper ("Mask-Based Diffusion for Music Generation From Everyday Sounds",
    ECAI 2025; :func:`hold_map`) is used as a differential-diffusion map: a pixel with mask
    value ``m`` stays pinned to the (re-noised) source for about the first ``m * N`` of the
    ``N`` denoising steps, then the prompt takes over. Loud regions of the noise keep their
    shape; quiet regions become music. Applied per 8 x 8-pixel latent cell (the cell's mean).

    Each window's mask is computed from that window's image (the paper works on single 5-s
    images); longer inputs run in continuing windows (:mod:`.tiling`). With
    ``start="guide"`` the source is the guide's music (Composer-guided mode) and the music
    keeps the guide's level; otherwise the noise's.

    Parameters
    ----------
    strength : float
        Img2img strength (paper: 0.8).
    brightness, contrast, downshift
        The mask's settings (paper: 0.05, 200, 150).

    Shared parameters (prompt, steps (paper: 50), guidance (paper: 8), model, batch_size,
    start/guide, ...) are described in :class:`.generator.DiffusionGenerator`.

    Examples
    --------
    >>> gen = MaskedImg2Img(prompt="jazz piano", model="/models/riffusion")   # doctest: +SKIP
    >>> music = gen(kettle, 44100)                                           # doctest: +SKIP
    """

    guidance = FloatParam(8.0, min=0.0, max=30.0, doc="Classifier-free guidance scale.")
    strength = FloatParam(0.8, min=0.05, max=1.0, doc="Img2img strength.")
    brightness = FloatParam(0.05, min=0.0, max=1.0, doc="Mask brightness factor.")
    contrast = FloatParam(200.0, min=1.0, max=1000.0, doc="Mask contrast factor (around the mean).")
    downshift = IntParam(150, min=0, max=255, doc="Mask downshift: larger frees more of the image.")

    def _prepare_clip(self, job: ClipJob, audio: np.ndarray, sample_rate: float,
                      noise: SpectrogramImage) -> None:
        if self.start == "guide":
            job.arrays["source"] = job.arrays["guide"]
            job.scale = job.guide_scale
        else:
            job.arrays["source"] = job.arrays["noise"]

    def _generate(self, model: DiffusionModel, chunk: list[tuple[ClipJob, Window]], context_latents,
                  context_cells) -> dict[str, Any]:
        f = model.vae_scale_factor
        pixels = np.stack([job.window("source", win) for job, win in chunk])
        holds = np.stack([hold_map(p, self.brightness, self.contrast, self.downshift) for p in pixels])
        hold = cell_means(holds, f).to(model.device)
        hold = torch.where(context_cells, torch.ones_like(hold), hold)
        source = model.encode(pixels_to_tensor(pixels))
        source = torch.where(context_cells, context_latents, source)
        final = differential_img2img_latents(
            model, source, hold, prompt=self._window_prompts(chunk), negative_prompt=self.negative_prompt,
            steps=self.steps, guidance=self.guidance, strength=self.strength,
            scheduler=self.scheduler, seeds=self._window_seeds(chunk, 1))
        return {"final": final}
