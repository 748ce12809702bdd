"""BNMusic's stage 2: raise the music just enough to mask the noise's core.

- :mod:`.amplifier`: the effects ``AdaptiveAmplifier`` and ``LoudnessNormalize``;
- :mod:`.gain_solver`: BNMusic's objective and its exact solvers (global, per frame, per band);
- :mod:`.band_eq`: Bark bands over the mel grid and the zero-phase band EQ.
"""

from .amplifier import AdaptiveAmplifier, LoudnessNormalize

__all__ = ["AdaptiveAmplifier", "LoudnessNormalize"]
