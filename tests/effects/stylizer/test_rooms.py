"""The Stylizer on rooms it did not build: pyroomacoustics shoeboxes (issue 22).

Image-source rooms with octave-band wall absorption from pyroomacoustics' material database and
air absorption give true responses; a reference is dry material played in the room (plus a
pink background where stated); the oracle is the stem convolved with the true response.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from blendfx.effects import Stylizer
from blendfx.effects.stylizer.impulse import synthetic_ir
from blendfx.effects.stylizer.probe_signals import exponential_ir, shoebox_response, speech_like
from blendfx.effects.stylizer.reference_profile import analyze_reference
from blendfx.effects.stylizer.reverb_analysis import (
    OCTAVE_CENTERS_HZ,
    estimate_reverb,
    schroeder_rt60,
    smooth_across_bands,
)
from blendfx.effects.stylizer.spectral_match import third_octave_distance_db
from scipy.signal import fftconvolve, lfilter

pytest.importorskip("pyroomacoustics")

SR = 44100
MID = np.array([500.0, 1000.0, 2000.0])
ROOMS = {  # size (m), one material on every surface, source, microphone
    "living_room": ((5.5, 4.5, 2.6), "blinds_open", (1.4, 1.8, 1.2), (4.1, 3.0, 1.1)),
    "tiled_box": ((2.6, 2.2, 2.5), "audience_floor", (0.7, 0.8, 1.5), (1.9, 1.5, 1.6)),
}


@lru_cache(maxsize=4)
def room(name: str) -> np.ndarray:
    dims, material, src, mic = ROOMS[name]
    surfaces = dict.fromkeys(("east", "west", "north", "south", "floor", "ceiling"), material)
    return shoebox_response(dims, surfaces, src, mic, SR, reach=1.2, seed=1)


def t30(response: np.ndarray) -> float:
    return float(np.mean(schroeder_rt60(response, SR, centers_hz=MID, db_range=(-5.0, -35.0))))


def pink(n: int, seed: int) -> np.ndarray:
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    return lfilter(b, a, np.random.default_rng(seed).standard_normal(n))


def with_background(wet: np.ndarray, db: float | None, seed: int = 5) -> np.ndarray:
    """``wet`` plus pink noise ``db`` below its RMS (None: nothing added)."""
    if db is None:
        return wet.astype(np.float32)
    bg = pink(wet.size, seed)
    return (wet + bg * np.sqrt(np.mean(wet ** 2) * 10 ** (db / 10) / np.mean(bg ** 2))).astype(np.float32)


def reference(name: str, noise_db: float | None, seconds: float = 10.0, pause_s: float = 0.0):
    """Speech-like bursts played in the room (then ``pause_s`` of room tone), peak 0.5."""
    dry = np.concatenate([speech_like(seconds, SR, seed=8), np.zeros(int(pause_s * SR))])
    wet = fftconvolve(dry.astype(np.float64), room(name))[: dry.size]
    wet = 0.5 * wet / np.abs(wet).max()
    return wet, with_background(wet, noise_db)


@pytest.mark.parametrize("noise_db", [None, -30.0])
@pytest.mark.parametrize("name", list(ROOMS))
def test_applied_response_has_the_rooms_t30(name, noise_db):
    """The response the Stylizer applies has the room's mid-band (500 Hz-2 kHz) T30 within
    11 %, with or without a background 30 dB down, and its report says what it applied (10 %
    until a band may lie a factor 5 from the cross-band fit instead of 2: the living room under
    a floor 30 dB down reads +10.3 % instead of +9.7 %; the held-out rooms of
    ``benchmarks/stylizer.py`` gain: held split median 15.2 to 10.9 %)."""
    true = t30(room(name))
    _, ref = reference(name, noise_db)
    st = Stylizer(profile=analyze_reference(ref, SR, use_cache=False), ambience=False)
    click = np.zeros(int((1.2 * true + 1.0) * SR), np.float32)
    click[0] = 1.0
    applied = t30(st.process(click, SR))
    print(f"{name} noise {noise_db}: true T30 {true:.3f} s, applied {applied:.3f} s, "
          f"reported {st.last_report['rt60_applied_s']} s")
    assert applied == pytest.approx(true, rel=0.11)
    assert st.last_report["rt60_applied_s"] == pytest.approx(applied, rel=0.02)


@pytest.mark.parametrize("noise_db", [None, -30.0])
@pytest.mark.parametrize("name", list(ROOMS))
def test_stylized_stem_is_closer_to_the_oracle(name, noise_db):
    """With the EQ on, the stylized stem's 1/3-octave colouration is closer to the stem
    recorded in the room than the dry stem's, by at least 0.3 dB in the living room. The tiled
    box (2.6 x 2.2 x 2.5 m, RT60 1 s) has its Schroeder frequency near 530 Hz: below it the
    oracle's colouration is single modes (a 19 dB notch at 100 Hz) that no diffuse-field
    response reproduces, so there the stylized stem is only no farther (0.3 dB) than the dry one
    (a per-band EQ from blind DRRs once passed here by chance and lost elsewhere)."""
    _, ref = reference(name, noise_db)
    stem = speech_like(6.0, SR, seed=9)
    oracle = fftconvolve(stem.astype(np.float64), room(name))[: stem.size]
    st = Stylizer(ambience=False)
    out = st.process(stem, SR, sidechain=ref)
    dry, styl = third_octave_distance_db(stem, oracle, SR), third_octave_distance_db(out, oracle, SR)
    print(f"{name} noise {noise_db}: dry {dry:.2f} dB, stylized {styl:.2f} dB, "
          f"eq {st.last_report['eq_range_db']}")
    assert st.last_report["eq_applied"]
    assert styl < (dry - 0.3 if name == "living_room" else dry + 0.3)


def test_no_ambience_from_reverberation_tails():
    """A reverberant reference without a background gets no ambience bed, and says why (its
    quietest moments are the ends of decays, never digital silence)."""
    _, ref = reference("living_room", None)
    st = Stylizer()
    st.process(speech_like(3.0, SR, seed=2), SR, sidechain=ref)
    assert not st.last_report["ambience_applied"]
    assert not st.last_profile.has_ambience
    assert any("no stationary background" in n for n in st.last_profile.notes)


@pytest.mark.parametrize("noise_db", [-40.0, -30.0])
def test_ambience_at_the_measured_level(noise_db):
    """A pink background under reverberant speech (with a pause that shows it) is added to the
    stem at the reference's own signal-to-ambience ratio, within 3 dB."""
    wet, ref = reference("living_room", noise_db, pause_s=2.0)
    stem = speech_like(4.0, SR, seed=3)
    st = Stylizer()
    out = st.process(stem, SR, sidechain=ref).astype(np.float64)
    assert st.last_report["ambience_applied"]
    stem_path = Stylizer(ambience=False).process(stem, SR, sidechain=ref).astype(np.float64)
    added = out - stem_path
    got = 10 * np.log10(np.mean(stem_path ** 2) / np.mean(added ** 2))
    true = 10 * np.log10(np.mean(wet ** 2) / np.mean((ref - wet) ** 2))
    print(f"noise {noise_db}: signal-to-ambience true {true:.2f} dB, stylized {got:.2f} dB")
    assert got == pytest.approx(true, abs=3.0)


@pytest.mark.parametrize("rt60", [0.3, 2.0])
def test_noise_floor_does_not_lengthen_the_rt60(rt60):
    """A pink floor 30 dB under the reference's RMS leaves the blind RT60 within 8 % (the
    estimator used to read a 0.3 s room as 0.7 s under such a floor)."""
    dry = speech_like(8.0, SR, seed=2).astype(np.float64)
    wet = fftconvolve(dry, exponential_ir(rt60, SR, 0.0, seed=3))[: dry.size]
    est = estimate_reverb(with_background(wet, -30.0, seed=6), SR)
    print(rt60, "per band", np.round(est.rt60_s, 3), "noise floors", np.round(est.noise_floor_db, 1))
    assert est.broadband_rt60_s == pytest.approx(rt60, rel=0.08)


def test_one_wild_band_follows_its_neighbours():
    """One band read 3x too long (as a 4 kHz band once read 5.1 s in a 2.3 s room) is pulled
    back to its neighbours, while the others and their trend stay."""
    truth = np.array([1.6, 1.5, 1.4, 1.3, 1.2, 1.05, 0.9])
    seen = truth.copy()
    seen[5] = 3.2
    fitted = np.exp(smooth_across_bands(np.log(seen), np.full(7, 0.6)))
    print(np.round(fitted, 3))
    np.testing.assert_allclose(fitted, truth, rtol=0.12)
    missing = truth.copy()
    missing[[0, 3]] = np.nan
    np.testing.assert_allclose(np.exp(smooth_across_bands(np.log(missing), np.full(7, 0.6))),
                               truth, rtol=0.06)


def test_room_colouration_is_the_diffuse_field():
    """With the room EQ on, each band's tail holds energy in proportion to its RT60 (every band
    starting at the same level; diffuse-field theory), the direct sound flat: no per-band gain
    from per-band DRRs (which moved stems away from the oracle)."""
    _, ref = reference("living_room", None)
    prof = analyze_reference(ref, SR, use_cache=False)
    click = np.zeros(3 * SR, np.float32)
    click[0] = 1.0
    st = Stylizer(profile=prof, ambience=False)
    h = st.process(click, SR).astype(np.float64)
    assert st.last_report["eq_applied"] and st.last_report["eq_db"] == [0.0] * 7
    np.testing.assert_array_equal(h, Stylizer(profile=prof, ambience=False, eq=False)
                                  .process(click, SR))
    rt = np.array(st.last_report["rt60_bands_s"])
    tail = synthetic_ir(rt, np.array(OCTAVE_CENTERS_HZ), SR, drr_db=0.0, seed=2)[0, 1:]
    spec = np.abs(np.fft.rfft(tail.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(tail.size, 1 / SR)
    energy = np.array([spec[(f > c / 1.19) & (f < c * 1.19)].mean() for c in OCTAVE_CENTERS_HZ])
    level = 10 * np.log10(energy / rt)  # the diffuse field: band energy / RT60 the same everywhere
    print("RT60", rt, "tail energy / RT60 (dB)", np.round(level - level.mean(), 2))
    assert np.ptp(level) < 2.0


def test_octave_t30_reads_its_own_band():
    """A response whose 88-250 Hz part decays in 4 s and 400-630 Hz part in 1 s: the 500 Hz
    octave's T30 is the 1 s decay (a 3rd-order Butterworth octave filter passed the 250 Hz part
    20 dB down, which carried the T30 below -20 dB and read 1.37 s)."""
    n = 5 * SR
    f = np.fft.rfftfreq(n, 1 / SR)
    spec = np.fft.rfft(np.random.default_rng(0).standard_normal(n))
    t = np.arange(n) / SR
    low = np.fft.irfft(spec * ((f >= 88) & (f <= 250)), n) * 10 ** (-3 * t / 4.0)
    mid = np.fft.irfft(spec * ((f >= 400) & (f <= 630)), n) * 10 ** (-3 * t / 1.0)
    got = schroeder_rt60(low + mid, SR, centers_hz=np.array([500.0]), db_range=(-5.0, -35.0))
    assert got[0] == pytest.approx(1.0, rel=0.05)


def test_synthetic_response_keeps_each_octave_its_own_decay():
    """A room whose 500 Hz band decays in 1.6 s and 1 kHz band in 0.8 s: the built response's
    1 kHz octave measures within 25 % of 0.8 s (crossovers from centre to centre and 3rd-order
    octave filters put the slow 500 Hz decay into the 1 kHz octave's T30: it read 1.15 s; a
    neighbour three times slower still carries it, 0.8 s reading 1.4 s next to 2.2 s)."""
    rt = np.array([1.9, 1.75, 1.6, 0.8, 0.6, 0.5, 0.4])
    h = synthetic_ir(rt, np.array(OCTAVE_CENTERS_HZ), SR, drr_db=-6.0, seed=3)[0]
    got = schroeder_rt60(h, SR, centers_hz=np.array(OCTAVE_CENTERS_HZ), db_range=(-5.0, -35.0))
    print(np.round(got, 3))
    np.testing.assert_allclose(got[2:], rt[2:], rtol=0.25)


def test_blind_estimate_keeps_a_steep_trend_across_bands():
    """A room whose decays fall from 3 s at 125 Hz to 0.4 s at 8 kHz keeps that trend (within
    25 % in every band from 250 Hz up): the strong cross-band fit alone flattened it (250 Hz
    read 1.5 s, 35 % short)."""
    rt = np.array([3.0, 2.2, 1.3, 0.8, 0.6, 0.5, 0.4])
    h = synthetic_ir(rt, np.array(OCTAVE_CENTERS_HZ), SR, drr_db=0.0, seed=4)[0]
    truth = schroeder_rt60(h, SR, centers_hz=np.array(OCTAVE_CENTERS_HZ), db_range=(-5.0, -35.0))
    dry = speech_like(10.0, SR, seed=9).astype(np.float64)
    est = estimate_reverb(fftconvolve(dry, h)[: dry.size], SR)
    print("truth", np.round(truth, 2), "raw", np.round(est.raw_rt60_s, 2), "final", np.round(est.rt60_s, 2))
    np.testing.assert_allclose(est.rt60_s[1:], truth[1:], rtol=0.25)


def test_decays_run_through_the_late_tails_fluctuation():
    """A carpeted 12 x 9 x 4.5 m room (T30 2.45 / 0.71 / 0.67 s at 500 Hz / 1 / 2 kHz: long
    low bands and a steep fall, whose 500 Hz decay is curved as in the tuning rooms' u_hall,
    where the late tail's envelope rises 4-8 dB within 0.1 s) heard through speech-like
    bursts: a decay that ended where the envelope rose 3 fluctuation std's above its running
    minimum stopped on the fast early part and the 500 Hz-2 kHz figure read 32 % short; with
    6 it runs on into the slower late decay (-10 %)."""
    surfaces = dict.fromkeys(("east", "west", "north", "south", "floor", "ceiling"),
                             "carpet_6mm_closed_cell_foam")
    h = shoebox_response((12.0, 9.0, 4.5), surfaces, (3.0, 2.5, 1.5), (8.5, 6.0, 1.4), SR,
                         reach=1.2, seed=1)
    dry = speech_like(8.0, SR, seed=2).astype(np.float64)
    est = estimate_reverb(fftconvolve(dry, h)[: dry.size], SR)
    print("truth", round(t30(h), 2), "blind", np.round(est.rt60_s, 2))
    assert est.broadband_rt60_s == pytest.approx(t30(h), rel=0.15)
