"""Signal-processing building blocks every stage shares, on plain arrays.

- :mod:`blendfx.dsp.convolution`: block overlap-add convolution with long impulse responses,
  and FIR filters as matrix products;
- :mod:`blendfx.dsp.melscale`: mel scales and filterbanks (librosa's numbers, without librosa);
- :mod:`blendfx.dsp.loudness`: BS.1770-4 loudness (pyloudnorm and a streaming meter), true peak.

The lowest layer of blendfx: it imports only :mod:`blendfx.errors` and :mod:`blendfx.buffers`.
"""
