"""AdaptiveAmplifier and LoudnessNormalize on real noise and music."""

from __future__ import annotations

import warnings

import blendfx
import numpy as np
import pytest
from blendfx import ParameterError
from blendfx.buffers import fit_length
from blendfx.dsp.loudness import integrated_lufs
from blendfx.effects import AdaptiveAmplifier, LoudnessNormalize
from blendfx.effects.amplifier.gain_solver import bnmusic_objective
from scipy.signal import resample_poly

from ...conftest import shared


def _true_peak_db(x):
    """Independent reference: scipy's 4x polyphase resampler."""
    return 20 * np.log10(np.abs(resample_poly(x, 4, 1, axis=-1)).max())


@pytest.fixture
def chainsaw(music_clip):
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "chainsaw", "1-19898-A.ogg"))
    return fit_length(noise, music_clip[0].shape[1]), sr


def test_silent_or_short_noise_is_a_clear_error(music_clip, chainsaw):
    """Issue 23: a silent or short key gave all-zero output and -inf gains, silently."""
    music, sr = music_clip
    noise, _ = chainsaw
    for mode in ("global", "frame", "band"):
        with pytest.raises(blendfx.ParameterError, match="digital silence"):
            AdaptiveAmplifier(mode=mode)(music, sr, sidechain=np.zeros_like(music))
        with pytest.raises(blendfx.ParameterError, match="at least as long"):
            AdaptiveAmplifier(mode=mode)(music, sr, sidechain=noise[:, : music.shape[1] // 2])
    quiet = noise * np.float32(10 ** (-120 / 20))  # very quiet, but not silence: adapted to
    amp = AdaptiveAmplifier()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        amp(music, sr, sidechain=quiet)
    assert np.isfinite(amp.gain_db)


def test_global_gain_is_the_exact_optimum(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    noise = noise * np.float32(0.05)  # a quiet noise: the optimum is far from the ceilings
    quiet = music * np.float32(0.5)
    amp = AdaptiveAmplifier()
    out = amp(quiet, sr, sidechain=noise)
    assert amp.gain_db == pytest.approx(amp.optimal_gain_db, abs=1e-9)
    assert amp.gains_db.shape == (music.shape[1] // 441,)
    np.testing.assert_allclose(out, quiet * np.float32(10 ** (amp.gain_db / 20)), rtol=1e-5, atol=1e-7)
    S, T, M, _ = amp.analyze(quiet, noise, sr)
    assert amp.objective == pytest.approx(bnmusic_objective(10 ** (amp.gain_db / 20), S, T, M, 0.14))
    for other in (0.5, 0.9, 1.1, 2.0):
        assert amp.objective <= bnmusic_objective(other * 10 ** (amp.gain_db / 20), S, T, M, 0.14)
    # the gain is relative: the same music 20 dB quieter gets 20 dB more gain
    before = amp.gain_db
    amp(quiet * np.float32(0.1), sr, sidechain=noise)
    assert amp.gain_db == pytest.approx(before + 20.0, abs=0.01)


def test_frame_gains_follow_a_noise_switching_on_and_off(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    gate = np.zeros(noise.shape[1], np.float32)
    second = int(sr)
    gate[second:2 * second] = 1.0  # on 1-2 s and 3-4 s
    gate[3 * second:4 * second] = 1.0
    amp = AdaptiveAmplifier(mode="frame", attack_ms=20, release_ms=100)
    amp(music * np.float32(0.5), sr, sidechain=noise * gate * np.float32(0.05))
    db = amp.gains_db
    frames = np.arange(db.size)
    on = ((frames > 115) & (frames < 190)) | ((frames > 315) & (frames < 390))
    off = ((frames > 250) & (frames < 290)) | (frames > 450) | (frames < 80)
    assert np.median(db[on]) > np.median(db[off]) + 20
    assert np.all(db[on] > -20) and np.all(db[off] < np.median(db[on]) - 10)
    # look-ahead attack: already up a few frames before the noise starts
    assert db[98] > db[60] + 10


@pytest.mark.parametrize("mode", ["global", "frame"])
def test_nothing_clips(mode, music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    hot = music * np.float32(0.98 / np.abs(music).max())  # peaks at -0.2 dBFS already
    amp = AdaptiveAmplifier(mode=mode, ceiling_dbtp=-1.0, max_gain_db=40.0)
    out = amp(hot, sr, sidechain=noise * np.float32(4.0))  # a loud noise wants a big gain
    assert _true_peak_db(out) <= -1.0 + 0.02
    assert amp.gain_db < amp.optimal_gain_db  # the ceiling held it back


def test_no_ceiling_keeps_the_optimum_for_a_caller_that_trims_the_mix(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    hot = music * np.float32(0.98 / np.abs(music).max())
    amp = AdaptiveAmplifier(ceiling_dbtp=None, max_gain_db=40.0)
    out = amp(hot, sr, sidechain=noise * np.float32(4.0))
    assert amp.gain_db == pytest.approx(min(amp.optimal_gain_db, 40.0), abs=1e-6)
    assert _true_peak_db(out) > 0.0  # past full scale, in float: the mix is trimmed later
    with pytest.raises(ParameterError, match="ceiling_dbtp"):
        AdaptiveAmplifier(ceiling_dbtp=3.0)


def test_max_gain_and_floor(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    amp = AdaptiveAmplifier(mode="frame", max_gain_db=3.0, min_gain_db=-12.0)
    amp(music * np.float32(0.1), sr, sidechain=noise * np.float32(0.1))
    assert np.all(amp.gains_db <= 3.0 + 1e-9) and np.all(amp.gains_db >= -12.0 - 1e-9)


def test_sidechain_required_and_lengths(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    with pytest.raises(blendfx.ParameterError, match="sidechain"):
        AdaptiveAmplifier()(music, sr)
    out = AdaptiveAmplifier()(music[:, :30000], sr, sidechain=noise)  # longer key: cropped
    assert out.shape == (2, 30000)


def test_loudness_normalize(chainsaw):
    noise, sr = chainsaw
    norm = LoudnessNormalize(target_lufs=-28.0)
    out = norm(noise * np.float32(0.1), sr)
    assert integrated_lufs(out, sr) == pytest.approx(-28.0, abs=0.05)
    assert _true_peak_db(out) <= -1.0 + 0.02
    loud = LoudnessNormalize(target_lufs=-3.0, ceiling_dbtp=-1.0)
    out = loud(noise, sr)
    assert _true_peak_db(out) <= -1.0 + 0.02 and loud.gain_db < -3.0 - integrated_lufs(noise, sr)
    silent = np.zeros((2, 1000), np.float32)
    assert not LoudnessNormalize()(silent, sr).any()


# -- "band" mode ---------------------------------------------------------------------------------
def _lowpassed(noise, sr, cutoff_hz):
    from scipy.signal import butter, sosfiltfilt

    sos = butter(8, cutoff_hz, fs=sr, output="sos")
    return sosfiltfilt(sos, noise, axis=-1).astype(np.float32)


def test_band_gains_are_each_bands_optimum_and_beat_one_gain(music_clip, chainsaw):
    from blendfx.effects.amplifier.band_eq import band_of_rows, bark_band_edges
    from blendfx.effects.amplifier.gain_solver import optimal_band_gains, optimal_gain

    music, sr = music_clip
    noise, _ = chainsaw
    quiet = music * np.float32(0.05)
    amp = AdaptiveAmplifier(mode="band", band_range_db=60.0, max_gain_db=60.0, ceiling_dbtp=0.0)
    amp(quiet, sr, sidechain=noise * np.float32(0.05))
    S, T, M, _ = amp.analyze(quiet, noise * np.float32(0.05), sr)
    rows = band_of_rows(bark_band_edges(8))
    wanted = optimal_band_gains(S, T, M, rows)
    for b in range(8):  # the objective restricted to the band, solved on its own
        assert wanted[b] == optimal_gain(S[rows == b], T[rows == b], M[rows == b])
    top = wanted.max()
    expected = 20 * np.log10(np.maximum(wanted, top * 10 ** (-60 / 20)))
    np.testing.assert_allclose(amp.band_gains_db, expected, atol=1e-6)  # no ceiling bound here
    # one gain per band can only do better than one gain for all (the global gain is a choice)
    per_band = bnmusic_objective(np.repeat(wanted, np.bincount(rows))[:, None], S, T, M)
    assert per_band <= bnmusic_objective(optimal_gain(S, T, M), S, T, M) * (1 + 1e-9)
    assert amp.band_edges_hz[0] == 0.0 and amp.band_edges_hz[-1] == pytest.approx(10000.0, abs=0.1)


def test_band_the_noise_lacks_gets_no_boost(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    low = _lowpassed(noise, sr, 300.0) * np.float32(0.05)  # a rumble: core below ~350 Hz
    amp = AdaptiveAmplifier(mode="band", band_range_db=12.0, max_gain_db=60.0, ceiling_dbtp=0.0)
    amp(music * np.float32(0.05), sr, sidechain=low)
    gains = amp.band_gains_db
    assert amp.band_edges_hz[2] > 500  # bands 2.. lie above the rumble
    # bands without core sit exactly band_range_db under the top band: the lowest gain there is
    np.testing.assert_allclose(gains[2:], gains.max() - 12.0, atol=1e-6)
    assert gains[:2].max() == gains.max() > gains[2:].max()
    assert gains[2:].max() <= amp.optimal_gain_db  # and no more than one gain for all would get


def test_band_gains_respect_the_ceilings_and_nothing_clips(music_clip, chainsaw):
    music, sr = music_clip
    noise, _ = chainsaw
    amp = AdaptiveAmplifier(mode="band", max_gain_db=3.0, min_gain_db=-12.0, ceiling_dbtp=0.0)
    amp(music * np.float32(0.05), sr, sidechain=noise * np.float32(0.1))
    assert np.all(amp.band_gains_db <= 3.0 + 1e-9) and np.all(amp.band_gains_db >= -12.0 - 1e-9)
    assert np.all(amp.gains_db <= 3.0 + 1e-9)
    hot = music * np.float32(0.98 / np.abs(music).max())
    amp = AdaptiveAmplifier(mode="band", ceiling_dbtp=-1.0, max_gain_db=40.0)
    out = amp(hot, sr, sidechain=noise * np.float32(4.0))  # a loud noise wants a big gain
    assert _true_peak_db(out) <= -1.0 + 0.02
    assert amp.band_gains_db.max() < 40.0  # the true-peak ceiling held it back


def test_raising_smr_never_lowers_a_band_gain(music_clip):
    noise, sr = blendfx.read_audio(shared("noise", "esc10", "dog_bark", "1-30226-A.ogg"))
    music, _ = music_clip
    noise = fit_length(noise, music.shape[1])
    amp = AdaptiveAmplifier(mode="band", max_gain_db=60.0, ceiling_dbtp=0.0)
    previous = None
    for smr in (0.0, 6.0, 12.0, 18.0, 24.0):
        amp.smr_db = smr
        amp(music * np.float32(0.05), sr, sidechain=noise * np.float32(0.05))  # under the ceilings
        gains = amp.band_gains_db
        assert np.all(np.isfinite(gains))
        if previous is not None:
            assert np.all(gains >= previous - 1e-9)
        else:
            first = gains
        previous = gains
    # below the ceilings the threshold scales every band's optimum alike: +24 dB over the sweep
    np.testing.assert_allclose(previous - first, 24.0, atol=0.01)


def test_band_eq_is_zero_phase_and_exact_where_flat():
    from blendfx.effects.amplifier.band_eq import apply_band_eq, band_curve_db, bark_band_edges

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 20000)).astype(np.float32) * np.float32(0.1)
    edges = bark_band_edges(4)
    same = apply_band_eq(x, 44100, np.zeros(4), edges)
    np.testing.assert_allclose(same, x, atol=2e-4)  # 0 dB everywhere: the input, in time
    louder = apply_band_eq(x, 44100, np.full(4, 6.0), edges)
    np.testing.assert_allclose(louder, x * np.float32(10 ** (6 / 20)), atol=4e-4)
    curve = band_curve_db(np.array([0.0, 10.0, -5.0, 3.0]), edges, np.linspace(0, 25, 500))
    assert curve.min() >= -5.0 and curve.max() <= 10.0  # never outside the band gains
    assert curve[0] == 0.0 and curve[-1] == 3.0  # the outer bands are held


_CONFORMANCE = ["test_layout_kept", "test_empty_passes", "test_square_raises", "test_nan_raises",
                "test_silence_finite", "test_same_seed_same_output", "test_reset_clears_state",
                "test_threads_identical", "test_unknown_parameter_raises",
                "test_is_effect_flags"]  # (not the chunked check: the amplifier is offline)


@pytest.mark.parametrize("check", _CONFORMANCE)
def test_band_mode_passes_the_conformance_suite(check, monkeypatch):
    from .. import test_conformance
    from ..conformance_factories import FACTORIES

    monkeypatch.setitem(FACTORIES, "AdaptiveAmplifier", lambda: AdaptiveAmplifier(mode="band"))
    test = getattr(test_conformance, check)
    if check == "test_layout_kept":
        for shape in [(test_conformance.N,), (test_conformance.N, 2), (1, test_conformance.N)]:
            test("AdaptiveAmplifier", shape)
    else:
        test("AdaptiveAmplifier")
