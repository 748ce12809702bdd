"""Blend measures on real clips: report, cost to mask, unmasked fraction, silence."""

from __future__ import annotations

import warnings

import blendfx
import numpy as np
import pytest
from blendfx.buffers import fit_length
from blendfx.dsp.loudness import integrated_lufs
from blendfx.effects.blend.metrics import (
    bark_nmr_db,
    blend_report,
    cost_to_mask_lu,
    gain_to_mask,
    noise_core,
    unmasked_fraction,
)

from ...conftest import shared


@pytest.fixture
def bark(music_clip):
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "dog_bark", "1-30226-A.ogg"))
    return fit_length(noise, music_clip[0].shape[1]), sr


def test_report_has_every_measure(bark, music_clip):
    noise, sr = bark
    music, _ = music_clip
    report = blend_report(noise, music * np.float32(0.3), sr)
    for key in ("noise_lufs", "music_lufs", "mix_lufs", "loudness_cost_lu", "unmasked_fraction",
                "nmr_db_median", "nmr_db_p90", "nmr_db_max", "nmr_db_energy", "gain_to_mask_db",
                "cost_to_mask_lu", "mix_true_peak_dbtp", "core_fraction", "duration_s"):
        assert key in report and isinstance(report[key], float), key
    assert report["loudness_cost_lu"] == pytest.approx(report["mix_lufs"] - report["noise_lufs"])
    # a mono noise plays on both channels of a stereo music: measured as it plays
    assert report["noise_lufs"] == pytest.approx(integrated_lufs(np.repeat(noise, 2, axis=0), sr))
    assert 0.0 <= report["unmasked_fraction"] <= 1.0
    assert report["core_fraction"] == pytest.approx(0.15, abs=0.01)
    assert report["nmr_db_median"] <= report["nmr_db_p90"] <= report["nmr_db_max"]


def test_cost_to_mask_is_one_quantile_and_halves_the_core(bark, music_clip):
    noise, sr = bark
    music, _ = music_clip
    gain = gain_to_mask(noise, music, sr)
    assert 0 < gain < np.inf
    # at that gain, half the core's energy is under the threshold; a bit less gain, less than half
    assert unmasked_fraction(noise, music * np.float32(gain * 1.01), sr) <= 0.5
    assert unmasked_fraction(noise, music * np.float32(gain * 0.9), sr) > 0.5
    cost = cost_to_mask_lu(noise, music, sr)
    stereo = np.repeat(noise, 2, axis=0)  # the mono noise as it plays with the stereo music
    mix = integrated_lufs(stereo + np.float32(gain) * music, sr)
    assert cost == pytest.approx(mix - integrated_lufs(stereo, sr), abs=1e-6)
    # scale-free in the masker: a louder copy needs proportionally less gain, same cost
    assert cost_to_mask_lu(noise, music * np.float32(3.0), sr) == pytest.approx(cost, abs=0.01)
    # reusing the noise's core gives the same number
    core = noise_core(noise, sr)
    assert cost_to_mask_lu(noise, music, sr, core=core) == pytest.approx(cost, abs=1e-9)


def test_unmasked_fraction_falls_as_the_music_rises(bark, music_clip):
    noise, sr = bark
    music, _ = music_clip
    values = [unmasked_fraction(noise, music * np.float32(g), sr) for g in (0.01, 0.1, 1.0, 10.0)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert values[0] > 0.9 and values[-1] < values[0]


def test_the_noise_itself_masks_more_cheaply_than_unrelated_music(bark, music_clip):
    noise, sr = bark
    music, _ = music_clip
    itself = cost_to_mask_lu(noise, noise, sr)
    unrelated = cost_to_mask_lu(noise, music, sr)
    assert 3.0 < itself < unrelated
    # the noise masking itself: the mix is noise * (1 + g), so the cost is 20 log10(1 + g)
    g = gain_to_mask(noise, noise, sr)
    assert itself == pytest.approx(20 * np.log10(1 + g), abs=0.01)


def test_silence_without_warnings(music_clip):
    music, sr = music_clip
    silent = np.zeros_like(music)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = blend_report(silent, music, sr)
        assert cost_to_mask_lu(silent, music, sr) == 0.0
        assert unmasked_fraction(silent, music, sr) == 0.0
        masker_silent = cost_to_mask_lu(music, silent, sr)
        short = blend_report(music[:, :300], music[:, :300], sr)
    assert report["noise_lufs"] == float("-inf") and report["loudness_cost_lu"] == 0.0
    assert report["unmasked_fraction"] == 0.0 and report["cost_to_mask_lu"] == 0.0
    assert masker_silent == float("inf")
    assert short["core_fraction"] == 0.0 and short["duration_s"] == pytest.approx(300 / sr)


def test_bark_nmr_falls_as_the_music_rises(bark, music_clip):
    noise, sr = bark
    music, _ = music_clip
    quiet = bark_nmr_db(noise, music * np.float32(0.05), sr)
    loud = bark_nmr_db(noise, music * np.float32(0.5), sr)
    # 20 dB more music: the threshold rises by 20 dB where it is above the threshold in quiet
    assert quiet - loud == pytest.approx(20.0, abs=3.0)
    # the noise masks itself: its own NMR is near the model's masker offset, far below a quiet music's
    assert bark_nmr_db(noise, noise, sr) < quiet
    assert bark_nmr_db(np.zeros_like(noise), music, sr) == float("-inf")
