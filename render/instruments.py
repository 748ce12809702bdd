"""Instruments for MIDI tracks: the project's plug-in when it loads here, else a stand-in voice.

A MIDI track's ``instrument`` names the plug-in the project played it with (``plugin``, e.g.
``"Kontakt 7"``, with its ``format`` and, where the format allows, its saved ``state`` in
base64) and the built-in voice that stands in for it (``voice``). At render time
:func:`find_plugin` looks for the plug-in in the usual folders (VST3 and, on macOS, Audio Units;
plus the folders in ``BLENDFX_PLUGIN_PATH``, separated by ``os.pathsep``) and
``pedalboard.load_plugin`` loads it; when that fails, the notes play through the stand-in voice
(the Composer's synth, :mod:`blendfx.effects.composer.synth`), chosen by :func:`choose_voice`
from the track name, the plug-in name, its preset and the MIDI program, with channel 10 on the
drum kit.

Plug-in effects (a track's or bus's ``plugins``: REAPER's track FX) load the same way
(:func:`load_effects`), before the track's chain. Their state comes from the project where the
format allows: REAPER keeps a VST3's state as base64 lines (a header of routing pins, then the
plug-in's component and controller states, then the preset name; :func:`reaper_vst3_state`),
which become pedalboard's ``raw_state`` (:func:`vst3_raw_state`, the layout JUCE's VST3 host
reads).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import ctypes.util
import os
import re
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pedalboard
from blendfx.effects.composer.midi import Score, read_midi
from blendfx.effects.composer.mixing import cc_to_gain, synthesize
from blendfx.effects.composer.synth import VOICES, note_tail_s, voice_for_program
from blendfx.errors import BlendfxError

__all__ = ["choose_voice", "find_plugin", "plugin_folders", "render_instrument", "load_instrument",
           "plugin_display_name", "midi_end_seconds", "reaper_vst3_state", "vst3_raw_state",
           "load_effects", "load_plugin", "plugin_stamp"]

#: Words in a track, plug-in or preset name -> the stand-in voice (first match wins; checked on
#: the track name first, then the preset, then the plug-in).
_WORDS: tuple[tuple[str, str], ...] = (
    (r"drum|\bkit\b|perc|\bbeats?\b|808|909|snare|kick|\bhats?\b|hi-?hat|groove|\btoms?\b|"
     r"cymbal|battery|superior|ezdrummer|addictive|steven slate|\bsd3\b|\bbfd", "drums"),
    (r"sub ?bass|808 ?bass", "sub_bass"),
    (r"synth ?bass|moog ?bass", "synth_bass"),
    (r"upright|double ?bass|contrabass|jazz ?bass", "upright"),
    (r"bassoon", "reed"),
    (r"bass", "bass"),
    (r"dist|overdrive|crunch|metal|lead ?g(uitar|tr)", "dist_guitar"),
    (r"guitar|gtr|acoustic|nylon|strum|banjo|ukulele|mandolin", "guitar"),
    (r"e-?piano|rhodes|wurli|electric piano|\bep\b|lounge lizard", "epiano"),
    (r"organ|hammond|b3\b|b-3|church", "organ"),
    (r"piano|\bgrand\b|keyscape|pianoteq|ivory|\bkeys?\b|\bclav", "piano"),
    (r"string|violin|viola|ensemble|orchestra|spitfire|albion", "strings"),
    (r"cello", "cello"),
    (r"choir|vocal|voice|vox|aah|ooh", "choir"),
    (r"brass|trumpet|\bhorns?\b|french horn|trombone|tuba", "brass"),
    (r"sax|clarinet|oboe|bassoon|reed|harmonica", "reed"),
    (r"flute|pipe|whistle|recorder|pan ?flute", "flute"),
    (r"harp", "harp"),
    (r"bell|glock|celesta|chime|music ?box", "bell"),
    (r"vibra|marimba|xylo|mallet", "vibes"),
    (r"timpani", "timpani"),
    (r"\bpads?\b|absynth|atmo|ambient|drone|texture|reaktor|omnisphere|evolv|swell|wash",
     "pad"),
    (r"pluck|\barp", "pluck"),
    (r"supersaw|trance|saw ?lead", "supersaw"),
    (r"lead|solo|serum|massive|sylenth|synth|vital|diva|pigments", "lead"),
)


def plugin_display_name(name: str) -> str:
    """A REAPER plug-in name without its format prefix and vendor: ``"VST3i: Kontakt 7 (Native
    Instruments)"`` -> ``"Kontakt 7"``."""
    name = re.sub(r"^\s*(VST3?i?|AUi?|DXi?|LV2i?|CLAPi?|JS)\s*:\s*", "", name)
    while True:  # "(vendor)", "(16 out)"...
        shorter = re.sub(r"\s*\([^()]*\)\s*$", "", name)
        if shorter == name or not shorter.strip():
            return name.strip()
        name = shorter


def choose_voice(track: str = "", plugin: str = "", preset: str = "",
                 programs: list[int] | None = None, drum_channel: bool = False
                 ) -> tuple[str, str]:
    """The stand-in voice for a MIDI track and why: ``(voice, reason)``.

    Looks for instrument words in the track name, then the preset, then the plug-in name;
    then a drum-channel-only part (channel 10) plays the kit, then the first General MIDI
    program; a part with none of these plays the piano.
    """
    for what, text in (("track name", track), ("preset", preset),
                       ("plug-in", plugin_display_name(plugin))):
        low = text.lower()
        if not low.strip():
            continue
        for pattern, voice in _WORDS:
            if re.search(pattern, low):
                return voice, f"{what} {text!r}"
    if drum_channel:
        return "drums", "MIDI channel 10"
    if programs:
        return voice_for_program(programs[0]), f"MIDI program {programs[0]}"
    return "piano", "nothing names the instrument (default)"


def plugin_folders() -> list[Path]:
    """Where plug-ins are looked for: ``BLENDFX_PLUGIN_PATH`` first, then the platform's usual
    VST3 (and Audio Unit) folders."""
    home = Path.home()
    out = [Path(p) for p in os.environ.get("BLENDFX_PLUGIN_PATH", "").split(os.pathsep) if p]
    if sys.platform == "darwin":
        out += [home / "Library/Audio/Plug-Ins/VST3", Path("/Library/Audio/Plug-Ins/VST3"),
                home / "Library/Audio/Plug-Ins/Components",
                Path("/Library/Audio/Plug-Ins/Components")]
    elif sys.platform.startswith("win"):
        common = os.environ.get("COMMONPROGRAMFILES", r"C:\Program Files\Common Files")
        out += [Path(common) / "VST3"]
    else:
        out += [home / ".vst3", Path("/usr/lib/vst3"), Path("/usr/local/lib/vst3")]
    return out


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_plugin(name: str, folders: list[Path] | None = None) -> Path | None:
    """The plug-in bundle called ``name`` (``.vst3`` or ``.component``, case, spaces and
    punctuation ignored) in ``folders`` (default :func:`plugin_folders`, one level of
    sub-folders searched), or None."""
    want = _key(plugin_display_name(name))
    if not want:
        return None
    for folder in plugin_folders() if folders is None else folders:
        if not folder.is_dir():
            continue
        try:
            candidates = list(folder.iterdir())
            candidates += [p for d in candidates if d.is_dir() and d.suffix == "" for p in
                           d.iterdir()]
        except OSError:
            continue
        for p in candidates:
            if p.suffix.lower() in (".vst3", ".component") and _key(p.stem) == want:
                return p
    return None


#: Parameters pedalboard need not wrap: the 2080 hidden "MIDI Ch. 1 CC 0"... parameters by which
#: DISTRHO (DPF) VST3 plug-ins take MIDI controllers (the VST3 way; JUCE's own, "MIDI CC ...",
#: pedalboard already skips). pedalboard reads every parameter's text at 1001 values when it
#: loads a plug-in: with them, a DPF instrument took 30 s to load instead of 0.1 s.
_HIDDEN_PARAMETERS = re.compile(r"MIDI Ch\. \d+ CC \d+$")


def _libm() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    except OSError:  # no C maths library by that name: nothing to restore with
        return None


_LIBM = _libm()


@contextlib.contextmanager
def _float_environment_kept() -> Iterator[None]:
    """Restore the calling thread's floating-point environment (C's ``fenv_t``: rounding,
    and on x86 the MXCSR's flush-to-zero and denormals-are-zero bits) after the block.

    A plug-in built with ``-ffast-math`` (DPF's default, Debian's zam-plugins among them) sets
    flush-to-zero for the whole thread when it is loaded (GCC's ``crtfastmath`` constructor),
    and every thread started afterwards inherits it: numpy would then flush subnormal numbers
    to zero everywhere in the process, long after the plug-in is gone.
    """
    env = ctypes.create_string_buffer(64)  # fenv_t is 32 bytes on x86-64, 8 on arm64
    saved = _LIBM is not None and _LIBM.fegetenv(env) == 0
    try:
        yield
    finally:
        if saved:
            _LIBM.fesetenv(env)


def load_plugin(path: str | os.PathLike[str]) -> Any:
    """``pedalboard.load_plugin(path)`` (a VST3 or Audio Unit bundle), without wrapping the
    hidden MIDI-controller parameters of DPF plug-ins as Python parameters (see
    ``_HIDDEN_PARAMETERS``: they stay the plug-in's, out of ``parameters``), and without
    letting the plug-in's loading change the process's floating-point mode (see
    :func:`_float_environment_kept`).

    Raises
    ------
    ImportError
        pedalboard cannot load it (as ``pedalboard.load_plugin``).
    """
    ignored = getattr(getattr(pedalboard, "_pedalboard", None),
                      "PARAMETER_NAME_REGEXES_TO_IGNORE", None)
    if isinstance(ignored, set):
        ignored.add(_HIDDEN_PARAMETERS)  # (a set: adding it twice is adding it once)
    with _float_environment_kept():
        return pedalboard.load_plugin(str(path))


def plugin_stamp(path: str | os.PathLike[str]) -> int:
    """When a plug-in bundle last changed: the newest modification time (ns) of the bundle and
    of its binaries (``Contents/<platform>/*``), so that renders cached with another build of
    it are not reused; 0 when it cannot be read."""
    path = Path(path)
    try:
        stamps = [path.stat().st_mtime_ns]
        contents = path / "Contents"
        if contents.is_dir():
            for folder in contents.iterdir():
                if folder.is_dir() and folder.name != "Resources":
                    stamps += [f.stat().st_mtime_ns for f in folder.iterdir()]
    except OSError:
        return 0
    return max(stamps)


def midi_end_seconds(score: Score, voice: str) -> float:
    """When a track's sound ends: its last note-off plus the voice's release tail."""
    tail = 0.0 if voice == "drums" else note_tail_s(voice)
    return score.length_s + min(tail, 1.5) + (0.5 if voice == "drums" else 0.0)


def load_instrument(instrument: dict[str, Any], sample_rate: float
                    ) -> tuple[Any | None, dict[str, Any]]:
    """A track's instrument plug-in ready to play: ``(plug-in, {"plugin": path, "name": its
    name, "state": "applied" | "not applied, defaults (why)" | "none in the project
    (defaults)"})``, or ``(None, {"why": ...})`` when it is not found, does not load or is no
    instrument.

    Call it on the thread that renders (the main one): pedalboard loads and prepares VST3s
    there (a plug-in loaded on another thread may have to be reloaded on the main one); it is
    prepared at ``sample_rate`` here, so playing it later on any thread needs no reset.
    """
    name = instrument.get("plugin", "")
    if not name:
        return None, {"why": "the track names no plug-in"}
    path = find_plugin(name)
    if path is None:
        return None, {"why": f"plug-in {plugin_display_name(name)!r} not found in the plug-in "
                             f"folders"}
    try:
        plugin = load_plugin(path)
        if not getattr(plugin, "is_instrument", False):
            raise ValueError(f"{path.name} is not an instrument")
        info: dict[str, Any] = {"plugin": str(path), "name": getattr(plugin, "name", path.stem)}
        info["state"] = (_set_state(plugin, instrument) if instrument.get("state") else
                         "none in the project (defaults)")
        plugin([], duration=0.01, sample_rate=sample_rate, num_channels=2, reset=True)
    except (BlendfxError, ImportError, RuntimeError, ValueError, OSError) as exc:
        return None, {"why": f"{path.name} did not load: {exc}"}
    return plugin, info


def render_instrument(midi: Path, instrument: dict[str, Any], sample_rate: float,
                      length: int, loaded: tuple[Any | None, dict[str, Any]] | None = None
                      ) -> tuple[np.ndarray, dict[str, Any]]:
    """A MIDI file played by a track's instrument: ``((2, n) float32, what played it)``, ``n``
    samples: ``length``, or fewer for a plug-in that rang out before (silence after).

    The plug-in when :func:`find_plugin` finds it and pedalboard loads it (its saved state set
    when it takes it; ``loaded``: what :func:`load_instrument` gave, else it is called here);
    otherwise the stand-in voice. The dict says which: ``{"plugin": path}`` or
    ``{"stand_in": voice, "for": plug-in name, "why": ...}``.
    """
    score = read_midi(midi)
    name = instrument.get("plugin", "")
    plugin, info = loaded if loaded is not None else load_instrument(instrument, sample_rate)
    if plugin is not None:
        try:
            return _play_plugin(plugin, midi, sample_rate, length), info
        except (BlendfxError, RuntimeError, ValueError) as exc:
            why = f"{Path(info['plugin']).name} did not play: {exc}"
    else:
        why = info["why"]
    voice = instrument.get("voice") or choose_voice(
        programs=[p.program for p in score.parts], drum_channel=bool(score.parts) and all(
            p.is_drum for p in score.parts))[0]
    return _play_voice(score, voice, sample_rate, length), {
        "stand_in": voice, "for": plugin_display_name(name) or None,
        "why": why, "chosen_by": instrument.get("reason")}


def _play_voice(score: Score, voice: str, sample_rate: float, length: int) -> np.ndarray:
    for part in score.parts:
        if voice == "drums":
            part.is_drum = True
        elif not part.is_drum:
            part.meta = {**part.meta, "voice": voice if voice in VOICES else "piano"}
    out = np.zeros((2, length), np.float32)
    if not score.parts or length <= 0:
        return out
    for part, dry in zip(score.parts, synthesize(score, sample_rate, length), strict=True):
        audio = dry if dry.ndim == 2 else np.repeat(dry[None], 2, axis=0) * np.float32(0.7071)
        for cc in (7, 11):
            gain = cc_to_gain(part.controls.get(cc), sample_rate, length)
            if gain is not None:
                audio = audio * gain[None, :]
        pan = part.controls.get(10)
        if pan is not None and len(pan):
            theta = (float(np.clip((pan[0, 1] - 64.0) / 63.0, -1, 1)) + 1.0) * np.pi / 4.0
            audio = audio * np.array([[np.cos(theta)], [np.sin(theta)]], np.float32) * 1.4142
        out += audio.astype(np.float32, copy=False)
    return out


#: MIDI that a VST3 host passes to a plug-in as parameter changes (controllers, program changes,
#: channel pressure, pitch bend: the plug-in's ``IMidiMapping``); pedalboard's host (JUCE's)
#: applies them at the start of the block they fall in (of up to 8192 samples), the last one
#: per parameter per block.
_AS_PARAMETERS = (0xB0, 0xC0, 0xD0, 0xE0)
#: After its last event an instrument plays on in chunks of this many seconds, until one is
#: quieter than ``_SILENT`` (-120 dBFS) throughout: its release tail, however long.
_RING_CHUNK_S = 0.5
_SILENT = 1e-6
#: The shortest piece an instrument renders (samples; 0.73 ms at 44.1 kHz): bounds the calls
#: into the plug-in (~36 us each) for dense controller streams.
_MIN_PIECE = 32


def _play_plugin(plugin: Any, midi: Path, sample_rate: float, length: int) -> np.ndarray:
    """The notes of a MIDI file through a prepared instrument plug-in (no reset: see
    :func:`load_instrument`), ``(2, n)``: up to ``length`` samples, fewer where it rang out.

    Each event plays on its sample (the nearest to its time): the audio is rendered in pieces
    that start where a controller, program change, pressure or pitch bend falls (see
    ``_AS_PARAMETERS``), so each of those reaches the plug-in on its own sample, not at the
    start of the host's block (in a dense stream, at most ``_MIN_PIECE`` samples early: pieces
    are no shorter); notes are sample-accurate within a piece. After the last event it plays
    on until it is silent (``_RING_CHUNK_S``) or ``length`` ends.
    """
    events: list[tuple[int, bytes]] = []
    seconds = 0.0
    for msg in mido.MidiFile(str(midi)):  # (iterating a MidiFile gives delta seconds)
        seconds += msg.time
        if not msg.is_meta:
            at = int(round(seconds * sample_rate))
            if at < length:
                events.append((at, bytes(msg.bytes())))
    cuts: list[int] = []
    for at in sorted({at for at, data in events if data[0] & 0xF0 in _AS_PARAMETERS}):
        if at - (cuts[-1] if cuts else 0) >= _MIN_PIECE:
            cuts.append(at)
    # past the last event the plug-in rings out in chunks, until one is silent
    last = events[-1][0] + 1 if events else 0
    ring = int(_RING_CHUNK_S * sample_rate)
    bounds = sorted({0, *cuts, *range(max(last, cuts[-1] if cuts else 0), length, ring),
                     length})
    out: list[np.ndarray] = []
    k = 0
    for start, stop in zip(bounds, bounds[1:], strict=False):
        piece = []
        while k < len(events) and events[k][0] < stop:
            # (pedalboard puts an event at the sample its time * rate floors to: + half one)
            piece.append((events[k][1], (events[k][0] - start + 0.5) / sample_rate))
            k += 1
        audio = np.asarray(plugin(piece, duration=(stop - start + 0.5) / sample_rate,
                                  sample_rate=sample_rate, num_channels=2, reset=False),
                           np.float32)
        if audio.ndim == 1:
            audio = audio[None]
        got = np.zeros((2, stop - start), np.float32)
        n = min(stop - start, audio.shape[1])
        got[:, :n] = audio[:2, :n]
        out.append(got)
        if start >= last and not np.abs(got).max() >= _SILENT:
            break  # (rung out: silence from here)
    return np.concatenate(out, axis=1) if out else np.zeros((2, 0), np.float32)


# -- plug-in states and effects ----------------------------------------------------------------
_REAPER_CHUNK = (0xFEED5EEE, 0xFEED5EEF)  # REAPER's plug-in chunk header magic (opaque/regular)
_REAPER_MAGIC = (0xDEADBEEF, 0xDEADF00D)  # (before the data of "regular" chunks)
_JUCE_B64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"


def reaper_vst3_state(lines: list[str]) -> tuple[bytes, bytes]:
    """A VST3's ``(component state, controller state)`` from the base64 lines of its REAPER
    ``<VST`` block.

    REAPER writes each line as its own base64 string: a header (the plug-in id, the chunk
    magic ``0xFEED5EEE``/``0xFEED5EEF``, the input and output pin masks, 8 bytes per pin, the
    data size and two flags; a "regular" chunk's data starts with ``0xDEADBEEF 0xDEADF00D``),
    the data, and a last line with the program and preset names. A VST3's data is its
    component state then its controller state, each as ``int32 size, int32 flags, bytes``.

    Raises
    ------
    ValueError
        The lines are not such a chunk.
    """
    text = [line.strip() for line in lines if line.strip() and not line.startswith("|")]
    if len(text) < 2:
        raise ValueError("no plug-in chunk")
    try:
        raw = b"".join(base64.b64decode(line, validate=True) for line in text[:-1])
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64 ({exc})") from None
    try:
        _, magic, n_in = struct.unpack_from("<IIi", raw, 0)
        if magic not in _REAPER_CHUNK or not 0 <= n_in <= 1024:
            raise ValueError(f"not a REAPER plug-in chunk (magic {magic:#x})")
        at = 12 + 8 * n_in
        (n_out,) = struct.unpack_from("<i", raw, at)
        if not 0 <= n_out <= 1024:
            raise ValueError(f"{n_out} output pins")
        at += 4 + 8 * n_out
        size, _, _ = struct.unpack_from("<iII", raw, at)
        at += 12
        if raw[at:at + 8] == struct.pack("<II", *_REAPER_MAGIC):
            at, size = at + 8, size - 8
        data = raw[at:at + size]
        if size < 0 or len(data) != size:
            raise ValueError(f"the chunk holds {len(raw) - at} bytes of data, its header says "
                             f"{size}")
        states: list[bytes] = []
        pos = 0
        while pos + 8 <= len(data) and len(states) < 2:
            (n,) = struct.unpack_from("<i", data, pos)
            if n < 0 or pos + 8 + n > len(data):
                raise ValueError("a VST3 state runs past the chunk")
            states.append(data[pos + 8:pos + 8 + n])
            pos += 8 + n
    except struct.error:
        raise ValueError("the chunk is too short") from None
    if not states:
        raise ValueError("no VST3 component state in the chunk")
    return states[0], states[1] if len(states) > 1 else b""


def _juce_base64(data: bytes) -> str:
    """JUCE's ``MemoryBlock::toBase64Encoding``: the size, a dot, then 6-bit groups taken from
    the little-end of the bytes, each as a character of JUCE's own table."""
    value = int.from_bytes(data, "little")
    chars = (len(data) * 8 + 5) // 6
    return f"{len(data)}." + "".join(_JUCE_B64[(value >> (6 * i)) & 63] for i in range(chars))


def vst3_raw_state(component: bytes, controller: bytes = b"") -> bytes:
    """pedalboard's ``raw_state`` of a VST3 (JUCE's host layout): ``VC2!``, the size, then
    ``<VST3PluginState>`` XML holding the component and controller states."""
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n\n<VST3PluginState>'
    xml += f"<IComponent>{_juce_base64(component)}</IComponent>"
    if controller:
        xml += f"<IEditController>{_juce_base64(controller)}</IEditController>"
    body = (xml + "</VST3PluginState>").encode("utf-8") + b"\0"
    return b"VC2!" + struct.pack("<I", len(body)) + body


def _set_state(plugin: Any, spec: dict[str, Any]) -> str:
    """Give a loaded plug-in the state a spec carries (``state``/``controller``: base64 VST3
    component and controller states); says whether it took it."""
    try:
        component = base64.b64decode(spec["state"], validate=True)
        controller = base64.b64decode(spec.get("controller", ""), validate=True)
        plugin.raw_state = vst3_raw_state(component, controller)
    except (binascii.Error, ValueError, RuntimeError, AttributeError, TypeError) as exc:
        return f"not applied, defaults ({exc})"
    return "applied"


def load_effects(specs: list[dict[str, Any]], sample_rate: float, channels: int = 2
                 ) -> tuple[list[Any], list[dict[str, Any]]]:
    """Load a track's plug-in effects: ``(plug-ins found and loaded, in order, one report per
    spec)``. A report says ``{"effect": "plug-in", "plugin": name, "path": ...,
    "state": "applied" | "not applied, defaults (why)" | "none in the project"}``, or
    ``"not_applied": why`` for one that is not found, does not load or is an instrument.

    Parameters
    ----------
    specs : list of dict
        ``{"plugin": name, "format": ..., "state": base64, "controller": base64}`` each.
    sample_rate : float
        Hz; each plug-in is prepared at it (on the calling thread: see
        :func:`load_instrument`).
    channels : int
        Channels the plug-ins will process (a plug-in that does not take them is not applied).
    """
    loaded: list[Any] = []
    reports: list[dict[str, Any]] = []
    for spec in specs:
        name = spec.get("plugin", "")
        report: dict[str, Any] = {"effect": "plug-in", "plugin": plugin_display_name(name)}
        reports.append(report)
        path = find_plugin(name)
        if path is None:
            report["not_applied"] = "not found in the plug-in folders"
            continue
        report["path"] = str(path)
        try:
            plugin = load_plugin(path)
        except (ImportError, RuntimeError, ValueError, OSError) as exc:
            report["not_applied"] = f"did not load ({exc})"
            continue
        if not getattr(plugin, "is_effect", True):
            report["not_applied"] = "an instrument, not an effect"
            continue
        report["state"] = _set_state(plugin, spec) if spec.get("state") else (
            "none in the project (defaults)")
        try:  # (REAPER would run a mono plug-in on the first channel only)
            plugin.process(np.zeros((channels, 256), np.float32), sample_rate, reset=True)
        except ValueError as exc:
            report["not_applied"] = f"does not take {channels} channels ({exc})"
            continue
        loaded.append(plugin)
    return loaded, reports
