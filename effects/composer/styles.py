"""The composer's genre table, and the prompt -> style mapping.

Each :class:`Style` says how a genre is played: its tempo range, modes, chord vocabulary
(progressions as scale degrees, chord size, harmonic rhythm, voicing), drum grooves and fills as
step strings, bass and comping figures, melody density, the voices of each role, and its mix
(reverb, drive, compression, lo-fi wear) and how deeply its dynamics may follow a noise.

Step strings: one character per step, ``len`` steps per 4/4 bar (16 = sixteenths, 12 = eighth
triplets). ``.`` rest, ``x`` hit, ``X`` accent, ``o`` ghost note.

:func:`style_from_prompt` reads free text ("dark lofi hip hop with piano", "techno 128 bpm"):
genre words (with aliases and typo-tolerant matching), mood words (dark/happy -> mode), pace
words (slow/fast -> tempo range) and instrument words (piano, guitar, strings, synth, organ ->
the chord voice). Unknown text falls back to pop, unchanged by the words it did not understand.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace

__all__ = ["Style", "Prompt", "STYLES", "DRUM_NOTES", "style_from_prompt", "style_names"]

#: General MIDI drum keys (channel 10) of the kit pieces the grooves name.
DRUM_NOTES: dict[str, int] = {
    "kick": 36, "rim": 37, "snare": 38, "clap": 39, "hat": 42, "pedal_hat": 44, "open_hat": 46,
    "floor_tom": 43, "tom_low": 45, "tom_mid": 47, "tom_high": 50, "crash": 49, "ride": 51,
    "ride_bell": 53, "tambourine": 54, "cowbell": 56, "shaker": 70, "claves": 75, "woodblock": 76,
}

Groove = dict[str, str]


@dataclass(frozen=True)
class Style:
    """How one genre is written, voiced and mixed (see the module docstring).

    Attributes
    ----------
    name : str
        Genre name (the key in :data:`STYLES`).
    keywords : tuple of str
        Prompt words that select it.
    tempo : (float, float)
        BPM range; a noise without a pulse gets a tempo inside it.
    modes : tuple of (str, float)
        Modes with prior weights.
    progressions : tuple of tuple of int
        Chord loops as 1-based scale degrees.
    chord_size : int
        2 power chords, 3 triads, 4 sevenths, 5 ninths.
    bars_per_chord : float
        Harmonic rhythm (0.5, 1, 2 or 4 bars per chord).
    voicing : str
        'close', 'open', 'spread', 'power' or 'drop2'.
    swing : float
        Fraction of a step by which off-beat steps are delayed (0 straight .. 0.33 hard swing).
    grooves, fills : tuple of dict
        Drum patterns: piece name -> step string. Empty: no drum kit.
    bass : str
        Bass figure: 'root8', 'pop', 'offbeat', 'kick', 'walking', 'pedal', 'classical'.
    comp : str
        Chord figure: 'held', 'stabs', 'strum8', 'pop_keys', 'jazz_comp', 'alberti', 'lofi_keys'.
    lead_density : float
        Melody notes per beat (0: no melody).
    voices : dict
        Role ('bass', 'chords', 'pad', 'lead', 'arp', 'texture') -> synth voice name.
    reverb : (float, float)
        Room size and wet level of the reverb bus (0..1).
    drive_db : float
        Saturation on chords (rock, punk).
    compress_ratio : float
        Bus compression ratio.
    lofi : bool
        Bit-crush and wow on the music bus.
    follow_floor_db : float
        How far (dB) the dynamics may dip where the noise is quiet (scaled by Composer.follow).
    """

    name: str
    keywords: tuple[str, ...]
    tempo: tuple[float, float]
    modes: tuple[tuple[str, float], ...]
    progressions: tuple[tuple[int, ...], ...]
    chord_size: int
    bars_per_chord: float
    voicing: str
    swing: float
    grooves: tuple[Groove, ...]
    fills: tuple[Groove, ...]
    bass: str
    comp: str
    lead_density: float
    voices: dict[str, str] = field(default_factory=dict)
    reverb: tuple[float, float] = (0.4, 0.15)
    drive_db: float = 0.0
    compress_ratio: float = 2.0
    lofi: bool = False
    follow_floor_db: float = -18.0

    @property
    def has_drums(self) -> bool:
        return bool(self.grooves)


_POP_GROOVES = (
    {"kick": "x.......x.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    {"kick": "x.....x.x.......", "snare": "....x.......x..o", "hat": "x.xxx.x.x.xxx.x.",
     "shaker": "..x...x...x...x."},
)
_POP_FILLS = ({"kick": "x.......x.......", "snare": "....x.....x.xxXX", "tom_mid": "........xx......"},)

_EDM_GROOVES = (
    {"kick": "x...x...x...x...", "clap": "....x.......x...", "hat": "..x...x...x...x.",
     "shaker": "xxxxxxxxxxxxxxxx"},
    {"kick": "x...x...x...x...", "clap": "....x.......x...", "open_hat": "..x...x...x...x.",
     "hat": "x.xxx.xxx.xxx.xx"},
)
_EDM_FILLS = ({"kick": "x...x...x...x...", "snare": "x.x.x.x.xxxxXXXX", "open_hat": "..x...x........."},)

_ROCK_GROOVES = (
    {"kick": "x.....x.x.....x.", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    {"kick": "x.....x.x.x.....", "snare": "....x.......x...", "ride": "x.x.x.x.x.x.x.x.",
     "crash": "x..............."},
)
_ROCK_FILLS = ({"kick": "x...............", "snare": "....x...xxxx....", "tom_high": "............xx..",
                "floor_tom": "..............xx"},)

_HIPHOP_GROOVES = (
    {"kick": "x......xx.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    {"kick": "x.........x..x..", "snare": "....x.......x...", "hat": "xxxxxxxxxxxxxxxx",
     "open_hat": "..............x."},
)
_HIPHOP_FILLS = ({"kick": "x.........x.....", "snare": "....x.......x.oo", "hat": "x.x.x.x.xxxxxxxx"},)

_PUNK_GROOVES = (
    {"kick": "x...x...x...x...", "snare": "..x...x...x...x.", "crash": "x.x.x.x.x.x.x.x."},
    {"kick": "x.x...x.x.x...x.", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
)
_PUNK_FILLS = ({"kick": "x...............", "snare": "xxxxxxxxXXXXXXXX"},)

# Jazz on the eighth-triplet grid (12 steps): spang-a-lang ride, hi-hat on 2 and 4, feathered kick.
_JAZZ_GROOVES = (
    {"ride": "x..x.xx..x.x", "pedal_hat": "...x.....x..", "kick": "o.....o.....",
     "snare": "..........o."},
    {"ride": "x..x.xx..x.x", "pedal_hat": "...x.....x..", "kick": "o..o..o..o..",
     "snare": ".....o....o."},
)
_JAZZ_FILLS = ({"ride": "x..x........", "snare": "...o.oo.oxXx", "kick": "x.........x."},)

_LOFI_GROOVES = (
    {"kick": "x.........x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x.",
     "rim": "..............o."},
    {"kick": "x......x..x.....", "snare": "....x.......x...", "hat": "x.xxx.x.x.x.x.xx",
     "shaker": "..x...x...x...x."},
)
_LOFI_FILLS = ({"kick": "x.........x.....", "snare": "....x.......x.o.", "hat": "x.x.x.x.x.x.xxx."},)

_CLASSICAL_GROOVES: tuple[Groove, ...] = ()
_AMBIENT_GROOVES: tuple[Groove, ...] = ()


STYLES: dict[str, Style] = {s.name: s for s in (
    Style("pop", ("pop", "radio", "catchy", "dance-pop", "synthpop", "indie", "kpop", "disco", "funk"),
          (96, 124), (("major", 1.0), ("minor", 0.5)),
          ((1, 5, 6, 4), (6, 4, 1, 5), (1, 6, 4, 5), (4, 1, 5, 6)), 3, 1.0, "open", 0.0,
          _POP_GROOVES, _POP_FILLS, "pop", "pop_keys", 0.75,
          {"bass": "synth_bass", "chords": "piano", "pad": "pad", "lead": "lead", "arp": "pluck",
           "texture": "air"},
          reverb=(0.45, 0.18), compress_ratio=3.0, follow_floor_db=-18.0),
    Style("edm", ("edm", "electronic", "house", "techno", "trance", "dance", "club", "rave", "dubstep",
                  "electro", "dnb", "drum and bass", "future", "festival"),
          (120, 132), (("minor", 1.0), ("major", 0.4)),
          ((6, 4, 1, 5), (1, 6, 3, 7), (1, 7, 6, 7), (1, 4, 6, 5)), 3, 1.0, "spread", 0.0,
          _EDM_GROOVES, _EDM_FILLS, "offbeat", "stabs", 1.0,
          {"bass": "synth_bass", "chords": "supersaw", "pad": "pad", "lead": "saw_lead",
           "arp": "pluck", "texture": "air"},
          reverb=(0.6, 0.2), compress_ratio=4.0, follow_floor_db=-24.0),
    Style("rock", ("rock", "guitar band", "grunge", "metal", "alternative", "hard rock", "indie rock",
                   "blues", "garage"),
          (100, 140), (("major", 0.6), ("mixolydian", 0.6), ("minor", 0.6)),
          ((1, 7, 4, 1), (1, 4, 5, 4), (1, 5, 6, 4), (6, 4, 1, 5)), 2, 1.0, "power", 0.0,
          _ROCK_GROOVES, _ROCK_FILLS, "root8", "strum8", 0.5,
          {"bass": "bass", "chords": "dist_guitar", "pad": "organ", "lead": "guitar_lead",
           "arp": "guitar", "texture": "air"},
          reverb=(0.35, 0.12), drive_db=12.0, compress_ratio=4.0, follow_floor_db=-14.0),
    Style("hiphop", ("hip-hop", "hiphop", "hip hop", "rap", "trap", "boom bap", "boombap", "r&b",
                     "rnb", "drill"),
          (80, 100), (("minor", 1.0), ("dorian", 0.6)),
          ((1, 6), (1, 4), (1, 7, 6, 7), (6, 7, 1, 1)), 4, 2.0, "close", 0.12,
          _HIPHOP_GROOVES, _HIPHOP_FILLS, "kick", "lofi_keys", 0.5,
          {"bass": "sub_bass", "chords": "epiano", "pad": "strings", "lead": "bell", "arp": "bell",
           "texture": "vinyl"},
          reverb=(0.35, 0.12), compress_ratio=4.0, follow_floor_db=-20.0),
    Style("punk", ("punk", "pop punk", "pop-punk", "hardcore", "ska", "emo", "fast rock"),
          (160, 200), (("major", 1.0), ("minor", 0.4)),
          ((1, 4, 5, 4), (1, 5, 6, 4), (1, 4, 1, 5), (6, 4, 1, 5)), 2, 1.0, "power", 0.0,
          _PUNK_GROOVES, _PUNK_FILLS, "root8", "strum8", 0.0,
          {"bass": "bass", "chords": "dist_guitar", "pad": "dist_guitar", "lead": "guitar_lead",
           "arp": "guitar", "texture": "air"},
          reverb=(0.25, 0.08), drive_db=18.0, compress_ratio=5.0, follow_floor_db=-12.0),
    Style("jazz", ("jazz", "swing", "bebop", "bossa", "bossa nova", "smooth jazz", "lounge", "cocktail",
                   "big band", "trio", "sax", "saxophone"),
          (110, 170), (("major", 1.0), ("dorian", 0.6)),
          ((2, 5, 1, 1), (1, 6, 2, 5), (3, 6, 2, 5), (1, 4, 3, 6)), 4, 1.0, "drop2", 0.0,
          _JAZZ_GROOVES, _JAZZ_FILLS, "walking", "jazz_comp", 0.75,
          {"bass": "upright", "chords": "piano", "pad": "organ", "lead": "reed", "arp": "vibes",
           "texture": "brush"},
          reverb=(0.4, 0.15), compress_ratio=1.5, follow_floor_db=-16.0),
    Style("classical", ("classical", "orchestral", "orchestra", "symphony", "symphonic", "baroque",
                        "romantic", "chamber", "string quartet", "cinematic", "film score", "epic"),
          (66, 116), (("major", 1.0), ("minor", 0.8), ("harmonic_minor", 0.3)),
          ((1, 4, 5, 1), (1, 6, 4, 5), (1, 2, 5, 1), (1, 4, 2, 5), (6, 2, 5, 1)), 3, 1.0, "spread", 0.0,
          _CLASSICAL_GROOVES, (), "classical", "alberti", 0.5,
          {"bass": "cello", "chords": "strings", "pad": "strings", "lead": "flute", "arp": "harp",
           "texture": "tremolo"},
          reverb=(0.75, 0.3), compress_ratio=1.2, follow_floor_db=-20.0),
    Style("lofi", ("lofi", "lo-fi", "lo fi", "chill", "chillhop", "study", "relax", "relaxing", "mellow",
                   "jazzy", "vinyl", "cozy", "rainy", "cafe"),
          (70, 90), (("major", 0.8), ("dorian", 0.8), ("minor", 0.6)),
          ((2, 5, 1, 6), (1, 3, 6, 4), (4, 3, 2, 1), (1, 6, 2, 5)), 4, 1.0, "close", 0.18,
          _LOFI_GROOVES, _LOFI_FILLS, "kick", "lofi_keys", 0.5,
          {"bass": "sub_bass", "chords": "epiano", "pad": "pad", "lead": "bell", "arp": "guitar",
           "texture": "vinyl"},
          reverb=(0.5, 0.2), compress_ratio=3.0, lofi=True, follow_floor_db=-18.0),
    Style("ambient", ("ambient", "drone", "calm", "meditation", "meditative", "space", "atmospheric",
                      "new age", "sleep", "dreamy", "ethereal", "soundscape", "spa", "peaceful"),
          (60, 84), (("major", 0.8), ("lydian", 0.5), ("minor", 0.6)),
          ((1, 4), (1, 6, 4, 1), (1, 5, 4, 4), (4, 1)), 5, 2.0, "spread", 0.0,
          _AMBIENT_GROOVES, (), "pedal", "held", 0.25,
          {"bass": "sub_bass", "chords": "pad", "pad": "choir", "lead": "bell", "arp": "bell",
           "texture": "air"},
          reverb=(0.9, 0.35), compress_ratio=1.5, follow_floor_db=-24.0),
)}

#: The style unknown prompts fall back to.
DEFAULT_STYLE = "pop"

_MOODS = {
    "minor": ("dark", "sad", "melancholic", "melancholy", "moody", "gloomy", "minor", "somber", "night",
              "tense", "haunting", "mysterious"),
    "major": ("happy", "bright", "uplifting", "joyful", "cheerful", "sunny", "major", "hopeful", "summer",
              "positive", "warm"),
}
_PACE = {"slow": ("slow", "lazy", "laid-back", "laidback", "downtempo", "gentle", "soft"),
         "fast": ("fast", "energetic", "upbeat", "driving", "intense", "hard", "aggressive", "hype")}
_INSTRUMENTS = {"piano": "piano", "keys": "epiano", "rhodes": "epiano", "guitar": "guitar",
                "strings": "strings", "violin": "strings", "organ": "organ", "synth": "supersaw",
                "bells": "bell", "bell": "bell", "harp": "harp", "brass": "brass", "flute": "flute",
                "sax": "reed", "saxophone": "reed", "vibraphone": "vibes", "choir": "choir"}


@dataclass(frozen=True)
class Prompt:
    """What :func:`style_from_prompt` understood.

    Attributes
    ----------
    style : Style
        The genre, with tempo range and chord voice adjusted by pace and instrument words.
    matched : str
        The words that chose the genre ('' when it fell back to the default).
    mode : str or None
        A mode forced by mood words.
    bpm : float or None
        A tempo written in the prompt ('90 bpm').
    """

    style: Style
    matched: str
    mode: str | None
    bpm: float | None


def style_names() -> list[str]:
    """The genres :data:`STYLES` knows."""
    return list(STYLES)


def _words(prompt: str) -> str:
    return " " + re.sub(r"[^a-z0-9&#+\- ]+", " ", prompt.lower()) + " "


def _find_genre(text: str) -> tuple[str, str]:
    """The genre whose keywords cover the most characters of the text wins (so 'pop punk' is
    punk, not pop); ties go to the table's order. Failing that, typo-tolerant word matching."""
    best: tuple[int, str, str] = (0, "", "")
    for style in STYLES.values():
        found = [kw for kw in dict.fromkeys((style.name, *style.keywords)) if f" {kw} " in text]
        score = sum(len(kw) for kw in found)
        if score > best[0]:
            best = (score, style.name, max(found, key=len))
    if best[1]:
        return best[1], best[2]
    vocabulary = {kw.replace(" ", ""): s.name for s in STYLES.values() for kw in (s.name, *s.keywords)}
    for word in text.split():
        close = difflib.get_close_matches(word.replace("-", ""), list(vocabulary), n=1, cutoff=0.8)
        if close:
            return vocabulary[close[0]], word
    return "", ""


def style_from_prompt(prompt: str) -> Prompt:
    """Interpret a text prompt as a :class:`Prompt` (genre, mood, pace, instruments, tempo).

    Deterministic: the same text always gives the same result. Unknown words are ignored; a
    prompt with no genre word gets :data:`DEFAULT_STYLE` ('pop').

    Examples
    --------
    >>> p = style_from_prompt("dark lofi beats with piano, 80 bpm")
    >>> p.style.name, p.mode, p.bpm, p.style.voices["chords"]
    ('lofi', 'minor', 80.0, 'piano')
    """
    text = _words(str(prompt))
    name, matched = _find_genre(text)
    style = STYLES[name or DEFAULT_STYLE]
    mode = next((m for m, words in _MOODS.items() if any(f" {w} " in text for w in words)), None)
    lo, hi = style.tempo
    if any(f" {w} " in text for w in _PACE["slow"]):
        style = replace(style, tempo=(lo * 0.85, lo + (hi - lo) * 0.4))
    elif any(f" {w} " in text for w in _PACE["fast"]):
        style = replace(style, tempo=(lo + (hi - lo) * 0.6, hi * 1.1))
    instrument = next((v for w, v in _INSTRUMENTS.items() if f" {w} " in text), None)
    if instrument is not None:
        style = replace(style, voices={**style.voices, "chords": instrument})
    bpm_match = re.search(r"(\d{2,3}(?:\.\d+)?)\s*bpm", text)
    bpm = float(bpm_match.group(1)) if bpm_match else None
    if bpm is not None and not 30.0 <= bpm <= 300.0:
        bpm = None
    return Prompt(style, matched, mode, bpm)
