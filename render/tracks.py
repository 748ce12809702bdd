"""The track stage of a render: each track's input through its chain into a post-fader stem.

:class:`TrackStage` (mixed into the renderer's ``_Render``) schedules the tracks, up to
``jobs`` at a time, keys before the tracks they key, the streaming tracks off the critical path
on threads of lower priority, and the diffusion generators of several tracks batched into one
job; each track's result is a cache entry (``audio.wav``, ``meta.json``). A streaming chain runs
block by block; an offline chain gets the whole track, and the streaming effects after its last
offline one run block by block on a pipeline of threads (:func:`_split_tail`,
:func:`_pipeline`), with the mix's first pass following the last track's blocks
(:class:`~blendfx.render.mixdown.PreMeasure`). The fader (gain, then the session pan law:
:func:`pan_gains`) turns every track into a stereo stem.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
from blendfx.buffers import fit_channels, fit_length
from blendfx.chain import Chain, run_native
from blendfx.effect import Effect, is_native_plugin
from blendfx.errors import BlendfxError
from blendfx.presets import processor_to_dict
from blendfx.progress import progress_bar
from blendfx.threads import cores

from .cache import RenderCache, file_digest
from .instruments import find_plugin, plugin_stamp
from .mastering import db
from .mixdown import PreMeasure
from .report import save_blend_figure_data
from .results import TrackResult, jsonable, level_db
from .session import Session, Track
from .sources import BusSource, KeySource, block_starts, open_stem, pan_gains

__all__ = ["TrackStage", "pan_gains"]


def _fader(audio: np.ndarray, gain_db: float, pan: float) -> np.ndarray:
    """``(channels, n)`` -> stereo ``(2, n)`` after gain and the pan law."""
    if audio.shape[0] > 2:
        audio = fit_channels(audio, 1)
    left, right = pan_gains(pan, audio.shape[0])
    g = 10.0 ** (gain_db / 20.0)
    src = np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio
    return (src * np.array([[left * g], [right * g]], np.float32)).astype(np.float32)


def _widen(span: list[int], start: int, level: np.ndarray) -> None:
    """Widen ``span`` (first, end sample not zero) by a block at ``start`` whose per-sample
    level is ``level``."""
    loud = np.flatnonzero(level)
    if loud.size:
        span[0] = min(span[0], start + int(loud[0]))
        span[1] = max(span[1], start + int(loud[-1]) + 1)


def _split_tail(chain: Any, sample_rate: float) -> tuple[Any, list[Any]] | None:
    """Split an offline chain into its head (up to its last offline effect, a Chain) and the
    streaming effects after it, as ``stage(block, reset) -> block`` callables (nested Chains
    flattened; pedalboard processes a stream in blocks with ``reset=False`` to the same samples
    as in one call). None when nothing streams after the last offline effect, or when a
    streaming effect there listens to a sidechain or is another container (they run whole)."""
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
            stages.append(lambda b, reset, p=p: run_native(p, b, sample_rate, 8192, reset))
        elif isinstance(p, Effect) and not getattr(p, "uses_sidechain", False) \
                and not hasattr(p, "plugins"):
            stages.append(lambda b, reset, p=p: p.process_channels_first(b, sample_rate, 8192, reset))
        else:
            return None
    return Chain(items[:last + 1]), stages


def _pipeline(stages: list[Any], blocks: list[np.ndarray]) -> Iterator[np.ndarray]:
    """``stages[-1](...stages[0](block))`` for each block, in order, each stage on its own
    thread (stage ``i`` works on block ``k`` while stage ``i + 1`` works on block ``k - 1``);
    ``reset`` is true for the first block only. An error in a stage is raised here. Held to
    one core (:func:`~blendfx.threads.cores`), the stages run one after another per block."""
    if cores() < 2:
        for k, b in enumerate(blocks):
            for stage in stages:
                b = stage(b, k == 0)
            yield b
        return
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
    yield proc
    if isinstance(proc, Effect):
        for value in proc.param_values().values():
            if isinstance(value, Effect):
                yield from _walk(value)
    for child in getattr(proc, "plugins", []) if isinstance(proc, Effect) else []:
        yield from _walk(child)


#: Niceness added to the threads of background tracks (Linux: per thread). A CPU-bound thread
#: at +10 gets about a tenth of a core that a thread at 0 also wants, so the background tracks
#: run mostly on what the generator leaves idle (its serial steps) instead of slowing it; they
#: still finish before the generator's last effects, so the mix's first pass can follow those
#: (see PreMeasure). Measured on the benchmark session (2 cores): +3 slowed the Composer by
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


class TrackStage:
    """Step 2 of a render: every track not in the cache rendered into a cache entry.

    A mixin of the renderer's ``_Render``, which sets up the state below (in ``__init__`` and
    its checks); :meth:`render_tracks` fills ``keys``, ``entries`` and ``results``.
    """

    session: Session
    sr: float
    total: int
    block: int
    jobs: int
    progress: bool
    figure: bool
    batch_size: int | None
    batch_tracks: bool
    cache: RenderCache
    audible: list[Track]
    heard: set[str]
    order: list[Track]
    sources: dict[str, Any]
    chains: dict[str, Any]
    timelines: dict[str, dict[str, Any]]
    pictures: dict[str, list[dict[str, Any]]]
    keys: dict[str, str]
    entries: dict[str, Path]
    results: list[TrackResult]
    premeasured: tuple[list[str], Any, float] | None
    plugin_reports: dict[str, list[dict[str, Any]]]

    def track_spec(self, t: Track) -> dict[str, Any]:
        chain = self.chains[t.name]
        chain_desc: Any
        if t.plugins:  # loaded plug-ins: their specs and where they were found
            chain_desc = {"generator": t.generator, "chain": t.chain, "plugins": [
                {**p, "path": r.get("path"), "loaded": "not_applied" not in r,
                 "stamp": plugin_stamp(r["path"]) if r.get("path") else None}
                for p, r in zip(t.plugins, self.plugin_reports[t.name], strict=True)]}
        else:
            try:
                chain_desc = processor_to_dict(chain) if chain is not None else None
            except BlendfxError:
                chain_desc = {"generator": t.generator, "chain": t.chain}
        spec: dict[str, Any] = {
            "sr": self.sr, "total": self.total, "gain_db": t.gain_db, "pan": t.pan,
            "chain": chain_desc,
            "keys": {sig: self.keys[name] for sig, name in sorted(t.sidechain.items())},
            "input": self.keys[t.key] if t.generated and t.key else None,
            "streaming_block": self.block if self._streams(t) else None,
        }
        if t.name in self.timelines:  # scored to a video's picture
            spec["timeline"] = self.timelines[t.name]
        if t.name in self.pictures:  # its generators' prompts per shot and joins
            spec["picture"] = self.pictures[t.name]
        if t.file is not None:
            spec["file"] = file_digest(t.file, self.cache.hashes)
            spec["place"] = [t.offset, t.source_offset, t.duration, t.fade_in, t.fade_out]
            if t.loop or t.fade_in_shape != "equal_power" or t.fade_out_shape != "equal_power":
                spec["shape"] = [t.loop, t.fade_in_shape, t.fade_out_shape]
            if t.rate != 1.0 or t.pitch or t.preserve_pitch:
                spec["rate"] = [t.rate, t.preserve_pitch, t.pitch]
        if t.midi is not None:
            spec["midi"] = file_digest(t.midi, self.cache.hashes)
            spec["instrument"] = t.instrument
            # (a plug-in installed since the last render plays instead of the stand-in)
            plugin = find_plugin(t.instrument["plugin"]) if t.instrument.get("plugin") else None
            spec["plugin_path"] = ([str(plugin), plugin_stamp(plugin)] if plugin is not None
                                   else None)
            spec["place"] = [t.offset, t.duration, t.fade_in, t.fade_out]
            if t.items or t.fade_in_shape != "equal_power" or t.fade_out_shape != "equal_power":
                spec["items"] = [t.items, t.fade_in_shape, t.fade_out_shape]
        if t.is_bus:
            spec["bus"] = [self.keys[name] for name in self.bus_inputs(t)]
        return spec

    def _needs(self, t: Track) -> list[str]:
        """What must be rendered before ``t``: its dependencies, a bus's audible inputs only."""
        return [d for d in t.dependencies()
                if not (t.is_bus and d in t.inputs and d not in self.heard)]

    def bus_inputs(self, t: Track) -> list[str]:
        """The audible tracks and buses routed to bus ``t`` (what it sums)."""
        return [name for name in t.inputs if name in self.heard]

    def _streams(self, t: Track) -> bool:
        chain = self.chains[t.name]
        return chain is None or bool(getattr(chain, "supports_streaming", False))

    def render_tracks(self) -> None:
        """Render every track not in the cache, up to ``jobs`` at a time, keys before the
        tracks they key (pedalboard and numpy release the GIL, so threads overlap)."""
        audible = self.heard
        pending = list(self.order)
        results: dict[str, TrackResult] = {}
        running: dict[Any, tuple[Track, str, float]] = {}
        bar = progress_bar(total=0, unit="s", desc="tracks", disable=not self.progress, leave=False,
                   file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                               "{n:.0f}/{total:.0f} s [{elapsed}<{remaining}]")

        def finish(t: Track, key: str, cached: bool, t0: float) -> None:
            entry = self.cache.tracks / key
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            self.entries[t.name] = entry
            results[t.name] = TrackResult(
                name=t.name, role=t.role, key=key, cached=cached,
                seconds=round(time.perf_counter() - t0, 4), streamed=meta["streamed"],
                peak_dbfs=level_db(meta["peak_dbfs"]), rms_dbfs=level_db(meta["rms_dbfs"]),
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
        digests = [pool.submit(file_digest, t.file or t.midi, self.cache.hashes)
                   for t in pending if t.file is not None or t.midi is not None]
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
                                                    for d in self._needs(t))]:
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
        # (no import here: it would pull in torch; without the module there is no generator)
        module = sys.modules.get("blendfx.effects.diffusion.generator")
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
        from blendfx.effects.diffusion.generator import generate_batched

        items = []
        for t in tracks:
            self._follow_quiet(t)
            items.append((self._site(t), self._offline_input(t)))
        music = generate_batched(items, self.sr, batch_size=self.batch_size)
        for (gen, x), y in zip(items, music, strict=True):
            gen.prime(x, self.sr, y)

    def _offline_input(self, t: Track) -> np.ndarray:
        """A track's whole input on the session timeline: its placed file, its notes played,
        the sum of a bus's inputs or its key's stem."""
        if t.file is not None or t.midi is not None or t.is_bus:
            readers = [open_stem(self.cache, self.entries[n]) for n in self.bus_inputs(t)]
            try:
                source: Any = BusSource(readers) if t.is_bus else self.sources[t.name]
                return np.concatenate([b for _, b in source.blocks(self.total, self.block)],
                                      axis=1)
            finally:
                for r in readers:
                    r.close()
        reader = open_stem(self.cache, self.entries[t.key])
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
        readers: list[Any] = []
        try:
            source: Any = None
            if not streams:
                pass  # the whole input is read below
            elif t.is_bus:
                readers.extend(open_stem(self.cache, self.entries[n])
                               for n in self.bus_inputs(t))
                source = BusSource(readers[:])
            elif t.file is not None or t.midi is not None:
                source = self.sources[t.name]
            else:
                readers.append(open_stem(self.cache, self.entries[t.key]))
                source = KeySource(readers[-1])
            keys: dict[str, Any] = {}
            for sig, name in t.sidechain.items():
                readers.append(open_stem(self.cache, self.entries[name]))
                keys[sig] = readers[-1]
            peak, energy = 0.0, 0.0
            reports: list[dict[str, Any]] = []
            span = [self.total, 0]  # the first and end sample that are not zero
            with self.cache.stem_writer(scratch, self.keys[t.name], self.sr) as w:
                if streams:
                    for i, (start, x) in enumerate(source.blocks(self.total, self.block)):
                        n = x.shape[1]
                        if chain is None and not x.any():  # (outside an item: silence)
                            w.write(np.zeros((2, n), np.float32))
                            bar.update(round(n / self.sr, 1))
                            continue
                        if chain is not None:
                            sc = {s: r.read(start, n) for s, r in keys.items()} or None
                            x = fit_length(chain.process(x, self.sr, reset=(i == 0),
                                                         sidechain=sc), n)
                        y = _fader(x, t.gain_db, t.pan)
                        energy += float(np.square(y, dtype=np.float64).sum())
                        level = np.abs(y).max(axis=0)
                        peak = max(peak, float(level.max()))
                        _widen(span, start, level)
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
                        level = np.abs(y).max(axis=0)
                        peak = float(level.max())
                        _widen(span, 0, level)
                        w.write(y)
                    else:
                        # the streaming effects after the offline ones run block by block, each
                        # on its own thread (a pipeline: the same samples as one call on the
                        # whole track)
                        out, energy, peak = self._stream_tail(t, y, stages, w)
                        span = [0, self.total]  # (not measured on this path)
                        del y
                        reports = self._effect_reports(chain, x, out, scratch)
                    bar.update(round(self.total / self.sr, 1))
        finally:
            for r in readers:
                r.close()
        reports = [*self.plugin_reports.get(t.name, []), *reports]
        played = getattr(self.sources.get(t.name), "played", None)
        if played:  # what played a MIDI track: its plug-in, or a stand-in voice and why
            reports = [{"effect": "instrument", **played}, *reports]
        meta = {"name": t.name, "streamed": streams, "peak_dbfs": db(peak),
                "rms_dbfs": db(math.sqrt(energy / (2 * self.total))), "reports": reports,
                "samples": self.total, "active": span if span[0] < span[1] else [0, 0]}
        (scratch / "meta.json").write_text(json.dumps(jsonable(meta)), encoding="utf-8")
        return json.loads((scratch / "meta.json").read_text(encoding="utf-8"))

    def _stream_tail(self, t: Track, y: np.ndarray, stages: list[Any], w: Any
                     ) -> tuple[np.ndarray, float, float]:
        """Run ``stages`` (see :func:`_split_tail`) over the head's output ``y`` block by block
        on a pipeline of threads, each block through the fader into the writer ``w``; returns
        the chain's output (for the effects' reports), the stem's energy and its peak. When
        every other audible track is already rendered, the mix's first pass follows the blocks
        (:class:`PreMeasure`); when the others finish while this one streams, it starts then,
        catching up on the blocks written so far (the fader applied again to the kept output:
        the same blocks)."""
        audible = [a.name for a in self.audible]
        others = [a for a in audible if a != t.name]
        pending = t.name in audible  # the early first pass is still possible
        pre: PreMeasure | None = None
        grid = list(block_starts(self.total, self.block))
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
                    pre, pending = PreMeasure(self, t.name), False
                    for a, m in grid[:k]:
                        pre.add(a, _fader(out[:, a:a + m], t.gain_db, t.pan))
                if pre is not None:
                    pre.add(s0, z)
        except BaseException as exc:
            if pre is not None:
                pre.close(exc)
            raise
        if pre is not None:
            self.premeasured = pre.finish()
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
                                    **(jsonable(report) if isinstance(report, dict) else {})}
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
                save_blend_figure_data(scratch / "figure.npz", noise, self.sr,
                                       getattr(proc, "last_mask", None), music, gains)
                info["figure"] = True
            out.append(info)
        return out

