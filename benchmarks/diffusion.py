"""Benchmark: two-pass OutpaintInpaint (BNMusic stage 1) per 5.12 s window, against plain diffusers.

Default (needs CUDA): the full-size Stable Diffusion 1.5 architecture (UNet2DConditionModel,
AutoencoderKL, CLIPTextModel with the SD 1.5 configs below) with random weights -- the same
FLOPs as Riffusion, nothing downloaded -- in fp16. It times, per 5.12 s window and including
spectrogram, mask, both passes, VAE decode and the inverse to audio:

- blendfx's ``OutpaintInpaint`` at batch 1 and at batch 8 (``process_many`` over 8 clips), on a
  :class:`blendfx.effects.diffusion.models.DiffusionModel` with its GPU options (SDPA,
  channels-last; ``--compile`` adds torch.compile);
- the same two passes as two plain ``StableDiffusionInpaintPipeline`` calls per window (fp16,
  default attention, one window at a time, PIL images in and out, diffusers defaults otherwise)
  followed by the same inverse to audio.

``--tiny``: the same measurement on the CPU with the tiny test model (tests/tiny_diffusion.py), a
few steps and a short inverse, so CI can run it; its timings only check the plumbing.

The last line printed is one JSON object: ``seconds_per_window`` (batch 8),
``realtime_factor`` (5.12 s / seconds_per_window), ``plain_diffusers_seconds_per_window``,
``speedup`` (plain / batch 8), the batch-1 figures, and the settings.

    python benchmarks/diffusion.py --tiny
    python benchmarks/diffusion.py                 # on a CUDA machine
    python benchmarks/diffusion.py --compile
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WINDOW_S = 5.12
SR = 44100
N = int(WINDOW_S * SR)

# -- Stable Diffusion 1.5 (= Riffusion) architecture ---------------------------------------------
SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                      "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)
SD15_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512],
    layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=512,
    scaling_factor=0.18215)
SD15_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
    projection_dim=768, bos_token_id=0, eos_token_id=1, pad_token_id=1)
SD15_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)


def build_sd15(device: str, workdir: Path) -> dict:
    """SD 1.5-sized components with random weights, created directly on ``device``."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    sys.path.insert(0, str(ROOT))
    from tests.tiny_diffusion import write_tokenizer_files

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(**SD15_UNET)
        vae = AutoencoderKL(**SD15_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_TEXT))
    with torch.no_grad():
        # random weights: keep the noise prediction O(1) so fp16 latents stay finite over 50 steps
        unet.conv_out.weight.mul_(0.05)
        unet.conv_out.bias.zero_()
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer_files(workdir / "tokenizer"),
                                              model_max_length=77)
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                scheduler=PNDMScheduler(**SD15_SCHEDULER), safety_checker=None,
                feature_extractor=None)


def build_tiny(workdir: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.tiny_diffusion import build_tiny_pipeline

    return build_tiny_pipeline(workdir).components


def noise_clips(count: int) -> list[np.ndarray]:
    """5.12 s real noises (ESC-10 chainsaw, rain, clock tick, ...) from ../shared/data, or
    synthetic noise when the data is absent."""
    import blendfx
    from blendfx.buffers import fit_length

    data = Path(os.environ.get("BLENDFX_SHARED_DATA", ROOT.parent / "shared" / "data"))
    files = sorted((data / "noise" / "esc10").glob("*/*.ogg"))[::5]
    clips = []
    rng = np.random.default_rng(0)
    for i in range(count):
        if files:
            audio, _ = blendfx.read_audio(files[i % len(files)], sample_rate=SR, mono=True)
            clips.append(fit_length(np.reshape(audio, (1, -1)), N)[0])
        else:
            clips.append((0.1 * rng.standard_normal(N)).astype(np.float32))
    return clips


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t, out


def plain_diffusers(components: dict, device, dtype, clips: list[np.ndarray], args) -> float:
    """Seconds per window: two plain StableDiffusionInpaintPipeline calls, then the inverse."""
    import torch
    from blendfx.effects import MaskExtractor
    from blendfx.effects.diffusion.tiling import invert_long
    from blendfx.spectral.mask import enlarge_mask
    from blendfx.spectral.spectrogram import converter, riffusion_image
    from blendfx.spectral.spectrogram_image import SpectrogramImage
    from diffusers import StableDiffusionInpaintPipeline
    from PIL import Image

    pipe = StableDiffusionInpaintPipeline(**components, requires_safety_checker=False)
    pipe = pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    conv = converter(str(device))
    gen = torch.Generator("cpu")

    def one(clip: np.ndarray) -> np.ndarray:
        image = riffusion_image(clip, SR, device=str(device))
        core = MaskExtractor(fraction=0.15).extract(clip, SR).binary()
        grown = enlarge_mask(core, 2)
        outpaint_mask = Image.fromarray(np.where(core, 0, 255).astype(np.uint8))
        inpaint_mask = Image.fromarray(np.where(grown, 255, 0).astype(np.uint8))
        common = dict(prompt=args.prompt, num_inference_steps=args.steps,
                      guidance_scale=args.guidance, height=512, width=512, generator=gen.manual_seed(0))
        mid = pipe(image=image.to_pil(), mask_image=outpaint_mask, **common).images[0]
        music = pipe(image=mid, mask_image=inpaint_mask, **common).images[0]
        pixels = SpectrogramImage.from_pil(music, max_value=image.max_value).pixels
        return invert_long(pixels, image.max_value, conv, n_iter=args.inverse_iters,
                           mel_iters=args.inverse_mel_iters)

    timer = Timer(device)
    one(clips[0])  # warm-up (kernels, allocator)
    seconds, _ = timer(lambda: [one(c) for c in clips[:args.plain_windows]])
    return seconds / args.plain_windows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model on the CPU (CI)")
    parser.add_argument("--device", default=None,
                        help="default: cuda (full) / cpu (--tiny); 'cpu' with the full model "
                             "only checks the code path (very slow)")
    parser.add_argument("--steps", type=int, default=None, help="steps per pass (50; tiny: 2)")
    parser.add_argument("--guidance", type=float, default=7.0)
    parser.add_argument("--batch", type=int, default=None, help="the batched measurement's batch "
                        "(8; tiny: 4)")
    parser.add_argument("--batch1-windows", type=int, default=None, help="windows timed at batch 1")
    parser.add_argument("--plain-windows", type=int, default=None, help="windows timed plainly")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    parser.add_argument("--inverse-iters", type=int, default=None,
                        help="Griffin-Lim iterations (converter default; tiny: 2)")
    parser.add_argument("--inverse-mel-iters", type=int, default=None,
                        help="mel-inversion iterations (converter default; tiny: 2)")
    parser.add_argument("--prompt", default="lofi hip hop beat, mellow piano")
    args = parser.parse_args(argv)

    import torch

    if args.tiny:
        device = torch.device(args.device or "cpu")
        args.steps = args.steps or 2
        args.batch = args.batch or 4
        args.inverse_iters = args.inverse_iters or 2
        args.inverse_mel_iters = args.inverse_mel_iters or 2
        # the tiny model's kernels are too small to split across threads (and CI machines are
        # shared): one thread is several times faster
        torch.set_num_threads(1)
    else:
        device = torch.device(args.device or "cuda")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit(
                "benchmarks/diffusion.py: no CUDA device here. The full-size benchmark times SD 1.5 "
                "on a GPU; run it on a CUDA machine, or run `python benchmarks/diffusion.py --tiny` "
                "for the CPU plumbing check.")
        args.steps = args.steps or 50
        args.batch = args.batch or 8
    args.batch1_windows = args.batch1_windows or (1 if device.type == "cpu" else 4)
    args.plain_windows = args.plain_windows or (1 if device.type == "cpu" else 4)

    import blendfx  # noqa: F401  (registers effects)
    from blendfx.effects import OutpaintInpaint
    from blendfx.effects.diffusion.models import DiffusionModel, GpuOptions

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if args.tiny:
            components, plain_components = build_tiny(Path(tmp)), build_tiny(Path(tmp))
        else:
            components = build_sd15(str(device), Path(tmp))
            plain_components = build_sd15(str(device), Path(tmp))
        build_s = time.perf_counter() - t0
        model = DiffusionModel.from_components(components, device=str(device), dtype=dtype,
                                               options=GpuOptions(compile=args.compile), name="sd15-random")
        clips = noise_clips(max(args.batch, args.batch1_windows, args.plain_windows))

        def effect(batch: int) -> OutpaintInpaint:
            e = OutpaintInpaint(prompt=args.prompt, steps=args.steps, guidance=args.guidance,
                                batch_size=batch, progress=False, inverse_iters=args.inverse_iters,
                                inverse_mel_iters=args.inverse_mel_iters)
            e.use_model(model)
            return e

        timer = Timer(device)
        single, batched = effect(1), effect(args.batch)
        single(clips[0], SR)  # warm-up (and compilation with --compile)
        batched.process_many(clips[:args.batch], SR)
        t1, _ = timer(lambda: [single(c, SR) for c in clips[:args.batch1_windows]])
        per_window_b1 = t1 / args.batch1_windows
        tb, _ = timer(lambda: batched.process_many(clips[:args.batch], SR))
        per_window = tb / args.batch

        from blendfx.effects.diffusion.tiling import invert_long
        from blendfx.spectral.spectrogram import converter, riffusion_image

        image = riffusion_image(clips[0], SR)
        conv = converter(str(device))
        invert_long(image.pixels, image.max_value, conv, n_iter=args.inverse_iters,
                    mel_iters=args.inverse_mel_iters)
        t_inv, _ = timer(lambda: invert_long(image.pixels, image.max_value, conv,
                                             n_iter=args.inverse_iters,
                                             mel_iters=args.inverse_mel_iters))

        plain = plain_diffusers(plain_components, device, dtype, clips, args)

    result = {
        "benchmark": "diffusion",
        "mode": "tiny" if args.tiny else "sd15",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(dtype).replace("torch.", ""),
        "steps_per_pass": args.steps,
        "guidance": args.guidance,
        "batch": args.batch,
        "compile": args.compile,
        "torch_threads": torch.get_num_threads(),
        "window_seconds": WINDOW_S,
        "seconds_per_window": round(per_window, 4),
        "realtime_factor": round(WINDOW_S / per_window, 3),
        "seconds_per_window_batch1": round(per_window_b1, 4),
        "realtime_factor_batch1": round(WINDOW_S / per_window_b1, 3),
        "plain_diffusers_seconds_per_window": round(plain, 4),
        "speedup": round(plain / per_window, 3),
        "speedup_batch1": round(plain / per_window_b1, 3),
        "inverse_seconds_per_window": round(t_inv, 4),
        "inverse_iters": args.inverse_iters,
        "inverse_mel_iters": args.inverse_mel_iters,
        "build_seconds": round(build_s, 2),
    }
    print(f"OutpaintInpaint, {args.steps} steps x 2 passes, {result['device']}:")
    print(f"  batch {args.batch}: {per_window:.3f} s/window ({result['realtime_factor']}x realtime)")
    print(f"  batch 1: {per_window_b1:.3f} s/window ({result['realtime_factor_batch1']}x realtime)")
    print(f"  plain StableDiffusionInpaintPipeline x2 + inverse: {plain:.3f} s/window "
          f"(speedup {result['speedup']}x at batch {args.batch})")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
