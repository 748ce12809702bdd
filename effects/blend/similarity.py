"""How much of an input a generated piece keeps: the mask-based diffusion paper's two measures.

- :func:`ssim`: structural similarity (Wang et al. 2004) between two spectrogram images, with
  the usual Gaussian window (sigma 1.5 pixels, 11 taps), K1 = 0.01, K2 = 0.03, data range 255,
  averaged away from a 5-pixel border (scikit-image's ``structural_similarity`` with
  ``gaussian_weights=True, use_sample_covariance=False``). 1 = identical.
- :func:`chroma_cens_similarity`: cosine similarity of the two signals' librosa
  ``chroma_cens`` matrices (harmonic content, robust to timbre and dynamics). 1 = same
  pitch classes over time.
- :func:`spectrogram_ssim`: SSIM of two signals' Riffusion images (each scaled to its own maximum,
  as the images the paper compares).

Weight-free and offline (DESIGN.md section 12).
"""

from __future__ import annotations

import numpy as np
from blendfx.buffers import to_channels_first, to_mono
from blendfx.errors import ParameterError
from blendfx.spectral.spectrogram_image import SpectrogramImage
from scipy.ndimage import gaussian_filter

__all__ = ["ssim", "spectrogram_ssim", "chroma_cens_similarity"]


def _pixels(image: SpectrogramImage | np.ndarray, name: str) -> np.ndarray:
    arr = image.pixels if isinstance(image, SpectrogramImage) else np.asarray(image)
    if arr.ndim != 2 or arr.size == 0:
        raise ParameterError(f"{name} must be a non-empty 2-D image, got shape {arr.shape}")
    return arr.astype(np.float64)


def ssim(a: SpectrogramImage | np.ndarray, b: SpectrogramImage | np.ndarray, *,
         data_range: float = 255.0, sigma: float = 1.5) -> float:
    """Mean structural similarity of two images of the same shape (dimensionless, <= 1).

    Parameters
    ----------
    a, b : SpectrogramImage or np.ndarray
        ``(rows, columns)`` images (8-bit values for the default ``data_range``).
    data_range : float
        Span of the pixel values (255 for 8-bit images).
    sigma : float
        Gaussian window width in pixels.
    """

    x, y = _pixels(a, "a"), _pixels(b, "b")
    if x.shape != y.shape:
        raise ParameterError(f"ssim needs images of one shape, got {x.shape} and {y.shape}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return gaussian_filter(z, sigma, truncate=3.5, mode="reflect")

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = int(3.5 * sigma + 0.5)
    if s.shape[0] > 2 * pad and s.shape[1] > 2 * pad:
        s = s[pad:-pad, pad:-pad]
    return float(s.mean())


def spectrogram_ssim(audio_a: np.ndarray, audio_b: np.ndarray, sample_rate: float) -> float:
    """SSIM of two signals' Riffusion spectrogram images (cropped to the shorter one)."""

    # audio is analysed by Riffusion's torch STFT: torch loads only for this input type
    from blendfx.spectral.spectrogram import riffusion_image

    ia = riffusion_image(audio_a, sample_rate).pixels
    ib = riffusion_image(audio_b, sample_rate).pixels
    n = min(ia.shape[1], ib.shape[1])
    if n == 0:
        raise ParameterError("spectrogram_ssim needs at least 10 ms of audio in both signals")
    return ssim(ia[:, :n], ib[:, :n])


def chroma_cens_similarity(audio_a: np.ndarray, audio_b: np.ndarray, sample_rate: float) -> float:
    """Cosine similarity of the librosa ``chroma_cens`` of two signals (mixed to mono).

    The two ``(12, frames)`` matrices are cropped to the shorter one and compared as flat
    vectors; CENS frames are unit-norm, so this is the mean frame-wise cosine. Silence has no
    chroma: 0.0 when either matrix is all zero.
    """

    def chroma(audio: np.ndarray) -> np.ndarray:
        data, _ = to_channels_first(audio)
        mono = to_mono(data).astype(np.float32)
        if mono.size == 0:
            raise ParameterError("chroma_cens_similarity needs non-empty audio")
        import librosa  # heavy (numba); only this measure needs it

        return librosa.feature.chroma_cens(y=mono, sr=float(sample_rate))

    if not (np.any(audio_a) and np.any(audio_b)):
        return 0.0  # silence has no chroma (and librosa cannot estimate its tuning)
    ca, cb = chroma(audio_a), chroma(audio_b)
    n = min(ca.shape[1], cb.shape[1])
    va, vb = ca[:, :n].ravel(), cb[:, :n].ravel()
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb / norm) if norm > 0 else 0.0
