"""REAPER item settings as they sound: looped audio and MIDI items (the take offset wrapping),
fade shapes, the volume, pan and fades of MIDI items, and track FX through a real VST3
plug-in with the state the project saved (projects the tests write)."""

from __future__ import annotations

import base64
import math
import re
import struct

import mido
import numpy as np
import pytest
from blendfx import read_audio
from blendfx.errors import SessionError
from blendfx.render.instruments import find_plugin, load_plugin, reaper_vst3_state
from blendfx.render.reaper import import_reaper
from blendfx.render.renderer import render_session
from blendfx.render.session import load_session, session_from_dict

from ..sessionkit import write_stem
from .test_reaper_midi import SR, audio_item, midi_item, no_plugins, rpp, track

MONO = math.cos(math.pi / 4)  # the session's pan law for a mono stem at centre


def render(proj, tmp_path, name="s.toml"):
    s = load_session(proj / name)
    s.master.target_lufs = None  # (levels as the tracks make them)
    out = render_session(s, tmp_path / "out", progress=False, figure=False)
    return out, {n: read_audio(p)[0] for n, p in out.stems.items()}


# -- loops -------------------------------------------------------------------------------------
def test_looped_audio_items_repeat_from_the_take_offset(tmp_path):
    proj = tmp_path / "p"
    (proj / "a").mkdir(parents=True)
    n = SR // 2  # a half-second source whose every sample is different: a ramp
    ramp = ((np.arange(n) + 1) / n * 0.5).astype(np.float32)
    write_stem(proj / "a", "r.wav", ramp[None])
    body = (track("Loop", audio_item("a/r.wav", 0.5, 1.6, "      LOOP 1\n      SOFFS 0.1\n"))
            # a take offset past the source's end wraps: 0.6 s is 0.1 s into the loop
            + track("Wrapped", audio_item("a/r.wav", 0.5, 1.6, "      LOOP 1\n      SOFFS 0.6\n"))
            + track("Once", audio_item("a/r.wav", 0.5, 1.6, "      LOOP 0\n      SOFFS 0.1\n")))
    (proj / "p.rpp").write_text(rpp(body))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    by = {t["name"]: t for t in result.tracks}
    assert by["Loop"]["loop"] is True and by["Wrapped"]["source_offset"] == pytest.approx(0.1)
    assert "loop" not in by["Once"]
    assert not any("loop" in w for w in result.warnings)
    _, stems = render(proj, tmp_path)
    start, length, skip = int(0.5 * SR), int(1.6 * SR), int(0.1 * SR)
    k = np.arange(length)
    want = ramp[(skip + k) % n] * MONO  # timeline sample k of the item: source (skip + k) mod n
    for name in ("Loop", "Wrapped"):
        got = stems[name][0]
        assert np.abs(got[:start]).max() == 0
        assert np.abs(got[start:start + length] - want).max() < 1e-5, name
        assert got.shape[0] == start + length  # (the session ends with its last item)
    # the loop's seams: where the source wraps to its start
    seams = start + np.flatnonzero(np.diff(stems["Loop"][0][start:start + length]) < -0.1) + 1
    assert (seams - start).tolist() == [n - skip, 2 * n - skip, 3 * n - skip]
    once = stems["Once"][0]  # not looped: the source plays once, from the take offset
    assert np.abs(once[start:start + n - skip] - ramp[skip:] * MONO).max() < 1e-5
    assert np.abs(once[start + n - skip:]).max() == 0


def test_looped_midi_item_with_a_take_offset_wraps(tmp_path, monkeypatch):
    no_plugins(monkeypatch, tmp_path)
    # a 2-quarter source (1 s at 120 BPM) with notes at 0, 0.5 and 1 quarter
    events = [(0, 0x90, 60, 100), (120, 0x80, 60, 0), (360, 0x90, 62, 100), (120, 0x80, 62, 0),
              (360, 0x90, 64, 100), (120, 0x80, 64, 0), (840, 0xB0, 123, 0)]
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "p.rpp").write_text(rpp(track("Keys", midi_item(1.0, 2.5, events, loop=1,
                                                            soffs=0.5))))
    result = import_reaper(proj / "p.rpp", proj / "s.toml", bare_midi=True)
    t, got = 0.0, []
    for msg in mido.MidiFile(proj / result.tracks[0]["midi"]):
        t += msg.time
        if msg.type == "note_on" and msg.velocity:
            got.append((round(t, 4), msg.note))
    # offset 0.5 s: the item starts at the source's second quarter (note 64), then the source
    # repeats from its start every second
    assert got == [(1.0, 64), (1.5, 60), (1.75, 62), (2.0, 64), (2.5, 60), (2.75, 62),
                   (3.0, 64)]


# -- fades -------------------------------------------------------------------------------------
def test_fade_shapes_follow_reaper_s_shape_numbers(tmp_path):
    proj = tmp_path / "p"
    (proj / "a").mkdir(parents=True)
    write_stem(proj / "a", "dc.wav", np.full((1, 2 * SR), 0.4, np.float32))
    body = (track("Lin", audio_item("a/dc.wav", 0, 2, "      FADEIN 0 0.5 0 1 0 0\n"
                                                     "      FADEOUT 5 0.4 0 1 0 0\n"))
            + track("Slow", audio_item("a/dc.wav", 0, 2, "      FADEIN 2 1.0 0 1 0 0\n"
                                                      "      FADEOUT 4 0.5 0 1 0 0.3\n")))
    (proj / "p.rpp").write_text(rpp(body))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    by = {t["name"]: t for t in result.tracks}
    assert (by["Lin"]["fade_in_shape"], by["Lin"]["fade_out_shape"]) == ("linear", "s_curve")
    assert (by["Slow"]["fade_in_shape"], by["Slow"]["fade_out_shape"]) == (
        "slow_start", "slow_start_steep")
    assert any("fade curvature" in w and "Slow" in w for w in result.warnings)
    _, stems = render(proj, tmp_path)
    lin, slow = stems["Lin"][0] / (0.4 * MONO), stems["Slow"][0] / (0.4 * MONO)
    for at, want in ((0.125, 0.25), (0.25, 0.5), (0.375, 0.75), (1.0, 1.0)):
        assert lin[int(at * SR)] == pytest.approx(want, abs=2e-4), at
    end = 2 * SR
    for left, want in ((0.2, 0.5), (0.1, (1 - math.cos(math.pi / 4)) / 2)):
        assert lin[end - int(left * SR)] == pytest.approx(want, abs=2e-4), left
    assert slow[int(0.5 * SR)] == pytest.approx(0.25, abs=2e-4)  # (x^2 at half way)
    assert slow[end - int(0.25 * SR)] == pytest.approx(0.5 ** 4, abs=2e-4)


def test_midi_items_volume_pan_and_fades_shape_the_instrument(tmp_path, monkeypatch):
    no_plugins(monkeypatch, tmp_path)
    organ = [(0, 0x90, 60, 100), (960 * 6, 0x80, 60, 0)]  # one note held for 3 s at 120 BPM
    plain = midi_item(0, 3, organ)
    shaped = midi_item(0, 3, organ).replace(
        "      VOLPAN 1 0 1 -1\n",
        "      VOLPAN 0.5 0.5 1 -1\n      FADEIN 0 1.0 0 1 0 0\n      FADEOUT 2 0.5 0 1 0 0\n")
    body = track("Organ", plain) + track("Organ shaped", shaped)
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "p.rpp").write_text(rpp(body + track("Tail", midi_item(
        4, 1, [(0, 0x90, 48, 100), (960, 0x80, 48, 0)]))))
    result = import_reaper(proj / "p.rpp", proj / "s.toml", bare_midi=True)
    by = {t["name"]: t for t in result.tracks}
    assert "items" not in by["Organ"]
    (item,) = by["Organ shaped"]["items"]
    assert item == {"start": 0.0, "length": 3.0, "gain_db": pytest.approx(-6.0206, abs=1e-4),
                    "pan": 0.5, "fade_in": 1.0, "fade_in_shape": "linear", "fade_out": 0.5,
                    "fade_out_shape": "slow_start"}
    assert not any("MIDI items" in w and "not applied" in w for w in result.warnings)
    _, stems = render(proj, tmp_path)
    ref, got = stems["Organ"], stems["Organ shaped"]
    t = (np.arange(ref.shape[1]) + 0.5) / SR
    fade = np.clip(t / 1.0, 0, 1) * np.where(t > 2.5, np.clip((3.0 - t) / 0.5, 0, 1) ** 2, 1.0)
    fade[t >= 3.0] = 0.0  # faded out: the release tail is silent too
    theta = 1.5 * math.pi / 4  # pan 0.5: the balance law turns the left side down
    sides = (min(1.0, math.sqrt(2) * math.cos(theta)), min(1.0, math.sqrt(2) * math.sin(theta)))
    for ch, side in enumerate(sides):
        want = ref[ch] * 0.5 * side * fade
        assert np.abs(got[ch] - want).max() < 2e-4 * np.abs(ref[ch]).max() + 1e-6, ch
    assert np.sqrt(np.mean(got[:, int(1.2 * SR):int(2.4 * SR)] ** 2)) > 0.01  # (it plays)


# -- plug-ins ----------------------------------------------------------------------------------
ZAM = find_plugin("ZamCompX2")
needs_zam = pytest.mark.skipif(
    ZAM is None, reason="no VST3 plug-in here: install Debian's zam-plugins (ZamCompX2.vst3 in "
                        "/usr/lib/vst3; .ci/run does) to run the real-plug-in test")


def _juce_decode(text: str) -> bytes:
    """JUCE's MemoryBlock base64 (``size.chars``, 6-bit groups from the little end)."""
    table = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"
    size, _, body = text.partition(".")
    value = sum(table.index(c) << (6 * i) for i, c in enumerate(body))
    return value.to_bytes(len(body) * 6 // 8 + 1, "little")[:int(size)]


def reaper_vst3_block(name: str, component: bytes, controller: bytes = b"", file: str = ""
                      ) -> str:
    """A ``<VST`` block as REAPER 6 writes one for a VST3 (``file``: its bundle's name):
    base64 lines of a header (id, magic, 2 input and 2 output pin masks, data size, flags), the
    data (component and controller states, each ``size, flags, bytes``) in 96-byte lines, and
    the preset-name line."""
    data = (struct.pack("<iI", len(component), 1) + component
            + struct.pack("<iI", len(controller), 0) + controller)
    pins = struct.pack("<QQ", 1, 2)
    head = (struct.pack("<IIi", 0x1234, 0xFEED5EEE, 2) + pins + struct.pack("<i", 2) + pins
            + struct.pack("<iII", len(data), 1, 0x100000))
    lines = [base64.b64encode(head).decode()]
    lines += [base64.b64encode(data[i:i + 96]).decode() for i in range(0, len(data), 96)]
    lines.append(base64.b64encode(b"\0Default\0\x10\0\0\0").decode())
    body = "".join(f"      {line}\n" for line in lines)
    file = file or (ZAM.name if ZAM else "x.vst3")
    return (f'    <FXCHAIN\n    BYPASS 0 0 0\n    <VST "{name}" {file} 0 "" '
            f'1234{{ABCDEF}} ""\n{body}    >\n    >\n')


def test_reaper_vst3_chunk_round_trip():
    comp, ctrl = b"component \x00\xff state" * 9, b"controller"
    lines = [ln.strip() for ln in reaper_vst3_block("VST3: X", comp, ctrl).splitlines()[3:-2]]
    assert reaper_vst3_state(lines) == (comp, ctrl)
    with pytest.raises(ValueError, match="not a REAPER plug-in chunk"):
        reaper_vst3_state([base64.b64encode(b"\0" * 40).decode(), "AA=="])


def zam_state(threshold_db: float, ratio: float) -> bytes:
    """The component state REAPER would save for ZamCompX2 at these settings (the plug-in's
    own bytes, read back through pedalboard)."""
    ref = load_plugin(ZAM)
    ref.threshold_db, ref.ratio = threshold_db, ratio
    ref.process(np.zeros((2, 512), np.float32), SR)
    xml = ref.raw_state.decode("latin-1")
    return _juce_decode(re.search(r"<IComponent>([^<]*)<", xml).group(1))


@needs_zam
def test_track_fx_render_through_the_real_plugin_with_the_project_state(tmp_path):
    component = zam_state(-30.0, 8.0)
    assert b"thr\x00-30" in component
    proj = tmp_path / "p"
    (proj / "a").mkdir(parents=True)
    t = np.arange(2 * SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, t * 4)).astype(np.float32)
    stereo = np.stack([x, 0.5 * x])
    write_stem(proj / "a", "x.wav", stereo)
    fx = reaper_vst3_block("VST3: ZamCompX2 (Damien Zammit)", component)
    (proj / "p.rpp").write_text(rpp(track("Comp", audio_item("a/x.wav", 0, 2), fx=fx)
                                    + track("Dry", audio_item("a/x.wav", 0, 2))))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    # the track's FX process the sum of its items before its fader: a bus holds them
    (plug,) = result.buses[0]["plugins"]
    assert result.buses[0]["name"] == "Comp" and result.tracks[0]["bus"] == "Comp"
    assert "plugins" not in result.tracks[0]
    assert plug["format"] == "VST3" and base64.b64decode(plug["state"]) == component
    assert not any("plug-in" in w for w in result.warnings)
    assert f"plug-in: ZamCompX2 on 'Comp': {ZAM}, with the project's state" in result.table()
    out, stems = render(proj, tmp_path)
    report = next(t for t in out.report["tracks"] if t["name"] == "Comp")["reports"][0]
    assert report["effect"] == "plug-in" and report["state"] == "applied"
    assert report["path"] == str(ZAM)
    want = load_plugin(ZAM)
    want.threshold_db, want.ratio = -30.0, 8.0
    y = want.process(stereo, SR, reset=True)
    assert np.abs(stems["Comp"] - y).max() < 1e-4  # the plug-in, at the project's settings
    dry = stems["Dry"]
    assert np.abs(dry - stereo).max() < 1e-4  # (a stereo stem at centre: unity)
    late = slice(SR, 2 * SR)
    assert np.abs(stems["Comp"][:, late]).max() < 0.7 * np.abs(dry[:, late]).max()  # compressed
    defaults = load_plugin(ZAM).process(stereo, SR, reset=True)
    assert np.abs(stems["Comp"] - defaults).max() > 0.05  # the state made the difference


@needs_zam
def test_folder_fx_process_the_sum_of_the_folder(tmp_path):
    proj = tmp_path / "p"
    (proj / "a").mkdir(parents=True)
    t = np.arange(SR) / SR
    x = (0.6 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    write_stem(proj / "a", "m.wav", x[None])  # mono: it plays on both sides of the plug-in
    fx = reaper_vst3_block("VST3: ZamCompX2 (Damien Zammit)", zam_state(-24.0, 4.0))
    body = (track("Group", isbus="1 1", fx=fx)
            + track("Lead", audio_item("a/m.wav", 0, 1), isbus="2 -1"))
    (proj / "p.rpp").write_text(rpp(body))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    assert result.buses[0]["plugins"][0]["plugin"].startswith("VST3: ZamCompX2")
    assert "plugins" not in result.tracks[0]
    out, stems = render(proj, tmp_path)
    assert out.report["tracks"][1]["reports"][0]["effect"] == "plug-in"
    lead = np.stack([x, x]) * MONO  # the child's stem: the mono pan law at centre
    comp = load_plugin(ZAM)
    comp.threshold_db, comp.ratio = -24.0, 4.0
    want = comp.process(lead, SR, reset=True)
    assert np.abs(stems["Group"] - want).max() < 1e-4
    assert np.abs(want - lead).max() > 0.05  # (the plug-in changes the sound)


def test_fx_that_are_not_installed_or_not_loadable_are_said(tmp_path, monkeypatch):
    no_plugins(monkeypatch, tmp_path)
    proj = tmp_path / "p"
    (proj / "a").mkdir(parents=True)
    x = np.full((1, SR), 0.25, np.float32)
    write_stem(proj / "a", "m.wav", x)
    fx = (reaper_vst3_block("VST3: Pro-Q 3 (FabFilter)", b"state")
          .replace("    >\n    >\n", '    >\n    <JS loser/3BandEQ ""\n      0 0 0\n    >\n    >\n'))
    (proj / "p.rpp").write_text(rpp(track("Lead", audio_item("a/m.wav", 0, 1), fx=fx)))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    assert not result.buses and "plugins" not in result.tracks[0]  # (nothing to apply here)
    table = result.table()
    assert "plug-in FX not found in the plug-in folders" in table and "Pro-Q 3 on 'Lead'" in table
    assert "pedalboard cannot load" in table and "3BandEQ" in table
    # a plug-in named in a session but missing where it renders is said in the render report
    s = load_session(proj / "s.toml")
    s.tracks[0].plugins = [{"plugin": "VST3: Pro-Q 3 (FabFilter)", "format": "VST3"}]
    s.master.target_lufs = None
    out = render_session(s, tmp_path / "out", progress=False, figure=False)
    (report,) = out.report["tracks"][0]["reports"]
    assert report == {"effect": "plug-in", "plugin": "Pro-Q 3",
                      "not_applied": "not found in the plug-in folders"}
    stem, _ = read_audio(out.stems["Lead"])
    assert np.abs(stem[0] - 0.25 * MONO).max() < 1e-5  # played without it


def test_bad_loops_shapes_items_and_plugins_name_the_key(tmp_path):
    def load(track: dict) -> None:
        session_from_dict({"tracks": [track]}, tmp_path, check_files=False)

    with pytest.raises(SessionError, match=r"tracks\[0\] \('a'\)\.loop: .*needs a file and a "
                                           r"duration"):
        load({"name": "a", "file": "a.wav", "loop": True})
    with pytest.raises(SessionError, match=r"fade_in_shape = 'log' is not one of equal_power, "
                                           r"linear, slow_start"):
        load({"name": "a", "file": "a.wav", "fade_in_shape": "log"})
    with pytest.raises(SessionError, match=r"items\[0\] needs start and length"):
        load({"name": "a", "midi": "a.mid", "items": [{"start": 1.0}]})
    with pytest.raises(SessionError, match=r"items\[0\]\.pan = 3 is out of range \[-1, 1\]"):
        load({"name": "a", "midi": "a.mid", "items": [{"start": 0, "length": 1, "pan": 3}]})
    with pytest.raises(SessionError, match="instrument and items apply to a midi track only"):
        load({"name": "a", "file": "a.wav", "items": []})
    with pytest.raises(SessionError, match=r"plugins\[0\] .*must be a table with a plugin name"):
        load({"name": "a", "file": "a.wav", "plugins": [{"format": "VST3"}]})


@needs_zam
def test_an_instrument_slot_holding_an_effect_plays_the_stand_in(tmp_path):
    """No free VST3 instrument is packaged for Debian 12: the real load path is followed up to
    the instrument check (an effect found under the instrument's name), then the stand-in."""
    proj = tmp_path / "p"
    proj.mkdir()
    fx = reaper_vst3_block("VST3i: ZamCompX2 (Damien Zammit)", zam_state(-30.0, 8.0))
    (proj / "p.rpp").write_text(rpp(track("Piano", midi_item(0, 2, [
        (0, 0x90, 60, 100), (960, 0x80, 60, 0)]), fx=fx)))
    result = import_reaper(proj / "p.rpp", proj / "s.toml")
    inst = result.tracks[0]["instrument"]
    assert inst["format"] == "VST3" and b"thr\x00-30" in base64.b64decode(inst["state"])
    assert not result.stand_ins  # (found in the plug-in folders at import)
    out, stems = render(proj, tmp_path)
    played = out.report["tracks"][0]["reports"][0]
    assert played["stand_in"] == "piano"
    assert played["why"] == "ZamCompX2.vst3 did not load: ZamCompX2.vst3 is not an instrument"
    assert np.sqrt(np.mean(stems["Piano"] ** 2)) > 1e-3
