"""Reverberation analysis: blind RT60 per octave band and a direct-to-reverberant ratio.

Blind (no impulse response available) estimation follows the decay-statistics family of
Ratnam et al. (2003) and Löllmann et al. (2010): a room's reverberation shows wherever a sound
stops, as a *free decay* of the band energy, linear in dB with slope ``-60 / RT60`` dB/s. Per
octave band the recording's energy envelope is scanned for free decays (a fall from a local peak
that does not rise again by more than a small tolerance), each decay's usable part (after the
direct-sound drop, above the background floor) gets a least-squares slope, and the band's RT60 is
the median of the per-decay estimates, weighted by each decay's fitted range in dB. A decay that
starts steeper than it ends still carries the direct sound's drop and is trimmed of its head
first; decays that are not straight lines in dB are dropped. Sounds that fade slowly by
themselves still make a decay look slower than the room's: with material that never stops
abruptly the estimate is an upper bound.

The direct-to-reverberant ratio (DRR) comes from the same decays: a model splits each band's
power frame by frame into direct sound and an exponential reverberant tail fed by it (the tail's
energy being ``1 / DRR`` times the direct sound's, decaying at the band's RT60); the DRR is the one
for which the tail the model predicts in the free decays (where there is no direct sound) equals
what was observed there.

:func:`schroeder_rt60` is the non-blind measurement (ISO 3382 style T20 from the Schroeder
backward integral of an impulse response) used to check synthetic and stylized responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from blendfx.buffers import to_channels_first, to_mono
from scipy.signal import butter, sosfilt

__all__ = [
    "OCTAVE_CENTERS_HZ",
    "ReverbEstimate",
    "octave_centers",
    "octave_sos",
    "estimate_reverb",
    "schroeder_rt60",
    "fill_bands",
]

#: Nominal octave-band centres in Hz (IEC 61260 nominal values).
OCTAVE_CENTERS_HZ: tuple[float, ...] = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)

_HOP_S = 0.005          # envelope frame hop, s
_MIN_SMOOTH_S = 0.02    # shortest envelope smoothing window, s
_SMOOTH_CYCLES = 10.0   # envelope smoothing window in periods of the band's bandwidth
_RISE_TOL_SIGMAS = 3.0  # a decay ends when the envelope rises this many fluctuation std's
                        # (or at least 2 dB) above its running minimum
_SKIP_DB = 5.0          # skip the first 5 dB of a decay (direct sound, source offset)
_FLOOR_MARGIN_DB = 8.0  # stop fitting this far above the band's background floor
_MIN_RANGE_DB = 10.0    # a decay must fall at least this far to be fitted
_MAX_RANGE_DB = 40.0    # fit at most this much of one decay
_KNEE_RATIO = 1.5       # a decay whose first half is this much steeper than its second has a knee
_MAX_RESIDUAL_DB = 2.5  # reject decays that are not straight lines in dB
_QUANTILE = 0.5         # weighted quantile of per-decay RT60s
_DRR_SMOOTH_S = 0.1     # longest envelope smoothing for the DRR model (RT60 / 6 below that), s
_RT60_RANGE_S = (0.05, 12.0)


def octave_centers(sample_rate: float) -> np.ndarray:
    """Octave-band centres in Hz whose upper edge stays below 0.45 x ``sample_rate``."""
    top = 0.45 * float(sample_rate)
    return np.array([c for c in OCTAVE_CENTERS_HZ if c * np.sqrt(2.0) < top], dtype=np.float64)


def octave_sos(center_hz: float, sample_rate: float, order: int = 3) -> np.ndarray:
    """Butterworth octave band-pass around ``center_hz`` (edges at centre / sqrt 2, x sqrt 2)."""
    edges = np.array([center_hz / np.sqrt(2.0), center_hz * np.sqrt(2.0)])
    return butter(order, edges, btype="bandpass", fs=float(sample_rate), output="sos")


@dataclass(frozen=True)
class ReverbEstimate:
    """What :func:`estimate_reverb` found.

    Attributes
    ----------
    centers_hz : np.ndarray
        Octave-band centres in Hz.
    rt60_s : np.ndarray
        Estimated RT60 per band in s; NaN where the recording showed no usable free decay.
    n_decays : np.ndarray
        Number of free decays that went into each band's estimate.
    drr_db : float
        Direct-to-reverberant energy ratio in dB (NaN when no band has an RT60).
    notes : tuple of str
        Why something could not be estimated.
    """

    centers_hz: np.ndarray
    rt60_s: np.ndarray
    n_decays: np.ndarray
    drr_db: float = float("nan")
    notes: tuple[str, ...] = field(default=())

    @property
    def valid(self) -> bool:
        """True when at least one band has an estimate."""
        return bool(np.isfinite(self.rt60_s).any())

    @property
    def broadband_rt60_s(self) -> float:
        """One RT60 in s: the decay-count-weighted median over the bands 250 Hz-4 kHz that have
        an estimate (all bands if none of those do); NaN when no band has one."""
        ok = np.isfinite(self.rt60_s)
        mid = ok & (self.centers_hz >= 250) & (self.centers_hz <= 4000)
        use = mid if mid.any() else ok
        if not use.any():
            return float("nan")
        return _weighted_quantile(self.rt60_s[use], self.n_decays[use].astype(float), 0.5)


def fill_bands(centers_hz: np.ndarray, values: np.ndarray, default: float) -> np.ndarray:
    """Fill NaN band values by interpolation in log frequency (constant beyond the ends);
    ``default`` everywhere when no band has a value."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    if not ok.any():
        return np.full(values.shape, float(default))
    logf = np.log2(centers_hz)
    return np.interp(logf, logf[ok], values[ok])


def estimate_reverb(audio: np.ndarray, sample_rate: float,
                    centers_hz: np.ndarray | None = None) -> ReverbEstimate:
    """Blind RT60 per octave band, and DRR, from a recording's free decays.

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
        Bands without a usable decay (too short a recording, a steady sound with no pauses)
        have NaN and the reason is in ``notes``.
    """
    sr = float(sample_rate)
    data, _ = to_channels_first(audio, name="reference")
    mono = to_mono(data).astype(np.float64)
    centers = octave_centers(sr) if centers_hz is None else np.asarray(centers_hz, float)
    hop = max(1, int(round(_HOP_S * sr)))
    rt60 = np.full(centers.size, np.nan)
    counts = np.zeros(centers.size, dtype=int)
    decays: list[np.ndarray] = []
    powers: list[np.ndarray] = []
    decays: list[np.ndarray] = []
    frame_s = hop / sr
    for i, fc in enumerate(centers):
        power = _frame_power(sosfilt(octave_sos(fc, sr), mono), hop)
        powers.append(power)
        # narrow (low) bands fluctuate more: smooth over _SMOOTH_CYCLES periods of the bandwidth
        bandwidth = fc / np.sqrt(2.0)
        m = max(1, int(round(max(_MIN_SMOOTH_S, _SMOOTH_CYCLES / bandwidth) / frame_s)))
        # std of the log of a smoothed chi-square envelope: 10 log10(e) * sqrt(1 / (B W))
        tol = max(2.0, _RISE_TOL_SIGMAS * 4.34 / np.sqrt(bandwidth * m * frame_s))
        fits = _decay_fits(_smooth_db(power, m), frame_s, skip_frames=m + 2, rise_tol_db=tol)
        decays.append(fits)
        if fits.size:
            rt60[i] = _weighted_quantile(fits[:, 0], fits[:, 1], _QUANTILE)
            counts[i] = fits.shape[0]
    notes: list[str] = []
    if not np.isfinite(rt60).any():
        notes.append(f"no free decay of at least {_MIN_RANGE_DB:g} dB found in "
                     f"{mono.size / sr:.2f} s of reference: RT60 unknown")
    drr = _estimate_drr(powers, decays, rt60, frame_s)
    return ReverbEstimate(centers, rt60, counts, drr, tuple(notes))


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
                rise_tol_db: float) -> np.ndarray:
    """Free decays of one band envelope: rows of ``(rt60_s, weight, first_frame, last_frame)``.

    A decay starts at a local peak and lasts while the envelope stays within a tolerance
    of its running minimum (``rise_tol_db``, about three standard deviations of the envelope's
    own fluctuation). Its first ``skip_frames`` frames and first ``_SKIP_DB`` dB are skipped
    (the direct sound's drop, smeared by the smoothing window), and it is cut ``_FLOOR_MARGIN_DB``
    above the band's background floor (10th percentile of the envelope) where the decay flattens.
    The weight is the fitted range in dB: long clean decays count more.
    """
    n = env_db.size
    if n < 4:
        return np.zeros((0, 4))
    floor = float(np.percentile(env_db, 10))
    top = float(env_db.max())
    if top - floor < _MIN_RANGE_DB + _SKIP_DB:
        return np.zeros((0, 4))
    out: list[tuple[float, float, float, float]] = []
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
        fit = _fit_decay(seg[: end + 1], frame_s, skip_frames, floor)
        if fit is not None:
            rt, weight, first, last = fit
            out.append((rt, weight, start + first, start + last))
        k = max(j, start + 1)
    return np.array(out, dtype=np.float64).reshape(-1, 4)


def _fit_decay(seg: np.ndarray, frame_s: float, skip_frames: int,
               floor: float) -> tuple[float, float, int, int] | None:
    """Fit one decay ``seg`` (dB, starting at its peak): ``(rt60_s, range_db, first, last)``
    with the fitted frames ``first..last`` relative to ``seg``, or None if it is unusable."""
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
    usable = np.nonzero(seg >= max(floor + _FLOOR_MARGIN_DB, seg[min(s0, seg.size - 1)]
                                   - _MAX_RANGE_DB))[0]
    if usable.size == 0:
        return None
    e = int(usable[-1])
    if e - s0 < 4:
        return None
    y = seg[s0: e + 1]
    first = s0
    # A decay that starts steeper than it ends still carries the direct sound's drop (or a
    # source's own fast release) at its head: trim the head while the range allows.
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


def _slope(y: np.ndarray, frame_s: float) -> float:
    """Least-squares slope of ``y`` against time in units of ``y`` per s."""
    t = np.arange(y.size, dtype=np.float64) - 0.5 * (y.size - 1)
    return float(np.dot(t, y - y.mean()) / np.dot(t, t) / frame_s)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    c = np.cumsum(w) - 0.5 * w
    return float(np.interp(q * w.sum(), c, v))


def _estimate_drr(powers: list[np.ndarray], decays: list[np.ndarray], rt60: np.ndarray,
                  frame_s: float) -> float:
    """Broadband DRR in dB: the ratio for which a direct-plus-exponential-tail model explains
    the levels seen in the free decays.

    Per band, the model splits the observed power ``p`` into direct power ``D`` and reverberant
    power ``r`` frame by frame: ``r[k] = q (r[k-1] + a D[k-1])``, ``D[k] = max(p[k] - r[k], 0)``,
    with ``q`` the per-frame decay of the band's RT60 and ``a = (1 - q) / (q DRR)`` (so the
    tail's energy is ``1 / DRR`` times the direct sound's). In a free decay there is no direct
    sound, so the right DRR makes ``r`` equal ``p`` there: the band's DRR is the grid value
    where the median of ``10 log10(r / p)`` over its decay frames crosses 0 dB. The broadband
    value is the median over bands, weighted by their number of decays.
    """
    grid = np.arange(-24.0, 24.01, 1.0)
    drr_lin = 10.0 ** (grid / 10.0)
    values, weights = [], []
    for power, fits, rt in zip(powers, decays, rt60, strict=True):
        if not np.isfinite(rt) or fits.shape[0] == 0:
            continue
        # smoothing steadies the clamp below, but must stay short against the decay itself
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
            # a free decay has no direct sound by definition; elsewhere the clamp would turn
            # the envelope's own fluctuation into fake direct energy
            if not mask[k - 1]:
                r = q * (r + a * np.maximum(p[k - 1] - r, 0.0))
            else:
                r = q * r
            if mask[k]:
                ratio[row] = r / p[k]
                row += 1
        med = 10.0 * np.log10(np.median(ratio[:row], axis=0) + 1e-30)
        # med falls as DRR rises (less reverberant energy predicted); take the crossing
        i = int(np.argmin(np.abs(med)))
        if 0 < i < grid.size - 1 or abs(med[i]) < 3.0:
            values.append(grid[i])
            weights.append(float(fits.shape[0]))
    if not values:
        return float("nan")
    return _weighted_quantile(np.array(values), np.array(weights), 0.5)


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
