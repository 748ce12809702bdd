"""The Composer's explicit timeline: the data class, fit_tempo, and a piece that follows it."""

from __future__ import annotations

import mido
import numpy as np
import pytest
from blendfx.effects.composer import Composer, Timeline, TimelineError, fit_tempo
from blendfx.effects.composer.arrangement import grid_from_timeline
from blendfx.effects.composer.midi import ticks_to_seconds
from blendfx.errors import ParameterError


def test_timeline_validates():
    with pytest.raises(TimelineError, match="first change must be at 0"):
        Timeline(10.0, [(1.0, 100.0)]).validate()
    with pytest.raises(TimelineError, match="out of range"):
        Timeline(10.0, [(0.0, 1000.0)]).validate()
    with pytest.raises(TimelineError, match="0..1"):
        Timeline(10.0, [(0.0, 100.0)], intensity=[(0.0, 2.0)]).validate()
    with pytest.raises(TimelineError, match="increase"):
        Timeline(10.0, [(0.0, 100.0), (0.0, 90.0)]).validate()
    with pytest.raises(ParameterError, match="Composer.timeline"):
        Composer(timeline=Timeline(-1.0, [(0.0, 100.0)]))
    with pytest.raises(ParameterError, match="must be a Timeline"):
        Composer(timeline={"tempo": 120})


def test_beats_and_bars_across_a_tempo_change():
    tl = Timeline(10.0, [(0.0, 120.0), (4.0, 60.0)], sections=[4.1, 6.0])
    assert tl.beats_at(np.array([2.0, 4.0, 6.0])).tolist() == [4.0, 8.0, 10.0]
    assert tl.beat_to_time(np.array([4.0, 8.0, 10.0])).tolist() == [2.0, 4.0, 6.0]
    assert tl.bar_times()[:4].tolist() == [0.0, 2.0, 4.0, 8.0]
    assert tl.section_bars() == [0, 2]  # 4.1 s moves to the bar line at 4.0 s; 6.0 s (mid-bar) too
    grid = grid_from_timeline(tl, 10.0)
    assert grid.pickup_ticks == 0 and grid.tempo_map.tolist() == [[0, 500000], [3840, 1000000]]
    assert grid.bars == 4


@pytest.mark.parametrize("hits,duration", [([2.5, 4.5, 7.5, 9.58], 12.3), ([3.1, 7.7, 12.0, 19.3], 24.0),
                                          ([0.4, 5.0, 5.6, 11.0], 16.0)])
def test_fit_tempo_puts_hits_on_bar_lines(hits, duration):
    tempo, kept, missed = fit_tempo(duration, hits, tempo_range=(80.0, 130.0))
    assert sorted(kept + missed) == sorted(hits)
    tl = Timeline(duration, tempo, sections=kept).validate()
    bars = tl.bar_times()
    for h in kept:
        assert np.min(np.abs(bars - h)) < 1e-9
    overall = np.exp(np.mean(np.log([b for _, b in tempo])))
    assert all(max(b / overall, overall / b) < 1.8 for _, b in tempo)
    if 0.4 in hits:  # a stretch shorter than any bar cannot keep its hit
        assert 0.4 in missed and (5.6 in missed or 5.0 in missed)


def midi_onsets_s(mid):
    """Note-on times (s) of a MIDI file through its own tempo map, and that map."""
    tm, ons = [], []
    for i, track in enumerate(mid.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if i == 0 and msg.type == "set_tempo":
                tm.append((tick, msg.tempo))
            if msg.type == "note_on" and msg.velocity > 0:
                ons.append(tick)
    return ticks_to_seconds(np.array(ons), np.array(tm), mid.ticks_per_beat), np.array(tm)


def test_a_hand_written_timeline_is_followed(tmp_path):
    sr = 22050
    tl = Timeline(12.0, [(0.0, 96.0), (5.0, 120.0)], sections=[5.0],
                  intensity=[(0.0, 0.05), (4.9, 0.05), (5.0, 1.0), (12.0, 1.0)], hits=[5.0], mode="minor")
    composer = Composer(prompt="pop", seed=1, progress=False, timeline=tl)
    music = composer.process(np.zeros((2, 12 * sr), np.float32), sr)
    assert music.shape == (2, 12 * sr) and np.abs(music).max() > 0.01
    composer.export_midi(tmp_path / "m.mid")
    mid = mido.MidiFile(tmp_path / "m.mid")
    onsets, tm = midi_onsets_s(mid)
    assert tm[:, 1].tolist() == [625000, 500000]
    # the section change is on bar 3 (5.0 s at 96 BPM is exactly 2 bars)
    secs = composer.last_arrangement.sections
    assert [s.start_bar for s in secs] == [0, 2] and secs[0].energy < 0.5 < 0.9 < secs[1].energy
    markers = [m for m in mid.tracks[0] if m.type == "marker"]
    assert len(markers) == 2
    quiet = ((onsets >= 0) & (onsets < 5.0)).sum() / 5.0
    busy = ((onsets >= 5.0) & (onsets < 12.0)).sum() / 7.0
    assert busy >= 1.3 * quiet
    assert composer.last_arrangement.key.mode == "minor"
    # an accent on the hit
    assert np.any(np.abs(onsets - 5.0) < 1e-3)


def test_fit_tempo_short_pieces_and_a_cut_near_the_end():
    for duration in (0.3, 1.0):  # shorter than a bar: one tempo in the range, the end mid-bar
        tempo, kept, missed = fit_tempo(duration, [], tempo_range=(96.0, 124.0), prefer=110.0)
        assert len(tempo) == 1 and 96.0 <= tempo[0][1] <= 124.0 and kept == missed == []
        Timeline(duration, tempo).validate()
    # a cut 0.3 s before the end keeps its bar line; the music ends mid-bar after it
    tempo, kept, missed = fit_tempo(10.0, [9.7], tempo_range=(96.0, 124.0))
    assert kept == [9.7] and missed == []
    tl = Timeline(10.0, tempo)
    assert np.min(np.abs(tl.bar_times() - 9.7)) < 1e-9
    assert tempo[-1][1] == pytest.approx(tempo[0][1], rel=0.01)


def test_meters_from_prompts_and_their_bars():
    from blendfx.effects.composer.timeline import meter_from_prompt

    assert meter_from_prompt("a slow waltz") == "3/4" and meter_from_prompt("folk jig") == "6/8"
    assert meter_from_prompt("piano in 6/8, 70 bpm") == "6/8" and meter_from_prompt("military march") == "2/4"
    assert meter_from_prompt("lofi beats, 16/8 nonsense") is None and meter_from_prompt("ambient") is None
    tl = Timeline(12.0, [(0.0, 90.0)], meter="3/4")
    assert tl.beats_per_bar == 3 and np.allclose(np.diff(tl.bar_times()), 2.0)  # 3 beats at 90 BPM
    assert Timeline(12.0, [(0.0, 90.0)], meter="6/8").bar_times().tolist() == tl.bar_times().tolist()
    with pytest.raises(TimelineError, match="meter"):
        Timeline(12.0, [(0.0, 90.0)], meter="5/4").validate()
    with pytest.raises(TimelineError, match="beats_per_bar"):
        fit_tempo(10.0, [4.0], beats_per_bar=0)
    hits = [3.1, 7.7, 12.0, 19.3]
    tempo, kept, missed = fit_tempo(24.0, hits, tempo_range=(80.0, 130.0), beats_per_bar=3)
    assert kept == hits and not missed
    bars = Timeline(24.0, tempo, meter="3/4").bar_times()
    assert all(np.min(np.abs(bars - h)) < 1e-9 for h in hits)


@pytest.mark.parametrize("meter,signature", [("3/4", (3, 4)), ("6/8", (6, 8))])
def test_a_piece_in_another_meter(tmp_path, meter, signature):
    from blendfx.render.score import midi_bar_times

    sr = 22050
    tempo, kept, _ = fit_tempo(14.0, [4.3, 9.1], tempo_range=(90.0, 120.0), beats_per_bar=3)
    tl = Timeline(14.0, tempo, sections=kept, hits=kept, intensity=[(0.0, 0.9)], meter=meter)
    composer = Composer(prompt="pop", seed=2, progress=False, timeline=tl)
    composer.process(np.zeros((2, 14 * sr), np.float32), sr)
    composer.export_midi(tmp_path / "m.mid")
    mid = mido.MidiFile(tmp_path / "m.mid")
    sigs = [(m.numerator, m.denominator) for t in mid.tracks for m in t if m.type == "time_signature"]
    assert sigs == [signature]
    bars = midi_bar_times(tmp_path / "m.mid", 14.0)
    assert np.allclose(bars[:-1], tl.bar_times()[:bars.size - 1], atol=1e-3)
    assert all(np.min(np.abs(bars - h)) < 1e-3 for h in kept)  # the cuts on the MIDI's bar lines
    # the drums follow the meter's bars: a kick on every downbeat of a bar with drums, snares
    # never on it
    grid = composer.last_arrangement.grid
    assert grid.bar_ticks == 3 * 480 and grid.meter == meter
    drums = next(t for t in composer.last_arrangement.tracks if t.role == "drums").notes
    kicks, snares = drums[drums[:, 2] == 36][:, 0], drums[drums[:, 2] == 38][:, 0]
    bars_with_drums = np.unique(drums[:, 0] // grid.bar_ticks)
    assert bars_with_drums.size >= 5
    assert set((bars_with_drums * grid.bar_ticks).tolist()) <= set(kicks.tolist())
    assert snares.size and np.all(snares % grid.bar_ticks != 0)
    sections = composer.last_arrangement.sections
    assert [s.start_bar for s in sections][:3] == [0] + [int(round(tl.beats_at(np.array([h]))[0] / 3))
                                                        for h in kept]
