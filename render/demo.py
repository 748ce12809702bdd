"""``blendfx demo``: a synthesized train ride, blended into music written for it.

The demo needs no recordings, no model weights and no GPU: it synthesizes its own noise scene,
writes it as a session (``OUT/session/session.toml`` + ``OUT/session/train.flac``) with a music
track generated for the noise by a preset (``default``: the Blend with the procedural
composer), and renders that session into ``OUT`` (mix, stems, report.json, report.png).

The train, so the composer has something to lock on to:

- wheel clacks over rail joints: a double hit (two axles of a bogie) on a steady pulse, each hit
  a noise burst with metallic ringing modes, slightly irregular like a real train;
- traction hum: 50 Hz mains-like hum with decaying harmonics and a slow wobble;
- rumble: low-passed brown noise, slowly swelling;
- brake squeal now and then: a high, slightly vibrating tone with harmonics.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from blendfx.audio_io import write_audio
from blendfx.device import validate_device
from blendfx.effect import EFFECT_REGISTRY
from blendfx.errors import ParameterError
from blendfx.presets import factory_preset_path, read_preset
from scipy.signal import butter, lfilter, sosfilt

from .cache import CACHE_DIR
from .renderer import render_session
from .session import save_session

__all__ = ["synthesize_train", "write_demo_session", "run_demo"]

#: Pulse of the wheel clacks (BPM of the bogie double-hits).
TRAIN_BPM = 96.0


def synthesize_train(duration: float = 24.0, sample_rate: float = 44100.0, seed: int = 0
                     ) -> np.ndarray:
    """A stereo train-ride noise scene, ``(2, samples)`` float32, about -20 LUFS.

    Parameters
    ----------
    duration : float
        Seconds.
    sample_rate : float
        Hz.
    seed : int
        Same seed, same scene.
    """

    rng = np.random.default_rng(seed)
    sr = float(sample_rate)
    n = int(round(duration * sr))
    out = np.zeros((2, n), np.float32)
    # The beds are made 10 s at a time with carried filter states, so an hour of train needs
    # little more memory than its output.
    chunk = int(10 * sr)
    rumble_sos = butter(4, [25.0, 180.0], "bandpass", fs=sr, output="sos")
    roll_sos = butter(2, [250.0, 3500.0], "bandpass", fs=sr, output="sos")
    leak = 1.0 - 2 * np.pi * 20.0 / sr  # a leaky integrator: brown noise without drift
    zi_brown = np.zeros((2, 1))
    zi_rumble = np.zeros((rumble_sos.shape[0], 2, 2))
    zi_roll = np.zeros((roll_sos.shape[0], 2, 2))
    phase0 = rng.uniform(0, 6.3, size=8)
    hum_phase = 0.0
    scale_rumble = scale_roll = None
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        t = np.arange(a, b) / sr
        # rumble: brown noise, band-passed, slowly swelling
        brown, zi_brown = lfilter([1.0], [1.0, -leak], rng.standard_normal((2, b - a)), axis=1,
                                  zi=zi_brown)
        rumble, zi_rumble = sosfilt(rumble_sos, brown, axis=1, zi=zi_rumble)
        scale_rumble = scale_rumble or 0.3 / (4 * np.std(rumble) + 1e-12)
        out[:, a:b] += scale_rumble * rumble * (0.75 + 0.25 * np.sin(2 * np.pi * t / 7.3
                                                                     + phase0[0]))
        # rolling noise: wheels on rail, a broadband roar between the clacks
        roll, zi_roll = sosfilt(roll_sos, rng.standard_normal((2, b - a)), axis=1, zi=zi_roll)
        scale_roll = scale_roll or 0.1 / (4 * np.std(roll) + 1e-12)
        out[:, a:b] += scale_roll * roll * (0.8 + 0.2 * np.sin(2 * np.pi * t / 5.1))
        # traction hum: 50 Hz and harmonics, with a slow wobble of pitch and level
        wobble = 1.0 + 0.002 * np.sin(2 * np.pi * 0.31 * t)
        phase = hum_phase + 2 * np.pi * 50.0 * np.cumsum(wobble) / sr
        hum_phase = float(phase[-1])
        hum = sum((0.6 ** k) * np.sin((k + 1) * phase + phase0[k + 1]) for k in range(6))
        out[:, a:b] += 0.05 * hum * (0.85 + 0.15 * np.sin(2 * np.pi * 0.13 * t))

    # wheel clacks: double hits on a steady pulse
    beat = 60.0 / TRAIN_BPM
    modes = np.array([380.0, 1150.0, 2650.0, 4100.0])
    hit_len = int(0.12 * sr)
    th = np.arange(hit_len) / sr
    for k in range(int(duration / beat) + 1):
        for j, lag in enumerate((0.0, 0.16)):
            start = k * beat + lag + rng.normal(0, 0.004)
            i0 = int(start * sr)
            if i0 < 0 or i0 >= n:
                continue
            amp = (0.55 if j == 0 else 0.42) * rng.uniform(0.85, 1.1)
            burst = rng.standard_normal(hit_len) * np.exp(-th / 0.008)
            ring = sum(np.sin(2 * np.pi * f * rng.uniform(0.98, 1.02) * th) *
                       np.exp(-th / rng.uniform(0.015, 0.04)) / (1 + i) for i, f in enumerate(modes))
            hit = amp * (0.6 * burst + 0.5 * ring)
            m = min(hit_len, n - i0)
            pan = rng.uniform(-0.25, 0.25)
            out[0, i0:i0 + m] += hit[:m] * (1 - pan)
            out[1, i0:i0 + m] += hit[:m] * (1 + pan)

    # brake squeal: once or twice, a high tone with vibrato
    for _ in range(max(1, int(duration // 15))):
        start = rng.uniform(0.3, 0.8) * duration
        length = min(rng.uniform(1.2, 2.0), duration - start)
        i0, m = int(start * sr), int(length * sr)
        ts = np.arange(m) / sr
        f0 = rng.uniform(2900, 3600)
        ph = 2 * np.pi * np.cumsum(f0 * (1 + 0.004 * np.sin(2 * np.pi * 6.0 * ts))) / sr
        env = np.sin(np.pi * ts / length) ** 2
        squeal = env * (np.sin(ph) + 0.3 * np.sin(2 * ph))
        out[:, i0:i0 + m] += 0.05 * squeal

    hp = butter(2, 20.0, "highpass", fs=sr, output="sos")
    zi = np.zeros((hp.shape[0], 2, 2))
    for a in range(0, n, chunk):
        out[:, a:a + chunk], zi = sosfilt(hp, out[:, a:a + chunk], axis=1, zi=zi)
    out *= np.float32(0.5 / max(float(np.abs(out).max()), 1e-9))  # -6 dBFS peak
    return out


def write_demo_session(folder: str | os.PathLike[str], *, duration: float = 24.0,
                       seed: int = 0, preset: str = "default", prompt: str | None = None,
                       sample_rate: float = 44100.0) -> Path:
    """Write the demo session (noise file + manifest) into ``folder``; return the manifest path."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_audio(folder / "train.flac", synthesize_train(duration, sample_rate, seed), sample_rate)
    music: dict[str, Any] = {"name": "music", "role": "music", "key": "train", "preset": preset}
    if prompt:
        # the prompt rides on a chain copied from the preset, with every Blend's prompt set

        chain = read_preset(preset)["chain"]
        music.pop("preset")
        music["chain"] = with_prompt(chain, prompt)
    manifest = {
        "session": {"name": "train-demo", "sample_rate": int(sample_rate), "tempo": TRAIN_BPM,
                    "seed": seed},
        "master": {"target_lufs": -16.0, "true_peak_dbtp": -1.0, "format": "wav",
                   "bit_depth": 24},
        "tracks": [
            {"name": "train", "file": "train.flac", "role": "noise"},
            music,
        ],
    }
    header = ("blendfx demo: a synthesized train ride (train.flac) and music written for it\n"
              f"by the {preset!r} preset. Edit and re-render with: blendfx render "
              f"{folder.name}/session.toml -o OUT")
    return save_session(manifest, folder / "session.toml", header=header)


def with_prompt(chain: dict[str, Any], prompt: str) -> dict[str, Any]:
    """A copy of a processor dict with ``prompt`` set on every effect that has one."""

    out = dict(chain)
    cls = EFFECT_REGISTRY.get(str(out.get("type")))
    if cls is not None and "prompt" in cls.params():
        out["prompt"] = prompt
    if isinstance(out.get("plugins"), list):
        out["plugins"] = [with_prompt(p, prompt) for p in out["plugins"]]
    return out


def run_demo(out_dir: str | os.PathLike[str], *, duration: float = 24.0, seed: int = 0,
             preset: str = "default", prompt: str | None = None, device: str | None = None,
             progress: bool = True):
    """Synthesize the train, write the session into ``out_dir/session`` and render it to
    ``out_dir``. Returns the :class:`~blendfx.render.renderer.RenderResult`."""

    # every option is checked before anything is written
    if not 2.0 <= duration <= 3600.0:
        raise ParameterError(f"demo duration = {duration:g} s is out of range [2, 3600] s")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ParameterError(f"demo seed = {seed!r} must be an integer in [0, 2**32)")
    if device is not None:
        validate_device(device)
    factory_preset_path(preset)  # an unknown preset is an error before anything is written
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"output folder {out} exists and is not a folder")
    created = [p for p in (out, out / "session") if not p.exists()]
    try:
        manifest = write_demo_session(out / "session", duration=duration, seed=seed,
                                      preset=preset, prompt=prompt)
        return render_session(manifest, out, device=device, progress=progress)
    except BaseException:
        for folder in reversed(created):  # what this run made, and nothing else
            if folder == out / "session":
                shutil.rmtree(folder, ignore_errors=True)
            else:
                _remove_if_empty(folder)
        raise


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if it holds nothing but the render's hidden cache."""
    with contextlib.suppress(OSError):
        if all(p.name == CACHE_DIR for p in folder.iterdir()):
            shutil.rmtree(folder)
