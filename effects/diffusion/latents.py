"""Diffusion on spectrogram-image windows: pixels <-> latents, batched inpaint and
differential img2img, seeded per window.

Two ways to keep part of a window while the rest is generated, both in latent space (one latent
cell = 8 x 8 pixels):

- :func:`inpaint_latents`: a binary repaint map through diffusers'
  ``StableDiffusionInpaintPipeline``. With Riffusion's 4-channel UNet the pipeline re-noises the
  kept cells to the current timestep after every step (RePaint-style) and leaves them exactly
  equal to the source latents at the end.
- :func:`differential_img2img_latents`: a soft *hold* map in [0, 1] (differential diffusion):
  a cell with hold ``m`` stays pinned to the source, re-noised to the current timestep, for about
  the first ``m * N`` of the N steps and is free afterwards; ``m = 1`` is pinned throughout. It
  runs ``StableDiffusionImg2ImgPipeline`` with a ``callback_on_step_end``
  (:class:`PinToSource`) that replaces the latents of held cells after each step, using the very
  noise the pipeline drew for its start latents, so held and free cells stay consistent.

Windows get their random numbers from their own seeded generators (:func:`window_seeds`), so a
window's result does not depend on which batch it runs in. Sources are passed to the pipelines
as latents (encoded once, by :meth:`DiffusionModel.encode`): no VAE round trip between passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from blendfx.errors import ParameterError
from diffusers.utils.torch_utils import randn_tensor

from .models import DiffusionModel

__all__ = [
    "window_seeds",
    "pixels_to_tensor",
    "tensor_to_pixels",
    "cell_means",
    "inpaint_latents",
    "differential_img2img_latents",
    "PinToSource",
]


def window_seeds(seed: int, indices: Sequence[int], stage: int) -> list[int]:
    """One 63-bit seed per window from (effect seed, window index, stage), independent of
    batching."""
    return [int(np.random.SeedSequence([int(seed), int(i), int(stage)]).generate_state(2, np.uint64)[0]
                >> np.uint64(1)) for i in indices]


def _generators(seeds: Sequence[int]):
    # CPU generators: the same numbers on every device (diffusers moves them to the device).
    return [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]


def pixels_to_tensor(pixels: np.ndarray):
    """``(B, H, W)`` image values 0..255 -> ``(B, 3, H, W)`` float32 in [-1, 1] (gray as RGB,
    as Riffusion feeds its model)."""

    x = torch.as_tensor(np.asarray(pixels, np.float32)) / 127.5 - 1.0
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def tensor_to_pixels(images) -> np.ndarray:
    """``(B, 3, H, W)`` decoded images in [-1, 1] -> ``(B, H, W)`` float32 values 0..255 (the
    mean of the three channels)."""
    x = images.float().mean(dim=1)
    return ((x + 1.0) * 127.5).clamp(0.0, 255.0).cpu().numpy().astype(np.float32)


def cell_means(mask: np.ndarray, factor: int):
    """Mean of each ``factor x factor`` block of ``(B, H, W)`` maps -> ``(B, 1, H/f, W/f)``."""

    m = torch.as_tensor(np.asarray(mask, np.float32))[:, None]
    return torch.nn.functional.avg_pool2d(m, factor)


def _prompt_batch(model: DiffusionModel, prompt: str | Sequence[str], negative_prompt: str,
                  guidance: float, n: int):
    """Embeddings for ``n`` windows: one prompt for all, or one prompt per window."""
    if isinstance(prompt, str):
        pos, neg = model.encode_prompt(prompt, negative_prompt, guidance)
        return pos.expand(n, -1, -1), (neg.expand(n, -1, -1) if neg is not None else None)
    if len(prompt) != n:
        raise ParameterError(f"{len(prompt)} prompts for {n} windows")
    pairs = [model.encode_prompt(p, negative_prompt, guidance) for p in prompt]
    pos = torch.cat([p for p, _ in pairs])
    neg = torch.cat([q for _, q in pairs]) if pairs[0][1] is not None else None
    return pos, neg


def _check_steps(steps: int, strength: float) -> None:
    if int(steps * strength) < 1:
        raise ParameterError(f"steps = {steps} x strength = {strength} leaves no denoising step; "
                             f"raise steps or strength")


def inpaint_latents(model: DiffusionModel, source, repaint, *, prompt: str | Sequence[str],
                    negative_prompt: str = "",
                    steps: int = 50, guidance: float = 7.0, strength: float = 1.0,
                    scheduler: str = "default", seeds: Sequence[int]):
    """Repaint the cells where ``repaint`` is True; keep the others equal to ``source``.

    Parameters
    ----------
    model : DiffusionModel
    source : torch.Tensor
        ``(B, 4, h, w)`` latents (kept cells, and the start of repainted cells when
        ``strength < 1``).
    repaint : torch.Tensor
        ``(B, 1, h, w)`` bool, True = generate.
    prompt : str or sequence of str
        One prompt for every window, or one per window (a prompt per shot of a video).
    negative_prompt : str
    steps : int
        Scheduler steps for strength 1 (``int(steps * strength)`` run).
    guidance : float
        Classifier-free guidance scale (<= 1 turns it off and halves the cost).
    strength : float
        1: repainted cells start from pure noise; less keeps some of the source there.
    scheduler : str
        A key of :data:`.models.SCHEDULERS`.
    seeds : sequence of int
        One per window (see :func:`window_seeds`).

    Returns
    -------
    torch.Tensor
        ``(B, 4, h, w)`` latents.
    """

    _check_steps(steps, strength)
    n = source.shape[0]
    if len(seeds) != n or repaint.shape[0] != n:
        raise ParameterError(f"{n} sources, {repaint.shape[0]} masks and {len(seeds)} seeds")
    f = model.vae_scale_factor
    mask = repaint.float().repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
    pos, neg = _prompt_batch(model, prompt, negative_prompt, guidance, n)
    source = source.to(model.device, model.dtype)
    with model.lock, torch.inference_mode():
        pipe = model.pipeline("inpaint", scheduler)
        out = pipe(prompt_embeds=pos, negative_prompt_embeds=neg, image=source,
                   masked_image_latents=source, mask_image=mask, height=mask.shape[-2],
                   width=mask.shape[-1], strength=float(strength), num_inference_steps=int(steps),
                   guidance_scale=float(guidance), generator=_generators(seeds), output_type="latent")
    return out.images


class PinToSource:
    """``callback_on_step_end`` for differential diffusion (see module docstring).

    After step ``i`` of ``N`` (the steps the pipeline actually runs), a cell with hold ``m`` is
    replaced by the source latents noised to the next timestep when ``m * N > i + 1`` (or
    ``m >= 1``); after the last step, cells with ``m >= 1`` get the clean source latents.

    Parameters
    ----------
    source : torch.Tensor
        ``(B, 4, h, w)`` source latents.
    noise : torch.Tensor
        The noise the pipeline added to ``source`` for its start latents.
    hold : torch.Tensor
        ``(B, 1, h, w)`` hold fractions in [0, 1].
    """

    tensor_inputs = ["latents"]

    def __init__(self, source, noise, hold):
        self.source = source
        self.noise = noise
        self.hold = hold.to(source.device)

    def __call__(self, pipe, i: int, t, callback_kwargs: dict) -> dict:
        latents = callback_kwargs["latents"]
        timesteps = pipe.scheduler.timesteps[-pipe.num_timesteps:]
        n = len(timesteps)
        pinned = (self.hold * n > i + 1) | (self.hold >= 1.0)
        if i + 1 < n:
            ref = pipe.scheduler.add_noise(self.source, self.noise, timesteps[i + 1:i + 2])
        else:
            ref = self.source
        callback_kwargs["latents"] = torch.where(pinned, ref.to(latents.dtype), latents)
        return callback_kwargs


def differential_img2img_latents(model: DiffusionModel, source, hold, *, prompt: str | Sequence[str],
                                 negative_prompt: str = "", steps: int = 50, guidance: float = 8.0,
                                 strength: float = 0.8, scheduler: str = "default",
                                 seeds: Sequence[int]):
    """Img2img of ``source`` latents with a differential-diffusion hold map.

    ``hold`` is ``(B, 1, h, w)`` in [0, 1]: the fraction of the run each cell stays pinned to the
    source (0 = plain img2img, 1 = kept). Other arguments as :func:`inpaint_latents`; with
    ``strength`` s the run starts at the timestep of s and takes ``int(steps * s)`` steps.
    """

    _check_steps(steps, strength)
    n = source.shape[0]
    if len(seeds) != n or hold.shape[0] != n:
        raise ParameterError(f"{n} sources, {hold.shape[0]} hold maps and {len(seeds)} seeds")
    pos, neg = _prompt_batch(model, prompt, negative_prompt, guidance, n)
    source = source.to(model.device, model.dtype)
    # The pipeline's start noise is the first draw of each window's generator: draw it again.
    noise = randn_tensor(tuple(source.shape), generator=_generators(seeds), device=model.device,
                         dtype=source.dtype)
    pin = PinToSource(source, noise, hold.to(model.device, torch.float32))
    with model.lock, torch.inference_mode():
        pipe = model.pipeline("img2img", scheduler)
        out = pipe(prompt_embeds=pos, negative_prompt_embeds=neg, image=source,
                   strength=float(strength), num_inference_steps=int(steps),
                   guidance_scale=float(guidance), generator=_generators(seeds), output_type="latent",
                   callback_on_step_end=pin, callback_on_step_end_tensor_inputs=["latents"])
    return out.images
