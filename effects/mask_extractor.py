"""``MaskExtractor``: the noise's high-energy spectro-temporal core (BNMusic stage 1)."""

from __future__ import annotations

import numpy as np
from blendfx.analysis import riffusion_image
from blendfx.effect import Effect
from blendfx.mask import Mask, energy_mask, enlarge_mask
from blendfx.params import ChoiceParam, FloatParam, IntParam

__all__ = ["MaskExtractor"]


class MaskExtractor(Effect):
    """Find the loudest spectro-temporal regions of a noise, in Riffusion image coordinates.

    Parameters
    ----------
    mode : {"energy", "cnn"}
        "energy": the loudest ``fraction`` of pixels of the noise's Riffusion image.
        "cnn": the noise-dominated regions found by the music/noise CNN segmenter
        (:class:`~blendfx.effects.MusicNoiseSegmenter`), on the same image grid; ``fraction`` is
        not used.
    fraction : float
        Share of pixels in the core, 0.01 to 0.5 (BNMusic: 0.10 to 0.20; default 0.15).
    enlarge : int
        Pixels to grow the mask by (the inpainting pass uses an enlarged mask), 0 to 32.

    Examples
    --------
    >>> mask = MaskExtractor(fraction=0.15).extract(noise, 44100)   # doctest: +SKIP
    >>> mask.shape      # (512 mel rows, 100 columns per second)    # doctest: +SKIP
    """

    supports_streaming = False

    mode = ChoiceParam("energy", ["energy", "cnn"], doc="How the core is found.")
    fraction = FloatParam(0.15, min=0.01, max=0.5, doc="Share of pixels in the core.")
    enlarge = IntParam(0, min=0, max=32, unit="px", doc="Dilation of the mask in pixels.")

    def extract(self, audio: np.ndarray, sample_rate: float) -> Mask:
        """The core :class:`~blendfx.mask.Mask` of ``audio`` (any layout, any rate)."""
        if self.mode == "cnn":
            from .segmenter import cnn_noise_mask

            core = cnn_noise_mask(audio, sample_rate, self.fraction, str(self.torch_device)) >= 0.5
        else:
            core = energy_mask(riffusion_image(audio, sample_rate).pixels, self.fraction)
        core = enlarge_mask(core, self.enlarge)
        return Mask(core.astype(np.float32))

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        from blendfx.analysis import apply_mel_mask

        mask = self.extract(audio, sample_rate)
        return apply_mel_mask(audio, sample_rate, mask)
