"""MIDI in REAPER projects: in-project ``<SOURCE MIDI>`` data and ``.mid`` sources, placed on
the project's tempo map.

REAPER keeps a MIDI item's events in the project (``<SOURCE MIDI``): ``HASDATA 1 960 QN`` gives
the ticks per quarter note, then one line per event, ``E delta status data1 data2`` in hex with
the delta in ticks from the previous event (``e``: a selected event; ``Em``/``em``: a muted
one, skipped; an ``<X`` block: a SysEx or text event, whose delta still counts). The last
event marks the end of the source (REAPER writes an all-notes-off there), which is the loop
length of a looped item. A ``.mid`` source is read with mido; its ticks count quarter notes
too. Both follow the project's tempo (quarter note ``q`` of an item at ``POSITION p`` sounds at
``tempo.beats_to_seconds(beats(p) + q)``), unless the source says ``IGNTEMPO 1 bpm``: then it
plays at that tempo, in seconds from the item start.

A placed item gives notes ``(start s, end s, channel, key, velocity)`` and other channel events
``(s, status, data1, data2)`` (CCs, pitch bend, program changes) on the session timeline: the
item's take offset (``SOFFS``, s), length (notes cut at its end), loop (``LOOP 1``: the source
repeats) and playback rate (``PLAYRATE``) applied. :func:`midi_file` writes a track's events as
a standard MIDI file on a time grid (60 BPM, 4000 ticks per quarter: 0.25 ms ticks), so the
session renders them at the times the project's tempo map gives.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido
import numpy as np

from .session import TempoMap

__all__ = ["MidiSource", "PlacedMidi", "parse_embedded", "read_mid_source", "place_item",
           "midi_file", "GRID_TPQ"]

#: Ticks per quarter note of the MIDI files the importer writes (at 60 BPM: 0.25 ms ticks).
GRID_TPQ = 4000
_GRID_TEMPO = 1_000_000  # microseconds per quarter note: 60 BPM, one quarter = one second


@dataclass
class MidiSource:
    """The events of one MIDI source in quarter notes from its start.

    Attributes
    ----------
    notes : np.ndarray
        ``(n, 5)``: start (quarter notes), end, channel (0-15), key, velocity.
    events : list of (float, int, int, int)
        Other channel events: (quarter notes, status byte, data1, data2).
    length_qn : float
        The source's length in quarter notes (the loop length).
    ignore_tempo : float or None
        The source's own tempo (BPM) when it ignores the project's.
    muted_events : int
        Events marked muted in REAPER (not played).
    """

    notes: np.ndarray
    events: list[tuple[float, int, int, int]] = field(default_factory=list)
    length_qn: float = 0.0
    ignore_tempo: float | None = None
    muted_events: int = 0

    @property
    def programs(self) -> list[int]:
        return [d1 for _, st, d1, _ in self.events if st & 0xF0 == 0xC0]


def _pair_notes(raw: list[tuple[float, int, int, int]], end_qn: float
                ) -> tuple[np.ndarray, list[tuple[float, int, int, int]]]:
    """Channel events (qn, status, d1, d2) -> notes (note-ons paired with their offs, FIFO per
    channel and key; a note never released ends at ``end_qn``) and the other events."""
    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes: list[tuple[float, float, int, int, int]] = []
    other: list[tuple[float, int, int, int]] = []
    for qn, status, d1, d2 in raw:
        kind, ch = status & 0xF0, status & 0x0F
        if kind == 0x90 and d2 > 0:
            open_notes.setdefault((ch, d1), []).append((qn, d2))
        elif kind in (0x80, 0x90):
            stack = open_notes.get((ch, d1))
            if stack:
                on, vel = stack.pop(0)
                notes.append((on, qn, ch, d1, vel))
        elif 0x80 <= status < 0xF0:
            other.append((qn, status, d1, d2))
    for (ch, key), stack in open_notes.items():
        for on, vel in stack:
            notes.append((on, max(end_qn, on), ch, key, vel))
    arr = np.array(sorted(notes), np.float64).reshape(-1, 5)
    return arr, other


def parse_embedded(source: Any) -> MidiSource:
    """The events of an in-project ``<SOURCE MIDI`` block (an :class:`~.reaper.RppElement`)."""
    has = source.get("HASDATA") or []
    try:
        tpq = int(has[1]) if len(has) > 1 else 960
    except ValueError:
        tpq = 960
    tpq = tpq if tpq > 0 else 960
    tick, muted = 0, 0
    raw: list[tuple[float, int, int, int]] = []
    for child in source.children:
        if isinstance(child, list):
            if not child or child[0][:1] not in ("E", "e") or len(child) < 3:
                continue
            try:
                delta = int(child[1])
                data = [int(x, 16) for x in child[2:5]]
            except ValueError:
                continue
            tick += delta
            if "m" in child[0][1:]:
                muted += 1
                continue
            while len(data) < 3:
                data.append(0)
            raw.append((tick / tpq, data[0], data[1], data[2]))
        elif getattr(child, "tag", "") in ("X", "x") and child.attrib:
            try:
                tick += int(child.attrib[0])  # a SysEx/text event: its delta still counts
            except ValueError:
                pass
    ign = source.get("IGNTEMPO")
    ignore = None
    if ign and ign[0] == "1" and len(ign) > 1:
        try:
            ignore = float(ign[1]) if float(ign[1]) > 0 else None
        except ValueError:
            ignore = None
    length = tick / tpq
    notes, other = _pair_notes(raw, length)
    return MidiSource(notes, other, length, ignore, muted)


def read_mid_source(path: str | Path) -> MidiSource:
    """The events of a ``.mid`` file in quarter notes (all tracks merged; the file's own
    tempo is not used: REAPER plays a MIDI file's beats on the project tempo).

    Raises
    ------
    OSError, ValueError, EOFError
        The file cannot be read as a standard MIDI file.
    """
    mid = mido.MidiFile(str(path), clip=True)
    tpq = mid.ticks_per_beat or 480
    tick = 0
    raw: list[tuple[float, int, int, int]] = []
    for msg in mido.merge_tracks(mid.tracks):
        tick += msg.time
        if msg.is_meta or msg.type == "sysex":
            continue
        data = msg.bytes()
        while len(data) < 3:
            data.append(0)
        raw.append((tick / tpq, data[0], data[1], data[2]))
    length = tick / tpq
    notes, other = _pair_notes(raw, length)
    return MidiSource(notes, other, length)


@dataclass
class PlacedMidi:
    """Notes and channel events on the session timeline (seconds)."""

    notes: list[tuple[float, float, int, int, int]] = field(default_factory=list)
    events: list[tuple[float, int, int, int]] = field(default_factory=list)

    def extend(self, other: PlacedMidi) -> None:
        self.notes.extend(other.notes)
        self.events.extend(other.events)

    @property
    def end(self) -> float:
        return max([n[1] for n in self.notes] + [e[0] for e in self.events] + [0.0])


def place_item(src: MidiSource, tempo: TempoMap, position: float, length: float, *,
               offset: float = 0.0, loop: bool = False, rate: float = 1.0) -> PlacedMidi:
    """Place a source's events as an item at ``position`` (s) lasting ``length`` (s).

    ``offset`` is the take's start offset (s, at the project tempo at the item start; in the
    source's own seconds when it ignores the project tempo), ``loop`` repeats the source over
    the item, ``rate`` is the item's playback rate (the source runs ``rate`` times faster).
    Notes are cut at the item's end; notes before its start are not played.
    """
    rate = rate if rate > 0 else 1.0
    out = PlacedMidi()
    if length <= 0:
        return out
    end_s = position + length
    if src.ignore_tempo:
        qn_per_s = src.ignore_tempo / 60.0

        def to_seconds(q: np.ndarray) -> np.ndarray:  # item-relative quarter notes -> s
            return position + np.asarray(q, np.float64) / qn_per_s

        item_qn = length * qn_per_s
        off_qn = offset * qn_per_s
    else:
        q0 = tempo.seconds_to_beats(position)
        item_qn = tempo.seconds_to_beats(end_s) - q0
        off_qn = offset * tempo.bpm_at(position) / 60.0

        def to_seconds(q: np.ndarray) -> np.ndarray:
            return np.asarray(tempo.beats_to_seconds(q0 + np.asarray(q, np.float64)))

    span = src.length_qn
    repeats = 1
    if loop and span > 0:
        repeats = max(1, int(np.ceil((item_qn * rate + off_qn) / span - 1e-9)))
    notes = src.notes
    for k in range(repeats):
        shift = k * span - off_qn  # source qn -> item qn (before the rate)
        if notes.size:
            start = (notes[:, 0] + shift) / rate
            stop = (notes[:, 1] + shift) / rate
            if loop and span > 0:  # a looped source cuts its notes at the loop end
                stop = np.minimum(stop, ((k + 1) * span - off_qn) / rate)
            keep = (start >= -1e-9) & (start < item_qn - 1e-9)
            if keep.any():
                s = to_seconds(np.maximum(start[keep], 0.0))
                e = to_seconds(np.clip(stop[keep], 0.0, item_qn))
                for a, b, (ch, key, vel) in zip(s, e, notes[keep, 2:5], strict=True):
                    out.notes.append((float(a), float(max(b, a)), int(ch), int(key), int(vel)))
        for qn, status, d1, d2 in src.events:
            q = (qn + shift) / rate
            if -1e-9 <= q < item_qn - 1e-9 or (k == 0 and q < 0 and status & 0xF0 == 0xC0):
                # (a program change before the take offset still sets the program)
                out.events.append((float(to_seconds(max(q, 0.0))), status, d1, d2))
    return out


def midi_file(placed: PlacedMidi, name: str) -> bytes:
    """A type-0 standard MIDI file (its bytes) of placed events on a time grid (60 BPM,
    :data:`GRID_TPQ` ticks per quarter note: tick ``k`` is at ``k / 4000`` s, so onsets move by
    at most 0.125 ms); note-offs before note-ons at the same tick."""
    timed: list[tuple[int, int, bytes]] = []
    for start, end, ch, key, vel in placed.notes:
        timed.append((_tick(start), 2, bytes((0x90 | ch, key & 0x7F, max(1, min(127, vel))))))
        timed.append((_tick(end), 0, bytes((0x80 | ch, key & 0x7F, 0))))
    for t, status, d1, d2 in placed.events:
        kind = status & 0xF0
        data = (status, d1 & 0x7F) if kind in (0xC0, 0xD0) else (status, d1 & 0x7F, d2 & 0x7F)
        timed.append((_tick(t), 1, bytes(data)))
    timed.sort(key=lambda e: (e[0], e[1]))
    label = name.encode("utf-8")[:127]
    body = bytearray(b"\x00\xff\x03" + bytes((len(label),)) + label)
    body += b"\x00\xff\x51\x03" + _GRID_TEMPO.to_bytes(3, "big")
    last = 0
    for tick, _, data in timed:
        body += _varlen(tick - last) + data
        last = tick
    body += b"\x00\xff\x2f\x00"
    head = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    head += GRID_TPQ.to_bytes(2, "big")
    return head + b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _tick(seconds: float) -> int:
    return max(0, int(round(seconds * GRID_TPQ)))


def plugin_state(raw_lines: list[str]) -> bytes | None:
    """The bytes of a plug-in block's base64 state lines (None when they do not decode)."""
    text = "".join(line for line in raw_lines if not line.startswith("|"))
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None
