"""``AdaptiveAmplifier`` (BNMusic stage 2) and ``LoudnessNormalize``.

The amplifier raises a music just enough to cover a noise's core: input = the music, sidechain
= the noise. The gain minimizes BNMusic's objective exactly (:mod:`.gain_solver`), once
for the whole clip ("global"), once per 10 ms frame with attack and release ("frame"), or once
per Bark band as a static EQ ("band", :mod:`.band_eq`), under a max-gain ceiling and a
true-peak ceiling, so nothing it outputs clips.
"""

from __future__ import annotations

import numpy as np
from blendfx.buffers import fit_length
from blendfx.dsp.loudness import db_to_gain, frame_true_peaks, gain_to_db, gain_to_lufs, true_peak_ceiling
from blendfx.effect import Effect
from blendfx.effects.mask_extractor import energy_core
from blendfx.errors import ParameterError
from blendfx.params import ChoiceParam, FloatParam, IntParam
from blendfx.spectral.analysis import fast_mel
from blendfx.spectral.mask import Mask
from blendfx.spectral.params import SpectrogramParams

from .band_eq import (
    apply_band_eq,
    band_curve_db,
    band_edges_hz,
    band_of_rows,
    bark_band_edges,
    mel_row_bark,
)
from .gain_solver import (
    GainProblem,
    bnmusic_objective,
    optimal_band_gains,
    optimal_frame_gains,
    smooth_gains,
    threshold_from_noise,
)

__all__ = ["AdaptiveAmplifier", "LoudnessNormalize", "check_noise_key", "SILENT_PEAK"]

#: A key (noise) whose sample peak stays under this (-140 dBFS, below 24-bit resolution) is
#: digital silence: it has no core to mask.
SILENT_PEAK = 1e-7


def check_noise_key(noise: np.ndarray, samples: int, owner: str) -> None:
    """Refuse a noise key that cannot drive the amplification, with a clear error.

    Parameters
    ----------
    noise : np.ndarray
        The key, ``(channels, samples)``.
    samples : int
        Length of the music it keys, in samples: the key must cover it (a shorter key would be
        zero-padded, and its missing part would mute the music).
    owner : str
        The effect's name, for the message.

    Raises
    ------
    ParameterError
        The key is shorter than the music, or it is digital silence (peak under
        :data:`SILENT_PEAK`: there is nothing to mask, and BNMusic's optimum would mute the music).
    """
    n = int(np.shape(noise)[-1])
    if n < samples:
        raise ParameterError(
            f"{owner}: the sidechain (the noise) is {n} samples but the music is {samples}: "
            f"give a noise at least as long as the music (same sample rate)")
    if samples and not float(np.abs(noise[..., :samples]).max(initial=0.0)) >= SILENT_PEAK:
        raise ParameterError(
            f"{owner}: the noise is digital silence (peak under -140 dBFS): there is nothing to "
            f"mask, so there is nothing to adapt the music to")

_FPS = SpectrogramParams().frames_per_second  # 100 gain frames per second (Riffusion's columns)


class AdaptiveAmplifier(Effect):
    """Amplify a music just enough to mask a noise's core (BNMusic's adaptive amplification).

    Input: the music. Sidechain: the noise, at least as long as the music (cropped to it); a
    shorter or silent noise is a :class:`~blendfx.ParameterError` (:func:`check_noise_key`).
    The noise's mel magnitudes raised by ``smr_db`` are the threshold ``T``; the loudest
    ``fraction`` of its pixels is the core ``M``; the music's mel magnitudes are ``S``; the gain
    ``l`` minimizes ``alpha * sum(l S) + sum(M * max(T - l S, 0))``, found exactly by one sort.

    Parameters
    ----------
    mode : {"global", "frame", "band"}
        "global": one gain for the whole clip (BNMusic). "frame": one gain per 10 ms frame, the
        per-frame optimum, smoothed with look-ahead attack and release so the music rises where
        (and just before) the noise needs covering and relaxes after. "band": one gain per Bark
        band (``bands`` of them over 0-10 kHz), each the optimum of the objective restricted to
        the band's mel rows, applied as a static zero-phase EQ that crossfades across the band
        edges: the music rises in the bands where the noise's core is and stays lower elsewhere
        (at most ``band_range_db`` under the highest band, instead of muted).
    smr_db : float
        Minimum signal-to-mask ratio in dB (21, Painter & Spanias): how far above the noise the
        music must reach in the core.
    alpha : float
        Price of loudness in the objective (0.14, BNMusic): higher = quieter music.
    fraction : float
        Share of the noise's mel-image pixels in the core (0.15).
    attack_ms, release_ms : float
        "frame" mode: rise time before a louder frame and decay time after it, in ms (time
        constants: 8.7 dB per constant).
    max_gain_db : float
        Highest gain applied, in dB.
    min_gain_db : float or None
        Lowest gain applied, in dB (None: no floor; a gain of 0 mutes).
    ceiling_dbtp : float or None
        True-peak ceiling of the output in dBTP (4x oversampled, BS.1770-4). None: no ceiling
        here, for a caller that trims the mix of noise and music as a whole afterwards (the
        output can then exceed 0 dBFS; ``Blend(ceiling_on="mix")``).
    bands : int
        "band" mode: number of bands, equal widths in Bark over the mel grid (8: ~2.8 Bark each).
    band_range_db : float
        "band" mode: no band is set more than this many dB under the highest band gain (a band
        the noise lacks would otherwise be muted: its optimum is 0). 0 gives every band the
        highest band's gain.
    band_crossfade_bark : float
        "band" mode: width of the linear-in-dB crossfade around each band edge, in Bark.
    analysis_stride : int
        2 (default): the mel analysis of noise and music at every other 10 ms frame, the
        columns between interpolated, the frames taken from the half-rate signal (the mel grid
        ends at 10 kHz): the 100 ms analysis window is oversampled in time at a 10 ms hop, so
        this costs little accuracy (median mel error 0.355 dB against Riffusion's exact mels
        instead of 0.157, energy-mask IoU 0.93 instead of 0.96, chosen gain within 0.18 dB,
        median over 15 ESC-10 clips: ``python benchmarks/amplifier.py``) for ~3/5 of the time
        (13.9-14.1 vs 21.7-24.0 ms CPU per 5.12 s clip on a shared 2-core box at load 4-5).
        1: every frame (Riffusion's grid). See :func:`blendfx.spectral.analysis.fast_mel`.

    Attributes
    ----------
    gains_db : np.ndarray
        After processing: the applied gain per 10 ms frame in dB (``-inf`` = muted).
    gain_db : float
        After processing: "global": the applied gain; "frame" and "band": the overall gain
        (music energy weighted), dB.
    band_gains_db : np.ndarray
        After processing in "band" mode: the gain of each band, dB (empty in other modes).
    band_edges_hz : np.ndarray
        The ``bands + 1`` band edges in Hz (0 Hz to 10 kHz).
    objective : float
        After processing: BNMusic's objective at the applied gains (the exact optimum unless a
        ceiling or the smoothing moved them).
    optimal_gain_db : float
        After processing: the objective's optimum for one global gain, before any ceiling, dB.
    last_mask : Mask
        After processing: the noise's core.

    Examples
    --------
    >>> amp = AdaptiveAmplifier(mode="frame", smr_db=21, alpha=0.14)        # doctest: +SKIP
    >>> louder = amp(music, 44100, sidechain=noise); amp.gain_db             # doctest: +SKIP
    """

    supports_streaming = False
    uses_sidechain = True
    requires_sidechain = True

    mode = ChoiceParam("global", ["global", "frame", "band"],
                       doc="One gain, one gain per 10 ms frame, or one gain per Bark band.")
    smr_db = FloatParam(21.0, min=0.0, max=40.0, unit="dB", doc="Minimum signal-to-mask ratio.")
    alpha = FloatParam(0.14, min=0.0, max=10.0, doc="Price of loudness in the objective.")
    fraction = FloatParam(0.15, min=0.01, max=0.5, doc="Share of noise pixels in the core.")
    attack_ms = FloatParam(20.0, min=0.0, max=2000.0, unit="ms", doc="Frame mode: rise time.")
    release_ms = FloatParam(250.0, min=0.0, max=10000.0, unit="ms", doc="Frame mode: decay time.")
    max_gain_db = FloatParam(30.0, min=-60.0, max=60.0, unit="dB", doc="Highest gain applied.")
    min_gain_db = FloatParam(None, min=-100.0, max=60.0, unit="dB",
                             doc="Lowest gain applied (None: no floor).")
    ceiling_dbtp = FloatParam(-1.0, min=-30.0, max=0.0, unit="dBTP", optional=True,
                              doc="True-peak ceiling (None: none; the caller trims the mix).")
    bands = IntParam(8, min=2, max=24, doc="Band mode: number of Bark bands over 0-10 kHz.")
    band_range_db = FloatParam(12.0, min=0.0, max=60.0, unit="dB",
                               doc="Band mode: lowest band gain under the highest one.")
    band_crossfade_bark = FloatParam(1.0, min=0.0, max=4.0, unit="Bark",
                                     doc="Band mode: crossfade width around each band edge.")
    analysis_stride = IntParam(2, min=1, max=4, unit="frames",
                               doc="Analyse every n-th 10 ms frame and interpolate (1: Riffusion's "
                                   "grid, ~0.2 dB more exact, ~1.35x the time).")

    def reset(self) -> None:
        super().reset()
        self._gains_db = np.zeros(0)
        self._gain_db = 0.0
        self._objective = 0.0
        self._optimal_gain_db = 0.0
        self._band_gains_db = np.zeros(0)
        self._mask: Mask | None = None

    @property
    def gains_db(self) -> np.ndarray:
        return self._gains_db.copy()

    @property
    def gain_db(self) -> float:
        return self._gain_db

    @property
    def objective(self) -> float:
        return self._objective

    @property
    def optimal_gain_db(self) -> float:
        return self._optimal_gain_db

    @property
    def last_mask(self) -> Mask | None:
        return self._mask

    @property
    def band_gains_db(self) -> np.ndarray:
        return self._band_gains_db.copy()

    @property
    def band_edges_hz(self) -> np.ndarray:
        return band_edges_hz(bark_band_edges(self.bands))

    # -- analysis ----------------------------------------------------------------------------
    def analyze(self, music: np.ndarray, noise: np.ndarray, sample_rate: float,
                mask: Mask | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Mask]:
        """BNMusic's ``(S, T, M)`` on the mel grid (rows low-first) and the core Mask.

        ``music`` and ``noise`` are ``(channels, samples)`` of equal length at ``sample_rate``.
        ``mask`` (image coordinates) replaces the core this effect would extract itself.
        """
        S, noise_mel, weights, mask = self._analysis(music, noise, sample_rate, mask)
        return S, threshold_from_noise(noise_mel, self.smr_db), weights.astype(np.float32), mask

    def _analysis(self, music: np.ndarray, noise: np.ndarray, sample_rate: float,
                  mask: Mask | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Mask]:
        """``(S, noise mel, M, mask)``: ``M`` is boolean (a view) for the effect's own core,
        float32 weights for a given mask. One noise analysis feeds the core and the threshold."""
        noise_mel = fast_mel(noise, sample_rate, stride=self.analysis_stride)
        music_mel = fast_mel(music, sample_rate, stride=self.analysis_stride)
        if mask is None:
            # MaskExtractor(fraction, analysis="fast").extract(noise, sr, mel=noise_mel), without
            # building an effect per call
            core = energy_core(noise_mel, self.fraction)
            return music_mel, noise_mel, core[::-1], Mask(core.astype(np.float32))
        weights = np.zeros_like(noise_mel)
        values = np.asarray(mask.values, dtype=np.float32)[::-1]
        take = min(weights.shape[1], values.shape[1])
        weights[:values.shape[0], :take] = values[:weights.shape[0], :take]
        return music_mel, noise_mel, weights, mask

    def _problem(self, S: np.ndarray, noise_mel: np.ndarray, M: np.ndarray) -> GainProblem:
        """The objective prepared once (solved, then scored at the gain the ceilings allow). A
        hard core needs the threshold only at its bins."""
        if M.dtype == bool:
            idx = np.flatnonzero(M)
            t = threshold_from_noise(noise_mel.ravel()[idx], self.smr_db)
            return GainProblem.on_core(S, t, idx, self.alpha)
        return GainProblem(S, threshold_from_noise(noise_mel, self.smr_db), M, self.alpha)

    # -- processing --------------------------------------------------------------------------
    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        assert sidechain is not None
        return self.amplify(audio, sidechain, sample_rate)

    def amplify(self, music: np.ndarray, noise: np.ndarray, sample_rate: float,
                mask: Mask | None = None) -> np.ndarray:
        """Amplify ``(channels, samples)`` ``music`` against ``noise`` (any channels, at least
        as long as the music and cropped to it), optionally with a given core ``mask``.

        What :meth:`process` does with the sidechain as the noise; :class:`Blend` calls it with
        the mask it extracted once. Sets :attr:`gains_db`, :attr:`gain_db`, :attr:`objective`.
        """
        with self._lock:
            return self._amplify(music, noise, sample_rate, mask)

    def _amplify(self, audio: np.ndarray, noise: np.ndarray, sample_rate: float,
                 mask: Mask | None) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        check_noise_key(noise, audio.shape[1], type(self).__name__)
        noise = fit_length(np.asarray(noise, dtype=np.float32), audio.shape[1])
        S, noise_mel, M, mask = self._analysis(audio, noise, sample_rate, mask)
        self._mask = mask
        frames = S.shape[1]
        problem = self._problem(S, noise_mel, M)
        best = problem.optimal_gain()
        self._optimal_gain_db = gain_to_db(best)
        if self.mode != "global":  # the per-frame and per-band solvers take the full arrays
            T = threshold_from_noise(noise_mel, self.smr_db)
            M = M.astype(np.float32) if M.dtype == bool else M
        if self.mode == "band":
            return self._amplify_bands(audio, sample_rate, S, T, M)
        if self.mode == "global":
            gains = np.full(frames, self._limit_global(audio, best))
        else:
            wanted = self._clamp(optimal_frame_gains(S, T, M, self.alpha))
            gains = smooth_gains(wanted, _FPS, self.attack_ms, self.release_ms)
            gains = self._limit_frames(audio, sample_rate, self._clamp(gains))
        out = self._apply(audio, sample_rate, gains)
        if self.mode == "frame" and self.ceiling_dbtp is not None:
            # the per-frame limits hold at the frame centres; between them the gain ramps and
            # the ramp itself can add a little: trim any residue (global gains are exact)
            out, trim_db = true_peak_ceiling(out, self.ceiling_dbtp)
            gains = gains * float(db_to_gain(trim_db))
        self._gains_db = np.asarray(gain_to_db(gains), dtype=np.float64).reshape(-1)
        if self.mode == "global" or not frames:
            # one gain: the scalar objective (the same value, without a per-frame gain gather)
            self._objective = problem.value(gains[0] if frames else 0.0)
            self._gain_db = gain_to_db(gains[0]) if frames else gain_to_db(best)
            return out
        self._objective = problem.value(gains)
        energy = np.square(S).sum(axis=0)
        self._gain_db = (0.5 * gain_to_db((energy * gains ** 2).sum() / energy.sum())
                         if energy.sum() > 0 else gain_to_db(gains[0]))
        return out

    def _amplify_bands(self, audio: np.ndarray, sample_rate: float, S: np.ndarray, T: np.ndarray,
                       M: np.ndarray) -> np.ndarray:
        """"band" mode: per-band optima, floored ``band_range_db`` under the highest, clamped,
        applied as a zero-phase EQ, then trimmed as a whole under the true-peak ceiling."""
        edges = bark_band_edges(self.bands)
        wanted = optimal_band_gains(S, T, M, band_of_rows(edges), self.alpha)
        top = float(wanted.max()) if wanted.size else 0.0
        if top > 0:  # a band the noise lacks (optimum 0) sits band_range_db under the top
            wanted = np.maximum(wanted, top * float(db_to_gain(-self.band_range_db)))
        band = self._clamp(wanted)
        frames = S.shape[1]
        if band.size and band.min() > 0:
            band_db = np.asarray(gain_to_db(band), dtype=np.float64)
            out = apply_band_eq(audio, sample_rate, band_db, edges, self.band_crossfade_bark)
            if self.ceiling_dbtp is not None:  # static filter: the trim is exact
                out, trim_db = true_peak_ceiling(out, self.ceiling_dbtp)
                band_db = band_db + trim_db
            rows = 10.0 ** (band_curve_db(band_db, edges, mel_row_bark(), self.band_crossfade_bark) / 20)
        else:  # nothing to mask anywhere (and no floor): muted, as in the other modes
            band_db = np.full(band.size, -np.inf)
            out = audio * np.float32(0.0)
            rows = np.zeros(S.shape[0])
        self._band_gains_db = band_db
        self._objective = bnmusic_objective(rows[:, None], S, T, M, self.alpha) if frames else 0.0
        energy = np.square(S, dtype=np.float64).sum(axis=1)
        overall = (energy @ rows ** 2) / energy.sum() if energy.sum() > 0 else float(rows.max() ** 2)
        self._gain_db = 0.5 * gain_to_db(overall)
        self._gains_db = np.full(frames, self._gain_db)
        return out

    def _clamp(self, gains: np.ndarray | float) -> np.ndarray:
        """Max-gain ceiling and optional floor, on linear gains."""
        g = np.minimum(np.asarray(gains, dtype=np.float64), db_to_gain(self.max_gain_db))
        if self.min_gain_db is not None:
            g = np.maximum(g, db_to_gain(self.min_gain_db))
        return g

    def _limit_global(self, music: np.ndarray, gain: float) -> float:
        """The global gain under the max-gain and true-peak ceilings."""
        gain = float(self._clamp(gain))
        if self.ceiling_dbtp is None:
            return gain
        ceiling = float(db_to_gain(self.ceiling_dbtp))
        whole = music.shape[1]
        upper = frame_true_peaks(music, whole, blocks=np.zeros(1, bool)).max()
        if gain * upper > ceiling:  # only then can the true peak reach the ceiling
            gain = min(gain, ceiling / frame_true_peaks(music, whole).max())
        return gain

    def _limit_frames(self, music: np.ndarray, sample_rate: float, gains: np.ndarray) -> np.ndarray:
        """Per-frame gains under the true-peak ceiling.

        Block ``j`` of ``hop`` samples lies between frame centres ``j`` and ``j+1``, where the
        applied gain is at most ``max(g_j, g_j+1)``; so frame ``k`` may not exceed the ceiling
        over the true peak of blocks ``k-1`` and ``k``. True peaks are computed exactly only for
        blocks whose cheap upper bound could reach the ceiling.
        """
        if gains.size == 0 or self.ceiling_dbtp is None:
            return gains
        ceiling = float(db_to_gain(self.ceiling_dbtp))
        hop = max(1, int(round(sample_rate / _FPS)))
        n_blocks = -(-music.shape[1] // hop)
        ext = np.pad(gains, (0, max(0, n_blocks + 1 - gains.size)), mode="edge")
        block_gain = np.maximum(ext[:n_blocks], ext[1:n_blocks + 1])
        upper = frame_true_peaks(music, hop, blocks=np.zeros(n_blocks, bool))
        risky = block_gain * upper > ceiling
        if not risky.any():
            return gains
        peaks = frame_true_peaks(music, hop, blocks=risky)
        with np.errstate(divide="ignore"):
            limit = np.where(peaks > 0, ceiling / peaks, np.inf)
        per_frame = np.full(gains.size, np.inf)
        k = min(gains.size, n_blocks)
        per_frame[:k] = limit[:k]  # block k
        per_frame[1:k + 1] = np.minimum(per_frame[1:k + 1], limit[:k][: gains.size - 1])  # block k-1
        if n_blocks > gains.size:  # after the last centre the last gain is held
            per_frame[-1] = min(per_frame[-1], limit[gains.size - 1:].min())
        return np.minimum(gains, per_frame)

    @staticmethod
    def _apply(audio: np.ndarray, sample_rate: float, gains: np.ndarray) -> np.ndarray:
        """Multiply by the gain curve: frame ``k`` sits at ``k * 10 ms``, linear in between."""
        if gains.size == 0:
            return audio * np.float32(0.0)
        if np.all(gains == gains[0]):
            return audio * np.float32(gains[0])
        pos = np.arange(audio.shape[1], dtype=np.float64) * (_FPS / sample_rate)
        curve = np.interp(pos, np.arange(gains.size), gains).astype(np.float32)
        return audio * curve[None, :]


class LoudnessNormalize(Effect):
    """Set a signal's integrated loudness (ITU-R BS.1770-4) to ``target_lufs``, under a
    true-peak ceiling.

    BNMusic sets each noise to -18 LUFS before blending. Silence passes unchanged. The gain is
    static (one number per call), measured on the whole buffer, so the effect works offline.

    Parameters
    ----------
    target_lufs : float
        Target integrated loudness in LUFS (-18).
    ceiling_dbtp : float
        True-peak ceiling in dBTP; the gain is lowered if the target would exceed it (-1).

    Attributes
    ----------
    gain_db : float
        After processing: the gain applied, dB.
    """

    supports_streaming = False

    target_lufs = FloatParam(-18.0, min=-70.0, max=0.0, unit="LUFS", doc="Target loudness.")
    ceiling_dbtp = FloatParam(-1.0, min=-30.0, max=0.0, unit="dBTP", doc="True-peak ceiling.")

    def reset(self) -> None:
        super().reset()
        self._gain_db = 0.0

    @property
    def gain_db(self) -> float:
        return self._gain_db

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        gain_db = gain_to_lufs(audio, sample_rate, self.target_lufs)
        out, trim_db = true_peak_ceiling(audio * np.float32(db_to_gain(gain_db)), self.ceiling_dbtp)
        self._gain_db = gain_db + trim_db
        return out
