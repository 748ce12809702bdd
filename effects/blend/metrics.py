"""Weight-free blend measures: how much of a noise a music hides, and at what loudness cost.

Every measure is about the noise's **core** (its loudest ``fraction`` of mel-image pixels, as
the :class:`~blendfx.effects.MaskExtractor` finds it) and the masking threshold the music casts
(:mod:`blendfx.spectral.psychoacoustics`), pixel by pixel on the 512-row mel grid:

- ``unmasked_fraction``: share of the core's energy above the music's threshold (0 = all hidden).
- noise-to-mask ratio (NMR) per core pixel, in dB: summarized as median, 90th percentile, max and
  the energy ratio over the whole core.
- loudness (ITU-R BS.1770-4) of noise, music and mix; ``loudness_cost_lu`` = mix minus noise.
- ``nmr_bark_db``: a perceptual measure beside the per-pixel SMR: the noise-to-mask ratio over
  critical bands (the ICASSP 2025 DPNMM work's measure): the whole noise's energy over the
  music's masking threshold in 1-Bark bands, averaged over bands and frames, in dB (< 0 dB: the
  music's masking covers the noise on average; lower is better).
- ``cost_to_mask_lu``: the loudness cost at which half the core's energy falls under the music's
  threshold. The threshold scales with the music's gain squared (plus a fixed threshold in
  quiet), so each core pixel has its own "gain that masks me", and the gain that masks half the
  energy is their energy-weighted median: one sort, then one loudness measurement of the mix.

The psychoacoustic model needs an absolute level for its threshold in quiet: the noise is taken
to play at ``listening_lufs`` (-18 LUFS, BNMusic's level; 0 dBFS sine = 96 dB SPL) and the music
keeps its level relative to the noise. Loudness differences (LU) do not depend on this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from blendfx.buffers import as_channels_first, fit_channels, fit_length
from blendfx.dsp.loudness import db_to_gain, gain_to_db, integrated_lufs, true_peak_dbtp
from blendfx.effects.amplifier.gain_solver import weighted_quantile
from blendfx.errors import ParameterError
from blendfx.spectral.analysis import mel_center_frequencies
from blendfx.spectral.mask import Mask, energy_mask
from blendfx.spectral.psychoacoustics import MaskingModel, bark, default_model
from blendfx.spectral.spectrogram_image import image_from_mel

from .musicality import key_clarity, tempo_stability  # how musical a signal is
from .similarity import chroma_cens_similarity, spectrogram_ssim, ssim  # the mask-based paper's metrics

__all__ = ["blend_report", "cost_to_mask_lu", "gain_to_mask", "unmasked_fraction",
           "noise_to_mask_ratio", "bark_nmr_db", "key_clarity", "tempo_stability",
           "NoiseCore", "noise_core", "ssim", "spectrogram_ssim",
           "chroma_cens_similarity"]

#: BNMusic's share of loudest pixels in the core.
CORE_FRACTION = 0.15
#: BNMusic's noise level.
LISTENING_LUFS = -18.0


@dataclass
class NoiseCore:
    """A noise's core on the mel grid (rows low-first) and its energies there.

    Attributes
    ----------
    weights : np.ndarray
        ``(512, frames)`` mask values in [0, 1] (row 0 = lowest mel bin).
    energy : np.ndarray
        ``(512, frames)`` the noise's mel-pixel energies (power), at the listening level.
    level_gain : float
        Linear factor that brought the noise to the listening level (apply it to the masker too).
    noise_lufs : float
        The noise's own integrated loudness (before levelling), LUFS.
    channels : int
        Channels of the noise ``noise_lufs`` was measured on (a mono noise measured alone reads
        3 LU less than copied to both channels of a stereo mix; measures re-read it then).

    Compute it once with :func:`noise_core` and pass it as ``core=`` to measure many maskers
    against the same noise.
    """

    weights: np.ndarray
    energy: np.ndarray
    level_gain: float
    noise_lufs: float
    channels: int = 1

    def lufs_as_played(self, noise: np.ndarray, sample_rate: float) -> float:
        """The noise's loudness in the layout it is mixed in (``noise`` is ``(ch, n)``)."""
        if noise.shape[0] == self.channels:
            return self.noise_lufs
        return integrated_lufs(noise, sample_rate)

    @property
    def total(self) -> float:
        """Core energy (weights x energies)."""
        return float((self.weights * self.energy).sum())


def _as_pair(noise: np.ndarray, music: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as ``(channels, samples)`` float32, the music fitted to the noise's length and both
    to the larger channel count (so that they can be mixed)."""

    n = as_channels_first(noise)
    m = as_channels_first(music)
    m = fit_length(m, n.shape[1])
    ch = max(n.shape[0], m.shape[0])
    return fit_channels(n, ch), fit_channels(m, ch)


def noise_core(noise: np.ndarray, sample_rate: float, *, fraction: float = CORE_FRACTION,
               mask: Mask | None = None, listening_lufs: float | None = LISTENING_LUFS,
               model: MaskingModel | None = None) -> NoiseCore:
    """The core of ``noise``: its loudest ``fraction`` of pixels (or ``mask``), with energies.

    ``mask`` is a :class:`~blendfx.spectral.mask.Mask` in image coordinates (row 0 = top), e.g. the one
    a Blend used; it is fitted to the noise's frame count.
    """
    model = model or default_model()
    loud = integrated_lufs(noise, sample_rate)
    level_db = 0.0
    if listening_lufs is not None and np.isfinite(loud):
        level_db = listening_lufs - loud
    level = float(db_to_gain(level_db))
    mag = model.magnitude_spectrum(noise, sample_rate) * np.float32(level)
    energy = model.to_mel(mag * mag)
    if mask is None:
        pixels = image_from_mel(model.to_mel(mag)).pixels
        weights = energy_mask(pixels, fraction)[::-1].astype(np.float32)
    else:
        values = np.asarray(mask.values, dtype=np.float32)[::-1]
        weights = np.zeros_like(energy)
        take = min(weights.shape[1], values.shape[1])
        if values.shape[0] != weights.shape[0]:
            raise ParameterError(f"mask has {values.shape[0]} rows; the mel grid has {weights.shape[0]}")
        weights[:, :take] = values[:, :take]

    return NoiseCore(weights, energy, level, loud, as_channels_first(noise).shape[0])


def _pixel_gains(core: NoiseCore, music: np.ndarray, sample_rate: float,
                 model: MaskingModel) -> np.ndarray:
    """Per pixel, the linear gain on ``music`` at which its threshold reaches the noise
    (0 where the threshold in quiet already hides it; inf where the music is silent)."""
    threshold = model.threshold(model.power_spectrum(music, sample_rate) * np.float32(core.level_gain) ** 2)
    frames = min(core.energy.shape[1], threshold.spread.shape[1])
    energy = core.energy[:, :frames]
    spread = threshold.spread[:, :frames]
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.sqrt(np.where(spread > 0, energy / np.where(spread > 0, spread, 1.0), np.inf))
    need[energy <= threshold.quiet[:, None]] = 0.0
    return need


def gain_to_mask(noise: np.ndarray, masker: np.ndarray, sample_rate: float, *, share: float = 0.5,
                 fraction: float = CORE_FRACTION, mask: Mask | None = None,
                 model: MaskingModel | None = None, core: NoiseCore | None = None) -> float:
    """Linear gain on ``masker`` at which ``share`` of the noise core's energy is masked.

    0 when the core is silent or already under the threshold in quiet; ``inf`` when the masker
    has no energy where the core needs it.
    """
    if not 0.0 < share <= 1.0:
        raise ParameterError(f"share = {share} is out of range (0, 1]")
    model = model or default_model()
    noise_cf, masker_cf = _as_pair(noise, masker)
    core = core or noise_core(noise_cf, sample_rate, fraction=fraction, mask=mask, model=model)
    need = _pixel_gains(core, masker_cf, sample_rate, model)
    weights = (core.weights * core.energy)[:, :need.shape[1]]
    value = weighted_quantile(need, weights, share)
    return 0.0 if np.isnan(value) else value


def cost_to_mask_lu(noise: np.ndarray, masker: np.ndarray, sample_rate: float, *, share: float = 0.5,
                    fraction: float = CORE_FRACTION, mask: Mask | None = None,
                    model: MaskingModel | None = None, core: NoiseCore | None = None) -> float:
    """Loudness cost in LU of masking ``share`` (half) of the noise core's energy with ``masker``.

    ``L(noise + g * masker) - L(noise)`` where ``g`` is :func:`gain_to_mask`: lower is better.
    The yardstick of every generator (``benchmarks/blend_baselines.py``). Returns 0 for a silent
    noise and ``inf`` when no gain of the masker can do it.

    Parameters
    ----------
    noise, masker : np.ndarray
        Any layout; the masker is cropped or zero-padded to the noise's length.
    sample_rate : float
        Hz, shared by both.
    share : float
        Share of the core's energy to mask (0.5).
    fraction : float
        Core size as a share of the mel-image pixels (0.15), unless ``mask`` is given.
    core : NoiseCore, optional
        The noise's core from :func:`noise_core`, to reuse across maskers.
    """
    model = model or default_model()
    noise_cf, masker_cf = _as_pair(noise, masker)
    core = core or noise_core(noise_cf, sample_rate, fraction=fraction, mask=mask, model=model)
    gain = gain_to_mask(noise_cf, masker_cf, sample_rate, share=share, model=model, core=core)
    return _loudness_cost(noise_cf, masker_cf, sample_rate, gain,
                          core.lufs_as_played(noise_cf, sample_rate))


def _loudness_cost(noise: np.ndarray, music: np.ndarray, sample_rate: float, gain: float,
                   noise_lufs: float) -> float:
    if not np.isfinite(noise_lufs):
        return 0.0  # a silent noise costs nothing to mask
    if not np.isfinite(gain):
        return float("inf")
    return float(integrated_lufs(noise + np.float32(gain) * music, sample_rate) - noise_lufs)


def noise_to_mask_ratio(noise: np.ndarray, music: np.ndarray, sample_rate: float, *,
                        fraction: float = CORE_FRACTION, mask: Mask | None = None,
                        model: MaskingModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel noise-to-mask ratio in dB and the core weights, both ``(512, frames)``, rows
    low-first: ``10 log10(noise energy / music's threshold)``; > 0 dB means audible."""
    model = model or default_model()
    noise_cf, music_cf = _as_pair(noise, music)
    core = noise_core(noise_cf, sample_rate, fraction=fraction, mask=mask, model=model)
    return _nmr(core, music_cf, sample_rate, model), core.weights


def _nmr(core: NoiseCore, music: np.ndarray, sample_rate: float, model: MaskingModel) -> np.ndarray:
    threshold = model.threshold(model.power_spectrum(music, sample_rate) * np.float32(core.level_gain) ** 2)
    return _nmr_from(core, threshold.at_gain(1.0))


def _nmr_from(core: NoiseCore, threshold: np.ndarray) -> np.ndarray:
    t = threshold[:, :core.energy.shape[1]]
    tiny = np.float32(1e-30)
    return 10.0 * np.log10(np.maximum(core.energy[:, :t.shape[1]], tiny) / np.maximum(t, tiny))


def _bark_rows(rows: int) -> np.ndarray:
    """1-Bark band index of each of the mel grid's ``rows`` rows (low-first)."""
    z = np.asarray(bark(mel_center_frequencies()), dtype=np.float64)
    if z.size != rows:
        raise ParameterError(f"the mel grid has {z.size} rows, not {rows}")
    return np.floor(z - z.min()).astype(int)


def _bark_nmr(core: NoiseCore, threshold: np.ndarray) -> float:
    """Mean over 1-Bark bands and audible frames of noise energy / masking threshold, in dB."""
    frames = min(core.energy.shape[1], threshold.shape[1])
    bands = _bark_rows(core.energy.shape[0])
    n_bands = int(bands.max()) + 1
    energy = np.zeros((n_bands, frames))
    thresh = np.zeros((n_bands, frames))
    np.add.at(energy, bands, core.energy[:, :frames])
    np.add.at(thresh, bands, threshold[:, :frames])
    frame_energy = energy.sum(axis=0)
    audible = frame_energy > max(float(frame_energy.max(initial=0.0)), 1e-30) * 1e-4
    if not audible.any():
        return float("-inf")
    ratio = energy[:, audible] / np.maximum(thresh[:, audible], 1e-30)
    return float(10.0 * np.log10(max(float(ratio.mean()), 1e-30)))


def bark_nmr_db(noise: np.ndarray, music: np.ndarray, sample_rate: float, *,
                listening_lufs: float | None = LISTENING_LUFS, model: MaskingModel | None = None) -> float:
    """Noise-to-mask ratio over critical bands, in dB: the noise's energy over the music's
    masking threshold (threshold in quiet included) in 1-Bark bands of the mel grid, averaged
    over bands and over the frames where the noise is audible (within 40 dB of its loudest),
    then in dB. 0 dB: the noise sits at the music's masking threshold on average; lower is
    better (more masked). ``-inf`` for a silent noise."""
    model = model or default_model()
    noise_cf, music_cf = _as_pair(noise, music)
    core = noise_core(noise_cf, sample_rate, listening_lufs=listening_lufs, model=model)
    power = model.power_spectrum(music_cf, sample_rate) * np.float32(core.level_gain) ** 2
    return _bark_nmr(core, model.threshold(power).at_gain(1.0))


def unmasked_fraction(noise: np.ndarray, music: np.ndarray, sample_rate: float, *,
                      fraction: float = CORE_FRACTION, mask: Mask | None = None,
                      model: MaskingModel | None = None) -> float:
    """Share (0..1) of the noise core's energy that stays above the music's masking threshold."""
    model = model or default_model()
    noise_cf, music_cf = _as_pair(noise, music)
    core = noise_core(noise_cf, sample_rate, fraction=fraction, mask=mask, model=model)
    return _unmasked(_nmr(core, music_cf, sample_rate, model), core.weights, core.energy)


def _unmasked(nmr: np.ndarray, weights: np.ndarray, energy: np.ndarray) -> float:
    w = weights[:, :nmr.shape[1]] * energy[:, :nmr.shape[1]]
    total = float(w.sum())
    return float((w * (nmr > 0)).sum() / total) if total > 0 else 0.0


def blend_report(noise: np.ndarray, music: np.ndarray, sample_rate: float, *,
                 fraction: float = CORE_FRACTION, mask: Mask | None = None, share: float = 0.5,
                 listening_lufs: float = LISTENING_LUFS, model: MaskingModel | None = None) -> dict:
    """Everything blendfx judges a blend by, for ``noise`` played with ``music`` as given.

    Parameters
    ----------
    noise, music : np.ndarray
        Any layout, same sample rate; the music is cropped or zero-padded to the noise's length.
    sample_rate : float
        Hz.
    fraction : float
        Core size (share of mel-image pixels), unless ``mask`` is given.
    mask : Mask, optional
        The core in image coordinates (e.g. the mask a Blend used).
    share : float
        Share of the core's energy ``cost_to_mask_lu`` asks to mask (0.5).
    listening_lufs : float
        Level the noise is assumed to play at, for the threshold in quiet (-18 LUFS).

    Returns
    -------
    dict
        ``noise_lufs``, ``music_lufs``, ``mix_lufs`` (LUFS, each measured as it plays in the
        mix: a mono signal beside a stereo one is copied to both channels; ``-inf`` = silence),
        ``loudness_cost_lu`` (mix minus noise, LU), ``unmasked_fraction`` (0..1, energy share of
        the core above the music's threshold), ``nmr_db_median``, ``nmr_db_p90``, ``nmr_db_max``
        (per core pixel), ``nmr_db_energy`` (core energy over core threshold, dB),
        ``nmr_bark_db`` (noise-to-mask ratio over 1-Bark bands, dB: :func:`bark_nmr_db`),
        ``masked_share`` (1 - ``unmasked_fraction``), ``loudness_increase_lu`` (the same as
        ``loudness_cost_lu``: how much louder the mix is than the noise alone),
        ``gain_to_mask_db`` (extra music gain to mask ``share`` of the core, dB; ``-inf`` if
        none needed, ``inf`` if impossible), ``cost_to_mask_lu`` (loudness cost of the mix at
        that gain, LU), ``mix_true_peak_dbtp`` (dBTP), ``core_fraction`` (share of pixels in the
        core), ``duration_s``.
    """
    model = model or default_model()
    noise_cf, music_cf = _as_pair(noise, music)
    core = noise_core(noise_cf, sample_rate, fraction=fraction, mask=mask,
                      listening_lufs=listening_lufs, model=model)
    threshold_music = model.threshold(model.power_spectrum(music_cf, sample_rate)
                                      * np.float32(core.level_gain) ** 2).at_gain(1.0)
    nmr = _nmr_from(core, threshold_music)
    w = core.weights[:, :nmr.shape[1]]
    in_core = w > 0
    values = nmr[in_core]
    noise_lufs = core.noise_lufs  # measured on noise_cf, in the mix's layout
    mix = noise_cf + music_cf
    mix_lufs = integrated_lufs(mix, sample_rate)
    gain = gain_to_mask(noise_cf, music_cf, sample_rate, share=share, model=model, core=core)
    energy = core.energy[:, :nmr.shape[1]]
    if values.size:
        threshold = energy / np.power(10.0, nmr / 10.0)
        nmr_energy = float(10.0 * np.log10(max((w * energy).sum(), 1e-30)
                                           / max((w * threshold).sum(), 1e-30)))
    else:
        nmr_energy = float("-inf")
    increase = float(mix_lufs - noise_lufs) if np.isfinite(noise_lufs) else 0.0
    unmasked = _unmasked(nmr, w, energy)
    return {
        "noise_lufs": noise_lufs,
        "music_lufs": integrated_lufs(music_cf, sample_rate),
        "mix_lufs": mix_lufs,
        "loudness_cost_lu": increase,
        "loudness_increase_lu": increase,
        "unmasked_fraction": unmasked,
        "masked_share": 1.0 - unmasked,
        "nmr_bark_db": _bark_nmr(core, threshold_music),
        "nmr_db_median": float(np.median(values)) if values.size else float("-inf"),
        "nmr_db_p90": float(np.percentile(values, 90)) if values.size else float("-inf"),
        "nmr_db_max": float(values.max()) if values.size else float("-inf"),
        "nmr_db_energy": nmr_energy,
        "gain_to_mask_db": gain_to_db(gain),
        "cost_to_mask_lu": _loudness_cost(noise_cf, music_cf, sample_rate, gain, noise_lufs),
        "mix_true_peak_dbtp": true_peak_dbtp(mix),
        "core_fraction": float(in_core.mean()) if in_core.size else 0.0,
        "duration_s": noise_cf.shape[1] / float(sample_rate),
    }
