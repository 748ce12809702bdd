"""MIDI files in and out (mido): tempo maps, one track per instrument, drums on channel 10.

Writing (:func:`build_midi`): a type-1 file with a conductor track (tempo map, time signatures,
key signature) and one track per instrument, each with its name, program change, RPN fine
tuning (so a piece detuned to a noise's hum stays in tune in a DAW), note velocities and
controller automation (CC 11 expression, CC 10 pan). Settings the built-in renderer needs and
MIDI has no word for (the voice, insert effects, the master EQ, the exact length) ride along as
sequencer-specific meta events, which DAWs ignore.

Reading (:func:`read_midi`): any type-0/1 file to a :class:`Score` of :class:`Part` objects
(one per track, channel and program), with note times in seconds through the file's tempo map
(120 BPM when it has none), pitch bend in semitones (RPN 0 bend range), RPN fine/coarse tuning,
CC 7/10/11 curves and the sustain pedal applied to note ends.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import mido
import numpy as np
from blendfx.errors import ParameterError
from blendfx.files import atomic_path
from blendfx.threads import gc_paused

__all__ = ["Part", "Score", "TrackSpec", "build_midi", "read_midi", "save_midi", "ticks_to_seconds",
           "seconds_to_ticks", "set_score_meta", "meta_of",
           "DRUM_CHANNEL", "DEFAULT_TEMPO", "META_PREFIX"]

#: Channel 10 in MIDI's 1-based numbering.
DRUM_CHANNEL = 9
#: Microseconds per beat when a file has no tempo event (120 BPM).
DEFAULT_TEMPO = 500_000
#: Sequencer-specific meta data starts with the non-commercial manufacturer ID and this tag.
META_PREFIX = b"\x7dblendfx:"


@dataclass
class TrackSpec:
    """One instrument track to write.

    Attributes
    ----------
    name : str
        Track name.
    channel : int
        0-based MIDI channel (9 = drums).
    program : int
        General MIDI program (ignored on the drum channel).
    notes : np.ndarray
        ``(n, 4)`` integers: on tick, off tick, note number, velocity (1-127).
    controls : np.ndarray
        ``(k, 3)`` integers: tick, controller number, value.
    tuning_cents : float
        Fine tuning written as RPN 1 (-100..100 cents).
    meta : dict
        Renderer settings written as a sequencer-specific meta event.
    """

    name: str
    channel: int
    program: int
    notes: np.ndarray
    controls: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    tuning_cents: float = 0.0
    meta: dict = field(default_factory=dict)


@dataclass
class Part:
    """One instrument of a read MIDI file, in seconds.

    Attributes
    ----------
    name : str
        Track name (or 'channel N').
    channel : int
        0-based channel.
    program : int
        General MIDI program.
    is_drum : bool
        True on channel 10.
    notes : np.ndarray
        ``(n, 4)`` float: start (s), end (s), pitch (MIDI number plus RPN tuning, fractional),
        velocity.
    controls : dict
        Controller number -> ``(k, 2)`` array of (time in s, value 0..127).
    bend : np.ndarray
        ``(k, 2)``: time (s), bend in semitones.
    meta : dict
        blendfx renderer settings of the track (empty for foreign files).
    """

    name: str
    channel: int
    program: int
    is_drum: bool
    notes: np.ndarray
    controls: dict[int, np.ndarray] = field(default_factory=dict)
    bend: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    meta: dict = field(default_factory=dict)


@dataclass
class Score:
    """A MIDI file as the renderer sees it.

    Attributes
    ----------
    parts : list of Part
    tempo_map : np.ndarray
        ``(k, 2)``: tick, microseconds per beat (first row at tick 0).
    ticks_per_beat : int
    length_s : float
        End of the last event (note-off, controller or end of track) in s.
    meta : dict
        Global blendfx settings (master EQ, exact length); empty for foreign files.
    time_signatures : list of (tick, numerator, denominator)
    """

    parts: list[Part]
    tempo_map: np.ndarray
    ticks_per_beat: int
    length_s: float
    meta: dict = field(default_factory=dict)
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)

    def beat_times(self, until_s: float | None = None) -> np.ndarray:
        """Times in s of the quarter-note beats up to ``until_s`` (default: the end).

        Beats are counted from the first bar line after a pickup (the second time signature,
        when the first bar is shorter than a whole one), forwards and backwards, so a pickup's
        beats line up with the bars that follow it.
        """
        end = self.length_s if until_s is None else until_s
        tpb = self.ticks_per_beat
        anchor = 0
        sigs = sorted(self.time_signatures)
        if len(sigs) >= 2 and sigs[0][0] == 0:
            first_bar = sigs[0][1] * tpb * 4 // sigs[0][2]
            if sigs[1][0] <= first_bar:
                anchor = sigs[1][0]
        end_tick = int(np.ceil(seconds_to_ticks(np.array([end]), self.tempo_map, tpb)[0]))
        ticks = np.arange(anchor % tpb, end_tick + 1, tpb)
        secs = ticks_to_seconds(ticks, self.tempo_map, tpb)
        return secs[secs <= end + 1e-9]


def ticks_to_seconds(ticks: np.ndarray, tempo_map: np.ndarray, ticks_per_beat: int) -> np.ndarray:
    """Seconds of absolute ticks through a tempo map (``(k, 2)``: tick, microseconds per beat)."""
    ticks = np.asarray(ticks, dtype=np.float64)
    tm = np.asarray(tempo_map, dtype=np.float64).reshape(-1, 2)
    if tm.size == 0 or tm[0, 0] > 0:
        tm = np.vstack([[0.0, DEFAULT_TEMPO], tm]) if tm.size else np.array([[0.0, DEFAULT_TEMPO]])
    starts = tm[:, 0]
    spb = tm[:, 1] / 1e6 / ticks_per_beat  # seconds per tick in each segment
    seg_secs = np.concatenate([[0.0], np.cumsum(np.diff(starts) * spb[:-1])])
    seg = np.clip(np.searchsorted(starts, ticks, side="right") - 1, 0, len(starts) - 1)
    return seg_secs[seg] + (ticks - starts[seg]) * spb[seg]


def seconds_to_ticks(seconds: np.ndarray, tempo_map: np.ndarray, ticks_per_beat: int) -> np.ndarray:
    """Fractional ticks of times in s through a tempo map (the inverse of :func:`ticks_to_seconds`)."""
    secs = np.asarray(seconds, dtype=np.float64)
    tm = np.asarray(tempo_map, dtype=np.float64).reshape(-1, 2)
    if tm.size == 0 or tm[0, 0] > 0:
        tm = np.vstack([[0.0, DEFAULT_TEMPO], tm]) if tm.size else np.array([[0.0, DEFAULT_TEMPO]])
    starts = tm[:, 0]
    spb = tm[:, 1] / 1e6 / ticks_per_beat
    seg_secs = np.concatenate([[0.0], np.cumsum(np.diff(starts) * spb[:-1])])
    seg = np.clip(np.searchsorted(seg_secs, secs, side="right") - 1, 0, len(starts) - 1)
    return starts[seg] + (secs - seg_secs[seg]) / spb[seg]


def _meta_bytes(payload: dict) -> tuple[int, ...]:
    return tuple(META_PREFIX + json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("ascii"))


def meta_of(mid) -> dict:
    """The global blendfx settings of a file :func:`build_midi` wrote ({} for other files)."""
    for m in mid.tracks[0] if mid.tracks else []:
        if m.type == "sequencer_specific":
            found = _read_meta(m)
            if found is not None:
                return found
    return {}


def _read_meta(msg) -> dict | None:
    data = bytes(msg.data)
    if not data.startswith(META_PREFIX):
        return None
    try:
        return json.loads(data[len(META_PREFIX):].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


@gc_paused()  # (tens of thousands of message objects: no full collections meanwhile)
def build_midi(tracks: list[TrackSpec], tempo_map: np.ndarray, *, ticks_per_beat: int = 480,
               time_signatures: list[tuple[int, int, int]] | None = None, key_name: str | None = None,
               end_tick: int | None = None, meta: dict | None = None, title: str = "blendfx",
               markers: list[tuple[int, str]] | None = None):
    """A type-1 ``mido.MidiFile``: conductor track plus one track per :class:`TrackSpec`.

    Parameters
    ----------
    tracks : list of TrackSpec
    tempo_map : np.ndarray
        ``(k, 2)``: tick, microseconds per beat.
    ticks_per_beat : int
        Resolution (PPQ).
    time_signatures : list of (tick, numerator, denominator)
    key_name : str, optional
        Key signature in mido's notation ('B', 'F#m').
    end_tick : int, optional
        Where every track ends (default: its last event).
    meta : dict, optional
        Global renderer settings (conductor track).
    markers : list of (tick, text), optional
        Marker events on the conductor track (section names a DAW shows on its timeline).
    """

    mid = mido.MidiFile(type=1, ticks_per_beat=int(ticks_per_beat))
    meta_msg = mido.MetaMessage
    conductor: list[_Event] = [(0, 0, meta_msg, "track_name", {"name": title})]
    for tick, numerator, denominator in time_signatures or [(0, 4, 4)]:
        conductor.append((int(tick), 1, meta_msg, "time_signature",
                          {"numerator": int(numerator), "denominator": int(denominator)}))
    if key_name:
        conductor.append((0, 1, meta_msg, "key_signature", {"key": key_name}))
    for tick, tempo in np.asarray(tempo_map).reshape(-1, 2):
        conductor.append((int(tick), 2, meta_msg, "set_tempo", {"tempo": int(tempo)}))
    if meta:
        conductor.append((0, 3, meta_msg, "sequencer_specific", {"data": _meta_bytes(meta)}))
    for tick, text in markers or []:
        conductor.append((int(tick), 4, meta_msg, "marker", {"text": str(text)}))
    mid.tracks.append(_to_track(conductor, end_tick, mido))
    for spec in tracks:
        mid.tracks.append(_to_track(_track_events(spec, mido), end_tick, mido))
    return mid


#: (tick, order at equal ticks, message class, type, fields): messages are built once, with
#: their delta time, after sorting (mido validates every construction and copy).
_Event = tuple[int, int, Any, str, dict]


def _track_events(spec: TrackSpec, mido: Any) -> list[_Event]:
    ch = int(spec.channel)
    meta_msg, msg = mido.MetaMessage, mido.Message
    events: list[_Event] = [(0, 0, meta_msg, "track_name", {"name": spec.name})]
    if spec.meta:
        events.append((0, 1, meta_msg, "sequencer_specific", {"data": _meta_bytes(spec.meta)}))
    if ch != DRUM_CHANNEL:
        events.append((0, 2, msg, "program_change", {"channel": ch, "program": int(spec.program)}))
    if spec.tuning_cents and ch != DRUM_CHANNEL:
        value = int(round(8192 + np.clip(spec.tuning_cents, -100, 100) / 100.0 * 8192))
        value = int(np.clip(value, 0, 16383))
        for cc, v in ((101, 0), (100, 1), (6, value >> 7), (38, value & 0x7F), (101, 127), (100, 127)):
            events.append((0, 3, msg, "control_change", {"channel": ch, "control": cc, "value": v}))
    controls = np.asarray(spec.controls, dtype=np.int64).reshape(-1, 3)
    notes = np.asarray(spec.notes, dtype=np.int64).reshape(-1, 4)
    # checked here for the whole track at once: the messages are then built without mido's
    # per-message checks (the slow part of writing a long piece)
    if not 0 <= ch <= 15 or not 0 <= int(spec.program) <= 127:
        raise ParameterError(f"track {spec.name!r}: channel {ch} or program {spec.program} out of range")
    for what, values, hi in (("tick", controls[:, 0], None), ("controller", controls[:, 1], 127),
                             ("tick", notes[:, :2], None), ("note", notes[:, 2], 127)):
        if values.size and (values.min() < 0 or (hi is not None and values.max() > hi)):
            raise ParameterError(f"track {spec.name!r}: {what} out of range ({values.min()}.."
                                 f"{values.max()}; allowed 0..{hi if hi is not None else 'any'})")
    # (a long piece's expression curves are tens of thousands of events: one comprehension, the
    # values clamped by numpy, the same ints as min(max(value, 0), 127) one by one)
    events.extend([(tick, 4, msg, "control_change", {"channel": ch, "control": control, "value": value})
                   for tick, control, value in zip(controls[:, 0].tolist(), controls[:, 1].tolist(),
                                                   np.clip(controls[:, 2], 0, 127).tolist(), strict=True)])
    for on, off, note, vel in notes.tolist():
        # offs sort before ons at the same tick, so a repeated note is not cut by its own off
        velocity = min(max(vel, 1), 127)
        events.append((on, 6, msg, "note_on", {"channel": ch, "note": note, "velocity": velocity}))
        events.append((max(off, on + 1), 5, msg, "note_off", {"channel": ch, "note": note, "velocity": 0}))
    return events


def _to_track(events: list[_Event], end_tick: int | None, mido: Any):
    track = mido.MidiTrack()
    events.sort(key=itemgetter(0, 1))
    now = 0
    channel_message = mido.Message
    for tick, _, cls, kind, fields in events:
        if cls is channel_message:
            # range-checked per track by _track_events: filled in as mido's own constructor
            # does after its checks (type, time, then the values in the type's order)
            msg = object.__new__(channel_message)
            vars(msg).update(type=kind, time=tick - now, **fields)
            track.append(msg)
        else:
            track.append(cls(kind, time=tick - now, **fields))
        now = tick
    end = max(now, end_tick or 0)
    track.append(mido.MetaMessage("end_of_track", time=end - now))
    return track


def set_score_meta(mid, meta: dict) -> None:
    """Replace (or add) the global blendfx settings in a file :func:`build_midi` wrote."""

    conductor = mid.tracks[0]
    for i, m in enumerate(conductor):
        if m.type == "sequencer_specific" and _read_meta(m) is not None:
            conductor[i] = mido.MetaMessage("sequencer_specific", data=_meta_bytes(meta), time=m.time)
            return
    conductor.insert(1, mido.MetaMessage("sequencer_specific", data=_meta_bytes(meta), time=0))


def save_midi(mid, path: str | os.PathLike[str]) -> None:
    """Write a ``mido.MidiFile`` atomically (whole file or nothing)."""
    with atomic_path(path) as tmp:
        mid.save(str(tmp))


def _open(src):
    if isinstance(src, mido.MidiFile):
        return src
    try:
        return mido.MidiFile(str(src), clip=True)
    except FileNotFoundError:
        raise ParameterError(f"MIDI file not found: {src}") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise ParameterError(f"cannot read MIDI file {src}: {exc}") from None


@gc_paused()
def read_midi(src) -> Score:
    """Read a MIDI file (path or ``mido.MidiFile``) into a :class:`Score`.

    Raises
    ------
    ParameterError
        If the file is missing or not a readable standard MIDI file.
    """
    mid = _open(src)
    if mid.type == 2:
        raise ParameterError("type-2 MIDI files (independent sequences) are not supported")
    tpb = int(mid.ticks_per_beat) or 480
    tempo_events: list[tuple[int, int]] = []
    signatures: list[tuple[int, int, int]] = []
    score_meta: dict = {}
    end_tick = 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempo_events.append((tick, int(msg.tempo)))
            elif msg.type == "time_signature":
                signatures.append((tick, int(msg.numerator), int(msg.denominator)))
            elif msg.type == "sequencer_specific" and not score_meta:
                score_meta = _read_meta(msg) or {}
        end_tick = max(end_tick, tick)
    tempo_events.sort(key=lambda e: e[0])
    tm = np.array(tempo_events, dtype=np.float64).reshape(-1, 2)
    if tm.size == 0 or tm[0, 0] > 0:
        tm = np.vstack([[0.0, DEFAULT_TEMPO], tm]) if tm.size else np.array([[0.0, DEFAULT_TEMPO]])
    # the last tempo at one tick wins
    keep = np.append(tm[1:, 0] != tm[:-1, 0], True)
    tm = tm[keep]

    def sec(t):
        return ticks_to_seconds(np.asarray(t, dtype=np.float64), tm, tpb)

    parts: list[Part] = []
    for index, track in enumerate(mid.tracks):
        parts.extend(_read_track(index, track, sec))
    if score_meta.get("length_s") is not None:
        length = float(score_meta["length_s"])
    else:
        length = float(sec(end_tick))
        for p in parts:
            if p.notes.size:
                length = max(length, float(p.notes[:, 1].max()))
    return Score(parts, tm, tpb, length, score_meta, sorted(set(signatures)))


class _Channel:
    def __init__(self) -> None:
        self.program = 0
        self.rpn = (127, 127)
        self.bend_range = 2.0
        self.fine = 0.0
        self.coarse = 0.0
        self.bend = 0.0
        self.pedal = False


def _read_track(index: int, track, sec) -> list[Part]:
    name = ""
    meta: dict = {}
    channels: dict[int, _Channel] = {}
    open_notes: dict[tuple[int, int], list[tuple[int, int, float, int]]] = {}
    notes: dict[tuple[int, int], list[list[float]]] = {}
    pending_pedal: dict[int, list[list[float]]] = {}
    controls: dict[int, dict[int, list[tuple[int, int]]]] = {}
    bends: dict[int, list[tuple[int, float]]] = {}
    tick = 0
    for msg in track:
        tick += msg.time
        kind = msg.type
        if kind == "track_name" and not name:
            name = msg.name
            continue
        if kind == "sequencer_specific":
            meta = _read_meta(msg) or meta
            continue
        if msg.is_meta or not hasattr(msg, "channel"):
            continue
        ch = msg.channel
        state = channels.setdefault(ch, _Channel())
        if kind == "program_change":
            state.program = msg.program
        elif kind == "note_on" and msg.velocity > 0:
            pitch = msg.note + (0 if ch == DRUM_CHANNEL else state.coarse + state.fine / 100.0)
            open_notes.setdefault((ch, msg.note), []).append((tick, state.program, pitch, msg.velocity))
        elif kind in ("note_off", "note_on"):
            stack = open_notes.get((ch, msg.note))
            if stack:
                on_tick, program, pitch, vel = stack.pop(0)
                note = [on_tick, tick, pitch, vel]
                notes.setdefault((ch, program), []).append(note)
                if state.pedal and ch != DRUM_CHANNEL:
                    pending_pedal.setdefault(ch, []).append(note)
        elif kind == "pitchwheel":
            state.bend = msg.pitch / 8192.0 * state.bend_range
            bends.setdefault(ch, []).append((tick, state.bend))
        elif kind == "control_change":
            c, v = msg.control, msg.value
            if c == 101:
                state.rpn = (v, state.rpn[1])
            elif c == 100:
                state.rpn = (state.rpn[0], v)
            elif c in (6, 38):
                _data_entry(state, c, v)
            elif c == 64:
                down = v >= 64
                if state.pedal and not down:
                    for note in pending_pedal.pop(ch, []):
                        note[1] = max(note[1], tick)
                state.pedal = down
            elif c in (7, 10, 11, 74):
                controls.setdefault(ch, {}).setdefault(c, []).append((tick, v))
    for (ch, _note), stack in open_notes.items():  # notes never released end with the track
        for on_tick, program, pitch, vel in stack:
            notes.setdefault((ch, program), []).append([on_tick, tick, pitch, vel])
    parts = []
    for (ch, program), lst in sorted(notes.items()):
        arr = np.array(lst, dtype=np.float64)
        arr = arr[np.argsort(arr[:, 0], kind="stable")]
        arr[:, 0], arr[:, 1] = sec(arr[:, 0]), sec(arr[:, 1])
        ctl = {c: np.column_stack([sec([t for t, _ in ev]), [v for _, v in ev]])
               for c, ev in controls.get(ch, {}).items()}
        bend = bends.get(ch, [])
        bend_arr = (np.column_stack([sec([t for t, _ in bend]), [b for _, b in bend]])
                    if bend else np.zeros((0, 2)))
        label = name or f"channel {ch + 1}"
        parts.append(Part(label, ch, program, ch == DRUM_CHANNEL, arr, ctl, bend_arr, dict(meta)))
    return parts


def _data_entry(state: _Channel, control: int, value: int) -> None:
    """RPN data entry: 0 = pitch-bend range, 1 = fine tuning, 2 = coarse tuning."""
    if state.rpn == (0, 0):
        if control == 6:
            state.bend_range = float(value) + (state.bend_range % 1.0)
        else:
            state.bend_range = float(int(state.bend_range)) + value / 100.0
    elif state.rpn == (0, 1):
        if control == 6:
            state.fine = ((value << 7) - 8192) / 8192.0 * 100.0
        else:
            msb = int(round(state.fine / 100.0 * 8192 + 8192)) >> 7
            state.fine = (((msb << 7) | value) - 8192) / 8192.0 * 100.0
    elif state.rpn == (0, 2) and control == 6:
        state.coarse = float(value - 64)
