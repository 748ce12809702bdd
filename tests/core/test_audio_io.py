"""Audio files: formats, resampling, atomic writes, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx import AudioFileError, ParameterError, audio_info, read_audio, write_audio
from blendfx.audio_io import iter_audio_blocks, open_audio

from ..conftest import shared


def tone(n=44100, ch=2):
    t = np.arange(n) / 44100
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * ch).astype(np.float32)


@pytest.mark.parametrize("suffix,depth,tol", [(".wav", 24, 1e-6), (".wav", 32, 0.0),
                                              (".wav", 16, 1e-4), (".flac", 24, 1e-6)])
def test_write_read(tmp_path, suffix, depth, tol):
    x = tone()
    path = write_audio(tmp_path / f"t{suffix}", x, 44100, bit_depth=depth)
    y, sr = read_audio(path)
    assert sr == 44100 and y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y - x).max() <= tol
    assert audio_info(path).frames == x.shape[1]


def test_layouts_and_mono(tmp_path):
    x = tone(ch=2)
    write_audio(tmp_path / "a.wav", x.T, 44100)  # (samples, channels) accepted
    y, _ = read_audio(tmp_path / "a.wav", mono=True)
    assert y.ndim == 1 and y.size == x.shape[1]


def test_resample_on_read():
    path = shared("noise", "long", "exercise_bike.wav")
    y, sr = read_audio(path, sample_rate=44100, duration=2.0)
    assert sr == 44100 and y.shape == (1, 88200)
    # the same spectrum as an independent resampler (scipy, 16 kHz -> 44.1 kHz = 441/160): a
    # wrong rate or a missing anti-alias filter shifts or smears it (the two filters' phases
    # differ, so the samples themselves are not compared)
    from scipy.signal import resample_poly, welch

    native, native_sr = read_audio(path, duration=2.5)
    assert native_sr == 16000
    ref = resample_poly(native[0].astype(np.float64), 441, 160)[:88200]
    f, p_ours = welch(y[0, 4410:-4410], 44100, nperseg=4096)
    _, p_ref = welch(ref[4410:-4410], 44100, nperseg=4096)
    band = (f > 100) & (f < 7000)
    assert np.max(np.abs(10 * np.log10(p_ours[band] / p_ref[band]))) < 0.5
    assert p_ours[f > 8200].sum() < 1e-3 * p_ours.sum()  # nothing above the source's Nyquist


def test_offset_and_blocks():
    path = shared("music", "vibe_ace.ogg")
    whole, _ = read_audio(path, duration=3.0)
    part, _ = read_audio(path, offset=1.0, duration=1.0)
    np.testing.assert_allclose(part, whole[:, 44100:88200], atol=1e-6)
    blocks = list(iter_audio_blocks(path, block_seconds=10))
    assert sum(b.shape[1] for b in blocks) == audio_info(path).frames


def test_refuses_to_clip(tmp_path):
    with pytest.raises(ParameterError, match="would clip"):
        write_audio(tmp_path / "loud.wav", tone() * 3, 44100)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
    write_audio(tmp_path / "loud.wav", tone() * 3, 44100, bit_depth=32)


def test_errors(tmp_path):
    with pytest.raises(AudioFileError, match="not found"):
        read_audio(tmp_path / "missing.wav")
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(AudioFileError, match="corrupt.wav"):
        read_audio(bad)
    for opener in (open_audio, audio_info):
        with pytest.raises(AudioFileError, match="corrupt.wav"):
            opener(bad)
    write_audio(tmp_path / "ok.wav", tone(), 44100)
    with open_audio(tmp_path / "ok.wav") as f:
        f.seek(100)
        np.testing.assert_allclose(f.read(50), read_audio(tmp_path / "ok.wav")[0][:, 100:150],
                                   atol=1e-4)
    with pytest.raises(ParameterError, match="writes .wav, .flac"):
        write_audio(tmp_path / "x.mp3", tone(), 44100)
    with pytest.raises(ParameterError, match="bit_depth = 32"):
        write_audio(tmp_path / "x.flac", tone(), 44100, bit_depth=32)
    x = tone()
    x[0, 5] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        write_audio(tmp_path / "nan.wav", x, 44100)
    assert not (tmp_path / "nan.wav").exists()


def test_atomic_replace_keeps_old_file_on_failure(tmp_path):
    path = write_audio(tmp_path / "keep.wav", tone(), 44100)
    before = path.read_bytes()
    with pytest.raises(ParameterError):
        write_audio(path, tone() * 5, 44100)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]
