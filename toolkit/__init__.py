"""blendfx: DAW-plugin-style audio effects that blend environmental noise into music.

The public surface, pedalboard style::

    import blendfx, pedalboard
    from blendfx.effects import Utility

    chain = blendfx.Chain([pedalboard.HighpassFilter(80), Utility(gain_db=-3), pedalboard.Reverb()])
    audio, sr = blendfx.read_audio("noise.wav")
    blendfx.write_audio("out.wav", chain(audio, sr), sr)

Core modules: :mod:`blendfx.audio_io` (files), :mod:`blendfx.buffers` (layouts),
:mod:`blendfx.spectrogram` and :mod:`blendfx.spectrogram_image` (Riffusion's spectrograms),
:mod:`blendfx.mask`, :mod:`blendfx.effect` (the protocol), :mod:`blendfx.chain`,
:mod:`blendfx.presets`. Effects live in :mod:`blendfx.effects`, offline rendering and the CLI in
:mod:`blendfx.render`.
"""

from .audio_io import audio_info, read_audio, write_audio
from .chain import Chain, Mix
from .effect import EFFECT_REGISTRY, Effect
from .errors import (
    AudioFileError,
    BlendfxError,
    ModelNotFoundError,
    ParameterError,
    PresetError,
    SessionError,
)
from .mask import Mask
from .presets import load_preset, save_preset
from .spectrogram import SpectrogramConverter, SpectrogramParams
from .spectrogram_image import SpectrogramImage, image_from_mel, mel_from_image

__version__ = "0.1.0"

__all__ = [
    "AudioFileError",
    "BlendfxError",
    "Chain",
    "EFFECT_REGISTRY",
    "Effect",
    "Mask",
    "Mix",
    "ModelNotFoundError",
    "ParameterError",
    "PresetError",
    "SessionError",
    "SpectrogramConverter",
    "SpectrogramImage",
    "SpectrogramParams",
    "audio_info",
    "image_from_mel",
    "load_preset",
    "mel_from_image",
    "read_audio",
    "save_preset",
    "write_audio",
    "__version__",
]

# Register the shipped effects so presets and the conformance suite see them.
from . import effects as _effects  # noqa: E402,F401
