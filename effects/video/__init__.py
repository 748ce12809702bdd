"""Video for scoring music to picture (the PixMus row): reading, analysis, muxing, test videos.

- :mod:`.analysis`: :func:`analyze_video` decodes a video once with PyAV (threaded, measured
  on small copies of the decoder's planes) into a :class:`VideoFeatures`: per-frame brightness,
  motion, saturation, hue and cut score with times, hard cuts, dissolves and fades, per-shot
  summaries, colour key frames and the soundtrack;
- :mod:`.mux`: :func:`mux_soundtrack` writes the picture with a new soundtrack (packets copied);
- :mod:`.synth`: :func:`write_video` makes test videos with known cut times;
- :mod:`.metrics`: PixMus's low-level metrics (spectral centroid, contrast, chroma errors).

This package needs only PyAV, numpy and scipy (and librosa for the metrics); it knows nothing
of the other stages: turning a picture into a Composer timeline is the job of
:mod:`blendfx.render.score`.
"""

from .analysis import MAX_PIXELS, Shot, Transition, VideoError, VideoFeatures, analyze_video, read_soundtrack
from .mux import mux_soundtrack
from .synth import ShotSpec, write_video

__all__ = ["analyze_video", "read_soundtrack", "VideoFeatures", "Shot", "Transition", "VideoError",
           "MAX_PIXELS", "mux_soundtrack", "ShotSpec", "write_video"]
