"""BNMusic's objective: the exact sort-based solver against gradient descent and brute force."""

from __future__ import annotations

import blendfx
import numpy as np
import pytest
from blendfx.buffers import fit_length
from blendfx.effects import AdaptiveAmplifier
from blendfx.effects.amplifier.gain_solver import (
    bnmusic_objective,
    gradient_descent_gain,
    optimal_frame_gains,
    optimal_gain,
    smooth_gains,
    weighted_quantile,
)

from ...conftest import shared


def _instance(rng):
    shape = (int(rng.integers(4, 48)), int(rng.integers(1, 24)))
    scale_s, scale_t = 10 ** rng.uniform(-3, 3, size=2)
    S = rng.gamma(0.5, 1.0, shape) * scale_s
    T = rng.gamma(0.5, 1.0, shape) * scale_t
    M = (rng.random(shape) < rng.uniform(0.05, 0.5)).astype(np.float64)
    if rng.random() < 0.3:
        M *= rng.random(shape)  # soft masks too
    if rng.random() < 0.2:
        S[rng.random(shape) < 0.3] = 0.0  # silent bins
    return S, T, M, float(rng.uniform(0.01, 0.6))


def test_exact_beats_gradient_descent_on_200_random_instances():
    rng = np.random.default_rng(2024)
    gaps = []
    for _ in range(200):
        S, T, M, alpha = _instance(rng)
        exact = bnmusic_objective(optimal_gain(S, T, M, alpha), S, T, M, alpha)
        descent = bnmusic_objective(gradient_descent_gain(S, T, M, alpha, steps=150), S, T, M, alpha)
        assert exact <= descent * (1 + 1e-12) + 1e-12
        # and no gain on a dense log grid does better either
        grid = np.concatenate([[0.0], np.geomspace(1e-7, 1e7, 200)])
        brute = min(bnmusic_objective(g, S, T, M, alpha) for g in grid)
        assert exact <= brute * (1 + 1e-12) + 1e-12
        gaps.append(descent / max(exact, 1e-300))
    assert np.median(gaps) >= 1.0


@pytest.mark.parametrize("clip", [("clock_tick", "1-21934-A.ogg"), ("chainsaw", "1-19898-A.ogg"),
                                  ("rain", "1-17367-A.ogg")])
def test_exact_beats_gradient_descent_on_real_clips(clip, music_clip):
    noise, sr = blendfx.read_audio(shared("noise", "esc10", *clip))
    music, _ = music_clip
    noise = fit_length(noise, music.shape[1])
    amp = AdaptiveAmplifier()
    S, T, M, _ = amp.analyze(music, noise, sr)
    S, T, M = (a.astype(np.float64) for a in (S, T, M))
    exact_gain = optimal_gain(S, T, M, 0.14)
    descent_gain = gradient_descent_gain(S, T, M, 0.14, steps=200)
    exact = bnmusic_objective(exact_gain, S, T, M, 0.14)
    descent = bnmusic_objective(descent_gain, S, T, M, 0.14)
    assert exact <= descent * (1 + 1e-12)
    if exact_gain > 0:
        assert descent_gain == pytest.approx(exact_gain, rel=0.05)
    else:  # too little music in the core to pay for any gain: descent heads for 0 too
        assert descent_gain < 0.05


def test_frame_gains_are_the_columnwise_optimum():
    rng = np.random.default_rng(7)
    for _ in range(30):
        S, T, M, alpha = _instance(rng)
        frames = optimal_frame_gains(S, T, M, alpha)
        for t in range(S.shape[1]):
            col = (S[:, t:t + 1], T[:, t:t + 1], M[:, t:t + 1])
            assert frames[t] == pytest.approx(optimal_gain(*col, alpha), rel=1e-12, abs=0)
        assert bnmusic_objective(frames, S, T, M, alpha) <= bnmusic_objective(
            optimal_gain(S, T, M, alpha), S, T, M, alpha) * (1 + 1e-12)


def test_degenerate_cases():
    z = np.zeros((4, 3))
    ones = np.ones((4, 3))
    assert optimal_gain(z, ones, ones) == 0.0  # silent music
    assert optimal_gain(ones, z, ones) == 0.0  # silent noise
    assert optimal_gain(ones, ones, z) == 0.0  # empty mask
    assert np.all(optimal_frame_gains(ones, z, ones) == 0.0)
    assert gradient_descent_gain(z, ones, ones) == 0.0
    # music entirely in the core, alpha small: the gain that reaches the threshold
    assert optimal_gain(ones, 3 * ones, ones, alpha=0.1) == pytest.approx(3.0)


def test_raising_smr_never_lowers_the_gain(music_clip):
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "dog_bark", "1-30226-A.ogg"))
    music, _ = music_clip
    noise = fit_length(noise, music.shape[1])
    amp = AdaptiveAmplifier(max_gain_db=60.0, ceiling_dbtp=0.0)
    S, T0, M, _ = amp.analyze(music, noise, sr)
    gains = [optimal_gain(S, T0 * np.float32(10 ** ((smr - 21) / 20)), M) for smr in range(0, 41, 4)]
    assert np.all(np.diff(gains) >= 0) and gains[-1] > gains[0]
    # the threshold scales the optimum exactly (the weights do not depend on T)
    assert gains[-1] / gains[0] == pytest.approx(10 ** (40 / 20), rel=1e-3)
    # and so does the effect, below its ceilings
    applied = []
    for smr in (6.0, 12.0, 18.0):
        amp.smr_db = smr
        amp(music * np.float32(0.05), sr, sidechain=noise)
        applied.append(amp.gain_db)
    assert applied[0] <= applied[1] <= applied[2]


def test_weighted_quantile():
    assert weighted_quantile([3, 1, 2], [1, 1, 1], 0.5) == 2
    assert weighted_quantile([1, 2, 3], [1, 0, 10], 0.5) == 3
    assert weighted_quantile([1, np.inf], [1, 3], 0.5) == np.inf
    assert np.isnan(weighted_quantile([1.0], [0.0], 0.5))


def test_smoothing_holds_attacks_early_and_releases_slowly():
    wanted = np.zeros(200)
    wanted[100:110] = 1.0
    g = smooth_gains(wanted, 100.0, attack_ms=20.0, release_ms=100.0)
    assert np.all(g >= wanted)
    db = 20 * np.log10(g)
    # 8.7 dB per time constant: 2 frames per 20 ms attack, 10 frames per 100 ms release
    assert db[98] == pytest.approx(-8.69, abs=0.01)
    assert db[119] == pytest.approx(-8.69, abs=0.01)
    assert db[60] < -100 and db[190] < -60


def _sorted_reference_gain(S, T, M, alpha):
    """The plain algorithm: every live core bin sorted by ratio, descending, one cumulative sum."""
    S, T, M = (np.asarray(a, np.float64).ravel() for a in (S, T, M))
    live = (M > 0) & (S > 0) & (T > 0)
    ratio, weight = T[live] / S[live], (M * S)[live]
    order = np.argsort(-ratio, kind="stable")
    above = np.cumsum(weight[order])
    j = int(np.searchsorted(above, alpha * S.sum(), side="right"))
    return float(ratio[order[j]]) if j < ratio.size else 0.0


def test_selection_shortcuts_give_the_full_sorts_answer():
    # large float32 problems whose optimum lies low, high, at 0 or nowhere: the partial sorts
    # (lowest quarter, top eighth), the no-sort zero and the full sort must all agree with the
    # plain algorithm, and the hard-core preparation with the general one
    from blendfx.effects.amplifier.gain_solver import GainProblem

    rng = np.random.default_rng(11)
    for trial in range(60):
        n = int(rng.integers(2000, 40000))
        S = (rng.random((4, n // 4)) ** rng.uniform(1, 6) * rng.uniform(1e-3, 10)).astype(np.float32)
        T = (rng.random(S.shape) ** rng.uniform(1, 6) * rng.uniform(1e-3, 10)).astype(np.float32)
        if trial % 4 == 0:  # ties
            S, T = np.round(S * 20 + 1) / 20, np.round(T * 20) / 20
        M = (rng.random(S.shape) < rng.uniform(0.05, 1)).astype(np.float32)
        alpha = float(rng.uniform(0, 1.5))
        expected = _sorted_reference_gain(S, T, M, alpha)
        # float32 ratios in the solver, float64 in the reference: the same bin wins
        assert optimal_gain(S, T, M, alpha) == pytest.approx(expected, rel=1e-6, abs=0), trial
        idx = np.flatnonzero(M > 0)
        core = GainProblem.on_core(S, T.ravel()[idx], idx, alpha)
        assert core.optimal_gain() == optimal_gain(S, T, M, alpha)
        for gain in (0.0, 0.5, expected):
            assert core.value(gain) == bnmusic_objective(gain, S, T, M, alpha)
