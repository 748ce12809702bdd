"""SSIM and chroma-CENS similarity (the mask-based diffusion paper's evaluation)."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx import ParameterError
from blendfx.effects.blend.similarity import chroma_cens_similarity, spectrogram_ssim, ssim
from scipy.ndimage import gaussian_filter

SR = 22050


def _images():
    rng = np.random.default_rng(0)
    a = gaussian_filter(rng.integers(0, 256, (512, 300)).astype(np.float64), 3)
    noisy = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    dimmer = np.clip(a * 0.5 + 60, 0, 255)
    return a, noisy, dimmer


def test_ssim_matches_scikit_image():
    """Reference values from scikit-image 0.26 ``structural_similarity(a, b, data_range=255,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` on the same arrays."""
    a, noisy, dimmer = _images()
    assert ssim(a, noisy) == pytest.approx(0.17250607048967587, abs=1e-9)
    assert ssim(a, dimmer) == pytest.approx(0.9687356604259846, abs=1e-9)


def test_ssim_properties():
    a, noisy, _ = _images()
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, noisy) == pytest.approx(ssim(noisy, a))
    rng = np.random.default_rng(1)
    scores = [ssim(a, np.clip(a + rng.normal(0, s, a.shape), 0, 255)) for s in (2, 8, 32)]
    assert scores[0] > scores[1] > scores[2]
    with pytest.raises(ParameterError, match="one shape"):
        ssim(a, a[:, :10])


def _chord(freqs, seconds=2.0, square=False):
    t = np.arange(int(seconds * SR)) / SR
    waves = [np.sign(np.sin(2 * np.pi * f * t)) if square else np.sin(2 * np.pi * f * t) for f in freqs]
    return (0.2 * sum(waves)).astype(np.float32)


@pytest.mark.filterwarnings("ignore:n_fft=.*too large:UserWarning")  # librosa CQT, low octaves
def test_chroma_cens_similarity():
    c_major = _chord((261.6, 329.6, 392.0))
    same_harmony = _chord((130.8, 329.6, 392.0 * 2), square=True)  # other voicing and timbre
    f_sharp = _chord((370.0, 466.2, 554.4))
    assert chroma_cens_similarity(c_major, c_major, SR) == pytest.approx(1.0)
    assert chroma_cens_similarity(c_major, same_harmony, SR) > 0.8
    assert chroma_cens_similarity(c_major, f_sharp, SR) < 0.5
    assert chroma_cens_similarity(c_major, np.zeros_like(c_major), SR) == 0.0


def test_spectrogram_ssim_of_audio():
    c_major = _chord((261.6, 329.6, 392.0))
    assert spectrogram_ssim(c_major, c_major, SR) == pytest.approx(1.0)
    assert spectrogram_ssim(c_major, _chord((370.0, 466.2, 554.4)), SR) < 0.9
