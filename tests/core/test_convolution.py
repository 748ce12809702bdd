"""Block overlap-add convolution equals plain FFT convolution (blendfx.dsp.convolution)."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx import ParameterError
from blendfx.dsp.convolution import convolve, convolve_weighted
from scipy.signal import fftconvolve


@pytest.mark.parametrize("n, length, ir_channels", [(200_000, 9000, 2), (1000, 5000, 1),
                                                   (50_000, 1, 2), (300_000, 40_000, 1)])
def test_equals_fftconvolve(n, length, ir_channels):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, n)).astype(np.float32)
    h = rng.standard_normal((ir_channels, length)).astype(np.float32)
    got = convolve(x, h)
    want = fftconvolve(x.astype(np.float64), h.astype(np.float64), axes=-1)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max())


def test_bad_shapes_raise():
    with pytest.raises(ParameterError, match="channels"):
        convolve(np.zeros((2, 100)), np.zeros((3, 10)))


@pytest.mark.parametrize("n, length, n_out", [(200_000, 9000, 200_000), (3000, 5000, 7999)])
def test_weighted_equals_the_sum_of_weighted_convolutions(n, length, n_out):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, n)).astype(np.float32)
    w = rng.uniform(-1.0, 1.0, (3, n)).astype(np.float32)
    irs = [rng.standard_normal((c, length)).astype(np.float32) for c in (1, 2, 1)]
    got = convolve_weighted(x, w, irs, n_out)
    want = sum(fftconvolve((x * w[k]).astype(np.float64), irs[k].astype(np.float64), axes=-1)
               for k in range(3))[:, :n_out]
    assert got.shape == (2, n_out) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max())
    with pytest.raises(ParameterError, match="weights"):
        convolve_weighted(x, w[:2], irs, n_out)
