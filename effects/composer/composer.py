"""``Composer``: music written for a noise, with no model weights (blendfx's default generator).

The effect listens to the noise (:mod:`.listening`: pulse, hum, energy core), picks
a genre from the prompt (:mod:`.styles`), writes an arrangement on a grid phase-locked to
the noise (:mod:`.arrangement`), turns it into a MIDI file (:mod:`.midi`) and
renders that file with the built-in voices (:mod:`.synth`, :mod:`.mixing`). The
mix is designed for the noise (:mod:`.mix_design`): brightness, expression automation
that follows the noise core's envelope, a masking-aware balance and a master EQ that moves the
music's spectrum towards the core's, all stored in the MIDI file, so :func:`render_midi` of an
exported file gives back the exact audio :meth:`Composer.process` returned.
"""

from __future__ import annotations

import ctypes
import os
import zlib
from functools import lru_cache
from typing import Any

import numpy as np
from blendfx.buffers import to_channels_first
from blendfx.effect import Effect, check_sample_rate
from blendfx.errors import ParameterError
from blendfx.params import BoolParam, FloatParam, StrParam
from blendfx.progress import progress_bar
from blendfx.threads import one_blas_thread

from .arrangement import TPB, Arrangement, arrange
from .listening import FPS, Listening, choose_key, listen
from .midi import TrackSpec, build_midi, meta_of, read_midi, save_midi, set_score_meta
from .mix_design import balance, expression, master_eq, track_settings
from .mixing import master, mix_bus, render_score, synthesize
from .styles import Prompt, style_from_prompt
from .theory import Key, parse_key
from .timeline import Timeline, TimelineError

__all__ = ["Composer", "render_midi"]

_MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")
#: Semitones from a mode's tonic down to its parent major scale's tonic.
_PARENT = {"major": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7, "minor": 9,
           "harmonic_minor": 9}




def _mido_key(key: Key) -> str:
    """mido's key-signature name for a key: church modes get their parent scale's signature
    (written as the relative minor for the minor-like modes)."""
    parent = (key.tonic - _PARENT[key.mode]) % 12
    if key.mode in ("minor", "dorian", "phrygian", "harmonic_minor"):
        return _MINOR_NAMES[(parent + 9) % 12]
    return _MAJOR_NAMES[parent]


class _KeyParam(StrParam):
    """A key name ('B minor', 'F# dorian') or '' for automatic, checked on assignment."""

    def validate(self, value: Any, owner: str) -> str:
        value = super().validate(value, owner)
        if value.strip():
            parse_key(value)
        return value


class Composer(Effect):
    """Compose and render music for a noise: same length, phase-locked, in the hum's key.

    Parameters
    ----------
    prompt : str
        Genre and mood words: pop, EDM, rock, hip-hop, punk, jazz, classical, lofi, ambient
        (and their aliases), mood words (dark, happy), pace words (slow, fast), instrument words
        (piano, guitar, strings, synth, organ, ...) and a tempo ('90 bpm'). Unknown words fall
        back to pop.
    seed : int
        With the prompt, makes the piece deterministic.
    key : str
        Force a key ('B minor', 'F# dorian'); '' picks one from the noise's hum (tonic or fifth
        on the hum), or a seeded one when the noise has no tone.
    tempo_bpm : float or None
        Force a tempo in BPM (the phase still locks to the noise); None finds it in the noise
        or, without a pulse, in the style's range.
    lock_to_noise : bool
        Phase-lock the beat grid to the noise's periodic events.
    tune_to_noise : bool
        Detune the whole piece (-50..50 cents) so the noise's hum is exactly on a note.
    follow : float
        0..1: how deeply the music's dynamics follow the loudness of the noise's core.
    match : float
        0..1: how far the master EQ moves the music's spectrum towards the noise core's.
    core_fraction : float
        Share of the noise's spectrogram in its core (:class:`MaskExtractor` fraction).
    level_lufs : float
        Loudness of the output in LUFS (the peak never exceeds -1 dBFS).
    progress : bool
        Show a progress bar for noises longer than 20 s.
    timeline : Timeline, optional
        An explicit plan (tempo map, section marks, intensity, hits, mode, register) instead of
        the noise's pulse and the standard form: the music's bar lines fall where the
        timeline's tempo map puts them, sections start at its marks, density and dynamics follow
        its intensity. Not a preset parameter (set it on the object or pass it to
        :meth:`process`).

    Notes
    -----
    Output is stereo ``(2, N)`` for 2-D input of N samples (a 1-D input gives 1-D mono, as
    pedalboard keeps layouts). After :meth:`process`, :meth:`export_midi` writes the piece and
    :attr:`last_midi`, :attr:`last_listening` and :attr:`last_arrangement` describe it.

    Examples
    --------
    >>> composer = Composer(prompt="lofi", seed=0)                       # doctest: +SKIP
    >>> music = composer.process(noise, 44100)        # (2, N), N = noise samples # doctest: +SKIP
    >>> composer.export_midi("noise_lofi.mid")                          # doctest: +SKIP
    """

    supports_streaming = False

    prompt = StrParam("lofi", doc="Genre, mood, pace and instrument words.")
    key = _KeyParam("", doc="Force a key such as 'B minor'; '' = from the noise.")
    tempo_bpm = FloatParam(None, min=30.0, max=300.0, unit="BPM", optional=True,
                           doc="Force a tempo; None = from the noise or the style.")
    lock_to_noise = BoolParam(True, doc="Phase-lock the beat grid to the noise.")
    tune_to_noise = BoolParam(True, doc="Tune the piece to the noise's hum.")
    follow = FloatParam(0.8, min=0.0, max=1.0, doc="Depth of dynamics following the noise core.")
    match = FloatParam(0.7, min=0.0, max=1.0, doc="Strength of the spectral match to the noise core.")
    core_fraction = FloatParam(0.15, min=0.01, max=0.5, doc="Share of the noise in its core.")
    level_lufs = FloatParam(-18.0, min=-40.0, max=-6.0, unit="LUFS", doc="Output loudness.")
    progress = BoolParam(True, doc="Progress bar for long noises.")

    def __init__(self, *, timeline: Timeline | None = None, **params):
        object.__setattr__(self, "_timeline", None)
        super().__init__(**params)
        self.timeline = timeline

    @property
    def timeline(self) -> Timeline | None:
        """The explicit :class:`Timeline` the next piece follows (None: the noise's pulse)."""
        return self._timeline

    @timeline.setter
    def timeline(self, value: Timeline | None) -> None:
        if value is not None and not isinstance(value, Timeline):
            raise ParameterError(f"Composer.timeline must be a Timeline or None, not {type(value).__name__}")
        try:
            object.__setattr__(self, "_timeline", value.validate() if value is not None else None)
        except TimelineError as exc:
            raise ParameterError(f"Composer.timeline: {exc}") from None

    def reset(self) -> None:
        super().reset()
        self._last_midi = None
        self._last_listening: Listening | None = None
        self._last_arrangement: Arrangement | None = None

    # -- results ------------------------------------------------------------------------------
    @property
    def last_midi(self):
        """The ``mido.MidiFile`` of the last piece (None before :meth:`process`)."""
        return self._last_midi

    @property
    def last_listening(self) -> Listening | None:
        """What the composer heard in the last noise (pulse, tonality, core)."""
        return self._last_listening

    @property
    def last_arrangement(self) -> Arrangement | None:
        """The last arrangement (grid, key, style, sections, tracks)."""
        return self._last_arrangement

    def export_midi(self, path: str | os.PathLike[str]) -> None:
        """Write the last piece as a standard MIDI file (atomically).

        Raises
        ------
        ParameterError
            If nothing has been composed yet.
        """
        with self._lock:
            if self._last_midi is None:
                raise ParameterError("Composer.export_midi: nothing composed yet; call "
                                     "process(noise, sample_rate) first")
            save_midi(self._last_midi, path)

    # -- processing -----------------------------------------------------------------------------
    def process(self, input_array: np.ndarray, sample_rate: float, buffer_size: int = 8192,
                reset: bool = True, *, sidechain=None, timeline: Timeline | None = None) -> np.ndarray:
        if timeline is not None:
            self.timeline = timeline
        out = super().process(input_array, sample_rate, buffer_size, reset, sidechain=sidechain)
        if np.ndim(input_array) == 1 and out.ndim == 2:
            return out.mean(axis=0)  # a 1-D (mono vector) noise gets a 1-D mono mix
        return out

    __call__ = process

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        data, _ = to_channels_first(audio)
        n = data.shape[1]
        rng = np.random.default_rng([int(self.seed), zlib.crc32(self.prompt.encode("utf-8"))])
        understood = style_from_prompt(self.prompt)
        style = understood.style
        default_bpm = self.tempo_bpm or understood.bpm or float(
            np.round(rng.uniform(*style.tempo)))
        show = self.progress and n / sample_rate >= 20.0
        # the steps parallelize with their own threads: BLAS's pool would only oversubscribe
        with one_blas_thread(), progress_bar(total=4, desc="Composer", disable=not show,
                                     leave=False) as bar:
            bar.set_postfix_str("listening")
            timeline = self._timeline
            heard = listen(data, sample_rate, tempo_range=style.tempo, default_bpm=default_bpm,
                           core_fraction=self.core_fraction,
                           lock=self.lock_to_noise and timeline is None,
                           search_tempo=(timeline is None and self.tempo_bpm is None
                                         and understood.bpm is None))
            _give_back_memory()
            bar.update()
            bar.set_postfix_str("writing")
            key = self._choose_key(heard, understood, rng)
            arrangement = arrange(heard, style, key, rng, timeline=timeline)
            bar.update()
            bar.set_postfix_str("synthesizing")
            specs = track_settings(arrangement, heard, self.match)
            mid = self._midi(arrangement, specs, n / sample_rate, {}, {})
            score = read_midi(mid)
            dry = synthesize(score, sample_rate, n)
            bar.update()
            bar.set_postfix_str("mixing")
            envelope = None
            if timeline is not None:  # dynamics follow the timeline's intensity, not the noise
                frames = np.arange(int(np.ceil(heard.duration_s * FPS))) / FPS
                envelope = 10.0 ** (-2.4 * (1.0 - timeline.intensity_at(frames)))
            controls = expression(arrangement, specs, heard, self.follow, envelope=envelope)
            controls = balance(specs, arrangement.tempo_map, controls, dry, heard, sample_rate, n,
                               self.match)
            _give_back_memory()  # the mix, the largest step, starts from a trimmed heap
            # the final file, read back: the mix below is exactly what render_midi will do
            mid = self._midi(arrangement, specs, n / sample_rate, controls, {})
            score = read_midi(mid)
            bus = mix_bus(score, dry, sample_rate, n, consume=True)  # each dry part freed once mixed
            set_score_meta(mid, {**meta_of(mid), **master_eq(bus, heard, sample_rate, self.match)})
            out = master(bus, sample_rate, meta_of(mid))
            bar.update()
        self._last_midi = mid
        self._last_listening = heard
        self._last_arrangement = arrangement
        return out

    # -- steps ----------------------------------------------------------------------------------
    def _choose_key(self, heard: Listening, understood: Prompt, rng: np.random.Generator) -> Key:
        if self.key.strip():
            forced = parse_key(self.key)
            cents = heard.tonality.tuning_cents if self.tune_to_noise and heard.tonality.root_pc is not None \
                else 0.0
            return Key(forced.tonic, forced.mode, cents)
        mode = understood.mode or (self._timeline.mode if self._timeline is not None else None)
        return choose_key(heard.tonality, understood.style.modes, rng, forced_mode=mode,
                          tune=self.tune_to_noise)

    def _midi(self, arrangement: Arrangement, specs: list[TrackSpec], length_s: float,
              controls: dict[int, np.ndarray], extra: dict):
        grid = arrangement.grid
        global_meta = {"version": 1, "length_s": length_s, "reverb": [arrangement.style.reverb[0], 1.0],
                       "lofi": arrangement.style.lofi, "level_lufs": self.level_lufs,
                       "style": arrangement.style.name, "key": arrangement.key.name,
                       "tuning_cents": round(arrangement.key.tuning_cents, 3), **extra}
        tracks = [TrackSpec(s.name, s.channel, s.program, s.notes,
                            np.vstack([s.controls, controls[i]]) if i in controls else s.controls,
                            s.tuning_cents, s.meta)
                  for i, s in enumerate(specs)]
        markers = [(grid.bar_tick(sec.start_bar), sec.name) for sec in arrangement.sections]
        return build_midi(tracks, grid.tempo_map, ticks_per_beat=TPB, time_signatures=grid.time_signatures,
                          markers=markers,
                          key_name=_mido_key(arrangement.key), end_tick=grid.end_tick, meta=global_meta,
                          title=f"blendfx Composer: {self.prompt}")

@lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return None


def _give_back_memory() -> None:
    """Hand memory freed by the last step back to the system. glibc keeps what threads free in
    their arenas (and what numpy frees under its raised mmap threshold), so without this the
    steps' leftovers add up to 150-200 MiB of resident memory on a 3-minute piece. A few ms;
    nothing where the C library is not glibc."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)


def render_midi(path_or_midi, sample_rate: float = 44100) -> np.ndarray:
    """Render any MIDI file with the built-in voices.

    Parameters
    ----------
    path_or_midi : str, os.PathLike or mido.MidiFile
        A standard MIDI file (type 0 or 1). Channel 10 plays the drum kit; other channels
        play the voice nearest their General MIDI program; files without a tempo event play at
        120 BPM. Files written by :meth:`Composer.export_midi` render exactly as composed.
    sample_rate : float
        Output rate in Hz.

    Returns
    -------
    np.ndarray
        ``(2, N)`` float32, peak at most -1 dBFS: the piece plus its release tail (or exactly
        the composed length for a file the Composer wrote).

    Raises
    ------
    ParameterError
        If the file is missing or unreadable, or the sample rate is not positive.
    """
    return render_score(read_midi(path_or_midi), check_sample_rate(sample_rate))
