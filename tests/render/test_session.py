"""Session manifests: parsing, validation naming the key, paths, tempo maps, render order."""

from __future__ import annotations

import mido
import pytest
from blendfx import SessionError
from blendfx.render.session import TempoMap, load_session, save_session, session_from_dict

from ..conftest import shared
from ..sessionkit import basic_session, tone, write_session, write_stem


def manifest(**track):
    return {"session": {"sample_rate": 44100},
            "tracks": [{"name": "a", "file": "a.wav", **track}]}


@pytest.fixture
def folder(tmp_path):
    write_stem(tmp_path, "a.wav", tone(100, 0.5))
    return tmp_path


def test_basic_session_fields(tmp_path):
    s = load_session(basic_session(tmp_path / "s"))
    assert s.sample_rate == 44100 and s.tempo.bpm_at(0) == 120
    assert s.master.target_lufs == -18.0 and s.master.format == "wav" and s.master.bit_depth == 24
    noise, music = s.tracks
    assert noise.gain_db == -2.0 and noise.pan == -0.5 and noise.role == "noise"
    assert music.offset == 0.25 and music.sidechain == {"sidechain": "noise"}
    assert [t.name for t in s.render_order()] == ["noise", "music"]
    chain = music.build_chain()
    assert [type(p).__name__ for p in chain] == ["Ducker", "Utility"]
    assert s.name == "session"


@pytest.mark.parametrize("track, key", [
    ({"gain_db": "loud"}, "gain_db = 'loud' must be a number"),
    ({"gain_db": 99.0}, r"gain_db = 99.0 is out of range \[-150, 48\] dB"),
    ({"pan": 2}, "pan = 2 is out of range"),
    ({"role": "drums"}, "role = 'drums' is not one of noise"),
    ({"gian_db": 1}, "unknown key \"tracks\\[0\\] \\('a'\\).gian_db\""),
    ({"mute": 1}, "mute = 1 must be true or false"),
    ({"offset": 1, "offset_bars": 1}, "offset .* or offset_bars, not both"),
    ({"preset": "no-such-preset"}, "unknown preset 'no-such-preset'"),
    ({"chain": {"type": "Chain", "plugins": [{"type": "Utility", "gain_db": 300}]}},
     r"tracks\[0\] \('a'\).chain.plugins\[0\].*gain_db = 300.*out of range"),
    ({"chain": {"type": "pedalboard.Reverb", "room_sise": 0.3}}, "room_sise"),
    ({"chain": {"type": "os.system"}}, "'os.system' is not a known effect"),
    ({"sidechain": "ghost"}, "sidechain = 'ghost' names no track"),
    ({"prompt": "jazz"}, "prompt is given but the track has no generator"),
])
def test_bad_track_values_name_the_key(folder, track, key):
    with pytest.raises(SessionError, match=key):
        session_from_dict(manifest(**track), folder, label="s.toml")


def test_bad_session_and_master_values(folder):
    for data, key in [
        ({"session": {"sample_rate": 10}}, r"session.sample_rate = 10 is out of range"),
        ({"session": {"tempo": "x.mid"}}, "MIDI file not found"),
        ({"session": {"tempo": [[1.0, 100]]}}, "must start at 0 s"),
        ({"session": {"time_signature": "4-4"}}, "time_signature"),
        ({"master": {"format": "mp3"}}, "master.format = 'mp3' is not one of"),
        ({"master": {"format": "flac", "bit_depth": 32}}, "bit_depth = 32 is not available for flac"),
        ({"master": {"true_peak_dbtp": 3}}, "true_peak_dbtp = 3 is out of range"),
        ({"mastr": {}}, "unknown key 'mastr'"),
    ]:
        with pytest.raises(SessionError, match=key):
            session_from_dict({**manifest(), **data}, folder)
    with pytest.raises(SessionError, match="at least one"):
        session_from_dict({"session": {}}, folder)
    with pytest.raises(SessionError, match="used by another track"):
        session_from_dict({"tracks": [{"name": "a", "file": "a.wav"}] * 2}, folder)
    with pytest.raises(SessionError, match="needs a file, or a key"):
        session_from_dict({"tracks": [{"name": "a"}]}, folder)


def test_missing_stem_and_path_escape(folder, tmp_path_factory):
    with pytest.raises(SessionError, match=r"tracks\[0\] \('a'\).file: stem not found: .*b.wav"):
        session_from_dict(manifest(file="b.wav"), folder)
    outside = tmp_path_factory.mktemp("elsewhere")
    write_stem(outside, "x.wav", tone(100, 0.5))
    rel = f"../{outside.name}/x.wav"
    for path in (rel, str(outside / "x.wav")):
        with pytest.raises(SessionError, match="resolves outside the session folder"):
            session_from_dict(manifest(file=path), folder)
    data = manifest(file=rel)
    data["session"]["allow_outside_paths"] = True
    assert session_from_dict(data, folder).tracks[0].file == (outside / "x.wav").resolve()
    # a preset file may not escape either
    with pytest.raises(SessionError, match="preset .* resolves outside"):
        session_from_dict(manifest(preset="../p.toml"), folder)


def test_symlink_escape_is_caught(folder, tmp_path_factory):
    outside = tmp_path_factory.mktemp("target")
    write_stem(outside, "x.wav", tone(100, 0.5))
    (folder / "link.wav").symlink_to(outside / "x.wav")
    with pytest.raises(SessionError, match="outside the session folder"):
        session_from_dict(manifest(file="link.wav"), folder)


def test_cycles_are_named(folder):
    data = {"tracks": [
        {"name": "a", "file": "a.wav", "sidechain": "c"},
        {"name": "b", "key": "a", "sidechain": "a"},
        {"name": "c", "key": "b"},
    ]}
    with pytest.raises(SessionError, match="cycle: a -> c -> b -> a"):
        session_from_dict(data, folder)
    with pytest.raises(SessionError, match="cannot key itself"):
        session_from_dict({"tracks": [{"name": "a", "file": "a.wav", "sidechain": "a"}]}, folder)


def test_render_order_and_audible(folder):
    data = {"tracks": [
        {"name": "music", "key": "noise", "role": "music"},
        {"name": "voice", "file": "a.wav", "sidechain": {"duck": "music"}, "solo": True},
        {"name": "noise", "file": "a.wav", "role": "noise", "mute": True},
    ]}
    s = session_from_dict(data, folder)
    assert [t.name for t in s.render_order()] == ["noise", "music", "voice"]
    assert [t.name for t in s.audible()] == ["voice"]
    # rendering the soloed voice needs its key and that key's key
    assert [t.name for t in s.render_order(s.audible())] == ["noise", "music", "voice"]


def test_generator_track_and_seed(folder):
    data = {"session": {"seed": 7}, "tracks": [
        {"name": "n", "file": "a.wav", "role": "noise"},
        {"name": "m", "key": "n", "generator": {"type": "Utility", "gain_db": -3.0},
         "chain": {"type": "Chain", "plugins": [{"type": "Utility"}, {"type": "pedalboard.Gain"}]}},
    ]}
    s = session_from_dict(data, folder)
    m = s.track("m")
    assert m.generated and m.sidechain == {"sidechain": "n"}
    chain = m.build_chain()
    assert type(chain[0]).__name__ == "Utility" and chain[0].gain_db == -3.0
    assert chain[0].seed == 7 and chain[1][0].seed == 7
    s.reseed(11)
    assert m.build_chain()[1][0].seed == 11
    with pytest.raises(SessionError, match="no generator"):
        session_from_dict({"tracks": [{"name": "a", "file": "a.wav", "prompt": "x"}]}, folder)


def test_tempo_map_from_midi(tmp_path):
    slakh = TempoMap.from_midi(shared("stems", "babyslakh", "MIDI", "S00.mid"))
    assert slakh.bpm_at(0) == pytest.approx(80.01, abs=0.01)
    groove = TempoMap.from_midi(shared("midi", "groove", "1_funk-groove1_138_beat_4-4.mid"))
    assert groove.bpm_at(0) == pytest.approx(138, abs=0.01) and groove.beats_per_bar == 4
    assert groove.bars_to_seconds(2) == pytest.approx(8 * 60 / 138, rel=1e-6)
    # Nottingham tunes have no tempo event: MIDI's default 120 BPM
    folk = TempoMap.from_midi(shared("midi", "nottingham", "ashover1.mid"))
    assert folk.bpm_at(10) == 120.0
    # a tempo change mid-file, and 6/8
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    tr += [mido.MetaMessage("time_signature", numerator=6, denominator=8, time=0),
           mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
           mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150), time=480 * 4)]
    mid.tracks.append(tr)
    mid.save(tmp_path / "t.mid")
    tm = TempoMap.from_midi(tmp_path / "t.mid")
    assert tm.beats_per_bar == 3.0
    assert tm.points == ((0.0, 100.0), (pytest.approx(2.4), 150.0))
    assert tm.beats_to_seconds(4) == pytest.approx(2.4)
    assert tm.beats_to_seconds(7) == pytest.approx(2.4 + 3 * 60 / 150)
    assert tm.bars_to_seconds(2) == pytest.approx(2.4 + 2 * 60 / 150)


def test_offset_in_bars_uses_the_tempo_map(folder):
    (folder / "tempo.mid").write_bytes(shared("midi", "groove", "1_funk-groove1_138_beat_4-4.mid")
                                       .read_bytes())
    data = manifest(offset_bars=1)
    data["session"]["tempo"] = "tempo.mid"
    s = session_from_dict(data, folder)
    assert s.tracks[0].offset == pytest.approx(4 * 60 / 138, rel=1e-6)
    data["session"]["tempo"] = [[0.0, 60.0], [2.0, 120.0]]
    data["tracks"][0]["offset_bars"] = 1  # 4 beats: 2 at 60 BPM (2 s), 2 at 120 BPM (1 s)
    assert session_from_dict(data, folder).tracks[0].offset == pytest.approx(3.0)


def test_save_and_reload_round_trip(tmp_path):
    s = load_session(basic_session(tmp_path / "s"))
    path = save_session(s, tmp_path / "s" / "copy.toml", header="a copy")
    assert path.read_text().startswith("# a copy\n")
    s2 = load_session(path)
    assert s2.to_dict()["tracks"] == s.to_dict()["tracks"]
    assert [t.build_chain() for t in s2.tracks] == [t.build_chain() for t in s.tracks]


def test_not_toml(tmp_path):
    p = write_session(tmp_path, {"tracks": []})
    p.write_text("[session\n")
    with pytest.raises(SessionError, match="not valid TOML"):
        load_session(p)
    with pytest.raises(SessionError, match="not found"):
        load_session(tmp_path / "missing.toml")
