"""The Stylizer effect: known-answer acoustics, spectrum, ambience, controls, reuse, safety."""

from __future__ import annotations

import blendfx
import numpy as np
import pytest
from blendfx import ParameterError
from blendfx.effects import Stylizer
from blendfx.effects.stylizer.ambience import repetition_peak
from blendfx.effects.stylizer.probe_signals import (
    direct_to_reverberant_db,
    exponential_ir,
    speech_like,
)
from blendfx.effects.stylizer.reference_profile import ReferenceProfile, analyze_reference
from blendfx.effects.stylizer.reverb_analysis import (
    diffuse_drr_floor_db,
    estimate_reverb,
    octave_centers,
    schroeder_rt60,
)
from blendfx.effects.stylizer.spectral_match import ltas_distance_db
from blendfx.effects.stylizer.stylizer import early_split
from scipy.signal import fftconvolve

from ...conftest import shared

SR = 44100
MID = (octave_centers(SR) >= 500) & (octave_centers(SR) <= 4000)


def room_reference(rt60: float, seconds: float = 6.0, drr_db: float = 0.0) -> np.ndarray:
    """Dry speech-like material in the textbook room of ``rt60`` s over a quiet steady bed."""
    dry = speech_like(seconds, SR, seed=1)
    wet = fftconvolve(dry, exponential_ir(rt60, SR, drr_db, seed=7))[: dry.size]
    return (wet + 1e-3 * np.random.default_rng(3).standard_normal(wet.size)).astype(np.float32)


def esc(cls: str, name: str) -> np.ndarray:
    audio, sr = blendfx.read_audio(shared("noise", "esc10", cls, name), mono=True)
    assert sr == SR
    return audio


@pytest.mark.parametrize("rt60", [0.3, 0.6, 1.0, 2.0])
def test_output_rt60_matches_the_reference(rt60):
    """A click through the stylizer is the room it built: its mean T20 over 500 Hz-4 kHz is
    within 8 % of the reference room's RT60 and each of those bands within 12 % (each band keeps
    its own blind estimate unless it lies a factor 2 from its neighbours: real rooms' trends
    across bands stay, a flat room's per-band scatter shows), and a blind estimate on stylized
    speech within 12 % (20 % in the 2 s room, where 6 s of speech leaves one to three free
    decays per band and one short decay at 1 kHz is no longer averaged away with its
    neighbours). It was 10 % while decays ended at a rise of three fluctuation std's; with six
    (real rooms' late tails fluctuate more than a textbook one) the 0.6 s room reads 11.5 %
    long, the others +4.4, +1.0 and -3.8 % (0.3, 1, 2 s)."""
    ref = room_reference(rt60)
    st = Stylizer(eq=False, ambience=False)
    click = np.zeros(int((1.3 * rt60 + 0.3) * SR), dtype=np.float32)
    click[0] = 0.5
    response = st.process(click, SR, sidechain=ref)
    measured = schroeder_rt60(response, SR)
    print(rt60, "T20 per band", np.round(measured, 3), "reference estimate",
          np.round(st.last_profile.reverb.rt60_s, 3))
    assert float(np.mean(measured[MID])) == pytest.approx(rt60, rel=0.08)
    np.testing.assert_allclose(measured[MID], rt60, rtol=0.12)
    assert st.last_report["acoustics_applied"]
    stylized = st.process(speech_like(6.0, SR, seed=5), SR, sidechain=ref)
    assert estimate_reverb(stylized, SR).broadband_rt60_s == pytest.approx(
        rt60, rel=0.12 if rt60 <= 1.0 else 0.2)


@pytest.mark.parametrize("reference", ["room", "rain", "chainsaw", "clock_tick"])
def test_reference_eq_moves_the_spectrum_to_the_reference(music_clip, reference):
    """``eq_target="reference"`` matches the reference's whole long-term spectrum (its source's
    timbre included): the output's spectrum moves at least 1 dB towards the reference's."""
    music, sr = music_clip
    ref = {"room": lambda: room_reference(0.8),
           "rain": lambda: esc("rain", "1-17367-A.ogg"),
           "chainsaw": lambda: esc("chainsaw", "1-116765-A.ogg"),
           "clock_tick": lambda: esc("clock_tick", "1-21934-A.ogg")}[reference]()
    out = Stylizer(eq_target="reference").process(music, sr, sidechain=ref)
    before, after = ltas_distance_db(music, ref, sr), ltas_distance_db(out, ref, sr)
    print(f"{reference}: LTAS distance to the reference {before:.2f} dB -> {after:.2f} dB")
    assert after < before - 1.0


def test_long_ambience_from_a_short_reference_does_not_loop():
    rain = esc("rain", "1-17367-A.ogg")  # 5 s
    silence = np.zeros((2, 60 * SR), dtype=np.float32)
    out = Stylizer(acoustics=False, eq=False).process(silence, SR, sidechain=rain)
    peak, lag = repetition_peak(out, SR)
    baseline = Stylizer(mode="separate_remix").process(silence, SR, sidechain=rain)
    loop_peak, loop_lag = repetition_peak(baseline, SR)
    print(f"stylize: {peak:.3f} at {lag:.2f} s; separate_remix loop: {loop_peak:.3f} at {loop_lag:.2f} s")
    assert peak < 0.25 and loop_peak > 0.8


def test_silence_in_gives_the_ambience_alone():
    rain = esc("rain", "1-17367-A.ogg")
    st = Stylizer()
    out = st.process(np.zeros((2, 3 * SR), dtype=np.float32), SR, sidechain=rain)
    assert np.isfinite(out).all() and np.abs(out).max() <= 10 ** (-1 / 20) + 1e-6
    level = 10 * np.log10(np.mean(out.astype(np.float64) ** 2))
    assert level == pytest.approx(st.last_profile.ambience.level_dbfs, abs=1.5)
    report = st.last_report
    assert report["ambience_applied"] and not report["eq_applied"]
    assert "silent stem" in report["ambience_level_rule"]
    none = Stylizer(ambience=False).process(np.zeros(SR, dtype=np.float32), SR, sidechain=rain)
    assert not none.any()


def test_amount_zero_is_a_bypass_and_amount_scales():
    ref = room_reference(1.0)
    # quiet enough that the peak ceiling (a whole-signal gain) stays out of it
    x = speech_like(3.0, SR, seed=2, peak=0.1)
    np.testing.assert_array_equal(Stylizer(amount=0.0).process(x, SR, sidechain=ref), x)
    full = Stylizer(eq=False, ambience=False).process(x, SR, sidechain=ref) - x
    half = Stylizer(eq=False, ambience=False, amount=0.5).process(x, SR, sidechain=ref) - x
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-5)  # the tail scales, the direct stays


def test_ambience_levels_fixed_and_matched():
    rng = np.random.default_rng(0)
    bg = (0.01 * rng.standard_normal(5 * SR)).astype(np.float32)
    fg = np.zeros_like(bg)
    for t in (0.5, 1.7, 3.2):
        i = int(t * SR)
        fg[i: i + 8000] = 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / SR)
    ref = bg + fg
    stem = speech_like(4.0, SR, seed=3)
    st = Stylizer(mode="separate_remix", ambience_level_db=-40.0)
    added = st.process(stem, SR, sidechain=ref) - stem
    assert 10 * np.log10(np.mean(added.astype(np.float64) ** 2)) == pytest.approx(-40.0, abs=0.3)
    st = Stylizer(mode="separate_remix")  # match the reference's signal-to-ambience ratio
    added = st.process(stem, SR, sidechain=ref) - stem
    sar = 10 * np.log10(np.mean(stem.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
    true_sar = 10 * np.log10(np.mean(fg.astype(np.float64) ** 2) / np.mean(bg.astype(np.float64) ** 2))
    assert sar == pytest.approx(true_sar, abs=1.5)


def test_separate_remix_leaves_the_stem_dry():
    ref = room_reference(1.5)
    stem = speech_like(3.0, SR, seed=4)
    out = Stylizer(mode="separate_remix", ambience=False).process(stem, SR, sidechain=ref)
    np.testing.assert_array_equal(out, stem)


def test_profile_is_cached_and_reusable():
    ref = room_reference(0.6, seconds=4.0)
    p1 = Stylizer.analyze(ref, SR)
    assert isinstance(p1, ReferenceProfile) and Stylizer.analyze(ref.copy(), SR) is p1
    summary = p1.summary()
    assert summary["rt60_broadband_s"] == pytest.approx(0.6, rel=0.08)
    stem = speech_like(3.0, SR, seed=6)
    keyed = Stylizer(seed=3).process(stem, SR, sidechain=ref)
    fixed = Stylizer(profile=p1, seed=3)
    np.testing.assert_array_equal(fixed.process(stem, SR), keyed)  # no sidechain needed
    chain = blendfx.Chain([fixed])
    np.testing.assert_array_equal(chain(stem, SR), keyed)  # the chain's own key is ignored
    st = Stylizer()
    assert st.set_reference(ref, SR) is p1
    st.set_reference(None)
    with pytest.raises(ParameterError, match="sidechain"):
        st.process(stem, SR)
    with pytest.raises(ParameterError, match="sample rate"):
        st.set_reference(ref)


def test_profile_at_another_rate():
    ref = room_reference(0.6, seconds=4.0)
    p = analyze_reference(ref, SR)
    st = Stylizer(profile=p)
    out = st.process(speech_like(2.0, 22050, seed=1), 22050)
    assert out.shape == (2 * 22050,) and np.isfinite(out).all()
    assert st.last_profile.ambience.sample_rate == 22050


def test_short_references():
    ref = room_reference(0.6)[: int(0.3 * SR)]
    st = Stylizer()
    out = st.process(speech_like(2.0, SR, seed=1), SR, sidechain=ref)
    assert np.isfinite(out).all()
    assert not st.last_report["acoustics_applied"]
    assert "no RT60" in st.last_report["acoustics_note"]
    with pytest.raises(ParameterError, match="0.050 s long"):
        st.process(np.zeros(SR, np.float32), SR, sidechain=ref[: int(0.05 * SR)])


def test_nothing_clips():
    ref = esc("chainsaw", "1-116765-A.ogg") * 3.0  # a very loud reference
    stem = np.clip(speech_like(3.0, SR, seed=2) * 4.0, -0.99, 0.99)
    st = Stylizer(amount=1.0, eq_limit_db=24.0, ambience_level_db=-6.0)
    out = st.process(stem, SR, sidechain=ref)
    assert np.abs(out).max() <= 0.99 + 1e-6
    assert st.last_report["safety_gain_db"] < 0


def test_tail_extends_the_output():
    ref = room_reference(1.0)
    x = np.zeros(SR // 2, dtype=np.float32)
    x[100] = 0.5
    st = Stylizer(eq=False, ambience=False, tail=True)
    out = st.process(x, SR, sidechain=ref)
    assert out.size == x.size + st.last_report["ir_samples"] - 1
    assert np.abs(out[-SR // 10:]).max() < 1e-3 * np.abs(out).max() * 10


def test_preset_round_trip(tmp_path):
    st = Stylizer(mode="separate_remix", amount=0.7, ambience_level_db=-35.0, seed=5)
    path = tmp_path / "stylizer.toml"
    blendfx.save_preset(st, path)
    assert blendfx.load_preset(path) == st


def test_response_splits_the_blind_direct_sound_into_direct_and_early_reflections():
    """The blind DRR's "direct sound" spans the first 25 ms (its envelopes are that coarse): the
    applied response keeps that ratio (energy in the first 25 ms over the rest) and puts its
    DRR proper (+-2.5 ms around the direct sound) below it (by an offset set on the tuning
    rooms), the difference carried by early reflections."""
    drr, early = early_split(3.0)
    x, y = 10 ** 0.3, 10 ** (drr / 10)
    late = 1 / (y * (1 + 10 ** (early / 10)))  # D = 1: E + L = 1 / y, E / L = 10^(early / 10)
    assert (1 + late * 10 ** (early / 10)) / late == pytest.approx(x, rel=1e-9)
    st = Stylizer(eq=False, ambience=False)
    click = np.zeros(int(1.6 * SR), dtype=np.float32)
    click[0] = 1.0
    response = st.process(click, SR, sidechain=room_reference(1.0)).astype(np.float64)
    blind = max(st.last_profile.reverb.drr_db, st.last_report["drr_floor_db"])
    assert direct_to_reverberant_db(response, SR) == pytest.approx(early_split(blind)[0], abs=0.3)
    assert early_split(blind)[0] < blind - 3.0
    k = int(round(0.025 * SR))
    coarse = 10 * np.log10(np.sum(response[:k] ** 2) / np.sum(response[k:] ** 2))
    assert coarse == pytest.approx(blind, abs=1.0)


def test_blind_drr_below_the_diffuse_early_energy_is_raised_to_it():
    """A response for a real room holds in its first 25 ms at least what a diffuse exponential
    tail of its RT60 puts there (plus the early reflections' excess): a blind DRR below that
    (a source's own decay read as reverberation) is raised to it; one above is kept."""
    t = np.arange(1, int(3.0 * SR)) / SR
    for rt in (0.5, 1.0, 2.0):
        energy = 10.0 ** (-6.0 * t / rt)
        early = energy[(t > 0.0025) & (t <= 0.025)].sum() / energy[t > 0.025].sum()
        floor = diffuse_drr_floor_db(rt)
        assert floor - 4.5 == pytest.approx(10 * np.log10(early), abs=0.05)
    assert diffuse_drr_floor_db(0.5) > diffuse_drr_floor_db(2.0)
    assert np.isnan(diffuse_drr_floor_db(float("nan")))
    click = np.zeros(int(1.6 * SR), dtype=np.float32)
    click[0] = 1.0
    st = Stylizer(eq=False, ambience=False)
    response = st.process(click, SR, sidechain=room_reference(1.0, drr_db=-12.0)).astype(np.float64)
    blind = st.last_profile.reverb.drr_db
    floor = st.last_report["drr_floor_db"]
    assert blind < floor - 3.0  # the textbook room's own (low) DRR, as measured
    assert st.last_report["drr_applied_db"] == pytest.approx(early_split(floor)[0], abs=0.01)
    assert direct_to_reverberant_db(response, SR) > early_split(blind)[0] + 3.0
    st = Stylizer(eq=False, ambience=False)
    st.process(click, SR, sidechain=room_reference(1.0, drr_db=9.0))
    assert st.last_profile.reverb.drr_db > st.last_report["drr_floor_db"]
    assert st.last_report["drr_applied_db"] == pytest.approx(
        early_split(st.last_profile.reverb.drr_db)[0], abs=0.01)


def _partial_gains_db(st: Stylizer, profile: ReferenceProfile) -> np.ndarray:
    """Output over input power (dB) at each of 150 steady partials (150 Hz-6 kHz) of a stem,
    measured over its last 3 s, within +-1 Hz of each partial (the crossfade's sidebands)."""
    seconds, span = 5.0, 3.0
    t = np.arange(int(seconds * SR)) / SR
    freqs = np.unique(np.round(np.geomspace(150.0, 6000.0, 150) * span) / span)
    phases = np.random.default_rng(4).uniform(0, 2 * np.pi, freqs.size)
    stem = (0.005 * np.cos(2 * np.pi * freqs[:, None] * t + phases[:, None]).sum(axis=0))
    out = np.asarray(st.process(stem.astype(np.float32), SR), dtype=np.float64).reshape(-1)
    tail = int(span * SR)
    spec_in = np.abs(np.fft.rfft(stem[-tail:])) ** 2
    spec_out = np.abs(np.fft.rfft(out[-tail:])) ** 2
    bins = np.round(freqs * span).astype(int)
    near = bins[:, None] + np.arange(-4, 5)
    return 10 * np.log10(spec_out[near].sum(axis=1) / spec_in[near].sum(axis=1))


def test_tail_draws_crossfade_evens_out_the_partials(monkeypatch):
    """One draw of a noise tail colours each steady partial of a stem by its own random
    ``|H(f)|^2`` (peaks and dips no blind estimate can match to the real room's); crossfading the
    stem between four independent draws averages them: the partials' gains scatter less (std
    across 150 partials in a very wet 1.5 s room, seeds 0-3: 4.9-5.6 dB with one draw, 2.1-2.4
    with four), and a click still hears draw 0 alone (the response the report
    measures)."""
    profile = analyze_reference(room_reference(1.5, drr_db=-12.0), SR)
    click = np.zeros(int(2.0 * SR), dtype=np.float32)
    click[0] = 1.0
    spread, responses = {}, {}
    for k in (1, 4):
        monkeypatch.setattr("blendfx.effects.stylizer.stylizer._TAIL_VARIANTS", k)
        st = Stylizer(profile=profile, ambience=False)
        spread[k] = float(np.std(_partial_gains_db(st, profile)))
        responses[k] = st.process(click, SR)
    assert spread[4] < 0.6 * spread[1]
    np.testing.assert_allclose(responses[4], responses[1], atol=1e-6)


def test_tail_draws_keep_the_tail_level_steady(monkeypatch):
    """The crossfade's weights are power-complementary (their squares sum to 1 at every
    instant): white noise through four draws has the same wet power as through one, frame by
    frame (0.25 s frames after the first 1.5 s, within 0.5 dB of one draw's), with no pumping
    at the crossfade's rate (cos^2 weights, which sum to 1 instead, would dip the tail by up to
    3 dB twice a period)."""
    profile = analyze_reference(room_reference(1.0, drr_db=-12.0), SR)
    noise = (0.05 * np.random.default_rng(2).standard_normal(int(6.0 * SR))).astype(np.float32)
    frame = int(0.25 * SR)
    levels = {}
    for k in (1, 4):
        monkeypatch.setattr("blendfx.effects.stylizer.stylizer._TAIL_VARIANTS", k)
        wet = Stylizer(profile=profile, ambience=False).process(noise, SR).astype(np.float64)
        wet = (wet - noise)[int(1.5 * SR):]
        wet = wet[: wet.size // frame * frame].reshape(-1, frame)
        levels[k] = 10 * np.log10((wet ** 2).mean(axis=1))
    assert np.max(np.abs(levels[4] - levels[1])) < 0.5
