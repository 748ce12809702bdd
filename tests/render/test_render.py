"""The renderer: outputs, mastering, pan law, resampling, errors with nothing written, cache."""

from __future__ import annotations

import json

import numpy as np
import pyloudnorm
import pytest
import tomli_w
from blendfx import AudioFileError, BlendfxError, SessionError, read_audio
from blendfx.dsp.loudness import LoudnessMeter
from blendfx.effect import EFFECT_REGISTRY, Effect
from blendfx.params import FloatParam
from blendfx.render.mastering import limiter_gain, true_peak_envelope
from blendfx.render.renderer import pan_gains, render_session
from blendfx.render.session import load_session
from scipy.signal import resample_poly

from ..sessionkit import basic_session, output_files, tone, write_session, write_stem


def true_peak_db(audio: np.ndarray, oversampling: int = 4) -> float:
    """An independent true-peak estimate: BS.1770-4 defines 4x oversampling; this one uses a
    longer, steeper interpolation filter than the renderer's."""
    up = resample_poly(np.asarray(audio, np.float64), oversampling, 1, axis=-1,
                       window=("kaiser", 10.0))
    return float(20 * np.log10(np.abs(up).max()))


def test_render_writes_everything_and_masters(tmp_path):
    out = tmp_path / "out"
    r = render_session(basic_session(tmp_path / "s"), out, progress=False)
    assert output_files(out) == ["mix.wav", "report.json", "report.png", "stems/music.wav",
                                 "stems/noise.wav"]
    mix, sr = read_audio(out / "mix.wav")
    assert sr == 44100 and mix.shape == (2, int(2.25 * 44100))
    lufs = pyloudnorm.Meter(sr).integrated_loudness(mix.T.astype(np.float64))
    assert lufs == pytest.approx(-18.0, abs=0.05)
    assert true_peak_db(mix) <= -1.0 + 0.05
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(r.report))
    assert report["master"]["output_lufs"] == pytest.approx(lufs, abs=0.05)
    assert report["duration_s"] == pytest.approx(2.25)
    assert [t["name"] for t in report["tracks"]] == ["noise", "music"]
    assert {"tracks_s", "mix_s", "report_s", "total_s"} <= set(report["timings"])
    # the stems carry the master gain, so they sum to the mix (no limiting was needed here)
    assert not report["master"]["limiter_engaged"]
    stems = sum(read_audio(out / "stems" / f)[0] for f in ("noise.wav", "music.wav"))
    np.testing.assert_allclose(stems, mix, atol=3e-6)
    with open(out / "report.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_limiter_holds_the_true_peak_ceiling(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    # a loud, peaky signal pushed to -8 LUFS needs the limiter
    rng = np.random.default_rng(0)
    x = 0.05 * rng.standard_normal((2, 3 * 44100))
    x[:, ::4410] = 0.95
    write_stem(folder, "hot.wav", x.astype(np.float32))
    path = write_session(folder, {"master": {"target_lufs": -8.0, "true_peak_dbtp": -1.5},
                                  "tracks": [{"name": "hot", "file": "hot.wav"}]})
    r = render_session(path, tmp_path / "out", progress=False, figure=False,
                       block_seconds=0.7)
    m = r.report["master"]
    assert m["limiter_engaged"] and m["limiter_max_reduction_db"] > 3
    mix, sr = read_audio(r.mix)
    assert true_peak_db(mix) <= -1.5 + 0.02
    # white noise is the worst case for a 4x meter; even 16x finds only a small excess
    assert true_peak_db(mix, 16) <= -1.5 + 0.25
    assert m["output_true_peak_dbtp"] <= -1.5
    assert m["output_lufs"] == pytest.approx(
        pyloudnorm.Meter(sr).integrated_loudness(mix.T.astype(np.float64)), abs=0.05)
    # the stems are trimmed so none clips, and are never limited
    stem, _ = read_audio(r.stems["hot"])
    assert np.abs(stem).max() <= 10 ** (-1.5 / 20) + 1e-4



def test_master_without_limiter_lowers_the_whole_mix_by_one_gain(tmp_path):
    # [master] limiter = false: two tracks whose sum passes the ceiling keep their balance
    folder = tmp_path / "s"
    folder.mkdir()
    rng = np.random.default_rng(1)
    x = 0.05 * rng.standard_normal((2, 2 * 44100))
    x[:, ::4410] = 0.9
    write_stem(folder, "a.wav", x.astype(np.float32))
    write_stem(folder, "b.wav", tone(330, 2.0, channels=2, amp=0.8))
    path = write_session(folder, {"master": {"target_lufs": False, "true_peak_dbtp": -1.0,
                                             "limiter": False},
                                  "tracks": [{"name": "a", "file": "a.wav"},
                                             {"name": "b", "file": "b.wav"}]})
    assert load_session(path).master.limiter is False
    r = render_session(path, tmp_path / "out", progress=False, figure=False, block_seconds=0.7)
    m = r.report["master"]
    assert m["limiter"] is False and m["limiter_engaged"] is False
    assert m["ceiling_trim_db"] < -0.5 and m["master_gain_db"] == pytest.approx(m["ceiling_trim_db"])
    mix, sr = read_audio(r.mix)
    assert true_peak_db(mix) <= -1.0 + 0.05
    # one gain: the mix is the tracks' sum times it (the stems carry it too)
    pre = sum(read_audio(folder / f)[0] for f in ("a.wav", "b.wav"))
    np.testing.assert_allclose(mix, pre * np.float32(10 ** (m["master_gain_db"] / 20)), atol=3e-6)
    stems = sum(read_audio(r.stems[n])[0] for n in ("a", "b"))
    np.testing.assert_allclose(stems, mix, atol=3e-6)
    with pytest.raises(SessionError, match="master.limiter"):
        write_session(folder, {"master": {"limiter": "no"}, "tracks": [{"name": "a", "file": "a.wav"}]},
                      name="bad.toml")
        load_session(folder / "bad.toml")

def test_pan_law():
    left, right = pan_gains(0.0, 1)
    assert left == pytest.approx(10 ** (-3.0103 / 20), abs=1e-4) == right  # -3 dB centre
    assert pan_gains(-1.0, 1) == pytest.approx((1.0, 0.0), abs=1e-12)
    for p in np.linspace(-1, 1, 9):
        assert sum(g * g for g in pan_gains(p, 1)) == pytest.approx(1.0)  # constant power
    assert pan_gains(0.0, 2) == pytest.approx((1.0, 1.0))  # a stereo source keeps its level
    assert pan_gains(1.0, 2) == pytest.approx((0.0, 1.0), abs=1e-12)
    assert pan_gains(0.5, 2)[1] == 1.0 and pan_gains(0.5, 2)[0] < 1.0


def test_mono_and_stereo_stems_mix(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    write_stem(folder, "mono.wav", tone(200, 1.0))
    write_stem(folder, "stereo.wav", tone(500, 1.0, channels=2))
    path = write_session(folder, {"master": {"target_lufs": False}, "tracks": [
        {"name": "mono", "file": "mono.wav"},
        {"name": "stereo", "file": "stereo.wav", "pan": 0.5}]})
    r = render_session(path, tmp_path / "out", progress=False, figure=False)
    assert r.report["master"]["master_gain_db"] == 0.0
    mono, _ = read_audio(r.stems["mono"])
    stereo, _ = read_audio(r.stems["stereo"])
    src_m, _ = read_audio(folder / "mono.wav")
    src_s, _ = read_audio(folder / "stereo.wav")
    np.testing.assert_allclose(mono, np.repeat(src_m, 2, 0) * np.float32(np.sqrt(0.5)), atol=1e-6)
    gl, gr = pan_gains(0.5, 2)
    np.testing.assert_allclose(stereo, src_s * np.array([[gl], [gr]], np.float32), atol=1e-6)
    mix, _ = read_audio(r.mix)
    np.testing.assert_allclose(mix, mono + stereo, atol=1e-6)


def test_mismatched_sample_rates(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    write_stem(folder, "a.wav", tone(1000, 1.0, sr=48000), sr=48000)
    write_stem(folder, "b.wav", tone(300, 1.0, sr=44100), sr=44100)
    manifest = {"session": {"sample_rate": 44100}, "master": {"target_lufs": False},
                "tracks": [{"name": "a", "file": "a.wav"}, {"name": "b", "file": "b.wav"}]}
    r = render_session(write_session(folder, manifest), tmp_path / "out", progress=False,
                       figure=False)
    a, sr = read_audio(r.stems["a"])
    assert sr == 44100 and a.shape[1] == 44100  # 1 s stays 1 s
    spectrum = np.abs(np.fft.rfft(a[0] * np.hanning(a.shape[1])))
    assert np.argmax(spectrum) * sr / a.shape[1] == pytest.approx(1000, abs=2)  # same pitch
    # resample = false: a clear error naming the file and both rates, nothing written
    manifest["session"]["resample"] = False
    out = tmp_path / "strict"
    with pytest.raises(SessionError, match=r"a.wav is at 48000 Hz but the session is at 44100 Hz"):
        render_session(write_session(folder, manifest), out, progress=False)
    assert not out.exists()


def _errors(folder):
    """(name, manifest changes, error type, message) for the bad-input cases."""
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 8)
    (folder / "empty.wav").write_bytes(b"")
    return [
        ("corrupt", {"file": "corrupt.wav"}, AudioFileError, "corrupt.wav"),
        ("empty", {"file": "empty.wav"}, AudioFileError, "empty.wav"),
        ("missing", {"file": "gone.wav"}, SessionError, "stem not found: .*gone.wav"),
        ("escape", {"file": "../outside.wav"}, SessionError, "outside the session folder"),
        ("preset", {"preset": "no-such-preset"}, SessionError, "unknown preset 'no-such-preset'"),
        ("param", {"chain": {"type": "Chain", "plugins": [{"type": "Ducker", "depth_db": -5}]}},
         SessionError, r"plugins\[0\].*depth_db = -5.*out of range"),
        ("offset", {"source_offset": 30.0}, SessionError, "past the end of noise.wav"),
    ]


def test_bad_inputs_fail_before_anything_is_written(tmp_path):
    folder = tmp_path / "s"
    path = basic_session(folder)
    (tmp_path / "outside.wav").write_bytes((folder / "noise.wav").read_bytes())
    base = load_session(path).to_dict()
    for name, change, err, msg in _errors(folder):
        manifest = json.loads(json.dumps(base))
        if "preset" in change or "chain" in change:
            manifest["tracks"][0].pop("chain")
        manifest["tracks"][0].update(change)
        bad = folder / f"{name}.toml"
        bad.write_text(tomli_w.dumps(manifest))
        out = tmp_path / f"out-{name}"
        with pytest.raises(err, match=msg) as info:
            render_session(bad, out, progress=False)
        assert isinstance(info.value, BlendfxError)
        assert "\n" not in str(info.value)
        assert not out.exists(), name


def test_session_length_pads_and_cuts(tmp_path):
    path = basic_session(tmp_path / "s", length=3.0)
    r = render_session(path, tmp_path / "a", progress=False, figure=False)
    assert read_audio(r.mix)[0].shape[1] == 3 * 44100
    path = basic_session(tmp_path / "s", length=1.0)
    r = render_session(path, tmp_path / "b", progress=False, figure=False)
    assert read_audio(r.mix)[0].shape[1] == 44100


def test_streaming_equals_whole(tmp_path):
    path = basic_session(tmp_path / "s", seconds=3.0)
    small = render_session(path, tmp_path / "small", progress=False, figure=False,
                           block_seconds=0.3)
    big = render_session(path, tmp_path / "big", progress=False, figure=False, block_seconds=60)
    assert all(t.streamed for t in small.tracks)
    np.testing.assert_allclose(read_audio(small.mix)[0], read_audio(big.mix)[0], atol=2e-6)


def test_offsets_fades_and_source_offsets(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    x = np.ones((1, 44100), np.float32) * 0.5
    x[0, 22050:] = 0.25
    write_stem(folder, "dc.wav", x)
    path = write_session(folder, {"master": {"target_lufs": False}, "tracks": [
        {"name": "a", "file": "dc.wav", "offset": 0.5, "source_offset": 0.25, "duration": 0.5,
         "fade_in": 0.1, "pan": -1.0}]})
    r = render_session(path, tmp_path / "out", progress=False, figure=False)
    a, sr = read_audio(r.stems["a"])
    left = a[0]
    assert a.shape[1] == 44100 and not a[1].any()  # hard left; ends at 0.5 + 0.5 s
    assert not left[:22050].any()  # nothing before the offset
    assert left[22050] < 0.01 and left[22050 + 4410 + 10] == pytest.approx(0.5, abs=1e-4)
    assert left[22050 + 11025 + 10] == pytest.approx(0.25, abs=1e-4)  # source offset 0.25 s


class _ReportingGain(Effect):
    """A stand-in for Blend in tests: an offline effect that exposes a blend report."""

    registered = False
    supports_streaming = False
    uses_sidechain = True
    gain_db = FloatParam(-6.0, min=-40.0, max=0.0, unit="dB")

    def _process(self, audio, sample_rate, sidechain):
        music = (tone(330, audio.shape[1] / sample_rate, sr=sample_rate, channels=2) *
                 np.float32(10 ** (self.gain_db / 20)))
        object.__setattr__(self, "_report", {"unmasked_fraction": 0.25, "loudness_cost_lu": 1.5,
                                             "noise_lufs": -20.0})
        object.__setattr__(self, "_music", music)
        return music

    last_report = property(lambda self: getattr(self, "_report", None))
    last_music = property(lambda self: getattr(self, "_music", None))
    last_gains_db = property(lambda self: np.full(100, self.gain_db))
    last_mask = property(lambda self: None)


def test_generated_track_report_and_figure(tmp_path, monkeypatch):
    monkeypatch.setitem(EFFECT_REGISTRY, "_ReportingGain", _ReportingGain)
    folder = tmp_path / "s"
    folder.mkdir()
    write_stem(folder, "noise.wav", tone(100, 1.5, seed=3))
    path = write_session(folder, {"master": {"target_lufs": -20.0}, "tracks": [
        {"name": "noise", "file": "noise.wav", "role": "noise"},
        {"name": "music", "key": "noise", "role": "music",
         "chain": {"type": "Chain", "plugins": [{"type": "_ReportingGain", "gain_db": -3.0},
                                                {"type": "pedalboard.Gain", "gain_db": -1.0}]}},
    ]})
    r = render_session(path, tmp_path / "out", progress=False)
    music = r.report["tracks"][1]
    assert not music["streamed"] and music["unmasked_fraction"] == 0.25
    assert music["reports"][0]["effect"] == "_ReportingGain"
    assert music["reports"][0]["gain_curve_db"] == {"mean": -3.0, "min": -3.0, "max": -3.0}
    assert r.report_png.stat().st_size > 10000
    # cached: the blend report survives from the cache entry
    again = render_session(path, tmp_path / "out", progress=False)
    assert [t["cached"] for t in again.report["tracks"]] == [True, True]
    assert again.report["tracks"][1]["unmasked_fraction"] == 0.25


def test_mute_solo_and_stale_stems(tmp_path):
    folder = tmp_path / "s"
    path = basic_session(folder)
    out = tmp_path / "out"
    render_session(path, out, progress=False, figure=False)
    manifest = load_session(path).to_dict()
    manifest["tracks"][0]["mute"] = True  # the music's key: rendered, not heard
    write_session(folder, manifest)
    r = render_session(path, out, progress=False, figure=False)
    assert set(r.stems) == {"music"} and output_files(out) == [
        "mix.wav", "report.json", "stems/music.wav"]
    assert [t.audible for t in r.tracks] == [False, True]
    manifest["tracks"][0]["mute"] = False
    manifest["tracks"][0]["solo"] = True
    write_session(folder, manifest)
    assert set(render_session(path, out, progress=False, figure=False).stems) == {"noise"}


def test_cache_rerenders_only_what_changed(tmp_path):
    folder = tmp_path / "s"
    path = basic_session(folder)
    out = tmp_path / "out"
    first = render_session(path, out, progress=False, figure=False)
    assert [t.cached for t in first.tracks] == [False, False]
    manifest = load_session(path).to_dict()
    manifest["tracks"][1]["gain_db"] = -4.0  # change the music only
    write_session(folder, manifest)
    second = render_session(path, out, progress=False, figure=False)
    assert [t.cached for t in second.tracks] == [True, False]
    fresh = render_session(path, tmp_path / "fresh", progress=False, figure=False, cache=False)
    np.testing.assert_array_equal(read_audio(second.mix)[0], read_audio(fresh.mix)[0])
    # a new noise file changes the noise and what it keys (the music's ducker)
    write_stem(folder, "noise.wav", tone(250, 2.0, seed=9))
    third = render_session(path, out, progress=False, figure=False)
    assert [t.cached for t in third.tracks] == [False, False]
    # unchanged: nothing is rendered, and unused entries were pruned
    fourth = render_session(path, out, progress=False, figure=False)
    assert [t.cached for t in fourth.tracks] == [True, True]
    entries = sorted(p.name for p in (out / ".blendfx-cache" / "tracks").iterdir())
    assert entries == sorted(t.key for t in fourth.tracks)
    # --no-cache renders again and gives the same audio
    fifth = render_session(path, out, progress=False, figure=False, cache=False)
    assert [t.cached for t in fifth.tracks] == [False, False]
    np.testing.assert_array_equal(read_audio(fifth.mix)[0], read_audio(fourth.mix)[0])


@pytest.mark.parametrize("rate, channels, seconds", [(44100, 2, 3.3), (48000, 1, 2.05),
                                                     (16000, 2, 0.9), (22050, 5, 1.0)])
def test_loudness_meter_matches_pyloudnorm(rate, channels, seconds):
    rng = np.random.default_rng(rate)
    n = int(seconds * rate)
    x = rng.standard_normal((channels, n)) * np.linspace(0.001, 0.3, n)  # gating matters
    meter = LoudnessMeter(rate, channels, n)
    for start in range(0, n, 7919):  # odd block sizes
        meter.add(x[:, start:start + 7919])
    expected = pyloudnorm.Meter(rate).integrated_loudness(x.T)
    assert meter.integrated() == pytest.approx(expected, abs=1e-6)
    assert meter.integrated(gain_db=-6.0) == pytest.approx(
        pyloudnorm.Meter(rate).integrated_loudness(x.T * 10 ** (-6 / 20)), abs=1e-6)
    short = LoudnessMeter(rate, channels, 100)
    short.add(x[:, :100])
    assert short.integrated() == float("-inf")


def test_true_peak_envelope_equals_a_direct_float64_oversampling():
    """The envelope (GEMM tiles, pruned or not) against the filter's branches applied directly
    in float64: equal to float32 rounding, at the signal's ends and odd lengths too."""
    from blendfx.dsp.loudness import oversampling_filter
    from blendfx.render.mastering import limit, true_peak_max

    taps, _ = oversampling_filter()
    k = taps.shape[0]
    rng = np.random.default_rng(11)
    for n in (1, 23, 32, 33, 700, 5000):
        x = (rng.standard_normal((2, n)) * 0.2).astype(np.float32)
        x[:, n // 2] = 0.9  # a peak: the pruned envelope oversamples around it only
        padded = np.pad(x.astype(np.float64), ((0, 0), (k // 2 - 1, k // 2)))
        # the value at m + r/4 reads x[m - k/2 + 1 .. m + k/2] (zeros beyond the signal)
        expect = np.abs(x).max(axis=0).astype(np.float64)
        for r in range(taps.shape[1]):
            y = np.stack([np.convolve(c, taps[::-1, r], mode="valid") for c in padded])
            expect = np.maximum(expect, np.abs(y).max(axis=0))
        full = true_peak_envelope(x)
        assert full == pytest.approx(expect, rel=2e-6, abs=1e-7)
        pruned = true_peak_envelope(x, above=0.8)
        over = expect > 0.8
        assert pruned[over] == pytest.approx(expect[over], rel=2e-6)
        assert np.all(pruned[~over] <= 0.8 * (1 + 1e-6))
        assert true_peak_max(x) == pytest.approx(expect.max(), rel=2e-6)
    # the limiter's output peak (from the input's envelope) against the limited signal's own
    x = (rng.standard_normal((2, 20000)) * 0.1).astype(np.float32)
    x[:, 9000:9010] = 1.4
    gain, peak = limit(x, 0.8, 44100, 2000, 32)
    assert peak == pytest.approx(true_peak_max(x[:, 2000:-2000] * gain, 32), rel=2e-6)


def test_limiter_gain_is_a_brick_wall():
    rng = np.random.default_rng(5)
    sr, margin = 44100, 2000
    x = (rng.standard_normal((2, 20000)) * 0.1).astype(np.float32)
    x[:, 9000:9010] = 1.4  # a burst far over the ceiling
    ceiling = 10 ** (-1 / 20)
    g = limiter_gain(x, ceiling, sr, margin)
    core = x[:, margin:-margin] * g
    env = true_peak_envelope(x)[margin:-margin]
    assert np.all(env * g <= ceiling * (1 + 1e-6))
    assert g.min() < 0.6 and g.max() == pytest.approx(1.0)
    assert np.abs(np.diff(g)).max() < 0.05  # smooth: no step in the gain
    assert true_peak_db(core) <= -1 + 0.1


def test_flac_master_and_16_bit(tmp_path):
    path = basic_session(tmp_path / "s")
    manifest = load_session(path).to_dict()
    manifest["master"].update(format="flac", bit_depth=16)
    write_session(tmp_path / "s", manifest)
    r = render_session(path, tmp_path / "out", progress=False, figure=False)
    assert r.mix.name == "mix.flac" and set(p.suffix for p in r.stems.values()) == {".flac"}
    from blendfx import audio_info

    info = audio_info(r.mix)
    assert info.channels == 2 and info.frames == int(2.25 * 44100)
    mix, sr = read_audio(r.mix)
    lufs = pyloudnorm.Meter(sr).integrated_loudness(mix.T.astype(np.float64))
    assert lufs == pytest.approx(-18.0, abs=0.05)


def test_composer_track_amplified_against_its_key(tmp_path):
    from ..conftest import shared

    folder = tmp_path / "s"
    folder.mkdir()
    noise, sr = read_audio(shared("noise", "esc10", "clock_tick", "1-21934-A.ogg"), 44100,
                           duration=3.0)
    write_stem(folder, "tick.wav", noise)
    path = write_session(folder, {"session": {"seed": 2}, "tracks": [
        {"name": "tick", "file": "tick.wav", "role": "noise"},
        {"name": "music", "key": "tick", "role": "music", "generator": "Composer",
         "prompt": "jazz", "chain": {"type": "Chain", "plugins": [
             {"type": "AdaptiveAmplifier", "mode": "frame"}]}}]})
    r = render_session(path, tmp_path / "out", progress=False)
    music = r.report["tracks"][1]
    assert not music["streamed"]
    amp = next(x for x in music["reports"] if x["effect"] == "AdaptiveAmplifier")
    assert amp["figure"] and "gain_curve_db" in amp and np.isfinite(amp["gain_db"])
    stem, _ = read_audio(r.stems["music"])
    assert np.sqrt(np.mean(stem ** 2)) > 1e-3


def test_parallel_tracks_equal_serial(tmp_path):
    folder = tmp_path / "s"
    path = basic_session(folder)
    manifest = load_session(path).to_dict()
    manifest["tracks"] += [  # a wider graph: two more tracks keyed by the first two
        {"name": "echo", "key": "music", "chain": {"type": "Chain", "plugins": [
            {"type": "pedalboard.Delay", "delay_seconds": 0.1, "mix": 0.5}]}},
        {"name": "duck", "file": "noise.wav", "sidechain": "echo", "chain": {
            "type": "Chain", "plugins": [{"type": "Ducker", "depth_db": 3.0}]}}]
    write_session(folder, manifest)
    serial = render_session(path, tmp_path / "a", progress=False, figure=False, jobs=1)
    parallel = render_session(path, tmp_path / "b", progress=False, figure=False, jobs=4)
    assert [t.name for t in parallel.tracks] == ["noise", "music", "echo", "duck"]
    np.testing.assert_array_equal(read_audio(serial.mix)[0], read_audio(parallel.mix)[0])
    with pytest.raises(SessionError, match="jobs"):
        render_session(path, tmp_path / "c", progress=False, jobs=0)


def test_cached_stem_reads_without_preadv(tmp_path, monkeypatch):
    """Platforms without os.preadv (Windows) read cached stems through the locked fallback."""
    import os

    from blendfx.render import sources

    data = np.arange(2000, dtype=np.float32)
    path = tmp_path / "raw.bin"
    path.write_bytes(data.tobytes())
    fd = os.open(path, os.O_RDONLY)
    try:
        fast = np.empty((100, 2), np.float32)
        assert sources._read_at(fd, fast, 400) == fast.nbytes
        monkeypatch.delattr(os, "preadv", raising=False)
        slow = np.empty((100, 2), np.float32)
        assert sources._read_at(fd, slow, 400) == slow.nbytes
        tail = np.empty((100, 2), np.float32)  # past the end: a short read, reported as such
        assert sources._read_at(fd, tail, 4 * 1950) == 4 * 50
    finally:
        os.close(fd)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(slow.ravel(), data[100:300])


def test_streaming_tail_of_an_offline_chain_equals_one_call(tmp_path, monkeypatch):
    """After an offline effect, the streaming effects run block by block on a pipeline of
    threads: the same samples as the whole chain in one call."""
    import pedalboard as pb
    from blendfx.chain import Chain
    from blendfx.effects import Utility
    from blendfx.render import mixdown, tracks

    def chain():
        return Chain([_ReportingGain(gain_db=-3.0),
                      Chain([pb.Compressor(threshold_db=-24.0, ratio=3.0),
                             pb.Reverb(room_size=0.6, wet_level=0.3)]),
                      Utility(gain_db=-2.0, pan=0.2)])

    sr = 44100
    x = tone(100, 2.0, seed=3, channels=2)
    whole = chain().process(x, sr)
    head, stages = tracks._split_tail(chain(), sr)
    assert len(stages) == 3  # the nested chain is flattened
    music = head.process(x, sr)
    blocks = [music[:, a:a + 10000] for a in range(0, music.shape[1], 10000)]
    streamed = np.concatenate(list(tracks._pipeline(stages, blocks)), axis=1)
    np.testing.assert_array_equal(streamed, whole)
    # nothing streams after the offline effect, or a keyed effect does: one call
    assert tracks._split_tail(Chain([_ReportingGain()]), sr) is None
    from blendfx.effects import Ducker
    assert tracks._split_tail(Chain([_ReportingGain(), Ducker()]), sr) is None

    def broken(block, reset):
        raise ValueError("stage failed")

    with pytest.raises(ValueError, match="stage failed"):
        list(tracks._pipeline([stages[0], broken], blocks))
    # in a session: the stem is the whole chain's output through the fader
    monkeypatch.setitem(EFFECT_REGISTRY, "_ReportingGain", _ReportingGain)
    folder = tmp_path / "s"
    folder.mkdir()
    write_stem(folder, "noise.wav", x)
    path = write_session(folder, {"master": {"target_lufs": False}, "tracks": [
        {"name": "noise", "file": "noise.wav", "role": "noise", "mute": True},
        {"name": "music", "key": "noise", "role": "music", "chain": {"type": "Chain", "plugins": [
            {"type": "_ReportingGain", "gain_db": -3.0},
            {"type": "Chain", "plugins": [
                {"type": "pedalboard.Compressor", "threshold_db": -24.0, "ratio": 3.0},
                {"type": "pedalboard.Reverb", "room_size": 0.6, "wet_level": 0.3}]},
            {"type": "Utility", "gain_db": -2.0, "pan": 0.2}]}},
    ]})
    r = render_session(path, tmp_path / "out", progress=False, figure=False,
                       block_seconds=0.3)
    stem, _ = read_audio(r.stems["music"])
    np.testing.assert_allclose(stem, whole, atol=2 ** -22)  # 24-bit file
    assert r.report["tracks"][1]["unmasked_fraction"] == 0.25
    # mastered, with another audible track: the mix's first pass, measured while the last
    # track streams out (mixdown.PreMeasure), gives what the separate pass gives
    manifest = load_session(path).to_dict()
    manifest["master"]["target_lufs"] = -9.0
    manifest["tracks"][0]["mute"] = False
    write_session(folder, manifest)
    used = []
    monkeypatch.setattr(mixdown.PreMeasure, "finish", lambda self, f=mixdown.PreMeasure.finish:
                        used.append(1) or f(self))
    fused = render_session(path, tmp_path / "fused", progress=False, figure=False,
                           block_seconds=0.3, jobs=1)
    assert used == [1]
    monkeypatch.setattr(tracks, "_split_tail", lambda chain, sr: None)
    plain = render_session(path, tmp_path / "plain", progress=False, figure=False,
                           block_seconds=0.3, jobs=1)
    assert fused.report["master"] == plain.report["master"]
    pairs = zip([fused.mix, *fused.stems.values()], [plain.mix, *plain.stems.values()],
                strict=True)
    for a, b in pairs:
        assert a.read_bytes() == b.read_bytes()
    # the other track finishes while this one streams: the first pass starts late and catches
    # up on the blocks already written (here: the first two checks in _stream_tail say no)
    import builtins
    import sys

    said_no = []

    def late_all(values):
        if sys._getframe(1).f_code.co_name == "_stream_tail" and len(said_no) < 2:
            said_no.append(1)
            return False
        return builtins.all(values)

    monkeypatch.undo()
    monkeypatch.setitem(EFFECT_REGISTRY, "_ReportingGain", _ReportingGain)
    monkeypatch.setattr(tracks, "all", late_all, raising=False)
    monkeypatch.setattr(mixdown.PreMeasure, "finish", lambda self, f=mixdown.PreMeasure.finish:
                        used.append(2) or f(self))
    late = render_session(path, tmp_path / "late", progress=False, figure=False,
                          block_seconds=0.3, jobs=1)
    assert said_no == [1, 1] and used == [1, 2]
    assert late.report["master"] == plain.report["master"]
    for a, b in zip([late.mix, *late.stems.values()], [plain.mix, *plain.stems.values()],
                    strict=True):
        assert a.read_bytes() == b.read_bytes()
