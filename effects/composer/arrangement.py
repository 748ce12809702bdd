"""Writing the music: a grid locked to the noise, sections, chords, figures and note events.

:func:`arrange` turns what the composer heard (:class:`~.listening.Listening`), a
:class:`~.styles.Style` and a :class:`~.theory.Key` into an :class:`Arrangement`:
a tempo map whose beats are the noise's beats, a form (intro, verses, choruses, bridge, outro,
scaled to the length), a chord timeline, and one note list per instrument, in MIDI ticks.

The grid: the first downbeat falls on the noise's beat ``pulse.downbeat``; the time before it
is a pickup bar of ``q`` sixteenths (time signature ``q/16``) whose tempo absorbs the fraction,
so every later beat is exactly a noise beat, and a per-bar tempo map follows a drifting
noise. Registers follow the noise's core: chords, pad, lead, arpeggio and texture are voiced
around the core's frequency band, and percussion and tonal stabs hit the core's strongest
events (quantized to the grid), with a kit piece or voicing chosen by the event's spectral
centroid. Density follows the noise's energy from section to section.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .listening import Listening
from .midi import seconds_to_ticks, ticks_to_seconds
from .styles import DRUM_NOTES, Style
from .synth import VOICES
from .theory import Key, diatonic_chord, hz_to_midi
from .timeline import Timeline

__all__ = ["Arrangement", "TrackPlan", "Section", "Grid", "arrange", "grid_from_timeline", "ROLE_CHANNELS"]

TPB = 480
#: Core events at least this many times their noise's median frame energy (9 dB) get hits.
EVENT_MIN_STRENGTH = 8.0
#: Largest distance (s) over which a noise hit snaps to the 32nd-note grid.
HIT_SNAP_S = 0.015
STEP = TPB // 4  # a sixteenth
#: MIDI channel (0-based) of each role; drums and noise hits on channel 10.
ROLE_CHANNELS = {"bass": 0, "chords": 1, "pad": 2, "lead": 3, "arp": 4, "texture": 5, "stabs": 6,
                 "follow": 7, "drums": 9, "hits": 9}
#: Sustained voices a part that doubles the noise's own melody may play; other styles' leads
#: (bells, plucks) decay too fast to hold a howl, and the part takes FOLLOW_VOICE instead.
SUSTAINED = frozenset({"lead", "saw_lead", "reed", "flute", "strings", "brass", "organ", "choir", "pad",
                       "cello", "guitar_lead", "air"})
FOLLOW_VOICE = {"lofi": "flute", "ambient": "choir", "hiphop": "flute", "pop": "strings", "jazz": "reed",
                "classical": "strings", "edm": "saw_lead", "rock": "guitar_lead", "punk": "guitar_lead"}
#: Shortest melody note the part doubles (s) and the clarity it needs (dB over the floor).
FOLLOW_MIN_S = 0.1
FOLLOW_MIN_CLARITY_DB = 9.0


@dataclass
class TrackPlan:
    """One instrument's part, in ticks.

    Attributes
    ----------
    name, role, voice : str
        Track name, role ('bass', 'chords', ...) and synth voice ('drums' for kit tracks).
    channel, program : int
        MIDI channel (0-based) and General MIDI program.
    notes : np.ndarray
        ``(n, 4)`` int64: on tick, off tick, note number, velocity.
    """

    name: str
    role: str
    voice: str
    channel: int
    program: int
    notes: np.ndarray


@dataclass
class Section:
    """A stretch of the form: name, first bar, length in bars, energy 0..1, chord degrees."""

    name: str
    start_bar: int
    bars: int
    energy: float
    progression: tuple[int, ...]
    groove: int
    roles: frozenset[str]


@dataclass
class Grid:
    """The tempo map and bar layout.

    Attributes
    ----------
    pickup_ticks : int
        Ticks before the first downbeat (bar 0).
    tempo_map : np.ndarray
        ``(k, 2)``: tick, microseconds per beat.
    bars : int
        Bars from bar 0 to the end of the noise (the last may be partial).
    end_tick : int
        Tick of the end of the noise.
    time_signatures : list of (tick, numerator, denominator)
    bar_ticks : int
        Ticks per bar after the pickup (4 beats in 4/4, 3 in 3/4 and 6/8, 2 in 2/4).
    meter : str
        The meter after the pickup ('4/4', '3/4', '6/8', '2/4').
    """

    pickup_ticks: int
    tempo_map: np.ndarray
    bars: int
    end_tick: int
    time_signatures: list[tuple[int, int, int]]
    bar_ticks: int = 4 * TPB
    meter: str = "4/4"

    @property
    def steps_per_bar(self) -> int:
        """Sixteenths per bar."""
        return self.bar_ticks // STEP

    def bar_tick(self, bar: int) -> int:
        return self.pickup_ticks + bar * self.bar_ticks


@dataclass
class Arrangement:
    """The composed piece (see the module docstring)."""

    grid: Grid
    key: Key
    style: Style
    sections: list[Section]
    tracks: list[TrackPlan]
    chords: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)

    @property
    def tempo_map(self) -> np.ndarray:
        return self.grid.tempo_map


# -- grid ----------------------------------------------------------------------------------------
def _make_grid(listening: Listening) -> Grid:
    """Tempo map and bar layout whose every beat is a beat of the noise.

    Before the noise's first beat (at its phase, 0..1 beat) there is a short head of 0-4
    sixteenths with its own tempo; then one tempo per beat (events only where it changes), so
    the beats before the first downbeat (a pickup) and every later one fall on the noise's
    beats, drift included. The pickup bar's time signature is its length in sixteenths.
    """
    pulse = listening.pulse
    period = pulse.period_s
    duration = listening.duration_s
    d = int(pulse.downbeat)
    beats = np.asarray(pulse.beat_times, dtype=np.float64)
    first_downbeat = beats[d] if d < beats.size else beats[0] + d * period
    bars = max(1, int(np.ceil((duration - first_downbeat) / (4 * period) - 1e-9)))
    need = d + 4 * (bars + 1) + 1
    if beats.size < need:  # extrapolate the grid past the noise's end
        beats = np.concatenate([beats, beats[-1] + period * np.arange(1, need - beats.size + 1)])
    phase = float(beats[0])
    head16 = int(round(4 * phase / period))
    if head16 == 0 and phase > 1e-3:
        head16 = 1
    head = head16 * STEP
    tempo: list[tuple[int, int]] = []
    if head:
        tempo.append((0, int(round(phase / (head16 / 4.0) * 1e6))))
    last = None
    for j in range(need - 1):
        us = int(round((beats[j + 1] - beats[j]) * 1e6))
        if us != last:
            tempo.append((head + j * TPB, us))
            last = us
    tm = np.array(tempo, dtype=np.int64)
    pickup_ticks = head + d * TPB
    sigs = [(0, 4, 4)]
    if pickup_ticks:
        q = pickup_ticks // STEP
        num, den = (q // 4, 4) if q % 4 == 0 else ((q // 2, 8) if q % 2 == 0 else (q, 16))
        sigs = [(0, num, den), (pickup_ticks, 4, 4)]
    end_tick = int(np.ceil(seconds_to_ticks(np.array([duration]), tm, TPB)[0]))
    return Grid(pickup_ticks, tm, bars, end_tick, sigs)


def grid_from_timeline(timeline: Timeline, duration_s: float) -> Grid:
    """The grid of an explicit :class:`Timeline`: its meter from 0 s (no pickup), one tempo
    event per tempo change (at the tick of its beat position), bars to the end of the piece."""
    tempo: list[tuple[int, int]] = []
    for t, bpm in timeline.tempo:
        if t >= duration_s and tempo:
            break
        tick = int(round(float(timeline.beats_at(np.array([t]))[0]) * TPB))
        us = int(round(60e6 / bpm))
        if tempo and tempo[-1][0] == tick:
            tempo[-1] = (tick, us)
        elif not tempo or tempo[-1][1] != us:
            tempo.append((tick, us))
    tm = np.array(tempo, dtype=np.int64)
    end_tick = int(np.ceil(seconds_to_ticks(np.array([duration_s]), tm, TPB)[0] - 1e-6))
    bar_ticks = timeline.beats_per_bar * TPB
    bars = max(1, int(np.ceil(end_tick / bar_ticks - 1e-9)))
    num, den = (int(x) for x in timeline.meter.split("/"))
    return Grid(0, tm, bars, end_tick, [(0, num, den)], bar_ticks, timeline.meter)


# -- form ----------------------------------------------------------------------------------------
_BASE_ENERGY = {"intro": 0.45, "verse": 0.65, "chorus": 0.95, "bridge": 0.55, "outro": 0.45, "main": 0.9,
                "drop": 1.0}


def _form(bars: int) -> list[tuple[str, int]]:
    if bars <= 4:
        return [("main", bars)]
    if bars <= 12:
        half = bars // 2
        return [("verse", half), ("chorus", bars - half)]
    intro = 2 if bars < 24 else 4
    plan = [("intro", intro)]
    cycle = [("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("bridge", 8), ("chorus", 8)]
    used = intro
    i = 0
    while used < bars:
        name, n = cycle[i % len(cycle)]
        plan.append((name, n))
        used += n
        i += 1
    # the last section becomes the outro, cut to fit; a too-short tail merges into it
    over = used - bars
    name, n = plan[-1]
    plan[-1] = ("outro" if bars >= 24 else name, n - over)
    if plan[-1][1] < 2 and len(plan) > 2:
        prev = plan[-2]
        plan = plan[:-2] + [(prev[0], prev[1] + plan[-1][1])]
    return plan


#: Longest stretch (bars) a timeline section runs before it is cut into 8-bar phrases.
TIMELINE_MAX_SECTION_BARS = 16


def _timeline_form(grid: Grid, timeline: Timeline) -> list[tuple[str, int, int, float]]:
    """(name, first bar, bars, energy) per section of an explicit timeline: sections start at
    the timeline's marks (long ones are cut into 8-bar phrases), their energy is 0.3 + 0.7 x
    their mean intensity, and the name follows the energy (chorus, verse, bridge; a quiet first
    section is an intro), so density and harmony change where the picture does."""
    starts = [b for b in timeline.section_bars() if b < grid.bars] or [0]
    bounds = starts + [grid.bars]
    spans = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b - a > TIMELINE_MAX_SECTION_BARS:
            cuts = list(range(a, b, 8))
            if b - cuts[-1] < 4 and len(cuts) > 1:
                cuts.pop()
            spans += list(zip(cuts, cuts[1:] + [b], strict=True))
        else:
            spans.append((a, b))
    out = []
    for i, (a, b) in enumerate(spans):
        t0, t1 = (float(x) for x in timeline.beat_to_time(np.array([a, b]) * timeline.beats_per_bar))
        t1 = min(t1, timeline.duration_s)
        ts = np.linspace(t0, max(t1, t0 + 1e-3), 32)
        energy = float(np.clip(0.3 + 0.7 * timeline.intensity_at(ts).mean(), 0.0, 1.0))
        name = "chorus" if energy >= 0.8 else "verse" if energy >= 0.55 else "intro" if i == 0 else "bridge"
        out.append((name, a, b - a, energy))
    return out


def _noise_form(grid: Grid, listening: Listening) -> list[tuple[str, int, int, float]]:
    """(name, first bar, bars, energy) per section of the standard form, each section's
    energy nudged by the noise core's loudness over it."""
    envelope = listening.core.envelope
    mean_env = float(envelope.mean()) if envelope.size and envelope.mean() > 0 else 1.0
    bar_s = 4 * 60.0 / listening.pulse.bpm
    first_s = grid.tempo_map[0, 1] / 1e6 * grid.pickup_ticks / TPB
    out = []
    bar = 0
    for name, n in _form(grid.bars):
        a = int((first_s + bar * bar_s) * 100)
        b = int((first_s + (bar + n) * bar_s) * 100)
        local = float(envelope[a:b].mean()) / mean_env if b > a and a < envelope.size else 1.0
        energy = float(np.clip(_BASE_ENERGY[name] * (0.8 + 0.2 * np.clip(local, 0.0, 2.0)), 0.0, 1.0))
        out.append((name, bar, n, energy))
        bar += n
    return out


def _roles_for(style: Style, energy: float, name: str) -> frozenset[str]:
    roles = {"bass", "pad", "texture", "hits", "stabs"}
    if energy >= 0.5 or name == "main":
        roles |= {"chords", "drums"}
    if energy >= 0.75 and style.lead_density > 0:
        roles |= {"lead"}
    if energy >= 0.85:
        roles |= {"arp"}
    if name == "intro":
        roles -= {"bass"} if style.has_drums else set()
    return frozenset(roles)


def _choose_progressions(style: Style, key: Key, hum_pcs: list[int], rng: np.random.Generator):
    """Verse, chorus and bridge loops; with a hum, loops whose chords hold it are preferred."""
    progs = list(style.progressions)
    if hum_pcs:
        def score(p):
            return sum(any(pc in diatonic_chord(key, deg, max(style.chord_size, 3)) for pc in hum_pcs)
                       for deg in p) / len(p)
        scores = np.array([score(p) for p in progs])
        order = np.argsort(-scores + rng.random(len(progs)) * 0.1, kind="stable")
        progs = [progs[i] for i in order]
    else:
        progs = [progs[i] for i in rng.permutation(len(progs))]
    verse = progs[0]
    chorus = progs[1 % len(progs)]
    bridge = progs[2 % len(progs)]
    return {"verse": verse, "chorus": chorus, "main": verse, "intro": verse, "outro": verse,
            "bridge": bridge, "drop": chorus}


# -- voicing ---------------------------------------------------------------------------------------
def _nearest(pc: int, target: float) -> int:
    """The MIDI note of pitch class ``pc`` nearest ``target``."""
    base = int(np.floor(target / 12.0)) * 12 + pc
    cands = np.array([base - 12, base, base + 12])
    return int(cands[np.argmin(np.abs(cands - target))])


def _voice_chord(pcs: tuple[int, ...], center: float, kind: str, previous: list[int] | None) -> list[int]:
    root = pcs[0]
    if kind == "power":
        r = _nearest(root, center - 5)
        return [r, r + 7, r + 12]
    if kind in ("spread", "open"):
        r = _nearest(root, center - 12)
        notes = [r]
        for i, pc in enumerate(pcs[1:]):
            notes.append(_nearest(pc, center + (i - len(pcs) / 2 + 1) * 5))
        notes.append(_nearest(pcs[0], center + 7))
        return sorted(set(notes))
    # close / drop2: choose the inversion closest to the previous voicing (voice leading)
    best, best_cost = None, np.inf
    for inv in range(len(pcs)):
        order = pcs[inv:] + pcs[:inv]
        notes = [_nearest(order[0], center - 4)]
        for pc in order[1:]:
            n = notes[-1] + ((pc - notes[-1]) % 12 or 12)
            notes.append(n)
        if kind == "drop2" and len(notes) >= 3:
            notes[-2] -= 12
            notes = sorted(notes)
        cost = abs(np.mean(notes) - center) * 0.6
        if previous:
            cost += np.abs(np.array(sorted(notes))[:, None] - np.array(previous)[None, :]).min(axis=1).sum()
        if cost < best_cost:
            best, best_cost = notes, cost
    return sorted(best or [])


# -- the composer's hand -----------------------------------------------------------------------
class _Writer:
    """Collects notes per role while walking the bars."""

    def __init__(self, arrangement_end: int):
        self.notes: dict[str, list[tuple[int, int, int, int]]] = {}
        self.end = arrangement_end

    def add(self, role: str, on: int, off: int, pitch: int, vel: float) -> None:
        if on < 0 or on >= self.end or not 0 <= pitch <= 127:
            return
        off = min(max(off, on + 1), self.end)
        self.notes.setdefault(role, []).append((int(on), int(off), int(pitch), int(np.clip(vel, 1, 127))))


def _vel(char: str) -> float:
    return {"X": 118.0, "x": 96.0, "o": 56.0}.get(char, 0.0)


def _swing_ticks(step: int, steps_per_bar: int, swing: float) -> int:
    if steps_per_bar != 16 or swing <= 0 or step % 2 == 0:
        return 0
    return int(round(swing * STEP))


def _register(listening: Listening) -> dict[str, float]:
    """Register centres (MIDI pitch) per role from the noise core's band."""
    core = listening.core
    lo, hi = core.band_range(0.8)
    fc = core.centroid_hz()
    centre = float(hz_to_midi(max(fc, 60.0)))
    low = float(hz_to_midi(max(lo, 40.0)))
    high = float(hz_to_midi(max(hi, 80.0)))
    return {
        "chords": float(np.clip(centre - 12.0, 52.0, 80.0)),
        "pad": float(np.clip((low + high) / 2.0 - 6.0, 50.0, 84.0)),
        "pad_span": float(np.clip(high - low, 12.0, 36.0)),
        "lead": float(np.clip(centre, 62.0, 90.0)),
        "arp": float(np.clip(high - 12.0, 64.0, 96.0)),
        "texture": float(np.clip(centre, 48.0, 110.0)),
        "stabs": float(np.clip(centre - 7.0, 55.0, 88.0)),
    }


def _chord_timeline(sections: list[Section], style: Style, key: Key, grid: Grid):
    """(start tick, end tick, pitch classes) for every chord, pickup included."""
    size = max(style.chord_size, 2)
    out = []
    bar_ticks = grid.bar_ticks
    for s in sections:
        per = max(1, int(round(style.bars_per_chord * bar_ticks)))
        start = grid.bar_tick(s.start_bar)
        end = grid.bar_tick(s.start_bar + s.bars)
        i = 0
        t = start
        while t < end:
            deg = s.progression[i % len(s.progression)]
            out.append((t, min(t + per, end), diatonic_chord(key, deg, size)))
            t += per
            i += 1
    if grid.pickup_ticks > 0 and sections:
        last = sections[0].progression[-1]
        out.insert(0, (0, grid.pickup_ticks, diatonic_chord(key, last, size)))
    # the piece ends on the tonic: the last chord of a long piece becomes I
    if grid.bars >= 16 and out:
        t0, t1, _ = out[-1]
        out[-1] = (t0, max(t1, grid.end_tick), diatonic_chord(key, 1, size))
    return out


def _chord_at(chords, tick: int):
    for c in chords:
        if c[0] <= tick < c[1]:
            return c
    return chords[-1] if chords and tick >= chords[-1][0] else chords[0]


def arrange(listening: Listening, style: Style, key: Key, rng: np.random.Generator,
            timeline: Timeline | None = None) -> Arrangement:
    """Compose the arrangement (see the module docstring). Deterministic for a given ``rng``.

    With a ``timeline`` the grid is the timeline's tempo map (bar 1 at 0 s, no pickup), the
    sections start at its marks with an energy from its intensity, its hits get accents and
    its register offset moves the melodic voices; the noise still sets registers and hits."""
    grid = _make_grid(listening) if timeline is None else grid_from_timeline(timeline, listening.duration_s)
    w = _Writer(grid.end_tick)
    hum = [listening.tonality.root_pc] if listening.tonality.root_pc is not None else []
    progs = _choose_progressions(style, key, hum, rng)
    sections: list[Section] = []
    form = _noise_form(grid, listening) if timeline is None else _timeline_form(grid, timeline)
    for name, bar, n, energy in form:
        groove = int(name in ("chorus", "drop", "main")) if style.grooves else 0
        prog = progs[name]
        if timeline is not None and sections and sections[-1].progression == prog:
            prog = prog[1:] + prog[:1]  # a new shot moves the harmony on
        sections.append(Section(name, bar, n, energy, prog, groove, _roles_for(style, energy, name)))
    chords = _chord_timeline(sections, style, key, grid)
    reg = _register(listening)
    if timeline is not None and timeline.register:
        reg = {k: v if k == "pad_span" else v + timeline.register for k, v in reg.items()}
    motif_cache: dict[str, list[tuple[int, int, int]]] = {}
    previous: dict[str, list[int] | None] = {"chords": None}
    first_bar = -int(np.ceil(grid.pickup_ticks / grid.bar_ticks))
    for b in range(first_bar, grid.bars):
        sec = next((s for s in sections if s.start_bar <= b < s.start_bar + s.bars), sections[0])
        bar_start = grid.bar_tick(b)
        last_of_section = b == sec.start_bar + sec.bars - 1
        gain = 0.78 + 0.22 * sec.energy
        bar_end = bar_start + grid.bar_ticks
        if "drums" in sec.roles and style.has_drums:
            _drums(w, style, sec, b, bar_start, last_of_section, gain, rng, grid)
        bar_chords = [c for c in chords if c[1] > bar_start and c[0] < bar_end] or \
            [_chord_at(chords, max(bar_start, 0))]
        for c0, c1, pcs in bar_chords:
            s0, s1 = max(c0, bar_start), min(c1, bar_end)
            if "bass" in sec.roles:
                nxt = _chord_at(chords, s1)[2][0]
                _bass(w, style, key, pcs, nxt, s0, s1, bar_start, sec, gain, rng, grid)
            if "chords" in sec.roles:
                voicing = _voice_chord(pcs, reg["chords"], style.voicing, previous["chords"])
                previous["chords"] = voicing
                _comp(w, style, voicing, s0, s1, bar_start, gain, rng, grid)
            pad_doubles = style.comp == "held" and style.voices.get("pad") == style.voices.get("chords")
            if "pad" in sec.roles and not pad_doubles:
                _pad(w, pcs, reg, s0, s1, gain)
            if "texture" in sec.roles:
                _texture(w, style, pcs, reg, s0, s1, gain)
            if "arp" in sec.roles:
                _arp(w, pcs, reg, s0, s1, gain, style)
        if "lead" in sec.roles:
            _lead(w, style, key, chords, sec, b, bar_start, reg, gain, rng, motif_cache, grid.steps_per_bar)
    _hits(w, listening, style, key, chords, grid, reg, sections)
    if timeline is not None and timeline.hits:
        _cue_hits(w, timeline, style, chords, grid, reg)
    _follow(w, listening, key, chords, grid)
    tracks = _tracks(w, style)
    return Arrangement(grid, key, style, sections, tracks, chords)


# -- figures ---------------------------------------------------------------------------------------
#: Grooves of the other meters, one bar each (any style with drums plays them; a 4/4 style's own
#: grooves and fills do not fit the bar): 3/4 in eighths (a waltz's "oom-pah-pah"), 6/8 in
#: eighths (two dotted-quarter pulses), 2/4 in sixteenths.
METER_GROOVES = {
    "3/4": [{"kick": "x.....", "snare": "..x.x.", "hat": "x.x.x."},
            {"kick": "x...x.", "snare": "..x.x.", "hat": "xxxxxx"}],
    "6/8": [{"kick": "x.....", "snare": "...x..", "hat": "x.xx.x"},
            {"kick": "x..x..", "snare": "...x..", "hat": "xxxxxx"}],
    "2/4": [{"kick": "x.......", "snare": "....x...", "hat": "x.x.x.x."},
            {"kick": "x.....x.", "snare": "....x...", "hat": "xxxxxxxx"}],
}


def _groove(style, sec, grid):
    """The section's groove: the style's own in 4/4, the meter's otherwise."""
    if grid.meter != "4/4":
        grooves = METER_GROOVES[grid.meter]
        return grooves[sec.groove % len(grooves)]
    return style.grooves[sec.groove % len(style.grooves)] if style.grooves else None


def _drums(w, style, sec, b, bar_start, last_of_section, gain, rng, grid):
    fill = last_of_section and sec.bars >= 4 and style.fills and grid.meter == "4/4"
    pattern = style.fills[b % len(style.fills)] if fill else _groove(style, sec, grid)
    for piece, steps in pattern.items():
        n_steps = len(steps)
        step_ticks = grid.bar_ticks // n_steps
        for i, ch in enumerate(steps):
            v = _vel(ch)
            if v <= 0:
                continue
            swing = _swing_ticks(i, n_steps, style.swing) if grid.meter == "4/4" else 0
            tick = bar_start + i * step_ticks + swing
            jitter = float(rng.integers(-6, 7))
            w.add("drums", tick, tick + step_ticks, DRUM_NOTES[piece], (v + jitter) * gain)
    if b == sec.start_bar and sec.start_bar > 0 and sec.energy >= 0.6:
        w.add("drums", bar_start, bar_start + TPB, DRUM_NOTES["crash"], 100 * gain)


def _bass(w, style, key, pcs, next_root, s0, s1, bar_start, sec, gain, rng, grid):
    root = _nearest(pcs[0], 36.0)
    fifth = root + 7
    span = s1 - s0
    kind = style.bass
    v = 96 * gain
    if kind == "pedal":
        w.add("bass", s0, s1, _nearest(key.tonic, 36.0), 80 * gain)
    elif kind == "classical":
        w.add("bass", s0, s0 + span // 2, root, v)
        w.add("bass", s0 + span // 2, s1, fifth if span >= 4 * TPB else root, v * 0.9)
    elif kind == "root8":
        for t in range(s0, s1, 2 * STEP):
            pitch = root if t < s1 - 2 * STEP or rng.random() < 0.6 else _nearest(next_root, root + 2)
            w.add("bass", t, t + int(1.8 * STEP), pitch, v * (1.0 if (t - bar_start) % TPB == 0 else 0.85))
    elif kind == "offbeat":
        for t in range(s0 + 2 * STEP, s1, 4 * STEP):
            w.add("bass", t, t + 2 * STEP, root, v)
    elif kind == "walking":
        scale = [p for p in range(root - 5, root + 13) if key.contains(p % 12)]
        beats = list(range(s0, s1, TPB))
        for i, t in enumerate(beats):
            if i == 0:
                pitch = root
            elif i == len(beats) - 1:
                target = _nearest(next_root, root)
                pitch = target + (1 if rng.random() < 0.5 else -1)
            else:
                choices = [root + 4 if (pcs[1] - pcs[0]) % 12 == 4 else root + 3, fifth, root + 12,
                           int(rng.choice(scale))]
                pitch = int(choices[int(rng.integers(len(choices)))])
            w.add("bass", t, t + int(0.9 * TPB), pitch, v * (0.95 if i % 2 == 0 else 0.85))
    elif kind == "kick":
        groove = _groove(style, sec, grid) or {"kick": "x" + "." * 15}
        steps = groove.get("kick", "x" + "." * 15)
        n = len(steps)
        step_ticks = grid.bar_ticks // n
        hits = [bar_start + i * step_ticks for i, c in enumerate(steps) if c != "."]
        hits = [t for t in hits if s0 <= t < s1] or [s0]
        for i, t in enumerate(hits):
            end = hits[i + 1] if i + 1 < len(hits) else s1
            pitch = root if i % 3 != 2 else (root + 12 if rng.random() < 0.5 else fifth)
            w.add("bass", t, end - STEP // 2, pitch, v)
    else:  # pop
        approach = _nearest(next_root, root)
        figure = [(0, 6, root), (6, 2, root), (8, 4, fifth), (12, 2, root + 12), (14, 2, approach)]
        for step, dur, pitch in figure:
            t = s0 + step * STEP
            if t < s1:
                w.add("bass", t, min(t + dur * STEP, s1), pitch, v * (1.0 if step % 8 == 0 else 0.85))


_COMP_RHYTHMS = {
    "pop_keys": ["x..x..x.x..x..x.", "x..x..x...x.x..."],
    "stabs": ["..x...x...x...x.", "..x...x...x..xx."],
    "strum8": ["x.x.x.x.x.x.x.x."],
    "jazz_comp": ["x.....x.........", "...x......x.....", "x.......x..x....", "......x.....x..."],
    "lofi_keys": ["x.............x.", "x.........x....."],
}


def _comp(w, style, voicing, s0, s1, bar_start, gain, rng, grid):
    kind = style.comp
    if kind == "held" or kind not in _COMP_RHYTHMS and kind != "alberti":
        for p in voicing:
            w.add("chords", s0, s1, p, 78 * gain)
        return
    if kind == "alberti":
        order = [voicing[0], voicing[-1], voicing[len(voicing) // 2], voicing[-1]]
        for i, t in enumerate(range(s0, s1, 2 * STEP)):
            w.add("chords", t, t + 2 * STEP, order[i % 4], (80 if i % 4 == 0 else 66) * gain)
        return
    rhythms = _COMP_RHYTHMS[kind]
    steps = rhythms[int(rng.integers(len(rhythms)))][:grid.steps_per_bar]
    hits = [i for i, c in enumerate(steps) if c != "."]
    for j, i in enumerate(hits):
        t = bar_start + i * STEP + _swing_ticks(i, 16, style.swing)
        if not s0 <= t < s1:
            continue
        nxt = hits[j + 1] if j + 1 < len(hits) else len(steps)
        dur = {"stabs": STEP, "strum8": int(1.7 * STEP)}.get(kind, (nxt - i) * STEP - STEP // 4)
        accent = 1.0 if i % 4 == 0 else 0.88
        for p in voicing:
            w.add("chords", t, min(t + dur, s1 if kind != "lofi_keys" else t + dur), p, 84 * gain * accent)


def _pad(w, pcs, reg, s0, s1, gain):
    centre, span = reg["pad"], reg["pad_span"]
    notes = set()
    lo = centre - span / 2
    for k, pc in enumerate(list(pcs) * 3):
        target = lo + (k + 0.5) * span / (3 * len(pcs))
        notes.add(_nearest(pc, target))
    for p in sorted(notes)[:6]:
        w.add("pad", s0, s1, p, 70 * gain)


def _texture(w, style, pcs, reg, s0, s1, gain):
    centre = reg["texture"]
    for pc in (pcs[0], pcs[min(2, len(pcs) - 1)] if len(pcs) > 1 else pcs[0]):
        w.add("texture", s0, s1, _nearest(pc, centre), 74 * gain)


def _arp(w, pcs, reg, s0, s1, gain, style):
    centre = reg["arp"]
    tones = sorted({_nearest(pc, centre + o) for pc in pcs for o in (-6, 0, 6)})
    if not tones:
        return
    step = 2 * STEP if style.name in ("classical", "ambient", "lofi", "jazz") else STEP
    seq = tones + tones[-2:0:-1]
    for i, t in enumerate(range(s0, s1, step)):
        w.add("arp", t, t + step, seq[i % len(seq)], (72 if i % 4 == 0 else 60) * gain)


def _lead(w, style, key, chords, sec, b, bar_start, reg, gain, rng, cache, spb=16):
    """A two-bar motif per section type (``spb`` sixteenths a bar), repeated with its ending
    varied on every other statement; strong beats land on chord tones, the rest move by step
    in the scale."""
    name = sec.name if sec.name in ("chorus", "bridge", "main") else "verse"
    centre = reg["lead"] + (3 if name == "chorus" else 0)
    if name not in cache:
        density = style.lead_density * (1.2 if name == "chorus" else 1.0)
        onsets = [0] + [i for i in range(2, 2 * spb, 2) if rng.random() < density / 2.0]
        if len(onsets) > 1 and onsets[-1] > 2 * spb - 4:
            onsets = onsets[:-1]
        moves = rng.choice([-2, -1, -1, 1, 1, 2, 3, -3], size=len(onsets))
        cache[name] = [(o, int(mv), 0) for o, mv in zip(onsets, moves, strict=True)]
    motif = cache[name]
    phrase_bar = (b - sec.start_bar) % 2
    statement = (b - sec.start_bar) // 2
    scale = [p for p in range(int(centre) - 14, int(centre) + 15) if key.contains(p % 12)]
    if not scale:
        return
    pos = int(np.argmin(np.abs(np.array(scale) - centre)))
    events = [(o, mv) for o, mv, _ in motif]
    for j, (o, mv) in enumerate(events):
        pos = int(np.clip(pos + mv, 0, len(scale) - 1))
        if o // spb != phrase_bar:
            continue
        t = bar_start + (o % spb) * STEP + _swing_ticks(o % spb, 16, style.swing)
        nxt = events[j + 1][0] if j + 1 < len(events) else 2 * spb
        dur = (nxt - o) * STEP
        pitch = scale[pos]
        chord = _chord_at(chords, t)[2]
        if o % 4 == 0 and pitch % 12 not in chord:  # strong beats on chord tones
            pitch = min((_nearest(pc, pitch) for pc in chord), key=lambda p: abs(p - pitch))
        if statement % 2 == 1 and j >= len(events) - 2:  # answer phrase: resolve home
            pitch = _nearest(chord[0], pitch)
        w.add("lead", t, t + max(dur - STEP // 4, STEP // 2), pitch, (92 if o % 8 == 0 else 80) * gain)


def _hit_piece(style: Style, centroid: float, duration: float) -> str:
    """The kit piece that doubles a noise event: one whose sound sits near the event's spectral
    centroid (Hz) and rings about as long as it lasts (s), in the style's own kit."""
    if not style.has_drums:
        return ""
    short = duration < 0.06
    if centroid < 220:
        return "kick" if style.name != "jazz" else "tom_low"
    if centroid < 900:
        if short:
            return "woodblock"
        return {"jazz": "tom_mid", "hiphop": "clap"}.get(style.name, "tom_mid")
    if centroid < 2500:
        if short:
            return {"jazz": "rim", "edm": "clap"}.get(style.name, "claves" if centroid > 1800 else "rim")
        return {"jazz": "snare", "lofi": "snare"}.get(style.name, "clap")
    if centroid < 5000:
        return "hat" if short else {"jazz": "ride_bell"}.get(style.name, "tambourine")
    return "shaker" if style.name != "jazz" else "pedal_hat"


def _hits(w, listening, style, key, chords, grid, reg, sections):
    """Percussion and tonal stabs on the noise's strongest core events, on the grid."""

    events = listening.core.events
    # only real events: a steady noise's flickers (rain, an engine) get no hits
    events = events[events[:, 1] >= EVENT_MIN_STRENGTH] if events.size else events
    if events.size == 0:
        return
    # hits go on the 32nd-note grid when a grid line is within HIT_SNAP_S of the event, and on
    # the event itself otherwise: a hit that misses its event by more than that masks nothing
    ticks = np.arange(0, grid.end_tick + STEP, STEP // 2)
    secs = ticks_to_seconds(ticks, grid.tempo_map, TPB)
    strengths = events[:, 1]
    top = np.percentile(strengths, 50) if strengths.size > 4 else strengths.min()
    taken: set[int] = set()
    for time_s, strength, centroid, duration in events:
        i = int(np.argmin(np.abs(secs - time_s)))
        tick = int(ticks[i])
        if abs(secs[i] - time_s) > HIT_SNAP_S:  # off the grid: the hit follows the noise itself
            tick = int(round(float(seconds_to_ticks(np.array([time_s]), grid.tempo_map, TPB)[0])))
        if tick in taken:
            continue
        taken.add(tick)
        length = int(max(2 * STEP, np.ceil(seconds_to_ticks(np.array([time_s + duration]), grid.tempo_map,
                                                            TPB)[0] - tick)))
        vel = float(np.clip(70 + 12 * np.log2(max(strength, 1.0)), 60, 124))
        piece = _hit_piece(style, float(centroid), float(duration))
        if piece:
            w.add("hits", tick, tick + STEP, DRUM_NOTES[piece], vel)
        if strength >= top:
            chord = _chord_at(chords, tick)[2]
            centre = float(np.clip(hz_to_midi(max(centroid, 80.0)) - 12.0, 48.0, 96.0))
            notes = {_nearest(pc, centre + k * 4) for k, pc in enumerate(chord[:3])}
            for p in sorted(notes):
                w.add("stabs", tick, tick + length, p, vel * 0.85)


def _cue_hits(w, timeline: Timeline, style: Style, chords, grid: Grid, reg) -> None:
    """An accent on each of the timeline's hits: a crash (with drums) and a stab chord on the
    nearest 32nd note."""
    ticks = np.arange(0, grid.end_tick + STEP, STEP // 2)
    secs = ticks_to_seconds(ticks, grid.tempo_map, TPB)
    for t in timeline.hits:
        if not 0.0 <= t < timeline.duration_s:
            continue
        tick = int(ticks[int(np.argmin(np.abs(secs - t)))])
        if style.has_drums:
            w.add("hits", tick, tick + TPB, DRUM_NOTES["crash"], 104)
        chord = _chord_at(chords, tick)[2]
        for k, pc in enumerate(chord[:3]):
            w.add("stabs", tick, tick + 2 * STEP, _nearest(pc, reg["stabs"] + 4 * k), 96)


def _follow_pitch(midi: float, key: Key, chord: tuple[int, ...]) -> int:
    """The note of the key nearest a sung pitch (MIDI, in the key's tuning): a chord tone
    within a semitone wins, else the nearest scale tone; kept in MIDI 43-96 by octaves."""
    p = float(midi)
    while p > 96.0:
        p -= 12.0
    while p < 43.0:
        p += 12.0
    best, best_cost = int(round(p)), np.inf
    for q in range(int(np.floor(p)) - 2, int(np.ceil(p)) + 3):
        if not key.contains(q % 12):
            continue
        cost = abs(q - p) - (0.6 if q % 12 in chord else 0.0)
        if cost < best_cost:
            best, best_cost = q, cost
    return best


def _follow(w, listening, key, chords, grid):
    """A part that doubles the noise's own melody (:mod:`.melody`): each voiced note of a
    howl, a call, a miaow or an engine's whine gets a held note at its pitch (the key's nearest
    chord or scale tone, in the key's tuning, which the noise set), starting on the 32nd-note
    grid when one is within HIT_SNAP_S and on the noise's own onset otherwise: the music's
    partials land on the noise's."""
    melody = listening.melody
    if melody is None or not melody.notes.size:
        return
    notes = melody.notes
    notes = notes[((notes[:, 1] - notes[:, 0]) >= FOLLOW_MIN_S) & (notes[:, 3] >= FOLLOW_MIN_CLARITY_DB)]
    if not notes.size:
        return
    ticks = np.arange(0, grid.end_tick + STEP, STEP // 2)
    secs = ticks_to_seconds(ticks, grid.tempo_map, TPB)
    on_ticks = seconds_to_ticks(notes[:, 0], grid.tempo_map, TPB)
    off_ticks = seconds_to_ticks(notes[:, 1], grid.tempo_map, TPB)
    tuning = key.tuning_cents / 100.0
    previous = None
    for (on_s, _, midi, clarity), on, off in zip(notes, on_ticks, off_ticks, strict=True):
        i = int(np.argmin(np.abs(secs - on_s)))
        tick = int(ticks[i]) if abs(secs[i] - on_s) <= HIT_SNAP_S else int(round(on))
        off = max(int(round(off)), tick + STEP // 2)
        if previous is not None and previous[1] > tick:  # one voice: the last note yields
            w.notes["follow"][-1] = (previous[0], max(previous[0] + 1, tick), *previous[2:])
        pitch = _follow_pitch(midi - tuning, key, _chord_at(chords, max(tick, 0))[2])
        vel = float(np.clip(62.0 + 2.0 * clarity, 64.0, 110.0))
        w.add("follow", tick, off, pitch, vel)
        if w.notes.get("follow"):
            previous = w.notes["follow"][-1]


def _tracks(w: _Writer, style: Style) -> list[TrackPlan]:
    names = {"drums": "Drums", "hits": "Noise hits", "bass": "Bass", "chords": "Chords", "pad": "Pad",
             "lead": "Lead", "arp": "Arpeggio", "texture": "Texture", "stabs": "Stabs",
             "follow": "Noise voice"}
    lead = style.voices.get("lead", "")
    voice_of = {"drums": "drums", "hits": "drums", "stabs": style.voices.get("arp", "pluck"),
                "follow": lead if lead in SUSTAINED else FOLLOW_VOICE.get(style.name, "flute"),
                **{r: v for r, v in style.voices.items()}}
    out = []
    for role in ("drums", "hits", "bass", "chords", "pad", "lead", "arp", "texture", "stabs", "follow"):
        lst = w.notes.get(role)
        if not lst:
            continue
        voice = voice_of.get(role, "piano")
        program = VOICES[voice].program if voice in VOICES else 0
        arr = np.array(sorted(lst), dtype=np.int64)
        out.append(TrackPlan(names[role], role, voice, ROLE_CHANNELS[role], program, arr))
    return out
