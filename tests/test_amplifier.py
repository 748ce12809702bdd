"""AdaptiveAmplifier and LoudnessNormalize on real noise and music."""

from __future__ import annotations

import warnings

import blendfx
import numpy as np
import pytest
from blendfx.buffers import fit_length
from blendfx.effects import AdaptiveAmplifier, LoudnessNormalize
from blendfx.gain_solver import bnmusic_objective
from blendfx.loudness import integrated_lufs
from scipy.signal import resample_poly

from .conftest import shared


def _true_peak_db(x):
    """Independent reference: scipy's 4x polyphase resampler."""
    return 20 * np.log10(np.abs(resample_poly(x, 4, 1, axis=-1)).max())


@pytest.fixture
def chainsaw(music_clip):
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "chainsaw", "1-19898-A.ogg"))
    return fit_length(noise, music_clip[0].shape[1]), sr


def test_silent_noise_gives_zero_gain_without_warnings(music_clip):
    music, sr = music_clip
    for mode in ("global", "frame"):
        amp = AdaptiveAmplifier(mode=mode)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = amp(music, sr, sidechain=np.zeros_like(music))
        assert not out.any()
        assert amp.gain_db == float("-inf") and np.all(amp.gains_db == float("-inf"))
        assert amp.objective == 0.0 and amp.last_mask.coverage == 0.0


def test_global_gain_is_the_exact_optimum(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    noise = noise * np.float32(0.05)  # a quiet noise: the optimum is far from the ceilings
    quiet = music * np.float32(0.5)
    amp = AdaptiveAmplifier()
    out = amp(quiet, sr, sidechain=noise)
    assert amp.gain_db == pytest.approx(amp.optimal_gain_db, abs=1e-9)
    assert amp.gains_db.shape == (music.shape[1] // 441,)
    np.testing.assert_allclose(out, quiet * np.float32(10 ** (amp.gain_db / 20)), rtol=1e-5, atol=1e-7)
    S, T, M, _ = amp.analyze(quiet, noise, sr)
    assert amp.objective == pytest.approx(bnmusic_objective(10 ** (amp.gain_db / 20), S, T, M, 0.14))
    for other in (0.5, 0.9, 1.1, 2.0):
        assert amp.objective <= bnmusic_objective(other * 10 ** (amp.gain_db / 20), S, T, M, 0.14)
    # the gain is relative: the same music 20 dB quieter gets 20 dB more gain
    before = amp.gain_db
    amp(quiet * np.float32(0.1), sr, sidechain=noise)
    assert amp.gain_db == pytest.approx(before + 20.0, abs=0.01)


def test_frame_gains_follow_a_noise_switching_on_and_off(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    gate = np.zeros(noise.shape[1], np.float32)
    second = int(sr)
    gate[second:2 * second] = 1.0  # on 1-2 s and 3-4 s
    gate[3 * second:4 * second] = 1.0
    amp = AdaptiveAmplifier(mode="frame", attack_ms=20, release_ms=100)
    amp(music * np.float32(0.5), sr, sidechain=noise * gate * np.float32(0.05))
    db = amp.gains_db
    frames = np.arange(db.size)
    on = ((frames > 115) & (frames < 190)) | ((frames > 315) & (frames < 390))
    off = ((frames > 250) & (frames < 290)) | (frames > 450) | (frames < 80)
    assert np.median(db[on]) > np.median(db[off]) + 20
    assert np.all(db[on] > -20) and np.all(db[off] < np.median(db[on]) - 10)
    # look-ahead attack: already up a few frames before the noise starts
    assert db[98] > db[60] + 10


@pytest.mark.parametrize("mode", ["global", "frame"])
def test_nothing_clips(mode, music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    hot = music * np.float32(0.98 / np.abs(music).max())  # peaks at -0.2 dBFS already
    amp = AdaptiveAmplifier(mode=mode, ceiling_dbtp=-1.0, max_gain_db=40.0)
    out = amp(hot, sr, sidechain=noise * np.float32(4.0))  # a loud noise wants a big gain
    assert _true_peak_db(out) <= -1.0 + 0.02
    assert amp.gain_db < amp.optimal_gain_db  # the ceiling held it back


def test_max_gain_and_floor(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    amp = AdaptiveAmplifier(mode="frame", max_gain_db=3.0, min_gain_db=-12.0)
    amp(music * np.float32(0.1), sr, sidechain=noise * np.float32(0.1))
    assert np.all(amp.gains_db <= 3.0 + 1e-9) and np.all(amp.gains_db >= -12.0 - 1e-9)


def test_sidechain_required_and_lengths(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    with pytest.raises(blendfx.ParameterError, match="sidechain"):
        AdaptiveAmplifier()(music, sr)
    out = AdaptiveAmplifier()(music[:, :30000], sr, sidechain=noise)  # longer key: cropped
    assert out.shape == (2, 30000)


def test_loudness_normalize(chainsaw):
    noise, sr = chainsaw
    norm = LoudnessNormalize(target_lufs=-28.0)
    out = norm(noise * np.float32(0.1), sr)
    assert integrated_lufs(out, sr) == pytest.approx(-28.0, abs=0.05)
    assert _true_peak_db(out) <= -1.0 + 0.02
    loud = LoudnessNormalize(target_lufs=-3.0, ceiling_dbtp=-1.0)
    out = loud(noise, sr)
    assert _true_peak_db(out) <= -1.0 + 0.02 and loud.gain_db < -3.0 - integrated_lufs(noise, sr)
    silent = np.zeros((2, 1000), np.float32)
    assert not LoudnessNormalize()(silent, sr).any()
