"""Sessions: what a DAW hands over, as a hand-editable TOML manifest.

A session names its stems (files, offsets, gains, pans, mutes), a tempo, a sample rate, and the
chain each track runs; :mod:`blendfx.render` turns it into rendered stems and a mastered mix.

Manifest format (every key is optional unless marked *required*)::

    # train-demo: a train recording and music written for it
    [session]
    name = "train-demo"
    sample_rate = 44100          # Hz; every stem is resampled to it
    tempo = 120.0                # BPM; or "tempo.mid" (a MIDI file's tempo map, read with mido);
                                 # or [[0.0, 120.0], [30.0, 96.0]] (seconds, BPM) steps; a point
                                 # [s, bpm, "linear"] ramps to the next one (BPM linear in
                                 # seconds, REAPER's linear tempo shape)
    time_signature = "4/4"       # bar length for offsets in bars (a tempo MIDI file's own wins)
    meters = [[12.0, 3, 4]]      # time-signature changes: [seconds, numerator, denominator],
                                 # each starting a bar
    length = 60.0                # s; default: the end of the last stem
    seed = 0                     # seeds every effect of every chain (default: the chains' own)
    resample = true              # false: a stem at another sample rate is an error
    media_roots = ["../media"]   # other folders stems may come from (relative to the session
                                 # folder, or absolute); every path must lie in the session
                                 # folder or one of these
    allow_outside_paths = false  # true: no confinement at all (prefer media_roots)

    [master]
    target_lufs = -16.0          # integrated loudness of the mix (BS.1770); false: keep the level
    true_peak_dbtp = -1.0        # true-peak ceiling of the mix, dBTP
    limiter = true               # false: one gain lowers the whole mix (and the stems) under
                                 # the ceiling instead of a peak limiter (nothing is reshaped)
    format = "wav"               # "wav" or "flac"
    bit_depth = 24               # 16 or 24 (32 = float, WAV only)

    [render]
    batch_size = 8               # windows per model call when diffusion generators of several
                                 # tracks share a model (default: the generators' own)
    batch_tracks = true          # false: each track's generator runs on its own

    [[tracks]]
    name = "train"               # required, unique
    file = "audio/train.flac"    # relative to the session folder
    role = "noise"               # noise, music, voice, ambience, fx, reference, video, other
                                 # ("video": file is a video; its soundtrack is the track's
                                 # audio, and a generated track keyed by it is scored to the
                                 # picture the item shows: its Composers follow the cuts, its
                                 # Riffusion/TextToMusic take a prompt per shot and join at
                                 # the cuts; see render.score.follow_picture)
    gain_db = 0.0                # fader, dB
    pan = 0.0                    # -1 (left) .. +1 (right), -3 dB constant-power law
    offset = 0.0                 # s on the timeline; or offset_bars = 2 (bars of the tempo map)
    source_offset = 0.0          # s into the file; duration = 8.0 (s) to use only a part
    fade_in = 0.0                # s; fade_out likewise
    fade_in_shape = "equal_power"  # or linear, slow_start, fast_start_steep, slow_start_steep,
                                 # s_curve, s_curve_steep (REAPER's fade shapes 1, 0, 2..6);
                                 # fade_out_shape likewise
    loop = false                 # true: the file repeats (from source_offset, wrapping to its
                                 # start) until duration (required) ends; REAPER's looped items
    rate = 1.0                   # playback speed (the file is resampled: its pitch moves too)
    preserve_pitch = false       # true: time-stretched instead (pedalboard's time_stretch)
    pitch = 0.0                  # semitones of pitch shift (file tracks only)
    mute = false
    solo = false
    bus = "drums"                # optional: mixed into this bus instead of the master

    [[tracks]]
    name = "keys"                # a MIDI track: notes played by an instrument
    midi = "keys.mid"            # a standard MIDI file (its own tempo map), placed at offset
    instrument = { plugin = "Kontakt 7", format = "VST3", state = "<base64>", voice = "epiano" }
                                 # plugin: loaded with pedalboard when found in the plug-in
                                 # folders (blendfx.render.instruments); otherwise the built-in
                                 # voice plays (a Composer synth voice, or "drums": GM kit);
                                 # reason = why that voice (written by the REAPER import)
    items = [{ start = 0.0, length = 4.0, gain_db = -6.0, pan = 0.5, fade_in = 0.1,
               fade_out = 1.0, fade_out_shape = "linear" }]
                                 # optional: the spans of the part's items (s on the timeline)
                                 # with their own volume, pan and fades (REAPER's MIDI items),
                                 # applied to the instrument's output; after an item ends its
                                 # gain holds until the next one starts (the release tail)

    [[tracks.plugins]]           # optional, tracks and buses: plug-in effects loaded with
    plugin = "VST3: ZamCompX2 (Damien Zammit)"  # pedalboard from the plug-in folders, before
    format = "VST3"              # the track's chain (REAPER's track FX); state / controller:
    state = "<base64>"           # the VST3 component and controller state; one not found plays
                                 # without it (said in the report)

    [[tracks]]
    name = "music"
    role = "music"
    key = "train"                # no file: the input is the key track's rendered stem
    generator = "Composer"       # optional: an effect that writes music for the key
    prompt = "lofi hip hop"      #   (or generator = { type = "Composer", prompt = "...", ... })
    preset = "subway-lofi"       # a factory preset name or a .toml file in the session folder
    sidechain = "train"          # the track keying the chain (default: the key); or a table
                                 # { ref = "street" } for effects with sidechain_key = "ref"

    [tracks.chain]               # or an inline chain, in the TOML shape of a preset's [chain]
    type = "Chain"
    [[tracks.chain.plugins]]
    type = "pedalboard.Reverb"
    room_size = 0.3

    [[buses]]                    # a bus (REAPER's folder track): the sum of the tracks and buses
    name = "drums"               # routed to it (bus = "drums"), through its own chain (chain or
    gain_db = -3.0               # preset) and fader (gain_db, pan, mute, solo); names are shared
    bus = "band"                 # with tracks; buses nest (a bus may be routed to a bus)

A bus renders like a track whose input is the sum of its audible inputs' stems; the mix sums
the tracks and buses routed to no bus, and only those get a file in ``stems/``. Muting a bus
mutes what is routed to it; soloing a bus solos what is routed to it, and soloing a track keeps
the buses it is routed through audible. Sessions written before MIDI tracks and buses load
unchanged.

Every problem is a :class:`~blendfx.SessionError` whose message names the key, e.g.
``session.toml: tracks[1] ('music').gain_db = 'loud' must be a number (dB)``.

Examples
--------
>>> session = load_session("song/session.toml")          # doctest: +SKIP
>>> [t.name for t in session.render_order()]             # doctest: +SKIP
['train', 'music']
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido
import numpy as np
import tomli_w
from blendfx.chain import Chain
from blendfx.effects.composer.synth import VOICES
from blendfx.errors import BlendfxError, SessionError
from blendfx.files import MAX_TOML_DEPTH, atomic_write_text, nesting_depth, read_toml
from blendfx.presets import factory_preset_path, processor_from_dict, read_preset

__all__ = [
    "Session",
    "Track",
    "Master",
    "TempoMap",
    "load_session",
    "session_from_dict",
    "save_session",
    "ROLES",
    "FADE_SHAPES",
]

#: The roles a track may have (the report finds the noise and the music by role).
ROLES = ("noise", "music", "voice", "ambience", "fx", "reference", "video", "other")

_SESSION_KEYS = {"name", "sample_rate", "tempo", "time_signature", "meters", "length", "seed",
                 "resample", "allow_outside_paths", "media_roots"}
_MASTER_KEYS = {"target_lufs", "true_peak_dbtp", "format", "bit_depth", "limiter"}
_RENDER_KEYS = {"batch_size", "batch_tracks"}
_TRACK_KEYS = {"name", "file", "role", "gain_db", "pan", "offset", "offset_bars", "source_offset",
               "duration", "fade_in", "fade_out", "mute", "solo", "key", "generator", "prompt",
               "preset", "chain", "sidechain", "midi", "instrument", "bus", "rate",
               "preserve_pitch", "pitch", "fade_in_shape", "fade_out_shape", "loop", "items",
               "plugins"}
_BUS_KEYS = {"name", "role", "gain_db", "pan", "mute", "solo", "preset", "chain", "bus",
             "plugins"}
_ITEM_KEYS = {"start", "length", "gain_db", "pan", "fade_in", "fade_out", "fade_in_shape",
              "fade_out_shape"}
_PLUGIN_KEYS = {"plugin", "format", "state", "controller"}
#: Fade shapes (REAPER's item fade shapes 1, 0, 2, 3, 4, 5, 6 in this order).
FADE_SHAPES = ("equal_power", "linear", "slow_start", "fast_start_steep", "slow_start_steep",
               "s_curve", "s_curve_steep")
_INSTRUMENT_KEYS = {"plugin", "format", "state", "controller", "voice", "program", "reason"}
_FORMATS = {"wav": (16, 24, 32), "flac": (16, 24)}


# -- tempo -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TempoMap:
    """A tempo map: tempo points, each a step or a linear ramp to the next, and meters.

    Attributes
    ----------
    points : tuple of (float, float)
        Time in seconds where a tempo point sits, and its tempo in BPM (quarter notes per
        minute); the first at 0 s.
    beats_per_bar : float
        Quarter notes per bar (4/4 -> 4, 6/8 -> 3) at the start.
    ramps : tuple of bool
        ``ramps[i]``: the tempo moves linearly in time from ``points[i]`` to ``points[i + 1]``
        (REAPER's linear tempo shape: BPM linear in seconds, so a ramp of ``T`` s from ``b0`` to
        ``b1`` lasts ``T (b0 + b1) / 120`` beats); False or missing: it steps at the next point.
    meters : tuple of (float, int, int)
        Time-signature changes after the start: (seconds, numerator, denominator); each starts
        a bar.
    """

    points: tuple[tuple[float, float], ...] = ((0.0, 120.0),)
    beats_per_bar: float = 4.0
    ramps: tuple[bool, ...] = ()
    meters: tuple[tuple[float, int, int], ...] = ()

    @classmethod
    def from_midi(cls, path: str | os.PathLike[str], beats_per_bar: float = 4.0) -> TempoMap:
        """Read a MIDI file's tempo map (set_tempo events) and first time signature with mido.

        A file with no tempo event plays at MIDI's default 120 BPM.
        """

        try:
            mid = mido.MidiFile(str(path))
        except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
            raise SessionError(f"cannot read MIDI tempo map {path}: {exc}") from None
        points: list[tuple[float, float]] = []
        seconds, tempo, ticks_per_beat = 0.0, 500000, mid.ticks_per_beat
        signature: float | None = None
        for msg in mido.merge_tracks(mid.tracks):
            seconds += mido.tick2second(msg.time, ticks_per_beat, tempo)
            if msg.type == "set_tempo":
                tempo = msg.tempo
                points.append((seconds, mido.tempo2bpm(tempo)))
            elif msg.type == "time_signature" and signature is None:
                signature = msg.numerator * 4.0 / msg.denominator
        if not points or points[0][0] > 0.0:
            points.insert(0, (0.0, 120.0))
        # Keep the last tempo set at any one instant.
        dedup: dict[float, float] = {}
        for t, bpm in points:
            dedup[round(t, 9)] = bpm
        return cls(tuple(sorted(dedup.items())), signature or beats_per_bar)

    # segment i runs from points[i] (tempo b0) to points[i + 1] (end tempo b1: equal to b0 for
    # a step); the last one is endless at a constant tempo
    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(start s, start BPM, slope BPM/s, beats at the start) of every segment."""
        cached = self.__dict__.get("_seg")
        if cached is not None:
            return cached
        t = np.array([p[0] for p in self.points], np.float64)
        b = np.array([p[1] for p in self.points], np.float64)
        slope = np.zeros_like(t)
        for i in range(len(t) - 1):
            if i < len(self.ramps) and self.ramps[i] and t[i + 1] > t[i]:
                slope[i] = (b[i + 1] - b[i]) / (t[i + 1] - t[i])
        dur = np.diff(t)
        beats = np.concatenate([[0.0], np.cumsum((b[:-1] * dur + 0.5 * slope[:-1] * dur ** 2)
                                                 / 60.0)])
        seg = (t, b, slope, beats)
        object.__setattr__(self, "_seg", seg)  # (frozen: a private cache)
        return seg

    def bpm_at(self, seconds: float) -> float:
        """The tempo in BPM at ``seconds`` (inside a ramp: interpolated)."""
        t, b, slope, _ = self._segments()
        i = max(0, int(np.searchsorted(t, seconds, side="right")) - 1)
        return float(b[i] + slope[i] * (max(seconds, t[i]) - t[i]))

    def seconds_to_beats(self, seconds: Any) -> Any:
        """Quarter notes elapsed at ``seconds`` (a number or an array)."""
        t, b, slope, beats = self._segments()
        s = np.asarray(seconds, np.float64)
        i = np.clip(np.searchsorted(t, s, side="right") - 1, 0, len(t) - 1)
        dt = s - t[i]
        out = beats[i] + (b[i] * dt + 0.5 * slope[i] * dt * dt) / 60.0
        return float(out) if out.ndim == 0 else out

    def beats_to_seconds(self, beats: Any) -> Any:
        """Seconds at which ``beats`` quarter notes have elapsed since 0 (a number or an array;
        inside a ramp, the root of the quadratic the linear tempo integrates to)."""
        q = np.asarray(beats, np.float64)
        if np.any(q < -1e-9):
            raise SessionError(f"a position of {float(np.min(q))} beats is before the session "
                               f"start")
        t, b, slope, start = self._segments()
        i = np.clip(np.searchsorted(start, q, side="right") - 1, 0, len(t) - 1)
        x = 60.0 * np.maximum(q - start[i], 0.0)  # BPM-seconds into the segment
        # k/2 dt^2 + b dt = x  ->  dt = 2x / (b + sqrt(b^2 + 2kx))  (stable for k -> 0)
        root = np.sqrt(np.maximum(b[i] ** 2 + 2.0 * slope[i] * x, 0.0))
        out = t[i] + 2.0 * x / (b[i] + root)
        return float(out) if out.ndim == 0 else out

    def bars_to_seconds(self, bars: float) -> float:
        """Seconds at which ``bars`` whole bars have elapsed (``bars = 0`` is the start); a
        meter change starts a new bar."""
        per_bar, at_beat, at_bar = self.beats_per_bar, 0.0, 0.0
        for seconds, num, den in self.meters:
            q = self.seconds_to_beats(seconds)
            bar_here = at_bar + math.ceil((q - at_beat) / per_bar - 1e-9)
            if bars < bar_here:
                break
            per_bar, at_beat, at_bar = num * 4.0 / den, q, bar_here
        return self.beats_to_seconds(at_beat + (bars - at_bar) * per_bar)

    def manifest(self) -> Any:
        """The manifest's ``tempo`` value: a BPM, or ``[[s, bpm], ...]`` points (a third item
        ``"linear"`` on a point ramps it to the next)."""
        if len(self.points) == 1:
            return _num(self.points[0][1])
        return [[_num(t), _num(b)] + (["linear"] if i < len(self.ramps) and self.ramps[i]
                                      else [])
                for i, (t, b) in enumerate(self.points)]


# -- the model -------------------------------------------------------------------------------
@dataclass
class Master:
    """Mastering settings of the mix.

    Attributes
    ----------
    target_lufs : float or None
        Integrated loudness of the mix in LUFS (ITU-R BS.1770-4); None keeps the mix's level.
    true_peak_dbtp : float
        Ceiling for the mix's true peak (4x oversampled), dBTP.
    format : {"wav", "flac"}
    bit_depth : int
        16 or 24 (32-bit float for WAV).
    limiter : bool
        True: a look-ahead true-peak limiter holds the mix under the ceiling. False: one
        static gain (<= 0 dB) on the whole mix and the stems does, so the tracks keep their
        levels relative to one another (``blendfx blend``: the noise and the music masking
        it are lowered together).
    """

    target_lufs: float | None = -16.0
    true_peak_dbtp: float = -1.0
    format: str = "wav"
    bit_depth: int = 24
    limiter: bool = True

    @property
    def suffix(self) -> str:
        return f".{self.format}"


@dataclass
class Track:
    """One track of a session (see the module docstring for the meaning of each field)."""

    name: str
    file: Path | None = None
    role: str = "other"
    gain_db: float = 0.0
    pan: float = 0.0
    offset: float = 0.0
    source_offset: float = 0.0
    duration: float | None = None
    fade_in: float = 0.0
    fade_out: float = 0.0
    mute: bool = False
    solo: bool = False
    key: str | None = None
    generator: dict[str, Any] | None = None
    chain: dict[str, Any] | None = None
    chain_source: str = "none"
    sidechain: dict[str, str] = field(default_factory=dict)
    index: int = 0
    midi: Path | None = None
    instrument: dict[str, Any] = field(default_factory=dict)
    bus: str | None = None
    is_bus: bool = False
    inputs: list[str] = field(default_factory=list)
    rate: float = 1.0
    preserve_pitch: bool = False
    pitch: float = 0.0
    fade_in_shape: str = "equal_power"
    fade_out_shape: str = "equal_power"
    loop: bool = False
    items: list[dict[str, Any]] = field(default_factory=list)
    plugins: list[dict[str, Any]] = field(default_factory=list)

    @property
    def where(self) -> str:
        """How error messages name this track."""
        return f"{'buses' if self.is_bus else 'tracks'}[{self.index}] ({self.name!r})"

    @property
    def kind(self) -> str:
        """'audio' (a file), 'midi' (notes through an instrument), 'bus' (the sum of the
        tracks routed to it) or 'generated' (its input is the key track's stem)."""
        if self.is_bus:
            return "bus"
        if self.midi is not None:
            return "midi"
        return "audio" if self.file is not None else "generated"

    @property
    def generated(self) -> bool:
        """True when the track has neither a file nor notes: its input is the key's stem."""
        return self.kind == "generated"

    def dependencies(self) -> list[str]:
        """Names of the tracks this one needs rendered first (its key and sidechains; for a
        bus, the tracks and buses routed to it)."""
        deps = [self.key] if self.key else []
        deps += [t for t in self.sidechain.values() if t not in deps]
        deps += [t for t in self.inputs if t not in deps]
        return deps

    def build_chain(self) -> Any:
        """A fresh :class:`~blendfx.Chain` for this track: the generator (if any), then the chain.

        Returns None for a track with neither. Raises :class:`SessionError` naming the key for a
        bad class, parameter or value.
        """

        items = []
        try:
            if self.generator is not None:
                items.append(processor_from_dict(self.generator, f"{self.where}.generator"))
            if self.chain is not None:
                where = (f"{self.where}.chain" if self.chain_source == "inline"
                         else f"{self.where}.preset ({self.chain_source})")
                items.append(processor_from_dict(self.chain, where))
        except BlendfxError as exc:
            raise SessionError(str(exc)) from None
        if not items:
            return None
        # Always a blendfx Chain: it takes named sidechains and runs native plugins too.
        return items[0] if len(items) == 1 and isinstance(items[0], Chain) else Chain(items)

    def to_dict(self, folder: Path) -> dict[str, Any]:
        """The manifest table of this track (paths relative to ``folder`` where possible)."""
        d: dict[str, Any] = {"name": self.name}
        if self.file is not None:
            d["file"] = _rel(self.file, folder)
        if self.midi is not None:
            d["midi"] = _rel(self.midi, folder)
        if self.instrument:
            d["instrument"] = dict(self.instrument)
        d["role"] = self.role
        if self.bus is not None:
            d["bus"] = self.bus
        for key, default in (("gain_db", 0.0), ("pan", 0.0), ("offset", 0.0),
                             ("source_offset", 0.0), ("duration", None), ("fade_in", 0.0),
                             ("fade_out", 0.0), ("mute", False), ("solo", False), ("key", None),
                             ("rate", 1.0), ("preserve_pitch", False), ("pitch", 0.0),
                             ("fade_in_shape", "equal_power"), ("fade_out_shape", "equal_power"),
                             ("loop", False)):
            value = getattr(self, key)
            if value != default:
                d[key] = value
        if self.items:
            d["items"] = [dict(i) for i in self.items]
        if self.plugins:
            d["plugins"] = [dict(p) for p in self.plugins]
        if self.generator is not None:
            d["generator"] = dict(self.generator)
        if self.chain_source.startswith("preset:"):
            d["preset"] = self.chain_source.split(":", 1)[1]
        elif self.chain is not None:
            d["chain"] = self.chain
        if self.sidechain and self.sidechain != ({"sidechain": self.key} if self.key else {}):
            d["sidechain"] = (self.sidechain["sidechain"] if list(self.sidechain) == ["sidechain"]
                              else dict(self.sidechain))
        return d


@dataclass
class Session:
    """A parsed, validated session.

    Attributes
    ----------
    folder : Path
        The session folder: relative paths resolve here.
    tracks : list of Track
        In manifest order; :meth:`render_order` gives keys before the tracks they key.
    """

    folder: Path
    name: str = "session"
    sample_rate: float = 44100.0
    tempo: TempoMap = field(default_factory=TempoMap)
    length: float | None = None
    seed: int | None = None
    resample: bool = True
    allow_outside_paths: bool = False
    media_roots: list[Path] = field(default_factory=list)
    master: Master = field(default_factory=Master)
    tracks: list[Track] = field(default_factory=list)
    path: Path | None = None
    batch_size: int | None = None
    batch_tracks: bool = True
    tempo_source: Any = 120.0

    def track(self, name: str) -> Track:
        """The track called ``name``."""
        for t in self.tracks:
            if t.name == name:
                return t
        raise SessionError(f"no track named {name!r} (tracks: {', '.join(self.track_names())})")

    def track_names(self) -> list[str]:
        return [t.name for t in self.tracks]

    def audible(self) -> list[Track]:
        """Tracks (and buses) that reach the mix: neither they nor a bus they are routed
        through muted, and, when anything is soloed, soloed themselves, routed through a soloed
        bus, or a bus a soloed track is routed through (REAPER's folder solo)."""
        by_name = {t.name: t for t in self.tracks}

        def parents(t: Track) -> list[Track]:
            out: list[Track] = []
            while t.bus is not None and t.bus in by_name and len(out) < len(by_name):
                t = by_name[t.bus]
                out.append(t)
            return out

        solo = any(t.solo for t in self.tracks)
        heard = []
        for t in self.tracks:
            up = parents(t)
            if t.mute or any(p.mute for p in up):
                continue
            if solo and not (t.solo or any(p.solo for p in up) or any(
                    c.solo and any(p is t for p in parents(c)) for c in self.tracks)):
                continue
            heard.append(t)
        if solo:  # a bus without an audible input has nothing to play
            names = {t.name for t in heard}
            heard = [t for t in heard if not t.is_bus or any(i in names for i in t.inputs)]
        return heard

    @property
    def buses(self) -> list[Track]:
        """The buses (folder tracks): tracks whose input is the sum of the tracks routed to
        them."""
        return [t for t in self.tracks if t.is_bus]

    def render_order(self, tracks: list[Track] | None = None) -> list[Track]:
        """Tracks to render (``tracks`` plus everything they depend on), keys first.

        Raises
        ------
        SessionError
            When tracks key each other in a cycle; the message names the cycle.
        """
        wanted = self.tracks if tracks is None else tracks
        wanted_names = {t.name for t in wanted}
        by_name = {t.name: t for t in self.tracks}
        order: list[Track] = []
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(track: Track, path: list[str]) -> None:
            if state.get(track.name) == 2:
                return
            if state.get(track.name) == 1:
                cycle = path[path.index(track.name):] + [track.name]
                raise SessionError("tracks key each other in a cycle: " + " -> ".join(cycle))
            state[track.name] = 1
            for dep in track.dependencies():
                if track.is_bus and dep in track.inputs and dep not in wanted_names:
                    continue  # (a muted input: the bus does not sum it)
                visit(by_name[dep], [*path, track.name])
            state[track.name] = 2
            order.append(track)

        for t in wanted:
            visit(t, [])
        return order

    def reseed(self, seed: int) -> None:
        """Set ``seed`` on every effect of every track's generator and chain."""
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise SessionError(f"seed = {seed!r} must be an integer in [0, 2**32)")
        self.seed = seed
        for t in self.tracks:
            if t.generator is not None:
                t.generator = _seeded(t.generator, seed)
            if t.chain is not None:
                t.chain = _seeded(t.chain, seed)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a plain dict (what :func:`save_session` writes)."""
        sess: dict[str, Any] = {"name": self.name, "sample_rate": _num(self.sample_rate)}
        tempo = self.tempo_source
        if isinstance(tempo, Path):
            tempo = _rel(tempo, self.folder)
        sess["tempo"] = tempo
        sess["time_signature"] = f"{_num(self.tempo.beats_per_bar)}/4"
        if self.tempo.meters:
            sess["meters"] = [[m[0], m[1], m[2]] for m in self.tempo.meters]
        if self.length is not None:
            sess["length"] = self.length
        if self.seed is not None:
            sess["seed"] = self.seed
        if not self.resample:
            sess["resample"] = False
        if self.media_roots:
            sess["media_roots"] = [_rel(r, self.folder) for r in self.media_roots]
        if self.allow_outside_paths:
            sess["allow_outside_paths"] = True
        m = self.master
        master = {"target_lufs": m.target_lufs if m.target_lufs is not None else False,
                  "true_peak_dbtp": m.true_peak_dbtp, "format": m.format, "bit_depth": m.bit_depth}
        if not m.limiter:
            master["limiter"] = False
        out: dict[str, Any] = {"session": sess, "master": master}
        render: dict[str, Any] = {}
        if self.batch_size is not None:
            render["batch_size"] = self.batch_size
        if not self.batch_tracks:
            render["batch_tracks"] = False
        if render:
            out["render"] = render
        out["tracks"] = [t.to_dict(self.folder) for t in self.tracks if not t.is_bus]
        if self.buses:
            out["buses"] = [t.to_dict(self.folder) for t in self.buses]
        return out


# -- loading ---------------------------------------------------------------------------------
def load_session(path: str | os.PathLike[str], *, check_files: bool = True) -> Session:
    """Read and validate a session manifest.

    Parameters
    ----------
    path : str or Path
        The ``.toml`` manifest; its folder is the session folder.
    check_files : bool
        Also require every stem file to exist (a missing stem is an error naming it).

    Raises
    ------
    SessionError
        Anything wrong, with the key named.
    """
    path = Path(path)
    if not path.is_file():
        raise SessionError(f"session file not found: {path}")
    data = read_toml(path, SessionError, "session")
    session = session_from_dict(data, path.parent, check_files=check_files, label=path.name)
    session.path = path
    if session.name == "session" and "name" not in data.get("session", {}):
        session.name = path.stem
    return session


def session_from_dict(data: Mapping[str, Any], folder: str | os.PathLike[str], *,
                      check_files: bool = True, label: str = "session") -> Session:
    """Validate a manifest dict (the parsed TOML) whose relative paths resolve in ``folder``."""
    v = _Validator(label)
    folder = Path(folder).resolve()
    if not isinstance(data, Mapping):
        raise SessionError(f"{label}: a session is a table of [session], [master], [render] "
                           f"and [[tracks]], got {type(data).__name__}")
    if nesting_depth(dict(data)) > MAX_TOML_DEPTH:
        raise SessionError(f"{label}: tables or arrays nested too deeply "
                           f"(more than {MAX_TOML_DEPTH} levels)")
    v.unknown(data, {"session", "master", "render", "tracks", "buses"}, "")
    sess = v.table(data, "session")
    v.unknown(sess, _SESSION_KEYS, "session")
    allow = v.boolean(sess, "allow_outside_paths", "session", False)
    roots = _media_roots(sess.get("media_roots", []), folder, v)
    paths = _Paths(folder, allow, v, roots)

    session = Session(folder=folder, allow_outside_paths=allow, media_roots=roots)
    session.name = v.string(sess, "name", "session", "session")
    session.sample_rate = v.number(sess, "sample_rate", "session", 44100.0, 8000.0, 384000.0, "Hz")
    ts = v.string(sess, "time_signature", "session", "4/4")
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", ts)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) not in (1, 2, 4, 8, 16, 32):
        raise v.error("session.time_signature", ts, "must look like \"4/4\" or \"6/8\"")
    beats_per_bar = int(m.group(1)) * 4.0 / int(m.group(2))
    session.tempo, session.tempo_source = _tempo(sess.get("tempo", 120.0), beats_per_bar, paths, v)
    if "meters" in sess:
        session.tempo = dataclasses.replace(session.tempo, meters=_meters(sess["meters"], v))
    length = sess.get("length")
    session.length = None if length is None else v.number(sess, "length", "session", None, 0.001,
                                                          1e6, "s")
    seed = sess.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed < 2**32):
        raise v.error("session.seed", seed, "must be an integer in [0, 2**32)")
    session.seed = seed
    session.resample = v.boolean(sess, "resample", "session", True)

    master = v.table(data, "master")
    v.unknown(master, _MASTER_KEYS, "master")
    target = master.get("target_lufs", -16.0)
    if target is False:
        target_lufs = None
    else:
        target_lufs = v.number(master, "target_lufs", "master", -16.0, -70.0, 0.0, "LUFS")
    fmt = v.string(master, "format", "master", "wav").lower()
    if fmt not in _FORMATS:
        raise v.error("master.format", fmt, f"is not one of {', '.join(map(repr, _FORMATS))}")
    bit_depth = master.get("bit_depth", 24)
    if bit_depth not in _FORMATS[fmt] or isinstance(bit_depth, bool):
        raise v.error("master.bit_depth", bit_depth,
                      f"is not available for {fmt} (allowed: {', '.join(map(str, _FORMATS[fmt]))})")
    session.master = Master(target_lufs, v.number(master, "true_peak_dbtp", "master", -1.0, -20.0,
                                                  0.0, "dBTP"), fmt, int(bit_depth),
                            v.boolean(master, "limiter", "master", True))

    render = v.table(data, "render")
    v.unknown(render, _RENDER_KEYS, "render")
    batch = render.get("batch_size")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                              or not 1 <= batch <= 256):
        raise v.error("render.batch_size", batch, "must be an integer in [1, 256] (windows)")
    session.batch_size = batch
    session.batch_tracks = v.boolean(render, "batch_tracks", "render", True)

    raw_tracks = data.get("tracks", [])
    if not isinstance(raw_tracks, list) or not all(isinstance(t, dict) for t in raw_tracks):
        raise SessionError(f"{label}: tracks must be an array of tables ([[tracks]])")
    if not raw_tracks:
        raise SessionError(f"{label}: a session needs at least one [[tracks]] table")
    names: set[str] = set()
    for i, raw in enumerate(raw_tracks):
        track = _track(raw, i, session, paths, v, check_files)
        if track.name in names:
            raise v.error(f"tracks[{i}].name", track.name, "is used by another track")
        names.add(track.name)
        session.tracks.append(track)
    raw_buses = data.get("buses", [])
    if not isinstance(raw_buses, list) or not all(isinstance(t, dict) for t in raw_buses):
        raise SessionError(f"{label}: buses must be an array of tables ([[buses]])")
    for i, raw in enumerate(raw_buses):
        bus = _bus(raw, i, session, paths, v)
        if bus.name in names:
            raise v.error(f"buses[{i}].name", bus.name, "is used by another track or bus")
        names.add(bus.name)
        session.tracks.append(bus)
    bus_names = {b.name for b in session.buses}
    for t in session.tracks:
        if t.bus is not None:
            if t.bus not in bus_names:
                raise SessionError(f"{label}: {t.where}.bus = {t.bus!r} names no bus (buses: "
                                   f"{', '.join(sorted(bus_names)) or 'none'})")
            session.track(t.bus).inputs.append(t.name)
    for t in session.tracks:
        for dep in t.dependencies():
            if dep not in names:
                what = "key" if dep == t.key else "sidechain"
                raise SessionError(f"{label}: {t.where}.{what} = {dep!r} names no track "
                                   f"(tracks: {', '.join(sorted(names))})")
            if dep == t.name:
                raise SessionError(f"{label}: {t.where} cannot key itself "
                                   f"(tracks key each other in a cycle: {t.name} -> {t.name})")
    try:
        session.render_order()
    except SessionError as exc:
        raise SessionError(f"{label}: {exc}") from None
    for t in session.tracks:  # parameters are checked now, not half way through a render
        try:
            t.build_chain()
        except SessionError as exc:
            raise SessionError(f"{label}: {exc}") from None
    return session


def save_session(session: Session | Mapping[str, Any], path: str | os.PathLike[str], *,
                 header: str = "") -> Path:
    """Write a session (or a manifest dict) as TOML, atomically; ``header`` becomes comments."""

    data = session.to_dict() if isinstance(session, Session) else dict(session)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    atomic_write_text(path, comment + tomli_w.dumps(data))
    return Path(path)


# -- helpers ---------------------------------------------------------------------------------
class _Validator:
    """Typed reads from manifest tables, each failure a SessionError naming the key."""

    def __init__(self, label: str) -> None:
        self.label = label

    def error(self, key: str, value: Any, why: str) -> SessionError:
        return SessionError(f"{self.label}: {key} = {value!r} {why}")

    def unknown(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                name = f"{where}.{key}" if where else key
                raise SessionError(f"{self.label}: unknown key {name!r} (allowed: "
                                   f"{', '.join(sorted(allowed))})")

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, value, "must be a table")
        return value

    def number(self, table: Mapping[str, Any], key: str, where: str, default: float | None,
               lo: float, hi: float, unit: str) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"{where}.{key}", value, f"must be a number ({unit})")
        if not (math.isfinite(value) and lo <= value <= hi):
            raise self.error(f"{where}.{key}", value, f"is out of range [{lo:g}, {hi:g}] {unit}")
        return float(value)

    def boolean(self, table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"{where}.{key}", value, "must be true or false")
        return value

    def string(self, table: Mapping[str, Any], key: str, where: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{where}.{key}", value, "must be a non-empty string")
        return value


def _media_roots(value: Any, folder: Path, v: _Validator) -> list[Path]:
    """``[session] media_roots``: folders (relative to the session folder, or absolute) that
    stems may come from besides the session folder, resolved (symbolic links followed)."""
    if not isinstance(value, list) or not all(isinstance(r, str) and r.strip() for r in value):
        raise v.error("session.media_roots", value, "must be a list of folder paths")
    return [(folder / Path(r).expanduser()).resolve() for r in value]


class _Paths:
    """Resolves manifest paths, confined to the session folder and the session's media roots
    (unless ``allow_outside_paths`` turns the guard off).

    Paths are compared resolved (``..`` and symbolic links followed) and by path components
    (:meth:`pathlib.Path.is_relative_to`), never as string prefixes: ``../proj-evil/x.wav``
    from ``proj/`` is outside ``proj``.
    """

    def __init__(self, folder: Path, allow_outside: bool, v: _Validator,
                 roots: list[Path] | None = None) -> None:
        self.folder, self.allow_outside, self.v = folder, allow_outside, v
        self.roots = [folder, *(roots or [])]

    def resolve(self, value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise self.v.error(key, value, "must be a file path (a non-empty string)")
        path = (self.folder / Path(value).expanduser()).resolve()
        if not self.allow_outside and not any(path.is_relative_to(r) for r in self.roots):
            where = f"the session folder {self.folder}"
            if len(self.roots) > 1:
                where += " or its media_roots (" + ", ".join(map(str, self.roots[1:])) + ")"
            raise SessionError(
                f"{self.v.label}: {key} = {value!r} resolves outside {where} (add its folder "
                f"to media_roots in [session] to allow it)")
        return path


def _tempo(value: Any, beats_per_bar: float, paths: _Paths, v: _Validator
           ) -> tuple[TempoMap, Any]:
    if isinstance(value, bool):
        raise v.error("session.tempo", value, "must be a BPM, a MIDI file, or [[s, bpm], ...]")
    if isinstance(value, int | float):
        if not 10.0 <= value <= 1000.0:
            raise v.error("session.tempo", value, "is out of range [10, 1000] BPM")
        return TempoMap(((0.0, float(value)),), beats_per_bar), value
    if isinstance(value, str):
        path = paths.resolve(value, "session.tempo")
        if not path.is_file():
            raise SessionError(f"{v.label}: session.tempo: MIDI file not found: {path}")
        try:
            return TempoMap.from_midi(path, beats_per_bar), path
        except SessionError as exc:
            raise SessionError(f"{v.label}: session.tempo: {exc}") from None
    if isinstance(value, list) and value:
        points, ramps = [], []
        for i, p in enumerate(value):
            ok = (isinstance(p, list) and len(p) in (2, 3) and all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in p[:2])
                and (len(p) == 2 or p[2] in ("linear", "step")))
            if not ok or not (p[0] >= 0 and 10.0 <= p[1] <= 1000.0):
                raise v.error(f"session.tempo[{i}]", p, "must be [seconds >= 0, bpm in 10..1000] "
                              "or [seconds, bpm, \"linear\"] (a ramp to the next point)")
            points.append((float(p[0]), float(p[1])))
            ramps.append(len(p) == 3 and p[2] == "linear")
        if points[0][0] != 0.0 or any(b[0] <= a[0] for a, b in zip(points, points[1:],
                                                                   strict=False)):
            raise v.error("session.tempo", value, "must start at 0 s and increase in time")
        return TempoMap(tuple(points), beats_per_bar, tuple(ramps) if any(ramps) else ()), value
    raise v.error("session.tempo", value, "must be a BPM, a MIDI file, or [[s, bpm], ...]")


def _named(raw: Mapping[str, Any], table: str, kind: str, i: int, keys: set[str],
           v: _Validator) -> tuple[str, str]:
    """An entry's name (a non-empty string) and where it is, its keys checked against ``keys``."""
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise v.error(f"{table}[{i}].name", name, f"must be a non-empty string (every {kind} "
                                                  f"needs one)")
    where = f"{table}[{i}] ({name!r})"
    v.unknown(raw, keys, where)
    return name, where


def _track(raw: Mapping[str, Any], i: int, session: Session, paths: _Paths, v: _Validator,
           check_files: bool) -> Track:
    name, where = _named(raw, "tracks", "track", i, _TRACK_KEYS, v)
    t = Track(name=name, index=i)
    role = raw.get("role", "other")
    if role not in ROLES:
        raise v.error(f"{where}.role", role, f"is not one of {', '.join(ROLES)}")
    t.role = role
    t.gain_db = v.number(raw, "gain_db", where, 0.0, -150.0, 48.0, "dB")
    t.pan = v.number(raw, "pan", where, 0.0, -1.0, 1.0, "(-1 left .. +1 right)")
    if "offset" in raw and "offset_bars" in raw:
        raise SessionError(f"{v.label}: {where}: give offset (s) or offset_bars, not both")
    if "offset_bars" in raw:
        bars = v.number(raw, "offset_bars", where, 0.0, 0.0, 1e5, "bars")
        t.offset = session.tempo.bars_to_seconds(bars)
    else:
        t.offset = v.number(raw, "offset", where, 0.0, 0.0, 1e6, "s")
    t.source_offset = v.number(raw, "source_offset", where, 0.0, 0.0, 1e6, "s")
    if raw.get("duration") is not None:
        t.duration = v.number(raw, "duration", where, None, 0.0, 1e6, "s")
    t.fade_in = v.number(raw, "fade_in", where, 0.0, 0.0, 1e4, "s")
    t.fade_out = v.number(raw, "fade_out", where, 0.0, 0.0, 1e4, "s")
    t.fade_in_shape = _fade_shape(raw, "fade_in_shape", where, v)
    t.fade_out_shape = _fade_shape(raw, "fade_out_shape", where, v)
    t.loop = v.boolean(raw, "loop", where, False)
    if t.loop and ("file" not in raw or t.duration is None):
        raise SessionError(f"{v.label}: {where}.loop: a looped track needs a file and a "
                           f"duration (s: how long it plays)")
    t.plugins = _plugins(raw.get("plugins", []), f"{where}.plugins", v)
    t.mute = v.boolean(raw, "mute", where, False)
    t.solo = v.boolean(raw, "solo", where, False)
    t.rate = v.number(raw, "rate", where, 1.0, 0.01, 100.0, "(playback speed, 1 = as recorded)")
    t.preserve_pitch = v.boolean(raw, "preserve_pitch", where, False)
    t.pitch = v.number(raw, "pitch", where, 0.0, -48.0, 48.0, "semitones")
    if (t.rate != 1.0 or t.pitch or t.preserve_pitch) and "file" not in raw:
        raise SessionError(f"{v.label}: {where}: rate, pitch and preserve_pitch apply to a file "
                           f"track only")

    if "file" in raw:
        t.file = paths.resolve(raw["file"], f"{where}.file")
        if check_files and not t.file.is_file():
            raise SessionError(f"{v.label}: {where}.file: stem not found: {t.file}")
    if "key" in raw:
        t.key = v.string(raw, "key", where, "")
    if "midi" in raw:
        if "file" in raw:
            raise SessionError(f"{v.label}: {where}: give file or midi, not both")
        t.midi = paths.resolve(raw["midi"], f"{where}.midi")
        if check_files and not t.midi.is_file():
            raise SessionError(f"{v.label}: {where}.midi: MIDI file not found: {t.midi}")
        t.instrument = _instrument(raw.get("instrument", {}), f"{where}.instrument", v)
        t.items = _items(raw.get("items", []), f"{where}.items", v)
    elif "instrument" in raw or "items" in raw:
        raise SessionError(f"{v.label}: {where}: instrument and items apply to a midi track "
                           f"only")
    if "bus" in raw:
        t.bus = v.string(raw, "bus", where, "")
    if t.file is None and t.key is None and t.midi is None:
        raise SessionError(f"{v.label}: {where} needs a file, or a key track to take its input "
                           f"from (a generated track), or a midi file")

    gen = raw.get("generator")
    if gen is not None:
        if isinstance(gen, str):
            gen = {"type": gen}
        if not isinstance(gen, dict) or not isinstance(gen.get("type"), str):
            raise v.error(f"{where}.generator", gen, "must be an effect name or a table with a type")
        gen = dict(gen)
        if "prompt" in raw:
            gen["prompt"] = raw["prompt"]
        if session.seed is not None:
            gen = _seeded(gen, session.seed)
        if t.file is not None or t.midi is not None:
            raise SessionError(f"{v.label}: {where}: a generated track takes its input from its "
                               f"key track; give file (or midi) or generator, not both")
        t.generator = gen
    elif "prompt" in raw:
        raise SessionError(f"{v.label}: {where}.prompt is given but the track has no generator")

    _set_chain(t, raw, where, session, paths, v)

    sc = raw.get("sidechain")
    if sc is None:
        t.sidechain = {"sidechain": t.key} if t.key else {}
    elif isinstance(sc, str):
        t.sidechain = {"sidechain": sc}
    elif isinstance(sc, dict) and sc and all(isinstance(k, str) and isinstance(x, str)
                                             for k, x in sc.items()):
        t.sidechain = dict(sc)
    else:
        raise v.error(f"{where}.sidechain", sc, "must be a track name or a table "
                      "{ signal = \"track\" }")
    return t


def _set_chain(t: Track, raw: Mapping[str, Any], where: str, session: Session, paths: _Paths,
               v: _Validator) -> None:
    """A track's or a bus's chain: a preset by name or an inline table (seeded by the session's
    seed when it has one)."""
    if "preset" in raw and "chain" in raw:
        raise SessionError(f"{v.label}: {where}: give preset or chain, not both")
    if "preset" in raw:
        t.chain, t.chain_source = _preset(raw["preset"], f"{where}.preset", paths, v)
    elif "chain" in raw:
        if not isinstance(raw["chain"], dict):
            raise v.error(f"{where}.chain", raw["chain"], "must be a table with a type")
        t.chain, t.chain_source = dict(raw["chain"]), "inline"
    if session.seed is not None and t.chain is not None:
        t.chain = _seeded(t.chain, session.seed)


def _bus(raw: Mapping[str, Any], i: int, session: Session, paths: _Paths, v: _Validator
         ) -> Track:
    name, where = _named(raw, "buses", "bus", i, _BUS_KEYS, v)
    t = Track(name=name, index=i, is_bus=True)
    role = raw.get("role", "other")
    if role not in ROLES:
        raise v.error(f"{where}.role", role, f"is not one of {', '.join(ROLES)}")
    t.role = role
    t.gain_db = v.number(raw, "gain_db", where, 0.0, -150.0, 48.0, "dB")
    t.pan = v.number(raw, "pan", where, 0.0, -1.0, 1.0, "(-1 left .. +1 right)")
    t.mute = v.boolean(raw, "mute", where, False)
    t.solo = v.boolean(raw, "solo", where, False)
    if "bus" in raw:
        t.bus = v.string(raw, "bus", where, "")
        if t.bus == name:
            raise SessionError(f"{v.label}: {where}.bus: a bus cannot be routed to itself")
    t.plugins = _plugins(raw.get("plugins", []), f"{where}.plugins", v)
    _set_chain(t, raw, where, session, paths, v)
    return t


def _fade_shape(raw: Mapping[str, Any], key: str, where: str, v: _Validator) -> str:
    shape = raw.get(key, "equal_power")
    if shape not in FADE_SHAPES:
        raise v.error(f"{where}.{key}", shape, f"is not one of {', '.join(FADE_SHAPES)}")
    return str(shape)


def _tables(raw: Any, where: str, shape: str, keys: set[str], v: _Validator,
            required: str | None = None, requirement: str = "") -> Iterator[tuple[str, dict]]:
    """(place, table) for each table of the array ``where``, checked: an array, each entry a
    table (with a string ``required`` key, when given) and no unknown keys."""
    if not isinstance(raw, list):
        raise v.error(where, raw, f"must be an array of tables {shape}")
    for i, table in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(table, dict) or (required and not isinstance(table.get(required), str)):
            raise v.error(at, table, f"must be {requirement or 'a table ' + shape}")
        v.unknown(table, keys, at)
        yield at, table


def _items(raw: Any, where: str, v: _Validator) -> list[dict[str, Any]]:
    """A MIDI track's item spans: start and length (s), gain_db, pan, fades and their shapes."""
    out = []
    for at, item in _tables(raw, where, "{ start = s, length = s, ... }", _ITEM_KEYS, v):
        if "start" not in item or "length" not in item:
            raise SessionError(f"{v.label}: {at} needs start and length (s)")
        out.append({
            "start": v.number(item, "start", at, 0.0, 0.0, 1e6, "s"),
            "length": v.number(item, "length", at, 0.0, 0.0, 1e6, "s"),
            "gain_db": v.number(item, "gain_db", at, 0.0, -150.0, 48.0, "dB"),
            "pan": v.number(item, "pan", at, 0.0, -1.0, 1.0, "(-1 left .. +1 right)"),
            "fade_in": v.number(item, "fade_in", at, 0.0, 0.0, 1e4, "s"),
            "fade_out": v.number(item, "fade_out", at, 0.0, 0.0, 1e4, "s"),
            "fade_in_shape": _fade_shape(item, "fade_in_shape", at, v),
            "fade_out_shape": _fade_shape(item, "fade_out_shape", at, v)})
    return out


def _plugins(raw: Any, where: str, v: _Validator) -> list[dict[str, str]]:
    """A track's or bus's plug-in effects: { plugin = name, format, state, controller }."""
    out = []
    for at, plug in _tables(raw, where, "{ plugin = \"name\", ... }", _PLUGIN_KEYS, v,
                            required="plugin", requirement="a table with a plugin name"):
        for key, value in plug.items():
            if not isinstance(value, str):
                raise v.error(f"{at}.{key}", value, "must be a string")
        out.append(dict(plug))
    return out


def _instrument(raw: Any, where: str, v: _Validator) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise v.error(where, raw, "must be a table { plugin = \"...\", voice = \"...\" }")
    v.unknown(raw, _INSTRUMENT_KEYS, where)
    out: dict[str, Any] = {}
    for key in ("plugin", "format", "state", "controller", "reason"):
        if key in raw:
            if not isinstance(raw[key], str):
                raise v.error(f"{where}.{key}", raw[key], "must be a string")
            out[key] = raw[key]
    if "voice" in raw:
        voice = raw["voice"]
        if voice not in _voice_names():
            raise v.error(f"{where}.voice", voice, f"is not a built-in voice (one of "
                          f"{', '.join(sorted(_voice_names()))})")
        out["voice"] = voice
    if "program" in raw:
        program = raw["program"]
        if isinstance(program, bool) or not isinstance(program, int) or not 0 <= program <= 127:
            raise v.error(f"{where}.program", program, "must be a MIDI program 0..127")
        out["program"] = program
    return out


def _voice_names() -> set[str]:
    return {*VOICES, "drums"}


def _meters(value: Any, v: _Validator) -> tuple[tuple[float, int, int], ...]:
    if not isinstance(value, list):
        raise v.error("session.meters", value, "must be [[seconds, numerator, denominator], ...]")
    out = []
    for i, m in enumerate(value):
        ok = (isinstance(m, list) and len(m) == 3 and isinstance(m[0], int | float)
              and not isinstance(m[0], bool) and m[0] >= 0 and isinstance(m[1], int)
              and not isinstance(m[1], bool) and m[1] >= 1 and m[2] in (1, 2, 4, 8, 16, 32))
        if not ok:
            raise v.error(f"session.meters[{i}]", m, "must be [seconds >= 0, numerator >= 1, "
                          "denominator in 1, 2, 4 .. 32]")
        out.append((float(m[0]), int(m[1]), int(m[2])))
    if any(b[0] <= a[0] for a, b in zip(out, out[1:], strict=False)):
        raise v.error("session.meters", value, "must increase in time")
    return tuple(out)


def _preset(value: Any, key: str, paths: _Paths, v: _Validator) -> tuple[dict[str, Any], str]:
    if not isinstance(value, str) or not value.strip():
        raise v.error(key, value, "must be a preset name or a .toml file")
    try:
        if value.endswith(".toml") or "/" in value or os.sep in value:
            source = paths.resolve(value, key)
            if not source.is_file():
                raise SessionError(f"{v.label}: {key}: preset file not found: {source}")
        else:
            source = factory_preset_path(value)
        return dict(read_preset(source)["chain"]), f"preset:{value}"
    except SessionError:
        raise
    except BlendfxError as exc:
        raise SessionError(f"{v.label}: {key}: {exc}") from None


def _seeded(chain: dict[str, Any], seed: int) -> dict[str, Any]:
    """A copy of a processor dict with ``seed`` set on every blendfx effect in it."""
    out = dict(chain)
    if not str(out.get("type", "")).startswith("pedalboard."):
        out["seed"] = seed
    for k, value in out.items():
        if isinstance(value, dict) and "type" in value:
            out[k] = _seeded(value, seed)
    if isinstance(out.get("plugins"), list):
        out["plugins"] = [_seeded(p, seed) if isinstance(p, dict) else p for p in out["plugins"]]
    return out


def _rel(path: Path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(path, folder)).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x
