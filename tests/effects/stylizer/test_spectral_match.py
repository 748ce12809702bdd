"""Long-term spectra, the matching EQ and the spectral distance (blendfx.effects.stylizer.spectral_match)."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx.effects.stylizer.spectral_match import (
    apply_eq,
    ltas,
    ltas_distance_db,
    matching_eq_db,
    smooth_octaves,
)
from scipy.signal import lfilter, welch

SR = 44100


def coloured(seconds: float, pole: float, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(int(seconds * SR))
    return lfilter([1.0], [1.0, -pole], x).astype(np.float32)


def test_ltas_equals_welch():
    x = np.stack([coloured(2.0, 0.9, 0), coloured(2.0, -0.5, 1)])
    freqs, psd = ltas(x, SR)
    f2, p2 = welch(x.astype(np.float64), fs=SR, nperseg=4096, axis=-1, detrend=False)
    np.testing.assert_allclose(freqs, f2)
    np.testing.assert_allclose(psd[1:-1], p2.mean(axis=0)[1:-1], rtol=1e-4)


def test_smooth_octaves_keeps_flat_spectra_flat():
    freqs = np.linspace(0, SR / 2, 2049)
    np.testing.assert_allclose(smooth_octaves(freqs, np.full(freqs.size, 3.0)), 3.0)


def test_matching_eq_is_bounded_power_preserving_and_works():
    src, tgt = coloured(4.0, 0.0, 0), coloured(4.0, 0.95, 1)  # white towards strongly red
    freqs, p_src = ltas(src, SR)
    _, p_tgt = ltas(tgt, SR)
    gains = matching_eq_db(freqs, p_src, p_tgt, max_db=12.0)
    assert gains.max() <= 12.0 + 1e-9 and gains.min() >= -12.0 - 1e-9
    assert gains[np.searchsorted(freqs, 200)] > gains[np.searchsorted(freqs, 8000)] + 10
    out = apply_eq(src[None], SR, freqs, gains)
    # power kept within a dB, spectrum much closer to the target's
    gain_db = 10 * np.log10(np.mean(out.astype(np.float64) ** 2) / np.mean(src.astype(np.float64) ** 2))
    assert gain_db == pytest.approx(0.0, abs=1.0)
    before, after = ltas_distance_db(src, tgt, SR), ltas_distance_db(out, tgt, SR)
    assert after < before / 3


def test_apply_eq_is_zero_phase():
    x = np.zeros((1, 8192), dtype=np.float32)
    x[0, 4096] = 1.0
    freqs = np.linspace(0, SR / 2, 100)
    gains = np.where(freqs < 1000, 6.0, -6.0)
    y = apply_eq(x, SR, freqs, gains)
    assert int(np.argmax(np.abs(y[0]))) == 4096
    np.testing.assert_allclose(y[0, 4096 - 50: 4096], y[0, 4097: 4097 + 50][::-1], atol=1e-6)


def test_ltas_distance_ignores_level_only():
    x = coloured(2.0, 0.5, 3)
    assert ltas_distance_db(x, 0.1 * x, SR) < 1e-6
    assert ltas_distance_db(x, coloured(2.0, 0.5, 4), SR) < 1.0
    assert ltas_distance_db(x, coloured(2.0, 0.99, 4), SR) > 5.0
