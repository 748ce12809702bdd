"""REAPER projects (``.rpp``) to blendfx session manifests.

REAPER saves projects as plain text: nested ``<TAG args`` ... ``>`` blocks of ``KEY args`` lines,
where an argument is a bare word or a string quoted with ``"``, ``'`` or a backtick (REAPER picks
a quote the string does not contain). Plug-in states (``<VST``, ``<AU``, ``<JS``...), render and
record configurations and item notes hold opaque lines (base64, ``|text``): the parser keeps them
as raw lines and never interprets them.

What the importer maps (REAPER -> session):

- ``SAMPLERATE`` -> ``session.sample_rate``; ``TEMPO bpm num den`` -> ``session.tempo`` and
  ``time_signature`` (tempo-envelope points ``<TEMPOENVEX PT ...>`` -> ``[[s, bpm], ...]``);
- each ``<TRACK>``: ``NAME``, ``VOLPAN vol pan`` (linear volume -> ``gain_db``), ``MUTESOLO``;
- each audio ``<ITEM>`` of a track -> one session track: ``POSITION`` -> ``offset``,
  ``LENGTH`` -> ``duration``, ``SOFFS`` -> ``source_offset``, item ``VOLPAN`` (volume folded into
  ``gain_db``, item pan added to the track's), ``MUTE``, ``FADEIN``/``FADEOUT`` lengths, and the
  ``<SOURCE ...> FILE`` path, relative to the project folder unless absolute (Windows separators
  accepted).

Media that is not on disk is reported by name (``ReaperImport.missing_media`` and a warning),
never a crash. MIDI, click and other non-file sources, playback rates other than 1 and folder
(bus) routing are listed in ``ReaperImport.warnings``.

Examples
--------
>>> result = import_reaper("song/project.rpp", "song/session.toml")  # doctest: +SKIP
>>> result.missing_media                                            # doctest: +SKIP
['song/media/06-Left.wav']
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

from blendfx.errors import SessionError

from .session import save_session

__all__ = ["RppElement", "parse_rpp", "tokenize_line", "import_reaper", "ReaperImport"]

#: Blocks whose body is opaque state (base64 chunks, notes, JSFX slider values): kept raw.
_RAW_BLOCKS = {"VST", "VST3", "AU", "AUi", "JS", "DX", "LV2", "CLAP", "NOTES", "RECORD_CFG",
               "RENDER_CFG", "APPLYFX_CFG", "RENDER_METADATA", "VIDEO_EFFECT", "MIDINOTENAMES",
               "DXI", "VSTi"}
#: Source types that read a media file.
_FILE_SOURCES = {"WAVE", "FLAC", "MP3", "VORBIS", "OGG", "OPUS", "WAVPACK", "AIFF", "CAF", "W64",
                 "RAW"}
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
        Things the session cannot express (MIDI items, playback rates, routing).
    path : Path or None
        The session file written, if any.
    """

    manifest: dict[str, Any]
    missing_media: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def tracks(self) -> list[dict[str, Any]]:
        return self.manifest["tracks"]


def import_reaper(project: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                  *, include_missing: bool = True) -> ReaperImport:
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
    result = ReaperImport({})
    result.manifest = _manifest(root, project.resolve().parent, session_dir, project.stem,
                                result, include_missing)
    for path in result.missing_media:
        warnings.warn(f"{project.name}: media file not found: {path}", stacklevel=2)
    if output is not None:
        header = (f"blendfx session imported from {project.name} (REAPER {_version(root)})\n"
                  f"tracks: {len(result.tracks)}, missing media: {len(result.missing_media)}")
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


def _manifest(root: RppElement, project_dir: Path, session_dir: Path, name: str,
              result: ReaperImport, include_missing: bool) -> dict[str, Any]:
    sr = _float(root.get("SAMPLERATE"), 0, 44100.0) or 44100.0
    tempo_args = root.get("TEMPO")
    bpm = _float(tempo_args, 0, 120.0)
    num, den = int(_float(tempo_args, 1, 4)), int(_float(tempo_args, 2, 4))
    tempo: Any = round(bpm, 6)
    env = root.find("TEMPOENVEX")
    if env is not None:
        pts = [(max(0.0, _float(p, 0, 0.0)), _float(p, 1, bpm)) for p in env.iter_all("PT")]
        if len(pts) > 1 or (pts and pts[0][1] != bpm):
            if not pts or pts[0][0] > 0:
                pts.insert(0, (0.0, bpm))
            tempo = [[round(t, 6), round(b, 6)] for t, b in pts]
            result.warnings.append("tempo envelope imported as steps (ramps are not kept)")
    session: dict[str, Any] = {"name": name, "sample_rate": int(sr) if sr.is_integer() else sr,
                               "tempo": tempo, "time_signature": f"{max(num, 1)}/{max(den, 1)}"}
    # REAPER also looks for relative media in the project's record folders.
    record_dirs = [project_dir / d for d in (root.get("RECORD_PATH") or []) if d.strip()]
    tracks: list[dict[str, Any]] = []
    used: set[str] = set()
    roots: dict[str, None] = {}  # folders of media outside the session folder, in order
    for t_index, track in enumerate(root.blocks("TRACK"), 1):
        t_name = (track.get("NAME") or [""])[0] if track.get("NAME") else ""
        base, k = t_name.strip() or f"Track {t_index}", 2
        t_name = base
        while t_name in used:  # REAPER allows equal track names; session tracks are unique
            t_name, k = f"{base} ({k})", k + 1
        used.add(t_name)
        volpan = track.get("VOLPAN")
        t_vol, t_pan = _float(volpan, 0, 1.0), _float(volpan, 1, 0.0)
        mutesolo = track.get("MUTESOLO")
        t_mute, t_solo = _float(mutesolo, 0, 0) != 0, _float(mutesolo, 1, 0) != 0
        isbus = track.get("ISBUS")
        if isbus and _float(isbus, 0, 0) == 1:
            result.warnings.append(f"track {t_name!r} is a folder: its children are imported "
                                   f"as plain tracks (folder volume and FX are not applied)")
        if track.find("FXCHAIN") is not None:
            result.warnings.append(f"track {t_name!r}: REAPER plug-ins are not imported "
                                   f"(give the track a blendfx chain instead)")
        items = list(track.blocks("ITEM"))
        audio_items = []
        skipped: dict[str, int] = {}
        for item in items:
            source = item.find("SOURCE")
            while source is not None and source.attrib and source.attrib[0] == "SECTION":
                source = source.find("SOURCE")  # a reversed/section source wraps the real one
            kind = source.attrib[0] if source is not None and source.attrib else "EMPTY"
            file_args = source.get("FILE") if source is not None else None
            if kind not in _FILE_SOURCES or not file_args:
                skipped[kind] = skipped.get(kind, 0) + 1
                continue
            audio_items.append((item, file_args[0]))
        for kind, count in skipped.items():
            result.warnings.append(f"track {t_name!r}: {count} {kind} item(s) skipped "
                                   f"(not audio media)")
        for n, (item, media) in enumerate(audio_items, 1):
            entry_name = t_name if len(audio_items) == 1 else f"{t_name} #{n}"
            path, text, is_outside = _media_path(media, project_dir, session_dir, record_dirs)
            missing = not path.is_file()
            if missing:
                if str(path) not in result.missing_media:  # one entry per file, not per item
                    result.missing_media.append(str(path))
                if not include_missing:
                    continue
            i_volpan = item.get("VOLPAN")
            i_vol, i_pan = _float(i_volpan, 0, 1.0), _float(i_volpan, 1, 0.0)
            gain = _db(t_vol * i_vol)
            entry: dict[str, Any] = {"name": entry_name}
            if is_outside:
                roots[posixpath.dirname(text) or "."] = None
            entry["file"] = text
            entry["role"] = "other"
            entry["gain_db"] = round(gain, 4) if gain is not None else -150.0
            pan = max(-1.0, min(1.0, t_pan + i_pan))
            if pan:
                entry["pan"] = round(pan, 4)
            entry["offset"] = max(0.0, _float(item.get("POSITION"), 0, 0.0))
            entry["source_offset"] = max(0.0, _float(item.get("SOFFS"), 0, 0.0))
            entry["duration"] = max(0.0, _float(item.get("LENGTH"), 0, 0.0))
            fade_in, fade_out = _float(item.get("FADEIN"), 1, 0.0), _float(item.get("FADEOUT"), 1, 0.0)
            if fade_in > 0:
                entry["fade_in"] = fade_in
            if fade_out > 0:
                entry["fade_out"] = fade_out
            if t_mute or _float(item.get("MUTE"), 0, 0) != 0 or gain is None:
                entry["mute"] = True
            if t_solo:
                entry["solo"] = True
            rate = _float(item.get("PLAYRATE"), 0, 1.0)
            if abs(rate - 1.0) > _RATE_TOLERANCE:  # (REAPER writes 1 as 0.99999999999978)
                result.warnings.append(f"track {entry_name!r}: playback rate {rate:g} is not "
                                       f"applied (the item plays at its recorded speed)")
            tracks.append(entry)
    solo = any(t.get("solo") for t in tracks)
    if not any(not t.get("mute") and (t.get("solo") or not solo) for t in tracks):
        result.warnings.append(
            "no track has audio to render (no audio items, or every one is muted): "
            "`blendfx render` will reject this session until a track is unmuted or added")
    if roots:
        # the path guard stays on: the session names each outside folder it reads from
        session["media_roots"] = list(roots)
        result.warnings.append("media lies outside the session folder: the session lists its "
                               "folders in [session] media_roots: " + ", ".join(roots))
    return {"session": session, "master": {"target_lufs": -16.0, "true_peak_dbtp": -1.0,
                                            "format": "wav", "bit_depth": 24}, "tracks": tracks}
