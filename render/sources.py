"""Where a render's audio comes from: a track's file placed on the session timeline
(:class:`FileSource`, playback rate and pitch included; a video track's soundtrack:
:class:`VideoSource`), a MIDI track played by its instrument (:class:`NoteSource`), the sum of
the tracks routed to a bus (:class:`BusSource`), a key track's rendered stem
(:class:`KeySource`), random-access reads of
cached stems (:class:`StemReader`, 32-bit float WAVs read straight from disk) and the block
grid every stage shares (:func:`block_starts`)."""

from __future__ import annotations

import json
import math
import os
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from blendfx.audio_io import audio_info, iter_audio_blocks, open_audio
from blendfx.effects.composer.midi import read_midi
from blendfx.effects.video import VideoFeatures
from blendfx.errors import AudioFileError
from blendfx.threads import cores
from pedalboard import time_stretch
from pedalboard.io import AudioFile
from scipy.signal import resample_poly

from .instruments import load_instrument, midi_end_seconds, render_instrument
from .session import Track

__all__ = ["block_starts", "StemReader", "MemoryStem", "open_stem", "FileSource", "KeySource",
           "VideoSource", "NoteSource", "BusSource", "pan_gains", "fade_gain"]


def pan_gains(pan: float, channels: int) -> tuple[float, float]:
    """Left/right gains of the session pan law.

    Mono: constant power, -3 dB per side at centre (``cos``/``sin`` of ``(pan + 1) pi / 4``).
    Stereo: a balance control: centre leaves both sides at unity; panning turns the far side
    down along the same constant-power curve (scaled so the centre is 0 dB) and never boosts.
    """
    theta = (pan + 1.0) * math.pi / 4.0
    left, right = math.cos(theta), math.sin(theta)
    if channels == 1:
        return left, right
    return min(1.0, math.sqrt(2.0) * left), min(1.0, math.sqrt(2.0) * right)


def fade_gain(shape: str, x: np.ndarray) -> np.ndarray:
    """A fade's gain (linear amplitude, 0..1) at ``x``, the fraction of a fade-in done (for a
    fade-out: the fraction of it left), by shape (REAPER's item fade shapes by their kind;
    its exact curves are not published): ``equal_power`` (REAPER's default, 1: a quarter
    sine), ``linear`` (0), ``slow_start`` (2: x^2), ``fast_start_steep`` (3: 1 - (1 - x)^4),
    ``slow_start_steep`` (4: x^4), ``s_curve`` (5: a half cosine) and ``s_curve_steep`` (6: the
    half cosine of the half cosine)."""
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    if shape == "linear":
        return x
    if shape == "slow_start":
        return x * x
    if shape == "fast_start_steep":
        return 1.0 - (1.0 - x) ** 4
    if shape == "slow_start_steep":
        return x ** 4
    if shape == "s_curve":
        return 0.5 - 0.5 * np.cos(np.pi * x)
    if shape == "s_curve_steep":
        return 0.5 - 0.5 * np.cos(np.pi * (0.5 - 0.5 * np.cos(np.pi * x)))
    return np.sin(0.5 * np.pi * x)


def block_starts(total: int, block: int) -> Iterator[tuple[int, int]]:
    """(start, length) of consecutive blocks; the last is never tiny (pedalboard guesses the
    layout of a 2-D array from its smaller side, so a 2-sample stereo block would be ambiguous)."""
    start = 0
    while start < total:
        n = total - start if total - start < block + 1024 else block
        yield start, n
        start += n


class _Stem:
    """What both stem kinds share: ``read`` is zeros plus :meth:`add_to`."""

    channels: int

    def add_to(self, out: np.ndarray, start: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, start: int, n: int) -> np.ndarray:
        """``n`` frames from ``start`` (zeros outside the stem), ``(channels, n)`` float32."""
        out = np.zeros((self.channels, n), np.float32)
        self.add_to(out, start)
        return out


class StemReader(_Stem):
    """Random-access reads of a cached stem (zero outside the file).

    The cache's 32-bit float WAVs are read with ``preadv`` straight into the result's buffer
    (no decoding; not memory-mapped, since mapped pages that were read would stay in the
    process's resident set: a 60-minute stem would count 1.3 GB); any other file is read
    through pedalboard. A cache entry's ``meta.json`` may give the stem's ``active`` span
    (first and end sample that are not zero): reads outside it add nothing and touch no disk
    (an item a few seconds long on a long session).
    """

    def __init__(self, path: Path) -> None:
        layout = _float_wav_layout(path)
        self._f: Any = None
        self._fd: int | None = None
        self.active: tuple[int, int] | None = _active_span(path.parent / "meta.json")
        if layout is not None:
            self._offset, self.channels, self.frames = layout
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        else:
            self._f = AudioFile(str(path))
            self._lock = threading.Lock()
            self.frames = int(self._f.frames)
            self.channels = int(self._f.num_channels)

    def add_to(self, out: np.ndarray, start: int) -> None:
        """``out += self[start:start + out.shape[1]]``, channels first."""
        a, b = max(start, 0), min(start + out.shape[1], self.frames)
        if self.active is not None:
            a, b = max(a, self.active[0]), min(b, self.active[1])
        if a >= b:
            return
        if self._fd is not None:
            frames = np.empty((b - a, self.channels), np.float32)  # interleaved, as on disk
            want = frames.nbytes
            got = _read_at(self._fd, frames, self._offset + a * 4 * self.channels)
            if got != want:
                raise AudioFileError(f"cached stem is shorter than its header says ({got} of "
                                     f"{want} bytes at frame {a})")
            part = frames.T
        else:
            with self._lock:  # (a decoder has one position: blocks may be read from threads)
                self._f.seek(a)
                part = self._f.read(b - a)
        out[:, a - start:b - start] += part

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _active_span(meta: Path) -> tuple[int, int] | None:
    """The ``active`` span a cache entry's meta.json gives, if any."""
    try:
        span = json.loads(meta.read_text(encoding="utf-8")).get("active")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span):
        return span[0], span[1]
    return None


class MemoryStem(_Stem):
    """A rendered stem held in memory (``--no-cache`` renders), with :class:`StemReader`'s
    interface."""

    def __init__(self, audio: np.ndarray) -> None:
        self.audio = audio
        self.channels, self.frames = audio.shape

    def add_to(self, out: np.ndarray, start: int) -> None:
        a, b = max(start, 0), min(start + out.shape[1], self.frames)
        if a < b:
            out[:, a - start:b - start] += self.audio[:, a:b]

    def close(self) -> None:
        pass


def open_stem(cache: Any, entry: Path) -> StemReader | MemoryStem:
    """The rendered stem of a cache entry folder: held in memory by a ``--no-cache`` render
    (:attr:`RenderCache.memory`), else its ``audio.wav``."""
    audio = cache.memory.get(entry.name)
    return MemoryStem(audio) if audio is not None else StemReader(entry / "audio.wav")


def _read_at(fd: int, buffer: np.ndarray, offset: int) -> int:
    """Read into ``buffer`` from byte ``offset`` of ``fd``; the number of bytes read.

    ``os.preadv`` where the platform has it (positional: safe from any thread, no copy);
    elsewhere (e.g. Windows) a seek and reads under a lock.
    """
    if hasattr(os, "preadv"):
        return os.preadv(fd, [buffer], offset)
    view, got = memoryview(buffer).cast("B"), 0
    with _READ_LOCK:
        os.lseek(fd, offset, os.SEEK_SET)
        while got < len(view):
            data = os.read(fd, len(view) - got)
            if not data:
                break
            view[got:got + len(data)] = data
            got += len(data)
    return got


_READ_LOCK = threading.Lock()


def _float_wav_layout(path: Path) -> tuple[int, int, int] | None:
    """``(data offset in bytes, channels, frames)`` of a little-endian 32-bit float RIFF WAV,
    or None for any other file (read it with a decoder)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            size = os.fstat(fh.fileno()).st_size
            fmt = None
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                tag, length = struct.unpack("<4sI", fh.read(8))
                if tag == b"fmt ":
                    body = fh.read(min(length, 40))
                    code, channels, _, _, align, bits = struct.unpack("<HHIIHH", body[:16])
                    if code == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE
                        code = struct.unpack("<H", body[24:26])[0]
                    fmt = (code, channels, align, bits)
                elif tag == b"data":
                    if fmt is None or fmt[0] != 3 or fmt[3] != 32 or fmt[2] != 4 * fmt[1]:
                        return None
                    frames = min(length, size - pos - 8) // fmt[2]
                    return pos + 8, fmt[1], frames
                pos += 8 + length + (length & 1)
    except (OSError, struct.error):
        return None
    return None


class FileSource:
    """A track's file placed on the session timeline: offset, source offset, duration, fades,
    playback rate (``rate``: the file is resampled so it plays that much faster, its pitch
    moving with it, unless ``preserve_pitch``: then it is time-stretched) and ``pitch``
    (semitones, shifted with pedalboard's ``time_stretch``). ``source_offset`` counts seconds
    of the file, ``duration`` seconds of the timeline. A looped track (``loop``) plays the file
    over and over for its whole duration: timeline sample ``k`` of the item plays file sample
    ``(skip + k) mod period`` (REAPER's looped items: the take offset shifts the loop, which
    wraps to the file's start)."""

    def __init__(self, track: Track, sample_rate: float, block_seconds: float) -> None:
        info = audio_info(track.file)
        self.track, self.sr, self.block_seconds = track, sample_rate, block_seconds
        self.channels = info.channels
        self.rate = track.rate
        # the rate the file is read at: its samples then play at the session rate
        self.read_rate = sample_rate if track.preserve_pitch else sample_rate / track.rate
        frames = int(math.ceil(info.frames * self.read_rate / info.sample_rate))
        self.period = frames  # one pass of the file, in samples at the read rate
        self.skip = int(round(track.source_offset * self.read_rate))
        self.loop = bool(track.loop) and frames > 0
        if self.loop:
            self.skip %= frames
            length = int(round(track.duration * sample_rate))
        else:
            length = max(frames - self.skip, 0)
            if track.preserve_pitch:
                length = int(math.floor(length / track.rate))
            if track.duration is not None:
                length = min(length, int(round(track.duration * sample_rate)))
        self.start = int(round(track.offset * sample_rate))
        self.length = length
        self.end = self.start + length
        self.stretch = (track.preserve_pitch and track.rate != 1.0) or track.pitch != 0.0
        #: a mono file plays on both channels (into a track's stereo plug-ins, as REAPER
        #: feeds a stereo track)
        self.upmix = False

    def _passes(self) -> Iterator[np.ndarray]:
        """The file's blocks at the read rate: once, or over and over for a looped track."""
        while True:
            yield from _file_blocks(self.track.file, self.block_seconds, self.read_rate)
            if not self.loop:
                return

    def blocks(self, total: int, block: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, (channels, n))`` timeline blocks covering ``[0, total)``."""
        stream = self._stream()
        buf = np.zeros((self.channels, 0), np.float32)
        for start, n in block_starts(total, block):
            out = np.zeros((self.channels, n), np.float32)
            a, b = max(start, self.start), min(start + n, self.end)
            if a < b:
                need = b - a
                while buf.shape[1] < need:
                    nxt = next(stream, None)
                    if nxt is None:
                        break
                    buf = np.concatenate([buf, nxt], axis=1)
                take = buf[:, :need]
                buf = buf[:, need:]
                out[:, a - start:a - start + take.shape[1]] = take
                self._fade(out, a - start, a - self.start, b - a)
            yield start, (np.repeat(out, 2, axis=0) if self.upmix and out.shape[0] == 1
                          else out)

    def _stream(self) -> Iterator[np.ndarray]:
        if self.stretch:
            yield from self._stretched()
            return
        skip, left = self.skip, self.length
        for chunk in self._passes():
            if skip:
                drop = min(skip, chunk.shape[1])
                chunk, skip = chunk[:, drop:], skip - drop
            if left <= 0:
                return
            chunk = chunk[:, :left]
            left -= chunk.shape[1]
            if chunk.shape[1]:
                yield chunk.astype(np.float32, copy=False)

    def _stretched(self) -> Iterator[np.ndarray]:
        """The item's part of the file, time-stretched and/or pitch-shifted as one buffer
        (the stretcher needs the whole part)."""
        t = self.track
        need = int(math.ceil(self.length * (t.rate if t.preserve_pitch else 1.0))) + 1
        parts, skip = [], self.skip
        for chunk in self._passes():
            if skip:
                drop = min(skip, chunk.shape[1])
                chunk, skip = chunk[:, drop:], skip - drop
            parts.append(chunk)
            if sum(p.shape[1] for p in parts) >= need:
                break
        x = np.concatenate(parts, axis=1)[:, :need] if parts else np.zeros((self.channels, 0))
        if x.shape[1]:
            # (Rubber Band's finer engine with its short window: 2.2x less CPU than with the
            # long one on a 4 s item, measured)
            x = time_stretch(np.ascontiguousarray(x, np.float32), self.sr,
                             stretch_factor=t.rate if t.preserve_pitch else 1.0,
                             pitch_shift_in_semitones=t.pitch, high_quality=True,
                             use_long_fft_window=False)
        yield np.asarray(x[:, :self.length], np.float32)

    def _fade(self, out: np.ndarray, at: int, pos: int, n: int) -> None:
        """The track's fades (their shapes: :func:`fade_gain`) over item positions
        ``[pos, pos + n)``, written at ``out[:, at:]``."""
        t = self.track
        gain = _fades(pos, n, self.length, t.fade_in * self.sr, t.fade_out * self.sr,
                      t.fade_in_shape, t.fade_out_shape)
        if gain is not None:
            out[:, at:at + n] *= gain.astype(np.float32)


def _fades(pos: int, n: int, length: int, fade_in: float, fade_out: float, in_shape: str,
           out_shape: str) -> np.ndarray | None:
    """The gain of an item's fades (lengths in samples) at its positions ``[pos, pos + n)``;
    None where no fade reaches them."""
    f_in, f_out = int(round(fade_in)), int(round(fade_out))
    if pos >= f_in and length - (pos + n) >= f_out:
        return None
    p = np.arange(pos, pos + n, dtype=np.float64)
    gain = np.ones(n)
    if f_in > 0:
        gain *= np.where(p < f_in, fade_gain(in_shape, (p + 0.5) / f_in), 1.0)
    if f_out > 0:
        rest = length - p - 0.5
        gain *= np.where(rest < f_out, fade_gain(out_shape, rest / f_out), 1.0)
    return gain if f_in > 0 or f_out > 0 else None


class VideoSource(FileSource):
    """A video track's soundtrack (decoded with the picture's analysis, resampled to the session
    rate; a silent video gives silence as long as its picture) placed like a file."""

    def __init__(self, track: Track, sample_rate: float, block_seconds: float,
                 features: VideoFeatures) -> None:
        self.track, self.sr, self.block_seconds = track, sample_rate, block_seconds
        if features.audio is not None and features.audio.size:
            audio = features.audio
            rate = int(round(features.sample_rate))
            if rate != int(round(sample_rate)):
                g = math.gcd(rate, int(round(sample_rate)))
                audio = resample_poly(audio, int(round(sample_rate)) // g, rate // g, axis=1)
        else:
            audio = np.zeros((2, int(round(features.duration_s * sample_rate))), np.float32)
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.channels = self.audio.shape[0]
        self.skip = int(round(track.source_offset * sample_rate))
        length = max(self.audio.shape[1] - self.skip, 0)
        if track.duration is not None:
            length = min(length, int(round(track.duration * sample_rate)))
        self.start = int(round(track.offset * sample_rate))
        self.length = length
        self.end = self.start + length
        self.upmix = False

    def _stream(self) -> Iterator[np.ndarray]:
        step = max(1, int(self.block_seconds * self.sr))
        stop = self.skip + self.length
        for a in range(self.skip, stop, step):
            yield self.audio[:, a: min(a + step, stop)]


def _file_blocks(path: Path, block_seconds: float, sample_rate: float) -> Iterator[np.ndarray]:
    """The blocks :func:`~blendfx.audio_io.iter_audio_blocks` yields, decoded ahead on two
    threads (each with its own decoder, seeking to its block: WAV and FLAC seek to the exact
    sample) when the file is at the session rate; sequentially otherwise (a resampler carries
    state from block to block)."""
    info = audio_info(path)
    if (Path(path).suffix.lower() not in (".wav", ".flac") or info.sample_rate != sample_rate
            or cores() < 2):
        yield from iter_audio_blocks(path, block_seconds, sample_rate)
        return
    block = max(1, int(block_seconds * info.sample_rate))
    local, handles = threading.local(), []

    def read(start: int) -> np.ndarray:
        f = getattr(local, "f", None)
        if f is None:
            f = local.f = open_audio(path)
            handles.append(f)
        f.seek(start)
        return np.asarray(f.read(block), dtype=np.float32)

    starts = iter(range(0, info.frames, block))
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="blendfx-decode") as pool:
            ahead = [pool.submit(read, s) for s in [next(starts, None) for _ in range(3)]
                     if s is not None]
            while ahead:
                chunk = ahead.pop(0).result()
                if (nxt := next(starts, None)) is not None:
                    ahead.append(pool.submit(read, nxt))
                yield chunk
    finally:
        for f in handles:
            f.close()


class NoteSource:
    """A MIDI track played by its instrument (see :mod:`~blendfx.render.instruments`), placed at
    its offset; rendered whole on the first read (instruments render a part at once)."""

    def __init__(self, track: Track, sample_rate: float) -> None:
        self.track, self.sr = track, sample_rate
        self.channels = 2
        score = read_midi(track.midi)
        voice = track.instrument.get("voice", "piano")
        self.start = int(round(track.offset * sample_rate))
        self.length = int(math.ceil(midi_end_seconds(score, voice) * sample_rate))
        if track.duration is not None:
            self.length = min(self.length, int(round(track.duration * sample_rate)))
        self.end = self.start + self.length
        self.played: dict[str, Any] = {}
        # (a plug-in loads here, on the thread building the render: see load_instrument)
        self.loaded = load_instrument(track.instrument, sample_rate)

    def blocks(self, total: int, block: int) -> Iterator[tuple[int, np.ndarray]]:
        length = self.length
        t = self.track
        if self.loaded[0] is not None and t.duration is None and not t.fade_out:
            # a plug-in's release tail is its own (the stand-in's length is a guess): it
            # rings on to the session's end, or until it is silent
            length = max(length, total - self.start)
        audio, self.played = render_instrument(t.midi, t.instrument, self.sr, max(length, 1),
                                               self.loaded)
        self.end = self.start + audio.shape[1]  # (a plug-in's sound ends where it rang out)
        if self.track.items:
            item_envelope(self.track.items, self.sr, self.start, audio.shape[1], audio)
        fade = FileSource._fade  # (the same fades as a file's)
        for start, n in block_starts(total, block):
            out = np.zeros((2, n), np.float32)
            a, b = max(start, self.start), min(start + n, self.end)
            if a < b:
                out[:, a - start:b - start] = audio[:, a - self.start:b - self.start]
                fade(self, out, a - start, a - self.start, b - a)  # type: ignore[arg-type]
            yield start, out


def item_envelope(items: list[dict[str, Any]], sample_rate: float, start: int, n: int,
                  audio: np.ndarray | None = None) -> np.ndarray:
    """The ``(2, n)`` gains of a MIDI track's items on timeline samples ``[start, start + n)``:
    each item's volume, pan (the stereo balance law) and fades (:func:`fade_gain`) from its
    start; after its end its last gain holds until the next item starts (the instrument's
    release tail); a later item takes over where items overlap. Given ``audio`` (``(2, n)``
    float32), it is scaled in place (only where a gain is not 1) and returned instead.

    Parameters
    ----------
    items : list of dict
        ``start``, ``length`` (s on the timeline), ``gain_db`` (dB), ``pan`` (-1..1),
        ``fade_in``/``fade_out`` (s) and their shapes.
    sample_rate : float
        Hz.
    start, n : int
        The first timeline sample and how many.
    """
    out = np.ones((2, n), np.float32) if audio is None else audio
    spans = sorted(items, key=lambda i: i["start"])
    for k, item in enumerate(spans):
        a = int(round(item["start"] * sample_rate))
        length = int(round(item["length"] * sample_rate))
        stop = (int(round(spans[k + 1]["start"] * sample_rate)) if k + 1 < len(spans)
                else start + n)
        # (before the first item: its gain)
        lo, hi = max(start if k == 0 else a, start), min(stop, start + n)
        if lo >= hi:
            continue
        left, right = pan_gains(item.get("pan", 0.0), 2)
        g = 10.0 ** (item.get("gain_db", 0.0) / 20.0)
        fades = _fades(0, max(length, 1), max(length, 1),
                       item.get("fade_in", 0.0) * sample_rate,
                       item.get("fade_out", 0.0) * sample_rate,
                       item.get("fade_in_shape", "equal_power"),
                       item.get("fade_out_shape", "equal_power"))
        part = out[:, lo - start:hi - start]
        if fades is None:
            if g * left != 1.0 or g * right != 1.0:
                part *= np.array([[g * left], [g * right]], np.float32)
            continue
        pos = np.arange(lo, hi) - a
        gain = g * fades[np.clip(pos, 0, max(length - 1, 0))]  # (held past the end)
        if item.get("fade_out", 0.0) > 0:
            gain[pos >= length] = 0.0  # faded out: silent until the next item
        part *= np.stack([gain * left, gain * right]).astype(np.float32)
    return out


class BusSource:
    """A bus's input: the sum of the rendered (post-fader, stereo) stems routed to it."""

    def __init__(self, readers: list[StemReader]) -> None:
        self.readers = readers
        self.channels = 2

    def blocks(self, total: int, block: int) -> Iterator[tuple[int, np.ndarray]]:
        for start, n in block_starts(total, block):
            out = np.zeros((2, n), np.float32)
            for r in self.readers:
                r.add_to(out, start)
            yield start, out


class KeySource:
    """A generated track's input: its key track's rendered stem, in blocks."""

    def __init__(self, reader: StemReader) -> None:
        self.reader = reader
        self.channels = reader.channels

    def blocks(self, total: int, block: int) -> Iterator[tuple[int, np.ndarray]]:
        for start, n in block_starts(total, block):
            yield start, self.reader.read(start, n)

