"""Sessions: what a DAW hands over, as a hand-editable TOML manifest.

A session names its stems (files, offsets, gains, pans, mutes), a tempo, a sample rate, and the
chain each track runs; :mod:`blendfx.render` turns it into rendered stems and a mastered mix.

Manifest format (every key is optional unless marked *required*)::

    # train-demo: a train recording and music written for it
    [session]
    name = "train-demo"
    sample_rate = 44100          # Hz; every stem is resampled to it
    tempo = 120.0                # BPM; or "tempo.mid" (a MIDI file's tempo map, read with mido);
                                 # or [[0.0, 120.0], [30.0, 96.0]] (seconds, BPM) steps
    time_signature = "4/4"       # bar length for offsets in bars (a tempo MIDI file's own wins)
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
    format = "wav"               # "wav" or "flac"
    bit_depth = 24               # 16 or 24 (32 = float, WAV only)

    [render]
    batch_size = 8               # windows per model call when diffusion generators of several
                                 # tracks share a model (default: the generators' own)
    batch_tracks = true          # false: each track's generator runs on its own

    [[tracks]]
    name = "train"               # required, unique
    file = "audio/train.flac"    # relative to the session folder
    role = "noise"               # noise, music, voice, ambience, fx, reference, other
    gain_db = 0.0                # fader, dB
    pan = 0.0                    # -1 (left) .. +1 (right), -3 dB constant-power law
    offset = 0.0                 # s on the timeline; or offset_bars = 2 (bars of the tempo map)
    source_offset = 0.0          # s into the file; duration = 8.0 (s) to use only a part
    fade_in = 0.0                # s (equal-power); fade_out likewise
    mute = false
    solo = false

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

Every problem is a :class:`~blendfx.SessionError` whose message names the key, e.g.
``session.toml: tracks[1] ('music').gain_db = 'loud' must be a number (dB)``.

Examples
--------
>>> session = load_session("song/session.toml")          # doctest: +SKIP
>>> [t.name for t in session.render_order()]             # doctest: +SKIP
['train', 'music']
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido
import tomli_w
from blendfx.chain import Chain
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
]

#: The roles a track may have (the report finds the noise and the music by role).
ROLES = ("noise", "music", "voice", "ambience", "fx", "reference", "other")

_SESSION_KEYS = {"name", "sample_rate", "tempo", "time_signature", "length", "seed", "resample",
                 "allow_outside_paths", "media_roots"}
_MASTER_KEYS = {"target_lufs", "true_peak_dbtp", "format", "bit_depth"}
_RENDER_KEYS = {"batch_size", "batch_tracks"}
_TRACK_KEYS = {"name", "file", "role", "gain_db", "pan", "offset", "offset_bars", "source_offset",
               "duration", "fade_in", "fade_out", "mute", "solo", "key", "generator", "prompt",
               "preset", "chain", "sidechain"}
_FORMATS = {"wav": (16, 24, 32), "flac": (16, 24)}


# -- tempo -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TempoMap:
    """Tempo as step changes: ``points`` are ``(seconds, bpm)``, the first at 0 s.

    Attributes
    ----------
    points : tuple of (float, float)
        Time in seconds where a tempo starts, and the tempo in BPM (quarter notes per minute).
    beats_per_bar : float
        Quarter notes per bar (4/4 -> 4, 6/8 -> 3).
    """

    points: tuple[tuple[float, float], ...] = ((0.0, 120.0),)
    beats_per_bar: float = 4.0

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

    def bpm_at(self, seconds: float) -> float:
        """The tempo in BPM at ``seconds``."""
        bpm = self.points[0][1]
        for t, b in self.points:
            if t > seconds:
                break
            bpm = b
        return bpm

    def beats_to_seconds(self, beats: float) -> float:
        """Seconds at which ``beats`` quarter notes have elapsed since 0."""
        if beats < 0:
            raise SessionError(f"a position of {beats} beats is before the session start")
        elapsed_beats, pts = 0.0, self.points
        for i, (t, bpm) in enumerate(pts):
            end = pts[i + 1][0] if i + 1 < len(pts) else math.inf
            seg_beats = (end - t) * bpm / 60.0
            if elapsed_beats + seg_beats >= beats:
                return t + (beats - elapsed_beats) * 60.0 / bpm
            elapsed_beats += seg_beats
        raise AssertionError("unreachable: the last tempo segment is infinite")

    def bars_to_seconds(self, bars: float) -> float:
        """Seconds at which ``bars`` whole bars have elapsed (``bars = 0`` is the start)."""
        return self.beats_to_seconds(bars * self.beats_per_bar)


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
    """

    target_lufs: float | None = -16.0
    true_peak_dbtp: float = -1.0
    format: str = "wav"
    bit_depth: int = 24

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

    @property
    def where(self) -> str:
        """How error messages name this track."""
        return f"tracks[{self.index}] ({self.name!r})"

    @property
    def generated(self) -> bool:
        """True when the track has no file: its input is the key track's stem."""
        return self.file is None

    def dependencies(self) -> list[str]:
        """Names of the tracks this one needs rendered first (its key and sidechains)."""
        deps = [self.key] if self.key else []
        deps += [t for t in self.sidechain.values() if t not in deps]
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
        d["role"] = self.role
        for key, default in (("gain_db", 0.0), ("pan", 0.0), ("offset", 0.0),
                             ("source_offset", 0.0), ("duration", None), ("fade_in", 0.0),
                             ("fade_out", 0.0), ("mute", False), ("solo", False), ("key", None)):
            value = getattr(self, key)
            if value != default:
                d[key] = value
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
        """Tracks that reach the mix: not muted, and soloed when any track is soloed."""
        solo = any(t.solo for t in self.tracks)
        return [t for t in self.tracks if not t.mute and (t.solo or not solo)]

    def render_order(self, tracks: list[Track] | None = None) -> list[Track]:
        """Tracks to render (``tracks`` plus everything they depend on), keys first.

        Raises
        ------
        SessionError
            When tracks key each other in a cycle; the message names the cycle.
        """
        wanted = self.tracks if tracks is None else tracks
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
        out: dict[str, Any] = {"session": sess, "master": master}
        render: dict[str, Any] = {}
        if self.batch_size is not None:
            render["batch_size"] = self.batch_size
        if not self.batch_tracks:
            render["batch_tracks"] = False
        if render:
            out["render"] = render
        out["tracks"] = [t.to_dict(self.folder) for t in self.tracks]
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
    v.unknown(data, {"session", "master", "render", "tracks"}, "")
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
                                                  0.0, "dBTP"), fmt, int(bit_depth))

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
        points = []
        for i, p in enumerate(value):
            ok = (isinstance(p, list) and len(p) == 2 and all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in p))
            if not ok or not (p[0] >= 0 and 10.0 <= p[1] <= 1000.0):
                raise v.error(f"session.tempo[{i}]", p, "must be [seconds >= 0, bpm in 10..1000]")
            points.append((float(p[0]), float(p[1])))
        if points[0][0] != 0.0 or any(b[0] <= a[0] for a, b in zip(points, points[1:],
                                                                   strict=False)):
            raise v.error("session.tempo", value, "must start at 0 s and increase in time")
        return TempoMap(tuple(points), beats_per_bar), value
    raise v.error("session.tempo", value, "must be a BPM, a MIDI file, or [[s, bpm], ...]")


def _track(raw: Mapping[str, Any], i: int, session: Session, paths: _Paths, v: _Validator,
           check_files: bool) -> Track:
    where = f"tracks[{i}]"
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise v.error(f"{where}.name", name, "must be a non-empty string (every track needs one)")
    where = f"tracks[{i}] ({name!r})"
    v.unknown(raw, _TRACK_KEYS, where)
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
    t.mute = v.boolean(raw, "mute", where, False)
    t.solo = v.boolean(raw, "solo", where, False)

    if "file" in raw:
        t.file = paths.resolve(raw["file"], f"{where}.file")
        if check_files and not t.file.is_file():
            raise SessionError(f"{v.label}: {where}.file: stem not found: {t.file}")
    if "key" in raw:
        t.key = v.string(raw, "key", where, "")
    if t.file is None and t.key is None:
        raise SessionError(f"{v.label}: {where} needs a file, or a key track to take its input "
                           f"from (a generated track)")

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
        if t.file is not None:
            raise SessionError(f"{v.label}: {where}: a generated track takes its input from its "
                               f"key track; give file or generator, not both")
        t.generator = gen
    elif "prompt" in raw:
        raise SessionError(f"{v.label}: {where}.prompt is given but the track has no generator")

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
