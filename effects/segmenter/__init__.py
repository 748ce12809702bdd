"""The music/noise CNN segmenter (DESIGN.md section 10) and the effect that uses it.

- :mod:`.segmenter`: the ``MusicNoiseSegmenter`` effect and the ``cnn`` mask mode;
- :mod:`.net`: the network, blocked STFTs, inference, weights I/O;
- :mod:`.data`: training sources, the split by file, mixtures, labels, AUC;
- :mod:`.train`: the seeded training command (``python -m blendfx.effects.segmenter.train``);
- ``weights/``: the shipped weights (safetensors) and their config.
"""

from .segmenter import MusicNoiseSegmenter, cnn_noise_mask, register_cnn_mode

__all__ = ["MusicNoiseSegmenter", "cnn_noise_mask", "register_cnn_mode"]
