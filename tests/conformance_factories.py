"""How the conformance suite builds each registered effect.

Most effects are built with their defaults. An effect that needs something the suite cannot
guess (a tiny model, a music file) registers a factory here: ``FACTORIES[name] = callable``
returning a ready instance. Keep factories fast: the suite runs each effect a dozen times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FACTORIES: dict[str, Callable[[], Any]] = {}

#: Effects the suite skips, with the reason (e.g. abstract helpers). Keep this empty if you can.
SKIP: dict[str, str] = {}



def _tiny_generator(cls_name: str) -> Callable[[], Any]:
    """Diffusion generators on the tiny test pipeline (tests/tiny_diffusion.py), with few
    steps and a short inverse so the suite's dozen calls stay fast.

    The tiny model's kernels are too small to split across threads; on a busy machine two
    OpenMP threads mostly wait for each other (5x slower, measured), so each call runs with
    one torch thread and restores the setting afterwards. Behaviour is unchanged."""

    def make() -> Any:
        import blendfx
        import torch

        from .tiny_diffusion import tiny_model_folder

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
