"""What a reference recording says about its place, analysed once and reused.

:func:`analyze_reference` runs the three analyses a soundscape stylizer needs on a reference
recording (a street, a bus, a beach) and keeps the results in a :class:`ReferenceProfile`:

- acoustics: blind RT60 per octave band and a DRR (:mod:`.reverb_analysis`);
- colouration: the long-term average spectrum (:mod:`.spectral_match`);
- ambience: the stationary background bed (:mod:`.ambience`).

Profiles are cached by the reference's content (a hash of its samples and rate), so stylizing
many stems against one reference analyses it once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from blendfx.buffers import check_finite, to_channels_first
from blendfx.errors import ParameterError
from blendfx.spectral.analysis import resample

from .ambience import MIN_REFERENCE_S, AmbienceModel, extract_ambience
from .reverb_analysis import ReverbEstimate, estimate_reverb
from .spectral_match import ltas, mean_power

__all__ = ["ReferenceProfile", "analyze_reference", "content_hash", "clear_profile_cache"]

_CACHE_SIZE = 8
_MAX_REVERB_S = 120.0   # longest stretch of a reference scanned for free decays, s
_MAX_AMBIENCE_S = 30.0  # longest stretch a background bed is taken from, s
_cache: OrderedDict[str, ReferenceProfile] = OrderedDict()
_cache_lock = threading.Lock()

#: A bed quieter than this (dBFS) is no ambience at all (gated or digitally silent pauses).
SILENT_BED_DBFS = -100.0


@dataclass(frozen=True)
class ReferenceProfile:
    """The analysed acoustics, colouration and ambience of one reference recording.

    Attributes
    ----------
    sample_rate : float
        Rate of the analysed reference in Hz.
    duration_s : float
        Length of the reference in s.
    channels : int
        Channels of the reference.
    reverb : ReverbEstimate
        RT60 per octave band (NaN where unknown) and DRR.
    ltas_freqs, ltas_psd : np.ndarray
        Long-term average spectrum: frequencies in Hz and power spectral density.
    ambience : AmbienceModel
        The stationary background bed.
    level_dbfs : float
        RMS level of the whole reference in dBFS.
    content_hash : str
        Hash of the reference's samples and rate (the cache key).
    notes : tuple of str
        What could not be estimated and why.
    """

    sample_rate: float
    duration_s: float
    channels: int
    reverb: ReverbEstimate
    ltas_freqs: np.ndarray
    ltas_psd: np.ndarray
    ambience: AmbienceModel
    level_dbfs: float
    content_hash: str
    notes: tuple[str, ...] = field(default=())

    @property
    def has_reverb(self) -> bool:
        """True when at least one band's RT60 was measured."""
        return self.reverb.valid

    @property
    def has_ambience(self) -> bool:
        """True when the reference has an audible stationary background."""
        return self.ambience.level_dbfs > SILENT_BED_DBFS

    def summary(self) -> dict[str, Any]:
        """Plain numbers for reports and JSON: RT60 per band (s, None where unknown), DRR (dB),
        ambience level (dBFS), signal-to-ambience ratio (dB), level (dBFS), notes."""
        def num(v: float) -> float | None:
            return None if not np.isfinite(v) else round(float(v), 3)

        return {
            "duration_s": round(self.duration_s, 3),
            "bands_hz": [float(c) for c in self.reverb.centers_hz],
            "rt60_s": [num(v) for v in self.reverb.rt60_s],
            "rt60_broadband_s": num(self.reverb.broadband_rt60_s),
            "drr_db": num(self.reverb.drr_db),
            "ambience_dbfs": num(self.ambience.level_dbfs) if self.has_ambience else None,
            "sar_db": num(self.ambience.sar_db) if self.has_ambience else None,
            "level_dbfs": num(self.level_dbfs),
            "notes": list(self.notes),
        }

    def at_rate(self, sample_rate: float) -> ReferenceProfile:
        """This profile for audio at another rate: the bed is resampled; RT60s, DRR and the
        spectrum are in Hz and s and carry over (bands above the new Nyquist are unused)."""
        sr = float(sample_rate)
        if sr == self.sample_rate:
            return self

        bed = resample(self.ambience.bed, self.ambience.sample_rate, sr)
        return replace(self, ambience=replace(self.ambience, bed=bed, sample_rate=sr))


def content_hash(audio: np.ndarray, sample_rate: float) -> str:
    """A short hash of ``(channels, samples)`` audio and its rate (blake2b, 128 bits)."""
    data = np.ascontiguousarray(audio, dtype=np.float32)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{data.shape}|{float(sample_rate)!r}|".encode())
    h.update(memoryview(data).cast("B"))
    return h.hexdigest()


def clear_profile_cache() -> None:
    """Forget every cached profile."""
    with _cache_lock:
        _cache.clear()


def analyze_reference(reference: np.ndarray, sample_rate: float, *,
                      use_cache: bool = True) -> ReferenceProfile:
    """Analyse a reference recording into a :class:`ReferenceProfile`.

    Parameters
    ----------
    reference : np.ndarray
        The recording of the place, any layout, at least 0.1 s. Longer is better: the RT60
        needs pauses after sounds (a few seconds with some), the ambience needs a stretch of
        background (1.5 s or more). Only the first 120 s are scanned for decays and the
        first 30 s give the ambience bed; the spectrum and level use all of it.
    sample_rate : float
        Sample rate in Hz.
    use_cache : bool
        Reuse the profile of identical audio analysed before (the last 8 kept).

    Raises
    ------
    ParameterError
        If the reference is shorter than 0.1 s or holds NaN/Inf.
    """
    sr = float(sample_rate)
    if not (sr > 0 and np.isfinite(sr)):
        raise ParameterError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    data, _ = to_channels_first(reference, name="reference")
    check_finite(data, name="reference")
    n = data.shape[-1]
    if n < MIN_REFERENCE_S * sr:
        raise ParameterError(f"reference is {n / sr:.3f} s long; the Stylizer needs at least "
                             f"{MIN_REFERENCE_S:g} s of a reference recording")
    key = content_hash(data, sr)
    if use_cache:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
    # long references: the first minutes say all there is to say, at bounded memory and time
    reverb = estimate_reverb(data[:, : int(_MAX_REVERB_S * sr)], sr)
    freqs, psd = ltas(data, sr)
    amb = extract_ambience(data[:, : int(_MAX_AMBIENCE_S * sr)], sr)
    level = 10.0 * np.log10(max(mean_power(data), 1e-20))
    notes = list(reverb.notes)
    if n > _MAX_AMBIENCE_S * sr:
        notes.append(f"ambience taken from the first {_MAX_AMBIENCE_S:g} s, reverberation from "
                     f"the first {min(n / sr, _MAX_REVERB_S):g} s of {n / sr:.1f} s")
    if amb.level_dbfs <= SILENT_BED_DBFS:
        notes.append(amb.note or "no stationary background (the reference's pauses are digital "
                     "silence): no ambience")
    profile = ReferenceProfile(sample_rate=sr, duration_s=n / sr, channels=data.shape[0],
                               reverb=reverb, ltas_freqs=freqs, ltas_psd=psd, ambience=amb,
                               level_dbfs=level, content_hash=key, notes=tuple(notes))
    if use_cache:
        with _cache_lock:
            _cache[key] = profile
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return profile
