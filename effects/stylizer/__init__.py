"""The Stylizer: make a stem sound as if recorded where a reference was (DESIGN.md section 9).

- :mod:`.stylizer`: the ``Stylizer`` effect;
- :mod:`.reference_profile`: what a reference says about its place, analysed once;
- :mod:`.reverb_analysis`: blind RT60 per band and the direct-to-reverberant ratio;
- :mod:`.impulse`: synthetic room responses with a given decay;
- :mod:`.spectral_match`: long-term spectra and the matching EQ;
- :mod:`.ambience`: the reference's stationary bed, re-synthesized to any length;
- :mod:`.probe_signals`: dry probes and rooms with known answers, for measuring all this.
"""

from .stylizer import Stylizer

__all__ = ["Stylizer"]
