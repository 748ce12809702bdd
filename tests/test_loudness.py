"""Loudness (BS.1770-4 via pyloudnorm) and true peak (4x oversampling)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from blendfx.loudness import (
    frame_true_peaks,
    integrated_lufs,
    normalize_lufs,
    true_peak_ceiling,
    true_peak_dbtp,
)
from scipy.signal import resample_poly

SR = 44100


def _sine(freq, seconds=2.0, amp=1.0, phase=0.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def test_sine_loudness_matches_bs1770():
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LUFS
    assert integrated_lufs(_sine(997, amp=0.1), SR) == pytest.approx(-23.01, abs=0.05)
    stereo = np.stack([_sine(997, amp=0.1)] * 2)
    assert integrated_lufs(stereo, SR) == pytest.approx(-20.0, abs=0.05)


def test_silence_short_and_quiet_inputs_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert integrated_lufs(np.zeros(SR), SR) == float("-inf")
        assert integrated_lufs(np.zeros(0), SR) == float("-inf")
        assert integrated_lufs(_sine(997, amp=1e-5), SR) == float("-inf")  # under the -70 gate
        short = integrated_lufs(_sine(997, seconds=0.05, amp=0.1), SR)  # shorter than a block
        assert short == pytest.approx(-23.0, abs=0.3)
        assert isinstance(integrated_lufs(np.full(1, 0.5, np.float32), SR), float)  # one sample
        out, gain = normalize_lufs(np.zeros((2, 1000), np.float32), SR, -18.0)
    assert gain == 0.0 and not out.any()


def test_normalize_to_target():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 3 * SR)) * 0.02).astype(np.float32)
    out, gain = normalize_lufs(x, SR, -18.0)
    assert integrated_lufs(out, SR) == pytest.approx(-18.0, abs=0.01)
    assert gain == pytest.approx(-18.0 - integrated_lufs(x, SR), abs=1e-6)


def _reference_true_peak(x):
    return 20 * np.log10(np.abs(resample_poly(np.atleast_2d(x), 4, 1, axis=-1)).max())


def test_true_peak_sees_intersample_peaks():
    # a quarter-rate sine sampled at 45 degrees: samples reach 0.707, the waveform 1.0
    x = _sine(SR / 4, amp=1.0, phase=np.pi / 4)
    fade = np.sin(np.linspace(0, np.pi / 2, 400)) ** 2  # no abrupt edges (they overshoot)
    x[:400] *= fade
    x[-400:] *= fade[::-1]
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(x) == pytest.approx(0.0, abs=0.02)


def test_true_peak_matches_a_full_oversampling_on_real_music(music_clip):
    audio, _ = music_clip
    assert true_peak_dbtp(audio) == pytest.approx(_reference_true_peak(audio), abs=0.05)
    # per-block values: exact blocks match a direct oversampling of each block's neighbourhood
    peaks = frame_true_peaks(audio, 441)
    assert peaks.shape == (-(-audio.shape[1] // 441),)
    assert 20 * np.log10(peaks.max()) == pytest.approx(true_peak_dbtp(audio), abs=1e-4)
    sample_peaks = np.pad(np.abs(audio).max(axis=0), (0, peaks.size * 441 - audio.shape[1]))
    assert np.all(peaks >= sample_peaks.reshape(-1, 441).max(axis=1) - 1e-7)


def test_lazy_blocks_are_upper_bounds(music_clip):
    audio, _ = music_clip
    exact = frame_true_peaks(audio, 441)
    rng = np.random.default_rng(1)
    pick = rng.random(exact.size) < 0.3
    lazy = frame_true_peaks(audio, 441, blocks=pick)
    np.testing.assert_allclose(lazy[pick], exact[pick], rtol=1e-6)
    assert np.all(lazy[~pick] >= exact[~pick] * (1 - 1e-6))


def test_true_peak_ceiling(music_clip):
    audio, _ = music_clip
    loud = audio * np.float32(3.0)
    out, trim = true_peak_ceiling(loud, -1.0)
    assert trim < 0
    assert _reference_true_peak(out) <= -1.0 + 0.01
    same, none = true_peak_ceiling(audio * np.float32(0.1), -1.0)
    assert none == 0.0
