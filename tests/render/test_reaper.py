"""REAPER import: the tokenizer, every shared project, known values, missing media."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from blendfx import SessionError
from blendfx.render.reaper import import_reaper, parse_rpp, tokenize_line
from blendfx.render.session import load_session

from ..conftest import shared
from ..sessionkit import tone, write_stem


def projects() -> list[Path]:
    root = shared("sessions", "reaper")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() == ".rpp")


def test_tokenizer_quotes():
    assert tokenize_line('NAME "two words"') == ["NAME", "two words"]
    assert tokenize_line("NAME '\"hey'") == ["NAME", '"hey']
    assert tokenize_line('NAME hey"') == ["NAME", 'hey"']
    assert tokenize_line("NAME `it's \"x\"`") == ["NAME", "it's \"x\""]
    assert tokenize_line('FILE "C:\\a b\\c.wav" 1') == ["FILE", "C:\\a b\\c.wav", "1"]
    assert tokenize_line('SAMPLES "" ""') == ["SAMPLES", "", ""]
    assert tokenize_line("NAME <>") == ["NAME", "<>"]


def test_every_shared_project_imports(tmp_path):
    found = projects()
    assert len(found) == 5
    for path in found:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            result = import_reaper(path, tmp_path / f"{path.stem}.toml")
        assert result.path.is_file()
        text = result.path.read_text()
        assert text.startswith(f"# blendfx session imported from {path.name}")
        if result.tracks:  # the written manifest parses (media is missing: not checked)
            s = load_session(result.path, check_files=False)
            assert len(s.tracks) == len(result.tracks) + len(result.buses)


def test_known_values_with_external_files(tmp_path):
    path = shared("sessions", "reaper", "griffinsauce", "with-external-files.rpp")
    with pytest.warns(UserWarning, match="media file not found"):
        result = import_reaper(path)
    s = result.manifest["session"]
    assert s["sample_rate"] == 48000 and s["tempo"] == 205.0 and s["time_signature"] == "4/4"
    # 88 items: 40 MIDI, 44 WavPack and 4 WAV media items; the 38 MIDI items of the drum
    # track become one MIDI track (the folder track's 2, on a track without an instrument,
    # are silent in REAPER: reported, not rendered)
    assert len(result.tracks) == 49 and result.midi_items == 38
    assert any("without an instrument" in w and "2 on 'Drums'" in w for w in result.warnings)
    assert [b["name"] for b in result.buses] == ["Drums", "Track 5", "Vocals map"]
    # every referenced media file is missing here, and each is reported by name
    assert len(result.missing_media) == 48
    assert any(m.endswith("media/06-Left-201115_1121.wv") for m in result.missing_media)
    assert any(m.startswith("D:/OneDrive") for m in result.missing_media)
    by_name = {t["name"]: t for t in result.tracks}
    first = by_name["Left #1"]  # track 'Left' (MUTESOLO 1): VOLPAN 1 -0.504
    assert first["file"].endswith("media/06-Left-201115_1121.wv")
    assert first["offset"] == pytest.approx(28.0975625)
    assert first["duration"] == pytest.approx(21.53495833333333)
    assert first["pan"] == pytest.approx(-0.504) and first["mute"] is True
    assert first["fade_in"] == pytest.approx(0.01)
    assert by_name["Left #2"]["gain_db"] == -150.0  # item VOLPAN 0: silent, muted
    second = by_name["Left (2) #1"]  # the second track named "Left": its first item
    assert second["source_offset"] == pytest.approx(2.04877896341463)
    assert second["offset"] == pytest.approx(141.65853658536585)
    assert "mute" not in second
    # a track volume of 1.99247783185405 is +5.99 dB
    assert any(t.get("gain_db", 0) == pytest.approx(5.988, abs=1e-3) for t in result.tracks)
    assert not any("playback rate" in w for w in result.warnings)  # (rates are applied)
    assert s["allow_outside_paths"] is True


def test_track_names_and_opaque_blocks():
    root = parse_rpp(shared("sessions", "reaper", "perlence", "vst.RPP").read_text())
    names = [t.get("NAME")[0] for t in root.blocks("TRACK")]
    assert names[:4] == ["5.50", "Synth", "|Beep Boop", "Boop"]
    assert names[5:] == ['"hey', 'hey"', "<", ">", "<>"]
    assert names[4].startswith("0123456789 abc") and names[4].endswith("{|}~")
    vst = root.find("TRACK").find("FXCHAIN").find("VST")
    assert vst.attrib[:2] == ["VST: ReaComp (Cockos)", "reacomp.dll"]
    assert vst.raw[-1] == "AAAQAAAA" and not vst.children  # base64 kept raw, never parsed
    notes = list(root.blocks("TRACK"))[1].find("ITEM").find("NOTES")
    assert notes.raw[0] == "|beep  boop"
    empty = parse_rpp(shared("sessions", "reaper", "perlence", "empty.RPP").read_text())
    assert empty.get("SAMPLERATE")[0] == "48000" and len(list(empty.blocks("TRACK"))) == 2


def test_not_a_project(tmp_path):
    p = tmp_path / "x.rpp"
    p.write_text("hello\n")
    with pytest.raises(SessionError, match="not a REAPER project"):
        import_reaper(p)
    p.write_text("<REAPER_PROJECT 0.1\n  <TRACK\n  >\n")
    with pytest.raises(SessionError, match="is not closed"):
        import_reaper(p)
    with pytest.raises(SessionError, match="not found"):
        import_reaper(tmp_path / "nope.rpp")


RPP = """<REAPER_PROJECT 0.1 "7.0/linux" 0
  SAMPLERATE 44100 0 0
  TEMPO 90 3 4
  <TRACK {A}
    NAME "Noise bed"
    VOLPAN 0.5 0.25 -1 -1 1
    MUTESOLO 0 0 0
    <ITEM
      POSITION 0.5
      LENGTH 1.0
      SOFFS 0.25
      VOLPAN 1 0 1 -1
      <SOURCE WAVE
        FILE "audio/bed.wav"
      >
    >
    <ITEM
      POSITION 2
      LENGTH 1
      <SOURCE SECTION
        LENGTH 1
        <SOURCE WAVE
          FILE "audio\\gone.wav"
        >
      >
    >
  >
>
"""


def test_relative_media_imports_and_renders(tmp_path):
    proj = tmp_path / "proj"
    (proj / "audio").mkdir(parents=True)
    write_stem(proj / "audio", "bed.wav", tone(300, 2.0))
    (proj / "song.rpp").write_text(RPP)
    with pytest.warns(UserWarning, match="gone.wav"):
        result = import_reaper(proj / "song.rpp", proj / "session.toml")
    bed, gone = result.tracks
    assert bed["name"] == "Noise bed #1" and bed["file"] == "audio/bed.wav"
    assert bed["gain_db"] == pytest.approx(-6.0206, abs=1e-3) and bed["pan"] == 0.25
    assert (bed["offset"], bed["source_offset"], bed["duration"]) == (0.5, 0.25, 1.0)
    assert gone["file"] == "audio/gone.wav" and result.missing_media == [
        str(proj / "audio" / "gone.wav")]
    assert result.manifest["session"]["time_signature"] == "3/4"
    # the session fails on the missing stem, by name; without it, it renders
    with pytest.raises(SessionError, match="gone.wav"):
        load_session(proj / "session.toml")
    with pytest.warns(UserWarning, match="gone.wav"):
        result = import_reaper(proj / "song.rpp", proj / "session.toml", include_missing=False)
    assert len(result.tracks) == 1 and len(result.missing_media) == 1
    s = load_session(proj / "session.toml")
    assert s.tempo.bpm_at(0) == 90 and s.tempo.beats_per_bar == 3
    from blendfx.render.renderer import render_session

    out = render_session(s, tmp_path / "out", progress=False, figure=False)
    assert out.report["duration_s"] == pytest.approx(1.5)


def test_video_items_import_as_video_tracks(tmp_path):
    from blendfx.effects.video import ShotSpec, write_video

    proj = tmp_path / "proj"
    proj.mkdir()
    write_video(proj / "film.mp4", [ShotSpec(24, "still", 1), ShotSpec(24, "fast", 2)], audio="tone")
    (proj / "film.rpp").write_text("""<REAPER_PROJECT 0.1 "7.0/linux" 0
  SAMPLERATE 44100 0 0
  <TRACK {B}
    NAME "Picture"
    <ITEM
      POSITION 0
      LENGTH 2
      <SOURCE VIDEO
        FILE "film.mp4"
      >
    >
  >
>
""")
    result = import_reaper(proj / "film.rpp", proj / "session.toml")
    (track,) = result.tracks
    assert track["role"] == "video" and track["file"] == "film.mp4"
    assert load_session(proj / "session.toml").tracks[0].role == "video"
