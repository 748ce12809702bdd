"""The mix stage of a render: the cached stems summed, measured, mastered and written.

Pass 1 measures the integrated loudness and true peak of the sum (:meth:`MixStage.mix`, or
:class:`PreMeasure` while the last track still streams out of its chain); pass 2 applies the
master gain and the true-peak limiter and writes the mix and the stems (the stems with the
master gain and a common trim, without the limiter), two blocks at a time, on writer threads.
"""

from __future__ import annotations

import contextlib
import math
import queue
import re
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from blendfx.audio_io import audio_writer
from blendfx.dsp.loudness import LoudnessMeter
from blendfx.progress import progress_bar
from blendfx.threads import cores, thread_pool

from .mastering import db, limit, limiter_context, true_peak_max
from .report import FIGURE_SECONDS
from .results import TrackResult
from .session import Session, Track
from .sources import block_starts, open_stem

__all__ = ["MixStage", "PreMeasure", "stem_filename"]

_TP_CONTEXT = 32  # samples of context for true-peak measurement at block edges
_SAFETY_DB = 0.1  # the limiter aims this far under the ceiling (interpolation, rounding)


def stem_filename(name: str, used: set[str]) -> str:
    """A file-system-safe stem name for a track (unique within ``used``)."""
    base = re.sub(r"[^\w.-]+", "_", name).strip("._") or "track"
    out, k = base, 2
    while out.lower() in used:
        out, k = f"{base}_{k}", k + 1
    used.add(out.lower())
    return out


def _sum(readers: list[Any], start: int, n: int) -> np.ndarray:
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
    items queued); leaving the ``with`` waits for the queue and re-raises the first error.
    Held to one core (:func:`~blendfx.threads.cores`), each item runs when submitted."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __enter__(self) -> Any:
        if cores() < 2:
            self._thread = None
            return lambda item: self.fn(*self.args, item)
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
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error


class PreMeasure:
    """The mix's first pass (loudness and true peak of the sum), measured while the last track
    still streams out of its chain: every other audible stem is in the cache, this one's blocks
    arrive in order. Each block is summed exactly as :meth:`MixStage.mix` would (the same block
    grid and context, the stems added in the same order), so the result is the same."""

    def __init__(self, render: MixStage, name: str) -> None:
        self.names = [t.name for t in render.audible]
        self.index = self.names.index(name)
        self.readers = {t.name: open_stem(render.cache, render.entries[t.name])
                        for t in render.audible if t.name != name}
        self.total, self.c = render.total, _TP_CONTEXT
        self.grid = list(block_starts(render.total, render.block))
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


class MixStage:
    """Step 3 of a render: the mastered mix and the stems, written into the staging folder.

    A mixin of the renderer's ``_Render``, which sets up the state below and provides
    ``start_figure`` (report.png, started once the mix has written the figure's minute).
    """

    session: Session
    sr: float
    total: int
    block: int
    progress: bool
    figure: bool
    stems: bool
    audible: list[Track]
    entries: dict[str, Path]
    cache: Any
    results: list[TrackResult]
    premeasured: tuple[list[str], Any, float] | None
    figure_numbers: dict[str, Any]

    def mix(self, staging: Path) -> dict[str, Any]:
        m = self.session.master
        audible = list(self.audible)
        readers = [open_stem(self.cache, self.entries[t.name]) for t in audible]
        try:
            pre = LoudnessMeter(self.sr, 2, self.total)
            tp_pre, c = 0.0, _TP_CONTEXT
            blocks = list(block_starts(self.total, self.block))
            pre_done = self.premeasured
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
            with _Background(lambda block: pre.add(block)) as measure, thread_pool(
                    2, "blendfx-measure") as workers:
                todo = blocks_to_measure
                futures = [workers.submit(measure_block, start, n) for start, n in todo[:2]]
                for i, (_, n) in enumerate(progress_bar(todo, desc="measure mix", leave=False,
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
            trim_db = 0.0
            if not m.limiter and tp_pre * g > aim:  # one gain for everything: nothing reshaped
                trim_db = db(aim / (tp_pre * g))
                gain_db += trim_db
                g = 10.0 ** (gain_db / 20.0)
            limiting = m.limiter and tp_pre * g > aim
            self.figure_numbers = {"target_lufs": m.target_lufs, "pre_master_lufs": lufs_pre,
                                   "true_peak_dbtp": m.true_peak_dbtp, "master_gain_db": gain_db,
                                   "limiter": limiting}
            # stems: the master gain, trimmed together if any would clip
            mixed = {t.name for t in audible}  # (tracks routed to a bus have no stem here)
            stem_peak = max((10.0 ** (r.peak_dbfs / 20.0) for r in self.results
                             if r.name in mixed and math.isfinite(r.peak_dbfs)), default=0.0)
            stem_gain = g * min(1.0, ceiling / (stem_peak * g)) if stem_peak * g > ceiling else g

            used: set[str] = set()
            names = {t.name: stem_filename(t.name, used) + m.suffix for t in audible} \
                if self.stems else {}
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
                                                        for t in audible if t.name in names]
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
                    stems = [p[:, ctx:ctx + n] * np.float32(stem_gain) for p in parts] \
                        if self.stems else []
                    for stem in stems:
                        np.clip(stem, -1.0, 1.0, out=stem)
                    return out, stems, peak, cut, curve

                # blocks are mastered two at a time (numpy, scipy and the reads release the
                # GIL) and handed to the writers in order
                workers = stack.enter_context(thread_pool(2, "blendfx-master"))
                queue: list[tuple[int, int, Any]] = []
                todo = iter(blocks)
                for start, n in progress_bar(blocks, desc="write mix", disable=not self.progress,
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
                            self.start_figure(staging, names, np.concatenate(fig_mix, axis=1),
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
            "master_gain_db": gain_db, "limiter": m.limiter, "limiter_engaged": limiting,
            "ceiling_trim_db": trim_db,
            "limiter_max_reduction_db": reduction,
            "output_lufs": post.integrated() if post else pre.integrated(gain_db),
            "output_true_peak_dbtp": db(tp_out),
            "stems_gain_db": db(stem_gain), "stem_files": names,
        }

