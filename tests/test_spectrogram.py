"""Riffusion-compatible spectrograms: geometry, the 8-bit image, and the inverse."""

from __future__ import annotations

import numpy as np
import pytest
from blendfx import SpectrogramConverter, SpectrogramParams, image_from_mel, mel_from_image
from blendfx.spectrogram import mel_filterbank, spectral_convergence
from blendfx.spectrogram_image import SpectrogramImage, mel_row

SR = 44100


@pytest.fixture(scope="module")
def conv():
    return SpectrogramConverter(device="cpu")


def test_riffusion_sizes():
    p = SpectrogramParams()
    assert (p.hop_length, p.win_length, p.n_fft) == (441, 4410, 17640)
    assert p.frames_per_second == 100
    fb = mel_filterbank(p)
    assert fb.shape == (512, 8821)


def test_512_pixels_is_5_12_seconds(conv):
    mel = conv.mel_from_audio(np.zeros(int(5.12 * SR), np.float32))
    assert tuple(mel.shape) == (1, 512, 512)


def test_filterbank_matches_torchaudio_formula():
    """HTK triangles on the linear grid 0..sr/2 (torchaudio melscale_fbanks, norm=None)."""
    p = SpectrogramParams()
    freqs = np.linspace(0, SR // 2, p.n_fft // 2 + 1)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    inv = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    f_pts = inv(np.linspace(mel(0.0), mel(10000.0), 514))
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    expected = np.maximum(0, np.minimum(down, up)).T
    np.testing.assert_allclose(mel_filterbank(p), expected, atol=1e-9)


def test_sine_lands_on_riffusion_row(conv):
    t = np.arange(int(5.12 * SR)) / SR
    mel = conv.mel_from_audio(0.5 * np.sin(2 * np.pi * 1000 * t))[0].numpy()
    img = image_from_mel(mel)
    loudest_row = int(np.argmin(img.pixels[:, 256]))
    assert loudest_row == mel_row(1000.0)
    # Independently: the HTK mel bin whose centre is nearest 1 kHz, counted from the bottom.
    mel_hz = 2595.0 * np.log10(1 + 1000 / 700)
    centres = np.linspace(0, 2595.0 * np.log10(1 + 10000 / 700), 514)[1:-1]
    assert loudest_row == 511 - int(np.argmin(np.abs(centres - mel_hz)))


def test_image_conventions_match_riffusion():
    mel = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)  # row 0 = lowest mel bin
    img = image_from_mel(mel)
    expected = (255 - 255 * (mel / 1.0) ** 0.25).astype(np.uint8)[::-1]  # truncate, then flip
    np.testing.assert_array_equal(img.pixels, expected)
    assert img.pixels[1, 1] == 0  # the loudest value is black, and the low row is at the bottom


def test_image_round_trip_within_one_level(music_clip, conv):
    audio, sr = music_clip
    mel = conv.mel_from_audio(audio.mean(axis=0))[0].numpy()
    img = image_from_mel(mel)
    again = image_from_mel(mel_from_image(img), max_value=img.max_value)
    assert np.abs(again.pixels.astype(int) - img.pixels.astype(int)).max() <= 1


def test_pil_round_trip_keeps_max():
    mel = np.random.default_rng(0).random((512, 64)).astype(np.float32) * 7.5
    img = image_from_mel(mel)
    back = SpectrogramImage.from_pil(img.to_pil())
    assert back.max_value == pytest.approx(img.max_value)
    np.testing.assert_array_equal(back.pixels, img.pixels)


def test_silence_image_is_white():
    img = image_from_mel(np.zeros((512, 10), np.float32))
    assert (img.pixels == 255).all()
    assert np.isfinite(mel_from_image(img)).all()


def test_inverse_is_batched_and_deterministic(conv, music_clip):
    audio, _ = music_clip
    x = audio[:, : 441 * 100]
    mel = conv.mel_from_audio(x)  # a batch of 2 (the stereo channels)
    out = conv.audio_from_mel(mel, n_iter=8)
    assert tuple(out.shape) == (2, 441 * 100)
    one = conv.audio_from_mel(mel[1:2], n_iter=8)
    np.testing.assert_allclose(out[1].numpy(), one[0].numpy(), atol=1e-5)
    np.testing.assert_array_equal(conv.audio_from_mel(mel, n_iter=8).numpy(), out.numpy())


def test_inverse_reconstructs_the_mel(conv, music_clip):
    audio, _ = music_clip
    mel = conv.mel_from_audio(audio.mean(axis=0))
    target = mel_from_image(image_from_mel(mel[0].numpy()))
    y = conv.audio_from_mel(target[None])
    sc = spectral_convergence(conv.mel_from_audio(y)[0].numpy(), target)
    assert sc < 0.1
