"""REAPER projects as they sound: MIDI items on a ramped tempo map, stand-in instruments,
folders as buses, fades, playback rates and take offsets (projects the tests write, and the
shared ones)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import mido
import numpy as np
import pytest
from blendfx import read_audio
from blendfx.effects.composer.synth import render_drums
from blendfx.render.cli import main
from blendfx.render.instruments import choose_voice, find_plugin, plugin_display_name
from blendfx.render.reaper import import_reaper, parse_rpp
from blendfx.render.renderer import render_session
from blendfx.render.rpp_midi import parse_embedded
from blendfx.render.session import TempoMap, load_session, session_from_dict

from ..conftest import shared
from ..sessionkit import tone, write_stem

SR = 44100


# -- helpers -----------------------------------------------------------------------------------
def rpp(body: str, tempo: str = "TEMPO 120 4 4", env: str = "") -> str:
    return (f'<REAPER_PROJECT 0.1 "6.11/x64" 0\n  SAMPLERATE {SR} 0 0\n  {tempo}\n'
            f"{env}{body}>\n")


def track(name: str, items: str = "", *, volpan: str = "1 0", isbus: str = "0 0",
          mutesolo: str = "0 0 0", fx: str = "") -> str:
    return (f'  <TRACK\n    NAME "{name}"\n    VOLPAN {volpan} -1 -1 1\n    MUTESOLO {mutesolo}\n'
            f"    ISBUS {isbus}\n    MAINSEND 1 0\n{fx}{items}  >\n")


def instrument(name: str, preset: str = "") -> str:
    extra = f'    PRESETNAME "{preset}"\n' if preset else ""
    return (f'    <FXCHAIN\n    BYPASS 0 0 0\n    <VST "{name}" x.dll 0 "" 0<00> ""\n'
            f"      AAAA\n    >\n{extra}    >\n")


def midi_item(position: float, length: float, events: list[tuple[int, int, int, int]], *,
              loop: int = 0, soffs: float = 0.0, extra: str = "") -> str:
    lines = "".join(f"        E {d} {s:02x} {a:02x} {b:02x}\n" for d, s, a, b in events)
    return (f"    <ITEM\n      POSITION {position}\n      LENGTH {length}\n      LOOP {loop}\n"
            f"      SOFFS {soffs}\n      VOLPAN 1 0 1 -1\n{extra}"
            f"      <SOURCE MIDI\n        HASDATA 1 960 QN\n{lines}      >\n    >\n")


def audio_item(file: str, position: float, length: float, extra: str = "") -> str:
    return (f"    <ITEM\n      POSITION {position}\n      LENGTH {length}\n{extra}"
            f'      <SOURCE WAVE\n        FILE "{file}"\n      >\n    >\n')


def kicks(count: int, every: int = 1920, key: int = 36, end: int | None = None
          ) -> list[tuple[int, int, int, int]]:
    """Note on/off pairs on channel 10, one every ``every`` ticks (note length 240)."""
    ev = []
    for i in range(count):
        ev.append((0 if i == 0 else every - 240, 0x99, key, 100))
        ev.append((240, 0x89, key, 0))
    if end is not None:
        ev.append((end, 0xB9, 123, 0))  # REAPER's end-of-source marker
    return ev


def onsets(x: np.ndarray, gap: int = 2000) -> np.ndarray:
    """Sample indices where sound starts after at least ``gap`` silent samples."""
    loud = np.flatnonzero(np.abs(x).max(axis=0) > 0)
    if loud.size == 0:
        return loud
    starts = [loud[0]] + [b for a, b in zip(loud, loud[1:], strict=False) if b - a > gap]
    return np.array(starts)


def beats_reference(points: list[tuple[float, float, bool]], t: float) -> float:
    """Quarter notes at ``t`` s, integrating a tempo that is linear in time between ramp
    points (written independently of TempoMap: a midpoint sum at 0.1 ms steps)."""
    dt = 1e-4
    grid = np.arange(0.0, t, dt) + dt / 2
    starts = np.array([p[0] for p in points])
    k = np.searchsorted(starts, grid, side="right") - 1
    t0, b0 = starts[k], np.array([p[1] for p in points])[k]
    nxt = np.minimum(k + 1, len(points) - 1)
    ramp = np.array([p[2] for p in points])[k] & (nxt != k)
    t1, b1 = starts[nxt], np.array([p[1] for p in points])[nxt]
    slope = np.where(ramp, (b1 - b0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0)
    return float((b0 + slope * (grid - t0)).sum() * dt / 60.0)


def seconds_reference(points: list[tuple[float, float, bool]], q: float) -> float:
    lo, hi = 0.0, 60.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if beats_reference(points, mid) < q else (lo, mid)
    return 0.5 * (lo + hi)


def no_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Look for plug-ins only in an empty folder (a machine without the project's plug-ins)."""
    empty = tmp_path / "no-plugins"
    empty.mkdir(exist_ok=True)
    monkeypatch.setattr("blendfx.render.instruments.plugin_folders", lambda: [empty])


# -- tempo -------------------------------------------------------------------------------------
RAMPS = [(0.0, 100.0, True), (6.0, 140.0, False), (10.0, 80.0, True), (14.0, 120.0, False)]
TEMPO_ENV = ("  <TEMPOENVEX\n    ACT 1 -1\n    DEFSHAPE 1 -1 -1\n"
             "    PT 0 100 0\n    PT 6 140 1 262147\n    PT 10 80 0\n    PT 14 120 1 262148\n  >\n")


def test_tempo_map_ramps_are_linear_in_time():
    tm = TempoMap(tuple((t, b) for t, b, _ in RAMPS), 4.0, tuple(r for *_, r in RAMPS))
    # a ramp of T s from b0 to b1 lasts T (b0 + b1) / 120 beats
    assert tm.seconds_to_beats(6.0) == pytest.approx(6.0 * 240 / 120)
    assert tm.bpm_at(3.0) == pytest.approx(120.0) and tm.bpm_at(12.0) == pytest.approx(100.0)
    for t in (0.7, 3.3, 6.0, 8.2, 11.9, 15.0):
        assert tm.seconds_to_beats(t) == pytest.approx(beats_reference(RAMPS, t), abs=1e-6)
        assert tm.beats_to_seconds(tm.seconds_to_beats(t)) == pytest.approx(t, abs=1e-9)


def test_meters_start_bars():
    tm = TempoMap(((0.0, 120.0),), 4.0, (), ((4.0, 3, 4),))  # 2 bars of 4/4, then 3/4
    assert tm.bars_to_seconds(2) == pytest.approx(4.0)
    assert tm.bars_to_seconds(3) == pytest.approx(5.5)
    s = session_from_dict({"session": {"tempo": [[0, 100, "linear"], [6, 140]],
                                       "meters": [[4.0, 3, 4]]},
                           "tracks": [{"name": "a", "file": "a.wav"}]}, ".", check_files=False)
    assert s.tempo.ramps == (True, False) and s.tempo.meters == ((4.0, 3, 4),)
    assert s.to_dict()["session"]["tempo"] == [[0, 100, "linear"], [6, 140]]


# -- MIDI --------------------------------------------------------------------------------------
def test_embedded_events_ccs_and_bends():
    root = parse_rpp(rpp(track("k", midi_item(0, 4, [
        (0, 0x90, 60, 100), (0, 0xB0, 7, 90), (480, 0xE0, 0, 0x60), (480, 0x80, 60, 0),
        (0, 0x90, 62, 80), (960, 0x90, 62, 0), (960, 0xB0, 123, 0)]))))
    src = parse_embedded(next(root.find("TRACK").blocks("ITEM")).find("SOURCE"))
    assert src.length_qn == pytest.approx(3.0)  # 2880 ticks at 960 per quarter
    assert src.notes.tolist() == [[0.0, 1.0, 0, 60, 100], [1.0, 2.0, 0, 62, 80]]
    kinds = [(q, st, a, b) for q, st, a, b in src.events]
    assert (0.0, 0xB0, 7, 90) in kinds and (0.5, 0xE0, 0, 0x60) in kinds


def test_midi_onsets_follow_the_ramped_tempo_map(tmp_path, monkeypatch):
    no_plugins(monkeypatch, tmp_path)
    items = (midi_item(0.5, 19.0, kicks(12))  # a kick every 2 quarters across the ramps
             # a looped 2-quarter source at 120 BPM: a kick every second
             + midi_item(20.0, 5.0, kicks(1, end=1920 - 240), loop=1)
             # a take offset of 1 quarter (0.5 s at 120 BPM): only the second kick plays
             + midi_item(26.0, 2.0, kicks(2, end=240), soffs=0.5))
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "p.rpp").write_text(rpp(track("Kick drum", items, fx=instrument(
        "VSTi: Superior Drummer 3 (Toontrack)")), "TEMPO 100 4 4", TEMPO_ENV))
    result = import_reaper(proj / "p.rpp", proj / "session.toml")
    s = result.manifest["session"]
    assert s["tempo"] == [[0, 100, "linear"], [6, 140], [10, 80, "linear"], [14, 120]]
    assert s["time_signature"] == "4/4" and s["meters"] == [[6.0, 3, 4], [14.0, 4, 4]]
    (entry,) = result.tracks
    assert entry["instrument"]["voice"] == "drums"
    assert len(result.stand_ins) == 1 and "Superior Drummer 3" in result.stand_ins[0]
    q0 = beats_reference(RAMPS, 0.5)
    want = [seconds_reference(RAMPS, q0 + 2 * k) for k in range(12)]
    want += [20.0 + k for k in range(5)] + [26.5]
    # the written MIDI file
    mid = mido.MidiFile(proj / entry["midi"])
    t, got = 0.0, []
    for msg in mid:
        t += msg.time
        if msg.type == "note_on" and msg.velocity:
            got.append(t)
    assert np.abs(np.array(got) - want).max() < 1e-3
    # the rendered stem: every kick starts within 1 ms of the tempo map
    session = load_session(proj / "session.toml")
    assert session.length == pytest.approx(28.0)
    out = render_session(session, tmp_path / "out", progress=False, figure=False)
    audio, _ = read_audio(out.stems["Kick drum"])
    assert audio.shape[1] == round(28.0 * SR)  # the project's length
    found = onsets(audio) / SR
    assert len(found) == len(want)
    assert np.abs(found - want).max() < 1e-3
    played = out.report["tracks"][0]["reports"][0]
    assert played["effect"] == "instrument" and played["stand_in"] == "drums"
    assert played["for"] == "Superior Drummer 3"


def test_mid_file_sources_play_on_the_project_tempo(tmp_path, monkeypatch):
    no_plugins(monkeypatch, tmp_path)
    proj = tmp_path / "p"
    (proj / "parts").mkdir(parents=True)
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)))  # REAPER ignores it
    for i in range(2):  # kicks on beats 0 and 1 of a 2-beat file, looped
        tr.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=0 if i == 0
                               else 360))
        tr.append(mido.Message("note_off", channel=9, note=36, velocity=0, time=120))
    tr.append(mido.MetaMessage("end_of_track", time=360))
    mid.save(proj / "parts" / "riff.mid")
    item = ("    <ITEM\n      POSITION 2\n      LENGTH 4\n      LOOP 1\n      SOFFS 0\n"
            '      <SOURCE MIDI\n        FILE "parts/riff.mid"\n      >\n    >\n')
    (proj / "p.rpp").write_text(rpp(track("Drums", item, fx=instrument(
        "VST3i: EZdrummer 3 (Toontrack)")), "TEMPO 60 4 4"))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    got = [n[0] for n in _notes(proj / result.tracks[0]["midi"])]
    assert np.allclose(got, [2.0, 3.0, 4.0, 5.0], atol=1e-3)  # 60 BPM: a beat a second


def _notes(path: Path) -> list[tuple[float, int]]:
    t, out = 0.0, []
    for msg in mido.MidiFile(path):
        t += msg.time
        if msg.type == "note_on" and msg.velocity:
            out.append((t, msg.note))
    return out


def test_midi_only_project_renders_with_stand_ins(tmp_path, monkeypatch):
    """Three instrument tracks whose plug-ins are not installed (Kontakt, Absynth, Reaktor)."""
    no_plugins(monkeypatch, tmp_path)
    chords = []
    for i, root in enumerate((48, 53, 55, 48)):
        chords += [(0 if i == 0 else 0, 0x90, root + k, 90) for k in (0, 4, 7)]
        chords += [(1920 if k == 0 else 0, 0x80, root + k, 0) for k in (0, 4, 7)]
    bass = []
    for root in (36, 41, 43, 36):
        bass += [(0, 0x90, root, 100), (1800, 0x80, root, 0), (120, 0xB0, 1, 0)]
    body = (track("Strings", midi_item(0, 8, chords), fx=instrument(
                "VST3i: Kontakt 7 (Native Instruments)", "Cello Ensemble"))
            + track("Atmos", midi_item(1, 7, chords), fx=instrument(
                "VSTi: Absynth 5 (Native Instruments GmbH)"))
            + track("Low end", midi_item(0, 8, bass), fx=instrument(
                "VSTi: Reaktor 6 (Native Instruments GmbH)", "Monark Bass")))
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "p.rpp").write_text(rpp(body))
    result = import_reaper(proj / "p.rpp", proj / "session.toml")
    voices = {t["name"]: t["instrument"]["voice"] for t in result.tracks}
    assert voices == {"Strings": "strings", "Atmos": "pad", "Low end": "bass"}
    assert len(result.stand_ins) == 3
    for plug, line in zip(("Kontakt 7", "Absynth 5", "Reaktor 6"), result.stand_ins,
                          strict=True):
        assert plug in line and "not found" in line
    table = result.table()
    for plug in ("Kontakt 7", "Absynth 5", "Reaktor 6"):
        assert "stand-in" in table and plug in table
    out = render_session(load_session(proj / "session.toml"), tmp_path / "out", progress=False,
                         figure=False)
    assert out.report["duration_s"] == pytest.approx(8.0)
    mix, _ = read_audio(out.mix)
    assert mix.shape[1] == 8 * SR and np.sqrt(np.mean(mix ** 2)) > 0.01
    for name in voices:
        stem, _ = read_audio(out.stems[name])
        assert np.sqrt(np.mean(stem ** 2)) > 1e-3, name
    stand = {t["name"]: t["reports"][0]["stand_in"] for t in out.report["tracks"]}
    assert stand == voices


def test_a_plugin_that_does_not_load_falls_back_to_its_stand_in(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    (folder / "Kontakt 7.vst3").mkdir(parents=True)  # a bundle pedalboard cannot load
    monkeypatch.setattr("blendfx.render.instruments.plugin_folders", lambda: [folder])
    assert find_plugin("VST3i: Kontakt 7 (Native Instruments)") == folder / "Kontakt 7.vst3"
    assert plugin_display_name("VSTi: MT-PowerDrumKit (MANDA AUDIO) (16 out)") == \
        "MT-PowerDrumKit"
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "p.rpp").write_text(rpp(track("Piano", midi_item(0, 2, [
        (0, 0x90, 60, 100), (960, 0x80, 60, 0)]), fx=instrument(
        "VST3i: Kontakt 7 (Native Instruments)"))))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    assert not result.stand_ins  # found at import time
    out = render_session(load_session(proj / "s.toml"), tmp_path / "out", progress=False,
                         figure=False)
    played = out.report["tracks"][0]["reports"][0]
    assert played["stand_in"] == "piano" and "did not load" in played["why"]
    # the plug-in goes away: the next render does not reuse the cached track
    (folder / "Kontakt 7.vst3").rmdir()
    out = render_session(load_session(proj / "s.toml"), tmp_path / "out", progress=False,
                         figure=False)
    played = out.report["tracks"][0]["reports"][0]
    assert not out.report["tracks"][0]["cached"] and "not found" in played["why"]


def test_voice_choice():
    assert choose_voice("Gtr 2")[0] == "guitar"
    assert choose_voice("Track 3", "VSTi: Kontakt 7", "Rhodes Mk II")[0] == "epiano"
    assert choose_voice("", "", "", [33])[0] == "bass"
    assert choose_voice("", "", "", [], drum_channel=True)[0] == "drums"
    assert choose_voice("", "VSTi: Kontakt 7 (Native Instruments)")[0] == "piano"
    # whole words: a deep pad is no electric piano, a bassoon no bass, "what" no hi-hat
    assert [choose_voice(n)[0] for n in ("Deep pad", "Bassoon", "Hi-hat", "Arp", "Harp")] == [
        "pad", "reed", "drums", "pluck", "harp"]
    assert choose_voice("What")[1] == "nothing names the instrument (default)"


# -- folders, fades, rates -----------------------------------------------------------------------
def test_folders_nested_three_deep_sum_into_buses(tmp_path):
    proj = tmp_path / "p"
    (proj / "a").mkdir(parents=True)
    write_stem(proj / "a", "t.wav", tone(300, 2.0))
    write_stem(proj / "a", "u.wav", tone(500, 2.0))
    body = (track("Band", volpan="1 -0.5", isbus="1 1")
            + track("Group", volpan="0.5 0", isbus="1 1")
            + track("Inner", volpan="2 0", isbus="1 1")
            + track("Tone", audio_item("a/t.wav", 0, 2), volpan="0.5 0", isbus="2 -3")
            + track("Other", audio_item("a/u.wav", 0, 2), volpan="0.25 0"))
    (proj / "p.rpp").write_text(rpp(body))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    assert [(b["name"], b.get("bus")) for b in result.buses] == [
        ("Band", None), ("Group", "Band"), ("Inner", "Group")]
    assert {t["name"]: t.get("bus") for t in result.tracks} == {"Tone": "Inner", "Other": None}
    s = load_session(proj / "s.toml")
    s.master.target_lufs = None
    out = render_session(s, tmp_path / "out", progress=False, figure=False)
    assert set(out.stems) == {"Band", "Other"}  # the mix's inputs
    band, _ = read_audio(out.stems["Band"])
    other, _ = read_audio(out.stems["Other"])
    x = tone(300, 2.0)[0]
    inner = x * 0.5 * math.cos(math.pi / 4) * 2.0 * 0.5  # track fader, pan law, Inner, Group
    theta = (-0.5 + 1) * math.pi / 4  # Band's balance at -0.5: the right side turned down
    assert np.allclose(band[0], inner * min(1, math.sqrt(2) * math.cos(theta)), atol=1e-4)
    assert np.allclose(band[1], inner * math.sqrt(2) * math.sin(theta), atol=1e-4)
    assert np.allclose(other[0], tone(500, 2.0)[0] * 0.25 * math.cos(math.pi / 4), atol=1e-4)
    mix, _ = read_audio(out.mix)
    assert np.allclose(mix, band + other, atol=1e-4)  # the buses sum into the mix


def test_bus_chain_mute_and_solo(tmp_path):
    write_stem(tmp_path, "t.wav", tone(300, 1.0))
    manifest = {"session": {"sample_rate": SR}, "master": {"target_lufs": False},
                "tracks": [{"name": "t", "file": "t.wav", "bus": "b"},
                           {"name": "u", "file": "t.wav", "bus": "c", "mute": True},
                           {"name": "v", "file": "t.wav"}],
                "buses": [{"name": "b", "chain": {"type": "Chain", "plugins": [
                    {"type": "pedalboard.Gain", "gain_db": -6.0}]}},
                          {"name": "c", "bus": "b"}]}
    s = session_from_dict(manifest, tmp_path)
    assert [t.name for t in s.audible()] == ["t", "v", "b", "c"]
    out = render_session(s, tmp_path / "out", progress=False, figure=False)
    b, _ = read_audio(out.stems["b"])
    assert np.allclose(b[0], tone(300, 1.0)[0] * math.cos(math.pi / 4) * 10 ** (-6 / 20),
                       atol=1e-4)
    solo = session_from_dict({**manifest, "tracks": [
        {"name": "t", "file": "t.wav", "bus": "b", "solo": True},
        {"name": "v", "file": "t.wav"}]}, tmp_path)
    assert [t.name for t in solo.audible()] == ["t", "b"]  # the soloed track's bus plays
    with pytest.raises(Exception, match="names no bus"):
        session_from_dict({**manifest, "buses": []}, tmp_path)
    with pytest.raises(Exception, match="cycle"):
        session_from_dict({"tracks": [{"name": "t", "file": "t.wav", "bus": "b"}],
                           "buses": [{"name": "b", "bus": "c"}, {"name": "c", "bus": "b"}]},
                          tmp_path)


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * SR / len(x))


def test_fades_rates_and_take_offsets(tmp_path):
    proj = tmp_path / "p"
    (proj / "a").mkdir(parents=True)
    t = np.arange(4 * SR) / SR
    # 300 Hz for a second, then 500 Hz: where a take starts in the file shows in its pitch
    x = 0.3 * np.sin(2 * np.pi * np.where(t < 1.0, 300 * t, 300 + 500 * (t - 1.0)))
    write_stem(proj / "a", "s.wav", x[None].astype(np.float32))
    body = (track("Faded", audio_item("a/s.wav", 0, 2, "      FADEIN 1 0.5 0 1 0 0\n"
                                                      "      FADEOUT 1 0.25 0 1 0 0\n"))
            + track("Fast", audio_item("a/s.wav", 0, 1.5, "      PLAYRATE 2 0 0 -1 0 0.0025\n"))
            + track("Slow", audio_item("a/s.wav", 0, 1.5, "      PLAYRATE 0.5 1 0 -1 0 0.0025\n"))
            + track("Up", audio_item("a/s.wav", 0, 0.9, "      PLAYRATE 1 1 12 -1 0 0.0025\n"))
            + track("Late", audio_item("a/s.wav", 0, 1.0, "      SOFFS 1.5\n")))
    (proj / "p.rpp").write_text(rpp(body))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    by = {t["name"]: t for t in result.tracks}
    assert (by["Fast"]["rate"], by["Fast"].get("preserve_pitch")) == (2.0, None)
    assert (by["Slow"]["rate"], by["Slow"]["preserve_pitch"]) == (0.5, True)
    assert by["Up"]["pitch"] == 12 and by["Late"]["source_offset"] == 1.5
    s = load_session(proj / "s.toml")
    s.master.target_lufs = None
    out = render_session(s, tmp_path / "out", progress=False, figure=False)
    stem = {n: read_audio(p)[0][0] / math.cos(math.pi / 4) for n, p in out.stems.items()}
    # fades: equal-power, 0.5 s in and 0.25 s out
    f = stem["Faded"]
    assert np.abs(f[:50]).max() < 0.01
    for at, gain in ((0.25, math.sin(math.pi / 4)), (0.125, math.sin(math.pi / 8)),
                     (0.8, 1.0), (1.875, math.sin(math.pi / 4)), (1.9375, math.sin(math.pi / 8))):
        i = int(at * SR)  # (one period of 300 Hz either side)
        assert abs(f[i - 80:i + 80]).max() == pytest.approx(0.3 * gain, rel=0.03), at
    # rate 2 without preserved pitch: an octave up, the file's second at 0.5 s
    fast = stem["Fast"]
    assert peak_hz(fast[:int(0.45 * SR)]) == pytest.approx(600, abs=5)
    assert peak_hz(fast[int(0.55 * SR):int(1.45 * SR)]) == pytest.approx(1000, abs=5)
    assert np.abs(fast[int(1.5 * SR) + 10:]).max() < 1e-6  # the item's length
    # rate 0.5 with preserved pitch: the same pitch, the change at 2 s... past the item (1.5 s)
    slow = stem["Slow"]
    assert peak_hz(slow[int(0.1 * SR):int(1.4 * SR)]) == pytest.approx(300, abs=5)
    assert np.sqrt(np.mean(slow[int(0.1 * SR):int(1.4 * SR)] ** 2)) > 0.15
    # +12 semitones, rate 1
    assert peak_hz(stem["Up"][int(0.1 * SR):int(0.85 * SR)]) == pytest.approx(600, abs=8)
    # take offset 1.5 s: the 500 Hz part from the start
    assert peak_hz(stem["Late"][:int(0.95 * SR)]) == pytest.approx(500, abs=5)


# -- the shared projects -----------------------------------------------------------------------
def test_shared_project_drum_midi_lands_on_the_tempo_map(tmp_path, monkeypatch):
    no_plugins(monkeypatch, tmp_path)
    path = shared("sessions", "reaper", "griffinsauce", "with-external-files.rpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (its audio media is missing)
        result = import_reaper(path, tmp_path / "s.toml")
    drums = next(t for t in result.tracks if t["name"] == "MT-PowerDrumKit")
    assert drums["instrument"]["voice"] == "drums" and drums["bus"] == "Drums"
    assert any("MT-PowerDrumKit" in s for s in result.stand_ins)
    # every note-on of the track's items, by hand: 205 BPM, 960 ticks per quarter, looped
    root = parse_rpp(path.read_text(errors="replace"))
    tr = next(t for t in root.blocks("TRACK") if t.get("NAME") == ["MT-PowerDrumKit"])
    hits = []
    for item in tr.blocks("ITEM"):
        pos, length = float(item.get("POSITION")[0]), float(item.get("LENGTH")[0])
        src = item.find("SOURCE")
        tick, ons = 0, []
        for line in src.children:
            if isinstance(line, list) and line and line[0] in ("E", "e"):
                tick += int(line[1])
                if int(line[2], 16) & 0xF0 == 0x90 and int(line[4], 16) > 0:
                    ons.append((tick, int(line[3], 16), int(line[4], 16)))
        span = tick / 960 * 60 / 205
        k = 0
        while k == 0 or (item.get("LOOP")[0] == "1" and k * span < length - 1e-9):
            hits += [(pos + k * span + o / 960 * 60 / 205, key, vel) for o, key, vel in ons
                     if k * span + o / 960 * 60 / 205 < length - 1e-9]
            k += 1
    want = [h[0] for h in hits]
    got = [t for t, _ in _notes(tmp_path / drums["midi"])]
    assert len(got) == len(want) > 100
    assert np.abs(np.sort(got) - np.sort(want)).max() < 1e-3
    # a 12-second excerpt of the drum track renders (through its folder bus)
    s = load_session(tmp_path / "s.toml", check_files=False)
    s.tracks = [t for t in s.tracks if t.name in ("MT-PowerDrumKit", "Drums")]
    s.length = 12.0
    out = render_session(s, tmp_path / "out", progress=False, figure=False)
    audio, sr = read_audio(out.stems["Drums"])
    assert sr == 48000 and audio.shape[1] == 12 * sr
    first = min(want)
    assert np.abs(audio[:, :int((first - 0.01) * sr)]).max() == 0
    assert np.sqrt(np.mean(audio[:, int(first * sr):] ** 2)) > 0.01
    assert abs(onsets(audio, gap=200)[0] / sr - first) < 1e-3
    # every hit where the tempo map puts it: the kit played at the times computed by hand (on
    # the written files' 0.25 ms grid) is the rendered stem, up to the faders' gains
    grid = np.array([[round(t * 4000) / 4000, t + 0.05, key, vel] for t, key, vel in hits
                     if t < 12.0])
    ref = render_drums(grid, sr, audio.shape[1])
    for ch in range(2):
        gain = float(audio[ch] @ ref[ch] / (ref[ch] @ ref[ch]))
        assert gain > 0.1
        assert np.abs(audio[ch] - gain * ref[ch]).max() < 1e-3 * np.abs(audio[ch]).max()


def test_active_take_sends_and_unplayed_midi_are_reported(tmp_path, monkeypatch):
    no_plugins(monkeypatch, tmp_path)
    proj = tmp_path / "p"
    (proj / "a").mkdir(parents=True)
    write_stem(proj / "a", "one.wav", tone(300, 1.0))
    write_stem(proj / "a", "two.wav", tone(500, 1.0))
    takes = ('    <ITEM\n      POSITION 0\n      LENGTH 1\n      NAME one\n      SOFFS 0\n'
             '      <SOURCE WAVE\n        FILE "a/one.wav"\n      >\n      TAKE SEL\n'
             '      NAME two\n      SOFFS 0.25\n      <SOURCE WAVE\n        FILE "a/two.wav"\n'
             '      >\n    >\n')
    body = (track("Takes", takes)
            + track("Pad", midi_item(0, 2, [(0, 0x90, 60, 100), (0, 0xB0, 1, 64),
                                            (0, 0xD0, 30, 0), (960, 0x80, 60, 0)]),
                    fx=instrument("VSTi: Omnisphere (Spectrasonics)")).replace(
                "    MAINSEND 1 0\n", "    MAINSEND 1 0\n    AUXRECV 0 0 1 0 0 0 0 0 0 -1:U 0 -1 ''\n"))
    (proj / "p.rpp").write_text(rpp(body))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    takes_track = next(t for t in result.tracks if t["name"] == "Takes")
    assert takes_track["file"] == "a/two.wav" and takes_track["source_offset"] == 0.25
    groups = result.not_rendered
    assert groups["inactive takes (not rendered: the active take plays)"] == ["Takes"]
    assert any("'Takes' -> 'Pad'" in w for w in groups[
        "sends between tracks not applied (each track plays into its folder or the master only)"])
    assert groups["MIDI the stand-in voices do not play"] == [
        "CC 1, channel aftertouch on 'Pad'"]
    assert sum(w.startswith("inactive takes") for w in result.warnings) == 1  # said once


def test_cli_import_report_and_render_say_the_stand_ins(tmp_path, monkeypatch, capsys):
    no_plugins(monkeypatch, tmp_path)
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "p.rpp").write_text(rpp(track("Bass", midi_item(0, 2, [
        (0, 0x90, 36, 100), (960, 0x80, 36, 0)]), fx=instrument(
        "VSTi: Reaktor 6 (Native Instruments GmbH)"))))
    assert main(["session", "import", str(proj / "p.rpp"), "-o", str(proj / "s.toml"),
                 "--report"]) == 0
    out = capsys.readouterr().out
    assert "Bass" in out and "stand-in bass for Reaktor 6" in out
    assert main(["render", str(proj / "s.toml"), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert main(["render", str(proj / "s.toml"), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "stand-in: 'Bass' played by the bass voice for Reaktor 6" in out
