"""A tiny AudioLDM 2 pipeline built from configs (no hub, no download).

The same components as ``cvssp/audioldm2-music`` (diffusers' own fast tests build them the
same way): a CLAP text model, a T5 encoder, a GPT2Model language model, the projection model,
an AudioLDM2UNet2DConditionModel, a 1-channel AutoencoderKL and a SpeechT5 HiFi-GAN vocoder at
16 kHz, all a few layers of a few channels. Tokenizers are character-level, built here with
``tokenizers`` (diffusers' tests fetch theirs from the hub). The vocoder upsamples 80x, so a
second of audio is 200 mel frames and the test runs in a second or two. Saved with
``save_pretrained`` so tests load it through blendfx's real loading code. Random weights: the
"music" is noise, the plumbing is real.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789,.!-' "


def _tokenizers():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import RobertaTokenizerFast, T5TokenizerFast

    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {s: i for i, s in enumerate(special)}
    for c in _CHARS:
        vocab[c] = len(vocab)
    bpe = Tokenizer(models.BPE(vocab, [], unk_token="<unk>"))
    roberta = RobertaTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>", model_max_length=77)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -3.0) for c in _CHARS[:-1]]
    unigram = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    unigram.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always",
                                                     split=True)
    t5 = T5TokenizerFast(tokenizer_object=unigram, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                         model_max_length=77, extra_ids=0)
    return roberta, t5


def build_tiny_audioldm2(seed: int = 0):
    """The tiny pipeline in memory (an ``AudioLDM2Pipeline``)."""
    import torch
    from diffusers import (
        AudioLDM2Pipeline,
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
        AutoencoderKL,
        DDIMScheduler,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        GPT2Config,
        GPT2Model,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        T5Config,
        T5EncoderModel,
    )

    torch.manual_seed(seed)
    unet = AudioLDM2UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=([None, 16, 32], [None, 16, 32]), norm_num_groups=4, attention_head_dim=2)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=1, out_channels=1,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=4)
    text_config = ClapTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=16, intermediate_size=37,
                                 layer_norm_eps=1e-05, num_attention_heads=2, num_hidden_layers=2,
                                 pad_token_id=1, vocab_size=100, projection_dim=16)
    audio_config = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=37,
                                   layer_norm_eps=1e-05, depths=[2, 2], num_attention_heads=[2, 2],
                                   num_hidden_layers=2, hidden_size=192, projection_dim=16, patch_size=2,
                                   patch_stride=2, patch_embed_input_channels=4)
    text_encoder = ClapModel(ClapConfig(text_config=text_config.to_dict(),
                                        audio_config=audio_config.to_dict(), projection_dim=16))
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=100, d_model=32, d_ff=37, d_kv=8, num_heads=2,
                                             num_layers=2))
    language_model = GPT2Model(GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=100, n_ctx=99,
                                          n_positions=99, bos_token_id=0, eos_token_id=2))
    language_model.config.max_new_tokens = 8
    projection_model = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32,
                                                langauge_model_dim=16)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[8, 10],
        upsample_kernel_sizes=[16, 20], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        normalize_before=False))
    tokenizer, tokenizer_2 = _tokenizers()
    return AudioLDM2Pipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                             projection_model=projection_model, language_model=language_model,
                             tokenizer=tokenizer, tokenizer_2=tokenizer_2,
                             feature_extractor=ClapFeatureExtractor(), unet=unet, scheduler=scheduler,
                             vocoder=vocoder)


def save_tiny_audioldm2(folder: Path) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it to ``folder / "audioldm2"``."""
    out = Path(folder) / "audioldm2"
    build_tiny_audioldm2().save_pretrained(out)
    return out


@lru_cache(maxsize=1)
def tiny_audioldm2_folder() -> str:
    """The tiny pipeline, saved once per test session (removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="blendfx-tiny-audioldm2-"))
    atexit.register(shutil.rmtree, root, True)
    return str(save_tiny_audioldm2(root))
