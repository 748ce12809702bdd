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
    # every referenced media file is missing here, and each is reported by name, once
    assert len(result.missing_media) == len(set(result.missing_media)) == 27
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
    # the path guard stays on: the media's folder is named, nothing else is let out
    assert "allow_outside_paths" not in s
    assert s["media_roots"] == ["D:/OneDrive/Coral Springs/Muziek/0. Nu projecten/Like Noordzee/"
                                "Versie 2/media"]  # the Windows paths' folder


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


def _rpp(items: list[tuple[str, str]], mute: bool = False) -> str:
    """A small REAPER project: one track per (file, PLAYRATE) pair."""
    tracks = "".join(
        f"  <TRACK\n    NAME t{i}\n    MUTESOLO {int(mute)} 0 0\n    <ITEM\n      POSITION 0\n"
        f"      LENGTH 0.5\n      PLAYRATE {rate} 1 0 -1 0 0.0025\n      <SOURCE WAVE\n"
        f"        FILE \"{media}\"\n      >\n    >\n  >\n" for i, (media, rate) in enumerate(items))
    return f"<REAPER_PROJECT 0.1 \"6.0\" 1\n  SAMPLERATE 44100 0 0\n  TEMPO 120 4 4\n{tracks}>\n"


def test_media_outside_is_named_in_media_roots_and_the_guard_stays_on(tmp_path):
    """Issue 23: the importer set allow_outside_paths = true for the whole session."""
    media = tmp_path / "media"
    media.mkdir()
    write_stem(media, "a.wav", tone(440, 0.5))
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "p.rpp").write_text(_rpp([("../media/a.wav", "1")]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = import_reaper(proj / "p.rpp", proj / "session.toml")
    sess = result.manifest["session"]
    assert sess["media_roots"] == ["../media"] and "allow_outside_paths" not in sess
    session = load_session(result.path)
    assert session.media_roots == [media.resolve()] and not session.allow_outside_paths
    # the guard is still on for anything else
    text = result.path.read_text().replace('"../media/a.wav"', '"../elsewhere/a.wav"')
    (proj / "edited.toml").write_text(text)
    with pytest.raises(SessionError, match="outside the session folder .* or its media_roots"):
        load_session(proj / "edited.toml", check_files=False)


def test_missing_media_once_per_file_and_rate_tolerance(tmp_path):
    (tmp_path / "p.rpp").write_text(_rpp([("gone.wav", "0.99999999999978")] * 5
                                         + [("other.wav", "1.5")]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = import_reaper(tmp_path / "p.rpp")
    assert [Path(m).name for m in result.missing_media] == ["gone.wav", "other.wav"]
    assert sum("media file not found" in str(w.message) for w in caught) == 2
    # 0.99999999999978 is 1 (no rate); 1.5 is applied
    assert [t.get("rate") for t in result.tracks] == [None] * 5 + [1.5]


def test_no_renderable_track_is_said_at_import(tmp_path):
    write_stem(tmp_path, "a.wav", tone(440, 0.5))
    (tmp_path / "p.rpp").write_text(_rpp([("a.wav", "1")], mute=True))
    result = import_reaper(tmp_path / "p.rpp", tmp_path / "s.toml")
    assert any("no track has audio to render" in w for w in result.warnings)
    (tmp_path / "q.rpp").write_text(_rpp([("a.wav", "1")]))
    assert not any("no track" in w for w in import_reaper(tmp_path / "q.rpp").warnings)
