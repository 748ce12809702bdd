"""BNMusic's whole chain as one plugin on a noise track, and the measures of a blend.

- :mod:`.blend`: ``Blend`` (mask extraction -> generator -> amplifier -> mix) and ``MusicTrack``;
- :mod:`.metrics`: how much of a noise a music hides, and at what loudness cost;
- :mod:`.similarity`: SSIM and chroma-CENS similarity (the mask-based diffusion paper's measures).
"""

from .blend import Blend, MusicTrack, best_offset, track_masking

__all__ = ["Blend", "MusicTrack", "best_offset", "track_masking"]
