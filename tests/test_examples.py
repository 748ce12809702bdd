"""Each script in examples/ runs (subprocess, short inputs, a tmp output folder)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from blendfx import read_audio

from .conftest import shared

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_every_example_has_a_test():
    tested = {"chain_fx.py", "blend_noise.py", "render_session.py", "stylize_stem.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_chain_fx(tmp_path):
    out = tmp_path / "chain.wav"
    run("chain_fx.py", "-o", str(out), "--duration", "2")
    audio, sr = read_audio(out)
    assert audio.shape == (2, 2 * sr) and np.abs(audio).max() > 0.01
    assert out.with_suffix(".toml").read_text().startswith("# chain: example chain")


def test_render_session(tmp_path):
    stdout = run("render_session.py", "-o", str(tmp_path / "s"), "--duration", "2")
    assert '"output_lufs": -16' in stdout
    assert (tmp_path / "s" / "report.json").is_file()
    assert (tmp_path / "s" / "stems" / "pad.wav").is_file()


def test_stylize_stem(tmp_path):
    ref = shared("noise", "esc10", "rain", "1-17367-A.ogg")
    out = tmp_path / "st.wav"
    stdout = run("stylize_stem.py", str(ref), "-o", str(out), "--amount", "0.8")
    audio, sr = read_audio(out)
    assert sr == 44100 and audio.shape[-1] == 4 * sr and '"mode": "stylize"' in stdout


def test_blend_noise(tmp_path):
    noise = shared("noise", "esc10", "clock_tick", "1-21934-A.ogg")
    out = tmp_path / "b.wav"
    stdout = run("blend_noise.py", str(noise), "-o", str(out), "--seconds", "3", "--prompt",
                 "jazz")
    assert "unmasked fraction" in stdout
    mix, sr = read_audio(out)
    assert mix.shape[-1] == 3 * sr and np.isfinite(mix).all()
    # issue 23: no stray music.wav beside the output unless asked for
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.wav"]
    # what the music adds (its power over the noise's) is never negative; the mix's LUFS is
    # what was written
    from blendfx.dsp.loudness import integrated_lufs

    added = float(stdout.split("the music adds ")[1].split(" dB")[0])
    written = float(stdout.split("; mix ")[1].split(" LUFS")[0])
    assert added >= 0.0 and written == pytest.approx(integrated_lufs(mix, sr), abs=0.1)
    run("blend_noise.py", str(noise), "-o", str(out), "--seconds", "3", "--music",
        str(tmp_path / "m.wav"))
    assert (tmp_path / "m.wav").is_file()
