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


def _tiny_generator(cls_name: str) -> Callable[[], Any]:
    """Diffusion generators on the tiny test pipeline (tests/tiny_diffusion.py), with few
    steps and a short inverse so the suite's dozen calls stay fast.

    The tiny model's kernels are too small to split across threads; on a busy machine two
    OpenMP threads mostly wait for each other (5x slower, measured), so each call runs with
    one torch thread and restores the setting afterwards. Behaviour is unchanged."""

    def make() -> Any:
        import blendfx
        import torch

        from .diffusion.tiny_diffusion import tiny_model_folder

        base = blendfx.EFFECT_REGISTRY[cls_name]

        class _OneThread(base):  # leading underscore: not registered
            def _render(self, clips, sample_rate):
                before = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    return super()._render(clips, sample_rate)
                finally:
                    torch.set_num_threads(before)

        _OneThread.__name__ = _OneThread.__qualname__ = f"_OneThread{cls_name}"
        return _OneThread(model=tiny_model_folder(), device="cpu", steps=2, guidance=1.0,
                          inverse_iters=2, inverse_mel_iters=2, progress=False)

    return make


FACTORIES["OutpaintInpaint"] = _tiny_generator("OutpaintInpaint")
FACTORIES["MaskedImg2Img"] = _tiny_generator("MaskedImg2Img")


def _tiny_text_to_music() -> Any:
    """TextToMusic on the tiny AudioLDM 2 pipeline (tests/effects/diffusion/tiny_audioldm2.py),
    2 steps, one torch thread per call (as the generators above)."""
    import blendfx
    import torch

    from .diffusion.tiny_audioldm2 import tiny_audioldm2_folder

    class _OneThreadTextToMusic(blendfx.EFFECT_REGISTRY["TextToMusic"]):  # not registered
        def _process(self, audio, sample_rate, sidechain):
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return super()._process(audio, sample_rate, sidechain)
            finally:
                torch.set_num_threads(before)

    return _OneThreadTextToMusic(model=tiny_audioldm2_folder(), device="cpu", steps=2, progress=False)


FACTORIES["TextToMusic"] = _tiny_text_to_music
