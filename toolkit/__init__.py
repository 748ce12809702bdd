"""blendfx: DAW-plugin-style audio effects that blend environmental noise into music.

The public surface, pedalboard style::

    import blendfx, pedalboard
    from blendfx.effects import Utility

    chain = blendfx.Chain([pedalboard.HighpassFilter(80), Utility(gain_db=-3), pedalboard.Reverb()])
    audio, sr = blendfx.read_audio("noise.wav")
    blendfx.write_audio("out.wav", chain(audio, sr), sr)

The core (this package): :mod:`blendfx.audio_io` (files), :mod:`blendfx.buffers` (layouts),
:mod:`blendfx.effect` (the protocol), :mod:`blendfx.params`, :mod:`blendfx.chain`,
:mod:`blendfx.presets`, :mod:`blendfx.errors`; :mod:`blendfx.dsp` (convolution, mel scale,
loudness) and :mod:`blendfx.spectral` (Riffusion's spectrograms, images, masks, masking
threshold). The stages live in :mod:`blendfx.effects`, one package each; offline rendering and the
CLI in :mod:`blendfx.render`.

Every name loads on first use (PEP 562, through ``lazy_loader`` as librosa does):
``import blendfx`` imports no numpy, torch, diffusers or librosa.
"""

import lazy_loader

__version__ = "0.1.0"

_EFFECTS = ["AdaptiveAmplifier", "Blend", "Composer", "Ducker", "LoudnessNormalize", "MaskExtractor",
            "MaskedImg2Img", "MusicNoiseSegmenter", "MusicTrack", "OutpaintInpaint", "Stylizer",
            "TextToMusic", "Utility"]

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["audio_io", "buffers", "chain", "device", "dsp", "effect", "effects", "errors",
                "files", "numba_cache", "params", "presets", "render", "spectral", "threads"],
    submod_attrs={
        "audio_io": ["audio_info", "read_audio", "write_audio"],
        "chain": ["Chain", "Mix"],
        "effect": ["EFFECT_REGISTRY", "Effect"],
        "errors": ["AudioFileError", "BlendfxError", "ModelNotFoundError", "ParameterError",
                   "ParameterTypeError", "PresetError", "SessionError"],
        "presets": ["load_preset", "save_preset"],
        "spectral.mask": ["Mask"],
        "spectral.spectrogram": ["SpectrogramConverter", "SpectrogramParams"],
        "spectral.spectrogram_image": ["SpectrogramImage", "image_from_mel", "mel_from_image"],
        "effects": _EFFECTS,
    },
)
__all__ = [*__all__, "__version__"]
