"""``Utility``: gain, pan and polarity, the plugin every DAW track has."""

from __future__ import annotations

import numpy as np
from blendfx.effect import Effect
from blendfx.params import BoolParam, FloatParam

__all__ = ["Utility"]


class Utility(Effect):
    """Gain (dB), constant-power pan, mono fold-down and polarity inversion.

    Parameters
    ----------
    gain_db : float
        Gain in dB, -96 to +24.
    pan : float
        -1 (left) to +1 (right); applied to stereo output with a -3 dB constant-power law.
        Mono input stays mono when ``pan`` is 0.
    mono : bool
        Fold the input to mono first.
    invert : bool
        Flip the polarity.

    Examples
    --------
    >>> import numpy as np
    >>> Utility(gain_db=-6.0)(np.ones(4, np.float32), 44100).round(3)
    array([0.501, 0.501, 0.501, 0.501], dtype=float32)
    """

    gain_db = FloatParam(0.0, min=-96.0, max=24.0, unit="dB", doc="Output gain.")
    pan = FloatParam(0.0, min=-1.0, max=1.0, doc="Stereo position, -1 left .. +1 right.")
    mono = BoolParam(False, doc="Fold to mono before panning.")
    invert = BoolParam(False, doc="Invert polarity.")

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        gain = 10.0 ** (self.gain_db / 20.0) * (-1.0 if self.invert else 1.0)
        out = audio.mean(axis=0, keepdims=True) if self.mono else audio
        out = out * np.float32(gain)
        if self.pan != 0.0:
            if out.shape[0] == 1:
                out = np.repeat(out, 2, axis=0)
            theta = (self.pan + 1.0) * np.pi / 4.0  # constant power: -3 dB at centre
            out = out * np.array([[np.cos(theta)], [np.sin(theta)]], np.float32) * np.sqrt(2.0)
        return out
