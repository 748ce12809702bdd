"""Blend (the whole BNMusic chain) and MusicTrack (the real-music baseline) on real clips."""

from __future__ import annotations

import blendfx
import numpy as np
import pedalboard
import pytest
from blendfx import AudioFileError, ParameterError
from blendfx.dsp.loudness import integrated_lufs, true_peak_dbtp
from blendfx.effect import EFFECT_REGISTRY, Effect
from blendfx.effects import Blend, MusicTrack
from blendfx.effects.blend.metrics import blend_report, cost_to_mask_lu
from blendfx.params import StrParam

from ...conftest import shared

MUSIC = "vibe_ace.ogg"


@pytest.fixture(scope="module")
def tick():
    return blendfx.read_audio(shared("noise", "esc10", "clock_tick", "1-21934-A.ogg"))


@pytest.fixture(scope="module")
def track_path():
    return str(shared("music", MUSIC))


@pytest.fixture(scope="module")
def track(track_path):
    """A factory of MusicTracks on 12 s of the shared track (decoded and analysed quickly)."""
    audio, sr = blendfx.read_audio(track_path, duration=12.0)

    def make(**params):
        return MusicTrack.from_array(audio, sr, **params)

    return make


def test_blend_mixes_noise_and_amplified_music(tick, track):
    noise, sr = tick
    blend = Blend(generator=track())
    out = blend(noise, sr)
    assert out.shape == noise.shape
    mix = noise + blend.last_music
    trim = float(np.sum(out * mix) / np.sum(mix * mix))  # a static trim if the sum went over
    assert 0.5 < trim <= 1.0
    np.testing.assert_allclose(out, trim * mix, atol=1e-6)
    frames = noise.shape[1] // 441
    assert blend.last_mask.shape == (512, frames)
    assert blend.last_mask.coverage == pytest.approx(0.15, abs=0.01)
    assert blend.last_gains_db.shape == (frames,)
    report = blend.last_report
    assert report["loudness_cost_lu"] > 0 and 0 <= report["unmasked_fraction"] <= 1
    assert report["mix_true_peak_dbtp"] <= -1.0 + 0.01


def test_unrelated_music_is_muted_unless_floored(track_path):
    """BNMusic's optimum mutes a music with too little energy in the noise's core."""
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "clock_tick", "1-21935-A.ogg"))
    muted = Blend(generator=MusicTrack(path=track_path), report=False)
    np.testing.assert_array_equal(muted(noise, sr), noise)
    assert np.all(muted.last_gains_db == -np.inf)
    floored = Blend(generator=MusicTrack(path=track_path), min_gain_db=-12.0, report=False)
    floored(noise, sr)
    assert np.all(floored.last_gains_db == pytest.approx(-12.0))


def test_music_output_wet_and_dry(tick, track):
    noise, sr = tick
    music_only = Blend(generator=track(), output="music", wet=0.5)
    out = music_only(noise, sr)
    np.testing.assert_allclose(out, 0.5 * music_only.last_music, atol=1e-6)
    dry = Blend(generator=track(), wet=0.0)
    np.testing.assert_array_equal(dry(noise, sr), noise)


def test_post_fx_runs_on_the_music(tick, track):
    noise, sr = tick
    plain = Blend(generator=track(), report=False)
    plain(noise, sr)
    quieter = Blend(generator=track(), fx=pedalboard.Gain(gain_db=-6.0), report=False)
    quieter(noise, sr)
    np.testing.assert_allclose(quieter.last_music, plain.last_music * 10 ** (-6 / 20), atol=1e-5)
    chained = Blend(generator=track(),
                    fx=blendfx.Chain([pedalboard.HighpassFilter(200.0), pedalboard.Reverb()]))
    assert np.isfinite(chained(noise, sr)).all()


def test_frame_mode_and_nothing_clips(tick, track):
    noise, sr = tick
    hot = noise * np.float32(0.95 / np.abs(noise).max())  # the noise alone peaks near 0 dBFS
    blend = Blend(generator=track(), amp_mode="frame", ceiling_dbtp=-1.0)
    out = blend(hot, sr)
    assert true_peak_dbtp(out) <= -1.0 + 1e-3
    assert blend.last_gains_db.std() > 0  # the gain moves with the ticks
    band = Blend(generator=track(), amp_mode="band", ceiling_dbtp=-1.0)
    out = band(hot, sr)
    assert true_peak_dbtp(out) <= -1.0 + 1e-3
    assert np.isfinite(band.last_report["unmasked_fraction"])


def test_best_alignment_beats_the_start(tick, track):
    noise, sr = tick
    costs = {}
    for align in ("best", "start"):
        music = track(align=align)(noise, sr)
        costs[align] = cost_to_mask_lu(noise, music, sr)
    assert costs["best"] < costs["start"]


def test_music_track_lengths_channels_and_offsets(track_path):
    rng = np.random.default_rng(0)
    stereo_noise = rng.standard_normal((2, 44100)).astype(np.float32) * 0.1
    out = MusicTrack(path=track_path, align="start", start_s=2.0)(stereo_noise, 44100)
    music, _ = blendfx.read_audio(track_path, offset=2.0, duration=1.0)
    assert out.shape == (2, 44100)
    np.testing.assert_allclose(out, music[:, :44100], atol=1e-6)
    # a short track loops; a mono noise gets a mono mix of it; other rates are resampled
    short = MusicTrack.from_array(music[:, :4410], 44100, align="start")
    looped = short(stereo_noise[0], 44100)
    assert looped.shape == (44100,)
    np.testing.assert_allclose(looped[4410:8820], looped[:4410], atol=1e-6)
    assert MusicTrack(path=track_path, align="random")(stereo_noise, 22050).shape == (2, 44100)
    random_a = MusicTrack(path=track_path, align="random", seed=1)
    random_a(stereo_noise, 44100)
    random_b = MusicTrack(path=track_path, align="random", seed=2)
    random_b(stereo_noise, 44100)
    assert random_a.offset_s != random_b.offset_s


def test_clear_errors(tick, tmp_path):
    noise, sr = tick
    with pytest.raises(AudioFileError, match="not found"):
        Blend(generator=MusicTrack(path=str(tmp_path / "missing.wav")))(noise, sr)
    with pytest.raises(ParameterError, match="path is empty"):
        MusicTrack()(noise, sr)
    if "Composer" not in EFFECT_REGISTRY:
        with pytest.raises(ParameterError, match="Composer"):
            Blend()(noise, sr)


def test_default_generator_is_the_registered_composer(tick):
    """With a Composer registered, Blend() uses it and passes its prompt and seed."""
    noise, sr = tick
    real = EFFECT_REGISTRY.get("Composer")
    made = []

    class FakeComposer(Effect):
        registered = False
        supports_streaming = False
        prompt = StrParam("lofi")

        def _process(self, audio, sample_rate, sidechain):
            made.append((self.prompt, self.seed))
            t = np.arange(audio.shape[1]) / sample_rate
            return np.stack([0.1 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)

    EFFECT_REGISTRY["Composer"] = FakeComposer
    try:
        blend = Blend(prompt="jazz", seed=7, output="music")
        out = blend(noise, sr)
    finally:
        if real is None:
            EFFECT_REGISTRY.pop("Composer")
        else:
            EFFECT_REGISTRY["Composer"] = real
    assert made == [("jazz", 7)]
    assert blend.last_music.shape == (2, noise.shape[1]) and out.shape == noise.shape


def test_preset_round_trip(tmp_path, track_path):
    blend = Blend(generator=MusicTrack(path=track_path, align="random"), amp_mode="frame", wet=0.7,
                  fx=pedalboard.Reverb(room_size=0.3))
    path = tmp_path / "blend.toml"
    blendfx.save_preset(blend, path)
    loaded = blendfx.load_preset(path)
    assert isinstance(loaded, Blend) and loaded.amp_mode == "frame" and loaded.wet == 0.7
    assert isinstance(loaded.generator, MusicTrack) and loaded.generator.path == track_path
    assert loaded.fx.room_size == pytest.approx(0.3)


# -- a sound designer's knobs: masking goal, loudness budget, noise level ------------------------

@pytest.fixture(scope="module")
def rain():
    """A rain clip 40 dB down: real music needs 30-40 dB more gain to mask rain, which leaves
    room under the true-peak ceiling only when the noise is quiet (the measures are relative)."""
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "rain", "1-17367-A.ogg"))
    return noise * np.float32(0.01), sr


@pytest.mark.parametrize("goal", [0.3, 0.5])
def test_masking_goal_masks_that_share_as_quietly_as_possible(rain, track, goal):
    noise, sr = rain
    blend = Blend(generator=track(), mask_goal=goal, min_gain_db=-30.0)
    blend(noise, sr)
    report = blend.last_report
    assert report["mask_goal"] == goal and report["goal_met"] is True
    assert report["masked_share"] == pytest.approx(goal, abs=0.03)  # no more than needed
    assert report["masked_share"] == pytest.approx(1.0 - report["unmasked_fraction"])
    # a louder music masks more, and a quieter one less than the goal
    quieter = blend_report(noise, blend.last_music * np.float32(0.7), sr, mask=blend.last_mask)
    assert quieter["masked_share"] < goal


def test_loudness_budget_caps_the_mix(rain, track):
    noise, sr = rain
    free = Blend(generator=track(), mask_goal=0.5)
    free(noise, sr)
    assert free.last_report["loudness_increase_lu"] > 4.0
    capped = Blend(generator=track(), mask_goal=0.5, loudness_budget_lu=3.0)
    capped(noise, sr)
    report = capped.last_report
    assert report["loudness_increase_lu"] == pytest.approx(3.0, abs=0.1)
    assert report["within_budget"] is True and report["goal_met"] is False
    assert report["masked_share"] < free.last_report["masked_share"]
    assert report["goal_gain_db"] < free.last_report["goal_gain_db"]


def test_report_has_masked_share_loudness_increase_and_bark_nmr(tick, track):
    noise, sr = tick
    blend = Blend(generator=track())
    blend(noise, sr)
    report = blend.last_report
    assert report["loudness_increase_lu"] == pytest.approx(report["loudness_cost_lu"])
    assert 0.0 <= report["masked_share"] <= 1.0
    assert np.isfinite(report["nmr_bark_db"])
    assert report["mask_goal"] is None and report["goal_met"] is None
    assert report["goal_gain_db"] == 0.0 and report["noise_gain_db"] == 0.0


def test_noise_lufs_normalizes_the_noise_first(tick, track):
    noise, sr = tick
    quiet = noise * np.float32(0.1)
    blend = Blend(generator=track(), noise_lufs=-18.0, output="mix", wet=0.0)
    out = blend(quiet, sr)
    assert integrated_lufs(out, sr) == pytest.approx(-18.0, abs=0.2)
    assert blend.last_report["noise_gain_db"] == pytest.approx(-18.0 - integrated_lufs(quiet, sr), abs=1e-3)
    off = Blend(generator=track(), output="mix", wet=0.0)
    assert integrated_lufs(off(quiet, sr), sr) == pytest.approx(integrated_lufs(quiet, sr), abs=0.05)


def test_masking_goal_on_a_loud_noise_trims_the_mix_not_the_goal(track):
    # a full-level rain needs the music above the ceiling: the mix is trimmed as a whole
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "rain", "1-17367-A.ogg"))
    blend = Blend(generator=track(), mask_goal=0.5, min_gain_db=-30.0)
    out = blend(noise, sr)
    report = blend.last_report
    assert report["goal_met"] is True and report["masked_share"] == pytest.approx(0.5, abs=0.03)
    assert true_peak_dbtp(out) <= -1.0 + 0.01
    stem = Blend(generator=track(), mask_goal=0.5, min_gain_db=-30.0, output="music")
    stem(noise, sr)
    assert true_peak_dbtp(stem.last_music) <= -1.0 + 0.01
    assert stem.last_report["goal_met"] is False  # the stem kept its ceiling and says so
    assert stem.last_report["limited_by"] == "ceiling" and stem.last_report["mix_trim_db"] == 0.0


def test_ceiling_on_mix_keeps_the_goal_in_a_stem_and_reports_the_trim(track):
    # the stem a session mixes: made at the level the goal needs; the trim is the mixer's
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "rain", "1-17367-A.ogg"))
    stem = Blend(generator=track(), mask_goal=0.5, min_gain_db=-30.0, output="music",
                 ceiling_on="mix")
    music = stem(noise, sr)
    report = stem.last_report
    assert report["goal_met"] is True and report["limited_by"] is None
    assert report["masked_share"] == pytest.approx(0.5, abs=0.03)
    assert true_peak_dbtp(music) > -1.0  # no ceiling of its own: the mixer trims noise + music
    trim = np.float32(10.0 ** (report["mix_trim_db"] / 20.0))
    assert report["mix_trim_db"] < -1.0
    mixed = (noise + music) * trim
    assert true_peak_dbtp(mixed) <= -1.0 + 0.01
    # lowering both together keeps what the report measured
    again = blend_report(noise * trim, music * trim, sr, mask=stem.last_mask)
    assert again["masked_share"] == pytest.approx(report["masked_share"], abs=1e-3)
    assert again["loudness_increase_lu"] == pytest.approx(report["loudness_increase_lu"], abs=0.01)


def test_a_mix_output_is_trimmed_whole_not_held_back_by_the_musics_ceiling(track):
    # a loud chainsaw (-1.05 dBTP): holding the music alone under -1 dBTP would leave it no
    # room to mask; the mix is what plays, so noise and music are lowered together instead
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "chainsaw", "1-116765-A.ogg"))
    blend = Blend(generator=track(), min_gain_db=-30.0, output="mix")
    mix = blend(noise, sr)
    report = blend.last_report
    assert report["limited_by"] is None and report["mix_trim_db"] < -3.0
    assert report["masked_share"] > 0.3
    assert true_peak_dbtp(mix) <= -1.0 + 0.01
    # the same music as a stem for a mixer that trims the mix: the same blend, by the numbers
    stem = Blend(generator=track(), min_gain_db=-30.0, output="music", ceiling_on="mix")
    stem(noise, sr)
    assert stem.last_report["masked_share"] == pytest.approx(report["masked_share"], abs=1e-3)


def test_noise_lufs_with_a_music_stem_fits_the_noise_as_it_is(tick, track):
    noise, sr = tick
    quiet = noise * np.float32(0.1)
    plain = Blend(generator=track(), mask_goal=0.5, output="music", ceiling_on="mix")
    normed = Blend(generator=track(), mask_goal=0.5, output="music", ceiling_on="mix",
                   noise_lufs=-18.0)
    a, b = plain(quiet, sr), normed(quiet, sr)
    assert normed.last_report["noise_gain_db"] > 10.0
    # the stem plays beside the un-normalized noise track: same level against it either way
    assert integrated_lufs(b, sr) == pytest.approx(integrated_lufs(a, sr), abs=0.5)
