"""The text-to-music model handle: a diffusers ``AudioLDM2Pipeline``, loaded once, shared.

Built by :func:`~.models.load_model` when the model's ``model_index.json`` names an
``AudioLDM2Pipeline`` (``cvssp/audioldm2-music``, or any folder written by its
``save_pretrained``). :meth:`TextToMusicModel.generate` runs a batch of prompts to waveforms at
the vocoder's rate (16 kHz for AudioLDM 2), one seed per prompt, so a prompt's result does not
depend on the batch it runs in.

AudioLDM 2's language model is a plain ``GPT2Model`` in the published checkpoints; recent
``transformers`` releases moved generation helpers off such models, which breaks diffusers'
``generate_language_model``. The handle replaces it with :func:`generate_hidden_states`, a
plain cached greedy loop over hidden states that works with any release.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

import numpy as np
import torch
from blendfx.errors import ParameterError

__all__ = ["TextToMusicModel", "generate_hidden_states"]


def generate_hidden_states(language_model: Any, inputs_embeds: torch.Tensor,
                           max_new_tokens: int | None = None, attention_mask: torch.Tensor | None = None,
                           **_: Any) -> torch.Tensor:
    """AudioLDM 2's "generated prompt": ``max_new_tokens`` hidden states the language model
    produces after the projected text embeddings, each fed back as the next input.

    Parameters
    ----------
    language_model : transformers model
        ``GPT2Model`` or ``GPT2LMHeadModel``.
    inputs_embeds : torch.Tensor
        ``(batch, length, hidden)``.
    max_new_tokens : int, optional
        Default: the model config's ``max_new_tokens`` (8 in AudioLDM 2).
    attention_mask : torch.Tensor, optional
        ``(batch, length)``; extended by one per generated state.

    Returns
    -------
    torch.Tensor
        ``(batch, max_new_tokens, hidden)``.
    """
    n = int(max_new_tokens or getattr(language_model.config, "max_new_tokens", 8) or 8)
    # transformers 5 renamed the key/value cache argument and output ``past_key_values`` -> ``cache``
    params = inspect.signature(language_model.forward).parameters
    name = "cache" if "cache" in params else "past_key_values"
    past = None
    step = inputs_embeds
    mask = attention_mask
    for _ in range(n):
        out = language_model(inputs_embeds=step, attention_mask=mask, use_cache=True,
                             output_hidden_states=True, return_dict=True, **{name: past})
        past = getattr(out, name, None)
        step = out.hidden_states[-1][:, -1:, :]
        inputs_embeds = torch.cat([inputs_embeds, step], dim=1)
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
    return inputs_embeds[:, -n:, :]


class TextToMusicModel:
    """A loaded AudioLDM 2 pipeline on one device (see the module docstring).

    Attributes
    ----------
    name : str
        The hub id or absolute folder it was loaded from.
    device : torch.device
    dtype : torch.dtype
    pipe : diffusers.AudioLDM2Pipeline
    lock : threading.RLock
        Held while the model runs.
    """

    def __init__(self, pipe: Any, *, name: str, device, dtype) -> None:
        self.name = name
        self.device = device
        self.dtype = dtype
        self.lock = threading.RLock()
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        language_model = pipe.language_model

        def generate_language_model(inputs_embeds=None, max_new_tokens=8, **kwargs):
            return generate_hidden_states(language_model, inputs_embeds, max_new_tokens, **kwargs)

        pipe.generate_language_model = generate_language_model
        self.pipe = pipe

    @property
    def sample_rate(self) -> int:
        """Rate (Hz) of the waveforms :meth:`generate` returns (the vocoder's)."""
        return int(self.pipe.vocoder.config.sampling_rate)

    @property
    def seconds_per_frame(self) -> float:
        """Seconds per mel frame (the vocoder's hop)."""
        return float(np.prod(self.pipe.vocoder.config.upsample_rates)) / self.sample_rate

    @property
    def min_seconds(self) -> float:
        """Shortest audio (s) the model generates in one piece."""
        return self.seconds_per_frame * self.pipe.vae_scale_factor

    def generate(self, prompts: list[str], seconds: float, *, seeds: list[int], negative_prompt: str = "",
                 steps: int = 100, guidance: float = 3.5) -> np.ndarray:
        """Waveforms for a batch of prompts.

        Parameters
        ----------
        prompts : list of str
            One text per waveform.
        seconds : float
            Length of each (s); rounded up to :attr:`min_seconds` steps inside the model and
            cut back.
        seeds : list of int
            One seed per prompt (its initial noise).
        negative_prompt : str
            What to avoid ("" for none).
        steps : int
            Denoising steps.
        guidance : float
            Classifier-free guidance scale (<= 1 disables it).

        Returns
        -------
        np.ndarray
            ``(len(prompts), round(seconds * sample_rate))`` float32 at :attr:`sample_rate`.
        """
        if len(seeds) != len(prompts) or not prompts:
            raise ParameterError(f"generate: {len(prompts)} prompts need as many seeds, got {len(seeds)}")
        seconds = max(float(seconds), self.min_seconds)
        gens = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        kwargs: dict[str, Any] = {}
        if negative_prompt and guidance > 1.0:
            kwargs["negative_prompt"] = [negative_prompt] * len(prompts)
        with self.lock, torch.inference_mode():
            out = self.pipe(prompt=list(prompts), audio_length_in_s=seconds, num_inference_steps=int(steps),
                            guidance_scale=float(guidance), generator=gens, num_waveforms_per_prompt=1,
                            output_type="np", **kwargs)
        audio = np.asarray(out.audios, dtype=np.float32).reshape(len(prompts), -1)
        n = int(round(seconds * self.sample_rate))
        if audio.shape[1] < n:
            audio = np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
        return np.ascontiguousarray(audio[:, :n])

    def __repr__(self) -> str:
        return f"TextToMusicModel({self.name!r}, device={self.device}, dtype={self.dtype})"
