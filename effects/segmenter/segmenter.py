"""``MusicNoiseSegmenter``: keep the music or the noise of a mixture through the CNN's soft mask."""

from __future__ import annotations

import numpy as np
import torch
from blendfx.buffers import to_channels_first
from blendfx.effect import Effect, check_sample_rate
from blendfx.params import ChoiceParam, FloatParam, StrParam
from blendfx.spectral.mask import register_mask_mode
from blendfx.spectral.params import SpectrogramParams

from .net import MusicProbabilities, Segmentation, Segmenter, load_segmenter, stft_filter

__all__ = ["MusicNoiseSegmenter", "cnn_noise_mask", "register_cnn_mode"]


def cnn_noise_mask(audio: np.ndarray, sample_rate: float, fraction: float = 0.15,
                   device: str = "auto") -> np.ndarray:
    """``MaskExtractor`` mode "cnn": the noise-dominated regions on the Riffusion image grid.

    Parameters
    ----------
    audio : np.ndarray
        ``(channels, samples)`` (or any layout) at ``sample_rate`` Hz.
    sample_rate : float
        Hz.
    fraction : float
        Unused: the CNN decides how much of the image is noise (kept for the mode signature).
    device : str
        Torch device of the segmenter.

    Returns
    -------
    np.ndarray
        ``(512, frames)`` float32, 1 where noise dominates (noise probability >= 0.5 in a cell
        within 60 dB of the loudest), row 0 = highest mel bin, ``frames`` = 10 ms columns of the
        audio at 44.1 kHz.
    """

    del fraction
    data, _ = to_channels_first(audio)
    p = SpectrogramParams()
    n44 = data.shape[1] if float(sample_rate) == p.sample_rate else int(
        np.ceil(data.shape[1] * p.sample_rate / float(sample_rate)))
    seg = load_segmenter(device=device).segment(data, sample_rate)
    return seg.noise_mel_mask(n44 // p.hop_length).values


def register_cnn_mode() -> None:
    """Plug :func:`cnn_noise_mask` into ``MaskExtractor`` as its mode "cnn".

    Not needed for blendfx itself, which declares the mode in its ``blendfx.mask_modes`` entry
    points (loaded on first use); kept for code that registers it explicitly."""
    register_mask_mode("cnn", cnn_noise_mask)


class MusicNoiseSegmenter(Effect):
    """Split a music + noise mixture with the music/noise CNN segmenter (DESIGN.md section 10).

    The mixture (mixed to mono, resampled to 44.1 kHz) is classified in overlapping 64 x 256-pixel
    windows of a 512-point STFT (5.5 kHz x 0.74 s, 16-pixel hops); the windows' music
    probabilities are averaged into 16 x 16-pixel cells and smoothed into a soft time-frequency
    mask, which then gates every channel's STFT at the input's own rate (no resampling of the
    output: the mask is interpolated onto the input's STFT grid). Output length = input length.

    Parameters
    ----------
    mode : {"music", "noise"}
        Keep the music (gain = music probability) or the noise (gain = 1 - music probability).
    floor_db : float
        The lowest gain in dB the mask applies, -120 to 0 (higher values leave some of the
        rejected part in and soften artefacts).
    weights : str
        Folder (or ``.safetensors`` file) of trained segmenter weights; "" = the shipped ones.
        ``str(blendfx.effects.segmenter.net.STACK_WEIGHTS)``: the shipped CNN with the feature
        stack of issue 20 (gradient-boosted trees over hand-crafted long-context features and
        the CNN's logit; see the README's issue-20 section for when it is the better choice).

    Examples
    --------
    >>> music_only = MusicNoiseSegmenter(mode="music")(mixture, 44100)       # doctest: +SKIP
    >>> p = MusicNoiseSegmenter().probabilities(mixture, 44100)           # doctest: +SKIP
    >>> p.windows.shape, p.window_start_s[:2], p.window_low_hz[:2]         # doctest: +SKIP
    >>> probs = MusicNoiseSegmenter().probability_map(mixture, 44100)         # doctest: +SKIP
    >>> plt.imshow(probs.music, origin="lower", extent=probs.extent(), aspect="auto")  # doctest: +SKIP
    """

    supports_streaming = False

    mode = ChoiceParam("music", ["music", "noise"], doc="Which part of the mixture to keep.")
    floor_db = FloatParam(-80.0, min=-120.0, max=0.0, unit="dB", doc="Lowest gain of the mask.")
    weights = StrParam("", doc="Trained weights (folder or .safetensors file); '' = shipped.")

    def model(self) -> Segmenter:
        """The (shared, cached) segmenter this effect uses, on its device."""
        return load_segmenter(self.weights or None, device=str(self.torch_device))

    def probabilities(self, audio: np.ndarray, sample_rate: float) -> MusicProbabilities:
        """Music probabilities of ``audio`` per window and per cell, with their times and bands.

        The stable public API for scoring the model with one's own labels and protocol.

        Parameters
        ----------
        audio : np.ndarray
            1-D mono or 2-D (channels x samples, either orientation; mixed to mono), any rate.
        sample_rate : float
            Hz. Other rates than 44.1 kHz are resampled to it for the analysis; below it, the
            bands above the input's Nyquist frequency are flagged and a ``UserWarning`` raised.

        Returns
        -------
        MusicProbabilities
            ``.windows`` ``(13, n)`` p(music) of each 0.743 s x 5.51 kHz window (16-pixel hops:
            46.4 ms, 1.38 kHz) with ``.window_start_s``/``.window_end_s`` (s) and
            ``.window_low_hz``/``.window_high_hz`` (Hz); ``.cells`` ``(16, m)`` p(music) per
            46.4 ms x 1.38 kHz cell with ``.cell_start_s``/``.cell_end_s``/``.cell_low_hz``/
            ``.cell_high_hz``; ``.window_logits`` (uncalibrated); the weights' temperature.

        Raises
        ------
        ParameterError
            Empty audio, NaN/infinite samples, a square 2-D array, a bad sample rate.

        Examples
        --------
        >>> p = MusicNoiseSegmenter().probabilities(audio, 44100)          # doctest: +SKIP
        >>> music_share = p.windows.mean(axis=0)   # one per 46 ms hop   # doctest: +SKIP
        >>> list(zip(p.window_start_s, p.window_end_s, music_share))[:3]  # doctest: +SKIP
        """

        return self.model().probabilities(audio, sample_rate)

    def probability_map(self, audio: np.ndarray, sample_rate: float) -> Segmentation:
        """The music/noise probabilities of ``audio`` (any layout, any rate), for plots.

        Returns
        -------
        Segmentation
            ``.music`` (257 bins x frames of the 44.1 kHz, hop-128 STFT), ``.cells`` (16 x 16-pixel
            cells), ``.windows``, ``.frequencies_hz``, ``.times_s`` and ``.extent()``.
        """

        data, _ = to_channels_first(audio)
        return self.model().segment(data, check_sample_rate(sample_rate))

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        model = self.model()
        c = model.config
        x = torch.as_tensor(audio, device=model.device)
        if float(sample_rate) == float(c.sample_rate):
            # the mono mix's power (the segmenter's input) and the channels' filtering each in one
            # pass over the signal, block by block (no stereo spectrum is stored)
            seg = model.segment_tensor(x.mean(dim=0))
            gain = torch.from_numpy(seg.music).to(model.device)
            n_fft, hop = c.n_fft, c.hop_length
        else:
            # The mask at the input's rate: an STFT with the same durations (11.6 ms window,
            # 2.9 ms hop), the mask interpolated onto its bins (Hz) and frames (s).
            seg = model.segment(audio, sample_rate)
            hop = max(4, int(round(c.hop_length * sample_rate / c.sample_rate)))
            n_fft = c.n_fft // c.hop_length * hop
            gain = torch.from_numpy(seg.music_on_grid(
                np.arange(n_fft // 2 + 1) * sample_rate / n_fft,
                np.arange(audio.shape[1] // hop + 1) * hop / sample_rate)).to(model.device)
        if self.mode == "noise":
            gain = 1.0 - gain
        floor = 10.0 ** (self.floor_db / 20.0)
        gain = gain.clamp_(0.0, 1.0).mul_(1.0 - floor).add_(floor)
        out = stft_filter(x, gain, n_fft, hop)
        return out.cpu().numpy()

