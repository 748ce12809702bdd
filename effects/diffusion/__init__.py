"""Riffusion generators through diffusers: one model handle, two pipelines on spectrogram images.

- :mod:`.models`: the model handle (hub id or local folder), loaded once and shared;
- :mod:`.latents`: pixels <-> latents, batched inpaint and differential img2img;
- :mod:`.tiling`: long images as model-sized windows, and back;
- :mod:`.generator`: ``DiffusionGenerator``, the base effect of the two below, and batching;
- :mod:`.outpaint_inpaint`: ``OutpaintInpaint`` (BNMusic stage 1);
- :mod:`.masked_img2img`: ``MaskedImg2Img`` (mask-based differential img2img);
- :mod:`.audio_model` and :mod:`.text_to_music`: ``TextToMusic``, text-to-music through an
  AudioLDM 2 pipeline behind the same model handle.
"""

from .masked_img2img import MaskedImg2Img, hold_map
from .outpaint_inpaint import OutpaintInpaint
from .text_to_music import TextToMusic

__all__ = ["MaskedImg2Img", "OutpaintInpaint", "TextToMusic", "hold_map"]
