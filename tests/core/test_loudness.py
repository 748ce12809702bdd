"""Loudness (BS.1770-4 via pyloudnorm) and true peak (4x oversampling)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from blendfx.dsp.loudness import (
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
    # each block against scipy's 4x polyphase oversampling of the block with 64 samples of
    # context either side (an independent reference, not the same expression)
    for b in (0, peaks.size // 3, peaks.size // 2, peaks.size - 2):
        a, z = b * 441, min((b + 1) * 441, audio.shape[1])
        ctx = audio[:, max(a - 64, 0):z + 64]
        up = np.abs(resample_poly(ctx, 4, 1, axis=-1))
        lo = 4 * (a - max(a - 64, 0))
        ref = up[:, lo:lo + 4 * (z - a)].max()
        assert 20 * np.log10(peaks[b]) == pytest.approx(20 * np.log10(ref), abs=0.1)
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


def _every_position_true_peak(x):
    """The same 4x interpolator evaluated at every position, float64 (no pruning)."""
    from blendfx.dsp.loudness import oversampling_filter
    from numpy.lib.stride_tricks import sliding_window_view

    H, _ = oversampling_filter()
    k = H.shape[0]
    x = np.atleast_2d(np.asarray(x, np.float64))
    best = np.abs(x).max()
    for channel in x:
        windows = sliding_window_view(np.pad(channel, (k // 2 - 1, k // 2)), k)[:channel.size]
        best = max(best, np.abs(windows @ H).max())
    return best


def _adversarial_signals():
    rng = np.random.default_rng(3)
    n = 6000
    t = np.arange(n)
    alternating = (0.5 * (-1.0) ** t).astype(np.float32)
    alternating[n // 2:n // 2 + 7] *= -1  # sign flips in a near-Nyquist run: big overshoot
    worst = np.zeros(n, np.float32)  # the sequence that drives the half-sample branch to its bound
    worst[1000:1024] = 0.3 * np.sign(np.sinc(np.arange(24) - 11.5))
    edges = np.zeros((2, n), np.float32)  # overshoots right at both ends of the signal
    edges[0, :3] = [-1, 1, -1]
    edges[1, -5:] = [1, -1, 1, -1, 1]
    sparse = rng.standard_normal((2, n)).astype(np.float32) * (rng.random((2, n)) < 0.02)
    return {
        "alternating": alternating,
        "near_nyquist": (0.9 * np.cos(np.pi * 0.97 * t + 0.3)).astype(np.float32),
        "worst_case": worst,
        "edges": edges,
        "sparse_clicks": sparse,
        "white": (rng.standard_normal((2, n)) * 0.1).astype(np.float32),
        "short": np.array([[0.5, -0.9, 0.9]], np.float32),
    }


def test_pruned_true_peak_equals_every_position_on_music_and_adversarial_signals(music_clip):
    audio, _ = music_clip
    signals = {"music": audio, **_adversarial_signals()}
    overshoot = {}
    for name, x in signals.items():
        expected = _every_position_true_peak(x)
        n = np.atleast_2d(x).shape[1]
        assert frame_true_peaks(x, n)[0] == pytest.approx(expected, rel=1e-6), name
        per_block = frame_true_peaks(x, 441)  # the frame mode's blocks agree on the maximum
        assert per_block.max() == pytest.approx(expected, rel=1e-6), name
        overshoot[name] = expected / np.abs(x).max()
    # the adversarial cases do have large inter-sample peaks (so the pruning is really tested)
    assert overshoot["worst_case"] > 2.0 and overshoot["alternating"] > 2.0
    assert overshoot["near_nyquist"] > 1.1 and overshoot["edges"] > 1.2
