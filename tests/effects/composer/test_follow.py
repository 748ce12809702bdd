"""The Composer on pitched and impulsive noises: a part that follows a call's pitch, a part that
follows a tick train's pulse, and a melody finder that hears voices but not rain."""

from __future__ import annotations

import blendfx
import numpy as np
import pytest
from blendfx.effects import Composer
from blendfx.effects.composer.composer import render_midi
from blendfx.effects.composer.melody import find_melody
from blendfx.effects.composer.midi import read_midi

from ...conftest import shared

SR = 44100


def rooster(seconds: float = 6.0, calls=((0.8, 2.0), (3.4, 4.6))) -> tuple[np.ndarray, list]:
    """A synthetic crowing: harmonic calls (6 partials) whose fundamental rises from 480 to
    720 Hz, holds and falls to 560 Hz, over quiet broadband noise; and the calls' (start, end)."""
    rng = np.random.default_rng(3)
    x = 0.02 * rng.standard_normal(int(seconds * SR))
    for start, end in calls:
        t = np.arange(int((end - start) * SR)) / SR
        d = end - start
        f = np.interp(t, [0, 0.25 * d, 0.75 * d, d], [480, 720, 720, 560])
        phase = 2 * np.pi * np.cumsum(f) / SR
        env = np.minimum(1.0, np.minimum(t, d - t) / 0.04)
        call = sum(np.sin(k * phase) * 0.7 ** k for k in range(1, 7)) * env
        i = int(start * SR)
        x[i:i + call.size] += 0.4 * call
    return x.astype(np.float32)[None], list(calls)


def pitch_at(t: float, calls) -> float | None:
    """The synthetic call's fundamental (MIDI) at ``t`` s, None outside the calls."""
    for start, end in calls:
        if start <= t <= end:
            d = end - start
            f = np.interp(t - start, [0, 0.25 * d, 0.75 * d, d], [480, 720, 720, 560])
            return 69 + 12 * np.log2(f / 440.0)
    return None


def test_melody_finder_hears_a_call_and_not_rain():
    noise, calls = rooster()
    melody = find_melody(noise[0], SR)
    assert melody.notes.size and 0.15 < melody.voiced_share < 0.5
    held = melody.notes[np.argmax(melody.notes[:, 1] - melody.notes[:, 0])]
    assert held[2] == pytest.approx(69 + 12 * np.log2(720 / 440), abs=0.5)  # the held 720 Hz
    for on, off, _, _ in melody.notes:  # every note inside a call
        assert any(s - 0.05 <= on and off <= e + 0.1 for s, e in calls)
    rain, sr = blendfx.read_audio(shared("noise", "esc10", "rain", "1-17367-A.ogg"))
    assert find_melody(rain[0], sr).voiced_share < 0.02


@pytest.mark.parametrize("prompt", ["lofi", "jazz"])
def test_a_rooster_call_gets_a_part_that_follows_its_pitch(prompt):
    noise, calls = rooster()
    composer = Composer(prompt=prompt, seed=0, progress=False)
    music = composer(noise, SR)
    score = read_midi(composer.last_midi)
    part = next((p for p in score.parts if p.name == "Noise voice"), None)
    assert part is not None and len(part.notes) >= 2
    key = composer.last_arrangement.key
    cents = key.tuning_cents / 100.0
    covered = 0.0
    for on, off, pitch, _ in part.notes:  # pitch: MIDI plus the key's tuning
        mid = pitch_at(0.5 * (on + off), calls)
        assert mid is not None, f"a note at {on:.2f}-{off:.2f} s, outside the calls"
        # the note is the call's pitch up to the key's nearest tone (and octaves)
        diff = (pitch - mid + 6) % 12 - 6
        assert abs(diff) <= 1.6
        covered += off - on
    assert covered >= 0.5 * sum(e - s for s, e in calls)
    assert all(key.contains(int(round(p - cents)) % 12) for p in part.notes[:, 2])  # in the key
    again = render_midi(composer.last_midi, SR)
    np.testing.assert_array_equal(music, again)  # the part is in the exported MIDI


def tick_train(bpm: float = 96.0, seconds: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Sharp ticks (2 ms bursts at 3 kHz) at ``bpm`` over quiet noise, and their times."""
    rng = np.random.default_rng(5)
    x = 0.003 * rng.standard_normal(int(seconds * SR))
    times = np.arange(0.37, seconds - 0.1, 60.0 / bpm)
    t = np.arange(int(0.004 * SR)) / SR
    tick = np.sin(2 * np.pi * 3000 * t) * np.exp(-t / 0.0008)
    for s in times:
        i = int(s * SR)
        x[i:i + tick.size] += 0.8 * tick
    return x.astype(np.float32)[None], times


def test_a_tick_train_gets_a_part_that_follows_its_pulse():
    noise, times = tick_train()
    composer = Composer(prompt="lofi", seed=0, progress=False)
    composer(noise, SR)
    heard = composer.last_listening
    assert heard.pulse.locked
    # the beat is the ticks' period (or a simple ratio of it)
    ratio = heard.pulse.period_s / (60.0 / 96.0)
    assert min(abs(ratio - r) for r in (0.5, 1.0, 2.0)) < 0.02
    score = read_midi(composer.last_midi)
    hits = next(p for p in score.parts if p.name == "Noise hits")
    onsets = hits.notes[:, 0]
    near = [np.min(np.abs(onsets - s)) <= 0.02 for s in times]
    assert np.mean(near) >= 0.8  # (almost) every tick is doubled, on time
    beats = score.beat_times(noise.shape[1] / SR)
    on_beat = [np.min(np.abs(beats - s)) <= 0.02 for s in times]
    assert np.mean(on_beat) >= 0.8
