"""MaskExtractor: the noise's core on real noise, edges, clean-up, residual, any length, modes."""

from __future__ import annotations

import warnings

import blendfx
import numpy as np
import pytest
from blendfx import ParameterError
from blendfx.effects import MaskExtractor
from blendfx.spectral.analysis import apply_mel_mask
from blendfx.spectral.mask import MASK_MODES, Mask, mask_function, register_mask_mode
from scipy.ndimage import label
from scipy.signal import find_peaks

from ..conftest import shared


def _tick_columns(x: np.ndarray) -> np.ndarray:
    """10 ms columns of the clicks of a clock-tick clip, from its waveform envelope."""
    env = np.abs(x[: x.size // 441 * 441]).reshape(-1, 441).max(axis=1)
    peaks, _ = find_peaks(env, height=0.3 * env.max(), distance=20)
    return peaks


@pytest.mark.parametrize("clip", ["1-21934-A.ogg", "1-21935-A.ogg"])
def test_clock_tick_mask_sits_on_the_ticks(clip):
    audio, sr = blendfx.read_audio(shared("noise", "esc10", "clock_tick", clip), mono=True)
    x = audio.reshape(-1)
    ticks = _tick_columns(x)
    assert len(ticks) >= 3
    mask = MaskExtractor(fraction=0.15).extract(x, sr)
    assert mask.shape[0] == 512 and mask.shape[1] == x.size // 441
    assert mask.coverage == pytest.approx(0.15, abs=0.005)
    cols = mask.columns()
    near = np.zeros(cols.size, bool)
    for t in ticks:
        near[max(0, t - 6):t + 7] = True  # the 100 ms analysis window smears a click +-5 columns
    assert near.mean() < 0.4  # the ticks' columns are a minority of the clip...
    assert cols[near].mean() > 4 * cols[~near].mean()  # ...where the core is far denser
    top = np.argsort(cols)[-cols.size // 10:]
    assert near[top].mean() >= 0.9  # the fullest tenth of the columns are tick columns
    for t in ticks:  # and every tick is in the core
        assert cols[max(0, t - 6):t + 7].max() > 0.2


def test_silence_gives_an_empty_mask_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask = MaskExtractor().extract(np.zeros(44100, np.float32), 44100)
        out = MaskExtractor()(np.zeros((2, 44100), np.float32), 44100)
    assert mask.shape == (512, 100) and mask.coverage == 0.0
    assert not out.any()


@pytest.mark.parametrize("n", [1, 7, 300, 440, 441, 500, 1763, 1764, 4410])
@pytest.mark.parametrize("invert", [False, True])
def test_any_length_and_no_warnings(n, invert):
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        effect = MaskExtractor(invert=invert, edges="soft", min_region=3, enlarge=1)
        out = effect(x, 44100)
    assert out.shape == x.shape and np.isfinite(out).all()
    assert effect.last_mask.shape == (512, n // 441)
    if n < 441:  # shorter than one column: no core, the residual is everything
        np.testing.assert_allclose(out, x if invert else 0 * x, atol=1e-6)


def test_core_plus_residual_is_the_input():
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "dog_bark", "1-30226-A.ogg"))
    core = MaskExtractor(edges="soft")(noise, sr)
    residual = MaskExtractor(edges="soft", invert=True)(noise, sr)
    np.testing.assert_allclose(core + residual, noise, atol=1e-5)
    # the core holds most of the energy of a bark, in a small share of the pixels
    assert np.sum(core ** 2) > np.sum(residual ** 2)


def test_speck_cleanup_drops_small_regions():
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "rain", "1-17367-A.ogg"), mono=True)
    raw = MaskExtractor().extract(noise, sr).binary()
    clean = MaskExtractor(min_region=25).extract(noise, sr).binary()
    labels, count = label(clean, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    assert count > 0 and sizes.min() >= 25
    _, raw_count = label(raw, structure=np.ones((3, 3)))
    assert raw_count > count
    assert not (clean & ~raw).any()  # clean-up only removes


def test_soft_edges_keep_the_core_and_add_a_skirt(clock_tick):
    audio, sr = clock_tick
    hard = MaskExtractor().extract(audio, sr).values
    soft = MaskExtractor(edges="soft", feather=3.0).extract(audio, sr).values
    assert set(np.unique(hard)) <= {0.0, 1.0}
    assert np.all(soft[hard == 1] == 1.0)
    skirt = soft[(hard == 0) & (soft > 0)]
    assert skirt.size > 0 and skirt.max() < 1.0 and skirt.min() >= 0.0


def test_enlarge_grows_the_mask(clock_tick):
    audio, sr = clock_tick
    small = MaskExtractor().extract(audio, sr).binary()
    big = MaskExtractor(enlarge=3).extract(audio, sr).binary()
    assert big.sum() > small.sum() and not (small & ~big).any()


def test_fast_analysis_agrees_with_exact(clock_tick):
    audio, sr = clock_tick
    exact = MaskExtractor().extract(audio, sr).binary()
    fast = MaskExtractor(analysis="fast").extract(audio, sr).binary()
    assert (exact & fast).sum() / (exact | fast).sum() > 0.85


def test_an_unknown_mask_mode_names_the_available_ones_and_how_to_add_one():
    with pytest.raises(ParameterError, match=r"'no_such_mode' is not available.*register_mask_mode"
                                             r".*Available modes: energy, cnn"):
        mask_function("no_such_mode")


def test_cnn_mode_loads_the_segmenter_through_its_entry_point():
    """The "cnn" mode is declared in setup.cfg's blendfx.mask_modes entry points: asking for it
    imports the segmenter, with nothing registered by hand."""
    from blendfx.effects.segmenter import cnn_noise_mask

    MASK_MODES.pop("cnn", None)
    assert mask_function("cnn") is cnn_noise_mask
    assert MASK_MODES["cnn"] is cnn_noise_mask


def test_cnn_mode_uses_the_registered_function():
    calls = []

    def fake(audio, sample_rate, fraction):
        calls.append((audio.shape, sample_rate, fraction))
        values = np.zeros((512, 3), np.float32)  # shorter than the clip: padded with zeros
        values[100:110, 1] = 0.9
        return values

    register_mask_mode("cnn", fake)
    try:
        mask = MaskExtractor(mode="cnn", fraction=0.2).extract(np.ones((2, 4410)), 44100)
    finally:
        MASK_MODES.pop("cnn", None)
    assert calls == [((2, 4410), 44100.0, 0.2)]
    assert mask.shape == (512, 10) and mask.values.sum() == 10 and mask.values[105, 1] == 1


def test_apply_mel_mask_any_rate():
    """At 16 kHz the mask rows keep their frequencies (a 1 kHz tone is kept by a 1 kHz mask)."""
    sr = 16000
    t = np.arange(sr) / sr
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)[None]
    values = np.zeros((512, 100), np.float32)
    from blendfx.spectral.spectrogram_image import mel_row

    row = mel_row(1000.0)
    values[row - 8:row + 9] = 1.0
    kept = apply_mel_mask(tone, sr, Mask(values))
    values_off = np.zeros_like(values)
    row4 = mel_row(4000.0)
    values_off[row4 - 8:row4 + 9] = 1.0
    dropped = apply_mel_mask(tone, sr, Mask(values_off))
    mid = slice(2000, 14000)
    assert np.sqrt(np.mean(kept[0, mid] ** 2)) > 0.6
    assert np.sqrt(np.mean(dropped[0, mid] ** 2)) < 0.05


def _median_db(a: np.ndarray, b: np.ndarray) -> float:
    keep = b > b.max() * 1e-4
    return float(np.median(np.abs(20 * np.log10((a[keep] + 1e-12) / (b[keep] + 1e-12)))))


def test_fast_mel_strides_against_riffusion(clock_tick, music_clip):
    from blendfx.spectral.analysis import fast_mel
    from blendfx.spectral.spectrogram import riffusion_mel

    for audio, sr in (clock_tick, music_clip):
        exact = riffusion_mel(audio, sr)
        one, two = fast_mel(audio, sr, stride=1), fast_mel(audio, sr, stride=2)
        assert one.shape == two.shape == exact.shape
        assert _median_db(one, exact) < 0.3
        assert _median_db(two, exact) < 0.5  # every other frame, half rate, interpolated
        # the analysed columns of stride 2 (taken from the half-band decimated signal) are the
        # full-rate columns within a hundredth of a dB
        assert _median_db(two[:, ::2], one[:, ::2]) < 0.01


def test_half_rate_analysis_passes_the_mel_band_and_rejects_what_would_fold_into_it():
    from blendfx.spectral.analysis import fast_mel

    sr = 44100
    t = np.arange(sr) / sr
    for f in (440.0, 5000.0, 9900.0):  # in band: the same level at half rate as at full rate
        x = (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)
        full, half = fast_mel(x, sr, stride=1)[:, 20:-20:2], fast_mel(x, sr, stride=2)[:, 20:-20:2]
        assert 20 * np.log10(half.max() / full.max()) == pytest.approx(0.0, abs=0.01)
    # a 15 kHz tone is above the grid (10 kHz); decimated without a filter it would land at
    # 22.05 - 15 = 7.05 kHz, inside the grid
    x = (0.5 * np.sin(2 * np.pi * 15000.0 * t)).astype(np.float32)
    ref = (0.5 * np.sin(2 * np.pi * 7050.0 * t)).astype(np.float32)
    leak = fast_mel(x, sr, stride=2)[:, 20:-20].max() / fast_mel(ref, sr, stride=2)[:, 20:-20].max()
    assert 20 * np.log10(leak) < -60


def test_energy_mask_of_8_bit_images_matches_the_quantile_path():
    # uint8 images take the counting bisection; other integer images np.quantile: same masks,
    # including ties at the threshold, silence (255) and fractions at the ends
    from blendfx.spectral.mask import energy_mask

    rng = np.random.default_rng(4)
    for trial in range(200):
        shape = (int(rng.integers(1, 64)), int(rng.integers(1, 64)))
        kind = trial % 4
        if kind == 0:
            pixels = rng.integers(0, 256, shape)
        elif kind == 1:
            pixels = rng.choice([0, 10, 10, 255, 255], shape)
        elif kind == 2:
            pixels = np.minimum(255, rng.integers(200, 300, shape))
        else:
            pixels = np.full(shape, int(rng.integers(0, 256)))
        for fraction in (0.0, 0.01, 0.15, 0.5, 1.0, float(rng.random())):
            expected = energy_mask(pixels.astype(np.int16), fraction)
            assert np.array_equal(energy_mask(pixels.astype(np.uint8), fraction), expected)


def test_image_of_a_mostly_silent_mel_is_the_elementwise_formula():
    # zeros are left out of the power (numpy is slow on them): the pixels are unchanged
    from blendfx.spectral.spectrogram_image import image_from_mel

    rng = np.random.default_rng(5)
    mel = (rng.random((512, 300)) ** 8).astype(np.float32)
    mel[:, 40:] = 0.0  # 87 % digital silence
    data = np.clip(mel / np.float32(mel.max()), 0, 1) ** np.float32(0.25)
    expected = (255 - data * 255)[::-1].astype(np.uint8)
    assert np.array_equal(image_from_mel(mel).pixels, expected)
    assert np.array_equal(image_from_mel(mel[:, :40]).pixels, expected[:, :40])
