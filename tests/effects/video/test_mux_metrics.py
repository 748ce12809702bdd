"""Muxing a new soundtrack (picture copied, not re-encoded) and PixMus's low-level metrics."""

from __future__ import annotations

import av
import numpy as np
import pytest
from blendfx.effects.video import ShotSpec, VideoError, analyze_video, mux_soundtrack, write_video
from blendfx.effects.video.metrics import low_level_errors, low_level_features
from blendfx.errors import ParameterError

SHOTS = [ShotSpec(30, "still", 1), ShotSpec(30, "fast", 2)]


def _packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


@pytest.mark.parametrize("src_ext,codec,out_ext", [(".mp4", "libx264", ".mp4"), (".webm", "libvpx", ".webm"),
                                                   (".mp4", "libx264", ".mkv")])
def test_picture_is_copied_and_durations_match(tmp_path, src_ext, codec, out_ext):
    src = tmp_path / f"src{src_ext}"
    write_video(src, SHOTS, codec=codec, audio="tone", fps=25)
    sr = 44100
    n = int(2.4 * sr)
    tone = np.stack([np.sin(2 * np.pi * 330 * np.arange(n) / sr)] * 2).astype(np.float32) * 0.3
    out = mux_soundtrack(src, tone, sr, tmp_path / f"scored{out_ext}")
    assert _packets(out) == _packets(src)  # the very same compressed picture
    f = analyze_video(out)
    g = analyze_video(src)
    assert f.duration_s == pytest.approx(g.duration_s, abs=1 / 25)
    assert f.audio is not None and f.audio.shape[1] / f.sample_rate == pytest.approx(2.4, abs=0.05)
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.duration / 1e6 == pytest.approx(2.4, abs=1 / 25)
    assert not list(tmp_path.glob(".mux-*"))


def test_bad_mux_writes_nothing(tmp_path):
    src = tmp_path / "src.mp4"
    write_video(src, SHOTS, audio=None)
    with pytest.raises(VideoError, match="container"):
        mux_soundtrack(src, np.zeros((2, 100), np.float32), 44100, tmp_path / "x.avi")
    with pytest.raises(VideoError, match="cannot hold"):
        mux_soundtrack(src, np.zeros((2, 100), np.float32), 44100, tmp_path / "x.webm")
    with pytest.raises(VideoError, match="channels"):
        mux_soundtrack(src, np.zeros((6, 100), np.float32), 44100, tmp_path / "x.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mp4"]


def test_low_level_metrics():
    sr = 22050
    t = np.arange(sr * 2) / sr
    a = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    b = np.sin(2 * np.pi * 1760 * t).astype(np.float32)
    feats = low_level_features(a, sr)
    assert feats["chroma"].shape[0] == 12 and feats["contrast"].shape[0] == 7
    assert int(np.argmax(feats["chroma"].mean(axis=1))) == 9  # A
    same = low_level_errors(a, a, sr)
    assert all(v == 0.0 for v in same.values())
    far = low_level_errors(a, b, sr)
    near = low_level_errors(a, a + 0.01 * b, sr)
    assert far["centroid_rmse"] > 10 * near["centroid_rmse"] > 0
    assert far["chroma_rmse"] < 0.1  # an octave apart: the same pitch class
    with pytest.raises(ValueError, match="audio is empty"):
        low_level_errors(a[:0], a, sr)
    with pytest.raises(ParameterError, match="reference holds NaN"):
        low_level_errors(a, np.full_like(a, np.nan), sr)
    with pytest.raises(ParameterError, match="sample_rate"):
        low_level_errors(a, a, 0)
