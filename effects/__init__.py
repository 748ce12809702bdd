"""blendfx's effects: one package per stage (the effect class beside its engine), small effects
as single modules.

Every class here is a :class:`blendfx.Effect`, registered in :data:`blendfx.EFFECT_REGISTRY` (the
preset allow-list) through the ``blendfx.effects`` entry points in ``setup.cfg``. The names load
on first use, so ``from blendfx.effects import Utility`` imports neither torch nor the Composer.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["amplifier", "blend", "composer", "diffusion", "ducker", "mask_extractor",
                "segmenter", "stylizer", "utility", "video"],
    submod_attrs={
        "amplifier": ["AdaptiveAmplifier", "LoudnessNormalize"],
        "blend": ["Blend", "MusicTrack"],
        "composer": ["Composer"],
        "diffusion": ["MaskedImg2Img", "OutpaintInpaint", "TextToMusic"],
        "ducker": ["Ducker"],
        "mask_extractor": ["MaskExtractor"],
        "segmenter": ["MusicNoiseSegmenter"],
        "stylizer": ["Stylizer"],
        "utility": ["Utility"],
    },
)
