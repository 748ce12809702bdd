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
    steps and a short inverse so the suite's dozen calls stay fast."""

    def make() -> Any:
        import blendfx

        from .tiny_diffusion import tiny_model_folder

        return blendfx.EFFECT_REGISTRY[cls_name](
            model=tiny_model_folder(), device="cpu", steps=2, guidance=1.0, inverse_iters=2,
            inverse_mel_iters=2, progress=False)

    return make


FACTORIES["OutpaintInpaint"] = _tiny_generator("OutpaintInpaint")
FACTORIES["MaskedImg2Img"] = _tiny_generator("MaskedImg2Img")
