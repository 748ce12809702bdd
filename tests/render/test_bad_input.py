"""Bad input to sessions, renders and the CLI (issue 23): crashes, silent garbage, files left
behind. Each test names the defect it guards."""

from __future__ import annotations

import json

import numpy as np
import pytest
from blendfx.errors import SessionError
from blendfx.render import render_session
from blendfx.render.cli import EXIT_OK, EXIT_USAGE
from blendfx.render.renderer import MAX_RENDER_HOURS, estimate_render_bytes

from ..sessionkit import output_files, tone, write_session, write_stem
from .test_cli import one_error_line, run


def test_a_silent_stem_renders(tmp_path):
    """The issue: a stem of digital silence stopped the mix with
    ``TypeError: must be real number, not NoneType`` (its -inf peak came back as null)."""
    write_stem(tmp_path, "silence.wav", np.zeros((1, 44100), np.float32))
    write_stem(tmp_path, "tone.wav", tone(440, 1.0))
    session = write_session(tmp_path, {"session": {"sample_rate": 44100}, "tracks": [
        {"name": "silence", "file": "silence.wav"}, {"name": "tone", "file": "tone.wav"}]})
    result = render_session(session, tmp_path / "out", progress=False)
    silent = result.track("silence")
    assert silent.peak_dbfs == float("-inf") and silent.rms_dbfs == float("-inf")
    report = json.loads(result.report_json.read_text())
    assert report["tracks"][0]["peak_dbfs"] is None  # strict JSON: -inf is null
    again = render_session(session, tmp_path / "out", progress=False)  # from the cache
    assert again.track("silence").cached and again.track("silence").peak_dbfs == float("-inf")


def test_a_session_of_silence_only_renders(tmp_path):
    write_stem(tmp_path, "silence.wav", np.zeros((2, 44100), np.float32))
    session = write_session(tmp_path, {"session": {"sample_rate": 44100}, "tracks": [
        {"name": "silence", "file": "silence.wav"}]})
    result = render_session(session, tmp_path / "out", progress=False, figure=False)
    assert result.report["master"]["output_lufs"] == float("-inf")


def test_blend_of_silence_is_a_clear_error(tmp_path, capsys):
    write_stem(tmp_path, "zero.wav", np.zeros((2, 44100), np.float32))
    code, _, err = run(capsys, "-q", "blend", str(tmp_path / "zero.wav"), "-o",
                       str(tmp_path / "b.wav"))
    assert code == EXIT_USAGE and "digital silence" in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zero.wav"]


def test_blend_effect_passes_silence():
    from blendfx.effects import Blend

    blend = Blend()
    x = np.zeros((2, 22050), np.float32)
    out = blend(x, 44100)
    assert not out.any() and blend.last_report == {"silent_noise": True}


def test_absurd_offset_is_refused_before_writing(tmp_path):
    """The issue: offset = 999999 started writing ~350 GB with no warning."""
    write_stem(tmp_path, "tone.wav", tone(440, 1.0))
    session = write_session(tmp_path, {"session": {"sample_rate": 44100}, "tracks": [
        {"name": "late", "file": "tone.wav", "offset": 999999}]})
    with pytest.raises(SessionError, match=r"277\.8 h .*GB written.*'late'.*--allow-large"):
        render_session(session, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_what_the_disk_cannot_hold_is_refused_even_when_allowed(tmp_path, monkeypatch):
    import shutil as _shutil

    from blendfx.render import renderer

    write_stem(tmp_path, "tone.wav", tone(440, 1.0))
    session = write_session(tmp_path, {"session": {"sample_rate": 44100}, "tracks": [
        {"name": "t", "file": "tone.wav"}]})
    usage = _shutil.disk_usage(tmp_path)
    monkeypatch.setattr(renderer.shutil, "disk_usage",
                        lambda p: usage._replace(free=100_000))
    with pytest.raises(SessionError, match=r"about .* written, but .* has 100\.0 KB free"):
        render_session(session, tmp_path / "out", progress=False, allow_large=True)
    assert not (tmp_path / "out").exists()


def test_allow_large_lets_a_long_timeline_through(tmp_path, monkeypatch):
    from blendfx.render import renderer

    monkeypatch.setattr(renderer, "MAX_RENDER_HOURS", 1.0 / 3600)  # 1 s
    write_stem(tmp_path, "tone.wav", tone(440, 1.0))
    session = write_session(tmp_path, {"session": {"sample_rate": 44100}, "tracks": [
        {"name": "t", "file": "tone.wav", "offset": 1.0}]})
    with pytest.raises(SessionError, match="allow-large"):
        render_session(session, tmp_path / "out", progress=False)
    result = render_session(session, tmp_path / "out", progress=False, allow_large=True,
                            figure=False)
    assert result.report["duration_s"] == pytest.approx(2.0)


def test_estimate_counts_cache_mix_and_stems():
    # 2 tracks (cache: 2 x float32 stereo), 1 audible, 24-bit: mix + 1 stem
    assert estimate_render_bytes(1000, 2, 1, 24) == 1000 * 2 * (8 + 3 * 2)
    assert MAX_RENDER_HOURS == 6.0


def test_demo_bad_seed_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "demo"
    code, _, err = run(capsys, "-q", "demo", "-o", str(out), "--seed", "-1")
    assert code == EXIT_USAGE and "seed" in one_error_line(err)
    assert not out.exists()  # the issue: a numpy traceback, and out/session/ left behind


def test_demo_failing_render_removes_what_it_wrote(tmp_path, capsys, monkeypatch):
    from blendfx.render import demo

    def boom(*a, **k):
        raise SessionError("render failed")

    monkeypatch.setattr(demo, "render_session", boom)
    out = tmp_path / "demo"
    code, _, err = run(capsys, "-q", "demo", "-o", str(out), "--duration", "2")
    assert code == EXIT_USAGE and "render failed" in err
    assert not out.exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("x")
    code, _, _ = run(capsys, "-q", "demo", "-o", str(tmp_path / "kept"), "--duration", "2")
    assert output_files(tmp_path / "kept") == ["mine.txt"]
    assert code == EXIT_USAGE


# -- paths, outputs and leftovers -----------------------------------------------------------------
def test_path_guard_is_by_components_not_string_prefix(tmp_path):
    """``../proj-evil/x.wav`` from ``proj/`` shares the string prefix ``.../proj`` but is outside."""
    from blendfx.render.session import load_session

    proj, evil = tmp_path / "proj", tmp_path / "proj-evil"
    evil.mkdir()
    write_stem(evil, "x.wav", tone(440, 0.5))
    session = write_session(proj, {"tracks": [{"name": "x", "file": "../proj-evil/x.wav"}]})
    with pytest.raises(SessionError, match="outside the session folder"):
        load_session(session)
    write_session(proj, {"session": {"media_roots": ["../proj-evil"]},
                         "tracks": [{"name": "x", "file": "../proj-evil/x.wav"}]}, "ok.toml")
    assert load_session(proj / "ok.toml").tracks[0].file == (evil / "x.wav").resolve()
    # a root is a folder, compared by components too: proj-evil does not admit proj-evil2
    (tmp_path / "proj-evil2").mkdir()
    write_stem(tmp_path / "proj-evil2", "y.wav", tone(440, 0.5))
    write_session(proj, {"session": {"media_roots": ["../proj-evil"]},
                         "tracks": [{"name": "y", "file": "../proj-evil2/y.wav"}]}, "no.toml")
    with pytest.raises(SessionError, match="media_roots"):
        load_session(proj / "no.toml")
    write_session(proj, {"session": {"media_roots": "../proj-evil"}}, "bad.toml")
    with pytest.raises(SessionError, match="media_roots .* must be a list"):
        load_session(proj / "bad.toml")


def test_blend_output_convention(tmp_path, capsys):
    write_stem(tmp_path, "n.wav", tone(300, 0.5, seed=1))
    noise = str(tmp_path / "n.wav")
    folder = tmp_path / "outdir"
    folder.mkdir()
    code, _, err = run(capsys, "-q", "blend", noise, "-o", str(folder))
    assert code == EXIT_USAGE and "is a folder; give a file name, such as" in one_error_line(err)
    existing = tmp_path / "old.wav"
    existing.write_bytes(b"keep")
    code, _, err = run(capsys, "-q", "blend", noise, "-o", str(existing))
    assert code == EXIT_USAGE and "exists; pass --overwrite" in one_error_line(err)
    assert existing.read_bytes() == b"keep"
    code, _, err = run(capsys, "-q", "inspect", noise, "-o", str(folder))
    assert code == EXIT_USAGE and "is a folder" in one_error_line(err)
    code, _, err = run(capsys, "-q", "inspect", noise, "-o", str(existing.with_suffix(".png")))
    assert code == EXIT_OK, err
    code, _, err = run(capsys, "-q", "inspect", noise, "-o", str(existing.with_suffix(".png")))
    assert code == EXIT_USAGE and "--overwrite" in one_error_line(err)
    code, _, err = run(capsys, "-q", "inspect", noise, "-o", str(existing.with_suffix(".png")),
                       "--overwrite")
    assert code == EXIT_OK, err


def test_unwritable_output_names_the_folder_not_a_temp_file(tmp_path, capsys):
    from blendfx.render.cli import EXIT_IO

    write_stem(tmp_path, "n.wav", tone(300, 0.5, seed=1))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "-q", "blend", str(tmp_path / "n.wav"), "-o",
                       str(blocker / "b.wav"))
    line = one_error_line(err)
    assert code == EXIT_IO and f"cannot write to {blocker}" in line and ".blendfx" not in line


def test_stale_work_of_a_killed_run_is_removed(tmp_path):
    """The issue: a killed blend left an 81 MB hidden folder that later runs never removed."""
    import os

    from blendfx.files import atomic_write_text, owned_tempdir

    dead = tmp_path / ".blendfx-blend.999999999.abc"  # no such process
    dead.mkdir()
    (dead / "big.wav").write_bytes(b"0" * 1000)
    live = tmp_path / f".blendfx-blend.{os.getpid()}.xyz"  # this process: kept
    live.mkdir()
    other = tmp_path / ".blendfx-blend.notapid"  # not ours to judge: kept
    other.mkdir()
    partial = tmp_path / ".mix.999999999.q1.partial.wav"
    partial.write_bytes(b"half")
    work = owned_tempdir(tmp_path, ".blendfx-blend.")
    assert work.name.startswith(f".blendfx-blend.{os.getpid()}.")
    assert not dead.exists() and live.exists() and other.exists()
    atomic_write_text(tmp_path / "mix.wav", "x")  # a write of mix.wav clears its partials
    assert not partial.exists()


def test_quiet_import_prints_no_warnings(tmp_path, capsys):
    from ..render.test_reaper import _rpp

    (tmp_path / "p.rpp").write_text(_rpp([("gone.wav", "1.5")]))
    code, out, err = run(capsys, "-q", "session", "import", str(tmp_path / "p.rpp"), "-o",
                         str(tmp_path / "s.toml"))
    assert code == EXIT_OK and out == "" and err == ""
    code, out, err = run(capsys, "session", "import", str(tmp_path / "p.rpp"), "-o",
                         str(tmp_path / "s.toml"), "--overwrite")
    assert code == EXIT_OK and "missing media" in err  # (rates are applied now: issue 19)


def test_a_stem_at_minus_87_dbfs_is_not_audible(tmp_path):
    write_stem(tmp_path, "faint.wav", tone(440, 1.0, amp=10 ** (-87 / 20)))
    write_stem(tmp_path, "loud.wav", tone(220, 1.0, amp=0.3))
    session = write_session(tmp_path, {
        "master": {"target_lufs": False},
        "tracks": [{"name": "faint", "file": "faint.wav"}, {"name": "loud", "file": "loud.wav"},
                   {"name": "muted", "file": "loud.wav", "mute": True}]})
    result = render_session(session, tmp_path / "out", progress=False, figure=False)
    tracks = {t["name"]: t for t in result.report["tracks"]}
    assert tracks["faint"]["peak_dbfs"] == pytest.approx(-90.0, abs=0.1)  # mono: -3 dB pan law
    assert tracks["faint"]["in_mix"] and not tracks["faint"]["audible"]
    assert tracks["loud"]["in_mix"] and tracks["loud"]["audible"]
    assert "muted" not in tracks or not tracks["muted"]["audible"]


def test_render_can_skip_stems_report_and_cache(tmp_path, capsys):
    from ..sessionkit import basic_session

    session = basic_session(tmp_path / "s")
    out = tmp_path / "out"
    render_session(session, out, progress=False)
    assert "stems/noise.wav" in output_files(out) and (out / ".blendfx-cache").is_dir()
    code, _, err = run(capsys, "-q", "render", str(session), "-o", str(out), "--no-stems",
                       "--no-report", "--drop-cache")
    assert code == EXIT_OK, err
    assert output_files(out) == ["mix.wav", "report.json"]  # the old stems and png are gone
    assert not (out / ".blendfx-cache").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["stems"] == {} and report["outputs"]["report_png"] is None


def test_report_figure_shows_every_music_track_and_the_key_numbers(tmp_path, monkeypatch):
    """The issue: only the first music track was drawn (a 20-stem session showed one), and
    none of the report's numbers were on the image."""
    from blendfx.render import report as report_mod

    seen = {}

    def capture(panels, mask, curves, seconds, title, path, **kw):
        seen.update(panels=[name for _, name in panels], caption=kw.get("caption"))
        path.write_bytes(b"png")

    monkeypatch.setattr(report_mod, "_figure", capture)
    write_stem(tmp_path, "n.wav", tone(300, 1.0, seed=1))
    tracks = [{"name": "noise", "file": "n.wav", "role": "noise"}]
    for i in range(3):
        write_stem(tmp_path, f"m{i}.wav", tone(500 + 300 * i, 1.0, seed=i + 2))
        tracks.append({"name": f"m{i}", "file": f"m{i}.wav", "role": "music"})
    session = write_session(tmp_path, {"master": {"target_lufs": -18.0, "true_peak_dbtp": -2.0},
                                       "tracks": tracks})
    result = render_session(session, tmp_path / "out", progress=False)
    assert seen["panels"][1] == "music: 3 tracks summed (m0, m1, m2)"
    gain = result.report["master"]["master_gain_db"]
    assert seen["caption"] == (f"mix -18.0 LUFS target;  ceiling -2.0 dBTP;  "
                               f"master gain {gain:+.1f} dB")


def test_report_figure_draws_hz_ticks_and_a_colour_bar(tmp_path):
    from blendfx.render.report import _figure

    px = np.tile(np.linspace(0, 255, 128).astype(np.uint8)[:, None], (1, 50))
    _figure([(px, "a")], None, [(np.zeros(100), "g")], 1.0, "t", tmp_path / "f.png",
            fps=50, caption="numbers")
    from PIL import Image

    img = np.asarray(Image.open(tmp_path / "f.png").convert("RGB"))
    bar = img[11, 990 - 14 - 118:990 - 14 - 2]  # the colour bar's middle row, left to right
    assert bar[0].sum() < 60 and bar[-1].sum() > 600  # dark (-80 dB) to bright (0 dB)
    # tick marks left of the panel at the 100 Hz ... 8 kHz rows: dark pixels in the margin
    assert (img[40:170, 60:64].sum(axis=2) < 200).sum() >= 7


def test_no_cache_renders_straight_to_the_outputs(tmp_path):
    """The issue: --no-cache still wrote every track as 32-bit float into .blendfx-cache and
    read it back (470 MB written against 46 MB for the mix)."""
    from blendfx import read_audio

    from ..sessionkit import basic_session

    session = basic_session(tmp_path / "s")
    cached = render_session(session, tmp_path / "a", progress=False)
    direct = render_session(session, tmp_path / "b", progress=False, cache=False)
    assert list((tmp_path / "a" / ".blendfx-cache").rglob("audio.wav"))
    assert not list((tmp_path / "b" / ".blendfx-cache").rglob("*.wav"))  # nothing in the cache
    for rel in ("mix.wav", "stems/noise.wav", "stems/music.wav"):
        np.testing.assert_array_equal(read_audio(cached.out_dir / rel)[0],
                                      read_audio(direct.out_dir / rel)[0])
    assert direct.report_png.is_file()
