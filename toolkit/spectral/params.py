"""The spectrogram grid Riffusion uses: its parameters and its mel filterbank.

Kept apart from :mod:`blendfx.spectral.spectrogram` so that the forward transform and its
inverse (:mod:`blendfx.spectral.spectrogram_inverse`) share one definition without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
from blendfx.dsp.melscale import mel_filters
from blendfx.errors import ParameterError

__all__ = ["SpectrogramParams", "mel_filterbank"]


@dataclass(frozen=True)
class SpectrogramParams:
    """Spectrogram settings; the defaults are Riffusion's.

    Attributes
    ----------
    sample_rate : int
        Hz (44,100).
    step_size_ms : float
        Hop between frames in ms (10 ms = 441 samples).
    window_duration_ms : float
        Hann window length in ms (100 ms = 4,410 samples).
    padded_duration_ms : float
        FFT size in ms (400 ms = 17,640 samples).
    num_frequencies : int
        Mel bins (512): the image height.
    min_frequency, max_frequency : float
        Mel range in Hz (0 to 10,000).
    mel_scale_type : str
        "htk" (Riffusion) or "slaney".
    power_for_image : float
        Exponent applied to the normalized magnitude for the 8-bit image (0.25).
    num_griffin_lim_iters : int
        Default fast Griffin-Lim iterations of the inverse, at the window's size (see
        :meth:`SpectrogramConverter.audio_from_mel`; Riffusion runs 32 at the full FFT size).
    """

    sample_rate: int = 44100
    step_size_ms: float = 10.0
    window_duration_ms: float = 100.0
    padded_duration_ms: float = 400.0
    num_frequencies: int = 512
    min_frequency: float = 0.0
    max_frequency: float = 10000.0
    mel_scale_type: str = "htk"
    power_for_image: float = 0.25
    num_griffin_lim_iters: int = 32
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_frequency > self.sample_rate / 2:
            raise ParameterError(f"max_frequency {self.max_frequency} Hz is above Nyquist "
                                 f"({self.sample_rate / 2} Hz)")
        if self.mel_scale_type not in ("htk", "slaney"):
            raise ParameterError(f"mel_scale_type = {self.mel_scale_type!r} is not 'htk' or 'slaney'")
        if self.win_length > self.n_fft or self.hop_length < 1:
            raise ParameterError("window must fit in the padded FFT and the hop must be >= 1 sample")

    @property
    def hop_length(self) -> int:
        """Samples between frames (441)."""
        return int(self.sample_rate / 1000.0 * self.step_size_ms)

    @property
    def win_length(self) -> int:
        """Window length in samples (4,410)."""
        return int(self.sample_rate / 1000.0 * self.window_duration_ms)

    @property
    def n_fft(self) -> int:
        """FFT size in samples (17,640)."""
        return int(self.sample_rate / 1000.0 * self.padded_duration_ms)

    @property
    def frames_per_second(self) -> float:
        """Image columns per second (100)."""
        return self.sample_rate / self.hop_length

    def with_(self, **changes: Any) -> SpectrogramParams:
        """A copy with some fields changed."""
        return replace(self, **changes)


@lru_cache(maxsize=8)
def mel_filterbank(params: SpectrogramParams) -> np.ndarray:
    """The ``(num_frequencies, n_fft // 2 + 1)`` mel filterbank, float64.

    Identical to torchaudio's ``melscale_fbanks`` (which Riffusion uses) for HTK, no norm:
    triangles on a linear grid from 0 to sr/2 with ``n_fft // 2 + 1`` points.
    """

    return mel_filters(
        sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.num_frequencies,
        fmin=params.min_frequency, fmax=params.max_frequency,
        htk=params.mel_scale_type == "htk", norm=None, dtype=np.float64)
