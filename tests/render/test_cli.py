"""The blendfx CLI: exit codes, one-line errors, each command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from blendfx import read_audio
from blendfx.dsp.loudness import integrated_lufs, true_peak_dbtp
from blendfx.effects.blend.metrics import blend_report
from blendfx.render.cli import EXIT_IO, EXIT_OK, EXIT_USAGE, main

from ..conftest import shared
from ..sessionkit import basic_session, output_files, tone, write_stem


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("blendfx: error: "), err
    return lines[0]


def test_usage_errors_are_one_line(capsys):
    code, _, err = run(capsys)
    assert code == EXIT_USAGE and "usage" in err
    code, _, err = run(capsys, "render", "x.toml")
    assert code == EXIT_USAGE and "-o/--output" in one_error_line(err)
    code, _, err = run(capsys, "frobnicate")
    assert code == EXIT_USAGE and "invalid choice" in one_error_line(err)
    code, _, err = run(capsys, "demo", "-o", "x", "--duration", "long")
    assert code == EXIT_USAGE and "--duration" in one_error_line(err)
    code, out, _ = run(capsys, "--version")
    assert code == EXIT_OK and out.startswith("blendfx ")


def test_render_command(tmp_path, capsys):
    session = basic_session(tmp_path / "s")
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "render", str(session), "-o", str(out), "--seed", "3")
    assert code == EXIT_OK, err
    assert "mix:" in stdout and "LUFS" in stdout and "report:" in stdout
    assert output_files(out) == ["mix.wav", "report.json", "report.png", "stems/music.wav",
                                 "stems/noise.wav"]
    code, stdout, err = run(capsys, "-q", "render", str(session), "-o", str(out))
    assert code == EXIT_OK and stdout == "" and err == ""
    report = json.loads((out / "report.json").read_text())
    assert [t["cached"] for t in report["tracks"]] == [False, False]  # --seed 3 changed the keys
    code, stdout, _ = run(capsys, "render", str(session), "-o", str(out), "--no-cache", "-q")
    assert code == EXIT_OK and stdout == ""


def test_render_errors_write_nothing(tmp_path, capsys):
    import tomli_w
    from blendfx.render.session import load_session

    session = basic_session(tmp_path / "s")
    (tmp_path / "s" / "corrupt.wav").write_bytes(b"not audio at all" * 100)
    base = load_session(session).to_dict()
    cases = {"missing.toml": None,
             "param.toml": {"chain": {"type": "Chain",
                                      "plugins": [{"type": "Utility", "gain_db": 600.0}]}},
             "preset.toml": {"preset": "nope"},
             "corrupt.toml": {"file": "corrupt.wav"},
             "escape.toml": {"file": "../../etc/passwd"}}
    for name, change in cases.items():
        if change is not None:
            manifest = json.loads(json.dumps(base))
            manifest["tracks"][0].pop("chain")
            manifest["tracks"][0].update(change)
            (tmp_path / "s" / name).write_text(tomli_w.dumps(manifest))
        out = tmp_path / f"out-{name}"
        code, _, err = run(capsys, "render", str(tmp_path / "s" / name), "-o", str(out))
        assert code == EXIT_USAGE, (name, err)
        line = one_error_line(err)
        assert {"missing.toml": "not found", "param.toml": "gain_db = 600.0",
                "preset.toml": "unknown preset 'nope'", "corrupt.toml": "corrupt.wav",
                "escape.toml": "outside the session folder"}[name] in line
        assert not out.exists(), name


def test_unwritable_output_is_exit_3(tmp_path, capsys):
    session = basic_session(tmp_path / "s")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "render", str(session), "-o", str(blocker / "out"))
    assert code == EXIT_IO
    one_error_line(err)


def test_presets_commands(capsys):
    code, out, _ = run(capsys, "presets", "list")
    assert code == EXIT_OK
    names = [ln.split()[0] for ln in out.splitlines()]
    assert "default" in names and len(names) >= 9
    code, out, _ = run(capsys, "presets", "show", "subway-lofi")
    assert code == EXIT_OK and out.startswith("# subway-lofi: ") and "[chain]" in out
    code, _, err = run(capsys, "presets", "show", "nope")
    assert code == EXIT_USAGE and "unknown preset 'nope'" in one_error_line(err)


def test_session_import_command(tmp_path, capsys):
    rpp = shared("sessions", "reaper", "griffinsauce", "with-external-files.rpp")
    out = tmp_path / "imported.toml"
    code, stdout, err = run(capsys, "session", "import", str(rpp), "-o", str(out))
    assert code == EXIT_OK
    assert "49 tracks, 3 buses, 27 missing media file(s)" in stdout  # files, not items
    assert "blendfx: warning: missing media:" in err and "06-Left-201115_1121.wv" in err
    missing = [ln for ln in err.splitlines() if "missing media:" in ln]
    assert len(missing) == len(set(missing)) == 27  # the issue: one line per item (57 for one)
    assert "blendfx: stand-in: 'MT-PowerDrumKit'" in err
    assert out.is_file() and (tmp_path / "imported.midi" / "02-MT-PowerDrumKit.mid").is_file()
    code, stdout, _ = run(capsys, "session", "import", str(rpp), "-o", str(out), "--report",
                          "--overwrite")
    assert code == EXIT_OK
    head, rule, *rows = stdout.splitlines()
    assert head.split()[:3] == ["REAPER", "track", "kind"] and set(rule) <= {"-", " "}
    assert any(r.startswith("MT-PowerDrumKit") and "stand-in drums" in r for r in rows)
    assert any(r.startswith("not rendered: plug-in FX") and "ReaVerbate on 'Cymbals'" in r
               for r in rows)
    code, _, err = run(capsys, "session", "import", str(tmp_path / "nope.rpp"), "-o", str(out))
    assert code == EXIT_USAGE and "not found" in one_error_line(err)


def test_inspect_command(tmp_path, capsys):
    write_stem(tmp_path, "t.wav", tone(440, 0.5, amp=0.5))
    code, out, _ = run(capsys, "inspect", str(tmp_path / "t.wav"), "-o", str(tmp_path / "t.png"),
                       "--mask")
    assert code == EXIT_OK and (tmp_path / "t.png").stat().st_size > 1000
    assert "sample peak -6.02 dBFS" in out and "0.50 s, 44100 Hz, 1 channel(s)" in out
    code, _, err = run(capsys, "inspect", str(tmp_path / "t.wav"), "-o", str(tmp_path / "t.jpg"))
    assert code == EXIT_USAGE and "writes .png files" in one_error_line(err)
    code, _, err = run(capsys, "inspect", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.png"))
    assert code == EXIT_USAGE and "not found" in one_error_line(err)


def test_console_script_exit_codes(tmp_path):
    exe = shutil.which("blendfx", path=str(__import__("pathlib").Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "blendfx.render.cli"]
    bad = subprocess.run([*cmd, "render", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == EXIT_USAGE and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("blendfx: error: session file not found")


def test_demo_writes_the_main_job_outputs(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "demo", "-o", str(out), "--duration", "8", "-q")
    assert code == EXIT_OK, err
    assert {"mix.wav", "report.json", "report.png", "stems/music.wav", "stems/train.wav"} <= set(
        output_files(out))
    report = json.loads((out / "report.json").read_text())
    music = next(t for t in report["tracks"] if t["name"] == "music")
    assert 0.0 <= music["unmasked_fraction"] <= 1.0
    assert music["masked_share"] == pytest.approx(1.0 - music["unmasked_fraction"])
    assert isinstance(music["loudness_increase_lu"], float) and isinstance(music["nmr_bark_db"], float)
    assert report["master"]["output_lufs"] == pytest.approx(-16.0, abs=0.5)
    mix, sr = read_audio(out / "mix.wav")
    assert mix.shape[1] == 8 * sr and np.isfinite(mix).all() and np.abs(mix).max() < 1.0
    train, _ = read_audio(out / "stems" / "train.wav")
    assert np.abs(mix - train).max() > 1e-3  # the music is in the mix


def test_blend_command(tmp_path, capsys):
    noise = shared("noise", "esc10", "chainsaw")
    clip = sorted(noise.iterdir())[0]
    out = tmp_path / "blended.wav"
    code, stdout, err = run(capsys, "blend", str(clip), "-o", str(out), "--prompt", "jazz",
                            "--seed", "1")
    assert code == EXIT_OK, err
    mix, sr = read_audio(out)
    src, _ = read_audio(clip)
    assert sr == 44100 and mix.shape[1] == src.shape[1] and np.isfinite(mix).all()
    assert not list(tmp_path.glob(".blendfx-blend*"))  # the work folder is gone
    code, _, err = run(capsys, "blend", str(clip), "-o", str(tmp_path / "x.mp3"))
    assert code == EXIT_USAGE and "writes .wav, .flac" in one_error_line(err)
    code, _, err = run(capsys, "blend", str(clip), "-o", str(tmp_path / "y.wav"), "--preset", "zz")
    assert code == EXIT_USAGE and "unknown preset 'zz'" in one_error_line(err)
    assert not (tmp_path / "y.wav").exists()


def test_blend_command_masking_goal_and_loudness_budget(tmp_path, capsys):
    clip = sorted(shared("noise", "esc10", "rain").iterdir())[0]
    out = tmp_path / "goal.wav"
    code, stdout, err = run(capsys, "blend", str(clip), "-o", str(out), "--mask-goal", "0.5",
                            "--loudness-budget", "4", "--seed", "1",
                            "--report", str(tmp_path / "goal.json"))
    assert code == EXIT_OK, err
    blend = json.loads((tmp_path / "goal.json").read_text())["blend"]
    assert blend["goal_met"] is False and blend["limited_by"] == "loudness_budget"
    assert blend["within_budget"] is True
    mix, sr = read_audio(out)
    src, _ = read_audio(clip)
    assert "LU over the noise" in stdout
    # rain needs ~11 LU for half its core: the budget wins, and the command says so
    assert "masking goal 0.5 missed (held back by the loudness budget)" in stdout
    # the budget holds on what plays (the preset's compressor and reverb run inside the Blend)
    # against the noise as it plays in the mix: panned (-3 dB) and lowered with the music
    noise = played_noise(src, mix.shape[0], blend["output_gain_db"])
    assert integrated_lufs(mix, sr) - integrated_lufs(noise, sr) < 4.0 + 0.1


def played_noise(src: np.ndarray, channels: int, gain_db: float) -> np.ndarray:
    """A mono noise as the blend's mix carries it: on both channels at -3 dB (the pan law),
    times the master's one gain."""
    pan = 1.0 / np.sqrt(2.0) if src.shape[0] == 1 else 1.0
    return np.repeat(src, channels // src.shape[0], axis=0) * np.float32(pan * 10 ** (gain_db / 20))


def test_blend_command_meets_a_masking_goal_on_a_loud_noise(tmp_path, capsys):
    # a chainsaw at -15 LUFS peaking at -1 dBTP: masking half its core needs the music far
    # above the ceiling, so noise and music are lowered together (never limited or clipped)
    clip = shared("noise", "esc10", "chainsaw", "1-116765-A.ogg")
    out, report_path = tmp_path / "goal.wav", tmp_path / "goal.json"
    code, stdout, err = run(capsys, "blend", str(clip), "-o", str(out), "--mask-goal", "0.5",
                            "--seed", "1", "--report", str(report_path))
    assert code == EXIT_OK, err
    report = json.loads(report_path.read_text())
    blend = report["blend"]
    assert blend["goal_met"] is True and blend["masked_share"] >= 0.5 - 1e-3
    assert blend["output_gain_db"] < -3.0 and report["master"]["limiter_engaged"] is False
    assert "lowered" in stdout and "missed" not in stdout
    mix, sr = read_audio(out)
    src, _ = read_audio(clip)
    assert true_peak_dbtp(mix) <= -1.0 + 0.01 and np.abs(mix).max() < 1.0
    # recomputed from the files: the mix minus the noise as it plays in it is the music
    noise = played_noise(src, mix.shape[0], blend["output_gain_db"])
    again = blend_report(noise, mix - noise, sr)
    assert again["masked_share"] >= 0.5 - 0.01
    assert again["masked_share"] == pytest.approx(blend["masked_share"], abs=0.01)
    assert again["loudness_increase_lu"] == pytest.approx(blend["loudness_increase_lu"], abs=0.1)
    # the default (no goal) on the same clip: less masked, and the report says so
    code, _, err = run(capsys, "blend", str(clip), "-o", str(tmp_path / "plain.wav"), "-q",
                       "--seed", "1", "--report", str(tmp_path / "plain.json"))
    assert code == EXIT_OK, err
    plain = json.loads((tmp_path / "plain.json").read_text())["blend"]
    assert plain["goal_met"] is None and plain["masked_share"] < blend["masked_share"]
