"""Spectrograms as Riffusion sees them, and what blendfx reads off them.

- :mod:`blendfx.spectral.spectrogram`: mel spectrograms exactly as Riffusion computes them;
- :mod:`blendfx.spectral.spectrogram_inverse`: mel magnitudes back to audio, fast;
- :mod:`blendfx.spectral.spectrogram_image`: mel magnitudes <-> 8-bit images;
- :mod:`blendfx.spectral.mask`: masks over those images;
- :mod:`blendfx.spectral.analysis`: any audio -> image, a mel mask -> an audio filter, resampling;
- :mod:`blendfx.spectral.psychoacoustics`: the masking threshold on the mel grid.

Imports :mod:`blendfx.dsp` and the core's plain modules, never a stage.
"""
