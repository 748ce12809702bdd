"""``MaskExtractor``: the noise's high-energy spectro-temporal core (BNMusic stage 1)."""

from __future__ import annotations

import numpy as np
from blendfx.buffers import to_channels_first
from blendfx.effect import Effect
from blendfx.params import BoolParam, ChoiceParam, FloatParam, IntParam
from blendfx.spectral.analysis import apply_mel_mask, fast_mel
from blendfx.spectral.mask import (
    Mask,
    energy_mask,
    enlarge_mask,
    feather_mask,
    mask_function,
    remove_specks,
)
from blendfx.spectral.params import SpectrogramParams
from blendfx.spectral.spectrogram_image import image_from_mel

__all__ = ["MaskExtractor", "image_frames", "energy_core"]


def image_frames(n_samples: int, sample_rate: float) -> int:
    """Number of 10 ms image columns of ``n_samples`` at ``sample_rate`` Hz (after resampling
    to Riffusion's 44.1 kHz, as :func:`blendfx.spectral.spectrogram.riffusion_mel` does)."""
    p = SpectrogramParams()
    n44 = n_samples if float(sample_rate) == p.sample_rate else int(
        np.ceil(n_samples * p.sample_rate / float(sample_rate)))
    return n44 // p.hop_length


def energy_core(mel: np.ndarray, fraction: float = 0.15) -> np.ndarray:
    """Boolean ``(512, frames)`` core in image coordinates (row 0 = highest mel bin) of mel
    magnitudes ``(512, frames)`` (low rows first): the loudest ``fraction`` of the pixels of
    their Riffusion image (BNMusic's energy mask, what mode "energy" starts from)."""
    return energy_mask(image_from_mel(mel).pixels, fraction)


class MaskExtractor(Effect):
    """Find the loudest spectro-temporal regions of a noise, in Riffusion image coordinates.

    The mask is built in four steps: the core (mode), speck clean-up (``min_region``), growth
    for the inpainting pass (``enlarge``), and edges (``edges``/``feather``).

    Parameters
    ----------
    mode : {"energy", "cnn"}
        "energy": the loudest ``fraction`` of pixels of the noise's Riffusion image (BNMusic).
        "cnn": the noise-dominated regions found by the music/noise segmenter
        (:mod:`blendfx.effects.segmenter`, loaded on first use through its entry point).
    fraction : float
        Share of pixels in the core, 0.01 to 0.5 (BNMusic: 0.10 to 0.20; default 0.15).
    enlarge : int
        Pixels to grow the mask by (the inpainting pass uses an enlarged mask), 0 to 32.
    min_region : int
        Connected regions smaller than this many pixels are dropped as specks (0 or 1: keep all).
    edges : {"hard", "soft"}
        "hard": values are 0 or 1. "soft": a Gaussian skirt of ``feather`` pixels outside the
        core (the core itself stays 1), for smooth-sounding solos and blends.
    feather : float
        Width of the soft edge in pixels (1 px = 10 ms in time, one mel row in frequency).
    invert : bool
        ``process()`` returns the residual (everything but the core) instead of the core.
    analysis : {"exact", "fast"}
        "exact": Riffusion's 17,640-point spectrogram (pixel-exact with the diffusion images).
        "fast": the window-sized spectrum folded onto the same mel grid (about 1 dB off, ~10x
        faster; the amplifier uses it).

    Notes
    -----
    After :meth:`process`, :attr:`last_mask` holds the mask it applied (before inversion).

    Examples
    --------
    >>> mask = MaskExtractor(fraction=0.15).extract(noise, 44100)   # doctest: +SKIP
    >>> mask.shape      # (512 mel rows, 100 columns per second)    # doctest: +SKIP
    >>> residual = MaskExtractor(invert=True)(noise, 44100)          # doctest: +SKIP
    """

    supports_streaming = False
    min_seconds = 0.0  # any length as it comes: under one 10 ms column there is no core

    mode = ChoiceParam("energy", ["energy", "cnn"], doc="How the core is found.")
    fraction = FloatParam(0.15, min=0.01, max=0.5, doc="Share of pixels in the core.")
    enlarge = IntParam(0, min=0, max=32, unit="px", doc="Dilation of the mask in pixels.")
    min_region = IntParam(0, min=0, max=4096, unit="px",
                          doc="Drop connected regions smaller than this (speck clean-up).")
    edges = ChoiceParam("hard", ["hard", "soft"], doc="Hard 0/1 edges or a soft skirt.")
    feather = FloatParam(2.0, min=0.0, max=32.0, unit="px", doc="Soft-edge width.")
    invert = BoolParam(False, doc="process() returns the residual instead of the core.")
    analysis = ChoiceParam("exact", ["exact", "fast"], doc="Spectrogram used for the energy core.")

    def reset(self) -> None:
        super().reset()
        self._last_mask: Mask | None = None

    @property
    def last_mask(self) -> Mask | None:
        """The mask the last :meth:`process` call applied (before ``invert``)."""
        return self._last_mask

    def extract(self, audio: np.ndarray, sample_rate: float, *, mel: np.ndarray | None = None) -> Mask:
        """The core :class:`~blendfx.spectral.mask.Mask` of ``audio`` (any layout, any rate, any length).

        Parameters
        ----------
        audio : np.ndarray
            The noise, 1-D or 2-D (mixed to mono for the analysis).
        sample_rate : float
            Hz.
        mel : np.ndarray, optional
            A precomputed mel magnitude spectrogram ``(512, frames)``, low rows first (as
            :func:`blendfx.spectral.spectrogram.riffusion_mel` or ``fast_mel`` return it), to skip the
            analysis in mode "energy".

        Returns
        -------
        Mask
            ``(512, frames)`` values in [0, 1], row 0 = highest mel bin, 100 columns per second.
        """
        data, _ = to_channels_first(audio)
        return self._extract(data, sample_rate, mel)

    def _extract(self, data: np.ndarray, sample_rate: float, mel: np.ndarray | None = None) -> Mask:
        """:meth:`extract` on ``(channels, samples)`` audio."""
        if data.shape[1] == 0 or image_frames(data.shape[1], sample_rate) == 0:
            # shorter than one 10 ms column: nothing to analyse (and no warnings from trying)
            return Mask(np.zeros((SpectrogramParams().num_frequencies, 0), np.float32))
        if self.mode == "energy":
            if mel is None:
                if self.analysis == "fast":
                    mel = fast_mel(data, sample_rate)
                else:
                    # the exact path runs Riffusion's torch STFT: torch loads only when asked for
                    from blendfx.spectral.spectrogram import riffusion_mel

                    mel = riffusion_mel(data, sample_rate)
            core = energy_core(mel, self.fraction)
        else:
            core = self._mode_core(data, sample_rate)
        core = remove_specks(core, self.min_region)
        core = enlarge_mask(core, self.enlarge)
        if self.edges == "soft":
            return Mask(feather_mask(core, self.feather))
        return Mask(core.astype(np.float32))

    def _mode_core(self, data: np.ndarray, sample_rate: float) -> np.ndarray:
        """Boolean core from a registered mode (values >= 0.5), fitted to the image's shape."""
        fn = mask_function(self.mode)
        values = np.asarray(fn(data, float(sample_rate), self.fraction), dtype=np.float32)
        rows = SpectrogramParams().num_frequencies
        frames = image_frames(data.shape[1], sample_rate)
        if values.ndim != 2 or values.shape[0] != rows:
            raise RuntimeError(f"mask mode {self.mode!r} returned shape {values.shape}; "
                               f"expected ({rows}, frames)")
        out = np.zeros((rows, frames), bool)
        take = min(frames, values.shape[1])
        out[:, :take] = np.nan_to_num(values[:, :take]) >= 0.5
        return out

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        mask = self._extract(audio, sample_rate)
        self._last_mask = mask
        core = apply_mel_mask(audio, sample_rate, mask)
        # the residual is the exact complement (the STFT filter is linear), so core + residual
        # == input, including what lies above the mask's 10 kHz and shorter than one column
        return audio - core if self.invert else core
