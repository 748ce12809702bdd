"""blendfx's effects: one module per stage, each a small class over core functions.

Every class here is registered in :data:`blendfx.EFFECT_REGISTRY` (the preset allow-list and the
conformance suite's list) by subclassing :class:`blendfx.Effect`.
"""

from .amplifier import AdaptiveAmplifier, LoudnessNormalize
from .blend import Blend, MusicTrack
from .composer import Composer
from .ducker import Ducker
from .mask_extractor import MaskExtractor
from .masked_img2img import MaskedImg2Img
from .outpaint_inpaint import OutpaintInpaint
from .segmenter import MusicNoiseSegmenter
from .stylizer import Stylizer
from .utility import Utility

__all__ = ["AdaptiveAmplifier", "Blend", "Composer", "Ducker", "LoudnessNormalize", "MaskExtractor",
           "MaskedImg2Img", "MusicNoiseSegmenter", "MusicTrack", "OutpaintInpaint", "Stylizer", "Utility"]
