"""Diffusion generators on a tiny Riffusion-shaped pipeline built by the tests (no hub).

The tiny model has random weights: its "music" is noise, but every piece of plumbing is the real
one: loading through ``load_model`` from a ``save_pretrained`` folder, batched inpaint and
differential img2img, windows and bridges, the inverse to audio.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from blendfx import EFFECT_REGISTRY, Effect, ModelNotFoundError, ParameterError
from blendfx.effects import MaskedImg2Img, MaskExtractor, OutpaintInpaint
from blendfx.effects.diffusion.latents import (
    cell_means,
    differential_img2img_latents,
    inpaint_latents,
    pixels_to_tensor,
    window_seeds,
)
from blendfx.effects.diffusion.masked_img2img import hold_map
from blendfx.effects.diffusion.models import (
    ALLOW_DOWNLOAD_ENV,
    DEFAULT_MODEL_ID,
    MODEL_ENV,
    DiffusionModel,
    downloads_allowed,
    load_model,
    resolve_model_spec,
)
from blendfx.effects.diffusion.tiling import assemble, pad_columns, plan_windows
from blendfx.presets import load_preset, save_preset
from blendfx.spectral.spectrogram import riffusion_image

from .tiny_diffusion import spy_prompts, tiny_model_folder

SR = 44100
#: Few steps, no classifier-free guidance, a short inverse: the tiny model only has to be plumbed.
FAST = dict(steps=2, guidance=1.0, inverse_iters=2, inverse_mel_iters=2, progress=False,
            device="cpu")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tiny model's kernels are too small to share between threads: on a busy 2-core machine
    two OpenMP threads mostly wait for each other (measured 5x slower). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny() -> str:
    return tiny_model_folder()


@pytest.fixture(scope="module")
def model(tiny) -> DiffusionModel:
    return load_model(tiny, device="cpu")


def rhythmic_noise(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """Noise with a 4 Hz pulse and a low rumble: a core worth finding."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    pulse = (np.sin(2 * np.pi * 4 * t) > 0.6).astype(np.float32)
    rumble = np.convolve(rng.standard_normal(n), np.ones(64) / 64, mode="same")
    return (0.05 * rng.standard_normal(n) * (0.2 + pulse) + 0.3 * rumble).astype(np.float32)


# -- the model handle ------------------------------------------------------------------------------
def test_model_loaded_once_and_shared(tiny, model):
    assert load_model(tiny, device="cpu") is model
    inpaint, img2img = model.pipeline("inpaint"), model.pipeline("img2img")
    assert inpaint.unet is img2img.unet is model.components["unet"]
    assert inpaint.vae is model.components["vae"]
    assert model.pipeline("inpaint") is inpaint
    ddim = model.pipeline("inpaint", scheduler="ddim")
    assert type(ddim.scheduler).__name__ == "DDIMScheduler" and ddim.unet is inpaint.unet
    assert model.width_multiple == 16 and model.vae_scale_factor == 8
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    with pytest.raises(ParameterError, match="scheduler"):
        model.pipeline("inpaint", scheduler="nope")


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(ModelNotFoundError) as err:
        load_model("", device="cpu", cache=False)
    msg = str(err.value)
    assert DEFAULT_MODEL_ID in msg and "save_pretrained" in msg and MODEL_ENV in msg
    assert "downloads are off" in msg
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "no-such-folder"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        load_model(str(tmp_path / "empty"), device="cpu")
    effect = OutpaintInpaint(model=str(tmp_path / "no-such-folder"), **FAST)
    with pytest.raises(ModelNotFoundError, match="no-such-folder"):
        effect(rhythmic_noise(0.2), SR)


def test_offline_unless_allowed(monkeypatch, tiny):
    monkeypatch.delenv(ALLOW_DOWNLOAD_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert downloads_allowed() is False and downloads_allowed(True) is True
    monkeypatch.setenv(ALLOW_DOWNLOAD_ENV, "1")
    assert downloads_allowed() is True and downloads_allowed(False) is False
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert downloads_allowed(True) is False
    monkeypatch.setenv(MODEL_ENV, tiny)
    assert resolve_model_spec("") == (tiny, True)
    monkeypatch.delenv(MODEL_ENV)
    assert resolve_model_spec("") == (DEFAULT_MODEL_ID, False)


def test_save_pretrained_round_trip(model, tmp_path):
    dest = model.save_pretrained(tmp_path / "copy")
    assert (dest / "model_index.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left behind
    again = load_model(dest, device="cpu", cache=False)
    assert again is not model
    for key in ("unet", "vae", "text_encoder"):
        a, b = model.components[key].state_dict(), again.components[key].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    src = model.encode(pixels_to_tensor(np.full((1, 512, 64), 200.0)))
    repaint = torch.ones((1, 1, 64, 8), dtype=torch.bool)
    run = dict(prompt="lofi", steps=2, guidance=3.0, seeds=[5])
    torch.testing.assert_close(inpaint_latents(model, src, repaint, **run),
                               inpaint_latents(again, src, repaint, **run))


# -- the engine ------------------------------------------------------------------------------------
def test_pass1_keeps_the_core(model):
    """Outpainting: latents outside the repaint region end exactly equal to the source's; the
    repaint region changes. (Pixels: see test_outpaint_inpaint_end_to_end.)"""
    x = rhythmic_noise(2.56)
    image = riffusion_image(x, SR).pixels.astype(np.float32)
    core = MaskExtractor(fraction=0.15).extract(x, SR).binary()
    keep = cell_means(core[None].astype(np.float32), 8) >= 0.5
    assert 0 < keep.float().mean() < 0.9
    src = model.encode(pixels_to_tensor(image[None]))
    out = inpaint_latents(model, src, ~keep, prompt="lofi", steps=3, guidance=1.0, seeds=[1])
    kept = keep.expand_as(src)
    assert torch.equal(out[kept], src[kept])
    assert (out[~kept] - src[~kept]).abs().mean() > 0.1


def test_differential_hold_map(model):
    """Hold 1 keeps a cell exactly; hold 0 frees it from the first step; hold 0.5 in between."""
    src = model.encode(pixels_to_tensor(np.tile(np.linspace(0, 255, 48, dtype=np.float32),
                                                (1, 512, 1))))
    hold = torch.zeros((1, 1, 64, 6))
    hold[..., :2] = 1.0
    hold[..., 2:4] = 0.5
    out = differential_img2img_latents(model, src, hold, prompt="lofi", steps=8, guidance=1.0,
                                       strength=1.0, seeds=[3])
    change = (out - src).abs().mean(dim=(0, 1, 2))
    assert torch.equal(out[..., :2], src[..., :2])
    assert 0 < change[2:4].mean() < change[4:].mean()


def test_hold_map_follows_the_paper():
    pixels = np.full((16, 16), 250, np.uint8)  # quiet (bright)
    pixels[4:8] = 10  # a loud band (dark)
    hold = hold_map(pixels)
    np.testing.assert_allclose(hold[4:8], (255 - 150) / 255)
    np.testing.assert_array_equal(hold[:4], 0.0)
    np.testing.assert_allclose(hold_map(pixels, downshift=40)[5], (255 - 40) / 255)
    assert not hold_map(pixels, downshift=255).any()
    with pytest.raises(ParameterError, match="downshift"):
        MaskedImg2Img(downshift=300)


def test_window_seeds_do_not_depend_on_batching():
    assert window_seeds(7, [0, 1, 2], 1) == window_seeds(7, [0], 1) + window_seeds(7, [1, 2], 1)
    assert window_seeds(7, [0], 1) != window_seeds(7, [0], 2) != window_seeds(8, [0], 1)


# -- the effects -----------------------------------------------------------------------------------
def test_outpaint_inpaint_end_to_end(tiny):
    x = np.stack([rhythmic_noise(2.3), rhythmic_noise(2.3, seed=1)])
    frames = x.shape[1] // 441
    effect = OutpaintInpaint(model=tiny, keep_intermediate=True, **FAST)
    y = effect(x, SR)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all() and 0 < np.abs(y).max() <= 1.0
    images = effect.last_images
    assert set(images) == {"source", "outpainted", "music"}
    source = riffusion_image(x, SR)
    np.testing.assert_array_equal(images["source"].pixels, source.pixels)
    assert images["music"].shape == (512, frames)
    assert images["music"].max_value == source.max_value  # the noise's true maximum is the scale
    # pass 1 keeps the core's pixels and repaints around it
    core = MaskExtractor(fraction=effect.fraction).extract(x, SR).binary()
    core = pad_columns(core.astype(np.float32), 8 * -(-frames // 8), "constant")
    keep = np.kron(cell_means(core[None], 8)[0, 0].numpy() >= 0.5, np.ones((8, 8), bool))
    keep = keep[:, :frames]
    out1 = images["outpainted"].pixels.astype(np.float32)
    src = source.pixels.astype(np.float32)
    assert keep.any() and np.abs(out1 - src)[keep].max() <= 1.0
    assert np.abs(out1 - src)[~keep].mean() > 10.0
    np.testing.assert_array_equal(effect(x, SR), y)  # same seed, same output
    effect.seed = 1
    assert not np.allclose(effect(x, SR), y)


def test_other_sample_rate_keeps_length(tiny):
    from blendfx.spectral.analysis import resample

    x = rhythmic_noise(1.0, sr=22050)
    y = MaskedImg2Img(model=tiny, **FAST)(x, 22050)
    assert y.shape == x.shape and np.abs(y).max() > 0
    # the effect works at 44.1 kHz (Riffusion's rate): a 22.05 kHz input gives the result of
    # the same input at 44.1 kHz, resampled back (not just the right length)
    y44 = MaskedImg2Img(model=tiny, **FAST)(resample(x, 22050, 44100), 44100)
    back = resample(y44, 44100, 22050)[..., : y.shape[-1]]
    assert np.sqrt(np.mean((back - y) ** 2) / np.mean(y ** 2)) < 1e-4


def _mel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Spectral convergence between the Riffusion mels of two signals (0 = identical)."""
    from blendfx.spectral.spectrogram import riffusion_mel, spectral_convergence

    return spectral_convergence(riffusion_mel(a, SR), riffusion_mel(b, SR))


def test_batch_of_windows_equals_one_by_one(tiny):
    x = rhythmic_noise(5.3)
    plan = plan_windows(530, multiple=16)
    assert len(plan.anchors) == 2 and len(plan.bridges) == 1
    one = OutpaintInpaint(model=tiny, batch_size=1, **FAST)
    batched = OutpaintInpaint(model=tiny, batch_size=4, **FAST)
    a, b = one(x, SR), batched(x, SR)
    # the same images up to float rounding in batched kernels, hence the same audio
    ia, ib = one.last_images["music"].pixels, batched.last_images["music"].pixels
    assert np.abs(ia.astype(int) - ib.astype(int)).max() <= 1
    # phase retrieval amplifies a 1-level pixel difference in the waveform, so compare the
    # audio where it is defined: its re-analysed mel spectrogram
    assert _mel_distance(a, b) <= 0.05
    # across clips too: process_many batches the windows of several clips
    gen = MaskedImg2Img(model=tiny, batch_size=4, **FAST)
    clips = [rhythmic_noise(0.6, seed=s) for s in (2, 3)]
    together = gen.process_many(clips, SR)
    for clip, out in zip(clips, together, strict=True):
        alone = gen(clip, SR)
        assert _mel_distance(out, alone) <= 0.05


def test_20s_has_no_click_at_the_seams(tiny):
    x = rhythmic_noise(20.0)
    effect = OutpaintInpaint(model=tiny, batch_size=8, **FAST)
    y = effect(x, SR)
    assert y.shape == x.shape
    plan = plan_windows(2000, multiple=16)
    assert len(plan.bridges) >= 2
    seams = sorted({c for w in plan.bridges
                    for c in (w.start, w.start + w.context, w.stop - w.context, w.stop)})
    # image: the column-to-column change at a seam is ordinary
    music = effect.last_images["music"].pixels.astype(np.float32)
    col_diff = np.abs(np.diff(music, axis=1)).mean(axis=0)
    assert col_diff[[s - 1 for s in seams if s < 2000]].max() <= np.percentile(col_diff, 99)
    # audio: the sample-difference peaks near the seams are no larger than elsewhere
    d = np.abs(np.diff(y))
    near = np.zeros(d.size, bool)
    for s in seams:
        near[max(0, s * 441 - 441):s * 441 + 441] = True
    assert d[near].max() <= d[~near].max()


def test_masked_img2img_end_to_end(tiny):
    x = rhythmic_noise(1.5)
    effect = MaskedImg2Img(model=tiny, **FAST)
    y = effect(x, SR)
    assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() > 0
    assert effect.last_images["music"].shape == (512, 150)
    np.testing.assert_array_equal(effect(x, SR), y)


class _ChordGenerator(Effect):
    """A stand-in generator for the Composer: a C major chord as long as the noise."""

    supports_streaming = False
    registered = False

    def _process(self, audio, sample_rate, sidechain):
        t = np.arange(audio.shape[1]) / sample_rate
        chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * 0.2
        return np.repeat(chord[None].astype(np.float32), 2, axis=0)


def test_composer_guided_mode(tiny):
    from blendfx.effects.blend.similarity import ssim

    x = rhythmic_noise(1.28)
    guide = _ChordGenerator()
    chord_image = riffusion_image(guide(x, SR), SR)
    effect = MaskedImg2Img(model=tiny, start="guide", guide=guide, **FAST)
    y = effect(x, SR)
    assert y.shape == x.shape
    images = effect.last_images
    np.testing.assert_array_equal(images["source"].pixels, chord_image.pixels)
    assert images["music"].max_value == pytest.approx(chord_image.max_value)
    noise_image = riffusion_image(x, SR)
    assert ssim(images["music"], chord_image) > ssim(images["music"], noise_image)
    out = OutpaintInpaint(model=tiny, start="guide", guide=guide, **FAST)(x, SR)
    assert out.shape == x.shape and np.abs(out).max() > 0


def test_guided_by_the_real_composer(tiny):
    """start='guide' with no guide runs blendfx's Composer with the effect's prompt and seed."""
    x = rhythmic_noise(3.0)
    effect = MaskedImg2Img(model=tiny, start="guide", prompt="lofi", **FAST)
    y = effect(x, SR)
    assert y.shape == x.shape and np.abs(y).max() > 0
    source = effect.last_images["source"]
    assert source.shape == (512, 300) and (source.pixels < 255).any()
    assert not np.array_equal(source.pixels, riffusion_image(x, SR).pixels)


def test_guide_without_composer_is_a_clear_error(tiny, monkeypatch):
    monkeypatch.delitem(EFFECT_REGISTRY, "Composer", raising=False)
    with pytest.raises(ParameterError, match="start = 'guide' needs a guide"):
        MaskedImg2Img(model=tiny, start="guide", **FAST)(rhythmic_noise(0.5), SR)


def test_presets_name_the_generators(tmp_path, tiny):
    effect = OutpaintInpaint(prompt="jazz", strength_inpaint=0.8, fraction=0.2, model=tiny)
    loaded = load_preset(save_preset(effect, tmp_path / "gen.toml"))
    assert loaded == effect
    guided = MaskedImg2Img(start="guide", guide=OutpaintInpaint(prompt="ambient"), downshift=40)
    assert load_preset(save_preset(guided, tmp_path / "guided.toml")) == guided


def test_a_prompt_per_shot(tiny, monkeypatch):
    x = rhythmic_noise(12.0)
    plain = OutpaintInpaint(model=tiny, **FAST)
    y0 = plain(x, SR)
    # a schedule that says the prompt everywhere changes nothing
    same = OutpaintInpaint(model=tiny, prompts=[(0.0, 60.0, plain.prompt)], **FAST)
    np.testing.assert_array_equal(same(x, SR), y0)
    seen = spy_prompts(monkeypatch)
    shots = OutpaintInpaint(model=tiny, prompts=[(0.0, 6.0, "dark calm"), (6.0, 12.0, "bright energetic")],
                            **FAST)
    assert shots.prompt_at(3.0) == "dark calm" and shots.prompt_at(30.0) == shots.prompt
    y = shots(x, SR)
    assert {"dark calm", "bright energetic"} <= set(seen)
    assert y.shape == x.shape and not np.allclose(y, y0)
    assert shots.batch_key() != plain.batch_key()  # never batched with another schedule
    with pytest.raises(ParameterError, match="start_s < end_s"):
        OutpaintInpaint(prompts=[(2.0, 1.0, "x")])
    with pytest.raises(ParameterError, match="spans"):
        MaskedImg2Img(prompts=["dark"])


def test_windows_join_at_cuts():
    plan = plan_windows(1200, multiple=64, joins=[310, 900, 905, 1190], join_fade=8)
    # 905 is too close to 900 and 1190 to the end: dropped
    assert plan.segments == ((0, 310, 8), (310, 900, 8), (900, 1200, 0))
    for k, (a, b, fade) in enumerate(plan.segments):
        wins = [w for w in plan.windows if w.segment == k]
        assert wins[0].start == a and wins[0].kind == "anchor" and wins[-1].kind == "anchor"
        assert all(w.start >= a for w in wins) and max(w.stop for w in wins) >= b + fade
    indices = [w.index for w in plan.windows]
    assert len(set(indices)) == len(indices)
    assert all(w.index % 2 == (w.kind == "bridge") for w in plan.windows)
    assert plan.padded >= max(w.stop for w in plan.windows)
    # each stretch's image up to its join, then an 8-column crossfade into the next
    images = [np.full((4, w.width), 100.0 * w.segment, np.float32) for w in plan.windows]
    out = assemble(plan, images)
    assert out.shape == (4, 1200)
    assert (out[:, :310] == 0).all() and (out[:, 318:900] == 100).all() and (out[:, 908:] == 200).all()
    assert np.all(np.diff(out[0, 310:318]) > 0) and 100 < out[0, 904] < 200
    assert plan_windows(1200, multiple=64).segments == () and plan_windows(1200, joins=[5]).segments == ()


def test_riffusion_windows_follow_the_cuts(tiny, monkeypatch):
    from blendfx.effects.diffusion.generator import DiffusionGenerator

    seen = []
    original = DiffusionGenerator._window_prompts

    def spy(self, chunk):
        prompts = original(self, chunk)
        seen.extend((job.plan.segment_of(win), win.start, p)
                    for (job, win), p in zip(chunk, prompts, strict=True))
        return prompts

    monkeypatch.setattr(DiffusionGenerator, "_window_prompts", spy)
    x = rhythmic_noise(7.0)
    shots = [(0.0, 3.3, "dark calm"), (3.3, 7.0, "bright energetic")]
    cut = MaskedImg2Img(model=tiny, prompts=shots, cuts=[3.3], **FAST)
    y = cut(x, SR)
    assert y.shape == x.shape and np.isfinite(y).all()
    segments = sorted({s for s, _, _ in seen})
    assert [s[:2] for s in segments] == [(0, 330), (330, 700)]
    for (a, _, _), start, prompt in seen:  # every window inside one shot, on that shot's prompt
        assert prompt == ("dark calm" if a == 0 else "bright energetic")
        assert start >= a
    assert min(start for (a, _, _), start, _ in seen if a == 330) == 330  # a window starts at the cut
    plain = MaskedImg2Img(model=tiny, prompts=shots, **FAST)
    assert not np.allclose(plain(x, SR), y) and plain.batch_key() != cut.batch_key()
    with pytest.raises(ParameterError, match="cuts"):
        MaskedImg2Img(cuts=["soon"])
