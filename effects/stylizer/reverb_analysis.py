"""Reverberation analysis: blind RT60 and direct-to-reverberant ratio per octave band.

Blind (no impulse response available) estimation follows the decay-statistics family of
Ratnam et al. (2003) and Löllmann et al. (2010): a room's reverberation shows wherever a sound
stops, as a *free decay* of the band energy, linear in dB with slope ``-60 / RT60`` dB/s.

Per octave band:

1. the band's stationary background (noise floor) is estimated from the quietest frames of its
   smoothed energy envelope (a low percentile, corrected for the envelope's own chi-square
   spread), and subtracted from the envelope (Lundeby-style noise compensation); decays are
   only fitted where the envelope stands well clear of that floor (truncation). As in
   Lundeby et al. (1995), where a decay meets its floor is checked: when the envelope around
   that level is still falling (median local slope steeper than ``_FLOOR_SLOPE_DB_S``), the
   quietest frames are reverberant tails, not a background, and the floor is taken from the
   0.5th percentile instead (a reference without a floor, or a long room whose tails never
   reach it, was over-compensated: its decays bent down and were cut 6 dB above the lowest
   tails, and read short);
2. free decays (a fall from a local peak that does not rise again by more than six standard
   deviations of the envelope's own fluctuation) get a least-squares slope over their usable
   part (after the direct-sound drop, above the floor); decays that are not straight lines in
   dB are dropped. Real late tails fluctuate more than a smoothed noise envelope (sparse late
   reflections: 4-8 dB within 0.1 s in the tuning rooms' 500 Hz band): with three standard
   deviations decays stopped 15-20 dB down, on the early part, which in rooms with long low
   bands falls two to three times faster than the T30. A decay that bends *down* (slow, then
   three times faster: a drum's, a vibraphone's or a piano note's own fade, then its stop) is
   fitted after the bend only (:func:`_accelerating_knee`): under a floor the room's fast part
   is too short to fit and the source's fade alone used to be read as the room;
3. a decay cut short by the next sound (it ends above the band's quietest level) has shown only
   its early part, which in real rooms (early reflections, non-diffuse fields, unevenly spread
   absorption) falls faster than the late decay T30 measures, and faster still after a short
   sound (the decay of a burst follows the response's envelope, not its Schroeder integral):
   its RT60 is scaled by ``(30 dB / fitted range) ** 0.4``, at most by 1.3
   (:func:`_depth_corrected`; on the tuning rooms of ``benchmarks/stylizer.py`` cut-short
   decays of 10-20 dB read 0.5-0.9 of the T30, those that ran into the floor 0.7-1.0, and
   30 dB ones 1.0). A decay that runs into the floor keeps its slope, so a textbook
   exponential room (no curvature) reads right where its decays reach the floor;
4. a sound that fades by itself decays *slower* than the room, never faster: the band's RT60 is
   the weighted median of the lower cluster of per-decay estimates (those within a factor of 2
   of their weighted 35th percentile), each decay weighted by the fourth power of its fitted dB range
   (deep decays show the late decay that T30 measures, shallow ones only the early one); its
   confidence grows with the evidence (fitted dB) in that cluster and falls with its spread.

Across bands, a band whose own estimate lies more than a factor 2 from a confidence-weighted,
outlier-robust fit of the log RT60s (neighbouring bands of one room differ by tens of per cent,
not by factors) takes the fit's value; the others keep theirs (lightly smoothed), so a room's
real trend (125 Hz decays three times the 1 kHz one) stays; a band with no evidence is filled
in from its neighbours (above the highest observed band, never longer than it; see
:func:`_fill_unobserved`). The
broadband figure is the mean over 500 Hz-2 kHz of these final values, which is what a
synthetic response built from them measures (its T30).

The direct-to-reverberant ratio (DRR), per band, comes from the same analysis run a second time
with 3rd-order octave filters (whose shorter ringing keeps the direct sound's drop sharp; the
RT60s use 8th-order ones, see :func:`octave_sos`) and its decays: a model splits the
band's power frame by frame into direct sound and an exponential reverberant tail fed by it
(the tail's energy being ``1 / DRR`` times the direct sound's, decaying at the band's RT60); the
band's DRR is the one for which the tail the model predicts in the free decays (where there is no
direct sound) equals what was observed there. The per-band values are smoothed across bands like
the RT60s; the broadband DRR is their confidence-weighted median (one band's outlier does not
carry it). Envelopes smoothed over 20 ms or more cannot tell the direct sound from the
reflections that follow it within that time, so this DRR's "direct sound" holds the early
reflections too; :func:`.stylizer.early_split` turns it into a response's DRR proper.

:func:`schroeder_rt60` is the non-blind measurement (ISO 3382 style T20/T30 from the Schroeder
backward integral of an impulse response) used to check synthetic and stylized responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from blendfx.buffers import to_channels_first, to_mono
from scipy.signal import butter, sosfilt
from scipy.stats import chi2

from .impulse import band_weights

__all__ = [
    "OCTAVE_CENTERS_HZ",
    "ReverbEstimate",
    "octave_centers",
    "octave_sos",
    "estimate_reverb",
    "schroeder_rt60",
    "fill_bands",
    "smooth_across_bands",
    "band_energy_fractions",
    "diffuse_drr_floor_db",
]

#: Nominal octave-band centres in Hz (IEC 61260 nominal values).
OCTAVE_CENTERS_HZ: tuple[float, ...] = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)

_OCTAVE_ORDER = 8       # Butterworth order of the octave filters (see octave_sos) ...
_DRR_ORDER = 3          # ... and of those the DRR comes from (shorter ringing)
_HOP_S = 0.005          # envelope frame hop, s
_MIN_SMOOTH_S = 0.02    # shortest envelope smoothing window, s
_SMOOTH_CYCLES = 10.0   # envelope smoothing window in periods of the band's bandwidth
_RISE_TOL_SIGMAS = 6.0  # a decay ends when the envelope rises this many fluctuation std's
                        # (or at least 2 dB) above its running minimum (tuning rooms, mean of the
                        # 500 Hz-2 kHz band RT60s, median error: 12.1 % with 3, 8.9 % with 4,
                        # 8.5 % with 5, 7.1 % with 6, 8.9 % with 7, 10.1 % with 8)
_DRR_RISE_TOL_SIGMAS = 3.0  # the same for the DRR pass (its decays' first frames carry the DRR)
_SKIP_DB = 5.0          # skip the first 5 dB of a decay (direct sound, source offset)
_FLOOR_PERCENTILE = 5.0  # the quietest 5 % of a band's frames give its background level
_FLOOR_MARGIN_DB = 6.0  # fit only where the envelope is this far above the background
_MIN_RANGE_DB = 10.0    # a decay must fall at least this far to be fitted
_MAX_RANGE_DB = 40.0    # fit at most this much of one decay
_KNEE_RATIO = 1.5       # a decay whose first half is this much steeper than its second has a knee
_FLOOR_REACHED_DB = 3.0  # a decay ending this close to its usable floor ran into it; others were
                         # cut short by the next sound
_FLOOR_SLOPE_DB_S = 5.0  # frames near the background level falling faster than this (dB/s) ...
_UNREACHED_PERCENTILE = 0.5  # ... are reverberant tails, not a floor: the background comes from
                             # this percentile of the frames instead
_SLOPE_WINDOW_S = 0.2   # window of the local slope of the envelope, s
_FULL_DEPTH_DB = 30.0   # cut-short decays fitted over less than this ...
_DEPTH_EXP = 0.4        # ... read short (their early part falls faster than T30): _depth_corrected
                        # (tuning rooms, T30 median error: 13.8 % with 0, 11.7 % with 0.2, 10.6 % with 0.4)
_MAX_DEPTH_SCALE = 1.3  # ... by at most this factor: a textbook exponential room has no early decay
                        # of its own (a dog bark in a 2 s one read 2.65 s uncapped, 2.41 s so;
                        # tuning rooms 10.6 % instead of 10.1 %)
_ACCEL_RATIO = 3.0      # a decay that falls this many times faster after a bend ...
_ACCEL_MIN_DB = 5.0     # ... and lies this far (mean, dB) under its earlier line there ...
_BEND_MIN_HEAD_DB = 6.0  # ... after falling at least this far before it was a source fading by
                        # itself until it stopped (_accelerating_knee). Tuning rooms, median /
                        # worst T30 error: head 0 / 3 / 6 / 10 dB: 6.4 / 5.3 / 6.3 / 6.9 %, 127 /
                        # 97 / 41 / 41 %; ratio 2 / 3 / 4 (5 dB): 6.7 / 6.5 / 6.6 %; 3 / 4 / 5 / 6 dB
                        # (ratio 3): 7.3 / 6.8 / 6.5 / 6.5 % (those two grids before the head limit)
_ACCEL_MIN_FRAMES = 3   # frames on either side of the bend
_BEND_MAX_HEAD_DB = 30.0  # a decay straight for this many dB before a bend is the room's (a
                          # stylized stem's decay ends where the applied response ends)
_BEND_EXT_DB = 4.77     # the bend is looked for down to this far under the fitted range's end:
                        # about where the compensated envelope equals the background
_MAX_RESIDUAL_DB = 2.5  # reject decays that are not straight lines in dB
_LOW_QUANTILE = 0.35    # the lower cluster of decays is anchored at this weighted quantile ...
_CLUSTER_SPAN = 2.0     # ... and holds the decays up to this factor above it
_WEIGHT_POWER = 4.0     # a decay's weight: its fitted dB range to this power (deep decays show the
                        # late decay T30 measures; 4 rather than 2 on the tuning rooms: 13.9 % vs 16.6 %)
_DRR_WEIGHT_POWER = 2.0  # the same for the DRR pass (tuning rooms: 2.3 dB median error, 2.5 with 4)
_EVIDENCE_DB = 60.0     # fitted dB (summed over decays) for half confidence
_SMOOTH_LAMBDA = 1.0    # cross-band smoothing strength (per unit confidence) on the curvature ...
_SLOPE_LAMBDA = 0.05    # ... and (weakly) on the slope of log RT60 over the bands
_ROBUST_LN = 0.2        # cross-band residual (natural log) beyond which a band is down-weighted
_KEEP_LAMBDA = 0.01     # the light smoothing a band that agrees with its neighbours gets
_OUTLIER_LN = np.log(5.0)  # a band this far (natural log) from the robust fit is an outlier
                           # (real rooms' neighbouring octaves differ by up to 3; tuning rooms,
                           # cases over 25 %: 9 with a factor 2, 5 with 4 or 5)
_KEEP_CONF = 0.1       # confidence at which a band's own value and the robust fit weigh equally
_DRR_SMOOTH_S = 0.1     # longest envelope smoothing for the DRR model (RT60 / 6 below that), s
_EARLY_WINDOW_S = 0.025  # the blind DRR's "direct sound" spans this much after the direct sound ...
_DIRECT_WINDOW_S = 0.0025  # ... of which the direct sound proper is this much (s)
_EARLY_EXCESS_DB = 4.5  # early reflections and direct sound above the diffuse tail's early part
                        # (diffuse_drr_floor_db; chosen on the tuning rooms)
_DRR_GRID_DB = np.arange(-24.0, 24.01, 0.5)
_RT60_RANGE_S = (0.05, 12.0)
_MID_BANDS_HZ = (500.0, 2000.0)  # the broadband RT60 is the mean over these bands (inclusive)


def octave_centers(sample_rate: float) -> np.ndarray:
    """Octave-band centres in Hz whose upper edge stays below 0.45 x ``sample_rate``."""
    top = 0.45 * float(sample_rate)
    return np.array([c for c in OCTAVE_CENTERS_HZ if c * np.sqrt(2.0) < top], dtype=np.float64)


def octave_sos(center_hz: float, sample_rate: float, order: int = _OCTAVE_ORDER) -> np.ndarray:
    """Butterworth octave band-pass around ``center_hz`` in second-order sections.

    Edges (-3 dB) at centre / sqrt 2 and centre x sqrt 2, the base-2 octave edges of IEC
    61260-1; ``order`` is the low-pass prototype's order (the band-pass has twice as many
    poles). The default 8 attenuates 52 dB one octave from the centre and 116 dB two octaves
    away (order 3: 20 and 44 dB; IEC 61260-1 sets minimum stop-band attenuations, not a maximum
    steepness), steep enough that a neighbouring band's decay three or four times longer (a
    room's 125-250 Hz against its 500 Hz) does not carry this band's T30 below -20 dB.

    Parameters
    ----------
    center_hz : float
        Band centre in Hz.
    sample_rate : float
        Sample rate in Hz.
    order : int
        Butterworth prototype order (>= 1).
    """
    edges = np.array([center_hz / np.sqrt(2.0), center_hz * np.sqrt(2.0)])
    return butter(int(order), edges, btype="bandpass", fs=float(sample_rate), output="sos")


@dataclass(frozen=True)
class ReverbEstimate:
    """What :func:`estimate_reverb` found.

    Attributes
    ----------
    centers_hz : np.ndarray
        Octave-band centres in Hz.
    rt60_s : np.ndarray
        RT60 per band in s after the cross-band fit (bands without evidence filled in from
        their neighbours); all NaN when the recording showed no usable free decay.
    n_decays : np.ndarray
        Number of free decays that went into each band's own estimate.
    drr_db : float
        Broadband direct-to-reverberant energy ratio in dB, the direct sound counting what
        arrives within about 25 ms of it (the envelopes' resolution): the confidence-weighted
        median of ``band_drr_db`` (NaN when no band has one).
    notes : tuple of str
        Why something could not be estimated.
    raw_rt60_s : np.ndarray
        Each band's own estimate in s (NaN where it had no usable decay), before the fit.
    confidence : np.ndarray
        Per-band confidence of the RT60 in [0, 1): evidence (fitted dB) over evidence plus
        ``_EVIDENCE_DB``, reduced by the spread of the decays; 0 where there were none.
    band_drr_db : np.ndarray
        Direct-to-reverberant ratio per band in dB (after the cross-band fit; NaN when unknown).
    drr_confidence : np.ndarray
        Per-band confidence of ``band_drr_db`` in [0, 1).
    noise_floor_db : np.ndarray
        Per-band background level in dB (re. full-scale power) that was compensated for.
    sample_rate : float
        Rate of the analysed recording in Hz (sets the bands' share of a white direct sound).
    """

    centers_hz: np.ndarray
    rt60_s: np.ndarray
    n_decays: np.ndarray
    drr_db: float = float("nan")
    notes: tuple[str, ...] = field(default=())
    raw_rt60_s: np.ndarray | None = None
    confidence: np.ndarray | None = None
    band_drr_db: np.ndarray | None = None
    drr_confidence: np.ndarray | None = None
    noise_floor_db: np.ndarray | None = None
    sample_rate: float = 44100.0

    @property
    def valid(self) -> bool:
        """True when at least one band has an estimate."""
        return bool(np.isfinite(self.rt60_s).any())

    @property
    def broadband_rt60_s(self) -> float:
        """One RT60 in s: the mean of the final band values over 500 Hz-2 kHz (what the T30 of
        a response built from them measures there); NaN when no band has one."""
        if not self.valid:
            return float("nan")
        mid = (self.centers_hz >= _MID_BANDS_HZ[0]) & (self.centers_hz <= _MID_BANDS_HZ[1])
        use = mid & np.isfinite(self.rt60_s)
        if not use.any():
            use = np.isfinite(self.rt60_s)
        return float(np.mean(self.rt60_s[use]))


def fill_bands(centers_hz: np.ndarray, values: np.ndarray, default: float) -> np.ndarray:
    """Fill NaN band values by interpolation in log frequency (constant beyond the ends);
    ``default`` everywhere when no band has a value."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    if not ok.any():
        return np.full(values.shape, float(default))
    logf = np.log2(centers_hz)
    return np.interp(logf, logf[ok], values[ok])


def band_energy_fractions(centers_hz: np.ndarray, sample_rate: float) -> np.ndarray:
    """Share of a white signal's spectrum (0 Hz to Nyquist) that each band of the
    amplitude-complementary crossover of :func:`.impulse.band_weights` owns (lowest band down
    to 0 Hz, highest up to Nyquist); sums to 1."""
    freqs = np.linspace(0.0, 0.5 * float(sample_rate), 4097)
    w = band_weights(freqs, np.asarray(centers_hz, dtype=np.float64))
    share = w.sum(axis=1)
    return share / share.sum()


def smooth_across_bands(values: np.ndarray, weights: np.ndarray, lam: float = _SMOOTH_LAMBDA,
                        robust: float = _ROBUST_LN, iterations: int = 4,
                        slope_lam: float = _SLOPE_LAMBDA) -> np.ndarray:
    """Confidence-weighted, outlier-robust smoothing of per-band values (e.g. log RT60).

    Minimises ``sum w_b (x_b - y_b)^2 + lam * sum (x_{b+1} - 2 x_b + x_{b-1})^2
    + slope_lam * sum (x_{b+1} - x_b)^2`` and re-weights each band by
    ``1 / (1 + (residual / robust)^2)`` (Cauchy), so one band that disagrees strongly with its
    neighbours follows them instead,
    while a steady trend over the bands (RT60 falling with frequency) is kept. Bands with NaN
    values or zero weight take the fit's value.

    Parameters
    ----------
    values : np.ndarray
        Per-band values (NaN where unknown).
    weights : np.ndarray
        Per-band confidence (>= 0).
    lam : float
        Strength of the second-difference (curvature) penalty.
    robust : float
        Residual (in the values' units) beyond which a band's weight is reduced.
    iterations : int
        Re-weighting rounds.
    slope_lam : float
        Strength of the first-difference (slope) penalty.

    Returns
    -------
    np.ndarray
        The fitted values (all NaN when no band has a value with positive weight).
    """
    y = np.asarray(values, dtype=np.float64)
    w0 = np.where(np.isfinite(y), np.maximum(np.asarray(weights, dtype=np.float64), 0.0), 0.0)
    n = y.size
    if not (w0 > 0).any():
        return np.full(n, np.nan)
    y0 = np.where(w0 > 0, y, 0.0)
    d1 = np.diff(np.eye(n), axis=0)
    d2 = np.diff(np.eye(n), n=2, axis=0)
    pen = lam * d2.T @ d2 + slope_lam * d1.T @ d1
    w = w0.copy()
    x = y0
    for _ in range(iterations):
        a = np.diag(w) + pen + 1e-9 * np.eye(n)
        x = np.linalg.solve(a, w * y0)
        r = np.abs(y0 - x)
        w = w0 / (1.0 + (r / robust) ** 2)
    return x


def estimate_reverb(audio: np.ndarray, sample_rate: float,
                    centers_hz: np.ndarray | None = None) -> ReverbEstimate:
    """Blind RT60 and DRR per octave band from a recording's free decays.

    Parameters
    ----------
    audio : np.ndarray
        The recording, any layout (mixed to mono).
    sample_rate : float
        Sample rate in Hz.
    centers_hz : np.ndarray, optional
        Band centres in Hz (default: :func:`octave_centers`).

    Returns
    -------
    ReverbEstimate
        With no usable decay in any band (too short a recording, a steady sound with no
        pauses) every RT60 is NaN and the reason is in ``notes``.
    """
    sr = float(sample_rate)
    data, _ = to_channels_first(audio, name="reference")
    mono = to_mono(data).astype(np.float64)
    centers = octave_centers(sr) if centers_hz is None else np.asarray(centers_hz, float)
    est = _estimate(mono, sr, centers, _OCTAVE_ORDER, _WEIGHT_POWER, _DEPTH_EXP, True,
                    _RISE_TOL_SIGMAS)
    if not est.valid:
        return est
    # the DRR from a second pass with 3rd-order octave filters: the DRR model reads the direct
    # sound's drop in the first frames of each band envelope, which an 8th-order filter's
    # longer ringing smears (tuning rooms of benchmarks/stylizer.py: median DRR error 2.3 dB
    # this way, 3.2 dB from the 8th-order pass); the RT60s keep the steeper filters
    short = _estimate(mono, sr, centers, _DRR_ORDER, _DRR_WEIGHT_POWER, 0.0, False,
                      _DRR_RISE_TOL_SIGMAS)
    notes = tuple(n for n in est.notes if "direct-to-reverberant" not in n) + tuple(
        n for n in short.notes if "direct-to-reverberant" in n)
    return replace(est, drr_db=short.drr_db, band_drr_db=short.band_drr_db,
                   drr_confidence=short.drr_confidence, notes=notes)


def diffuse_drr_floor_db(rt60_s: float) -> float:
    """Lowest blind DRR (dB) a response built for a real room of ``rt60_s`` is given: the early
    part of its diffuse tail over the rest, raised by the early reflections' excess.

    The blind DRR's "direct sound" holds everything within ``_EARLY_WINDOW_S`` of the direct
    sound (envelopes smoothed over 20 ms or more), so it is at least the energy an exponential
    tail puts there, over the energy after it: ``exp(ln(10^6) (_EARLY_WINDOW_S -
    _DIRECT_WINDOW_S) / RT60) - 1``, even with no direct sound at all. Real rooms put more there
    (early reflections arrive denser than the statistical tail: 2-4 dB more in most of the
    tuning rooms of ``benchmarks/stylizer.py``) and the direct sound adds to it:
    ``_EARLY_EXCESS_DB`` on top, chosen on the tuning rooms (median DRR error of the applied
    response 2.30 dB without the floor, 2.15 with 2.5 dB, 1.60 with 4.5 dB, 1.73 with 5 dB).
    A blind estimate below it has mostly read a source's own decay (a drum's ring, a
    vibraphone, a held note's release) as reverberation. :class:`~.stylizer.Stylizer` applies
    it when it builds the response; the blind estimate itself is left as measured (a textbook
    exponential room, with no early reflections, can lie below it).

    Parameters
    ----------
    rt60_s : float
        The room's broadband RT60 in s (NaN or <= 0: NaN).

    Returns
    -------
    float
        The floor in dB.
    """
    rt = float(rt60_s)
    if not (np.isfinite(rt) and rt > 0):
        return float("nan")
    x = np.log(1e6) * (_EARLY_WINDOW_S - _DIRECT_WINDOW_S) / rt
    return float(10.0 * np.log10(np.expm1(x))) + _EARLY_EXCESS_DB


def _estimate(mono: np.ndarray, sr: float, centers: np.ndarray, order: int,
              weight_power: float, depth_exp: float, floor_check: bool,
              rise_tol_sigmas: float) -> ReverbEstimate:
    """:func:`estimate_reverb` on a mono float64 recording with octave filters of ``order``,
    decays weighted by their fitted range to ``weight_power``, a decay ending where the
    envelope rises ``rise_tol_sigmas`` of its own fluctuation above its running minimum."""
    hop = max(1, int(round(_HOP_S * sr)))
    frame_s = hop / sr
    raw = np.full(centers.size, np.nan)
    conf = np.zeros(centers.size)
    counts = np.zeros(centers.size, dtype=int)
    floors = np.full(centers.size, -np.inf)
    powers: list[np.ndarray] = []
    decays: list[np.ndarray] = []
    for i, fc in enumerate(centers):
        power = _frame_power(sosfilt(octave_sos(fc, sr, order), mono), hop)
        # narrow (low) bands fluctuate more: smooth over _SMOOTH_CYCLES periods of the bandwidth
        bandwidth = fc / np.sqrt(2.0)
        m = max(1, int(round(max(_MIN_SMOOTH_S, _SMOOTH_CYCLES / bandwidth) / frame_s)))
        dof = max(2.0, 2.0 * bandwidth * m * frame_s)
        smooth = 10.0 ** (_smooth_db(power, m) / 10.0)
        floor = quiet = _background(smooth, dof)
        if floor_check and _floor_slope(smooth, floor, frame_s) < -_FLOOR_SLOPE_DB_S:
            # the quietest frames still decay: the floor, if any, lies under them
            floor = min(floor, _background(smooth, dof, _UNREACHED_PERCENTILE))
        floors[i] = 10.0 * np.log10(floor + 1e-30)
        compensated = np.maximum(smooth - floor, 1e-30)
        env_db = 10.0 * np.log10(compensated)
        # std of the log of a smoothed chi-square envelope: 10 log10(e) * sqrt(2 / dof)
        tol = max(2.0, rise_tol_sigmas * 4.34 * np.sqrt(2.0 / dof))
        usable_db = 10.0 * np.log10(floor * (10.0 ** (_FLOOR_MARGIN_DB / 10.0) - 1.0) + 1e-30)
        # a decay that ends this low ran into the band's quietest level (a floor, or the
        # lowest the tails ever fall), one that ends above it was cut short by the next sound
        reached = quiet * (1.0 + (10.0 ** (_FLOOR_MARGIN_DB / 10.0) - 1.0)
                           * 10.0 ** (_FLOOR_REACHED_DB / 10.0)) - floor
        fits = _decay_fits(env_db, frame_s, skip_frames=m + 2, rise_tol_db=tol,
                           usable_db=usable_db, reached_db=10.0 * np.log10(reached + 1e-30),
                           bend_check=floor_check)  # the RT60 pass only
        compensated[smooth < floor * 10.0 ** (_FLOOR_MARGIN_DB / 10.0)] = 0.0
        powers.append(compensated)
        keep, rt, c = _band_rt60(fits, weight_power, depth_exp)
        decays.append(fits[keep])
        if np.isfinite(rt):
            raw[i], conf[i], counts[i] = rt, c, int(keep.sum())
    notes: list[str] = []
    if not np.isfinite(raw).any():
        notes.append(f"no free decay of at least {_MIN_RANGE_DB:g} dB found in "
                     f"{mono.size / sr:.2f} s of reference: RT60 unknown")
        nan = np.full(centers.size, np.nan)
        return ReverbEstimate(centers, nan, counts, float("nan"), tuple(notes), raw, conf, nan,
                              np.zeros(centers.size), floors, sr)
    log_rt = _across_bands(np.log(raw), conf)
    log_rt = _fill_unobserved(centers, log_rt, conf)
    rt60 = np.clip(np.exp(log_rt), *_RT60_RANGE_S)
    band_drr, drr_conf = _estimate_band_drr(powers, decays, rt60, frame_s)
    if np.isfinite(band_drr).any():
        band_drr = smooth_across_bands(band_drr, drr_conf, robust=3.0)
        drr = _broadband_drr(band_drr, drr_conf)
    else:
        band_drr = np.full(centers.size, np.nan)
        drr = float("nan")
        notes.append("no band gave a direct-to-reverberant ratio")
    return ReverbEstimate(centers, rt60, counts, drr, tuple(notes), raw, conf, band_drr,
                          drr_conf, floors, sr)


def _across_bands(log_rt: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Per-band log RT60 after the cross-band check: a band with evidence of its own keeps it
    (lightly smoothed, ``_KEEP_LAMBDA``) unless it lies more than a factor 2 from the strong,
    outlier-robust fit of :func:`smooth_across_bands` (neighbouring octaves of one room differ
    by tens of per cent, not by factors), which then replaces it; the result leans on the
    strong fit as far as the band's evidence is weak (weight ``conf / (conf + _KEEP_CONF)`` on
    its own value). The strong fit alone flattens real trends: rooms whose 125-250 Hz decays
    are two to three times their 1 kHz one read 30-45 % short there and 25 % short at 500 Hz
    (tuning rooms of ``benchmarks/stylizer.py``)."""
    strong = smooth_across_bands(log_rt, conf)
    light = smooth_across_bands(log_rt, conf, lam=_KEEP_LAMBDA, slope_lam=0.2 * _KEEP_LAMBDA)
    wild = np.abs(np.where(conf > 0, log_rt, strong) - strong) > _OUTLIER_LN
    if wild.any() and (~wild & (conf > 0)).any():  # refit without the outliers (they take the fit)
        light = smooth_across_bands(log_rt, np.where(wild, 0.0, conf), lam=_KEEP_LAMBDA,
                                    slope_lam=0.2 * _KEEP_LAMBDA)
        light[wild] = strong[wild]
    keep = conf / (conf + _KEEP_CONF)  # weak evidence leans on the neighbours
    return keep * light + (1.0 - keep) * strong


def _fill_unobserved(centers: np.ndarray, log_rt: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Log RT60 for the bands without a decay of their own (``conf == 0``).

    A gap between observed bands is interpolated in log frequency; bands below the lowest
    observed one take its value. Bands above the highest observed one (``top``) take its value
    too, lowered along the observed bands' own fall where they fall with frequency (the
    confidence-weighted slope of log RT60 over octaves, when three or more bands are observed
    and it is negative), and never exceed ``top``'s value: air absorption and the absorption
    of ordinary materials (carpet, plaster, upholstery, people) rise with frequency, so a room's
    RT60 above 1-2 kHz falls or stays level, and a band whose decays were too short to clear the
    noise floor is among the shortest. Filling such a band from a rising trend, or from longer
    low bands, made a dead office's 1-2 kHz read 1.2 s for 0.5 s.

    Parameters
    ----------
    centers : np.ndarray
        Band centres in Hz.
    log_rt : np.ndarray
        Natural log of RT60 in s per band (after the cross-band check).
    conf : np.ndarray
        Per-band confidence (0: no decay observed).

    Returns
    -------
    np.ndarray
        Log RT60 per band, every band filled.
    """
    seen = conf > 0
    out = fill_bands(centers, np.where(seen, log_rt, np.nan), float(np.nanmean(log_rt)))
    if not seen.any():
        return out
    octaves = np.log2(centers)
    top = int(np.flatnonzero(seen).max())
    slope = 0.0
    if seen.sum() >= 3:
        w = conf[seen]
        x = octaves[seen] - np.average(octaves[seen], weights=w)
        slope = min(0.0, float(np.sum(w * x * (log_rt[seen] - np.average(log_rt[seen], weights=w)))
                               / np.sum(w * x * x)))
    above = np.arange(centers.size) > top
    out[above] = log_rt[top] + slope * (octaves[above] - octaves[top])
    return out


def _broadband_drr(band_drr: np.ndarray, conf: np.ndarray) -> float:
    """Broadband DRR in dB: the confidence-weighted median of the per-band values (equal
    weights when no band has confidence). The DRR of a white direct impulse over the band
    tails would follow the band with the lowest value, outlier or not."""
    ok = np.isfinite(band_drr) & (conf > 0)
    if not ok.any():
        ok = np.isfinite(band_drr)
        return _weighted_quantile(band_drr[ok], np.ones(int(ok.sum())), 0.5)
    return _weighted_quantile(band_drr[ok], conf[ok], 0.5)


def _background(smooth: np.ndarray, dof: float, percentile: float = _FLOOR_PERCENTILE) -> float:
    """A band's stationary background power: the ``_FLOOR_PERCENTILE`` percentile of its
    smoothed envelope, divided by where that percentile of a smoothed chi-square envelope of
    ``dof`` degrees of freedom sits re. its mean (the quietest frames of a noise floor lie
    below its mean). Recordings without a floor give the level of their quietest decays,
    which the compensation then barely touches."""
    low = float(np.percentile(smooth, percentile))
    return low / (chi2.ppf(percentile / 100.0, dof) / dof)


def _floor_slope(smooth: np.ndarray, floor: float, frame_s: float) -> float:
    """Median local slope in dB/s of a band's smoothed power envelope ``smooth`` over the
    frames within 3 dB of its background estimate ``floor`` (least-squares slope over
    ``_SLOPE_WINDOW_S``): about 0 where the recording rests on a stationary background, the
    decay rate of its reverberant tails where its quietest moments are still decaying (Lundeby
    et al. 1995 check where a decay meets its noise floor; a floor the tails never reach is
    none). 0 when the envelope is shorter than the window."""
    k = max(3, int(round(_SLOPE_WINDOW_S / frame_s)))
    db = 10.0 * np.log10(smooth + 1e-30)
    if db.size < k + 1:
        return 0.0
    t = np.arange(k, dtype=np.float64) - 0.5 * (k - 1)
    slope = np.correlate(db, t, mode="valid") / np.dot(t, t) / frame_s  # sliding LS slope
    centre = db[k // 2: k // 2 + slope.size]
    near = centre < 10.0 * np.log10(floor + 1e-30) + 3.0
    return float(np.median(slope[near])) if near.any() else 0.0


def _band_rt60(fits: np.ndarray, weight_power: float = _WEIGHT_POWER,
               depth_exp: float = 0.0) -> tuple[np.ndarray, float, float]:
    """The band's RT60 from its decays: which decays were kept, the RT60 (NaN if none) and its
    confidence.

    Sounds that fade by themselves make decays slower than the room's, never faster, so the
    room is the lower cluster: decays up to ``_CLUSTER_SPAN`` times the weighted
    ``_LOW_QUANTILE`` quantile. The RT60 is their weighted median; the confidence is their
    fitted dB over that plus ``_EVIDENCE_DB``, times ``1 / (1 + (4 * relative MAD)^2)``, the
    decays weighted by their fitted dB range to the power ``weight_power``. Decays cut short
    by the next sound are first scaled by :func:`_depth_corrected` with ``depth_exp``."""
    keep = np.zeros(fits.shape[0], dtype=bool)
    if fits.shape[0] == 0:
        return keep, float("nan"), 0.0
    rts = np.where(fits[:, 4] > 0, _depth_corrected(fits[:, 0], fits[:, 1], depth_exp), fits[:, 0])
    w = fits[:, 1] ** weight_power
    anchor = _weighted_quantile(rts, w, _LOW_QUANTILE)
    keep = rts <= _CLUSTER_SPAN * anchor
    rt = _weighted_quantile(rts[keep], w[keep], 0.5)
    evidence = float(fits[keep, 1].sum())
    spread = _weighted_quantile(np.abs(np.log(rts[keep] / rt)), w[keep], 0.5)
    conf = evidence / (evidence + _EVIDENCE_DB) / (1.0 + (4.0 * spread) ** 2)
    return keep, rt, conf


def _depth_corrected(rt: np.ndarray, range_db: np.ndarray, exponent: float) -> np.ndarray:
    """Per-decay RT60s scaled to what a T30 would read.

    Parameters
    ----------
    rt : np.ndarray
        RT60 in s of each decay's fitted line.
    range_db : np.ndarray
        The dB range each line was fitted over.
    exponent : float
        ``rt * min((_FULL_DEPTH_DB / range_db) ** exponent, _MAX_DEPTH_SCALE)`` (ranges of
        ``_FULL_DEPTH_DB`` dB or more are left alone; 0 leaves every decay alone).

    Returns
    -------
    np.ndarray
        The scaled RT60s in s.
    """
    depth = np.clip(range_db, 1.0, _FULL_DEPTH_DB)
    return rt * np.minimum((_FULL_DEPTH_DB / depth) ** exponent, _MAX_DEPTH_SCALE)


def _frame_power(band: np.ndarray, hop: int) -> np.ndarray:
    """Mean power of ``band`` in consecutive ``hop``-sample frames."""
    n = band.size // hop
    return (band[: n * hop] ** 2).reshape(n, hop).mean(axis=1) if n else np.zeros(0)


def _smooth_db(power: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average of ``power`` over ``frames`` frames, in dB, same length.

    A moving average of an exponential decay is the same exponential, so smoothing in the power
    domain steadies an envelope without biasing decay slopes.
    """
    n = power.size
    if n >= frames > 1:
        c = np.concatenate([[0.0], np.cumsum(power)])
        smooth = (c[frames:] - c[:-frames]) / frames
        lead = (frames - 1) // 2
        power = np.concatenate([np.full(lead, smooth[0]), smooth,
                                np.full(n - smooth.size - lead, smooth[-1])])
    return 10.0 * np.log10(power + 1e-20)


def _decay_fits(env_db: np.ndarray, frame_s: float, skip_frames: int,
                rise_tol_db: float, usable_db: float, reached_db: float,
                bend_check: bool = False) -> np.ndarray:
    """Free decays of one (noise-compensated) band envelope: rows of
    ``(rt60_s, weight, first_frame, last_frame, cut_short)``.

    A decay starts at a local peak and lasts while the envelope stays within a tolerance
    of its running minimum (``rise_tol_db``: six standard deviations of the envelope's own
    fluctuation for the RT60s, three for the DRR). Its first ``skip_frames`` frames and first
    ``_SKIP_DB`` dB are skipped (the direct sound's drop, smeared by the smoothing window), and
    it is cut where it reaches ``usable_db`` (just clear of the compensated background). The
    weight is the fitted range in dB: long clean decays count more. ``cut_short`` is 1 for a
    decay that ends above ``reached_db`` (the band's quietest level: it was cut short by the
    next sound), else 0.
    """
    n = env_db.size
    if n < 4:
        return np.zeros((0, 5))
    top = float(env_db.max())
    if top - usable_db < _MIN_RANGE_DB + _SKIP_DB:
        return np.zeros((0, 5))
    out: list[tuple[float, float, float, float, float]] = []
    k = 0
    while k < n - 1:
        while k < n - 1 and env_db[k + 1] >= env_db[k]:  # climb to the next peak
            k += 1
        start, run_min, j = k, env_db[k], k + 1
        while j < n and env_db[j] <= run_min + rise_tol_db:
            run_min = min(run_min, env_db[j])
            j += 1
        seg = env_db[start:j]
        end = int(np.argmin(seg))
        fit = _fit_decay(seg[: end + 1], frame_s, skip_frames, usable_db, bend_check)
        if fit is not None:
            rt, weight, first, last = fit
            cut_short = float(seg[last] > reached_db)
            out.append((rt, weight, start + first, start + last, cut_short))
        k = max(j, start + 1)
    return np.array(out, dtype=np.float64).reshape(-1, 5)


def _fit_decay(seg: np.ndarray, frame_s: float, skip_frames: int,
               usable_db: float, bend_check: bool = False) -> tuple[float, float, int, int] | None:
    """Fit one decay ``seg`` (dB, starting at its peak): ``(rt60_s, range_db, first, last)``
    with the fitted frames ``first..last`` relative to ``seg``, or None if it is unusable.
    With ``bend_check`` a decay that bends down is fitted after its bend only (None if too
    little is left there): :func:`_accelerating_knee`."""
    peak = seg[0]
    below = np.nonzero(seg <= peak - _SKIP_DB)[0]
    if below.size == 0:
        return None
    # the fall starts where the envelope last left the peak's neighbourhood (a sound may hold
    # its level for a while before it stops)
    fall = int(np.nonzero(seg >= peak - 3.0)[0][-1])
    s0 = max(int(below[0]), fall + skip_frames)
    if s0 >= seg.size:
        return None
    usable = np.nonzero(seg >= max(usable_db, seg[min(s0, seg.size - 1)] - _MAX_RANGE_DB))[0]
    if usable.size == 0:
        return None
    e = int(usable[-1])
    if e - s0 < 4:
        return None
    y, first = _trim_steep_head(seg[s0: e + 1], s0, frame_s)
    if bend_check:
        # a decay that bends down was a source fading by itself until it stopped: only the
        # part after the bend is the room's (_accelerating_knee). The bend shows best where
        # the decay meets the floor, below the fitted range (_BEND_EXT_DB)
        low = usable_db - _BEND_EXT_DB
        below_low = np.nonzero(seg[first:] < low)[0]
        ext = first + (int(below_low[0]) if below_low.size else seg.size - first)
        bend = _accelerating_knee(seg[first: max(ext, e + 1)])
        if bend is not None and seg[first] - seg[first + bend] < _BEND_MAX_HEAD_DB:
            if first + bend > e - 4:
                return None
            y, first = _trim_steep_head(seg[first + bend: e + 1], first + bend, frame_s)
    if y[0] - y[-1] < _MIN_RANGE_DB:
        return None
    t = np.arange(y.size) * frame_s
    slope, icpt = np.polyfit(t, y, 1)
    if slope >= 0:
        return None
    resid = y - (slope * t + icpt)
    if float(np.sqrt(np.mean(resid ** 2))) > _MAX_RESIDUAL_DB:
        return None
    rt = -60.0 / slope
    if not (_RT60_RANGE_S[0] <= rt <= _RT60_RANGE_S[1]):
        return None
    return rt, float(y[0] - y[-1]), first, e


def _trim_steep_head(y: np.ndarray, first: int, frame_s: float) -> tuple[np.ndarray, int]:
    """A decay ``y`` (dB per frame, starting at frame ``first``) without its steep head.

    A decay that starts steeper than it ends still carries the direct sound's drop (or a
    source's own fast release, or its stop) at its head: its first quarter is cut while its
    first half falls ``_KNEE_RATIO`` times faster than its second and the rest keeps
    ``_MIN_RANGE_DB``. Returns the trimmed decay and its first frame.
    """
    while y.size >= 12 and y[0] - y[-1] >= _MIN_RANGE_DB:
        half = y.size // 2
        s_head, s_tail = _slope(y[:half], frame_s), _slope(y[half:], frame_s)
        if not (s_tail < 0 and s_head < _KNEE_RATIO * s_tail):
            break
        trimmed = y[y.size // 4:]
        if trimmed[0] - trimmed[-1] < _MIN_RANGE_DB:
            break
        first += y.size // 4
        y = trimmed
    return y, first


def _accelerating_knee(y: np.ndarray) -> int | None:
    """Where a decay ``y`` (dB per frame) that bends *down* turns, or None if it does not.

    A room's free decay is straight in dB or bends up (its late part slower: early reflections,
    unevenly spread absorption). One that falls slowly and then fast was a source still fading
    by itself (a drum's or a vibraphone's ring, a piano's note) until it stopped: only the part
    after the bend is the room's decay. Among the breaks with at least ``_ACCEL_MIN_FRAMES``
    frames on either side, before which the decay's line has fallen ``_BEND_MIN_HEAD_DB`` or
    more (a level held and then let go is no fade: :func:`_fit_decay` starts after such a hold)
    and after which it falls ``_ACCEL_RATIO`` times as fast, the one whose two least-squares
    lines fit best is taken; it counts when the frames after it lie on average
    ``_ACCEL_MIN_DB`` or more under the extension of the line before it.
    """
    n = y.size
    k = _ACCEL_MIN_FRAMES
    if n < 2 * k:
        return None
    t = np.arange(n, dtype=np.float64)

    def cums(v: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(v)])

    sums = [cums(v) for v in (np.ones(n), t, y, t * t, t * y, y * y)]
    b = np.arange(k, n - k + 1)

    def line(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Least-squares slope, intercept and squared error of frames lo..hi-1."""
        m, sx, sy, sxx, sxy, syy = (c[hi] - c[lo] for c in sums)
        slope = (m * sxy - sx * sy) / (m * sxx - sx * sx)
        icpt = (sy - slope * sx) / m
        return slope, icpt, syy - slope * sxy - icpt * sy

    zero, end = np.zeros_like(b), np.full_like(b, n)
    h_slope, h_icpt, h_sse = line(zero, b)
    t_slope, _, t_sse = line(b, end)
    ok = (-h_slope * b >= _BEND_MIN_HEAD_DB) & (t_slope < _ACCEL_RATIO * h_slope)
    if not ok.any():
        return None
    i = int(np.argmin(np.where(ok, h_sse + t_sse, np.inf)))
    m_tail = n - b[i]
    mean_t = (sums[1][n] - sums[1][b[i]]) / m_tail
    mean_y = (sums[2][n] - sums[2][b[i]]) / m_tail
    departure = h_slope[i] * mean_t + h_icpt[i] - mean_y
    return int(b[i]) if departure >= _ACCEL_MIN_DB else None


def _slope(y: np.ndarray, frame_s: float) -> float:
    """Least-squares slope of ``y`` against time in units of ``y`` per s."""
    t = np.arange(y.size, dtype=np.float64) - 0.5 * (y.size - 1)
    return float(np.dot(t, y - y.mean()) / np.dot(t, t) / frame_s)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    c = np.cumsum(w) - 0.5 * w
    return float(np.interp(q * w.sum(), c, v))


def _estimate_band_drr(powers: list[np.ndarray], decays: list[np.ndarray], rt60: np.ndarray,
                       frame_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-band DRR in dB (NaN where unknown) and its confidence: the ratio for which a
    direct-plus-exponential-tail model explains the levels seen in the band's free decays.

    Per band, the model splits the observed (noise-compensated) power ``p`` into direct power
    ``D`` and reverberant power ``r`` frame by frame: ``r[k] = q (r[k-1] + a D[k-1])``,
    ``D[k] = max(p[k] - r[k], 0)``, with ``q`` the per-frame decay of the band's RT60 and
    ``a = (1 - q) / (q DRR)`` (so the tail's energy is ``1 / DRR`` times the direct sound's). In a
    free decay there is no direct sound, so the right DRR makes ``r`` equal ``p`` there: the
    band's DRR is where the median of ``10 log10(r / p)`` over its decay frames crosses 0 dB.
    """
    grid = _DRR_GRID_DB
    drr_lin = 10.0 ** (grid / 10.0)
    values = np.full(len(powers), np.nan)
    conf = np.zeros(len(powers))
    for b, (power, fits, rt) in enumerate(zip(powers, decays, rt60, strict=True)):
        if not np.isfinite(rt) or fits.shape[0] == 0:
            continue
        m = max(1, int(round(np.clip(rt / 6.0, _MIN_SMOOTH_S, _DRR_SMOOTH_S) / frame_s)))
        p = 10.0 ** (_smooth_db(power, m) / 10.0)
        q = 10.0 ** (-6.0 * frame_s / rt)
        a = (1.0 - q) / (q * drr_lin)
        mask = np.zeros(p.size, dtype=bool)
        for first, last in fits[:, 2:4].astype(int):
            mask[first: last + 1] = True
        last_frame = int(np.nonzero(mask)[0][-1])
        r = np.zeros(grid.size)
        ratio = np.empty((int(mask.sum()), grid.size))
        row = 0
        for k in range(1, last_frame + 1):  # sequential by nature: each frame feeds the next
            if not mask[k - 1]:
                r = q * (r + a * np.maximum(p[k - 1] - r, 0.0))
            else:
                r = q * r
            if mask[k]:
                ratio[row] = r / max(p[k], 1e-30)
                row += 1
        med = 10.0 * np.log10(np.median(ratio[:row], axis=0) + 1e-30)
        i = int(np.argmin(np.abs(med)))
        # a crossing at the grid's edge is no crossing: the model explains the decays with no
        # direct sound at all (or none with any tail), which says the model does not fit
        if abs(med[i]) < 1.5 and 0 < i < grid.size - 1:
            values[b] = grid[i]
            evidence = float(fits[:, 1].sum())
            conf[b] = evidence / (evidence + _EVIDENCE_DB)
    return values, conf


def schroeder_rt60(impulse_response: np.ndarray, sample_rate: float,
                   centers_hz: np.ndarray | None = None,
                   db_range: tuple[float, float] = (-5.0, -25.0)) -> np.ndarray:
    """RT60 per octave band in s measured from an impulse response (T20 by default).

    The Schroeder backward integral of the band-filtered response gives the energy decay curve;
    a line fitted between ``db_range`` dB (re. the total energy) is extrapolated to -60 dB.

    Parameters
    ----------
    impulse_response : np.ndarray
        The response, any layout (mixed to mono); it should run well past the lower fit limit.
    sample_rate : float
        Sample rate in Hz.
    centers_hz : np.ndarray, optional
        Band centres in Hz (default: :func:`octave_centers`).
    db_range : tuple of float
        Upper and lower fit limits in dB (T20: -5, -25; T30: -5, -35).

    Returns
    -------
    np.ndarray
        RT60 in s per band (NaN where the decay curve never reaches the lower limit).
    """
    sr = float(sample_rate)
    data, _ = to_channels_first(impulse_response, name="impulse_response")
    h = to_mono(data).astype(np.float64)
    centers = octave_centers(sr) if centers_hz is None else np.asarray(centers_hz, float)
    out = np.full(centers.size, np.nan)
    for i, fc in enumerate(centers):
        band = sosfilt(octave_sos(fc, sr), h)
        edc = np.cumsum((band ** 2)[::-1])[::-1]
        if edc[0] <= 0:
            continue
        edc_db = 10.0 * np.log10(edc / edc[0] + 1e-30)
        hi, lo = db_range
        a = np.nonzero(edc_db <= hi)[0]
        b = np.nonzero(edc_db <= lo)[0]
        if a.size == 0 or b.size == 0 or b[0] - a[0] < 3:
            continue
        t = np.arange(a[0], b[0]) / sr
        slope = np.polyfit(t, edc_db[a[0]: b[0]], 1)[0]
        if slope < 0:
            out[i] = -60.0 / slope
    return out
