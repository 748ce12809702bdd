"""Ambient-bed extraction and loop-free re-synthesis (blendfx.effects.stylizer.ambience)."""

from __future__ import annotations

import blendfx
import numpy as np
import pytest
from blendfx import ParameterError
from blendfx.effects.stylizer.ambience import (
    extract_ambience,
    loop_ambience,
    repetition_peak,
    synthesize_ambience,
)
from blendfx.effects.stylizer.probe_signals import exponential_ir
from blendfx.effects.stylizer.spectral_match import ltas_distance_db
from scipy.signal import fftconvolve, lfilter

from ...conftest import shared

SR = 44100


def background_and_events(seconds: float = 5.0, seed: int = 0):
    """Red-ish stationary noise at about -33 dBFS plus four loud 440 Hz tone bursts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    bg = lfilter([1.0], [1.0, -0.9], rng.standard_normal(n)) * 0.01
    fg = np.zeros(n)
    for t in (0.5, 1.7, 3.2, 4.1):
        i = int(t * SR)
        if i + 8000 > n:
            break
        fg[i: i + 8000] = 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / SR)
    return bg, fg


def db(power: float) -> float:
    return 10 * np.log10(power)


def test_extraction_finds_the_background_level_and_sar():
    bg, fg = background_and_events()
    model = extract_ambience(bg + fg, SR)
    assert model.level_dbfs == pytest.approx(db(np.mean(bg ** 2)), abs=1.0)
    assert model.sar_db == pytest.approx(db(np.mean(fg ** 2) / np.mean(bg ** 2)), abs=1.5)
    # the events are gone from the bed: its level where a burst was is the background's
    burst = slice(int(0.5 * SR) + 1000, int(0.5 * SR) + 7000)
    assert db(np.mean(model.bed[0, burst].astype(np.float64) ** 2)) < db(np.mean(bg ** 2)) + 3


def test_pure_background_is_all_ambience():
    bg, _ = background_and_events()
    model = extract_ambience(bg, SR)
    assert model.level_dbfs == pytest.approx(db(np.mean(bg ** 2)), abs=1.0)
    assert model.sar_db < -10


def test_resynthesis_60s_from_5s_has_no_loop():
    rain, sr = blendfx.read_audio(shared("noise", "esc10", "rain", "1-17367-A.ogg"), mono=True)
    model = extract_ambience(rain, sr)
    out = synthesize_ambience(model, 60 * SR, 1, np.random.default_rng(0))
    peak, lag = repetition_peak(out, SR)
    loop_peak, loop_lag = repetition_peak(loop_ambience(model, 60 * SR, 1), SR)
    print(f"re-synthesis: {peak:.3f} at {lag:.2f} s; plain loop: {loop_peak:.3f} at {loop_lag:.2f} s")
    assert loop_peak > 0.8  # the measure does catch a loop ...
    assert peak < 0.25  # ... and finds none in the re-synthesis
    # same level and spectrum as the bed
    assert db(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(model.level_dbfs, abs=1.0)
    assert ltas_distance_db(out, model.bed, SR) < 1.5


def test_channels_image_and_determinism():
    bg, _ = background_and_events(3.0)
    mono = extract_ambience(bg, SR)
    wide = synthesize_ambience(mono, 2 * SR, 2, np.random.default_rng(1))
    assert abs(np.corrcoef(wide[0], wide[1])[0, 1]) < 0.2  # a mono bed spreads decorrelated
    stereo = extract_ambience(np.stack([bg, 0.5 * bg]), SR)
    kept = synthesize_ambience(stereo, 2 * SR, 2, np.random.default_rng(1))
    np.testing.assert_allclose(kept[1], 0.5 * kept[0], atol=1e-5)  # a stereo bed keeps its image
    again = synthesize_ambience(mono, 2 * SR, 2, np.random.default_rng(1))
    np.testing.assert_array_equal(wide, again)


def test_short_and_silent_references():
    noise = np.random.default_rng(0).standard_normal(int(0.3 * SR)) * 0.1
    model = extract_ambience(noise, SR)
    assert model.level_dbfs == pytest.approx(-20.0, abs=1.5)
    out = synthesize_ambience(model, 3 * SR, 1, np.random.default_rng(0))
    assert np.isfinite(out).all() and db(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(
        model.level_dbfs, abs=1.5)
    with pytest.raises(ParameterError, match="0.050 s long"):
        extract_ambience(noise[: int(0.05 * SR)], SR)
    gated = np.zeros(3 * SR)  # a gated recording: events in digital silence
    gated[SR: SR + 4000] = noise[:4000]
    assert extract_ambience(gated, SR).level_dbfs < -100


def _pink(n: int, seed: int) -> np.ndarray:
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    return lfilter(b, a, np.random.default_rng(seed).standard_normal(n))


def bursts_in_a_room(rt60: float, gaps_s: list[float], floor_db: float | None, seed: int = 0):
    """Pink-noise bursts of 0.8 s separated by ``gaps_s`` in a textbook room of ``rt60`` s, over
    a steady pink background ``floor_db`` below the reverberant signal's power (or none: a
    -140 dB hiss). Returns the reference and the background's power."""
    parts = []
    for k, gap in enumerate(gaps_s):
        parts += [_pink(int(0.8 * SR), seed + 7 + k), np.zeros(int(gap * SR))]
    dry = np.concatenate(parts)
    wet = fftconvolve(dry, exponential_ir(rt60, SR, 0.0, seed=seed))[: dry.size]
    if floor_db is None:
        return wet + 1e-7 * np.random.default_rng(seed).standard_normal(dry.size), 0.0
    bg = _pink(dry.size, seed + 1)
    bg *= np.sqrt(np.mean(wet ** 2) * 10 ** (floor_db / 10) / np.mean(bg ** 2))
    return wet + bg, float(np.mean(bg ** 2))


@pytest.mark.parametrize("floor_db", [-35.0, -40.0])
def test_background_seen_in_one_short_rest_is_found_at_its_level(floor_db):
    """A floor 35-40 dB down that shows in one 1 s pause (the decay reaches it after a few
    tenths of a second; the rest is flat in every band) is a background, at its level."""
    ref, bg_power = bursts_in_a_room(0.4, [0.15, 0.2, 1.0, 0.15], floor_db)
    model = extract_ambience(ref, SR)
    assert model.level_dbfs == pytest.approx(db(bg_power), abs=1.5)


@pytest.mark.parametrize("rt60", [0.6, 2.5, 7.0])
def test_reverberant_rests_without_a_floor_are_no_background(rt60):
    """Pauses in which a room's tail decays (however slowly) are no background."""
    ref, _ = bursts_in_a_room(rt60, [0.8, 0.4, 0.8, 0.4], None)
    assert extract_ambience(ref, SR).level_dbfs < -100


def test_background_seen_in_several_brief_rests_is_found_at_its_level():
    """Three 0.5 s pauses, each showing the floor for less than 0.3 s, agree in level and
    spectral shape: a background, at its level."""
    ref, bg_power = bursts_in_a_room(0.2, [0.5, 0.5, 0.5, 0.15], -35.0)
    assert extract_ambience(ref, SR).level_dbfs == pytest.approx(db(bg_power), abs=1.5)


def _harmonic(f0: float, seconds: float, amp: float, seed: int) -> np.ndarray:
    """A steady harmonic tone (partials up to 10 kHz at 1/k amplitude, random phases)."""
    t = np.arange(int(seconds * SR)) / SR
    phases = np.random.default_rng(seed).uniform(0.0, 2.0 * np.pi, 20)
    return amp * sum(np.sin(2 * np.pi * f0 * k * t + phases[k - 1]) / k
                     for k in range(1, 21) if f0 * k < 10000)


def test_a_quiet_held_note_is_no_background():
    """Continuous playing whose quietest stretch is a held note 30 dB down (1.5 s, flat enough
    for a plateau) in a 0.8 s room: the stretch holds partials, not a noise-like bed, so no
    ambience (without the flatness check a bed was taken from it)."""
    notes = [_harmonic(f, 0.6, 0.3, k) for k, f in enumerate((220, 262, 330, 294, 247, 196))]
    notes.append(_harmonic(196, 1.5, 0.3 * 10 ** (-30 / 20), 9))
    notes += [_harmonic(f, 0.6, 0.3, k + 10) for k, f in enumerate((330, 392, 349, 294, 262))]
    dry = np.concatenate(notes)
    ref = fftconvolve(dry, exponential_ir(0.8, SR, 0.0, seed=1))[: dry.size]
    assert extract_ambience(ref, SR).level_dbfs < -100
