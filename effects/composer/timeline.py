"""An explicit timeline for the Composer: tempo map, section marks, intensity, hit points.

A :class:`Timeline` is plain data a caller can write by hand::

    Timeline(duration_s=12.0, tempo=[(0.0, 96.0), (5.0, 120.0)], sections=[5.0],
             intensity=[(0.0, 0.2), (5.0, 0.9)], mode="minor")

(``Composer(timeline=...)`` or ``composer.process(audio, sr, timeline=...)``), and
:func:`fit_tempo` builds the tempo map for picture: it chooses one tempo per stretch between hit
points (cuts) so that every hit point falls on a bar line, keeping each stretch's tempo as near
one overall tempo as whole bars allow (film scorers adjust the tempo map, not the picture).

Meters: 4/4 by default; ``meter="3/4"`` (three quarter-note beats a bar), ``"6/8"`` (six eighths:
the bar of 3/4, felt in two) or ``"2/4"``. Tempos are quarter notes per minute in every meter,
as in MIDI. :func:`meter_from_prompt` reads one from a prompt ('waltz', 'in 6/8', 'jig').
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from blendfx.errors import ParameterError

__all__ = ["Timeline", "fit_tempo", "TimelineError", "METERS", "meter_from_prompt"]

#: Beats per bar of the default meter, 4/4.
BEATS_PER_BAR = 4
#: The meters the Composer writes, and their bar length in quarter-note beats.
METERS = {"2/4": 2, "3/4": 3, "4/4": 4, "6/8": 3}
#: Words that name a meter in a prompt.
_METER_WORDS = {"3/4": ("waltz", "waltzes", "minuet", "mazurka", "triple time", "three four"),
                "6/8": ("jig", "barcarolle", "siciliana", "tarantella", "compound time", "six eight"),
                "2/4": ("march", "polka", "two step", "two four")}


def meter_from_prompt(prompt: str) -> str | None:
    """The meter a prompt names ('3/4', 'in 6/8', 'a waltz', 'jig', 'march'), or None."""
    text = " " + re.sub(r"[^a-z0-9/ ]+", " ", str(prompt).lower()) + " "
    found = re.search(r"(?<![0-9/])(2/4|3/4|4/4|6/8)(?![0-9/])", text)
    if found:
        return found.group(1)
    return next((m for m, words in _METER_WORDS.items() if any(f" {w} " in text for w in words)), None)


class TimelineError(ParameterError):
    """A timeline that does not describe a piece (the message says what is wrong)."""


@dataclass
class Timeline:
    """The Composer's plan for a piece, in seconds.

    Attributes
    ----------
    duration_s : float
        Length of the piece (s).
    tempo : list of (time_s, bpm)
        Tempo changes (quarter notes per minute); the first at 0 s. A tempo holds until the
        next change; beats run on continuously across a change, and bar 1 starts at 0 s.
    sections : list of float
        Times (s) where a new section starts (new harmony, new density); each is moved to the
        nearest bar line. 0 s always starts one.
    intensity : list of (time_s, value)
        0..1, linear between points (held before the first and after the last): the density of
        the arrangement and the dynamics follow it. Empty: 0.6 throughout.
    hits : list of float
        Times (s) of accents (a cymbal and a stab on the nearest beat subdivision).
    mode : str or None
        A mode ('major', 'minor', 'dorian', ...) when the prompt names none; None lets the
        prompt and the style choose.
    register : float
        Semitones added to the register of the melodic voices (-12..12).
    meter : str
        '4/4', '3/4', '6/8' or '2/4' (:data:`METERS`).
    """

    duration_s: float
    tempo: list[tuple[float, float]]
    sections: list[float] = field(default_factory=list)
    intensity: list[tuple[float, float]] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)
    mode: str | None = None
    register: float = 0.0
    meter: str = "4/4"

    @property
    def beats_per_bar(self) -> int:
        """Quarter-note beats per bar of :attr:`meter`."""
        if self.meter not in METERS:
            raise TimelineError(f"Timeline.meter = {self.meter!r} is not one of {', '.join(METERS)}")
        return METERS[self.meter]

    def validate(self) -> Timeline:
        """Check the fields (raises :class:`TimelineError`); returns self."""
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise TimelineError(f"Timeline.duration_s = {self.duration_s!r}: must be a positive number of s")
        if not self.tempo:
            raise TimelineError("Timeline.tempo is empty: give at least [(0.0, bpm)]")
        times = [float(t) for t, _ in self.tempo]
        if times[0] != 0.0:
            raise TimelineError(f"Timeline.tempo starts at {times[0]} s: the first change must be at 0 s")
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise TimelineError("Timeline.tempo times must increase")
        for t, bpm in self.tempo:
            if not (math.isfinite(bpm) and 20.0 <= bpm <= 400.0):
                raise TimelineError(f"Timeline.tempo at {t} s: {bpm} BPM is out of range [20, 400]")
        for t, v in self.intensity:
            if not (math.isfinite(t) and math.isfinite(v) and 0.0 <= v <= 1.0):
                raise TimelineError(f"Timeline.intensity ({t}, {v}): values must be in 0..1")
        _ = self.beats_per_bar
        if not -12.0 <= self.register <= 12.0:
            raise TimelineError(f"Timeline.register = {self.register}: must be in -12..12 semitones")
        return self

    # -- derived ---------------------------------------------------------------------------
    def _tempo_steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each tempo step's start (s), tempo (BPM) and beat position at its start."""
        starts = np.array([a for a, _ in self.tempo])
        bpm = np.array([b for _, b in self.tempo])
        return starts, bpm, np.concatenate([[0.0], np.cumsum(np.diff(starts) * bpm[:-1] / 60.0)])

    def beats_at(self, times: np.ndarray) -> np.ndarray:
        """Beat position (beats from 0 s, fractional) at each time (s)."""
        t = np.asarray(times, dtype=np.float64)
        starts, bpm, beats_at_start = self._tempo_steps()
        i = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, None)
        return beats_at_start[i] + (t - starts[i]) * bpm[i] / 60.0

    def beat_times(self, until_s: float | None = None) -> np.ndarray:
        """Times (s) of every beat from 0 s up to ``until_s`` (default: the duration) and the
        beats of the bar that holds it."""
        end = self.duration_s if until_s is None else until_s
        total = float(self.beats_at(np.array([end]))[0])
        per = self.beats_per_bar
        n = int(math.ceil((total - 1e-9) / per)) * per + 1
        return self.beat_to_time(np.arange(max(n, per + 1), dtype=np.float64))

    def beat_to_time(self, beats: np.ndarray) -> np.ndarray:
        """Time (s) of each beat position."""
        b = np.asarray(beats, dtype=np.float64)
        starts, bpm, beats_at_start = self._tempo_steps()
        i = np.clip(np.searchsorted(beats_at_start, b, side="right") - 1, 0, None)
        return starts[i] + (b - beats_at_start[i]) * 60.0 / bpm[i]

    def bar_times(self) -> np.ndarray:
        """Times (s) of the bar lines from 0 s to the end of the piece's last bar."""
        return self.beat_times()[::self.beats_per_bar]

    def section_bars(self) -> list[int]:
        """The bar (0-based) each section starts at (sections moved to the nearest bar line,
        duplicates dropped), always starting with 0."""
        bars = {0}
        per = self.beats_per_bar
        for t in self.sections:
            if 0.0 < t < self.duration_s:
                bars.add(int(round(float(self.beats_at(np.array([t]))[0]) / per)))
        last = int(math.ceil(float(self.beats_at(np.array([self.duration_s]))[0]) / per - 1e-9))
        return sorted(b for b in bars if b < max(last, 1))

    def intensity_at(self, times: np.ndarray) -> np.ndarray:
        """Intensity (0..1) at each time (s)."""
        if not self.intensity:
            return np.full(np.shape(times), 0.6)
        pts = sorted(self.intensity)
        return np.interp(times, [p[0] for p in pts], [p[1] for p in pts])


def fit_tempo(duration_s: float, hit_points: np.ndarray | list[float], *, bpm: float | None = None,
              tempo_range: tuple[float, float] = (70.0, 140.0), prefer: float | None = None,
              max_stretch: float = 1.35, beats_per_bar: int = BEATS_PER_BAR,
              ) -> tuple[list[tuple[float, float]], list[float], list[float]]:
    """A tempo map on which every hit point falls on a bar line (bar 1 at 0 s).

    Each stretch between consecutive hit points (and the piece's end, where the music ends on
    a bar line too unless the last stretch is too short for one) gets a whole number of bars
    and so its own tempo; the overall tempo is the
    one from which the stretches' tempos stray least (squared log ratio, weighted by length),
    inside ``tempo_range`` (or within 10% of ``bpm``) where it can be, up to 25% outside where
    that keeps every stretch within ``max_stretch`` of it, nudged towards ``prefer``. A hit point
    whose stretch still needs more than ``max_stretch`` (a shot shorter than a bar) is dropped
    (the shorter neighbour absorbs its stretch) and returned as missed.

    Parameters
    ----------
    duration_s : float
        Length (s).
    hit_points : array_like
        Times (s) that must fall on bar lines.
    bpm : float, optional
        The overall tempo to keep near; None searches ``tempo_range``.
    tempo_range : (low, high)
        BPM range searched for the overall tempo.
    prefer : float, optional
        A tempo (BPM) the search leans towards (e.g. from the picture's pace).
    max_stretch : float
        How far (ratio) a stretch's tempo may stray from the overall tempo before its hit
        point is dropped.
    beats_per_bar : int
        Quarter-note beats per bar (4 for 4/4, 3 for 3/4 and 6/8: :data:`METERS`).

    Returns
    -------
    tempo : list of (time_s, bpm)
        One entry per stretch (for :attr:`Timeline.tempo`).
    kept, missed : list of float
        Hit points on bar lines, and hit points dropped.
    """
    if int(beats_per_bar) != beats_per_bar or not 1 <= beats_per_bar <= 12:
        raise TimelineError(f"fit_tempo: beats_per_bar = {beats_per_bar!r} must be a whole number in 1..12")
    hits = sorted(float(t) for t in np.asarray(hit_points, dtype=np.float64).ravel()
                  if 0.0 < t < duration_s)
    lo, hi = (bpm / 1.1, bpm * 1.1) if bpm else tempo_range
    # the overall tempo may leave the range (by up to 25%) when that is what keeps the hits
    candidates = np.arange(lo / 1.25, hi * 1.25 + 0.25, 0.5)
    missed: list[float] = []
    while True:
        bounds = np.array([0.0] + hits + [duration_s])
        lengths = np.diff(bounds)
        best = None
        for t in candidates:
            x = lengths * t / (60.0 * beats_per_bar)  # bars each stretch holds at this tempo
            below = np.maximum(1.0, np.floor(x))
            above = below + 1.0
            bars = np.where(np.abs(np.log(below / x)) <= np.abs(np.log(above / x)), below, above)
            tempos = bars * 60.0 * beats_per_bar / lengths
            ratio = np.maximum(tempos / t, t / tempos)
            if ratio[-1] > max_stretch:  # the end may fall mid-bar: its stretch keeps the tempo
                ratio[-1] = 1.0
            outside = max(0.0, math.log(lo / t), math.log(t / hi))
            cost = float(np.sum(lengths * np.log(ratio) ** 2) / lengths.sum())
            cost += 100.0 * float(np.sum(ratio > max_stretch)) + 4.0 * outside ** 2
            if prefer:
                cost += 0.02 * math.log(t / prefer) ** 2
            if best is None or cost < best[0]:
                best = (cost, t, bars, tempos)
        _, overall, bars, tempos = best
        # hit points that need a tempo too far from the overall one are dropped, worst first
        ratio = np.maximum(tempos / overall, overall / tempos)
        worst = int(np.argmax(ratio[:-1])) if hits else 0
        if not hits or ratio[worst] <= max_stretch:
            break
        # drop the boundary between the worst stretch and its shorter neighbour
        if worst == 0:
            drop = 0
        else:
            drop = worst - 1 if lengths[worst - 1] <= lengths[worst + 1] else worst
        missed.append(hits.pop(drop))
    if max(tempos[-1] / overall, overall / tempos[-1]) > max_stretch:
        tempos[-1] = overall  # too short for a whole bar: the music ends mid-bar
    tempo = [(float(b), float(t)) for b, t in zip(bounds[:-1], tempos, strict=True)]
    return tempo, hits, sorted(missed)
