"""Shared analysis helpers: any audio -> Riffusion image, and a mel-image mask -> audio filter.

These glue the audio world (any rate, any channels) to the 44.1 kHz mono Riffusion image world
that masks, generators and the amplifier share.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .buffers import to_channels_first, to_mono
from .mask import Mask
from .spectrogram import SpectrogramConverter, SpectrogramParams
from .spectrogram_image import SpectrogramImage, image_from_mel

__all__ = ["resample", "riffusion_mel", "riffusion_image", "apply_mel_mask", "converter"]


@lru_cache(maxsize=4)
def converter(device: str = "cpu", params: SpectrogramParams | None = None) -> SpectrogramConverter:
    """A shared :class:`SpectrogramConverter` (building the filterbank once per process)."""
    return SpectrogramConverter(params, device=device)


def resample(audio: np.ndarray, sample_rate: float, target_rate: float) -> np.ndarray:
    """Resample ``(channels, samples)`` or 1-D float audio from one rate in Hz to another."""
    if float(sample_rate) == float(target_rate):
        return np.asarray(audio, dtype=np.float32)
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(float(target_rate) / float(sample_rate)).limit_denominator(1000)
    return resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def riffusion_mel(audio: np.ndarray, sample_rate: float, device: str = "cpu") -> np.ndarray:
    """Mel magnitudes ``(512, frames)`` of ``audio`` mixed to mono at 44.1 kHz (Riffusion)."""
    data, _ = to_channels_first(audio)
    mono = resample(to_mono(data), sample_rate, SpectrogramParams.sample_rate)
    return converter(device).mel_from_audio(mono)[0].cpu().numpy()


def riffusion_image(audio: np.ndarray, sample_rate: float, device: str = "cpu") -> SpectrogramImage:
    """The Riffusion 8-bit image of ``audio`` (any layout, any rate), 100 columns per second."""
    return image_from_mel(riffusion_mel(audio, sample_rate, device))


def apply_mel_mask(audio: np.ndarray, sample_rate: float, mask: Mask) -> np.ndarray:
    """Filter ``(channels, samples)`` audio by a mel-image mask (soft time-frequency gain).

    The mask's mel rows are spread onto linear STFT bins through the mel filterbank (each bin
    takes the filterbank-weighted mean of the mel rows covering it), its 10 ms columns onto STFT
    frames of the same hop; the STFT runs at the audio's own rate, so nothing is resampled.
    """
    import librosa

    data, _ = to_channels_first(audio)
    p = SpectrogramParams()
    hop = max(1, int(round(sample_rate / mask.frames_per_second)))
    n_fft = 4 * hop  # 40 ms window: fine enough in time for 10 ms mask columns
    mel_fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=p.num_frequencies,
                                 fmin=p.min_frequency, fmax=min(p.max_frequency, sample_rate / 2),
                                 htk=True, norm=None)
    weights = mel_fb / np.maximum(mel_fb.sum(axis=0, keepdims=True), 1e-12)
    bins_mask = weights.T @ mask.values[::-1]  # (bins, frames), rows flipped to low-first
    # Bins above the mel range (10 kHz) carry no mask information: treat as outside the core.
    spec = librosa.stft(data, n_fft=n_fft, hop_length=hop, center=True)
    frames = spec.shape[-1]
    m = bins_mask[:, :frames]
    if m.shape[1] < frames:
        m = np.pad(m, ((0, 0), (0, frames - m.shape[1])), mode="edge" if m.size else "constant")
    out = librosa.istft(spec * m[None], hop_length=hop, n_fft=n_fft, length=data.shape[1])
    return out.astype(np.float32)
