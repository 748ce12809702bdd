"""The music/noise CNN segmenter: model geometry, shipped weights, effect, MaskExtractor "cnn".

Never trains: everything uses the weights shipped in the package (or a random tiny init).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from blendfx import ModelNotFoundError, ParameterError
from blendfx.effects import MaskExtractor, MusicNoiseSegmenter
from blendfx.effects.segmenter.data import (
    Clip,
    evaluate,
    load_clips,
    noise_gain,
    render_midi_clips,
    roc_auc,
    source_split,
    validation_items,
    window_targets,
)
from blendfx.effects.segmenter.net import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Segmenter,
    SegmenterConfig,
    cells_from_windows,
    default_weights_dir,
    istft,
    load_segmenter,
    mask_from_cells,
    net_input,
    power,
    stft,
    stft_filter,
    stft_power,
)

from ...conftest import SHARED_DATA, shared

SR = 44100


@pytest.fixture(scope="module")
def split():
    shared("music")
    return source_split(SHARED_DATA, midi=True)


@pytest.fixture(scope="module")
def val_clips(split):
    """Held-out clips only (the benchmark's validation sources, shorter): the four held-out MIDI
    tunes rendered (first 15 s; the shipped weights train on all three recorded excerpts) and
    the eleven held-out noise clips."""
    music = render_midi_clips(split.val_midi, max_seconds=15.0)
    assert music, "the Composer's render_midi rendered no validation music"
    noise = load_clips(split.val_noise)
    return music, noise


@pytest.fixture(scope="module")
def model():
    return Segmenter.from_pretrained()


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    err = estimate - reference
    return float(10 * np.log10(np.sum(reference ** 2) / np.sum(err ** 2)))


# -- geometry ------------------------------------------------------------------------------------

def test_paper_geometry():
    c = SegmenterConfig()
    assert (c.n_fft, c.hop_length, c.window_bins, c.window_frames, c.cell) == (512, 128, 64, 256, 16)
    assert c.window_hz == pytest.approx(5512.5)
    assert c.window_seconds == pytest.approx(0.743, abs=1e-3)
    with pytest.raises(ParameterError, match="total stride"):
        SegmenterConfig(conv_strides=(1, 1, 1))
    with pytest.raises(ParameterError, match="unknown key"):
        SegmenterConfig.from_dict({"channel": 3})


@pytest.mark.parametrize("options", [{}, {"conv_strides": (1, 2, 1), "linear_channel": True}])
def test_fully_convolutional_equals_window_by_window(tmp_path, options):
    torch.manual_seed(0)
    seg = Segmenter(SegmenterConfig(channels=8, hidden=8, **options))
    for bn in seg.net.norms:  # non-trivial eval-mode statistics
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 2.0)
    image = torch.rand(256, 256 + 16 * 9 + 5)
    seg.chunk_windows = 4  # several chunks, the last one partly padding
    seg.chunk_batch = 2    # and a batch of two of them
    logits = seg.window_logits(image)
    assert tuple(logits.shape) == (2, 13, 11)
    padded = net_input(torch.nn.functional.pad(image, (0, 256 + 16 * 10 - image.shape[1]))[None],
                       seg.config)
    with torch.inference_mode():
        for i in (0, 6, 12):
            for j in (0, 3, 10):
                win = padded[..., 16 * i:16 * i + 64, 16 * j:16 * j + 256]
                ref = seg.net(win)[0, :, 0, 0]
                torch.testing.assert_close(logits[:, i, j], ref, atol=1e-4, rtol=1e-4)
    # loading folds each batch norm into its convolution: same logits
    seg.save_pretrained(tmp_path)
    loaded = Segmenter.from_pretrained(tmp_path)
    assert loaded._folded is not None
    torch.testing.assert_close(loaded.window_logits(image), logits, atol=1e-4, rtol=1e-4)
    # the first layer's GEMM form (CPU) against its convolution + pool form (GPU)
    first = loaded._folded.first
    x = torch.rand(2, 1 + int(seg.config.linear_channel), 300, 256)
    with torch.inference_mode():
        torch.testing.assert_close(first(x), first.reference(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("samples", [1, 300, 511, 44100, 128 * 1100 + 17])
def test_blocked_stfts_match_torch(samples):
    """stft, stft_power, istft and stft_filter (block by block on the CPU) against torch.stft /
    torch.istft on the whole signal; lengths from one frame to several blocks."""
    torch.manual_seed(1)
    x = torch.randn(2, samples)
    window = torch.hann_window(512)
    ref = torch.stft(x, 512, 128, window=window / window.sum(), center=True, pad_mode="constant",
                     return_complex=True)
    spec = stft(x, 512, 128)
    assert spec.shape == ref.shape
    torch.testing.assert_close(spec, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(stft_power(x, 512, 128), power(ref), rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(istft(spec, 512, 128, samples), x, rtol=0, atol=2e-5)
    gain = torch.rand(257, ref.shape[-1]).mT.contiguous().mT  # frames-major, like the mask
    expected = torch.istft(ref * gain * window.sum(), 512, 128, window=window, center=True,
                           length=samples)
    torch.testing.assert_close(stft_filter(x, gain, 512, 128), expected, rtol=0, atol=2e-5)
    torch.testing.assert_close(stft_filter(x, gain.contiguous(), 512, 128), expected, rtol=0,
                               atol=2e-5)


def test_cells_average_overlapping_windows():
    c = SegmenterConfig()
    probs = torch.zeros(13, 5)
    probs[0, 0] = 1.0  # the window at the origin covers cells rows 0-3, columns 0-15
    cells = cells_from_windows(probs, c)
    assert tuple(cells.shape) == (16, 20)
    # cell (0, 0) is covered by that one window only; cell (3, 4) by 4 x 5 windows
    assert cells[0, 0] == pytest.approx(1.0)
    assert cells[3, 4] == pytest.approx(1 / 20)
    assert cells[4, 0] == 0 and cells[0, 16] == 0
    const = cells_from_windows(torch.full((13, 5), 0.3), c)
    torch.testing.assert_close(const, torch.full_like(const, 0.3))
    mask = mask_from_cells(const, c, frames=300)
    assert tuple(mask.shape) == (257, 300)
    torch.testing.assert_close(mask, torch.full_like(mask, 0.3))


def test_window_targets_label_by_energy():
    c = SegmenterConfig()
    music = torch.zeros(1, 257, 512)
    noise = torch.zeros(1, 257, 512)
    music[:, :64] = 1.0   # music owns the lowest band
    noise[:, 64:] = 0.5   # noise the rest
    noise[:, :64, :128] = 1.5  # and beats the music in the first 128 frames of the low band
    share, label, weight = window_targets(music, noise, c)
    assert tuple(label.shape) == (1, 13, 17)
    assert label[0, 0, 8] == 1 and share[0, 0, 8] == 1.0       # low band, after the noise burst
    # the first window holds half the burst: E_noise = 0.75 < E_music = 1
    assert label[0, 0, 0] == 1 and share[0, 0, 0] == pytest.approx(1 / 1.75)
    assert label[0, 0, 0] == 1 and share[0, 0, 4] < 1          # still overlaps the burst
    assert label[0, 8, 5] == 0 and share[0, 8, 5] == 0.0       # high band: noise only
    assert weight.all()
    quiet = window_targets(music * 0, noise * 0, c)[2]
    assert not quiet.any()  # silence is neither music nor noise


def test_window_targets_floor_of_the_input_image():
    """A window whose mean power lies below the network's input range (range_db under the
    mixture's loudest pixel) carries no label, although it is within SILENCE_DB of the loudest
    window."""
    c = SegmenterConfig()
    music = torch.full((1, 257, 512), 1e-5)  # -50 dB everywhere
    music[:, 10, 10] = 1e4                    # one pixel at +40 dB: the image's reference
    noise = torch.zeros_like(music)
    _, label, weight = window_targets(music, noise, c)
    assert weight.all() and label.all()      # 1e-5 is within 60 dB of the loudest window
    _, _, weight = window_targets(music, noise, c, mixture_power=music + noise)
    assert weight[0, 0, 0] == 1               # the window holding the loud pixel
    assert weight[0, 12, 16] == 0             # -50 dB is 90 dB under the peak: below the floor
    music[:, 10, 10] = 1e2                    # +20 dB peak: -50 dB is 70 dB under it, visible
    assert window_targets(music, noise, c, mixture_power=music)[2].all()


def test_roc_auc():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert np.isnan(roc_auc(np.array([0.5]), np.array([1])))


def test_split_is_by_file(split, tmp_path):
    assert split.train_music and split.val_noise and split.train_noise and split.val_midi
    assert not set(split.val_music) & set(split.train_music)
    assert not set(split.val_noise) & set(split.train_noise)
    assert not set(split.val_midi) & set(split.train_midi)
    held = source_split(SHARED_DATA, midi=False, val_music=["vibe_ace"])
    assert [p.stem for p in held.val_music] == ["vibe_ace"]
    assert "vibe_ace" not in [p.stem for p in held.train_music]


# -- weights -------------------------------------------------------------------------------------

def test_shipped_weights_small_and_described():
    folder = default_weights_dir()
    weights, meta = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    assert weights.is_file() and weights.stat().st_size < 1_000_000
    info = json.loads(meta.read_text())
    SegmenterConfig.from_dict(info["config"])
    training = info["training"]
    assert training["train_seconds"] > 0 and training["steps"] > 0
    # the validation files were not trained on
    src = training["sources"]
    for kind in ("music", "noise", "midi"):
        assert not set(src[f"val_{kind}"]) & set(src[f"train_{kind}"])
    # one reproducible command from scratch, not a chain of fine-tuning runs
    assert training.get("init") is None
    # (the shipped weights were trained before the module moved from blendfx.train_segmenter)
    assert training["command"].split()[:3] in (["python", "-m", "blendfx.effects.segmenter.train"],
                                               ["python", "-m", "blendfx.train_segmenter"])
    assert "--init" not in training["command"]


def test_learning_rate_cycles():
    from blendfx.effects.segmenter.train import learning_rate

    one = [learning_rate(s, 100, 1.0) for s in range(100)]
    assert one[4] == 1.0 and one[-1] < 1e-3 and max(one) == 1.0  # warm-up, then one cosine
    two = [learning_rate(s, 100, 1.0, cycles=2) for s in range(100)]
    assert two[1] == 1.0 and two[49] < 1e-2  # the first cycle: 50 steps
    assert two[51] == 0.5 and max(two[50:]) == 0.5 and two[-1] < 1e-2  # restart at half the peak


def test_noise_mix_sums_two_noises():
    from blendfx.effects.segmenter.train import MixtureSampler

    rng = np.random.default_rng(0)
    music = [Clip("m", rng.standard_normal(40_000).astype(np.float32))]
    # two noises in separate halves of the spectrum: a sum shows up as energy in both
    t = np.arange(40_000) / SR
    noise = [Clip("low", np.sin(2 * np.pi * 200 * t).astype(np.float32)),
             Clip("high", np.sin(2 * np.pi * 9000 * t).astype(np.float32))]

    def both_tones(noise_mix):
        sampler = MixtureSampler(music, noise, 8192, clean_share=0.5, noise_mix=noise_mix)
        _, n, _ = sampler.batch(np.random.default_rng(1), 32)
        spec = np.abs(np.fft.rfft(n * np.hanning(n.shape[1]), axis=1))
        low, high = spec[:, 20:60].sum(1), spec[:, 1200:2300].sum(1)
        active = n.any(axis=1)
        return int(np.sum(active & (low > 0.05 * high) & (high > 0.05 * low))), int(active.sum())

    mixed, active = both_tones(1.0)
    assert active > 8 and mixed >= active // 4  # the second pick is the other clip half the time
    assert both_tones(0.0)[0] == 0
    with pytest.raises(ParameterError):
        MixtureSampler(music, noise, 8192, noise_mix=1.5)


def test_shipped_weights_auc_at_plus_10_db(model, val_clips):
    music, noise = val_clips
    items = validation_items(music, noise, conditions=(10.0,), noise_segments_per_long_clip=1,
                             config=model.config)
    result = evaluate(model, items)
    assert result["windows"]["+10"] > 500
    assert result["dominance"]["+10"] >= 0.95, result


def test_clean_auc_by_source(model, val_clips):
    music, noise = val_clips
    items = validation_items(music[:2], noise[:3], conditions=("clean",), max_music_segments=2,
                             noise_segments_per_long_clip=1, config=model.config)
    result = evaluate(model, items)
    by_source = result["clean_by_source"]
    assert set(by_source) == {c.name for c in music[:2]} | {c.name for c in noise[:3]}
    # the pooled AUC is the window-weighted mean of each side's per-source AUCs
    overall = result["dominance"]["clean"]
    for side in ({c.name for c in music[:2]}, {c.name for c in noise[:3]}):
        values = [by_source[k] for k in side]
        assert min(values) - 1e-9 <= overall <= max(values) + 1e-9


def test_save_load_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path / "copy")
    again = Segmenter.from_pretrained(tmp_path / "copy")
    assert again.config == model.config and again.training == model.training
    for (k, a), (k2, b) in zip(model.net.state_dict().items(), again.net.state_dict().items(),
                               strict=True):
        assert k == k2 and torch.equal(a, b)
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    np.testing.assert_array_equal(model.segment(x, SR).music, again.segment(x, SR).music)
    # the .safetensors path works too
    assert Segmenter.from_pretrained(tmp_path / "copy" / WEIGHTS_FILE).config == model.config


def test_missing_weights_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"segmenter\.safetensors.*segmenter\.train"):
        Segmenter.from_pretrained(tmp_path)
    effect = MusicNoiseSegmenter(weights=str(tmp_path / "nowhere"))
    with pytest.raises(ModelNotFoundError, match="nowhere"):
        effect(np.zeros(4410, np.float32), SR)


def test_corrupt_weights_error(tmp_path, model):
    model.save_pretrained(tmp_path)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(ModelNotFoundError, match="not a safetensors file"):
        Segmenter.from_pretrained(tmp_path)


# -- the effect ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixture(val_clips):
    """3 s of held-out music with a held-out noise at 0 dB."""
    music, noise = val_clips
    m = music[0].audio[SR * 2: SR * 5]
    n = noise[8].audio[: SR * 3]  # a rain clip (held out)
    n = np.pad(n, (0, m.size - n.size)) * noise_gain(m, n, 0.0)
    return m.astype(np.float32), n.astype(np.float32)


def test_music_mode_improves_snr(mixture):
    m, n = mixture
    mix = m + n
    out = MusicNoiseSegmenter(mode="music")(mix, SR)
    assert out.shape == mix.shape
    before, after = snr_db(m, mix), snr_db(m, out)
    assert after > before + 2.0, (before, after)  # 2.4 to 4 dB over the held-out noises


def test_noise_mode_is_the_complement(mixture):
    m, n = mixture
    mix = m + n
    music = MusicNoiseSegmenter(mode="music", floor_db=-120)(mix, SR)
    noise = MusicNoiseSegmenter(mode="noise", floor_db=-120)(mix, SR)
    np.testing.assert_allclose(music + noise, mix, atol=1e-4)
    assert snr_db(n, noise) > snr_db(n, mix)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_other_sample_rates(mixture, rate):
    from blendfx.spectral.analysis import resample

    m, n = (resample(x, SR, rate) for x in mixture)
    stereo = np.stack([m + n, 0.5 * (m + n)])
    out = MusicNoiseSegmenter()(stereo, rate)
    assert out.shape == stereo.shape and np.isfinite(out).all()
    assert snr_db(m, out[0]) > snr_db(m, m + n)


def test_probability_map(mixture):
    m, n = mixture
    probs = MusicNoiseSegmenter().probability_map(m + n, SR)
    frames = m.size // 128 + 1
    assert probs.music.shape == (257, frames)
    assert probs.cells.shape == (16, -(-frames // 16))
    assert probs.music.min() >= 0 and probs.music.max() <= 1
    assert probs.frequencies_hz[-1] == SR / 2 and probs.extent()[3] == SR / 2
    # clean music reads as music, the noise alone as noise
    assert MusicNoiseSegmenter().probability_map(m, SR).cells.mean() > 0.6
    assert MusicNoiseSegmenter().probability_map(n, SR).cells.mean() < 0.4


def test_model_is_shared_between_instances():
    assert load_segmenter() is load_segmenter()
    assert MusicNoiseSegmenter().model() is MusicNoiseSegmenter(mode="noise").model()


# -- MaskExtractor "cnn" -------------------------------------------------------------------------

def test_mask_extractor_cnn_mode(mixture):
    from blendfx.effects.segmenter.segmenter import register_cnn_mode
    from blendfx.spectral.mask import MASK_MODES, mask_function

    register_cnn_mode()  # other tests may have taken the mode out of the registry
    assert mask_function("cnn") is MASK_MODES["cnn"]
    m, n = mixture
    energy = MaskExtractor(mode="energy").extract(m + n, SR)
    loud = MaskExtractor(mode="cnn").extract(m + 3.0 * n, SR)
    soft = MaskExtractor(mode="cnn").extract(m + 0.3 * n, SR)
    assert loud.shape == energy.shape == (512, 300)
    assert set(np.unique(loud.values)) <= {0.0, 1.0}
    assert loud.coverage > soft.coverage  # louder noise: more noise-dominated pixels
    assert 0.0 < soft.coverage < loud.coverage <= 1.0
    silent = MaskExtractor(mode="cnn").extract(np.zeros(SR, np.float32), SR)
    assert silent.coverage == 0.0
    grown = MaskExtractor(mode="cnn", enlarge=2).extract(m + 0.3 * n, SR)
    assert grown.coverage >= soft.coverage
