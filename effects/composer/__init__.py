"""The Composer: music written for a noise, with no model weights (blendfx's default generator).

From the noise to the music, in the order the Composer runs them:

- :mod:`.listening`: the noise's pulse, pitch and where its energy is;
- :mod:`.styles` and :mod:`.theory`: the genre table, the prompt -> style mapping, keys and chords;
- :mod:`.arrangement`: the grid locked to the noise, sections, chords, figures, note events;
- :mod:`.midi`: the score as a MIDI file (and back);
- :mod:`.synth`: the built-in voices;
- :mod:`.mixing` and :mod:`.mix_design`: the score -> a stereo mix designed for the noise;
- :mod:`.timeline`: an explicit plan (tempo map, sections, intensity, hits) a caller can give
  instead of the noise's pulse, and :func:`fit_tempo` to put hit points on bar lines;
- :mod:`.composer`: the ``Composer`` effect and ``render_midi``.
"""

from .composer import Composer, render_midi
from .timeline import Timeline, TimelineError, fit_tempo

__all__ = ["Composer", "render_midi", "Timeline", "TimelineError", "fit_tempo"]
