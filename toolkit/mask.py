"""Masks over Riffusion spectrogram images: which pixels of a noise matter.

A :class:`Mask` is a ``(mels, frames)`` float array in [0, 1] in image coordinates (row 0 at the
top = highest mel bin; one column per 10 ms), 1 where the noise's energy core is. BNMusic keeps
the loudest 10 to 20 % of pixels (image value 0..255, lower = louder) and enlarges the mask
slightly for the inpainting pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

__all__ = ["Mask", "energy_mask", "enlarge_mask"]


@dataclass
class Mask:
    """A spectro-temporal mask in Riffusion image coordinates.

    Attributes
    ----------
    values : np.ndarray
        ``(mels, frames)`` float32 in [0, 1]; 1 = part of the core.
    frames_per_second : float
        Columns per second (100 for Riffusion's 10 ms hop).
    """

    values: np.ndarray
    frames_per_second: float = 100.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    @property
    def coverage(self) -> float:
        """Fraction of the image the mask covers (soft values counted as weights)."""
        return float(self.values.mean()) if self.values.size else 0.0

    def binary(self, threshold: float = 0.5) -> np.ndarray:
        """Boolean version of the mask."""
        return self.values >= threshold

    def columns(self) -> np.ndarray:
        """Per-frame coverage ``(frames,)``: how much of each 10 ms column the mask holds."""
        return self.values.mean(axis=0)

    def rows(self) -> np.ndarray:
        """Per-mel-row coverage ``(mels,)`` (row 0 = top = highest frequency)."""
        return self.values.mean(axis=1)

    def inverted(self) -> Mask:
        return Mask(1.0 - self.values, self.frames_per_second)


def energy_mask(pixels: np.ndarray, fraction: float = 0.15) -> np.ndarray:
    """Boolean mask of the loudest ``fraction`` of pixels of an 8-bit spectrogram image.

    Lower pixel values are louder (Riffusion's inversion). Pure silence (every pixel 255) gives
    an empty mask.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ParameterError(f"fraction = {fraction} is out of range [0, 1]")
    pixels = np.asarray(pixels)
    if pixels.size == 0 or fraction == 0.0:
        return np.zeros(pixels.shape, bool)
    threshold = np.quantile(pixels, fraction, method="lower")
    mask = pixels <= threshold
    mask &= pixels < 255  # silence is never "loud"
    if mask.mean() > fraction:
        # ties at the threshold: keep strictly louder pixels plus the quietest-first tie-break
        strict = pixels < threshold
        room = int(round(fraction * pixels.size)) - int(strict.sum())
        ties = np.flatnonzero((pixels == threshold).ravel())[: max(room, 0)]
        mask = strict.copy()
        mask.ravel()[ties] = True
        mask &= pixels < 255
    return mask


def enlarge_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean mask by ``pixels`` in every direction (binary dilation)."""
    if pixels <= 0:
        return mask
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, iterations=int(pixels))
