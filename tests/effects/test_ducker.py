"""The Ducker's envelope and gain, against the direct (logarithmic) formulation."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx.effects import Ducker
from scipy.signal import lfilter

SR = 44100


def reference_ducker(audio, key, sr, threshold_db, depth_db, ratio, attack_ms, release_ms,
                     block=None):
    """The first implementation: peak detector as a running maximum in the log domain, the gain
    from the level in dB. ``block``: processed in blocks with carried state."""
    n = audio.shape[1]
    block = block or n
    peak_state, smooth_state, out = 0.0, np.zeros(1), []
    for s in range(0, n, block):
        x, k = audio[:, s:s + block], np.abs(key[:, s:s + block]).max(axis=0).astype(np.float64)
        log_r = -1.0 / (release_ms * 1e-3 * sr)
        idx = np.arange(1, k.size + 1, dtype=np.float64)
        with np.errstate(divide="ignore"):
            logs = np.log(k) - idx * log_r
        start = np.log(peak_state) if peak_state > 0 else -np.inf
        running = np.maximum.accumulate(np.concatenate([[start], logs]))[1:]
        peak = np.exp(running + idx * log_r)
        peak_state = float(peak[-1])
        a = np.exp(-1.0 / (attack_ms * 1e-3 * sr))
        env, smooth_state = lfilter([1.0 - a], [1.0, -a], peak, zi=smooth_state * a)
        smooth_state = smooth_state / a
        level_db = 20.0 * np.log10(np.maximum(env, 1e-9))
        reduction = np.clip((level_db - threshold_db) * ratio, 0.0, depth_db)
        out.append(x * (10.0 ** (-reduction / 20.0)).astype(np.float32)[None, :])
    return np.concatenate(out, axis=1)


def _signals(seconds=3.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    music = (0.3 * rng.standard_normal((2, n))).astype(np.float32)
    # a key with bursts, silences and decays: every branch of the detector is exercised
    bursts = (np.sin(2 * np.pi * 1.3 * t) > 0.2) * np.exp(-((t * 4) % 1) * 6)
    key = (bursts * 0.8 * rng.standard_normal(n)).astype(np.float32)[None, :]
    key[:, n // 3:n // 3 + SR // 2] = 0.0
    return music, key


@pytest.mark.parametrize("params", [
    dict(threshold_db=-24.0, depth_db=6.0, ratio_db_per_db=1.0, attack_ms=10.0, release_ms=250.0),
    dict(threshold_db=-40.0, depth_db=30.0, ratio_db_per_db=2.5, attack_ms=0.5, release_ms=1.0),
    dict(threshold_db=-10.0, depth_db=60.0, ratio_db_per_db=0.3, attack_ms=200.0,
         release_ms=5000.0),
])
@pytest.mark.parametrize("block", [None, 4410, 1000])
def test_ducker_equals_the_log_domain_formulation(params, block):
    music, key = _signals()
    duck = Ducker(**params)
    if block is None:
        got = duck.process(music, SR, sidechain=key)
    else:
        got = np.concatenate([duck.process(music[:, s:s + block], SR, reset=(s == 0),
                                           sidechain=key[:, s:s + block])
                              for s in range(0, music.shape[1], block)], axis=1)
    want = reference_ducker(music, key, SR, params["threshold_db"], params["depth_db"],
                            params["ratio_db_per_db"], params["attack_ms"], params["release_ms"],
                            block)
    # the same function: equal up to float32 rounding of the gain (a few ulp)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)
    gain = got / np.where(music == 0, 1, music)
    assert gain.min() >= 10 ** (-params["depth_db"] / 20) * (1 - 1e-6)
    assert gain.max() <= 1.0 + 1e-6
    assert gain.min() < 0.99  # it ducked


def test_ducker_silent_key_leaves_the_input():
    music, _ = _signals(1.0)
    out = Ducker(threshold_db=-30.0)(music, SR, sidechain=np.zeros((1, music.shape[1]), np.float32))
    np.testing.assert_array_equal(out, music)


def test_near_silent_key_gives_unity_without_overflow_warning():
    """Issue 23: ``RuntimeWarning: overflow encountered in power`` for a near-silent key."""
    import warnings

    x = np.full((2, 4410), 0.25, np.float32)
    key = np.full((1, 4410), 1e-38, np.float32)  # (1e-38 / threshold) ** -10 > 1e308
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Ducker(ratio_db_per_db=10.0)(x, 44100, sidechain=key)
    np.testing.assert_array_equal(out, x)
