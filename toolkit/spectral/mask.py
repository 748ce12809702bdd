"""Masks over Riffusion spectrogram images: which pixels of a noise matter.

A :class:`Mask` is a ``(mels, frames)`` float array in [0, 1] in image coordinates (row 0 at the
top = highest mel bin; one column per 10 ms), 1 where the noise's energy core is. BNMusic keeps
the loudest 10 to 20 % of pixels (image value 0..255, lower = louder) and enlarges the mask
slightly for the inpainting pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

import numpy as np
from blendfx.errors import ParameterError
from scipy.ndimage import binary_dilation, distance_transform_edt, label

__all__ = ["Mask", "energy_mask", "enlarge_mask", "remove_specks", "feather_mask", "MASK_MODES",
           "MaskFunction", "register_mask_mode", "mask_function"]

#: A mask mode: ``fn(audio, sample_rate, fraction) -> (mels, frames)`` float array in [0, 1] in
#: image coordinates (row 0 = highest mel bin, one column per 10 ms: ``frames`` is the number
#: of 10 ms columns of the audio at 44.1 kHz, ``n_samples_44k // 441``). ``audio`` is
#: ``(channels, samples)`` float32 at ``sample_rate`` Hz; ``fraction`` is the requested core
#: share (0.01 to 0.5), which a mode may use as a hint.
MaskFunction = Callable[[np.ndarray, float, float], np.ndarray]

#: Mask modes beyond the built-in "energy" one, by name, registered with
#: :func:`register_mask_mode`. Installed packages can also declare modes in the
#: ``blendfx.mask_modes`` entry-point group (blendfx declares "cnn", the music/noise segmenter),
#: imported only when a mask of that mode is asked for.
MASK_MODES: dict[str, MaskFunction] = {}

#: The entry-point group of mask modes (``setup.cfg``).
ENTRY_POINT_GROUP = "blendfx.mask_modes"


def register_mask_mode(name: str, fn: MaskFunction) -> None:
    """Make ``MaskExtractor(mode=name)`` use ``fn`` (see :data:`MaskFunction`)."""
    if not callable(fn):
        raise ParameterError(f"mask mode {name!r} needs a callable, got {type(fn).__name__}")
    MASK_MODES[name] = fn


def mask_function(name: str) -> MaskFunction:
    """The function of mask mode ``name`` (registered or declared), or a clear error."""
    if name not in MASK_MODES:
        declared = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if name not in declared:
            have = ", ".join(["energy", *sorted(set(MASK_MODES) | set(declared))])
            raise ParameterError(f"mask mode {name!r} is not available: register a function with "
                                 f"blendfx.spectral.mask.register_mask_mode. Available modes: {have}")
        register_mask_mode(name, declared[name].load())
    return MASK_MODES[name]


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
    if pixels.dtype == np.uint8:
        # the same "lower" quantile: the smallest level whose cumulative count passes the rank,
        # by bisection on the 256 levels with compare-and-count passes (a full histogram is
        # ~2x slower: np.bincount builds a 64-bit copy of the pixels). The first two probes
        # are a subsample's quantile and the level under it, which usually settle it.
        rank = fraction * (pixels.size - 1)
        lo, hi = 0, 255  # the answer is in [lo, hi]; at most 255 + 1 (all pixels)
        at_or_below = {255: pixels.size}
        sample = np.cumsum(np.bincount(pixels.ravel()[::16], minlength=256))
        guess = min(int(np.searchsorted(sample, fraction * (sample[-1] - 1), side="right")), 255)
        probes = [guess, guess - 1]
        while lo < hi:
            mid = probes.pop(0) if probes else (lo + hi) // 2
            if not lo <= mid < hi:
                continue
            at_or_below[mid] = int(np.count_nonzero(pixels <= mid))
            if at_or_below[mid] > rank:
                hi = mid
            else:
                lo = mid + 1
        threshold = lo
        # pixels the plain threshold would keep (silence, 255, is never "loud")
        kept = at_or_below[threshold] - (int(np.count_nonzero(pixels == 255)) if threshold >= 255 else 0)
    else:
        threshold = np.quantile(pixels, fraction, method="lower")
        kept = int(np.count_nonzero((pixels <= threshold) & (pixels < 255)))
    if threshold >= 255:
        return pixels < 255
    mask = pixels <= threshold
    if kept / pixels.size > fraction:
        # ties at the threshold: keep strictly louder pixels plus the quietest-first tie-break
        # (the first ties in raster order), i.e. drop the ties beyond the room left
        below = at_or_below.get(threshold - 1) if pixels.dtype == np.uint8 else None
        if below is None:
            below = int(np.count_nonzero(pixels < threshold))
        room = max(int(round(fraction * pixels.size)) - below, 0)
        ties = np.flatnonzero((pixels == threshold).ravel())
        mask.ravel()[ties[room:]] = False
    return mask


def enlarge_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean mask by ``pixels`` in every direction (binary dilation)."""
    if pixels <= 0:
        return mask

    return binary_dilation(mask, iterations=int(pixels))


def remove_specks(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Drop connected regions (8-connected) of a boolean mask smaller than ``min_pixels``.

    Isolated loud pixels are not a "core" worth writing music around; they also make the
    inpainting mask ragged.
    """
    if min_pixels <= 1 or not mask.any():
        return mask

    labels, count = label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_pixels
    keep[0] = False  # background
    return keep[labels]


def feather_mask(mask: np.ndarray, width: float) -> np.ndarray:
    """Soft edges: 1 inside the boolean mask, a Gaussian skirt ``exp(-d^2 / 2 width^2)`` outside.

    ``d`` is the Euclidean distance in pixels to the nearest mask pixel; ``width`` is in pixels.
    The core itself stays exactly 1 (feathering never shrinks it). Returns float32.
    """
    if width <= 0 or not mask.any():
        return mask.astype(np.float32)

    reach = int(np.ceil(4 * width))  # beyond 4 widths the skirt is below 3e-4: cut it off
    dist = distance_transform_edt(~mask)
    soft = np.exp(-0.5 * (dist / width) ** 2)
    soft[dist > reach] = 0.0
    return soft.astype(np.float32)
