"""Music theory the composer shares: pitch classes, modes, keys, diatonic chords, tuning.

Pitches are MIDI note numbers (60 = middle C, 69 = A4 = 440 Hz at zero tuning); pitch classes
are 0..11 with 0 = C. A :class:`Key` is a tonic pitch class, a mode and a tuning offset in
cents: the composer detunes the whole piece so that a noise's hum sits exactly on a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from blendfx.errors import ParameterError

__all__ = ["NOTE_NAMES", "MODES", "Key", "pitch_class", "pc_name", "parse_key", "midi_to_hz",
           "hz_to_midi", "diatonic_chord"]

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = {"DB": 1, "EB": 3, "GB": 6, "AB": 8, "BB": 10, "CB": 11, "FB": 4, "E#": 5, "B#": 0}

#: Scale steps in semitones above the tonic.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}


def pitch_class(name: str) -> int:
    """Pitch class of a note name ('C', 'F#', 'Bb', 'eb'); raises :class:`ParameterError`."""
    key = name.strip().upper()
    if key in _FLATS:
        return _FLATS[key]
    if key.replace("♯", "#") in NOTE_NAMES:
        return NOTE_NAMES.index(key.replace("♯", "#"))
    raise ParameterError(f"{name!r} is not a note name (C, C#, Db, ..., B)")


def pc_name(pc: int) -> str:
    """Name of a pitch class (sharps)."""
    return NOTE_NAMES[int(pc) % 12]


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class, mode name and the piece's tuning offset.

    Attributes
    ----------
    tonic : int
        Pitch class 0..11 (0 = C).
    mode : str
        One of :data:`MODES`.
    tuning_cents : float
        Offset of the whole piece from A4 = 440 Hz, -50 to +50 cents.
    """

    tonic: int
    mode: str = "major"
    tuning_cents: float = 0.0

    @property
    def scale(self) -> tuple[int, ...]:
        """The seven pitch classes of the key, tonic first."""
        return tuple((self.tonic + s) % 12 for s in MODES[self.mode])

    @property
    def name(self) -> str:
        return f"{pc_name(self.tonic)} {self.mode.replace('_', ' ')}"

    def degree_pc(self, degree: int) -> int:
        """Pitch class of a 1-based scale degree (8 = the octave)."""
        return self.scale[(degree - 1) % 7]

    def contains(self, pc: int) -> bool:
        return int(pc) % 12 in self.scale


def parse_key(text: str) -> Key:
    """A :class:`Key` from text such as 'B minor', 'f# dorian', 'Eb', 'Am'.

    Raises
    ------
    ParameterError
        When the text names no key.
    """
    m = re.fullmatch(r"\s*([A-Ga-g](?:#|b|♯)?)\s*(m|min|minor|maj|major|[a-z_ ]+)?\s*", text)
    if not m:
        raise ParameterError(f"key = {text!r} is not a key such as 'B minor' or 'F# dorian'")
    tonic = pitch_class(m.group(1))
    mode = (m.group(2) or "major").strip().replace(" ", "_").lower()
    mode = {"m": "minor", "min": "minor", "maj": "major"}.get(mode, mode)
    if mode not in MODES:
        raise ParameterError(f"key = {text!r}: mode {mode!r} is not one of {', '.join(MODES)}")
    return Key(tonic, mode)


def midi_to_hz(pitch: float | np.ndarray, tuning_cents: float = 0.0) -> float | np.ndarray:
    """Frequency in Hz of a (possibly fractional) MIDI pitch, shifted by ``tuning_cents``."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0 + tuning_cents / 100.0) / 12.0)


def hz_to_midi(hz: float | np.ndarray) -> float | np.ndarray:
    """Fractional MIDI pitch of a frequency in Hz (A4 = 440 Hz)."""
    return 69.0 + 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / 440.0)


def diatonic_chord(key: Key, degree: int, size: int = 3) -> tuple[int, ...]:
    """Pitch classes of the chord on a scale degree, stacked in thirds within the key.

    ``size`` 3 is a triad, 4 a seventh chord, 5 a ninth chord; ``size`` 2 is a power chord
    (root and fifth). The root comes first.
    """
    steps = (0, 4) if size == 2 else tuple(range(0, 2 * size, 2))
    return tuple(key.degree_pc(degree + s) for s in steps)
