"""Key clarity and tempo stability on known signals, and on real recorded music."""

from __future__ import annotations

import blendfx
import numpy as np
import pytest
from blendfx.effects.blend.musicality import (
    best_key,
    chroma_profile,
    key_clarity,
    local_tempi,
    tempo_stability,
)

from ...conftest import shared

SR = 22050


def tone(midi: float, seconds: float, sr: int = SR, harmonics: int = 4) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f = 440.0 * 2 ** ((midi - 69) / 12)
    env = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
    return (env * sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, harmonics + 1))).astype(np.float32)


def scale(tonic: int, steps=(0, 2, 4, 5, 7, 9, 11, 12), seconds: float = 0.4, cents: float = 0.0):
    return np.concatenate([tone(tonic + s + cents / 100.0, seconds) for s in steps])


def clicks(bpms: np.ndarray, seconds: float, sr: int = SR) -> np.ndarray:
    """A click track whose tempo follows ``bpms`` (sampled over time)."""
    out = np.zeros(int(seconds * sr), np.float32)
    burst = (np.random.default_rng(0).standard_normal(220) * np.hanning(220)).astype(np.float32)
    t = 0.0
    while t < seconds - 0.02:
        i = int(t * sr)
        out[i:i + burst.size] += burst[: out.size - i]
        bpm = np.interp(t / seconds, np.linspace(0, 1, len(bpms)), bpms)
        t += 60.0 / bpm
    return out


def test_major_scale_is_clear_and_found_in_its_key():
    x = np.tile(scale(60), 3)  # C major, three times
    assert key_clarity(x, SR) > 0.8
    tonic, mode, r = best_key(chroma_profile(x, SR))
    assert (tonic, mode) == (0, "major") and r > 0.8


def test_key_clarity_follows_a_detuned_scale():
    # 35 cents flat: the measure tunes to the signal before folding onto pitch classes
    x = np.tile(scale(62, cents=-35.0), 3)
    tonic, mode, r = best_key(chroma_profile(x, SR))
    assert (tonic, mode) == (2, "major") and r > 0.8


def test_white_noise_and_a_chromatic_scale_score_low(rng):
    noise = rng.standard_normal(SR * 6).astype(np.float32)
    chromatic = scale(60, steps=tuple(range(12)), seconds=0.3)
    assert key_clarity(noise, SR) < 0.45
    assert key_clarity(chromatic, SR) < 0.5  # a flat profile: any small tilt correlates a little
    assert key_clarity(np.zeros(SR, np.float32), SR) == 0.0


def test_steady_click_track_is_stable_and_a_drifting_one_is_not(rng):
    steady = clicks(np.array([100.0]), 40.0)
    tempi = local_tempi(steady, SR)
    assert np.nanmedian(tempi) == pytest.approx(100.0, rel=0.03)
    assert tempo_stability(steady, SR) == 1.0
    drifting = clicks(np.array([80.0, 150.0]), 40.0)
    assert tempo_stability(drifting, SR) < 0.5
    noise = rng.standard_normal(SR * 40).astype(np.float32)
    assert tempo_stability(noise, SR) < 0.6
    assert tempo_stability(np.zeros(SR * 10, np.float32), SR) == 0.0


def test_recorded_music_is_tonal():
    # real recorded music is the reference: a string orchestra in G minor / Bb major
    audio, sr = blendfx.read_audio(shared("music", "hungarian_dance_5.ogg"), duration=30.0)
    assert key_clarity(audio, sr) > 0.6
    assert tempo_stability(audio, sr) > 0.0
