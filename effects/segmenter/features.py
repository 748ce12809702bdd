"""Hand-crafted, long-context window features of music vs environmental noise (issue 20).

Every feature is computed from the segmenter's own STFT power (44.1 kHz, 512-point, hop 128)
and given on the CNN's window grid: window ``(i, j)`` covers bins ``16 i .. 16 i + 63`` (5.5 kHz)
and frames ``16 j .. 16 j + 255`` (0.74 s). Each feature comes in up to three spans: the
window itself, its *context* (the window's band over the window and 0.74 s on either side:
2.2 s), and the *full band* (all frequencies over the context). Levels are relative (the
spectrum's own peak, the band's neighbours, the same time's whole spectrum), so a recording's
gain and a smooth EQ change little.

The per-pixel and per-band measures (``FEATURE_NAMES`` lists the columns, in order):

- **tonal share**: the share of the band's energy in *sustained spectral peaks* -- bins that
  are local maxima in frequency, 3 dB above their +-4-bin neighbourhood, and still peaks
  (within one bin) 35 ms before and after. Notes hold partials; rain, wind and traffic do not.
- **peak density**: how many bins of the band are such sustained peaks.
- **flatness**: spectral flatness (geometric over arithmetic mean of the power, in dB) of the
  band's 16-bin rows, frame by frame: 0 dB for white noise, very negative for a few partials.
- **flux**: the mean absolute frame-to-frame change of the log spectrum (dB), on bins within
  60 dB of the peak: steady partials change little, noise fluctuates by about 5.6 dB per bin.
- **modulation 2-8 Hz / 8-40 Hz**: the band's level envelope (dB) band-passed by differences
  of moving averages (93 ms - 370 ms: about 2-8 Hz, the rate of notes and beats; 23 ms - 93 ms:
  about 8-40 Hz), their mean squares (log) and their ratio.
- **onset periodicity**: the autocorrelation of the onset envelope (positive log-spectral
  flux, 23 ms steps), normalized, at its best lag between 0.19 s and 1.0 s (a beat or a
  metre repeats; barks and clicks rarely do so regularly), in the band and over the full band.
- **harmonicity**: the autocorrelation of the log spectrum along frequency within each frame's
  band (lags of 2-12 bins: harmonic partials 170 Hz to 1 kHz apart) at its best lag.
- **relative level**: the band's level minus the whole spectrum's at the same time (dB), and
  the window's level minus its band's over the context.
- **frequency**: the band's position (0 at DC, 1 at Nyquist).

:func:`window_features` gives them as a ``(features, rows, cols)`` tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["FEATURE_NAMES", "window_features", "sustained_peaks", "band_flatness_db",
           "onset_periodicity", "harmonicity", "modulation_energy"]

#: Cell size, window size (in cells) and context on either side (cells) of the window grid.
CELL = 16
WINDOW_ROWS, WINDOW_COLS, CONTEXT_COLS = 4, 16, 16
#: Dynamic range (dB under the loudest pixel) the features look at.
RANGE_DB = 60.0
#: Frames between the peaks that make a peak "sustained" (35 ms).
SUSTAIN_FRAMES = 12
#: Onset envelope downsampling (frames per step, 23 ms) and lag range in steps (0.19-1.0 s).
ONSET_STEP = 8
ONSET_LAGS = (8, 43)
#: Harmonic lags in bins (172 Hz - 1 kHz).
HARMONIC_LAGS = (2, 12)

_MEASURES = ("tonal_share", "peak_density", "flatness_db", "flux_db", "mod_2_8_log",
             "mod_8_40_log", "mod_ratio", "onset_periodicity", "harmonicity")
#: The feature columns of :func:`window_features`, in order.
FEATURE_NAMES = tuple(
    [f"{m}@window" for m in _MEASURES] + [f"{m}@context" for m in _MEASURES]
    + [f"{m}@full_band" for m in _MEASURES]
    + ["level_vs_spectrum_db", "level_vs_context_db", "frequency"])


def _log_power(power: torch.Tensor, ref: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bins, frames)`` power -> log power (dB) floored ``RANGE_DB`` under its peak (or under
    ``ref`` dB), and the mask of bins above the floor (first ``bins - 1`` bins: the image's
    rows)."""
    p = power[: power.shape[0] - 1 if power.shape[0] % 2 else power.shape[0]].float()
    db = 10.0 * torch.log10(p.contiguous() + 1e-20)
    ref = (db.amax() if ref is None else ref).clamp_min(-100.0)
    floor = ref - RANGE_DB
    return db.clamp_min(floor), db > floor


def sustained_peaks(db: torch.Tensor, active: torch.Tensor, lag: int = SUSTAIN_FRAMES,
                    prominence_db: float = 3.0) -> torch.Tensor:
    """Bins that are spectral peaks held over time, ``(bins, frames)`` bool.

    A peak: a local maximum in frequency, ``prominence_db`` above the mean of its +-4 bins, above
    the floor. Sustained: a peak within one bin ``lag`` frames before and after too.
    """
    x = db[None, None]
    up = F.pad(x, (0, 0, 1, 1), mode="replicate")[0, 0]
    local_max = (db > up[:-2]) & (db >= up[2:])
    padded = F.pad(x, (0, 0, 4, 4), mode="replicate")[0, 0]
    c = F.pad(torch.cumsum(padded.double(), dim=0), (0, 0, 1, 0))
    mean = ((c[9:] - c[:-9]) / 9.0).float()  # the +-4-bin mean
    peak = local_max & (db - mean > prominence_db) & active
    wide = peak.clone()  # +-1 bin
    wide[1:] |= peak[:-1]
    wide[:-1] |= peak[1:]
    before = F.pad(wide, (lag, 0))[:, : db.shape[1]]
    after = F.pad(wide, (0, lag))[:, lag:]
    return peak & before & after


def band_flatness_db(power: torch.Tensor, rows: int = CELL, peak: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """Spectral flatness in dB of every ``rows``-bin band, frame by frame: ``(bands, frames)``.
    A floor 120 dB under ``peak`` (default: the largest power) is added to every bin, so the
    flatness does not depend on the gain."""
    p = power.reshape(-1, rows, power.shape[-1])
    p = p + (p.amax() if peak is None else peak).clamp_min(1e-30) * 1e-12
    return 10.0 * (p.log().mean(dim=1) - p.mean(dim=1).log()) / torch.log(torch.tensor(10.0))


def _box(x: torch.Tensor, width: int) -> torch.Tensor:
    """Centred moving average of odd ``width`` along the last axis (at the edges, over the
    samples there are), by cumulative sums in float64: O(n) for any width."""
    n = x.shape[-1]
    half = width // 2
    c = F.pad(torch.cumsum(x.double(), dim=-1), (1, 0))
    idx = torch.arange(n)
    hi, lo = (idx + half + 1).clamp(max=n), (idx - half).clamp(min=0)
    return ((c[..., hi] - c[..., lo]) / (hi - lo)).to(x.dtype)


def modulation_energy(level_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared band-passed level envelopes ``(rows, frames)``: about 2-8 Hz (93 ms minus 370 ms
    moving averages) and 8-40 Hz (23 ms minus 93 ms), in dB squared."""
    b8, b32, b128 = _box(level_db, 9), _box(level_db, 33), _box(level_db, 129)
    return (b32 - b128) ** 2, (b8 - b32) ** 2


def onset_periodicity(onsets: torch.Tensor, span: int, lags: tuple[int, int] = ONSET_LAGS
                      ) -> torch.Tensor:
    """Best normalized autocorrelation of onset envelopes over lags ``lags`` (steps).

    Parameters
    ----------
    onsets : torch.Tensor
        ``(rows, steps)`` onset strength.
    span : int
        Steps each position's autocorrelation averages over (centred).

    Returns
    -------
    torch.Tensor
        ``(rows, steps)``: for every position t, ``max_l sum x(s) x(s + l) / sum x(s)^2`` of the
        envelope minus its moving mean, both sums over the ``span`` steps around t (the products
        placed at the middle of the lag range).
    """
    x = onsets - _box(onsets, span | 1)
    rows, n = x.shape
    lo, hi = lags
    hi = min(hi, n - 1)
    if hi < lo:
        return torch.zeros_like(x)
    energy = _box(x * x, span | 1) + 1e-9
    windows = F.pad(x, (0, hi)).unfold(-1, hi + 1, 1)  # (rows, n, hi + 1): x(s .. s + hi)
    prod = windows[..., :1] * windows[..., lo:]  # (rows, n, lags): x(s) x(s + l)
    shift = (lo + hi) // 4  # centre the products on the middle lag's midpoint
    prod = F.pad(prod.permute(0, 2, 1), (shift, 0))[..., :n]  # (rows, lags, n)
    return (_box(prod, span | 1).amax(dim=1) / energy).clamp(-1.0, 1.0)


def harmonicity(db: torch.Tensor, rows: int = 64, lags: tuple[int, int] = HARMONIC_LAGS,
                every: int = 4) -> torch.Tensor:
    """Best normalized autocorrelation along frequency of the log spectrum in bands of ``rows``
    bins hopped by 16 (the window rows), over ``lags`` bins, on every ``every``-th frame (held
    in between): ``(bands, frames)``."""
    frames = db.shape[1]
    x = db[:, ::every].T.unfold(1, rows, CELL)  # (frames / every, bands, rows)
    x = x - x.mean(dim=-1, keepdim=True)
    # every lag's sum x(i) x(i + lag) at once: the autocorrelation by FFT (zero-padded, no wrap)
    spec = torch.fft.rfft(x, n=2 * rows, dim=-1)
    corr = torch.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=2 * rows, dim=-1)
    energy = corr[..., :1] + 1e-6
    best = (corr[..., lags[0]:lags[1] + 1] / energy).amax(dim=-1)
    return best.T.repeat_interleave(every, dim=1)[:, :frames]


def _to_cells(x: torch.Tensor, cells: int) -> torch.Tensor:
    """Frame maps ``(rows, frames)`` -> means over 16-frame cells ``(rows, cells)``: over the
    frames there are (0 in cells past the end)."""
    frames = x.shape[-1]
    count = torch.ones(1, frames)
    if cells * CELL > frames:
        x, count = (F.pad(v, (0, cells * CELL - frames)) for v in (x, count))
    x, count = x[..., : cells * CELL], count[..., : cells * CELL]
    total = x.reshape(x.shape[0], cells, CELL).sum(dim=-1)
    return total / count.reshape(1, cells, CELL).sum(dim=-1).clamp_min(1.0)


def _pool(values: torch.Tensor, weight: torch.Tensor, rows: int, cols: int, pad: int
          ) -> torch.Tensor:
    """Weighted mean of a cell map ``(R, C)`` over ``rows`` x ``cols`` cells, stride 1, with
    ``pad`` cells of padding on either side of the time axis (weight 0): ``(R - rows + 1, C -
    cols + 1 + 2 pad)``."""
    def box(x):  # sums over rows x cols (separable: rows, then cumulative sums over time)
        x = x.double()
        x = sum(x[i:x.shape[0] - rows + 1 + i] for i in range(rows)) if rows > 1 else x
        c = F.pad(torch.cumsum(F.pad(x, (pad, pad)), dim=-1), (1, 0))
        return c[:, cols:] - c[:, :-cols]

    w = weight.expand_as(values)
    return (box(values * w) / box(w).clamp_min(1e-9 * rows * cols)).float()


#: Windows per pass of :func:`window_features` over long inputs, and the frames of context each
#: pass adds on either side (more than every feature's reach: the results equal one pass).
CHUNK_WINDOWS = 2048
MARGIN_FRAMES = 1536


def window_features(power: torch.Tensor, cols: int | None = None,
                    chunk_windows: int = CHUNK_WINDOWS) -> torch.Tensor:
    """The features of :data:`FEATURE_NAMES` for every window of an STFT power.

    Parameters
    ----------
    power : torch.Tensor
        ``(257, frames)`` ``|STFT|**2`` of mono audio at 44.1 kHz (512-point, hop 128), as
        :func:`.net.stft_power` gives it.
    cols : int, optional
        Windows along time (default: as :meth:`.net.Segmenter.window_logits` counts them: at
        least one, the last frames covered).
    chunk_windows : int
        Long inputs run in passes of this many windows (each with ``MARGIN_FRAMES`` of context
        on either side; the levels refer to the whole input's peaks): memory stays bounded.

    Returns
    -------
    torch.Tensor
        ``(len(FEATURE_NAMES), 13, cols)`` float32, finite.
    """
    frames = power.shape[-1]
    if cols is None:
        cols = max(1, -(-(frames - WINDOW_COLS * CELL) // CELL) + 1)
    with torch.inference_mode():
        if cols <= chunk_windows:
            return _window_features(power, cols)
        image = power[: power.shape[0] - 1 if power.shape[0] % 2 else power.shape[0]].float()
        ref = 10.0 * torch.log10(image.amax() + 1e-20)
        rows = image.shape[0] // CELL
        level_ref = 10.0 * torch.log10(image.reshape(rows, CELL, -1).sum(dim=1).amax() + 1e-20)
        outs = []
        for a in range(0, cols, chunk_windows):
            b = min(cols, a + chunk_windows)
            lo = max(0, a * CELL - MARGIN_FRAMES)
            hi = min(frames, (b - 1) * CELL + WINDOW_COLS * CELL + MARGIN_FRAMES)
            first = (a * CELL - lo) // CELL
            natural = max(1, -(-(hi - lo - WINDOW_COLS * CELL) // CELL) + 1)
            f = _window_features(power[:, lo:hi], max(first + b - a, natural), ref, level_ref)
            outs.append(f[..., first:first + b - a])
        return torch.cat(outs, dim=-1)


def _window_features(power: torch.Tensor, cols: int, ref: torch.Tensor | None = None,
                     level_ref: torch.Tensor | None = None) -> torch.Tensor:
    power = power.float().cpu()
    db, active = _log_power(power, ref)
    p = power[: db.shape[0]].contiguous()
    bins, frames = db.shape
    n_rows = bins // CELL
    cells = cols + WINDOW_COLS - 1
    band = lambda x: x.reshape(n_rows, CELL, frames)  # noqa: E731  (bins -> 16-bin rows)

    peaks = sustained_peaks(db, active)
    energy = band(p).sum(dim=1)  # (rows, frames)
    tonal = band(p * peaks).sum(dim=1)
    density = band(peaks.float()).mean(dim=1)
    flat = band_flatness_db(p, peak=10.0 ** ((db.amax() if ref is None else ref) / 10.0))
    step = torch.diff(db, dim=1, prepend=db[:, :1]).abs()
    act = active.float()
    flux_num, flux_den = band(step * act).sum(dim=1), band(act).sum(dim=1)
    level = 10.0 * torch.log10(energy + 1e-20)
    level = level.clamp_min((level.amax() if level_ref is None else level_ref) - RANGE_DB)
    mod_mid, mod_fast = modulation_energy(level)
    onset = band(torch.clamp(db - F.pad(db, (3, 0), mode="replicate")[:, :frames], min=0.0)
                 ).mean(dim=1)
    steps = frames // ONSET_STEP
    onset_steps = onset[:, : steps * ONSET_STEP].reshape(n_rows, steps, ONSET_STEP).mean(-1)
    span = (WINDOW_COLS + 2 * CONTEXT_COLS) * CELL // ONSET_STEP
    full_onset = onset_steps.mean(dim=0, keepdim=True)
    period = onset_periodicity(torch.cat([onset_steps, full_onset]), span) if steps > 1 else \
        torch.zeros(n_rows + 1, max(steps, 1))
    period = period.repeat_interleave(ONSET_STEP, dim=-1)
    period = F.pad(period, (0, frames - period.shape[-1]), mode="replicate") \
        if period.shape[-1] < frames else period[:, :frames]
    harm = harmonicity(db)  # (13, frames) on the window rows

    # cell maps (rows x cells): sums for the energy-weighted shares, means otherwise
    on = _to_cells(torch.ones(1, frames), cells) * (  # the share of each cell inside the audio
        torch.arange(cells) * CELL < frames) * ((frames - torch.arange(cells) * CELL) / CELL
                                                ).clamp(0.0, 1.0)
    c_energy, c_tonal = _to_cells(energy, cells), _to_cells(tonal, cells)
    c_flux_num, c_flux_den = _to_cells(flux_num, cells), _to_cells(flux_den, cells)
    maps = {"density": _to_cells(density, cells), "flatness_db": _to_cells(flat, cells),
            "mod_mid": _to_cells(mod_mid, cells), "mod_fast": _to_cells(mod_fast, cells),
            "period": _to_cells(period[:n_rows], cells), "level": _to_cells(level, cells)}
    full_period = _to_cells(period[n_rows:], cells)
    c_harm = _to_cells(harm, cells)
    ones = on.expand(n_rows, -1)

    def spans(rows: int, values, weight=None):
        w = ones[:rows] if weight is None else weight
        win = _pool(values, w, min(WINDOW_ROWS, rows), WINDOW_COLS, 0)
        ctx = _pool(values, w, min(WINDOW_ROWS, rows), WINDOW_COLS + 2 * CONTEXT_COLS,
                    CONTEXT_COLS)
        return win, ctx

    def ratio(num, den, rows=WINDOW_ROWS):
        """Energy-weighted shares num / den over the window and the context (cell sums)."""
        a = _pool(num, ones, rows, WINDOW_COLS, 0) / _pool(den, ones, rows, WINDOW_COLS, 0
                                                           ).clamp_min(1e-20)
        b = _pool(num, ones, rows, WINDOW_COLS + 2 * CONTEXT_COLS, CONTEXT_COLS) / _pool(
            den, ones, rows, WINDOW_COLS + 2 * CONTEXT_COLS, CONTEXT_COLS).clamp_min(1e-20)
        return a, b

    tonal_share = ratio(c_tonal, c_energy)
    flux = ratio(c_flux_num, c_flux_den.clamp_min(1e-3))
    mid = tuple(torch.log(m + 1e-3) for m in spans(n_rows, maps["mod_mid"]))
    fast = tuple(torch.log(f + 1e-3) for f in spans(n_rows, maps["mod_fast"]))
    harm_w = _pool(c_harm, ones[: c_harm.shape[0]], 1, WINDOW_COLS, 0), _pool(
        c_harm, ones[: c_harm.shape[0]], 1, WINDOW_COLS + 2 * CONTEXT_COLS, CONTEXT_COLS)
    band_list = [tonal_share, spans(n_rows, maps["density"]), spans(n_rows, maps["flatness_db"]),
                 flux, mid, fast, (mid[0] - fast[0], mid[1] - fast[1]),
                 spans(n_rows, maps["period"]), harm_w]

    # full band: every measure over all rows at the context's times
    def full(values, weight=None):
        w = ones if weight is None else weight
        v = _pool(values, w, n_rows, WINDOW_COLS + 2 * CONTEXT_COLS, CONTEXT_COLS)
        return v.expand(n_rows - WINDOW_ROWS + 1, -1)

    def full_ratio(num, den):
        a = _pool(num, ones, n_rows, WINDOW_COLS + 2 * CONTEXT_COLS, CONTEXT_COLS)
        b = _pool(den, ones, n_rows, WINDOW_COLS + 2 * CONTEXT_COLS, CONTEXT_COLS)
        return (a / b.clamp_min(1e-20)).expand(n_rows - WINDOW_ROWS + 1, -1)

    f_mid = torch.log(full(maps["mod_mid"]) + 1e-3)
    f_fast = torch.log(full(maps["mod_fast"]) + 1e-3)
    full_list = [full_ratio(c_tonal, c_energy), full(maps["density"]), full(maps["flatness_db"]),
                 full_ratio(c_flux_num, c_flux_den.clamp_min(1e-3)), f_mid, f_fast, f_mid - f_fast,
                 _pool(full_period, on, 1, WINDOW_COLS + 2 * CONTEXT_COLS, CONTEXT_COLS
                       ).expand(n_rows - WINDOW_ROWS + 1, -1),
                 _pool(c_harm, ones[: c_harm.shape[0]], c_harm.shape[0],
                       WINDOW_COLS + 2 * CONTEXT_COLS, CONTEXT_COLS
                       ).expand(n_rows - WINDOW_ROWS + 1, -1)]

    # relative levels (dB): the band vs the whole spectrum, the window vs its band's context
    spectrum = 10.0 * torch.log10(c_energy.sum(dim=0, keepdim=True) + 1e-20)
    band_db = 10.0 * torch.log10(F.avg_pool2d(c_energy[None, None], (WINDOW_ROWS, 1), 1)[0, 0]
                                 * WINDOW_ROWS + 1e-20)
    vs_spectrum = band_db - spectrum
    win_level, ctx_level = spans(n_rows, maps["level"])
    vs_spec_win = _pool(vs_spectrum, ones[: vs_spectrum.shape[0]], 1, WINDOW_COLS, 0)
    rows_out = n_rows - WINDOW_ROWS + 1
    freq = (torch.arange(rows_out, dtype=torch.float32) * CELL / bins)[:, None].expand(-1, cols)
    out = ([w for w, _ in band_list] + [c for _, c in band_list] + full_list
           + [vs_spec_win.clamp(-RANGE_DB, 0.0), (win_level - ctx_level), freq])
    feats = torch.stack([f[:, :cols] for f in out])
    return torch.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).contiguous()
