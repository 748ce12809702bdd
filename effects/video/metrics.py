"""PixMus's low-level music metrics: spectral centroid, spectral contrast and chroma errors of
a generated track against a reference (PixMus, section 5.3.3: MAE and RMSE per feature over the
track, lower is better).

Features come from librosa on the mono mix, on the same frames for both tracks (2048-sample
windows, 512 hop), normalised so the errors compare across sample rates and levels:

- spectral centroid: Hz over the Nyquist frequency (0..1);
- spectral contrast: librosa's 7 bands (dB) over 100 dB;
- chroma: librosa's ``chroma_stft`` (each frame's largest pitch class is 1).

The thesis does not state its normalisation; these are ours, so compare numbers made by
these functions only.
"""

from __future__ import annotations

import librosa
import numpy as np
from blendfx.errors import ParameterError

__all__ = ["low_level_features", "low_level_errors"]

N_FFT, HOP = 2048, 512


def _mono(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=0 if a.shape[0] <= a.shape[1] else 1)
    return a


def low_level_features(audio: np.ndarray, sample_rate: float) -> dict[str, np.ndarray]:
    """The three features per frame: ``centroid`` (frames,), ``contrast`` (7, frames) and
    ``chroma`` (12, frames), normalised as the module docstring says."""
    y = _mono(audio)
    sr = float(sample_rate)
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    s = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    centroid = librosa.feature.spectral_centroid(S=s, sr=sr)[0] / (sr / 2.0)
    contrast = librosa.feature.spectral_contrast(S=s, sr=sr) / 100.0
    chroma = librosa.feature.chroma_stft(S=s ** 2, sr=sr)
    return {"centroid": centroid, "contrast": contrast, "chroma": chroma}


def low_level_errors(audio: np.ndarray, reference: np.ndarray, sample_rate: float) -> dict[str, float]:
    """MAE and RMSE of each feature of ``audio`` against ``reference`` (same rate), over their
    common length: keys ``centroid_mae``, ``centroid_rmse``, ``contrast_mae``, ...

    Raises
    ------
    ParameterError
        Empty ``audio`` or ``reference``, a sample rate that is not a positive number (Hz), or
        a value that is not finite (a ``ValueError``).
    """
    a, r = _mono(audio), _mono(reference)
    for name, x in (("audio", a), ("reference", r)):
        if x.size == 0:
            raise ParameterError(f"low_level_errors: {name} is empty")
        if not np.isfinite(x).all():
            raise ParameterError(f"low_level_errors: {name} holds NaN or infinite samples")
    if not (np.isfinite(sample_rate) and sample_rate > 0):
        raise ParameterError(f"low_level_errors: sample_rate = {sample_rate!r} must be a positive "
                             f"number of Hz")
    n = min(a.size, r.size)
    fa = low_level_features(a[:n], sample_rate)
    fr = low_level_features(r[:n], sample_rate)
    out = {}
    for name in ("centroid", "contrast", "chroma"):
        d = fa[name] - fr[name]
        out[f"{name}_mae"] = float(np.mean(np.abs(d)))
        out[f"{name}_rmse"] = float(np.sqrt(np.mean(d ** 2)))
    return out
