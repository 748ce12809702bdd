"""``Stylizer``: make a stem sound as if it had been recorded where a reference was.

Weight-free soundscape stylization (DESIGN.md section 9; the paper's model is not public): the
reference recording (the sidechain) is analysed once into a :class:`~.reference_profile.
ReferenceProfile`, then applied to the stem in three parts, each of which can be switched off:

1. acoustics: a synthetic impulse response with the reference's RT60 per octave band and DRR
   (blind, noise-compensated, constrained across bands; see :mod:`.reverb_analysis`),
   convolved with the stem (block FFT convolution; the stem crossfaded between four independent
   draws of the tail, so that no one draw's random peaks and dips colour it:
   :meth:`Stylizer._crossfaded`). The blind DRR's "direct sound" spans the
   first 25 ms; the response splits it into the direct impulse and early reflections (a raised
   first 25 ms of the tail) with a DRR proper (+-2.5 ms) 8.5 dB lower (:func:`early_split`),
   after raising a blind value below what a diffuse tail of the room's RT60 puts in its first
   25 ms (plus 4.5 dB; :func:`.reverb_analysis.diffuse_drr_floor_db`);
2. colouration: what the room adds, not what the reference's instruments sound like. In a
   diffuse field every band's tail starts at the same level re. the direct sound, so its
   energy grows with that band's RT60; the response's tail is built that way (the direct
   sound flat), which needs no evidence beyond the per-band RT60s. (Per-band tail levels from
   per-band blind DRRs were tried and moved the stem away from the oracle more often than
   towards it.) ``eq_target="reference"`` instead matches the reference's whole long-term spectrum (its
   source's timbre included) with a smooth bounded EQ;
3. ambience: the reference's stationary background, if it has one, re-synthesized to the
   stem's length (random grains, no loop) and mixed at the reference's own signal-to-ambience
   ratio or a given level. Reverberation tails and quiet music are no background.

Mode ``"separate_remix"`` is the paper's baseline: the reference's background pasted (looped)
under the unchanged stem, no acoustics and no EQ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from blendfx.dsp.convolution import convolve, convolve_weighted
from blendfx.effect import Effect, SidechainArg
from blendfx.errors import ParameterError
from blendfx.params import BoolParam, ChoiceParam, FloatParam
from scipy import fft as sp_fft

from .ambience import loop_ambience, synthesize_ambience
from .impulse import synthetic_ir
from .reference_profile import ReferenceProfile, analyze_reference
from .reverb_analysis import diffuse_drr_floor_db, fill_bands, schroeder_rt60
from .spectral_match import eq_gains, ltas, matching_eq_db, mean_power, smooth_octaves

__all__ = ["Stylizer"]

_SILENT_POWER = 1e-12     # mean square below which a stem counts as silent (-120 dBFS)
_SAR_RANGE_DB = (-6.0, 60.0)  # "match" never buries the stem more than 6 dB under the bed
_RT60_RANGE_S = (0.05, 10.0)
_DEFAULT_DRR_DB = 0.0     # when the reference shows decays but no usable DRR
_PREDELAY_S = 0.005       # the first reflection arrives after the direct sound, s
_EARLY_S = 0.025          # the blind DRR's "direct" spans this much after the direct sound, s
_EARLY_DRR_DB = -8.5      # DRR (+-2.5 ms around the direct sound) re. the blind estimate, dB
_TAIL_VARIANTS = 4        # independent tails the stem's input is crossfaded between (2^m)
_VARIANT_PERIOD_S = 1.0   # the crossfade's period, s (weights: products of cos / sin of pi t / this,
                          # the next factor 1.618 times slower; Stylizer._crossfaded)


class Stylizer(Effect):
    """Give a stem the acoustics, colouration and ambience of a reference recording.

    Input: the stem (speech, music, foley). Sidechain: the reference recording of a place, at
    the same sample rate (any length from 0.1 s; a few seconds with some pauses is best).
    Output: the stem as if recorded there, same channels, same length (plus the reverb tail
    with ``tail=True``).

    Parameters
    ----------
    mode : {"stylize", "separate_remix"}
        ``"stylize"``: acoustics + EQ + re-synthesized ambience. ``"separate_remix"``: the
        reference's background looped under the unchanged stem (the paper's baseline).
    amount : float
        Strength of the whole effect, 0 to 1: scales the reverberant tail, the EQ in dB and the
        ambience level. 0 gives the stem unchanged.
    acoustics, eq, ambience : bool
        Switch each part on or off. (With ``eq_target="room"`` the room's colouration is part
        of the response itself, so ``eq`` changes only the report there.)
    ambience_level_db : float or None
        RMS level of the ambience in dBFS; None (default) matches the reference's own
        signal-to-ambience ratio relative to the processed stem (a silent stem gets the
        reference's background level).
    eq_target : {"room", "reference"}
        ``"room"`` (default): the room's colouration as diffuse-field theory gives it (each
        band's tail energy in proportion to its RT60, the direct sound flat), built into the
        response (no EQ of its own).
        ``"reference"``: the reference's long-term spectrum, its source's timbre included.
    eq_limit_db : float
        Largest EQ boost or cut in dB.
    eq_smoothing_oct : float
        EQ smoothing width in octaves.
    tail : bool
        Append the reverb tail (output longer than the input by the impulse response length).
    ceiling_db : float
        Peak ceiling in dBFS: a louder result is turned down as a whole (never clipped).
    seed : int
        Seed of the impulse response's noise and the ambience grains.
    profile : ReferenceProfile, optional
        A reference analysed before (:meth:`analyze`); when set, the sidechain is not needed
        and is ignored.

    Notes
    -----
    The stem should be dry: its own reverberation adds to the reference's. Acoustics are applied
    only when the reference shows free decays (pauses after sounds); a steady reference (rain,
    an engine) or a very short one gives no RT60, and the report says so. Not streamable: the
    reference is analysed whole and the ambience is drawn for the whole stem.
    """

    supports_streaming = False
    uses_sidechain = True
    requires_sidechain = True

    mode = ChoiceParam("stylize", ("stylize", "separate_remix"),
                       doc="'stylize' (acoustics + EQ + ambience) or 'separate_remix' (baseline).")
    amount = FloatParam(1.0, min=0.0, max=1.0, doc="Strength of the stylization (0 = bypass).")
    acoustics = BoolParam(True, doc="Apply the reference's reverberation.")
    eq = BoolParam(True, doc="Apply the reference's colouration.")
    eq_target = ChoiceParam("room", ("room", "reference"),
                            doc="'room': the colouration the room adds (diffuse field: each "
                                "band's tail energy in proportion to its RT60); "
                                "'reference': the reference's whole long-term spectrum (copies "
                                "the reference's source timbre too).")
    ambience = BoolParam(True, doc="Add the reference's background bed.")
    ambience_level_db = FloatParam(None, min=-90.0, max=-6.0, unit="dBFS",
                                   doc="Ambience RMS level; unset = match the reference's "
                                       "signal-to-ambience ratio.")
    eq_limit_db = FloatParam(9.0, min=0.0, max=24.0, unit="dB", doc="Largest EQ boost or cut.")
    eq_smoothing_oct = FloatParam(1.0 / 3.0, min=1.0 / 12.0, max=2.0, unit="octaves",
                                  doc="EQ smoothing width.")
    tail = BoolParam(False, doc="Append the reverb tail to the output.")
    ceiling_db = FloatParam(-1.0, min=-24.0, max=0.0, unit="dBFS",
                            doc="Peak ceiling; louder output is turned down as a whole.")

    def __init__(self, profile: ReferenceProfile | None = None, **params: Any) -> None:
        object.__setattr__(self, "_fixed_profile", None)
        object.__setattr__(self, "_ir_cache", {})
        object.__setattr__(self, "_last_report", {})
        object.__setattr__(self, "_last_profile", None)
        super().__init__(**params)
        if profile is not None:
            self.set_reference(profile)

    # -- the reference ---------------------------------------------------------------------
    @staticmethod
    def analyze(reference: np.ndarray, sample_rate: float) -> ReferenceProfile:
        """Analyse a reference recording (cached by content): RT60 per band, DRR, long-term
        spectrum, ambience bed, level. See :func:`.reference_profile.analyze_reference`."""
        return analyze_reference(reference, sample_rate)

    def set_reference(self, reference: ReferenceProfile | np.ndarray | None,
                      sample_rate: float | None = None) -> ReferenceProfile | None:
        """Fix the reference for every following call (the sidechain is then ignored).

        Parameters
        ----------
        reference : ReferenceProfile, np.ndarray or None
            A profile, or reference audio to analyse (then ``sample_rate`` in Hz is needed), or
            None to go back to reading the sidechain.
        """
        if reference is None:
            profile = None
        elif isinstance(reference, ReferenceProfile):
            profile = reference
        else:
            if sample_rate is None:
                raise ParameterError("set_reference(audio, sample_rate): the sample rate in Hz "
                                     "is needed to analyse reference audio")
            profile = analyze_reference(reference, sample_rate)
        with self._lock:
            object.__setattr__(self, "_fixed_profile", profile)
        return profile

    @property
    def profile(self) -> ReferenceProfile | None:
        """The fixed reference profile, if one was set."""
        return self._fixed_profile

    @property
    def last_profile(self) -> ReferenceProfile | None:
        """The profile used by the last call."""
        return self._last_profile

    @property
    def last_report(self) -> dict[str, Any]:
        """What the last call did: parts applied, the RT60 per band used (``rt60_bands_s``) and
        the mid-band (500 Hz-2 kHz) T30 measured on the applied response (``rt60_applied_s``),
        DRR used, EQ per band and range (dB), ambience level (dBFS), safety gain (dB),
        reference notes."""
        return dict(self._last_report)

    def _resolve_sidechain(self, sidechain: SidechainArg) -> np.ndarray | None:
        if self._fixed_profile is not None:
            return None  # a fixed reference wins over whatever a Chain passes along
        return super()._resolve_sidechain(sidechain)

    # -- processing ------------------------------------------------------------------------
    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        sr = float(sample_rate)
        if self._fixed_profile is not None:
            profile = self._fixed_profile.at_rate(sr)
        else:
            assert sidechain is not None
            profile = analyze_reference(sidechain, sr)
        object.__setattr__(self, "_last_profile", profile)
        channels, n = audio.shape
        report: dict[str, Any] = {"mode": self.mode, "amount": self.amount,
                                  "reference": profile.summary(), "acoustics_applied": False,
                                  "eq_applied": False, "ambience_applied": False}
        amount = float(self.amount)
        wet = audio
        if self.mode == "stylize" and amount > 0:
            wet = self._stem_path(audio, sr, profile, report)
        ambience = None
        if self.ambience and amount > 0 and profile.has_ambience:
            ambience = self._ambience(wet, sr, profile, report)
        elif self.ambience and amount > 0:
            report["ambience_note"] = "the reference has no stationary background"
        out = wet if ambience is None else wet + ambience
        out = self._safety(out, float(np.max(np.abs(audio))), report)
        object.__setattr__(self, "_last_report", report)
        return out

    def _stem_path(self, audio: np.ndarray, sr: float, profile: ReferenceProfile,
                   report: dict[str, Any]) -> np.ndarray:
        """Acoustics and EQ as one FFT convolution of the stem with ``EQ * impulse response``."""
        channels, n = audio.shape
        amount = float(self.amount)
        ir = None
        tails: tuple[np.ndarray, ...] = ()
        if self.acoustics and profile.has_reverb:
            ir, tails = self._impulse_response(profile, sr, channels, report)
            ir = ir * np.float32(amount)
            ir[:, 0] += np.float32(1.0 - amount)  # direct path stays at unity; the tail scales
            report["acoustics_applied"] = True
            report["ir_length_s"] = round(ir.shape[-1] / sr, 3)
            report["ir_samples"] = int(ir.shape[-1])
        elif self.acoustics:
            report["acoustics_note"] = ("no RT60 measurable in the reference (no free decays): "
                                        "acoustics not applied")
        gains_db = None
        stem_power = mean_power(audio)
        if self.eq and self.eq_target == "reference" and stem_power > _SILENT_POWER:
            freqs, src = ltas(audio, sr)
            if ir is not None:  # the EQ sees the stem as the room colours it
                src = src * _power_response(ir, sr, freqs)
            tgt = np.interp(freqs, profile.ltas_freqs, profile.ltas_psd, right=0.0)
            gains_db = amount * matching_eq_db(freqs, src, tgt, max_db=self.eq_limit_db,
                                               smoothing_oct=self.eq_smoothing_oct)
            report["eq_applied"] = True
            report["eq_range_db"] = [round(float(gains_db.min()), 2), round(float(gains_db.max()), 2)]
        if ir is None and gains_db is None:
            return audio
        if ir is not None and gains_db is None and len(tails) > 1:
            return self._crossfaded(audio, sr, ir, tails, amount, report)
        if ir is None:
            ir = np.zeros((channels, 1), dtype=np.float32)
            ir[:, 0] = 1.0
        delay = 0
        if gains_db is not None:
            # zero-phase EQ on the response: pad in front for its (short) non-causal half
            delay = 1 << int(np.ceil(np.log2(0.093 * sr)))
            padded = np.pad(ir, ((0, 0), (delay, delay)))
            n_fft = sp_fft.next_fast_len(padded.shape[-1], real=True)
            spec = sp_fft.rfft(padded, n=n_fft, axis=-1) * eq_gains(freqs, gains_db, n_fft, sr)
            ir = sp_fft.irfft(spec, n=n_fft, axis=-1)[:, : padded.shape[-1]].astype(np.float32)
        # the full convolution is n + L - 1 samples long (L: the response without EQ padding)
        n_out = n + (ir.shape[-1] - 2 * delay - 1 if self.tail and report["acoustics_applied"] else 0)
        wet = convolve(audio, ir)
        return np.ascontiguousarray(wet[:, delay: delay + n_out], dtype=np.float32)

    def _crossfaded(self, audio: np.ndarray, sr: float, ir: np.ndarray,
                    tails: tuple[np.ndarray, ...], amount: float,
                    report: dict[str, Any]) -> np.ndarray:
        """The stem through the response, its reverberant tail crossfaded between independent
        draws of the same room.

        One draw of a noise tail colours each of the stem's partials by its own random
        ``|H(f)|^2`` (exponentially distributed, +-5 dB and more), peaks and dips no blind
        estimate can match to the real room's; over a long stem that is a colouration of its
        own. The stem's input is split over ``K = 2^m`` draws (``_TAIL_VARIANTS``) by weights
        that are products of one ``cos`` or ``sin`` per factor of 2 (``cos a cos b``, ``cos a sin
        b``, ``sin a cos b``, ``sin a sin b`` for four; ``a = pi t / P``, ``b = pi t / (1.618
        P)``, ``P = _VARIANT_PERIOD_S``): their squares sum to 1 at every instant (the tail's
        level never moves), they are orthogonal over time (no cross terms between draws), and
        each has sidebands only at the sums and differences of ``1 / (2 P)`` and ``1 / (2 x
        1.618 P)`` Hz (0.19 and 0.81 Hz for four draws and 1 s: no splatter).
        Each part goes through its own tail: the long-term spectrum averages ``K`` draws.
        The direct sound is untouched; at ``t = 0`` draw 0 alone is heard, so a click's
        response is the response the report describes.
        """
        channels, n = audio.shape
        k_all = len(tails)
        t = np.arange(n, dtype=np.float32) / np.float32(sr)
        weights = np.ones((k_all, n), dtype=np.float32)
        # one cos / sin pair per factor of 2, each slower than the last by the golden ratio
        for j in range(int(np.log2(k_all))):
            phase = np.float32(np.pi / (_VARIANT_PERIOD_S * 1.618 ** j)) * t
            bit = (np.arange(k_all) >> j) & 1
            weights[bit == 0] *= np.cos(phase)
            weights[bit == 1] *= np.sin(phase)
        n_out = n + (ir.shape[-1] - 1 if self.tail else 0)
        irs = [ir] + [tail * np.float32(amount) for tail in tails[1:]]
        out = convolve_weighted(audio, weights, irs, n_out)
        out[:, :n] += audio * (np.float32(1.0) - weights[0])  # draw 0 carried the direct sound
        report["tail_variants"] = k_all
        return out

    def _impulse_response(self, profile: ReferenceProfile, sr: float, channels: int,
                          report: dict[str, Any]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """The reference's synthetic response and ``_TAIL_VARIANTS`` draws of its tail (the
        first the response itself, the others without the direct sound); cached: the same room
        for every stem."""
        rev = profile.reverb
        rt = np.clip(fill_bands(rev.centers_hz, rev.rt60_s, rev.broadband_rt60_s), *_RT60_RANGE_S)
        blind = rev.drr_db if np.isfinite(rev.drr_db) else _DEFAULT_DRR_DB
        # a real room's first 25 ms hold at least its diffuse tail's early part plus the early
        # reflections' excess: lower blind values read a source's own decay as reverberation
        floor = diffuse_drr_floor_db(rev.broadband_rt60_s)
        report["drr_floor_db"] = round(float(floor), 2) if np.isfinite(floor) else None
        if np.isfinite(floor) and blind < floor:
            blind = floor
        drr, early_db = early_split(blind)
        if self.eq and self.eq_target == "room":
            # diffuse-field colouration: every band's tail starts at the direct sound's level,
            # so its energy grows with its RT60 (the plain tail): no gain of its own
            report["eq_applied"] = True
            report["eq_db"] = [0.0] * rt.size
            report["eq_range_db"] = [0.0, 0.0]
            report["eq_rule"] = "diffuse field: each band's tail energy in proportion to its RT60"
        report["rt60_bands_s"] = [round(float(v), 3) for v in rt]
        report["drr_applied_db"] = round(float(drr), 2)
        report["early_to_late_db"] = round(float(early_db), 2)
        key = (profile.content_hash, sr, channels, self.seed, round(float(drr), 4),
               round(float(early_db), 4))
        cached = self._ir_cache.get(key)
        if cached is None:
            # generators of their own: the room does not change with the ambience's random
            # stream; draw 0 is the response, the others its tail alone (for the crossfade)
            draws = []
            for k in range(_TAIL_VARIANTS):
                stream = [self.seed, 0x1A] + ([k] if k else [])
                draw = synthetic_ir(rt, rev.centers_hz, sr, drr_db=drr, channels=channels,
                                    seed=np.random.default_rng(stream),
                                    predelay_s=_PREDELAY_S, early_s=_EARLY_S,
                                    early_to_late_db=early_db)
                if k:
                    draw[:, 0] = 0.0
                draws.append(draw)
            # the broadband figure is measured on what is applied (neighbouring bands with
            # longer decays lengthen an octave's T30), not taken from the band values
            mid = rev.centers_hz[(rev.centers_hz >= 500) & (rev.centers_hz <= 2000)]
            t30 = schroeder_rt60(draws[0][:1], sr, centers_hz=mid if mid.size else None,
                                 db_range=(-5.0, -35.0))
            cached = (tuple(draws), float(np.nanmean(t30)) if np.isfinite(t30).any() else float("nan"))
            self._ir_cache.clear()
            self._ir_cache[key] = cached
        report["rt60_applied_s"] = round(cached[1], 3)
        return cached[0][0], cached[0]

    def _ambience(self, stem: np.ndarray, sr: float, profile: ReferenceProfile,
                  report: dict[str, Any]) -> np.ndarray:
        channels, n = stem.shape
        model = profile.ambience
        if self.mode == "stylize":
            bed = synthesize_ambience(model, n, channels, self._rng)
        else:
            bed = loop_ambience(model, n, channels)
        bed_power = mean_power(bed)
        if bed_power <= 0:
            return np.zeros_like(stem)
        if self.ambience_level_db is not None:
            target_db = float(self.ambience_level_db)
            how = "fixed"
        else:
            stem_power = mean_power(stem)
            if stem_power > _SILENT_POWER:
                sar = float(np.clip(model.sar_db, *_SAR_RANGE_DB))
                target_db = 10.0 * np.log10(stem_power) - sar
                how = f"match (signal-to-ambience {sar:.1f} dB)"
            else:
                target_db = model.level_dbfs
                how = "match (silent stem: the reference's own background level)"
        gain = float(self.amount) * 10.0 ** ((target_db - 10.0 * np.log10(bed_power)) / 20.0)
        report["ambience_applied"] = True
        report["ambience_level_dbfs"] = round(target_db + 20.0 * np.log10(max(self.amount, 1e-9)), 2)
        report["ambience_level_rule"] = how
        return bed * np.float32(gain)

    def _safety(self, out: np.ndarray, input_peak: float, report: dict[str, Any]) -> np.ndarray:
        """Turn the whole result down if it peaks above the ceiling (or above the input's own
        peak, if that was higher but still below full scale): never clipped, never distorted."""
        ceiling = max(10.0 ** (self.ceiling_db / 20.0), min(input_peak, 1.0))
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        report["safety_gain_db"] = 0.0
        if peak > ceiling:
            report["safety_gain_db"] = round(20.0 * np.log10(ceiling / peak), 2)
            out = out * np.float32(ceiling / peak)
        return np.asarray(out, dtype=np.float32)


def _power_response(ir: np.ndarray, sr: float, freqs: np.ndarray) -> np.ndarray:
    """Channel-averaged ``|H|^2`` of a response, 1/6-octave smoothed, at ``freqs`` (Hz)."""
    n_fft = sp_fft.next_fast_len(max(ir.shape[-1], 2 * (freqs.size - 1)), real=True)
    power = (np.abs(sp_fft.rfft(ir, n=n_fft, axis=-1)) ** 2).mean(axis=0)
    fine = sp_fft.rfftfreq(n_fft, 1.0 / sr)
    return np.interp(freqs, fine, smooth_octaves(fine, power, 1.0 / 6.0))


def early_split(blind_drr_db: float, offset_db: float = _EARLY_DRR_DB) -> tuple[float, float]:
    """The response's DRR and early-to-late ratio (both dB) from a blind DRR estimate.

    The blind estimate (:mod:`.reverb_analysis`) works on band envelopes smoothed over 20 ms
    or more, so its "direct sound" holds the early reflections that arrive within that time:
    it is ``(D + E) / L`` with ``D`` the direct sound, ``E`` the reflections in the first
    ``_EARLY_S`` and ``L`` the rest. The response's DRR proper (+-2.5 ms around the direct
    sound) is ``D / (E + L)``, ``offset_db`` below it; ``offset_db`` was set on the tuning
    rooms of ``benchmarks/stylizer.py`` (pyroomacoustics shoeboxes, whose first reflections
    off floor, walls and ceiling arrive within 25 ms) and is reported on others. With
    ``D = 1``, ``(1 + E) / L = x`` and ``1 / (E + L) = y`` give ``L = (1 + 1/y) / (1 + x)``
    and ``E = 1/y - L`` (``E >= 0`` since ``offset_db <= 0``).

    Parameters
    ----------
    blind_drr_db : float
        The blind estimate in dB.
    offset_db : float
        DRR proper re. the blind estimate in dB (<= 0).

    Returns
    -------
    tuple of float
        ``(drr_db, early_to_late_db)``: the response's DRR in dB and its early part's energy
        (the first ``_EARLY_S`` after the direct sound) over the rest's in dB.
    """
    x = 10.0 ** (float(blind_drr_db) / 10.0)
    y = 10.0 ** ((float(blind_drr_db) + min(float(offset_db), 0.0)) / 10.0)
    late = (1.0 + 1.0 / y) / (1.0 + x)
    early = max(1.0 / y - late, 1e-12)
    return 10.0 * np.log10(y), 10.0 * np.log10(early / late)
