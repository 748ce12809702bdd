"""Offline rendering of a session: stems in, rendered stems, a mastered mix and a report out.

The render, in order:

1. **Check** (nothing is written yet): every stem opens and decodes its header, sample rates
   are allowed, every chain builds (parameters are validated), the output format is known.
   Any problem is a :class:`~blendfx.BlendfxError` and the output folder is not touched.
2. **Tracks**, keys before the tracks they key (:meth:`Session.render_order`): each track's file
   is read and resampled to the session rate, placed at its offset (source offset, duration,
   fades), run through its chain (sidechain signals = the key tracks' rendered stems), and
   turned into a stereo post-fader stem (gain, then a -3 dB constant-power pan law for mono;
   a balance law for stereo). When every effect of a chain supports streaming, the track is
   processed in blocks (``block_seconds``), so a long stem never sits in memory; offline
   effects (generators, Blend) get the whole track. Each result is a cache entry
   (:mod:`blendfx.render.cache`): tracks whose inputs did not change are not rendered again.
   Tracks whose chains start with a diffusion generator (or a Blend around one) on a shared
   model run their windows as one batched job first
   (:func:`blendfx.diffusion_effect.generate_batched`, ``batch_size`` windows per model call);
   each track then renders on its primed generator.
   Scheduling: up to ``jobs`` tracks at once on threads (numpy, scipy and pedalboard release
   the GIL; BLAS is held to one thread meanwhile, see :mod:`blendfx.threads`). When a session
   has offline tracks (a generator: the long ones), the streaming tracks none of them needs
   run on threads of lower priority (Linux), so they take what the generator leaves of the
   cores instead of slowing it. In an offline chain, the streaming effects after the last
   offline one run block by block on a pipeline of threads (one per effect; the same samples
   as one call on the whole track).
3. **Mix**, streamed twice over the cached stems: pass 1 measures the integrated loudness and
   true peak of the sum; pass 2 applies the gain that reaches ``master.target_lufs`` and a
   look-ahead true-peak limiter at ``master.true_peak_dbtp`` and writes the mix. The stems get
   the same master gain (without the limiter; with an extra common trim if one would clip), so
   they sum to the mix before limiting. Both passes work on two blocks at a time (each block
   is independent given its context) and hand them on in order. When the last track to finish
   streams out of an offline chain, pass 1 follows its blocks (:class:`_PreMeasure`) instead
   of running after it.
4. **Report**: ``report.json`` (loudness, gains, per-track timings and cache hits, the blend
   report of every Blend, e.g. its unmasked fraction, ``timings`` with wall and CPU seconds
   and the load average) and ``report.png`` (drawn on a thread while the mix is still being
   written; ``timings.report_s`` is that thread's own time).

Outputs are written into a staging folder inside the cache and moved into the output folder
only when all of them are complete; ``report.json`` moves last. A run killed at any point leaves
the output folder as it was (plus the hidden cache), and the next run picks up the finished
tracks from the cache.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from blendfx.audio_io import audio_info, audio_writer, iter_audio_blocks
from blendfx.buffers import fit_channels, fit_length
from blendfx.errors import AudioFileError, BlendfxError, SessionError
from blendfx.session import Session, Track
from blendfx.threads import one_blas_thread

from .cache import RenderCache, file_digest
from .mastering import LoudnessMeter, db, limit, limiter_context, true_peak_max
from .report import FIGURE_SECONDS

__all__ = ["render_session", "RenderResult", "TrackResult", "pan_gains", "stem_filename"]

_TP_CONTEXT = 32  # samples of context for true-peak measurement at block edges
_SAFETY_DB = 0.1  # the limiter aims this far under the ceiling (interpolation, rounding)


@dataclass
class TrackResult:
    """What happened to one track."""

    name: str
    role: str
    key: str
    cached: bool
    seconds: float
    streamed: bool
    peak_dbfs: float
    rms_dbfs: float
    audible: bool
    stem: Path | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RenderResult:
    """Paths of everything a render wrote, and its report (the content of report.json)."""

    out_dir: Path
    mix: Path
    stems: dict[str, Path]
    report_json: Path
    report_png: Path | None
    report: dict[str, Any]
    tracks: list[TrackResult]

    def track(self, name: str) -> TrackResult:
        return next(t for t in self.tracks if t.name == name)


# -- small pieces ------------------------------------------------------------------------------
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


def _fader(audio: np.ndarray, gain_db: float, pan: float) -> np.ndarray:
    """``(channels, n)`` -> stereo ``(2, n)`` after gain and the pan law."""
    if audio.shape[0] > 2:
        audio = fit_channels(audio, 1)
    left, right = pan_gains(pan, audio.shape[0])
    g = 10.0 ** (gain_db / 20.0)
    src = np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio
    return (src * np.array([[left * g], [right * g]], np.float32)).astype(np.float32)


def stem_filename(name: str, used: set[str]) -> str:
    """A file-system-safe stem name for a track (unique within ``used``)."""
    import re

    base = re.sub(r"[^\w.-]+", "_", name).strip("._") or "track"
    out, k = base, 2
    while out.lower() in used:
        out, k = f"{base}_{k}", k + 1
    used.add(out.lower())
    return out


def _block_starts(total: int, block: int) -> Iterator[tuple[int, int]]:
    """(start, length) of consecutive blocks; the last is never tiny (pedalboard guesses the
    layout of a 2-D array from its smaller side, so a 2-sample stereo block would be ambiguous)."""
    start = 0
    while start < total:
        n = total - start if total - start < block + 1024 else block
        yield start, n
        start += n


class _StemReader:
    """Random-access reads of a cached stem (zero outside the file).

    The cache's 32-bit float WAVs are read with ``preadv`` straight into the result's buffer
    (no decoding; not memory-mapped, since mapped pages that were read would stay in the
    process's resident set: a 60-minute stem would count 1.3 GB); any other file is read
    through pedalboard.
    """

    def __init__(self, path: Path) -> None:
        layout = _float_wav_layout(path)
        self._f: Any = None
        self._fd: int | None = None
        if layout is not None:
            self._offset, self.channels, self.frames = layout
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        else:
            from pedalboard.io import AudioFile

            self._f = AudioFile(str(path))
            self._lock = threading.Lock()
            self.frames = int(self._f.frames)
            self.channels = int(self._f.num_channels)

    def read(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((self.channels, n), np.float32)
        self.add_to(out, start)
        return out

    def add_to(self, out: np.ndarray, start: int) -> None:
        """``out += self[start:start + out.shape[1]]``, channels first."""
        a, b = max(start, 0), min(start + out.shape[1], self.frames)
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
    import struct

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


class _FileSource:
    """A track's file placed on the session timeline: offset, source offset, duration, fades."""

    def __init__(self, track: Track, sample_rate: float, block_seconds: float) -> None:
        info = audio_info(track.file)
        self.track, self.sr, self.block_seconds = track, sample_rate, block_seconds
        self.channels = info.channels
        frames = int(math.ceil(info.frames * sample_rate / info.sample_rate))
        self.skip = int(round(track.source_offset * sample_rate))
        length = max(frames - self.skip, 0)
        if track.duration is not None:
            length = min(length, int(round(track.duration * sample_rate)))
        self.start = int(round(track.offset * sample_rate))
        self.length = length
        self.end = self.start + length

    def blocks(self, total: int, block: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, (channels, n))`` timeline blocks covering ``[0, total)``."""
        stream = self._stream()
        buf = np.zeros((self.channels, 0), np.float32)
        for start, n in _block_starts(total, block):
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
            yield start, out

    def _stream(self) -> Iterator[np.ndarray]:
        skip, left = self.skip, self.length
        for chunk in _file_blocks(self.track.file, self.block_seconds, self.sr):
            if skip:
                drop = min(skip, chunk.shape[1])
                chunk, skip = chunk[:, drop:], skip - drop
            if left <= 0:
                return
            chunk = chunk[:, :left]
            left -= chunk.shape[1]
            if chunk.shape[1]:
                yield chunk.astype(np.float32, copy=False)

    def _fade(self, out: np.ndarray, at: int, pos: int, n: int) -> None:
        """Equal-power fades over item positions ``[pos, pos + n)``, written at ``out[:, at:]``."""
        f_in = int(round(self.track.fade_in * self.sr))
        f_out = int(round(self.track.fade_out * self.sr))
        if pos >= f_in and self.length - (pos + n) >= f_out:
            return  # no fade reaches these positions
        p = np.arange(pos, pos + n, dtype=np.float64)
        gain = np.ones(n)
        if f_in > 0:
            gain *= np.where(p < f_in, np.sin(0.5 * np.pi * np.minimum((p + 0.5) / f_in, 1.0)), 1)
        if f_out > 0:
            rest = self.length - p - 0.5
            gain *= np.where(rest < f_out, np.sin(0.5 * np.pi * np.clip(rest / f_out, 0, 1)), 1)
        if f_in > 0 or f_out > 0:
            out[:, at:at + n] *= gain.astype(np.float32)


def _file_blocks(path: Path, block_seconds: float, sample_rate: float) -> Iterator[np.ndarray]:
    """The blocks :func:`~blendfx.audio_io.iter_audio_blocks` yields, decoded ahead on two
    threads (each with its own decoder, seeking to its block: WAV and FLAC seek to the exact
    sample) when the file is at the session rate; sequentially otherwise (a resampler carries
    state from block to block)."""
    from concurrent.futures import ThreadPoolExecutor

    from blendfx.audio_io import open_audio

    info = audio_info(path)
    if (Path(path).suffix.lower() not in (".wav", ".flac") or info.sample_rate != sample_rate
            or (os.cpu_count() or 1) < 2):
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


class _KeySource:
    """A generated track's input: its key track's rendered stem, in blocks."""

    def __init__(self, reader: _StemReader) -> None:
        self.reader = reader
        self.channels = reader.channels

    def blocks(self, total: int, block: int) -> Iterator[tuple[int, np.ndarray]]:
        for start, n in _block_starts(total, block):
            yield start, self.reader.read(start, n)


def _split_tail(chain: Any, sample_rate: float) -> tuple[Any, list[Any]] | None:
    """Split an offline chain into its head (up to its last offline effect, a Chain) and the
    streaming effects after it, as ``stage(block, reset) -> block`` callables (nested Chains
    flattened; pedalboard processes a stream in blocks with ``reset=False`` to the same samples
    as in one call). None when nothing streams after the last offline effect, or when a
    streaming effect there listens to a sidechain or is another container (they run whole)."""
    from blendfx.chain import Chain, _run_native
    from blendfx.effect import Effect, is_native_plugin

    if type(chain) is not Chain:
        return None
    items = chain.plugins
    last = max((i for i, p in enumerate(items) if not getattr(p, "supports_streaming", True)),
               default=None)
    if last is None or last == len(items) - 1:
        return None

    def flat(procs: list[Any]) -> Iterator[Any]:
        for p in procs:
            if type(p) is Chain:
                yield from flat(p.plugins)
            else:
                yield p

    tail = list(flat(items[last + 1:]))
    stages = []
    for p in tail:
        if is_native_plugin(p):
            stages.append(lambda b, reset, p=p: _run_native(p, b, sample_rate, 8192, reset))
        elif isinstance(p, Effect) and not getattr(p, "uses_sidechain", False) \
                and not hasattr(p, "plugins"):
            stages.append(lambda b, reset, p=p: p.process(b, sample_rate, 8192, reset))
        else:
            return None
    return Chain(items[:last + 1]), stages


def _pipeline(stages: list[Any], blocks: list[np.ndarray]) -> Iterator[np.ndarray]:
    """``stages[-1](...stages[0](block))`` for each block, in order, each stage on its own
    thread (stage ``i`` works on block ``k`` while stage ``i + 1`` works on block ``k - 1``);
    ``reset`` is true for the first block only. An error in a stage is raised here."""
    import queue

    links: list[Any] = [queue.Queue(maxsize=2) for _ in range(len(stages) + 1)]
    failed: list[BaseException] = []
    done = object()

    def run(i: int) -> None:
        first = True
        while (item := links[i].get()) is not done:
            try:
                if not failed:
                    item = stages[i](item, first)
            except BaseException as exc:  # handed to the consumer
                failed.append(exc)
            first = False
            links[i + 1].put(item)
        links[i + 1].put(done)

    def feed() -> None:
        for b in blocks:
            if failed:
                break
            links[0].put(b)
        links[0].put(done)

    threads = [threading.Thread(target=run, args=(i,), name=f"blendfx-stage-{i}", daemon=True)
               for i in range(len(stages))]
    threads.append(threading.Thread(target=feed, name="blendfx-feed", daemon=True))
    for th in threads:
        th.start()
    try:
        while (item := links[-1].get()) is not done:
            if failed:
                raise failed[0]
            yield item
        if failed:
            raise failed[0]
    finally:
        failed.append(GeneratorExit())  # stop the stages early if the consumer left
        while any(th.is_alive() for th in threads):  # drain so no stage blocks on a full queue
            with contextlib.suppress(queue.Empty):
                links[-1].get(timeout=0.05)
        for th in threads:
            th.join()


def _walk(proc: Any) -> Iterator[Any]:
    """Every processor inside ``proc`` (Chain/Mix children and effect-valued parameters)."""
    from blendfx.effect import Effect

    yield proc
    if isinstance(proc, Effect):
        for value in proc.param_values().values():
            if isinstance(value, Effect):
                yield from _walk(value)
    for child in getattr(proc, "plugins", []) if isinstance(proc, Effect) else []:
        yield from _walk(child)


def _sum(readers: list[_StemReader], start: int, n: int) -> np.ndarray:
    """The sum of stereo stems over ``[start, start + n)`` (zero outside them)."""
    out = np.zeros((2, n), np.float32)
    for r in readers:
        r.add_to(out, start)
    return out


def _gain_curve_db(curve: list[np.ndarray], gain_db: float) -> np.ndarray:
    """The master gain per 10 ms in dB: loudness gain plus the limiter's (linear) gains."""
    values = np.concatenate(curve) if curve else np.ones(0)
    with np.errstate(divide="ignore"):
        return (gain_db + 20.0 * np.log10(np.maximum(values, 1e-6))).astype(np.float32)


def _measure_and_write(writer: Any, item: tuple[Any, np.ndarray]) -> None:
    """Feed the mix block to the output loudness meter (if any), then write it (clipped: only
    float rounding can take it past full scale)."""
    meter, mix = item
    if meter is not None:
        meter.add(mix)
    np.clip(mix, -1.0, 1.0, out=mix)
    writer.write(mix)


def _write_stems(writers: list[Any], stems: list[np.ndarray]) -> None:
    """Write one block of every stem (each already clipped)."""
    for w, block in zip(writers, stems, strict=True):
        w.write(block)


class _Background:
    """Run ``fn(*args, item)`` for each submitted item, in order, on one thread (at most two
    items queued); leaving the ``with`` waits for the queue and re-raises the first error."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __enter__(self) -> Any:
        import queue

        self._queue: Any = queue.Queue(maxsize=2)
        self._error: BaseException | None = None

        def run() -> None:
            while (item := self._queue.get()) is not None:
                if self._error is None:
                    try:
                        self.fn(*self.args, item)
                    except BaseException as exc:  # handed to the submitting thread
                        self._error = exc

        self._thread = threading.Thread(target=run, name="blendfx-writer", daemon=True)
        self._thread.start()
        return self.submit

    def submit(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def __exit__(self, *exc: Any) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error


#: Niceness added to the threads of background tracks (Linux: per thread). A CPU-bound thread
#: at +10 gets about a tenth of a core that a thread at 0 also wants, so the background tracks
#: run mostly on what the generator leaves idle (its serial steps) instead of slowing it; they
#: still finish before the generator's last effects, so the mix's first pass can follow those
#: (see _PreMeasure). Measured on the benchmark session (2 cores): +3 slowed the Composer by
#: about 0.5 s more than +10; at +19 the background tracks finished after it.
_BACKGROUND_NICE = 10


def _lower_thread_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux only, where ``setpriority`` on a
    thread id affects just that thread; elsewhere it would address a process: do nothing)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                       min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
                           + _BACKGROUND_NICE))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist()) if value.size <= 64 else f"array{list(value.shape)}"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON: silence's -inf LUFS is written as null
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class _PreMeasure:
    """The mix's first pass (loudness and true peak of the sum), measured while the last track
    still streams out of its chain: every other audible stem is in the cache, this one's blocks
    arrive in order. Each block is summed exactly as :meth:`_Render.mix` would (the same block
    grid and context, the stems added in the same order), so the result is the same."""

    def __init__(self, render: _Render, name: str) -> None:
        self.names = [t.name for t in render.audible]
        self.index = self.names.index(name)
        self.readers = {t.name: _StemReader(render.entries[t.name] / "audio.wav")
                        for t in render.audible if t.name != name}
        self.total, self.c = render.total, _TP_CONTEXT
        self.grid = list(_block_starts(render.total, render.block))
        self.meter = LoudnessMeter(render.sr, 2, render.total)
        self.tp = 0.0
        self.parts: dict[int, np.ndarray] = {}  # this track's blocks by start, until used
        self.done = 0  # blocks of the grid measured
        self._measure = _Background(self.meter.add)
        self._submit = self._measure.__enter__()

    def add(self, start: int, block: np.ndarray) -> None:
        """The track's next post-fader block ``(2, n)`` at ``start``."""
        self.parts[start] = block
        end = start + block.shape[1]
        # a grid block is measured once the track's samples reach past it by the context
        while self.done < len(self.grid):
            s0, n = self.grid[self.done]
            if min(s0 + n + self.c, self.total) > end:
                break
            self._block(s0, n)
            self.done += 1

    def _track(self, out: np.ndarray, start: int) -> None:
        """``out += this track[start:start + width]`` (inside the track only), from its blocks."""
        for s0, part in list(self.parts.items()):
            a, b = max(start, s0), min(start + out.shape[1], s0 + part.shape[1])
            if a < b:
                out[:, a - start:b - start] += part[:, a - s0:b - s0]
            elif s0 + part.shape[1] <= start:
                del self.parts[s0]  # behind the grid: never needed again

    def _block(self, start: int, n: int) -> None:
        c = self.c
        mix = np.zeros((2, n + 2 * c), np.float32)
        for i, name in enumerate(self.names):  # in the mix's order (float sums)
            if i == self.index:
                self._track(mix, start - c)
            else:
                self.readers[name].add_to(mix, start - c)
        self._submit(mix[:, c:c + n])
        self.tp = true_peak_max(mix, c, at_least=self.tp)

    def finish(self) -> tuple[list[str], LoudnessMeter, float]:
        """Close; ``(audible track names, the meter, the true peak)`` once every block is in."""
        self.close()
        if self.done != len(self.grid):
            raise RuntimeError("the first mix pass did not get every block")  # (a bug)
        return self.names, self.meter, self.tp

    def close(self, error: BaseException | None = None) -> None:
        if self._submit is not None:
            self._submit = None
            self._measure.__exit__(type(error) if error else None, error, None)
        for r in self.readers.values():
            r.close()
        self.readers = {}


# -- the render --------------------------------------------------------------------------------
class _Render:
    def __init__(self, session: Session, out_dir: Path, *, device: str | None, progress: bool,
                 cache: bool, block_seconds: float, figure: bool, jobs: int,
                 batch_size: int | None = None, batch_tracks: bool = True) -> None:
        self.session, self.out_dir = session, Path(out_dir)
        self.sr = float(session.sample_rate)
        self.device, self.progress, self.figure = device, progress, figure
        self.block = max(4096, int(block_seconds * self.sr))
        self.block_seconds = block_seconds
        self.jobs = jobs
        self.batch_size, self.batch_tracks = batch_size, batch_tracks
        self.cache = RenderCache(self.out_dir, enabled=cache)
        self.entries: dict[str, Path] = {}
        self.keys: dict[str, str] = {}
        self.results: list[TrackResult] = []
        self.timings: dict[str, float] = {}
        self._figure: Any = None  # the report figure's Future, once started
        self._figure_s = 0.0
        self._cpu_start = time.process_time()
        self._premeasured: tuple[list[str], Any, float] | None = None  # see _PreMeasure

    # -- 1. checks ----------------------------------------------------------------------------
    def check(self) -> None:
        s = self.session
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise SessionError(f"output folder {self.out_dir} exists and is not a folder")
        self.audible = s.audible()
        if not self.audible:
            raise SessionError("every track is muted (or no soloed track is unmuted): "
                               "nothing to render")
        self.order = s.render_order(self.audible)
        self.sources: dict[str, _FileSource] = {}
        self.chains: dict[str, Any] = {}
        ends = []
        for t in self.order:
            if t.file is not None:
                try:
                    info = audio_info(t.file)
                    if info.frames <= 0:
                        raise AudioFileError(f"{t.file} holds no audio")
                except AudioFileError as exc:
                    raise AudioFileError(f"{t.where}.file: {exc}") from None
                if not s.resample and info.sample_rate != self.sr:
                    raise SessionError(
                        f"{t.where}.file {t.file.name} is at {info.sample_rate:g} Hz but the "
                        f"session is at {self.sr:g} Hz (resample = false in [session]; set it "
                        f"to true to resample stems)")
                if t.source_offset >= info.duration:
                    raise SessionError(f"{t.where}.source_offset = {t.source_offset:g} s is past "
                                       f"the end of {t.file.name} ({info.duration:.3f} s)")
                src = _FileSource(t, self.sr, self.block_seconds)
                self.sources[t.name] = src
                ends.append(src.end)
            chain = t.build_chain()
            if chain is not None and self.device is not None:
                chain.device = self.device  # "cpu" is set without importing torch
            self.chains[t.name] = chain
        total = int(round(s.length * self.sr)) if s.length is not None else max(ends, default=0)
        if total < 64:
            raise SessionError("the session is shorter than 64 samples: nothing to render")
        self.total = total

    # -- 2. tracks ----------------------------------------------------------------------------
    def track_spec(self, t: Track) -> dict[str, Any]:
        from blendfx.presets import processor_to_dict

        chain = self.chains[t.name]
        try:
            chain_desc: Any = processor_to_dict(chain) if chain is not None else None
        except BlendfxError:
            chain_desc = {"generator": t.generator, "chain": t.chain}
        spec: dict[str, Any] = {
            "sr": self.sr, "total": self.total, "gain_db": t.gain_db, "pan": t.pan,
            "chain": chain_desc,
            "keys": {sig: self.keys[name] for sig, name in sorted(t.sidechain.items())},
            "input": self.keys[t.key] if t.file is None and t.key else None,
            "streaming_block": self.block if self._streams(t) else None,
        }
        if t.file is not None:
            spec["file"] = file_digest(t.file, self.cache.hashes)
            spec["place"] = [t.offset, t.source_offset, t.duration, t.fade_in, t.fade_out]
        return spec

    def _streams(self, t: Track) -> bool:
        chain = self.chains[t.name]
        return chain is None or bool(getattr(chain, "supports_streaming", False))

    def render_tracks(self) -> None:
        """Render every track not in the cache, up to ``jobs`` at a time, keys before the
        tracks they key (pedalboard and numpy release the GIL, so threads overlap)."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        from tqdm import tqdm

        audible = {t.name for t in self.audible}
        pending = list(self.order)
        results: dict[str, TrackResult] = {}
        running: dict[Any, tuple[Track, str, float]] = {}
        bar = tqdm(total=0, unit="s", desc="tracks", disable=not self.progress, leave=False,
                   file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                               "{n:.0f}/{total:.0f} s [{elapsed}<{remaining}]")

        def finish(t: Track, key: str, cached: bool, t0: float) -> None:
            entry = self.cache.tracks / key
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            self.entries[t.name] = entry
            results[t.name] = TrackResult(
                name=t.name, role=t.role, key=key, cached=cached,
                seconds=round(time.perf_counter() - t0, 4), streamed=meta["streamed"],
                peak_dbfs=meta["peak_dbfs"], rms_dbfs=meta["rms_dbfs"],
                audible=t.name in audible, reports=meta.get("reports", []))

        def build(t: Track, key: str) -> None:
            with self.cache.build(key) as scratch:
                self._render_track(t, scratch, bar)

        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="blendfx-track")
        # Tracks off the critical path (see _background_tracks) run on threads of lower
        # priority: they take what the offline tracks leave of the cores (their serial steps)
        # instead of slowing them down, so the render ends sooner.
        background = self._background_tracks() if self.jobs > 1 else set()
        side = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="blendfx-track-bg",
                                  initializer=_lower_thread_priority) if background else pool
        # the stems' content hashes (for the cache keys) are computed side by side up front
        digests = [pool.submit(file_digest, t.file, self.cache.hashes)
                   for t in pending if t.file is not None]
        for future in digests:
            future.result()
        # Tracks whose chain starts with a diffusion generator wait in `held` until no other
        # such track can still join them; then all their windows go through the model together
        # (generate_batched) and each track renders as usual on its primed generator.
        held: list[tuple[Track, str, float]] = []
        batching = self.batch_tracks and any(self._site(t) is not None for t in pending)
        try:
            while pending or running or held:
                for t in [t for t in pending if all(d in self.entries
                                                    for d in t.dependencies())]:
                    pending.remove(t)
                    t0 = time.perf_counter()
                    key = RenderCache.key(self.track_spec(t))  # needs its keys' keys: done
                    self.keys[t.name] = key
                    if self.cache.lookup(key) is not None:
                        finish(t, key, True, t0)
                        continue
                    bar.total += round(self.total / self.sr, 1)
                    bar.refresh()
                    if batching and self._site(t) is not None:
                        held.append((t, key, t0))
                    else:
                        runner = side if t.name in background else pool
                        running[runner.submit(build, t, key)] = (t, key, t0)
                if held and (not running or not any(self._site(t) is not None for t in pending)):
                    self._generate_held([t for t, _, _ in held])
                    for t, key, t0 in held:
                        running[pool.submit(build, t, key)] = (t, key, t0)
                    held = []
                if not running:
                    continue  # cached tracks may have unblocked others
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    t, key, t0 = running.pop(future)
                    future.result()  # re-raises the track's error
                    finish(t, key, False, t0)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            side.shutdown(wait=True, cancel_futures=True)
            bar.close()
        self.results = [results[t.name] for t in self.order]

    def _background_tracks(self) -> set[str]:
        """Tracks that can wait: when the session has offline tracks (generators, whole-track
        effects: the long ones), the streaming tracks that none of them needs, directly or
        through other tracks. Empty when every track streams."""
        by_name = {t.name: t for t in self.order}
        critical: set[str] = set()
        todo = [t.name for t in self.order if not self._streams(t)]
        while todo:
            name = todo.pop()
            if name not in critical:
                critical.add(name)
                todo.extend(d for d in by_name[name].dependencies() if d in by_name)
        if not critical:
            return set()
        return {t.name for t in self.order} - critical

    # -- batching generator work across tracks ------------------------------------------------
    def _site(self, t: Track) -> Any:
        """The diffusion generator that receives this track's input first, if any: the
        chain's first effect, or the ``generator`` of a first effect that has one (a Blend
        hands its input to its generator). None for streaming chains."""
        from blendfx.chain import Chain

        # (no import here: it would pull in torch; without the module there is no generator)
        module = sys.modules.get("blendfx.diffusion_effect")
        chain = self.chains[t.name]
        if module is None or chain is None or self._streams(t):
            return None
        DiffusionGenerator = module.DiffusionGenerator  # noqa: N806 - a class
        first = chain
        while isinstance(first, Chain):  # (a preset's chain may sit inside the track's)
            first = (first.plugins or [None])[0]
        if isinstance(first, DiffusionGenerator):
            return first
        inner = first.param_values().get("generator") if hasattr(first, "param_values") else None
        return inner if isinstance(inner, DiffusionGenerator) else None

    def _generate_held(self, tracks: list[Track]) -> None:
        """Run the held tracks' generators as one batched job and prime each with its music.

        A primed generator returns its music when the track's chain hands it exactly the same
        input; any other input (an effect in front that changes it) just generates again.
        """
        from blendfx.diffusion_effect import generate_batched

        items = []
        for t in tracks:
            self._follow_quiet(t)
            items.append((self._site(t), self._offline_input(t)))
        music = generate_batched(items, self.sr, batch_size=self.batch_size)
        for (gen, x), y in zip(items, music, strict=True):
            gen.prime(x, self.sr, y)

    def _offline_input(self, t: Track) -> np.ndarray:
        """A track's whole input on the session timeline: its placed file or its key's stem."""
        if t.file is not None:
            source: Any = self.sources[t.name]
            return np.concatenate([b for _, b in source.blocks(self.total, self.block)], axis=1)
        reader = _StemReader(self.entries[t.key] / "audio.wav")
        try:
            return reader.read(0, self.total)
        finally:
            reader.close()

    def _follow_quiet(self, t: Track) -> None:
        """Effects with their own progress bars follow --quiet (set after the cache key, which
        must not depend on it)."""
        chain = self.chains[t.name]
        for proc in _walk(chain) if chain is not None else []:
            if "progress" in getattr(proc, "params", dict)():
                proc.progress = self.progress

    def _render_track(self, t: Track, scratch: Path, bar: Any) -> dict[str, Any]:
        chain = self.chains[t.name]
        streams = self._streams(t)
        self._follow_quiet(t)
        readers: list[_StemReader] = []
        try:
            source: Any = None
            if not streams:
                pass  # the whole input is read below
            elif t.file is not None:
                source = self.sources[t.name]
            else:
                readers.append(_StemReader(self.entries[t.key] / "audio.wav"))
                source = _KeySource(readers[-1])
            keys: dict[str, _StemReader] = {}
            for sig, name in t.sidechain.items():
                readers.append(_StemReader(self.entries[name] / "audio.wav"))
                keys[sig] = readers[-1]
            peak, energy = 0.0, 0.0
            reports: list[dict[str, Any]] = []
            with audio_writer(scratch / "audio.wav", self.sr, 2, bit_depth=32) as w:
                if streams:
                    for i, (start, x) in enumerate(source.blocks(self.total, self.block)):
                        n = x.shape[1]
                        if chain is not None:
                            sc = {s: r.read(start, n) for s, r in keys.items()} or None
                            x = fit_length(chain.process(x, self.sr, reset=(i == 0),
                                                         sidechain=sc), n)
                        y = _fader(x, t.gain_db, t.pan)
                        energy += float(np.square(y, dtype=np.float64).sum())
                        peak = max(peak, float(np.abs(y).max()))
                        w.write(y)
                        bar.update(round(n / self.sr, 1))
                else:
                    x = self._offline_input(t)
                    sc = {s: r.read(0, self.total) for s, r in keys.items()} or None
                    split = _split_tail(chain, self.sr)
                    if split is None:
                        y = fit_length(chain.process(x, self.sr, sidechain=sc), self.total)
                    else:
                        head, stages = split
                        y = head.process(x, self.sr, sidechain=sc)
                    if split is None or y.shape[1] != self.total:
                        for stage in (split[1] if split is not None else []):
                            y = stage(y, True)
                        y = fit_length(y, self.total)
                        reports = self._effect_reports(chain, x, y, scratch)
                        y = _fader(y, t.gain_db, t.pan)
                        energy = float(np.square(y, dtype=np.float64).sum())
                        peak = float(np.abs(y).max())
                        w.write(y)
                    else:
                        # the streaming effects after the offline ones run block by block, each
                        # on its own thread (a pipeline: the same samples as one call on the
                        # whole track)
                        out, energy, peak = self._stream_tail(t, y, stages, w)
                        del y
                        reports = self._effect_reports(chain, x, out, scratch)
                    bar.update(round(self.total / self.sr, 1))
        finally:
            for r in readers:
                r.close()
        meta = {"name": t.name, "streamed": streams, "peak_dbfs": db(peak),
                "rms_dbfs": db(math.sqrt(energy / (2 * self.total))), "reports": reports,
                "samples": self.total}
        (scratch / "meta.json").write_text(json.dumps(_jsonable(meta)), encoding="utf-8")
        return json.loads((scratch / "meta.json").read_text(encoding="utf-8"))

    def _stream_tail(self, t: Track, y: np.ndarray, stages: list[Any], w: Any
                     ) -> tuple[np.ndarray, float, float]:
        """Run ``stages`` (see :func:`_split_tail`) over the head's output ``y`` block by block
        on a pipeline of threads, each block through the fader into the writer ``w``; returns
        the chain's output (for the effects' reports), the stem's energy and its peak. When
        every other audible track is already rendered, the mix's first pass follows the blocks
        (:class:`_PreMeasure`); when the others finish while this one streams, it starts then,
        catching up on the blocks written so far (the fader applied again to the kept output:
        the same blocks)."""
        audible = [a.name for a in self.audible]
        others = [a for a in audible if a != t.name]
        pending = t.name in audible  # the early first pass is still possible
        pre: _PreMeasure | None = None
        grid = list(_block_starts(self.total, self.block))
        out: np.ndarray | None = None
        energy, peak = 0.0, 0.0
        try:
            for k, ((s0, n), z) in enumerate(zip(
                    grid, _pipeline(stages, [y[:, a:a + m] for a, m in grid]), strict=True)):
                if out is None:  # (the effects may change the channel count)
                    out = np.empty((z.shape[0], self.total), np.float32)
                if z.shape[1] != n:  # (a block of another length: no early first pass)
                    pending = False
                    if pre is not None:
                        pre.close()
                        pre = None
                out[:, s0:s0 + n] = fit_length(z, n)
                z = _fader(z, t.gain_db, t.pan)
                energy += float(np.square(z, dtype=np.float64).sum())
                peak = max(peak, float(np.abs(z).max()))
                w.write(z)
                if pre is None and pending and all(a in self.entries for a in others):
                    pre, pending = _PreMeasure(self, t.name), False
                    for a, m in grid[:k]:
                        pre.add(a, _fader(out[:, a:a + m], t.gain_db, t.pan))
                if pre is not None:
                    pre.add(s0, z)
        except BaseException as exc:
            if pre is not None:
                pre.close(exc)
            raise
        if pre is not None:
            self._premeasured = pre.finish()
        assert out is not None  # (a track has at least one block)
        return out, energy, peak

    def _effect_reports(self, chain: Any, noise: np.ndarray, output: np.ndarray,
                        scratch: Path) -> list[dict[str, Any]]:
        """What the chain's reporting effects did: ``last_report`` dicts (Blend, Stylizer) and
        gain curves (``last_gains_db``, the AdaptiveAmplifier's ``gains_db``), with the figure
        data of the first that made or shaped music (saved beside the cached audio, so a cached
        track keeps its figure). ``noise`` is the track's input, ``output`` its chain's output.
        """
        out = []
        for proc in _walk(chain):
            report = getattr(proc, "last_report", None)
            gains = getattr(proc, "last_gains_db", None)
            if gains is None and isinstance(getattr(proc, "gains_db", None), np.ndarray):
                gains = proc.gains_db
            if not isinstance(report, dict) and gains is None:
                continue
            info: dict[str, Any] = {"effect": type(proc).__name__,
                                    **(_jsonable(report) if isinstance(report, dict) else {})}
            for name in ("gain_db", "objective"):  # the amplifier's summary numbers
                value = getattr(proc, name, None)
                if isinstance(value, float | int | np.floating) and name not in proc.params():
                    info[name] = float(value)
            if gains is not None and np.size(gains):
                g = np.asarray(gains, dtype=np.float64).ravel()
                g = g[np.isfinite(g)]
                if g.size:
                    info["gain_curve_db"] = {"mean": float(g.mean()), "min": float(g.min()),
                                             "max": float(g.max())}
            music = getattr(proc, "last_music", None)
            if music is None and gains is not None:
                music = output  # an amplifier: its output is the music it shaped
            if self.figure and music is not None and not any(o.get("figure") for o in out):
                from .report import save_blend_figure_data

                save_blend_figure_data(scratch / "figure.npz", noise, self.sr,
                                       getattr(proc, "last_mask", None), music, gains)
                info["figure"] = True
            out.append(info)
        return out

    # -- 3. mix -------------------------------------------------------------------------------
    def mix(self, staging: Path) -> dict[str, Any]:
        from tqdm import tqdm

        m = self.session.master
        audible = list(self.audible)
        readers = [_StemReader(self.entries[t.name] / "audio.wav") for t in audible]
        try:
            pre = LoudnessMeter(self.sr, 2, self.total)
            tp_pre, c = 0.0, _TP_CONTEXT
            blocks = list(_block_starts(self.total, self.block))
            pre_done = self._premeasured
            if pre_done is not None and pre_done[0] == [t.name for t in audible]:
                blocks_to_measure: list[tuple[int, int]] = []  # measured with the last track
                pre, tp_pre = pre_done[1], pre_done[2]
            else:
                blocks_to_measure = blocks
            peaks = [0.0]  # the largest true peak found so far: a bound for the pruning

            def measure_block(start: int, n: int) -> tuple[np.ndarray, float]:
                mix = _sum(readers, start - c, n + 2 * c)
                # (a stretch that cannot beat the bound is skipped: the maximum is the same
                # whichever bound the block saw)
                return mix, true_peak_max(mix, c, at_least=peaks[0])

            # K-weighting (which releases the GIL) runs on a thread beside the true peak of
            # two blocks at a time; the meter gets the blocks in order
            from concurrent.futures import ThreadPoolExecutor

            with _Background(lambda block: pre.add(block)) as measure, ThreadPoolExecutor(
                    max_workers=2 if (os.cpu_count() or 1) > 1 else 1,
                    thread_name_prefix="blendfx-measure") as workers:
                todo = blocks_to_measure
                futures = [workers.submit(measure_block, start, n) for start, n in todo[:2]]
                for i, (_, n) in enumerate(tqdm(todo, desc="measure mix", leave=False,
                                                disable=not self.progress, file=sys.stderr)):
                    mix, tp = futures[i].result()
                    futures[i] = None  # (its block is freed once measured)
                    if i + 2 < len(todo):
                        futures.append(workers.submit(measure_block, *todo[i + 2]))
                    measure(mix[:, c:c + n])
                    peaks[0] = tp_pre = max(tp_pre, tp)
            lufs_pre = pre.integrated()
            gain_db = 0.0
            if m.target_lufs is not None and math.isfinite(lufs_pre):
                gain_db = m.target_lufs - lufs_pre
            g = 10.0 ** (gain_db / 20.0)
            ceiling = 10.0 ** (m.true_peak_dbtp / 20.0)
            aim = 10.0 ** ((m.true_peak_dbtp - _SAFETY_DB) / 20.0)
            limiting = tp_pre * g > aim
            # stems: the master gain, trimmed together if any would clip
            stem_peak = max((10.0 ** (r.peak_dbfs / 20.0) for r in self.results
                             if r.audible and math.isfinite(r.peak_dbfs)), default=0.0)
            stem_gain = g * min(1.0, ceiling / (stem_peak * g)) if stem_peak * g > ceiling else g

            used: set[str] = set()
            names = {t.name: stem_filename(t.name, used) + m.suffix for t in audible}
            (staging / "stems").mkdir()
            # Without the limiter the output is the pre-master mix times g: its loudness and
            # true peak follow exactly, with no second measurement.
            post = LoudnessMeter(self.sr, 2, self.total) if limiting else None
            tp_out, reduction = (0.0 if limiting else tp_pre * g), 0.0
            gain_curve: list[np.ndarray] = []
            hop = int(round(self.sr / 100))  # the report's gain curve: one value per 10 ms
            ctx = limiter_context(self.sr) + c if limiting else c
            fig_len = min(self.total, int(FIGURE_SECONDS * self.sr)) if self.figure else 0
            fig_mix: list[np.ndarray] = []
            with contextlib.ExitStack() as stack:
                files = [staging / f"mix{m.suffix}"] + [staging / "stems" / names[t.name]
                                                        for t in audible]
                writers = [stack.enter_context(audio_writer(f, self.sr, 2, bit_depth=m.bit_depth))
                           for f in files]
                # the files are written by two threads (pedalboard releases the GIL while it
                # encodes; the output meter's K-filter too): the mix (and its meter) on one,
                # the stems on the other, while the next block is computed
                write_mix = stack.enter_context(_Background(_measure_and_write, writers[0]))
                write_stems = stack.enter_context(_Background(_write_stems, writers[1:]))
                def master_block(start: int, n: int) -> tuple[Any, ...]:
                    """One block of the mastered mix and of the stems: independent of the
                    other blocks (the limiter reads ``ctx`` samples of context either side)."""
                    parts = [r.read(start - ctx, n + 2 * ctx) for r in readers]
                    mix = parts[0].copy()
                    for p in parts[1:]:
                        mix += p
                    mix *= np.float32(g)
                    wide = mix[:, ctx - c:ctx + n + c]
                    frames = n // hop * hop
                    if limiting:
                        gl, peak = limit(mix, aim, self.sr, ctx - c, c)  # gains of `wide`
                        wide = wide * gl[None, :]
                        core_gain = gl[c:c + n]
                        cut = -db(float(core_gain.min()))
                        curve = core_gain[:frames].reshape(-1, hop).min(axis=1)
                    else:
                        peak, cut, curve = 0.0, 0.0, np.ones(frames // hop, np.float32)
                    out = np.ascontiguousarray(wide[:, c:c + n])
                    stems = [p[:, ctx:ctx + n] * np.float32(stem_gain) for p in parts]
                    for stem in stems:
                        np.clip(stem, -1.0, 1.0, out=stem)
                    return out, stems, peak, cut, curve

                # blocks are mastered two at a time (numpy, scipy and the reads release the
                # GIL) and handed to the writers in order
                from concurrent.futures import ThreadPoolExecutor

                workers = stack.enter_context(ThreadPoolExecutor(
                    max_workers=2 if (os.cpu_count() or 1) > 1 else 1,
                    thread_name_prefix="blendfx-master"))
                queue: list[tuple[int, int, Any]] = []
                todo = iter(blocks)
                for start, n in tqdm(blocks, desc="write mix", disable=not self.progress,
                                     leave=False, file=sys.stderr):
                    while len(queue) < 3 and (nxt := next(todo, None)) is not None:
                        queue.append((*nxt, workers.submit(master_block, *nxt)))
                    _, _, future = queue.pop(0)
                    out, stems, peak, cut, curve = future.result()
                    tp_out, reduction = max(tp_out, peak), max(reduction, cut)
                    gain_curve.append(curve)
                    write_mix((post, out))  # measured (unclipped: it never clips), written
                    write_stems(stems)
                    if start < fig_len:
                        fig_mix.append(out[:, :fig_len - start].copy())
                        if start + n >= fig_len:  # the figure has all it shows: draw it now
                            self._start_figure(staging, names, np.concatenate(fig_mix, axis=1),
                                               _gain_curve_db(gain_curve, gain_db))
                            fig_mix = []
        finally:
            for r in readers:
                r.close()
        np.save(staging / "master_gain_db.npy", _gain_curve_db(gain_curve, gain_db))
        return {
            "target_lufs": m.target_lufs, "true_peak_ceiling_dbtp": m.true_peak_dbtp,
            "format": m.format, "bit_depth": m.bit_depth,
            "pre_master_lufs": lufs_pre, "pre_master_true_peak_dbtp": db(tp_pre),
            "master_gain_db": gain_db, "limiter_engaged": limiting,
            "limiter_max_reduction_db": reduction,
            "output_lufs": post.integrated() if post else pre.integrated(gain_db),
            "output_true_peak_dbtp": db(tp_out),
            "stems_gain_db": db(stem_gain), "stem_files": names,
        }

    # -- 4. report and hand-over ------------------------------------------------------------
    def _start_figure(self, staging: Path, names: dict[str, str], mix: np.ndarray | None,
                      master_db: np.ndarray | None) -> None:
        """Draw report.png in a thread (it overlaps the rest of the mix's writing)."""
        from concurrent.futures import ThreadPoolExecutor

        from . import report as report_mod

        def draw() -> None:
            t0 = time.perf_counter()
            report_mod.write_report_png(staging / "report.png", self, staging, names, mix=mix,
                                        master_db=master_db)
            self._figure_s = round(time.perf_counter() - t0, 4)

        pool = ThreadPoolExecutor(1, thread_name_prefix="blendfx-figure")
        self._figure = pool.submit(draw)
        pool.shutdown(wait=False)

    def finish(self, staging: Path, master: dict[str, Any], t_start: float) -> RenderResult:
        names = master.pop("stem_files")
        png = None
        if self.figure:
            png = staging / "report.png"
            if self._figure is None:  # (started by the mix once it had the figure's minute)
                self._start_figure(staging, names, None, None)
            self._figure.result()  # re-raises the figure's error
            self.timings["report_s"] = self._figure_s
        self.timings["total_s"] = round(time.perf_counter() - t_start, 4)
        # CPU seconds of the whole process (all threads): on a shared machine the wall clock
        # measures the neighbours as much as the render
        self.timings["cpu_s"] = round(time.process_time() - self._cpu_start, 4)
        self.timings["load_average"] = [round(x, 2) for x in os.getloadavg()] \
            if hasattr(os, "getloadavg") else None
        s = self.session
        duration = self.total / self.sr
        report = {
            "blendfx_version": _version(),
            "session": str(s.path) if s.path else s.name,
            "name": s.name,
            "sample_rate": self.sr,
            "duration_s": duration,
            "tempo_bpm": s.tempo.bpm_at(0.0),
            "master": master,
            "tracks": [{
                "name": r.name, "role": r.role, "audible": r.audible,
                "stem": f"stems/{names[r.name]}" if r.name in names else None,
                "cached": r.cached, "streamed": r.streamed, "render_s": r.seconds,
                "peak_dbfs": r.peak_dbfs, "rms_dbfs": r.rms_dbfs, "cache_key": r.key,
                "reports": r.reports,
                "unmasked_fraction": next((b.get("unmasked_fraction") for b in r.reports
                                           if "unmasked_fraction" in b), None),
            } for r in self.results],
            "timings": {**self.timings,
                        "realtime_factor": duration / max(self.timings["total_s"], 1e-9)},
            "outputs": {"mix": f"mix{s.master.suffix}",
                        "stems": {n: f"stems/{f}" for n, f in names.items()},
                        "report_png": "report.png" if png else None},
        }
        (staging / "report.json").write_text(json.dumps(_jsonable(report), indent=2) + "\n",
                                             encoding="utf-8")
        return self._publish(staging, report, names, png is not None)

    def _publish(self, staging: Path, report: dict[str, Any], names: dict[str, str],
                 png: bool) -> RenderResult:
        """Move the finished outputs into the output folder; report.json last."""
        out = self.out_dir
        old = _previous_outputs(out)
        (out / "stems").mkdir(exist_ok=True)
        stems = {}
        for name, fname in names.items():
            os.replace(staging / "stems" / fname, out / "stems" / fname)
            stems[name] = out / "stems" / fname
        for rel in old - {f"stems/{f}" for f in names.values()} - {report["outputs"]["mix"]}:
            with contextlib.suppress(OSError):
                (out / rel).unlink()  # stems of tracks that no longer exist
        mix = out / report["outputs"]["mix"]
        os.replace(staging / mix.name, mix)
        if png:
            os.replace(staging / "report.png", out / "report.png")
        os.replace(staging / "report.json", out / "report.json")
        shutil.rmtree(staging, ignore_errors=True)
        return RenderResult(out, mix, stems, out / "report.json", out / "report.png" if png else None,
                            report, self.results)


def _version() -> str:
    import blendfx

    return blendfx.__version__


def _previous_outputs(out: Path) -> set[str]:
    """Files the previous render listed in its report.json (so stale stems can be removed)."""
    try:
        prev = json.loads((out / "report.json").read_text(encoding="utf-8"))["outputs"]
        files = {prev["mix"], *prev["stems"].values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
    return {f for f in files if isinstance(f, str) and ".." not in f and not f.startswith("/")}


def render_session(session: Session | str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                   device: str | None = None, seed: int | None = None, progress: bool = True,
                   cache: bool = True, block_seconds: float = 10.0, figure: bool = True,
                   jobs: int | None = None, batch_size: int | None = None,
                   batch_tracks: bool | None = None) -> RenderResult:
    """Render a session to ``out_dir``: ``mix.wav`` (or .flac), ``stems/``, ``report.json`` and
    ``report.png``.

    Parameters
    ----------
    session : Session or path
        A loaded session or its manifest file.
    out_dir : str or Path
        Output folder (created). Its ``.blendfx-cache`` keeps rendered tracks for the next run.
    device : str, optional
        Torch device for the effects ('auto', 'cpu', 'cuda:0'); None keeps each effect's own.
    seed : int, optional
        Seed every effect of every chain (overrides ``[session] seed``).
    progress : bool
        Show tqdm progress bars on stderr.
    cache : bool
        Reuse tracks rendered by an earlier run whose inputs did not change.
    block_seconds : float
        Block length for streaming tracks and the mix, in seconds.
    figure : bool
        Write report.png.
    jobs : int, optional
        Tracks rendered at the same time (threads); default: the CPU count, at most 4.
    batch_size : int, optional
        Windows per model call when the diffusion generators of several tracks are batched
        together (overrides ``[render] batch_size``; default: the generators' own).
    batch_tracks : bool, optional
        Batch the windows of diffusion generators across tracks (tracks whose chains start
        with one, or with a Blend around one, sharing a model and compatible settings: see
        :func:`blendfx.diffusion_effect.generate_batched`). Overrides ``[render]
        batch_tracks`` (default true). The results do not depend on it (per-window seeds).

    Returns
    -------
    RenderResult

    Raises
    ------
    BlendfxError
        Bad input (a missing or corrupt stem, a bad parameter, a key cycle...): raised before
        anything is written.
    """
    from blendfx.session import load_session

    t_start, cpu_start = time.perf_counter(), time.process_time()
    if not isinstance(session, Session):
        session = load_session(session)
    if seed is not None:
        session.reseed(seed)
    if not block_seconds > 0:
        raise SessionError(f"block_seconds must be > 0 s, got {block_seconds!r}")
    if jobs is None:
        jobs = min(os.cpu_count() or 1, 4)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SessionError(f"jobs must be a positive number of tracks, got {jobs!r}")
    if batch_size is None:
        batch_size = session.batch_size
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise SessionError(f"batch_size must be a positive number of windows, got {batch_size!r}")
    r = _Render(session, Path(out_dir), device=device, progress=progress, cache=cache,
                block_seconds=block_seconds, figure=figure, jobs=jobs, batch_size=batch_size,
                batch_tracks=session.batch_tracks if batch_tracks is None else bool(batch_tracks))
    r._cpu_start = cpu_start
    r.check()
    r.out_dir.mkdir(parents=True, exist_ok=True)
    ok = False
    with contextlib.ExitStack() as stack:
        stack.enter_context(r.cache)
        # tracks, strips and mix blocks run on the renderer's threads: BLAS's own pool would
        # oversubscribe the cores (and spin): 16.8 -> 14.4 CPU-s on the benchmark session
        stack.enter_context(one_blas_thread())
        t0 = time.perf_counter()
        r.render_tracks()
        r.timings["tracks_s"] = round(time.perf_counter() - t0, 4)
        r.timings["tracks_cpu_s"] = round(time.process_time() - cpu_start, 4)
        staging = r.cache.staging()
        t0 = time.perf_counter()
        try:
            master = r.mix(staging)
            r.timings["mix_s"] = round(time.perf_counter() - t0, 4)
            result = r.finish(staging, master, t_start)
        finally:
            if r._figure is not None:  # never leave the figure writing into a removed folder
                with contextlib.suppress(BaseException):
                    r._figure.result()
        ok = True
    assert ok
    return result
