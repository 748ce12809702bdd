"""A tiny Riffusion-shaped Stable Diffusion pipeline built from configs (no hub, no download).

Same structure as the real model (DESIGN.md section 6): a 4-channel UNet2DConditionModel, an
AutoencoderKL with 8x downsampling, a CLIPTextModel and a CLIPTokenizer over a vocabulary
written here (model_max_length 77), saved with ``save_pretrained`` so tests load it through
blendfx's real loading code. Random weights: the music is noise, the plumbing is real.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789,.!-'"


def write_tokenizer_files(folder: Path) -> Path:
    """A character-level CLIP BPE vocabulary (vocab.json, merges.txt) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in _CHARS:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")  # characters only: no merges
    return folder


def build_tiny_pipeline(folder: Path, seed: int = 0):
    """Build the tiny pipeline in memory (a ``StableDiffusionPipeline``)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 8),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[4, 4, 4, 4], layers_per_block=1,
        latent_channels=4, norm_num_groups=4, sample_size=512)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=1000, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
        pad_token_id=1))
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer_files(folder / "_tokenizer_src"),
                                              model_max_length=77)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def save_tiny_pipeline(folder: Path) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it to ``folder / "model"``."""
    out = folder / "model"
    build_tiny_pipeline(folder).save_pretrained(out, safe_serialization=True)
    return out


@lru_cache(maxsize=1)
def tiny_model_folder() -> str:
    """The tiny model, saved once per test session (removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="blendfx-tiny-sd-"))
    atexit.register(shutil.rmtree, root, True)
    return str(save_tiny_pipeline(root))


def spy_prompts(monkeypatch) -> list:
    """Record every prompt the Riffusion model handle encodes (the list fills as it runs)."""
    from blendfx.effects.diffusion.models import DiffusionModel

    seen: list = []
    encode = DiffusionModel.encode_prompt

    def spy(self, prompt, negative_prompt="", guidance=7.0):
        seen.append(prompt)
        return encode(self, prompt, negative_prompt, guidance)

    monkeypatch.setattr(DiffusionModel, "encode_prompt", spy)
    return seen
