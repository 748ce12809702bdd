"""Helpers for session tests: short synthetic stems and manifests written to a tmp folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tomli_w


def tone(freq: float, seconds: float, sr: float = 44100, channels: int = 1, amp: float = 0.3,
         seed: int | None = None) -> np.ndarray:
    """A sine (or, with ``seed``, a sine plus a little noise), ``(channels, n)`` float32."""
    t = np.arange(int(round(seconds * sr))) / sr
    x = amp * np.sin(2 * np.pi * freq * t)
    out = np.repeat(x[None], channels, axis=0)
    if seed is not None:
        out = out + 0.02 * np.random.default_rng(seed).standard_normal(out.shape)
    if channels == 2:
        out[1] *= 0.8  # not a mono copy
    return out.astype(np.float32)


def write_stem(folder: Path, name: str, audio: np.ndarray, sr: float = 44100) -> str:
    import blendfx

    blendfx.write_audio(folder / name, audio, sr)
    return name


def write_session(folder: Path, manifest: dict[str, Any], name: str = "session.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(tomli_w.dumps(manifest), encoding="utf-8")
    return path


def basic_session(folder: Path, seconds: float = 2.0, **session: Any) -> Path:
    """Two file tracks (mono noise-ish tone, stereo tone) with small chains."""
    folder.mkdir(parents=True, exist_ok=True)
    write_stem(folder, "noise.wav", tone(220, seconds, seed=1))
    write_stem(folder, "music.wav", tone(440, seconds, channels=2, seed=2))
    manifest = {
        "session": {"sample_rate": 44100, "tempo": 120, **session},
        "master": {"target_lufs": -18.0, "true_peak_dbtp": -1.0},
        "tracks": [
            {"name": "noise", "file": "noise.wav", "role": "noise", "gain_db": -2.0, "pan": -0.5,
             "chain": {"type": "Chain", "plugins": [
                 {"type": "pedalboard.HighpassFilter", "cutoff_frequency_hz": 80.0}]}},
            {"name": "music", "file": "music.wav", "role": "music", "offset": 0.25,
             "sidechain": "noise",
             "chain": {"type": "Chain", "plugins": [{"type": "Ducker", "depth_db": 6.0},
                                                    {"type": "Utility", "gain_db": -1.0}]}},
        ],
    }
    return write_session(folder, manifest)


def output_files(out: Path) -> list[str]:
    """Every file under ``out`` outside the hidden cache, relative, sorted."""
    if not out.exists():
        return []
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.is_file() and ".blendfx-cache" not in p.parts)
