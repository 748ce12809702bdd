"""Simultaneous masking: the threshold under which a signal hides other sounds (DESIGN.md 8).

A classic perceptual-coder model (Johnston 1988; Painter & Spanias 2000), vectorized over a
whole spectrogram and expressed on blendfx's mel image grid (512 mel rows x 10 ms frames), so
that a noise's core mask and a music's threshold can be compared pixel by pixel:

1. Power spectrum of the masker with Riffusion's window and hop (:func:`blendfx.spectral.analysis.
   fast_spectrum`: 100 ms Hann, 10 ms hop, 8.6 Hz bins), calibrated so that a full-scale sine
   is ``ref_spl_db`` (96 dB SPL, the usual coder convention).
2. Energies in critical-band slices of ``band_bark`` (0.5 Bark, Zwicker's Bark scale).
3. Tonality per 1-Bark band from the spectral flatness (SFM): ``a = min(SFM_dB / -60, 1)``;
   masker offset ``a (14.5 + z) + (1 - a) 5.5`` dB (tonal vs noise-like maskers).
4. Schroeder's spreading function between bands, evaluated at every bin's own Bark position,
   divided by the bins per Bark there (a critical band's threshold shared by its bins).
5. Mapped onto the mel rows by the same filterbank that gives the masked signal's mel energies,
   and floored by Terhardt's threshold in quiet.

Steps 1-4 are linear in the masker's power once its tonality is known, and tonality does not
change with gain, so the threshold of a masker scaled by ``g`` is ``max(g**2 * spread, quiet)``:
:class:`MaskingThreshold` keeps the two parts apart, which is what lets blendfx find the gain
that masks a given share of a noise with one sort instead of a search.

Not modelled: temporal (forward/backward) masking beyond the 100 ms analysis window, and the
non-linear growth of masking with level.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from blendfx.errors import ParameterError
from scipy import sparse

from .analysis import fast_fft_size, fast_mel_filterbank, fast_spectrum
from .params import SpectrogramParams

__all__ = ["bark", "threshold_in_quiet_db", "spreading_db", "masker_offset_db", "MaskingModel",
           "MaskingThreshold", "masking_threshold", "mel_energy", "default_model"]


def bark(frequency_hz: np.ndarray | float, formula: str = "zwicker") -> np.ndarray | float:
    """Critical-band rate in Bark of a frequency in Hz.

    ``"zwicker"``: ``13 atan(0.76 f/kHz) + 3.5 atan((f / 7.5 kHz)^2)``;
    ``"asinh"``: ``6 asinh(f / 600 Hz)`` (Schroeder's form).
    """
    f = np.asarray(frequency_hz, dtype=np.float64)
    if formula == "zwicker":
        z = 13.0 * np.arctan(0.76e-3 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)
    elif formula == "asinh":
        z = 6.0 * np.arcsinh(f / 600.0)
    else:
        raise ParameterError(f"bark formula {formula!r} is not 'zwicker' or 'asinh'")
    return float(z) if z.ndim == 0 else z


def threshold_in_quiet_db(frequency_hz: np.ndarray | float) -> np.ndarray | float:
    """Terhardt's absolute threshold of hearing in dB SPL.

    ``3.64 (f/kHz)^-0.8 - 6.5 exp(-0.6 (f/kHz - 3.3)^2) + 1e-3 (f/kHz)^4``; frequencies are
    clipped to 20 Hz .. 20 kHz (the formula diverges at 0 Hz).
    """
    f = np.clip(np.asarray(frequency_hz, dtype=np.float64), 20.0, 20000.0) / 1000.0
    t = 3.64 * f ** -0.8 - 6.5 * np.exp(-0.6 * (f - 3.3) ** 2) + 1e-3 * f ** 4
    return float(t) if t.ndim == 0 else t


def spreading_db(dz: np.ndarray | float) -> np.ndarray | float:
    """Schroeder's spreading function in dB at ``dz`` Bark above the masker (about 0 dB at 0).

    ``15.81 + 7.5 (dz + 0.474) - 17.5 sqrt(1 + (dz + 0.474)^2)``: about +25 dB/Bark below the
    masker and -10 dB/Bark above it (masking spreads upwards in frequency).
    """
    d = np.asarray(dz, dtype=np.float64) + 0.474
    s = 15.81 + 7.5 * d - 17.5 * np.sqrt(1.0 + d * d)
    return float(s) if s.ndim == 0 else s


def masker_offset_db(z: np.ndarray | float, tonality: np.ndarray | float) -> np.ndarray | float:
    """How far the threshold sits under a masker, in dB (Johnston).

    ``tonality`` in [0, 1]: 1 = a tone (offset 14.5 + z dB), 0 = noise (5.5 dB).
    """
    a = np.clip(np.asarray(tonality, dtype=np.float64), 0.0, 1.0)
    off = a * (14.5 + np.asarray(z, dtype=np.float64)) + (1.0 - a) * 5.5
    return float(off) if off.ndim == 0 else off


@dataclass
class MaskingThreshold:
    """A masker's simultaneous-masking threshold on the mel grid, in power units.

    Attributes
    ----------
    spread : np.ndarray
        ``(512, frames)`` float32, low mel rows first: the part that scales with the masker's
        power (multiply by ``gain**2`` for a masker scaled by ``gain``).
    quiet : np.ndarray
        ``(512,)`` float32: the threshold in quiet per mel row (does not scale).
    """

    spread: np.ndarray
    quiet: np.ndarray

    def at_gain(self, gain: float = 1.0) -> np.ndarray:
        """The threshold ``(512, frames)`` of the masker scaled by ``gain`` (linear amplitude)."""
        return np.maximum(self.spread * np.float32(gain) ** 2, self.quiet[:, None])


@dataclass(frozen=True)
class MaskingModel:
    """Johnston-style masking model on Riffusion's mel grid (see module docstring).

    Parameters
    ----------
    band_bark : float
        Width of the critical-band slices energies are pooled in, in Bark (0.5).
    ref_spl_db : float
        dB SPL of a full-scale sine (96, i.e. 16-bit full scale); sets where the threshold in
        quiet lies.
    params : SpectrogramParams
        Riffusion's spectrogram settings (window, hop, mel grid).
    """

    band_bark: float = 0.5
    ref_spl_db: float = 96.0
    params: SpectrogramParams = SpectrogramParams()

    def __post_init__(self) -> None:
        if not 0.05 <= self.band_bark <= 2.0:
            raise ParameterError(f"band_bark = {self.band_bark} is out of range [0.05, 2] Bark")

    # -- precomputed matrices ----------------------------------------------------------------
    @property
    def _m(self) -> _Matrices:
        return _matrices(self)

    @property
    def n_bins(self) -> int:
        """Spectrum bins the model reads (0 Hz up to the mel grid's top, 10 kHz)."""
        return self._m.n_bins

    def magnitude_spectrum(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        """Magnitude spectrum ``(bins, frames)`` float32 of ``audio`` up to 10 kHz (the fast
        analysis of :func:`blendfx.spectral.analysis.fast_spectrum`); square it for power."""
        spec = fast_spectrum(audio, sample_rate, self.params)
        return spec if spec.shape[0] == self.n_bins else np.ascontiguousarray(spec[: self.n_bins])

    def power_spectrum(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        """Power spectrum ``(bins, frames)`` float32 of ``audio`` up to 10 kHz."""
        mag = self.magnitude_spectrum(audio, sample_rate)
        return mag * mag

    def to_mel(self, spectrum: np.ndarray) -> np.ndarray:
        """Project a magnitude or power spectrum ``(bins, frames)`` onto the 512 mel rows.

        Power in, mel-pixel energies out (the masked side of every comparison); magnitude in,
        the mel magnitudes of Riffusion's image (``fast_mel``) out.
        """
        return np.asarray(self._m.mel @ spectrum, dtype=np.float32)

    def threshold(self, power: np.ndarray) -> MaskingThreshold:
        """The masking threshold a masker with power spectrum ``power`` casts, on the mel grid."""
        m = self._m
        frames = power.shape[1]
        if frames == 0:
            return MaskingThreshold(np.zeros((m.mel.shape[0], 0), np.float32), m.quiet_mel.copy())
        band_energy = m.bands @ power  # (bands, frames)
        # spectral flatness per 1-Bark tonality band: geometric over arithmetic mean power
        tiny = np.float32(1e-20)
        log_mean = m.tone_mean @ np.log(power + tiny)
        mean = m.tone_mean @ power
        sfm_db = 10.0 / np.log(10.0) * (log_mean - np.log(mean + tiny))
        tonality = np.clip(sfm_db / -60.0, 0.0, 1.0)
        silent = mean <= tiny
        tonality[silent] = 0.0
        offset_db = masker_offset_db(m.tone_z[:, None], tonality)  # (tone bands, frames)
        offset = np.power(10.0, -offset_db / 10.0).astype(np.float32)[m.band_parent]
        spread = m.mel_spread @ (band_energy * offset)
        return MaskingThreshold(np.asarray(spread, dtype=np.float32), m.quiet_mel.copy())


@dataclass(frozen=True)
class _Matrices:
    n_bins: int
    mel: sparse.csr_matrix  # (512, bins): mel filterbank on the fast spectrum
    bands: sparse.csr_matrix  # (bands, bins): 0/1 band membership
    band_parent: np.ndarray  # (bands,): tonality band of each band
    tone_mean: sparse.csr_matrix  # (tone bands, bins): averaging over a tonality band
    tone_z: np.ndarray  # (tone bands,) centre Bark
    mel_spread: np.ndarray  # (512, bands): spreading from bands to mel rows, per-bin density
    quiet_mel: np.ndarray  # (512,): threshold in quiet on the mel rows (power units)


@lru_cache(maxsize=8)
def _matrices(model: MaskingModel) -> _Matrices:
    p = model.params
    n_fft = fast_fft_size(p)  # the fast spectrum's FFT size
    bin_hz = p.sample_rate / n_fft
    full = fast_mel_filterbank(p)
    n_bins = int(full.indices.max()) + 1  # the bins the mel grid reads (up to ~10 kHz)
    freqs = np.arange(n_bins) * bin_hz
    z = bark(freqs)
    mel = full[:, :n_bins].tocsr()

    band = np.floor(z / model.band_bark).astype(int)
    n_bands = int(band.max()) + 1
    bands = sparse.csr_matrix((np.ones(n_bins, np.float32), (band, np.arange(n_bins))),
                              shape=(n_bands, n_bins))
    counts = np.asarray(bands.sum(axis=1)).ravel()
    band_z = np.where(counts > 0, (bands @ z) / np.maximum(counts, 1), (np.arange(n_bands) + 0.5)
                      * model.band_bark)

    tone = np.floor(z).astype(int)  # 1-Bark tonality bands (Johnston)
    n_tone = int(tone.max()) + 1
    tone_counts = np.bincount(tone, minlength=n_tone).astype(np.float64)
    tone_mean = sparse.csr_matrix(((1.0 / tone_counts[tone]).astype(np.float32),
                                   (tone, np.arange(n_bins))), shape=(n_tone, n_bins))
    tone_z = np.bincount(tone, weights=z, minlength=n_tone) / np.maximum(tone_counts, 1)
    band_parent = np.minimum(np.floor(band_z).astype(int), n_tone - 1)

    # per-bin density: a critical band's threshold is shared by the bins in one Bark around it
    dz_df = np.gradient(z, freqs)
    bins_per_bark = 1.0 / np.maximum(dz_df * bin_hz, 1e-12)
    spread = np.power(10.0, spreading_db(z[:, None] - band_z[None, :]) / 10.0)  # (bins, bands)
    spread /= bins_per_bark[:, None]
    mel_spread = np.asarray(mel @ spread, dtype=np.float32)

    # calibration: one-sided spectral energy of a full-scale sine = ref_spl_db
    win = p.win_length
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    sine_energy = n_fft * np.sum(window ** 2) / 4.0  # Parseval, one-sided, zero-padded frame
    quiet = sine_energy * np.power(10.0, (threshold_in_quiet_db(freqs) - model.ref_spl_db) / 10.0)
    quiet_mel = np.asarray(mel @ quiet, dtype=np.float32)
    return _Matrices(n_bins, mel, bands, band_parent, tone_mean, tone_z, mel_spread, quiet_mel)


@lru_cache(maxsize=1)
def default_model() -> MaskingModel:
    """The shared default :class:`MaskingModel`."""
    return MaskingModel()


def masking_threshold(audio: np.ndarray, sample_rate: float,
                      model: MaskingModel | None = None) -> MaskingThreshold:
    """The simultaneous-masking threshold ``audio`` casts, on the 512-row mel grid.

    Parameters
    ----------
    audio : np.ndarray
        The masker (music), any layout, any rate (mixed to mono, resampled to 44.1 kHz).
    sample_rate : float
        Hz.
    model : MaskingModel, optional
        Defaults to :func:`default_model`.

    Returns
    -------
    MaskingThreshold
        ``spread`` ``(512, n_samples_44k // 441)`` and ``quiet`` ``(512,)``, power units, low
        mel rows first (flip rows to compare with image coordinates).
    """
    model = model or default_model()
    return model.threshold(model.power_spectrum(audio, sample_rate))


def mel_energy(audio: np.ndarray, sample_rate: float, model: MaskingModel | None = None) -> np.ndarray:
    """Energies ``(512, frames)`` of ``audio`` on the mel grid, in the threshold's units."""
    model = model or default_model()
    return model.to_mel(model.power_spectrum(audio, sample_rate))
