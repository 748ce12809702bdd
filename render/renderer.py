"""Offline rendering of a session: stems in, rendered stems, a mastered mix and a report out.

The render, in order:

1. **Check** (nothing is written yet): every stem opens and decodes its header, sample rates
   are allowed, every chain builds (parameters are validated), the output format is known.
   Any problem is a :class:`~blendfx.BlendfxError` and the output folder is not touched.
2. **Tracks**, keys before the tracks they key (:meth:`Session.render_order`): each track's file
   is read and resampled to the session rate, placed at its offset (source offset, duration,
   fades), run through its chain (sidechain signals = the key tracks' rendered stems), and
   turned into a stereo post-fader stem (gain, then a -3 dB constant-power pan law for mono;
   a balance law for stereo). A MIDI track's input is its notes played by its instrument (the
   plug-in when it loads here, else its stand-in voice: :mod:`~blendfx.render.instruments`;
   the report says which); a bus's input is the sum of the stems routed to it, so buses render
   after their inputs, nested buses inside out. The mix sums the tracks and buses routed to no
   bus. When every effect of a chain supports streaming, the track is
   processed in blocks (``block_seconds``), so a long stem never sits in memory; offline
   effects (generators, Blend) get the whole track. Each result is a cache entry
   (:mod:`blendfx.render.cache`): tracks whose inputs did not change are not rendered again.
   Tracks whose chains start with a diffusion generator (or a Blend around one) on a shared
   model run their windows as one batched job first
   (:func:`blendfx.effects.diffusion.generator.generate_batched`, ``batch_size`` windows per model call);
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
   streams out of an offline chain, pass 1 follows its blocks
   (:class:`~blendfx.render.mixdown.PreMeasure`) instead of running after it.
4. **Report**: ``report.json`` (loudness, gains, per-track timings and cache hits, the blend
   report of every Blend, e.g. its unmasked fraction, ``timings`` with wall and CPU seconds
   and the load average) and ``report.png`` (drawn on a thread while the mix is still being
   written; ``timings.report_s`` is that thread's own time).

Outputs are written into a staging folder inside the cache and moved into the output folder
only when all of them are complete; ``report.json`` moves last. A run killed at any point leaves
the output folder as it was (plus the hidden cache), and the next run picks up the finished
tracks from the cache.

The stages live in their own modules: :mod:`~blendfx.render.sources` (track inputs, cached
stem reads), :mod:`~blendfx.render.tracks` (step 2), :mod:`~blendfx.render.mixdown` (step 3),
:mod:`~blendfx.render.results` (what a render returns); this module checks the session, runs
the stages in order and publishes the outputs (step 4).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import blendfx
import numpy as np
from blendfx.audio_io import audio_info
from blendfx.chain import Chain
from blendfx.effects.video import VideoError, VideoFeatures, analyze_video
from blendfx.errors import AudioFileError, BlendfxError, SessionError
from blendfx.files import writable_folder
from blendfx.threads import core_limit, one_blas_thread, thread_pool

from . import report as report_mod
from .cache import RenderCache, memory_budget
from .instruments import load_effects
from .mixdown import MixStage, stem_filename
from .results import RenderResult, TrackResult, jsonable
from .score import composer_meter, composer_tempo_range, follow_picture, timeline_from_video, timeline_spec
from .session import Session, load_session
from .sources import FileSource, NoteSource, VideoSource
from .tracks import TrackStage, pan_gains

__all__ = ["render_session", "render_tracks", "RenderResult", "TrackResult", "pan_gains",
           "stem_filename", "estimate_render_bytes", "MAX_RENDER_HOURS"]


# -- the render --------------------------------------------------------------------------------
class _Render(TrackStage, MixStage):
    """One render's state, its checks (step 1) and its report and hand-over (step 4); the
    tracks (step 2) and the mix (step 3) come from :class:`~blendfx.render.tracks.TrackStage`
    and :class:`~blendfx.render.mixdown.MixStage`."""

    def __init__(self, session: Session, out_dir: Path, *, device: str | None, progress: bool,
                 cache: bool, block_seconds: float, figure: bool, jobs: int,
                 batch_size: int | None = None, batch_tracks: bool = True,
                 allow_large: bool = False, stems: bool = True) -> None:
        self.session, self.out_dir = session, Path(out_dir)
        self.sr = float(session.sample_rate)
        self.device, self.progress, self.figure = device, progress, figure
        self.block = max(4096, int(block_seconds * self.sr))
        self.block_seconds = block_seconds
        self.jobs = jobs
        self.batch_size, self.batch_tracks = batch_size, batch_tracks
        self.allow_large = allow_large
        self.stems = stems
        self.cache = RenderCache(self.out_dir, enabled=cache)
        self.entries: dict[str, Path] = {}
        self.keys: dict[str, str] = {}
        self.results: list[TrackResult] = []
        self.timings: dict[str, float] = {}
        self._figure: Any = None  # the report figure's Future, once started
        self._figure_s = 0.0
        self._cpu_start = time.process_time()
        self.premeasured: tuple[list[str], Any, float] | None = None  # see mixdown.PreMeasure
        self.figure_numbers: dict[str, Any] = {}  # the report's key numbers, for the figure

    # -- 1. checks ----------------------------------------------------------------------------
    def check(self) -> None:
        s = self.session
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise SessionError(f"output folder {self.out_dir} exists and is not a folder")
        heard = s.audible()
        if not heard:
            raise SessionError("every track is muted (or no soloed track is unmuted): "
                               "nothing to render")
        self.heard = {t.name for t in heard}
        # the mix sums what is not routed to a bus; a bus sums its audible inputs
        self.audible = [t for t in heard if t.bus is None]
        self.order = s.render_order(heard)
        self.sources: dict[str, Any] = {}
        self.chains: dict[str, Any] = {}
        self.plugin_reports: dict[str, list[dict[str, Any]]] = {}
        self.videos: dict[str, VideoFeatures] = {}
        self.timelines: dict[str, dict[str, Any]] = {}
        self.pictures: dict[str, list[dict[str, Any]]] = {}
        ends = []
        for t in self.order:
            if t.file is not None and t.role == "video":
                try:
                    features = analyze_video(t.file)
                except VideoError as exc:
                    raise SessionError(f"{t.where}.file: {exc}") from None
                src = VideoSource(t, self.sr, self.block_seconds, features)
                self.videos[t.name] = features
                self.sources[t.name] = src
                ends.append(src.end)
            elif t.file is not None:
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
                if t.source_offset >= info.duration and not t.loop:
                    raise SessionError(f"{t.where}.source_offset = {t.source_offset:g} s is past "
                                       f"the end of {t.file.name} ({info.duration:.3f} s)")
                src = FileSource(t, self.sr, self.block_seconds)
                self.sources[t.name] = src
                ends.append(src.end)
            elif t.midi is not None:
                try:
                    note_src = NoteSource(t, self.sr)
                except BlendfxError as exc:
                    raise SessionError(f"{t.where}.midi: {exc}") from None
                self.sources[t.name] = note_src
                ends.append(note_src.end)
            chain = t.build_chain()
            if t.plugins:  # the track's plug-in effects (REAPER's track FX) run first
                loaded, self.plugin_reports[t.name] = load_effects(t.plugins, self.sr)
                if loaded:
                    chain = Chain([*loaded, *([chain] if chain is not None else [])])
                    if isinstance(self.sources.get(t.name), FileSource):
                        self.sources[t.name].upmix = True  # (stereo plug-ins take 2 channels)
            if chain is not None and self.device is not None:
                chain.device = self.device  # "cpu" is set without importing torch
            self.chains[t.name] = chain
        total = int(round(s.length * self.sr)) if s.length is not None else max(ends, default=0)
        if total < 64:
            raise SessionError("the session is shorter than 64 samples: nothing to render")
        self.total = total
        self._score_to_picture()
        self.check_size()

    def _score_to_picture(self) -> None:
        """Generated tracks keyed by a video track follow its picture, as ``blendfx score``
        does (:func:`~.score.follow_picture`): their Composers get a timeline with the video's
        cuts on bar lines, in the meter their prompt names (4/4 unless it says 'waltz',
        'in 6/8', ...; see :mod:`.score`); their Riffusion generators and TextToMusic a prompt
        per shot and their windows or parts joined at those cuts; all on the session's clock
        (the video track's offset moves the picture, and only what its item shows counts)."""
        by_name = {t.name: t for t in self.session.tracks}
        for t in self.order:
            chain = self.chains.get(t.name)
            if t.key not in self.videos or chain is None:
                continue
            video, features = by_name[t.key], self.videos[t.key]
            offset = video.offset - video.source_offset
            end = offset + features.duration_s  # where the picture shows: the item, trimmed
            shown = (video.offset, end if video.duration is None else min(end, video.offset + video.duration))
            tempo_range, bpm = composer_tempo_range(chain)
            timeline, kept, _ = timeline_from_video(features, self.total / self.sr,
                                                    tempo_range=tempo_range, bpm=bpm, offset_s=offset,
                                                    meter=composer_meter(chain), picture_s=shown)
            keyed = follow_picture(chain, features, timeline, kept, offset_s=offset,
                                   picture_s=shown)
            if keyed["composers"] or keyed["generators"]:
                self.timelines[t.name] = timeline_spec(timeline)
            if keyed["generators"]:
                self.pictures[t.name] = keyed["generators"]

    def check_size(self) -> None:
        """Refuse a render the disk cannot hold, or one longer than :data:`MAX_RENDER_HOURS`
        unless ``allow_large``; the message says what it would write."""
        seconds = self.total / self.sr
        # without the cache, the tracks' stems stay in memory when they fit: nothing is
        # written twice (a float32 copy of every track) or read back
        track_bytes = self.total * 2 * 4 * len(self.order)
        self.cache.in_memory = not self.cache.enabled and track_bytes <= memory_budget()
        need = estimate_render_bytes(self.total, 0 if self.cache.in_memory else len(self.order),
                                     len(self.audible) if self.stems else 0,
                                     self.session.master.bit_depth)
        what = (f"{seconds / 3600:.1f} h of audio for {len(self.audible)} stem(s) and the mix: "
                f"about {_size(need)} written")
        if seconds > MAX_RENDER_HOURS * 3600 and not self.allow_large:
            longest = max(self.order, key=lambda t: t.offset)
            raise SessionError(
                f"this render would be {what} (the latest-starting track, {longest.name!r}, "
                f"starts at {longest.offset:g} s); a render longer than {MAX_RENDER_HOURS:g} h "
                f"needs --allow-large (allow_large=True): check the offsets and [session] length")
        free = _free_bytes(self.out_dir)
        if free is not None and need > free:
            raise SessionError(f"this render would be {what}, but {self.out_dir} has "
                               f"{_size(free)} free")

    # -- 4. report and hand-over ------------------------------------------------------------
    def start_figure(self, staging: Path, names: dict[str, str], mix: np.ndarray | None,
                      master_db: np.ndarray | None) -> None:
        """Draw report.png in a thread (it overlaps the rest of the mix's writing; drawn now when
        the render is held to one core)."""
        def draw() -> None:
            t0 = time.perf_counter()
            report_mod.write_report_png(staging / "report.png", self, staging, names, mix=mix,
                                        master_db=master_db)
            self._figure_s = round(time.perf_counter() - t0, 4)

        pool = thread_pool(1, "blendfx-figure")
        self._figure = pool.submit(draw)
        pool.shutdown(wait=False)

    def finish(self, staging: Path, master: dict[str, Any], t_start: float) -> RenderResult:
        names = master.pop("stem_files")
        png = None
        if self.figure:
            png = staging / "report.png"
            if self._figure is None:  # (started by the mix once it had the figure's minute)
                self.start_figure(staging, names, None, None)
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
                "name": r.name, "role": r.role, "in_mix": r.audible,
                "audible": heard(r, master.get("stems_gain_db")),
                "kind": s.track(r.name).kind, "bus": s.track(r.name).bus,
                "stem": f"stems/{names[r.name]}" if r.name in names else None,
                "cached": r.cached, "streamed": r.streamed, "render_s": r.seconds,
                "peak_dbfs": r.peak_dbfs, "rms_dbfs": r.rms_dbfs, "cache_key": r.key,
                "reports": r.reports,
                **{k: next((b.get(k) for b in r.reports if k in b), None)
                   for k in ("unmasked_fraction", "masked_share", "loudness_increase_lu",
                             "nmr_bark_db")},
                **({"timeline": self.timelines[r.name]} if r.name in self.timelines else {}),
                **({"picture": self.pictures[r.name]} if r.name in self.pictures else {}),
            } for r in self.results],
            "timings": {**self.timings,
                        "realtime_factor": duration / max(self.timings["total_s"], 1e-9)},
            "outputs": {"mix": f"mix{s.master.suffix}",
                        "stems": {n: f"stems/{f}" for n, f in names.items()},
                        "report_png": "report.png" if png else None},
        }
        (staging / "report.json").write_text(json.dumps(jsonable(report), indent=2) + "\n",
                                             encoding="utf-8")
        return self._publish(staging, report, names, png is not None)

    def _publish(self, staging: Path, report: dict[str, Any], names: dict[str, str],
                 png: bool) -> RenderResult:
        """Move the finished outputs into the output folder; report.json last."""
        out = self.out_dir
        old = _previous_outputs(out)
        if names:
            (out / "stems").mkdir(exist_ok=True)
        stems = {}
        for name, fname in names.items():
            os.replace(staging / "stems" / fname, out / "stems" / fname)
            stems[name] = out / "stems" / fname
        keep = {f"stems/{f}" for f in names.values()} | {report["outputs"]["mix"]}
        if png:
            keep.add("report.png")
        for rel in old - keep:  # stems of tracks that no longer exist, a png not drawn again
            with contextlib.suppress(OSError):
                (out / rel).unlink()
        mix = out / report["outputs"]["mix"]
        os.replace(staging / mix.name, mix)
        if png:
            os.replace(staging / "report.png", out / "report.png")
        os.replace(staging / "report.json", out / "report.json")
        shutil.rmtree(staging, ignore_errors=True)
        return RenderResult(out, mix, stems, out / "report.json", out / "report.png" if png else None,
                            report, self.results)


#: A stem in the mix whose peak, after the master gain, stays under this is reported as not
#: ``audible`` (dBFS): at -70 dBFS it is under the noise floor of any real listening level.
AUDIBLE_PEAK_DBFS = -70.0


def heard(track: TrackResult, stems_gain_db: float | None) -> bool:
    """Whether a track can be heard in the mix: it reaches the mix (``in_mix``: not muted,
    not left out by a solo) and its stem peaks above :data:`AUDIBLE_PEAK_DBFS` after the
    master gain (a -87 dBFS stem is not audible)."""
    gain = stems_gain_db if isinstance(stems_gain_db, float) and math.isfinite(stems_gain_db) \
        else 0.0
    return bool(track.audible and track.peak_dbfs + gain > AUDIBLE_PEAK_DBFS)


#: Longest timeline a render makes without ``allow_large`` (``--allow-large``), in hours.
MAX_RENDER_HOURS = 6.0


def estimate_render_bytes(samples: int, tracks: int, audible: int, bit_depth: int) -> int:
    """Bytes a render writes at most: every rendered track as a 32-bit float stereo cache entry,
    and the mix and the audible stems as stereo PCM at ``bit_depth`` (WAV; FLAC writes less)."""
    return int(samples) * 2 * (4 * tracks + (bit_depth // 8) * (audible + 1))


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # (not reached)


def _free_bytes(folder: Path) -> int | None:
    """Free bytes on the file system that holds ``folder`` (or its nearest existing parent)."""
    p = folder.resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def _version() -> str:
    return blendfx.__version__


def _previous_outputs(out: Path) -> set[str]:
    """Files the previous render listed in its report.json (so stale stems can be removed)."""
    try:
        prev = json.loads((out / "report.json").read_text(encoding="utf-8"))["outputs"]
        files = {prev["mix"], *prev["stems"].values(), prev.get("report_png")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
    return {f for f in files if isinstance(f, str) and ".." not in f and not f.startswith("/")}


def render_session(session: Session | str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                   device: str | None = None, seed: int | None = None, progress: bool = True,
                   cache: bool = True, block_seconds: float = 10.0, figure: bool = True,
                   jobs: int | None = None, batch_size: int | None = None,
                   batch_tracks: bool | None = None, allow_large: bool = False,
                   stems: bool = True, keep_cache: bool = True) -> RenderResult:
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
        Reuse tracks rendered by an earlier run whose inputs did not change. False renders
        every track and, when all of them fit in memory (:data:`~blendfx.render.cache.MEMORY_BUDGET`,
        2 GB), keeps them there: no 32-bit float copy of every track is written to the cache
        and read back, only the outputs are written.
    block_seconds : float
        Block length for streaming tracks and the mix, in seconds.
    figure : bool
        Write report.png.
    jobs : int, optional
        Cores the render may use: tracks rendered at the same time (threads), and the bound of
        its helper threads (decoding ahead, measuring, mastering, the report figure; see
        :func:`blendfx.threads.core_limit`); ``1`` renders on one core, the unit of work of a
        farm. Default: the CPU count, at most 4.
    batch_size : int, optional
        Windows per model call when the diffusion generators of several tracks are batched
        together (overrides ``[render] batch_size``; default: the generators' own).
    batch_tracks : bool, optional
        Batch the windows of diffusion generators across tracks (tracks whose chains start
        with one, or with a Blend around one, sharing a model and compatible settings: see
        :func:`blendfx.effects.diffusion.generator.generate_batched`). Overrides ``[render]
        batch_tracks`` (default true). The results do not depend on it (per-window seeds).
    allow_large : bool
        Render a timeline longer than :data:`MAX_RENDER_HOURS` (6 h). Before anything is
        written the render estimates what it will write (:func:`estimate_render_bytes`) and
        refuses, saying so, a longer one without this, and one the disk cannot hold in any case.
    stems : bool
        Write ``stems/`` (False: the mix, report.json and report.png only).
    keep_cache : bool
        Keep ``.blendfx-cache`` for the next render (False: remove it once the outputs are in
        place; the next render then renders every track again).

    Returns
    -------
    RenderResult

    Raises
    ------
    BlendfxError
        Bad input (a missing or corrupt stem, a bad parameter, a key cycle...): raised before
        anything is written.
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    r = _checked_render(session, out_dir, device=device, seed=seed, progress=progress,
                        cache=cache, block_seconds=block_seconds, figure=figure, jobs=jobs,
                        batch_size=batch_size, batch_tracks=batch_tracks,
                        allow_large=allow_large, stems=stems)
    r._cpu_start = cpu_start
    writable_folder(r.out_dir)  # one line naming the folder, not a temporary file inside it
    ok = False
    with contextlib.ExitStack() as stack:
        stack.enter_context(r.cache)
        stack.enter_context(core_limit(r.jobs))
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
    if not keep_cache:  # (the lock is released: the cache is closed)
        shutil.rmtree(r.cache.root, ignore_errors=True)
    return result


def _checked_render(session: Session | str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                    device: str | None, seed: int | None, progress: bool, cache: bool,
                    block_seconds: float, figure: bool, jobs: int | None,
                    batch_size: int | None, batch_tracks: bool | None,
                    allow_large: bool = False, stems: bool = True) -> _Render:
    """A render's state with its options validated and its checks passed (nothing written)."""
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
                batch_tracks=session.batch_tracks if batch_tracks is None else bool(batch_tracks),
                allow_large=allow_large, stems=stems)
    r.check()
    return r


def render_tracks(session: Session | str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  names: list[str], *, device: str | None = None, seed: int | None = None,
                  progress: bool = False, cache: bool = True, block_seconds: float = 10.0,
                  jobs: int | None = None, batch_size: int | None = None,
                  batch_tracks: bool | None = None) -> list[TrackResult]:
    """Render some tracks of a session into ``out_dir``'s track cache, and nothing else.

    The tracks ``names`` and those they depend on (keys, sidechains) are rendered exactly as
    :func:`render_session` renders them, with the same cache keys (a key depends on the whole
    session's length, so the other tracks' files are checked too), into
    ``out_dir/.blendfx-cache/tracks/``; no mix, stems or report is written. A render farm runs
    this to spread a long session's independent tracks over machines: once their cache
    entries sit in the session's own cache, :func:`render_session` only mixes.

    Parameters
    ----------
    session : Session or path
    out_dir : str or Path
        The folder whose cache receives the tracks (created).
    names : list of str
        Audible tracks to render.
    device, seed, progress, cache, block_seconds, jobs, batch_size, batch_tracks :
        As for :func:`render_session` (they must be the same for the keys to match).

    Returns
    -------
    list of TrackResult
        The rendered (or already cached) tracks, keys first; ``key`` is each one's cache entry.

    Raises
    ------
    BlendfxError
        Bad input, as for :func:`render_session`, or a name that is not an audible track.
    """
    r = _checked_render(session, out_dir, device=device, seed=seed, progress=progress,
                        cache=cache, block_seconds=block_seconds, figure=False, jobs=jobs,
                        batch_size=batch_size, batch_tracks=batch_tracks)
    audible = {t.name: t for t in r.audible}
    unknown = [n for n in names if n not in audible]
    if unknown:
        raise SessionError(f"render_tracks: {', '.join(map(repr, unknown))} is not an audible "
                           f"track (audible: {', '.join(audible)})")
    r.order = r.session.render_order([audible[n] for n in names])
    r.out_dir.mkdir(parents=True, exist_ok=True)
    with r.cache, core_limit(r.jobs), one_blas_thread():
        r.render_tracks()
    return r.results
