"""Mel magnitudes <-> 8-bit spectrogram images, exactly as Riffusion does it.

Forward (riffusion ``image_from_spectrogram``): divide by the maximum, raise to
``power`` (0.25), scale to 0..255, invert (loud is dark), truncate to uint8, flip so that low
frequencies are at the bottom; a mono image is an L image copied to RGB.

Riffusion writes the maximum to EXIF tag 11080 but its inverse ignores it and assumes 30e6:
:class:`SpectrogramImage` keeps the true maximum beside the pixels, so the round trip is exact
up to the 8-bit quantization.

Coordinates: ``pixels[row, col]`` with row 0 at the top (highest mel bin) and one column per
10 ms frame. :func:`mel_row` gives the image row of a frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from blendfx.dsp.melscale import mel_frequencies
from blendfx.errors import ParameterError
from PIL import Image

from .params import SpectrogramParams

__all__ = ["SpectrogramImage", "image_from_mel", "mel_from_image", "mel_row",
           "EXIF_MAX_VALUE_TAG", "RIFFUSION_MAX_VALUE"]

#: EXIF tag where Riffusion stores the spectrogram's maximum.
EXIF_MAX_VALUE_TAG = 11080
#: The maximum Riffusion's inverse assumes when it has none (int16-scaled audio).
RIFFUSION_MAX_VALUE = 30e6


@dataclass
class SpectrogramImage:
    """An 8-bit Riffusion spectrogram image and the true maximum it was scaled by.

    Attributes
    ----------
    pixels : np.ndarray
        ``(mels, frames)`` uint8, 0 = loudest, low frequencies at the bottom row.
    max_value : float
        The mel magnitude that maps to pixel 0.
    power : float
        The power curve used (0.25).
    """

    pixels: np.ndarray
    max_value: float
    power: float = 0.25

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape  # type: ignore[return-value]

    def to_pil(self):
        """An RGB PIL image (mono L copied to RGB), with the maximum in EXIF tag 11080."""

        img = Image.fromarray(self.pixels, mode="L").convert("RGB")
        exif = img.getexif()
        exif[EXIF_MAX_VALUE_TAG] = float(self.max_value)
        return img

    @classmethod
    def from_pil(cls, image, max_value: float | None = None,
                 power: float = 0.25) -> SpectrogramImage:
        """Read the first channel of a PIL image; ``max_value`` from the argument, else EXIF,
        else Riffusion's assumed 30e6."""
        if max_value is None:
            max_value = float(image.getexif().get(EXIF_MAX_VALUE_TAG, RIFFUSION_MAX_VALUE))
        arr = np.asarray(image.convert("RGB"))[:, :, 0].copy()
        return cls(arr, float(max_value), power)

    def to_mel(self) -> np.ndarray:
        """Mel magnitudes ``(mels, frames)`` float32 (see :func:`mel_from_image`)."""
        return mel_from_image(self)


def image_from_mel(mel: np.ndarray, power: float = 0.25,
                   max_value: float | None = None) -> SpectrogramImage:
    """Riffusion's 8-bit image of mel magnitudes ``(mels, frames)``.

    ``max_value`` defaults to the array's maximum (Riffusion's behaviour); pass one to scale
    several windows of the same sound alike.
    """
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2:
        raise ParameterError(f"mel must be (mels, frames), got shape {mel.shape}")
    if mel.size == 0:
        return SpectrogramImage(np.zeros(mel.shape, np.uint8), 1.0, power)
    peak = float(mel.max()) if max_value is None else float(max_value)
    if not peak > 0:
        # silence: every pixel is "quiet" (255); keep a positive max so the inverse is defined
        return SpectrogramImage(np.full(mel.shape, 255, np.uint8), 1.0, power)
    # the same float32 operations as Riffusion's, in place (one buffer instead of five)
    data = np.divide(mel, peak)
    np.clip(data, 0.0, 1.0, out=data)
    if power > 0 and data.size - np.count_nonzero(data) > data.size // 16:
        # numpy's float32 power is ~25x slower on zeros (digital silence, zero padding) than on
        # other values: leave them, 0 ** power is 0 (the same pixels, bit for bit)
        np.power(data, power, out=data, where=data > 0)
    else:
        np.power(data, power, out=data)
    data *= 255
    np.subtract(255, data, out=data)
    pixels = data[::-1].astype(np.uint8)  # truncation and flip, as Riffusion
    return SpectrogramImage(pixels, peak, power)


def mel_from_image(image: SpectrogramImage) -> np.ndarray:
    """Mel magnitudes ``(mels, frames)`` float32 from an image (Riffusion's inverse)."""
    data = image.pixels[::-1].astype(np.float32)
    data = (255 - data) / 255
    data = np.power(data, 1 / image.power)
    return data * np.float32(image.max_value)


def mel_row(frequency_hz: float, params: SpectrogramParams | None = None) -> int:
    """Image row (0 = top) of the mel bin whose triangle peaks closest to ``frequency_hz``."""

    p = params or SpectrogramParams()
    centers = mel_frequencies(p.num_frequencies + 2, fmin=p.min_frequency,
                                      fmax=p.max_frequency, htk=p.mel_scale_type == "htk")[1:-1]
    mel_bin = int(np.argmin(np.abs(centers - frequency_hz)))
    return p.num_frequencies - 1 - mel_bin
