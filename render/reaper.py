"""REAPER projects (``.rpp``) to blendfx session manifests.

REAPER saves projects as plain text: nested ``<TAG args`` ... ``>`` blocks of ``KEY args`` lines,
where an argument is a bare word or a string quoted with ``"``, ``'`` or a backtick (REAPER picks
a quote the string does not contain). Plug-in states (``<VST``, ``<AU``, ``<JS``...), render and
record configurations and item notes hold opaque lines (base64, ``|text``): the parser keeps them
as raw lines and never interprets them.

What the importer maps (REAPER -> session):

- ``SAMPLERATE`` -> ``session.sample_rate``; ``TEMPO bpm num den`` and the tempo envelope
  (``<TEMPOENVEX PT seconds bpm shape timesig``: shape 0 ramps linearly to the next point,
  others step; a time signature ``num + 65536 den`` starts a meter) -> ``session.tempo``
  (``[[s, bpm, "linear"], ...]``), ``time_signature`` and ``meters``;
- each ``<TRACK>``: ``NAME``, ``VOLPAN vol pan`` (linear volume -> ``gain_db``), ``MUTESOLO``,
  ``MAINSEND 0`` (not sent on: muted); a folder track (``ISBUS 1 1`` opens a folder level,
  ``ISBUS 2 -n`` closes ``n``) becomes a ``[[buses]]`` entry with the track's fader, pan,
  mute and solo, and every track inside it is routed to it (``bus = ...``; folders nest);
- each audio ``<ITEM>`` of a track -> one session track: ``POSITION`` -> ``offset``,
  ``LENGTH`` -> ``duration``, ``SOFFS`` -> ``source_offset``, item ``VOLPAN`` (volume folded into
  ``gain_db``, item pan added to the track's), ``MUTE``, ``FADEIN``/``FADEOUT`` lengths and
  shapes (``fade_in_shape``...: REAPER's shapes 0-6 by name), ``LOOP 1`` -> ``loop`` (the source
  repeats across the item, the take offset wrapping into it),
  ``PLAYRATE rate preserve_pitch semitones`` -> ``rate``, ``preserve_pitch``, ``pitch``, and the
  ``<SOURCE ...> FILE`` path, relative to the project folder unless absolute (Windows separators
  accepted); a ``<SOURCE VIDEO>`` item becomes a ``role = "video"`` track (its soundtrack plays,
  and tracks keyed by it are scored to its picture);
- the MIDI items of a track (in-project ``<SOURCE MIDI`` data, pooled or not, and ``.mid``
  files; see :mod:`~blendfx.render.rpp_midi`) -> one MIDI track (``midi = "...mid"``) whose
  notes sit where the project's tempo map puts them (item offset, length, loop and rate
  applied), played by ``instrument``: the track's instrument plug-in (its name, format, preset
  and, for VST3, its saved state) and the built-in voice that stands in for it when it is not
  installed (:func:`~blendfx.render.instruments.choose_voice`); the items' own volume, pan and
  fades become the track's ``items`` (applied to the instrument's output over each item);
- a track's plug-in effects (VST3, VST and AU by name; ``<FXCHAIN``) found in the plug-in
  folders -> ``plugins`` of a bus that holds its items (a folder's: its bus) and has its
  fader, so they process the sum of the items before the fader, as in REAPER; loaded by
  pedalboard where the session renders, with the VST3 state the project saved
  (:func:`~blendfx.render.instruments.reaper_vst3_state`); JS and DX plug-ins are reported.
- a project with MIDI tracks gets ``session.length``: the end of its last item, where REAPER
  ends a render (release tails past it are cut, as there).

Media that is not on disk is reported by name (``ReaperImport.missing_media`` and a warning),
never a crash. Whatever the session does not render (plug-ins that are not found or cannot
load, envelopes, MIDI on tracks without an instrument, non-file sources...) is listed once per
group in
``ReaperImport.warnings`` (and ``not_rendered``); :meth:`ReaperImport.table` prints the lot.

Examples
--------
>>> result = import_reaper("song/project.rpp", "song/session.toml")  # doctest: +SKIP
>>> result.missing_media                                            # doctest: +SKIP
['song/media/06-Left.wav']
"""

from __future__ import annotations

import base64
import math
import os
import posixpath
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

from blendfx.audio_io import audio_info
from blendfx.errors import BlendfxError, SessionError
from blendfx.files import atomic_path

from .instruments import choose_voice, find_plugin, plugin_display_name, reaper_vst3_state
from .rpp_midi import MidiSource, PlacedMidi, midi_file, parse_embedded, place_item, read_mid_source
from .session import FADE_SHAPES, TempoMap, save_session

__all__ = ["RppElement", "parse_rpp", "tokenize_line", "import_reaper", "ReaperImport"]

#: Blocks whose body is opaque state (base64 chunks, notes, JSFX slider values): kept raw.
_RAW_BLOCKS = {"VST", "VST3", "AU", "AUi", "JS", "DX", "LV2", "CLAP", "NOTES", "RECORD_CFG",
               "RENDER_CFG", "APPLYFX_CFG", "RENDER_METADATA", "VIDEO_EFFECT", "MIDINOTENAMES",
               "DXI", "VSTi"}
#: Source types that read a media file.
_FILE_SOURCES = {"WAVE", "FLAC", "MP3", "VORBIS", "OGG", "OPUS", "WAVPACK", "AIFF", "CAF", "W64",
                 "RAW", "VIDEO"}
_QUOTES = "\"'`"


@dataclass
class RppElement:
    """A ``<TAG args>`` block: ``children`` are attribute lines (lists of strings) and blocks."""

    tag: str
    attrib: list[str] = field(default_factory=list)
    children: list[Any] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    line: int = 0

    def blocks(self, tag: str) -> Iterator[RppElement]:
        """Direct child blocks with this tag."""
        return (c for c in self.children if isinstance(c, RppElement) and c.tag == tag)

    def find(self, tag: str) -> RppElement | None:
        return next(self.blocks(tag), None)

    def get(self, key: str) -> list[str] | None:
        """Arguments of the first direct attribute line ``KEY ...`` (None when absent)."""
        for c in self.children:
            if isinstance(c, list) and c and c[0] == key:
                return c[1:]
        return None

    def iter_all(self, key: str) -> Iterator[list[str]]:
        return (c[1:] for c in self.children if isinstance(c, list) and c and c[0] == key)


def tokenize_line(line: str) -> list[str]:
    """Split one REAPER line into arguments, REAPER's way.

    A token starting with a quote character runs to the same quote followed by whitespace or the
    end of the line; anything else runs to the next whitespace (so ``hey"`` is one bare token).
    """
    if not any(q in line for q in _QUOTES):
        return line.split()  # (most lines: no quotes, plain words)
    tokens: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        q = line[i]
        if q in _QUOTES:
            j = i + 1
            while True:
                j = line.find(q, j)
                if j == -1:  # unterminated: take the rest, as REAPER does
                    tokens.append(line[i + 1:])
                    return tokens
                if j + 1 >= n or line[j + 1].isspace():
                    break
                j += 1
            tokens.append(line[i + 1:j])
            i = j + 1
        else:
            j = i
            while j < n and not line[j].isspace():
                j += 1
            tokens.append(line[i:j])
            i = j
    return tokens


def parse_rpp(text: str, name: str = "project") -> RppElement:
    """Parse the text of a ``.rpp`` file into its root :class:`RppElement`.

    Raises
    ------
    SessionError
        The text is not a REAPER project (no ``<REAPER_PROJECT`` root) or its blocks do not nest.
    """
    root: RppElement | None = None
    stack: list[RppElement] = []
    for lineno, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line:
            continue
        top = stack[-1] if stack else None
        if top is not None and top.tag in _RAW_BLOCKS and line != ">":
            top.raw.append(line)
            continue
        if line == ">":
            if not stack:
                raise SessionError(f"{name}:{lineno}: '>' closes no block")
            stack.pop()
            continue
        if line.startswith("<"):
            tokens = tokenize_line(line[1:])
            if not tokens:
                raise SessionError(f"{name}:{lineno}: a block without a tag")
            element = RppElement(tokens[0], tokens[1:], line=lineno)
            if top is None:
                if root is not None:
                    raise SessionError(f"{name}:{lineno}: text after the project's closing '>'")
                root = element
            else:
                top.children.append(element)
            stack.append(element)
            continue
        if top is None:
            raise SessionError(f"{name}:{lineno}: not a REAPER project (expected <REAPER_PROJECT)")
        top.children.append(tokenize_line(line))
    if root is None or root.tag != "REAPER_PROJECT":
        raise SessionError(f"{name}: not a REAPER project (no <REAPER_PROJECT block)")
    if stack:
        raise SessionError(f"{name}: block <{stack[-1].tag} (line {stack[-1].line}) is not closed")
    return root


@dataclass
class ReaperImport:
    """What :func:`import_reaper` found.

    Attributes
    ----------
    manifest : dict
        The session manifest (the TOML written to the session file).
    missing_media : list of str
        Media files the project references that are not on disk (absolute paths as resolved).
    warnings : list of str
        Things the session does not render, one line per group (see ``not_rendered``).
    path : Path or None
        The session file written, if any.
    stand_ins : list of str
        One line per MIDI track whose instrument is not found here: the built-in voice that
        stands in for it and why it was chosen.
    instruments : list of str
        One line per MIDI track whose instrument plug-in is found in the plug-in folders
        (where, and whether the project's state goes with it).
    effects : list of str
        One line per plug-in effect found in the plug-in folders (where, and whether the
        project's state goes with it).
    not_rendered : dict
        What is not rendered, grouped: group -> the tracks/plug-ins/items it concerns.
    rows : list of dict
        One per REAPER track, for :meth:`table`.
    midi_files : dict
        The MIDI files of the MIDI tracks (relative path -> the file's bytes), written beside
        the session.
    """

    manifest: dict[str, Any]
    missing_media: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None
    stand_ins: list[str] = field(default_factory=list)
    not_rendered: dict[str, list[str]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    midi_files: dict[str, Any] = field(default_factory=dict)
    midi_items: int = 0
    effects: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    midi_folder: str = "midi"
    bare_midi: bool = False
    tempo_map: TempoMap | None = None

    def note(self, group: str, what: str) -> None:
        """Something not rendered, under its group (said once per group in ``warnings``)."""
        self.not_rendered.setdefault(group, []).append(what)

    @property
    def tracks(self) -> list[dict[str, Any]]:
        return self.manifest["tracks"]

    @property
    def buses(self) -> list[dict[str, Any]]:
        return self.manifest.get("buses", [])

    def table(self) -> str:
        """What was imported, one line per REAPER track: its kind, the folder (bus) it is in,
        its items, the session tracks or bus it became and what plays its MIDI; then the
        stand-ins and everything not rendered, grouped."""
        head = ("REAPER track", "kind", "in bus", "items", "session", "instrument")
        rows = [(r["reaper"], r["kind"], r["bus"] or "-", str(r["items"]),
                 ", ".join(r["session"]) or "(nothing)", r["instrument"] or "-")
                for r in self.rows]
        widths = [min(36, max(len(h), *(len(row[i]) for row in rows))) if rows else len(h)
                  for i, h in enumerate(head)]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join((c if len(c) <= w else c[:w - 1] + "~").ljust(w)
                             for c, w in zip(cells, widths, strict=True)).rstrip()

        out = [line(head), line(tuple("-" * w for w in widths))]
        out += [line(row) for row in rows]
        out.append(f"{len(self.tracks)} session tracks, {len(self.buses)} buses, "
                   f"{self.midi_items} MIDI items rendered, {len(self.missing_media)} missing media")
        out += [f"stand-in: {s}" for s in self.stand_ins]
        out += [f"instrument: {i}" for i in self.instruments]
        out += [f"plug-in: {e}" for e in self.effects]
        out += [f"not rendered: {group}: {', '.join(dict.fromkeys(names))}"
                for group, names in self.not_rendered.items()]
        return "\n".join(out)


def import_reaper(project: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                  *, include_missing: bool = True, bare_midi: bool = False) -> ReaperImport:
    """Convert a REAPER project to a session manifest, and write it to ``output`` if given.

    Parameters
    ----------
    project : str or Path
        The ``.rpp`` file.
    output : str or Path, optional
        Where to write the session ``.toml``; media paths are written relative to its folder,
        and the folders of media outside it are listed in ``[session] media_roots`` (with a
        warning): the session's path guard stays on for everything else.
    include_missing : bool
        Keep tracks whose media is missing (so the session renders once the files are put in
        place); False drops them. Either way they are listed in ``missing_media``.
    bare_midi : bool
        Also play MIDI items on tracks without an instrument (silent in REAPER) through
        stand-in voices; default: report them, not rendered.

    The notes of each track's MIDI items are written as one MIDI file per track into the
    folder ``<session stem>.midi`` beside the session (see :mod:`~blendfx.render.rpp_midi`).

    Raises
    ------
    SessionError
        The file is missing or is not a REAPER project.
    """
    project = Path(project)
    if not project.is_file():
        raise SessionError(f"REAPER project not found: {project}")
    try:
        text = project.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SessionError(f"cannot read {project}: {exc}") from None
    root = parse_rpp(text, project.name)
    session_dir = (Path(output).resolve().parent if output is not None
                   else project.resolve().parent)
    result = ReaperImport({}, bare_midi=bare_midi)
    result.midi_folder = f"{Path(output).stem if output is not None else project.stem}.midi"
    result.manifest = _manifest(root, project.resolve().parent, session_dir, project.stem,
                                result, include_missing)
    for path in result.missing_media:
        warnings.warn(f"{project.name}: media file not found: {path}", stacklevel=2)
    if output is not None:
        header = (f"blendfx session imported from {project.name} (REAPER {_version(root)})\n"
                  f"tracks: {len(result.tracks)}, buses: {len(result.buses)}, "
                  f"missing media: {len(result.missing_media)}")
        for line in result.stand_ins:
            header += f"\nstand-in: {line}"
        for rel, mid in result.midi_files.items():
            target = session_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_bytes(mid)
        result.path = save_session(result.manifest, output, header=header)
    return result


# -- mapping ---------------------------------------------------------------------------------
#: Playback rates this close to 1 are 1 (REAPER stores 1.0 as e.g. 0.99999999999978).
_RATE_TOLERANCE = 1e-6


def _version(root: RppElement) -> str:
    return root.attrib[1] if len(root.attrib) > 1 else "?"


def _float(args: list[str] | None, i: int, default: float) -> float:
    try:
        value = float(args[i]) if args is not None and len(args) > i else default
    except ValueError:
        return default
    return value if math.isfinite(value) else default


def _db(linear: float) -> float | None:
    """Linear volume to dB; None for silence (-inf)."""
    return 20.0 * math.log10(linear) if linear > 0 else None


def _media_path(name: str, project_dir: Path, session_dir: Path, record_dirs: list[Path]
                ) -> tuple[Path, str, bool]:
    """Where a media reference points: (path to check, manifest string, outside the session)."""
    if os.sep == "/" and (re.match(r"^[A-Za-z]:[\\/]", name) or name.startswith("\\\\")):
        # A Windows absolute path read on POSIX: kept as written, and necessarily missing here.
        text = PureWindowsPath(name).as_posix()
        return Path(text), text, True
    p = Path(name.replace("\\", "/"))
    path = p if p.is_absolute() else (project_dir / p).resolve()
    if not p.is_absolute() and not path.is_file():
        for folder in record_dirs:
            if (folder / p.name).is_file():
                path = (folder / p.name).resolve()
                break
    rel = Path(os.path.relpath(path, session_dir)).as_posix()
    return path, rel, rel.startswith("../") or rel == ".."


_INSTRUMENT_PREFIX = re.compile(r"^\s*(VSTi|VST3i|AUi|DXi|CLAPi|LV2i)\s*:", re.I)
_FX_BLOCKS = ("VST", "VST3", "AU", "JS", "DX", "LV2", "CLAP", "VSTi", "AUi", "DXI")
#: REAPER envelope blocks (track, take and FX parameter automation), by what they move.
_ENVELOPES = {"VOLENV": "volume", "VOLENV2": "volume", "VOLENV3": "trim volume",
              "PANENV": "pan", "PANENV2": "pan", "WIDTHENV": "width", "WIDTHENV2": "width",
              "MUTEENV": "mute", "PITCHENV": "pitch", "AUXVOLENV": "send volume",
              "AUXPANENV": "send pan", "AUXMUTEENV": "send mute", "PARMENV": "plug-in parameter",
              "TEMPOENV": "tempo", "PLAYSPEEDENV": "play rate", "MASTERPLAYSPEEDENV": "play rate"}


def _tempo_map(root: RppElement) -> tuple[TempoMap, str]:
    """The project's tempo map (TEMPO and the tempo envelope's points: shape 0 ramps linearly
    to the next point, others step; a point's time signature ``num + 65536 den`` starts a
    meter) and its first time signature."""
    tempo_args = root.get("TEMPO")
    bpm = _float(tempo_args, 0, 120.0)
    bpm = bpm if 10.0 <= bpm <= 1000.0 else 120.0
    num, den = int(_float(tempo_args, 1, 4)), int(_float(tempo_args, 2, 4))
    num, den = max(num, 1), den if den in (1, 2, 4, 8, 16, 32) else 4
    env = root.find("TEMPOENVEX")
    default_shape = int(_float(env.get("DEFSHAPE") if env is not None else None, 0, 1))
    points: list[tuple[float, float]] = []
    ramps: list[bool] = []
    meters: list[tuple[float, int, int]] = []
    for p in env.iter_all("PT") if env is not None else []:
        t, b = max(0.0, _float(p, 0, 0.0)), _float(p, 1, bpm)
        if not 10.0 <= b <= 1000.0:
            continue
        if points and t <= points[-1][0]:
            points.pop()
            ramps.pop()
        points.append((t, b))
        ramps.append(int(_float(p, 2, default_shape)) == 0)
        sig = int(_float(p, 3, 0))
        if sig > 0:
            n, d = sig & 0xFFFF, sig >> 16
            if n >= 1 and d in (1, 2, 4, 8, 16, 32):
                if t == 0.0:
                    num, den = n, d
                else:
                    meters.append((t, n, d))
    if not points or points[0][0] > 0:
        points.insert(0, (0.0, bpm))
        ramps.insert(0, False)
    ramps[-1] = False
    tm = TempoMap(tuple(points), num * 4.0 / den, tuple(ramps) if any(ramps) else (),
                  tuple(meters))
    return tm, f"{num}/{den}"


def _fx_chain(track: RppElement) -> tuple[dict[str, Any] | None, list[RppElement]]:
    """A track's instrument (the first plug-in REAPER names as one: ``VSTi:``, ``VST3i:``,
    ``AUi:``...; its name, format, preset and, for VST3, its saved state) and its other
    (active) plug-in blocks, in order."""
    chain = track.find("FXCHAIN")
    if chain is None:
        return None, []
    instrument: dict[str, Any] | None = None
    others: list[RppElement] = []
    bypass = False
    last: dict[str, Any] | None = None
    for child in chain.children:
        if isinstance(child, list):
            if child and child[0] == "BYPASS":
                bypass = _float(child, 1, 0) != 0
            elif child and child[0] == "PRESETNAME" and last is not None and len(child) > 1:
                last["preset"] = child[1]
            continue
        if child.tag not in _FX_BLOCKS:
            continue
        name = child.attrib[0] if child.attrib else child.tag
        if bypass:
            bypass, last = False, None
            continue
        if instrument is None and (_INSTRUMENT_PREFIX.match(name) or child.tag in ("VSTi", "AUi",
                                                                                    "DXI")):
            fmt = name.split(":", 1)[0].strip().rstrip("i").upper() if ":" in name else child.tag
            instrument = {"plugin": name, "format": fmt}
            if fmt == "VST3":
                instrument.update(_vst3_state(child))
            last = instrument
        else:
            others.append(child)
            last = None
    return instrument, others


def _vst3_state(block: RppElement) -> dict[str, str]:
    """``{"state": ..., "controller": ...}`` (base64) of a VST3 block's saved state, or
    ``{"state_error": why}``."""
    if sum(len(line) for line in block.raw) > 8 << 20:
        return {"state_error": "over 6 MB"}
    try:
        component, controller = reaper_vst3_state(block.raw)
    except ValueError as exc:
        return {"state_error": str(exc)}
    out = {"state": base64.b64encode(component).decode("ascii")}
    if controller:
        out["controller"] = base64.b64encode(controller).decode("ascii")
    return out


#: REAPER plug-in formats pedalboard may load (as a VST3 or Audio Unit of the same name).
_LOADABLE = ("VST3", "VST", "AU")


def _effect_specs(fx: list[RppElement], label: str, result: ReaperImport) -> list[dict[str, str]]:
    """A track's plug-in effects as manifest ``plugins``: those found in the plug-in folders
    (VST3, VST and AU by name), each with its state where the project keeps it in a form
    pedalboard takes (VST3); the others (not found; JS, DX...) are reported."""
    out: list[dict[str, str]] = []
    for block in fx:
        name = block.attrib[0] if block.attrib else block.tag
        fmt = name.split(":", 1)[0].strip().upper() if ":" in name else block.tag
        shown = f"{instrument_display(name)} on {label!r}"
        if fmt not in _LOADABLE:
            result.note("plug-in FX that pedalboard cannot load (JS, DX...: not applied; give "
                        "the track a blendfx chain)", shown)
            continue
        spec = {"plugin": name, "format": fmt}
        if fmt == "VST3":
            state = _vst3_state(block)
            if "state_error" in state:
                result.note("plug-in states not read (the plug-ins play with their defaults)",
                            f"{shown} ({state['state_error']})")
            else:
                spec.update(state)
        elif any(line.strip() for line in block.raw):
            result.note("plug-in states not read (the plug-ins play with their defaults)",
                        f"{shown} ({fmt} state)")
        found = find_plugin(name)
        if found is None:
            result.note("plug-in FX not found in the plug-in folders (not applied: import the "
                        "project again where they are installed)", shown)
            continue
        result.effects.append(f"{shown}: {found}, "
                              + ("with the project's state" if "state" in spec else
                                 "with its defaults"))
        out.append(spec)
    return out


def instrument_display(name: str) -> str:
    return plugin_display_name(name) or name


def _envelopes(block: RppElement, where: str, out: dict[str, list[str]]) -> None:
    """Note every envelope with points under ``block`` (not into items: their own call)."""
    for child in block.children:
        if not isinstance(child, RppElement) or child.tag in ("ITEM", "SOURCE"):
            continue
        if child.tag in _ENVELOPES and any(True for _ in child.iter_all("PT")):
            active = child.get("ACT")
            if active is None or _float(active, 0, 1) != 0:
                out.setdefault(f"{_ENVELOPES[child.tag]} envelope", []).append(where)
        _envelopes(child, where, out)


class _Names:
    """Unique names for session tracks and buses (REAPER allows equal track names)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, base: str) -> str:
        name, k = base, 2
        while name in self.used:
            name, k = f"{base} ({k})", k + 1
        self.used.add(name)
        return name


#: Lines and blocks of an item that belong to one take (the others are the item's own).
_TAKE_KEYS = {"NAME", "VOLPAN", "SOFFS", "PLAYRATE", "CHANMODE", "GUID", "TAKECOLOR", "RECPASS",
              "TAKEFX_NCH", "TAKEVOLPAN", "SOURCE", "TAKEFX", "VOLENV", "PANENV", "PITCHENV",
              "MUTEENV", "TAKE_FX_HAVE_NCH"}


#: Controllers the stand-in voices follow (volume, pan, expression, sustain, brightness; RPN
#: bend range and tuning; all-notes-off and resets).
_PLAYED_CCS = {6, 7, 10, 11, 38, 64, 74, 100, 101, 120, 121, 123}
_KINDS = {0xA0: "poly aftertouch", 0xD0: "channel aftertouch"}


def _active_take(item: RppElement, label: str, result: ReaperImport) -> RppElement:
    """The item as REAPER plays it: with several takes (``TAKE`` lines start the second and
    later ones; ``TAKE SEL`` marks the active one), the item's own lines and the active take's."""
    takes: list[list[Any]] = [[]]
    active = 0
    for child in item.children:
        if isinstance(child, list) and child and child[0] == "TAKE":
            takes.append([])
            if "SEL" in child[1:]:
                active = len(takes) - 1
            continue
        takes[-1].append(child)
    if len(takes) == 1:
        return item
    result.note("inactive takes (not rendered: the active take plays)", label)

    def key(c: Any) -> str:
        return c.tag if isinstance(c, RppElement) else (c[0] if c else "")

    own = [c for c in takes[0] if key(c) not in _TAKE_KEYS]
    chosen = takes[active] if active else [c for c in takes[0] if key(c) in _TAKE_KEYS]
    return RppElement(item.tag, item.attrib, own + [c for c in chosen if key(c) in _TAKE_KEYS],
                      item.raw, item.line)


def _item_source(item: RppElement) -> RppElement | None:
    source = item.find("SOURCE")
    while source is not None and source.attrib and source.attrib[0] in ("SECTION", "MIDIPOOL"):
        inner = source.find("SOURCE")  # a reversed/section/pooled source wraps the real one
        if inner is None:
            break
        source = inner
    return source


def _manifest(root: RppElement, project_dir: Path, session_dir: Path, name: str,
              result: ReaperImport, include_missing: bool) -> dict[str, Any]:
    sr = _float(root.get("SAMPLERATE"), 0, 44100.0) or 44100.0
    tm, signature = _tempo_map(root)
    result.tempo_map = tm
    session: dict[str, Any] = {"name": name, "sample_rate": int(sr) if sr.is_integer() else sr,
                               "tempo": tm.manifest(), "time_signature": signature}
    if tm.meters:
        session["meters"] = [list(m) for m in tm.meters]
    # REAPER also looks for relative media in the project's record folders.
    record_dirs = [project_dir / d for d in (root.get("RECORD_PATH") or []) if d.strip()]
    tracks: list[dict[str, Any]] = []
    buses: list[dict[str, Any]] = []
    unique = _Names()
    roots: dict[str, None] = {}  # folders of media outside the session folder, in order
    folders: list[str] = []  # the bus each open folder level became
    pools: dict[str, MidiSource] = {}  # pooled MIDI data by its POOLEDEVTS id
    project_end = 0.0  # the end of the last item imported
    midi_dir = f"{result.midi_folder}/"
    labels = [((t.get("NAME") or [""])[0] if t.get("NAME") else "").strip() or f"Track {i}"
              for i, t in enumerate(root.blocks("TRACK"), 1)]
    master_fx = root.find("MASTERFXLIST")
    if master_fx is not None and any(isinstance(c, RppElement) and c.tag in _FX_BLOCKS
                                     for c in master_fx.children):
        result.note("master plug-in FX not applied (the session's master normalizes loudness "
                    "under a true-peak limiter)", "master")
    for t_index, track in enumerate(root.blocks("TRACK"), 1):
        t_name = (track.get("NAME") or [""])[0] if track.get("NAME") else ""
        label = t_name.strip() or f"Track {t_index}"
        volpan = track.get("VOLPAN")
        t_vol, t_pan = _float(volpan, 0, 1.0), _float(volpan, 1, 0.0)
        mutesolo = track.get("MUTESOLO")
        t_mute, t_solo = _float(mutesolo, 0, 0) != 0, _float(mutesolo, 1, 0) != 0
        if _float(track.get("MAINSEND"), 0, 1) == 0:
            t_mute = True
            result.note("tracks not sent to their parent or the master (MAINSEND 0): muted",
                        label)
        isbus = track.get("ISBUS")
        folder_state, depth = int(_float(isbus, 0, 0)), int(_float(isbus, 1, 0))
        parent = folders[-1] if folders else None
        instrument, fx = _fx_chain(track)
        if instrument is not None and "state_error" in instrument:
            result.note("plug-in states not read (the plug-ins play with their defaults)",
                        f"{instrument_display(instrument['plugin'])} on {label!r} "
                        f"({instrument.pop('state_error')})")
        effects = _effect_specs(fx, label, result)
        _envelopes(track, label, result.not_rendered)
        for recv in track.iter_all("AUXRECV"):
            src_i = int(_float(recv, 0, -1))
            source_name = labels[src_i] if 0 <= src_i < len(labels) else f"track {src_i + 1}"
            result.note("sends between tracks not applied (each track plays into its folder "
                        "or the master only)", f"{source_name!r} -> {label!r}")
        row: dict[str, Any] = {"reaper": label, "bus": parent, "kind": "audio", "session": [],
                               "items": 0, "instrument": ""}
        result.rows.append(row)
        # a folder track becomes a bus: its fader, pan, mute and solo apply to the sum of its
        # children (and of its own items); so does a track with plug-in effects: they process
        # the sum of its items, before its fader, as in REAPER
        item_gain, item_pan, item_bus = t_vol, t_pan, parent
        is_folder = folder_state == 1 and depth > 0
        fx_bus = bool(effects) and not is_folder and any(True for _ in track.blocks("ITEM"))
        if is_folder or fx_bus:
            bus_name = unique(label)
            bus: dict[str, Any] = {"name": bus_name}
            _fader(bus, _db(t_vol), t_pan, t_mute, t_solo, parent)
            if effects:
                bus["plugins"], effects = effects, []
            buses.append(bus)
            row["kind"] = "folder (bus)" if is_folder else "audio"
            row["session"] = [bus_name]
            item_gain, item_pan, item_bus = 1.0, 0.0, bus_name
            t_mute_items, t_solo_items = False, False
            if is_folder:
                folders.append(bus_name)
        else:
            t_mute_items, t_solo_items = t_mute, t_solo
        items = list(track.blocks("ITEM"))
        row["items"] = len(items)
        audio_items = []
        midi_items = []
        skipped: dict[str, int] = {}
        for n_item, item in enumerate(items):
            item = items[n_item] = _active_take(item, label, result)
            source = _item_source(item)
            kind = source.attrib[0] if source is not None and source.attrib else "EMPTY"
            file_args = source.get("FILE") if source is not None else None
            if kind == "MIDI":
                midi_items.append((item, source))
                continue
            if kind not in _FILE_SOURCES or not file_args:
                skipped[kind] = skipped.get(kind, 0) + 1
                continue
            audio_items.append((item, file_args[0], kind))
        for kind, count in skipped.items():
            result.note("items that are not audio or MIDI media (not rendered)",
                        f"{count} {kind} item(s) on {label!r}")
        base = unique(f"{label} items" if is_folder or fx_bus else label)
        audio_base = unique(f"{base} audio") if midi_items and audio_items else base
        for n, (item, media, kind) in enumerate(audio_items, 1):
            entry_name = audio_base if len(audio_items) == 1 else unique(f"{audio_base} #{n}")
            path, text, is_outside = _media_path(media, project_dir, session_dir, record_dirs)
            missing = not path.is_file()
            if missing:
                if str(path) not in result.missing_media:  # one entry per file, not per item
                    result.missing_media.append(str(path))
                if not include_missing:
                    continue
            i_volpan = item.get("VOLPAN")
            i_vol, i_pan = _float(i_volpan, 0, 1.0), _float(i_volpan, 1, 0.0)
            gain = _db(item_gain * i_vol)
            entry: dict[str, Any] = {"name": entry_name}
            if is_outside:
                roots[posixpath.dirname(text) or "."] = None
            entry["file"] = text
            entry["role"] = "video" if kind == "VIDEO" else "other"  # a video item scores to picture
            entry["gain_db"] = round(gain, 4) if gain is not None else -150.0
            pan = max(-1.0, min(1.0, item_pan + i_pan))
            if pan:
                entry["pan"] = round(pan, 4)
            entry["offset"] = max(0.0, _float(item.get("POSITION"), 0, 0.0))
            entry["source_offset"] = max(0.0, _float(item.get("SOFFS"), 0, 0.0))
            entry["duration"] = max(0.0, _float(item.get("LENGTH"), 0, 0.0))
            entry.update(_item_fades(item, f"{entry_name!r}", result))
            if t_mute_items or _float(item.get("MUTE"), 0, 0) != 0 or gain is None:
                entry["mute"] = True
            if t_solo_items:
                entry["solo"] = True
            playrate = item.get("PLAYRATE")
            rate = _float(playrate, 0, 1.0)
            if abs(rate - 1.0) <= _RATE_TOLERANCE:  # (REAPER writes 1 as 0.99999999999978)
                rate = 1.0
            if rate > 0 and rate != 1.0:
                entry["rate"] = round(max(0.01, min(100.0, rate)), 9)
            if rate != 1.0 and _float(playrate, 1, 1) != 0:
                entry["preserve_pitch"] = True
            semis = _float(playrate, 2, 0.0)
            if semis:
                entry["pitch"] = round(max(-48.0, min(48.0, semis)), 6)
            if kind == "VIDEO" and any(k in entry for k in ("rate", "preserve_pitch", "pitch")):
                for k in ("rate", "preserve_pitch", "pitch"):
                    entry.pop(k, None)
                result.note("playback rates and pitch of video items (not applied)",
                            f"{entry_name!r}")
            if _float(item.get("LOOP"), 0, 0) != 0 and kind != "VIDEO":
                # the source repeats across the item, the take offset shifting it
                seconds = _source_seconds(path) if not missing else 0.0
                if seconds > 0:
                    entry["source_offset"] = round(entry["source_offset"] % seconds, 9)
                if entry["duration"] > 0:
                    entry["loop"] = True
            if item_bus is not None:
                entry["bus"] = item_bus
            _envelopes(item, f"{entry_name!r}", result.not_rendered)
            project_end = max(project_end, entry["offset"] + entry["duration"])
            tracks.append(entry)
            row["session"].append(entry_name)
        if midi_items:
            placed = PlacedMidi()
            spans: list[dict[str, Any]] = []
            muted = placed_items = 0
            midi_end = 0.0
            for item, source in midi_items:
                src = _midi_source(source, project_dir, session_dir, record_dirs, pools, result,
                                   label)
                if src is None:
                    continue
                if _float(item.get("MUTE"), 0, 0) != 0:
                    muted += 1
                    continue
                playrate = item.get("PLAYRATE")
                one = place_item(src, tm, max(0.0, _float(item.get("POSITION"), 0, 0.0)),
                                 max(0.0, _float(item.get("LENGTH"), 0, 0.0)),
                                 offset=max(0.0, _float(item.get("SOFFS"), 0, 0.0)),
                                 loop=_float(item.get("LOOP"), 0, 0) != 0,
                                 rate=_float(playrate, 0, 1.0))
                # the item's volume, pan and fades shape the instrument's output over it
                i_volpan = item.get("VOLPAN")
                span = {"start": max(0.0, _float(item.get("POSITION"), 0, 0.0)),
                        "length": max(0.0, _float(item.get("LENGTH"), 0, 0.0))}
                i_db = _db(_float(i_volpan, 0, 1.0))
                if i_db != 0.0:
                    span["gain_db"] = round(max(i_db, -150.0), 4) if i_db is not None else -150.0
                if _float(i_volpan, 1, 0.0):
                    span["pan"] = round(max(-1.0, min(1.0, _float(i_volpan, 1, 0.0))), 4)
                span.update(_item_fades(item, label, result))
                spans.append(span)
                _envelopes(item, label, result.not_rendered)
                placed.extend(one)
                placed_items += 1
                midi_end = max(midi_end, _float(item.get("POSITION"), 0, 0.0)
                               + _float(item.get("LENGTH"), 0, 0.0))
            if muted:
                result.note("muted MIDI items (not rendered)", f"{muted} on {label!r}")
            if instrument is None and not result.bare_midi:
                result.note("MIDI items on tracks without an instrument (silent in REAPER "
                            "too: not rendered)", f"{len(midi_items)} on {label!r}")
            elif placed.notes:
                result.midi_items += placed_items
                project_end = max(project_end, midi_end)
                midi_name = unique(f"{base} MIDI") if audio_items else base
                rel = f"{midi_dir}{t_index:02d}-{_safe(midi_name)}.mid"
                result.midi_files[rel] = midi_file(placed, midi_name)
                inst = dict(instrument or {})
                programs = [d1 for _, st, d1, _ in sorted(placed.events) if st & 0xF0 == 0xC0]
                voice, why = choose_voice(label, inst.get("plugin", ""), inst.get("preset", ""),
                                          programs, all(n[2] == 9 for n in placed.notes))
                spec = {k: inst[k] for k in ("plugin", "format", "state", "controller")
                        if k in inst}
                spec["voice"], spec["reason"] = voice, why
                entry = {"name": midi_name, "midi": rel, "instrument": spec, "role": "music"}
                _fader(entry, _db(item_gain), item_pan, t_mute_items, t_solo_items, item_bus)
                if any(len(sp) > 2 for sp in spans):  # (items at unity need no envelope)
                    entry["items"] = spans
                tracks.append(entry)
                row["session"].append(midi_name)
                row["kind"] = "MIDI" if row["kind"] == "audio" else row["kind"]
                found = find_plugin(inst["plugin"]) if inst.get("plugin") else None
                plug = instrument_display(inst["plugin"]) if inst.get("plugin") else None
                if found is not None:
                    row["instrument"] = f"{plug} ({found})"
                    result.instruments.append(
                        f"{plug} on {midi_name!r}: {found}, "
                        + ("with the project's state" if spec.get("state") else
                           "with its defaults"))
                else:
                    row["instrument"] = f"stand-in {voice}" + (f" for {plug}" if plug else "")
                    unplayed = sorted({f"CC {d1}" for _, st, d1, _ in placed.events
                                       if st & 0xF0 == 0xB0 and d1 not in _PLAYED_CCS}
                                      | {_KINDS[st & 0xF0] for _, st, _, _ in placed.events
                                         if st & 0xF0 in _KINDS})
                    if unplayed:
                        result.note("MIDI the stand-in voices do not play",
                                    f"{', '.join(unplayed)} on {midi_name!r}")
                    result.stand_ins.append(
                        f"{midi_name!r}: stand-in voice {voice!r} for "
                        + (f"{plug} (not found in the plug-in folders)" if plug else
                           "a track with no instrument") + f"; chosen by the {why}")
        if not row["session"] and row["kind"] == "audio":
            row["kind"] = "empty"
        if folder_state == 2 and depth < 0:
            for _ in range(min(-depth, len(folders))):
                folders.pop()
    if project_end > 0 and any("midi" in t for t in tracks):
        # REAPER renders a project to the end of its last item: the instruments' release
        # tails past it are cut there too
        session["length"] = round(project_end, 6)
    for group, names in result.not_rendered.items():
        result.warnings.append(f"{group}: {', '.join(dict.fromkeys(names))}")
    solo = any(t.get("solo") for t in tracks)
    if not any(not t.get("mute") and (t.get("solo") or not solo) for t in tracks):
        result.warnings.append(
            "no track has audio to render (no audio or MIDI items, or every one is muted): "
            "`blendfx render` will reject this session until a track is unmuted or added")
    if roots:
        # the path guard stays on: the session names each outside folder it reads from
        session["media_roots"] = list(roots)
        result.warnings.append("media lies outside the session folder: the session lists its "
                               "folders in [session] media_roots: " + ", ".join(roots))
    out: dict[str, Any] = {"session": session, "master": {
        "target_lufs": -16.0, "true_peak_dbtp": -1.0, "format": "wav", "bit_depth": 24},
        "tracks": tracks}
    if buses:
        # a bus nobody is routed to is still a valid (silent) bus; buses without inputs are
        # dropped so the session has no empty stems
        fed = {t.get("bus") for t in tracks} | {b.get("bus") for b in buses}
        kept = [b for b in buses if b["name"] in fed]
        while len(kept) != len(buses):
            buses = kept
            fed = {t.get("bus") for t in tracks} | {b.get("bus") for b in buses}
            kept = [b for b in buses if b["name"] in fed]
        if buses:
            out["buses"] = buses
        kept = {b["name"] for b in buses}
        for row in result.rows:
            if row["kind"] == "folder (bus)" and not set(row["session"]) & kept:
                row["session"] = []
                row["kind"] = "empty folder"
    return out


def _fader(entry: dict[str, Any], gain_db: float | None, pan: float, mute: bool, solo: bool,
           bus: str | None) -> None:
    """A track's or bus's fader in the manifest: gain (dB; None = -inf, muted), pan, mute, solo
    and the bus it feeds, each written only when it is not the default."""
    if gain_db is None or gain_db != 0.0:
        entry["gain_db"] = round(gain_db, 4) if gain_db is not None else -150.0
    if pan:
        entry["pan"] = round(max(-1.0, min(1.0, pan)), 4)
    if mute or gain_db is None:
        entry["mute"] = True
    if solo:
        entry["solo"] = True
    if bus is not None:
        entry["bus"] = bus


def _fade(args: list[str] | None) -> float:
    """A fade's length in s (``FADEIN shape length auto_length ...``: an automatic
    crossfade's length wins when set)."""
    return max(_float(args, 1, 0.0), _float(args, 2, 0.0), 0.0)


def _item_fades(item: RppElement, where: str, result: ReaperImport) -> dict[str, Any]:
    """An item's fades for the manifest: ``fade_in``/``fade_out`` (s) and their shapes
    (``FADEIN shape length auto_length _ _ curvature``: REAPER's shapes 0..6 by name, see
    :data:`~blendfx.render.session.FADE_SHAPES`); a curvature other than 0 is reported."""
    out: dict[str, Any] = {}
    for key, line in (("fade_in", "FADEIN"), ("fade_out", "FADEOUT")):
        args = item.get(line)
        length = _fade(args)
        if length <= 0:
            continue
        out[key] = length
        shape = int(_float(args, 0, 1))
        name = {0: "linear", 1: "equal_power"}.get(shape, FADE_SHAPES[shape]
                                                   if 2 <= shape < len(FADE_SHAPES)
                                                   else "equal_power")
        if name != "equal_power":
            out[f"{key}_shape"] = name
        if _float(args, 5, 0.0):
            result.note("fade curvature (the shape plays without it)", where)
    return out


def _source_seconds(path: Path) -> float:
    try:
        return audio_info(path).duration
    except BlendfxError:
        return 0.0


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "track"


def _midi_source(source: RppElement, project_dir: Path, session_dir: Path,
                 record_dirs: list[Path], pools: dict[str, MidiSource], result: ReaperImport,
                 label: str) -> MidiSource | None:
    """The events of an item's MIDI source: in the project, pooled, or a ``.mid`` file."""
    file_args = source.get("FILE")
    if file_args:
        path, _, _ = _media_path(file_args[0], project_dir, session_dir, record_dirs)
        if not path.is_file():
            if str(path) not in result.missing_media:  # one entry per file, not per item
                result.missing_media.append(str(path))
            return None
        try:
            return read_mid_source(path)
        except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
            result.note("MIDI files that cannot be read", f"{path.name} ({exc})")
            return None
    pool = (source.get("POOLEDEVTS") or [""])[0]
    has_events = any(isinstance(c, list) and c and c[0][:1] in ("E", "e")
                     for c in source.children)
    if not has_events and pool in pools:
        return pools[pool]
    src = parse_embedded(source)
    if pool:
        pools.setdefault(pool, src)
    if src.muted_events:
        result.note("muted MIDI events (not played)", f"{src.muted_events} on {label!r}")
    return src
