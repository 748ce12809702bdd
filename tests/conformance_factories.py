"""How the conformance suite builds each registered effect.

Most effects are built with their defaults. An effect that needs something the suite cannot
guess (a tiny model, a music file) registers a factory here: ``FACTORIES[name] = callable``
returning a ready instance. Keep factories fast: the suite runs each effect a dozen times.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

FACTORIES: dict[str, Callable[[], Any]] = {}

#: Effects the suite skips, with the reason (e.g. abstract helpers). Keep this empty if you can.
SKIP: dict[str, str] = {}


@functools.lru_cache(maxsize=1)
def _music_file() -> str:
    """A short stereo music-like file (a chord with a pulse), written once per process."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    import blendfx
    import numpy as np

    sr = 44100
    t = np.arange(2 * sr) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0)) / 4
    pulse = 0.5 + 0.5 * (np.sin(2 * np.pi * 2.0 * t) > 0)
    left = 0.3 * chord * pulse
    right = 0.3 * np.roll(chord, 441) * pulse
    folder = tempfile.mkdtemp(prefix="blendfx-conformance-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = Path(folder) / "music.wav"
    blendfx.write_audio(path, np.stack([left, right]).astype(np.float32), sr)
    return str(path)


def _music_track():
    from blendfx.effects import MusicTrack

    return MusicTrack(path=_music_file())


def _blend():
    from blendfx.effects import Blend, MusicTrack

    return Blend(generator=MusicTrack(path=_music_file()))


FACTORIES["MusicTrack"] = _music_track
FACTORIES["Blend"] = _blend
