"""Synthetic impulse responses (blendfx.effects.stylizer.impulse) decay as asked, band by band."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx import ParameterError
from blendfx.effects.stylizer.impulse import band_weights, synthetic_ir
from blendfx.effects.stylizer.reverb_analysis import octave_centers, schroeder_rt60

SR = 44100
CENTERS = octave_centers(SR)


def test_band_weights_sum_to_one():
    freqs = np.linspace(0, SR / 2, 5000)
    w = band_weights(freqs, CENTERS)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-12)
    assert (w >= 0).all()
    # each band is full at its own centre
    for i, c in enumerate(CENTERS):
        assert band_weights(np.array([c]), CENTERS)[i, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("rt", [0.3, 1.0, 2.0])
def test_uniform_rt60(rt):
    ir = synthetic_ir(np.full(CENTERS.size, rt), CENTERS, SR, seed=0)
    measured = schroeder_rt60(ir, SR)
    np.testing.assert_allclose(measured[CENTERS >= 250], rt, rtol=0.1)


def test_rt60_per_band():
    rt = np.array([1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.5])[: CENTERS.size]
    measured = schroeder_rt60(synthetic_ir(rt, CENTERS, SR, seed=4), SR)
    np.testing.assert_allclose(measured[1:], rt[1:], rtol=0.15)


def test_drr_channels_and_seed():
    rt = np.full(CENTERS.size, 0.8)
    ir = synthetic_ir(rt, CENTERS, SR, drr_db=6.0, channels=2, seed=9)
    assert ir.shape == (2, int(0.8 * SR)) and ir.dtype == np.float32
    np.testing.assert_array_equal(ir[:, 0], 1.0)
    tail_energy = (ir[:, 1:].astype(np.float64) ** 2).sum(axis=1)
    np.testing.assert_allclose(10 * np.log10(tail_energy), -6.0, atol=0.01)
    # decorrelated channels, reproducible draws
    assert abs(np.corrcoef(ir[0, 1:], ir[1, 1:])[0, 1]) < 0.1
    np.testing.assert_array_equal(ir, synthetic_ir(rt, CENTERS, SR, drr_db=6.0, channels=2, seed=9))
    assert not np.array_equal(ir, synthetic_ir(rt, CENTERS, SR, drr_db=6.0, channels=2, seed=10))


def test_predelay_and_length():
    ir = synthetic_ir(np.full(CENTERS.size, 0.5), CENTERS, SR, predelay_s=0.02, length_s=0.3)
    assert ir.shape[-1] == int(0.3 * SR)
    assert np.all(ir[0, 1: int(0.02 * SR)] == 0)


def test_bad_input_raises():
    with pytest.raises(ParameterError, match="rt60_s"):
        synthetic_ir(np.array([1.0, -1.0]), np.array([500.0, 1000.0]), SR)
    with pytest.raises(ParameterError, match="same length"):
        synthetic_ir(np.array([1.0]), np.array([500.0, 1000.0]), SR)
