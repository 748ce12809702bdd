"""Render many sessions at once: on a process pool on this machine, or as tasks on a Ray cluster.

:func:`render_many` renders each session exactly as :func:`~blendfx.render.render_session` (and
``blendfx render``) does, into ``OUT/<session-name>/``: the same files, written the same
atomic way, with the same per-track cache in ``OUT/<session-name>/.blendfx-cache``. What it
adds:

- **Backends.** ``"local"``: a process pool on this machine (``jobs`` sessions at a time).
  ``"ray"``: one Ray task per session on a Ray cluster (``ray.init(address=...)``, or a local
  cluster when no address is given and Ray is not initialized yet), with declared resources:
  ``num_cpus = threads`` and, for sessions with a diffusion generator when the device may be
  CUDA, ``num_gpus = gpus_per_session``. Workers read the sessions and write the outputs by
  path: on a real cluster both live on storage every node mounts at the same path.
- **Long sessions** (ray, ``split_seconds``): the independent groups of tracks of a long
  session run as tasks of their own, on any node (:func:`~blendfx.render.renderer.render_tracks`
  into a scratch cache, the entries then moved into the session's cache); the session's task
  runs after them and only mixes.
- **Faults.** A worker killed mid-session (SIGKILL, OOM killer, a lost node) is retried, up to
  ``max_retries`` times (Ray's task retries; the local pool is rebuilt and the unfinished
  sessions resubmitted); the retry picks up the tracks the killed attempt had finished from
  the cache. A session that fails (bad input, or retries used up) is reported with its error
  while the others complete.
- **Re-runs.** A session whose inputs did not change since its last successful farm render
  (same manifest, same stem contents, same options, its outputs still in place) is not
  submitted at all (``status = "up-to-date"``); a changed or unfinished one renders only its
  missing tracks (the render cache).
- **Manifest.** ``OUT/render-many.json``: every session's status, outputs, timings, attempts,
  host and error, rewritten atomically as sessions finish.
- **Progress.** One bar across the farm on a terminal; one line per finished session otherwise.

Bookkeeping lives in ``OUT/.blendfx-farm/`` (one small JSON file per session), so a session's
own folder holds exactly what ``blendfx render`` writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blendfx
from blendfx.audio_io import audio_info
from blendfx.errors import BlendfxError, SessionError
from blendfx.files import atomic_write_text
from blendfx.numba_cache import claim_numba_cache
from tqdm import tqdm

from .cache import CACHE_DIR, file_digest
from .renderer import render_session, render_tracks
from .session import Session, load_session

__all__ = ["render_many", "render_job", "task_resources", "wants_gpu", "FarmResult",
           "SessionOutcome", "session_output_name", "MANIFEST", "STATE_DIR", "BACKENDS"]

MANIFEST = "render-many.json"
STATE_DIR = ".blendfx-farm"
BACKENDS = ("local", "ray")
_KEY_FORMAT = 1  # bump when what decides a session's outputs changes
#: The diffusion generators: a session with one of these may want a GPU.
_GPU_EFFECTS = {"OutpaintInpaint", "MaskedImg2Img"}
#: Seconds a task waits for another render of the same output folder to end (a killed
#: attempt's process, or an interrupted farm's worker, can outlive its kill by seconds).
LOCK_WAIT_S = 300.0


@dataclass
class SessionOutcome:
    """What happened to one session of a farm.

    Attributes
    ----------
    name : str
        The output folder's name (``OUT/<name>/``).
    session : str
        The session manifest's path.
    status : {"rendered", "up-to-date", "failed"}
    attempts : int
        Attempts started in this run (more than 1: a worker died and the session was retried;
        0 for an up-to-date session).
    outputs : dict
        Paths relative to ``OUT``: ``mix``, ``stems`` (track name -> path), ``report_json``,
        ``report_png`` (None without a figure). Empty for a failed session.
    tracks_rendered, tracks_cached : list of str
        Tracks rendered in this run, and tracks taken from the cache.
    timings : dict
        ``task_s`` (wall seconds of the task in the worker), ``render_s`` (of render_session),
        ``cpu_s`` (CPU seconds of the worker process during the task), ``latency_s`` (seconds
        from submission until the result was back, queueing included).
    host, pid :
        Where the last attempt ran.
    parts : list of dict
        For a long session split into tasks of independent tracks (ray): each part's
        ``tracks``, ``tracks_rendered``, ``host``, ``pid``, ``attempts`` and ``timings``; the
        session's own task then found those tracks in the cache and mixed.
    error : dict or None
        A failed session's ``type`` and ``message``, ``bad_input`` (True for a
        :class:`~blendfx.BlendfxError`: the session's own fault; False for a crash, retries
        used up, or a bug) and, for an unexpected exception, its ``traceback``.
    """

    name: str
    session: str
    status: str
    attempts: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    tracks_rendered: list[str] = field(default_factory=list)
    tracks_cached: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    host: str | None = None
    pid: int | None = None
    error: dict[str, str] | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class FarmResult:
    """The outcome of :func:`render_many`: one :class:`SessionOutcome` per session, in order."""

    out_dir: Path
    manifest: Path
    sessions: list[SessionOutcome]
    wall_s: float
    backend: str

    @property
    def ok(self) -> bool:
        """True when every session was rendered or up to date."""
        return all(s.ok for s in self.sessions)

    @property
    def failed(self) -> list[SessionOutcome]:
        return [s for s in self.sessions if not s.ok]

    def session(self, name: str) -> SessionOutcome:
        return next(s for s in self.sessions if s.name == name)


# -- naming and keys ---------------------------------------------------------------------------
def session_output_name(path: str | os.PathLike[str], session: Session | None = None) -> str:
    """The folder name a session renders into under the farm's output folder.

    The session's name (``[session] name``, else the manifest's file name without suffix); a
    manifest called ``session.toml`` without a name takes its folder's name instead, so
    ``a/session.toml`` and ``b/session.toml`` go to ``OUT/a`` and ``OUT/b``. Characters other
    than letters, digits, ``.``, ``_`` and ``-`` become ``_``.
    """
    path = Path(path)
    name = session.name if session is not None else path.stem
    if name == "session" and path.stem == "session":
        name = path.resolve().parent.name or name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "session"


def _inputs_key(session: Session, options: dict[str, Any], memo: dict[str, Any]) -> str | None:
    """A SHA-256 over everything that decides a session's outputs: blendfx's version, the
    parsed session (tracks with their resolved chains and presets, tempo map, master), the
    content of every stem file, and the render options. None if it cannot be computed."""
    try:
        files = {t.name: file_digest(t.file, memo) for t in session.tracks if t.file is not None}
        blob = json.dumps({"blendfx": blendfx.__version__, "format": _KEY_FORMAT,
                           "session": dataclasses.asdict(session), "files": files,
                           "options": {k: v for k, v in options.items() if k != "jobs"}},
                          sort_keys=True, default=str)
    except (OSError, TypeError, ValueError):
        return None
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _hash_memo(out: Path) -> dict[str, Any]:
    """The render cache's memo of file hashes in an output folder (read only)."""
    try:
        memo = json.loads((out / CACHE_DIR / "hashes.json").read_text(encoding="utf-8"))
        return memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        return {}


def wants_gpu(session: Session, tracks: Iterable[str] | None = None) -> bool:
    """True when a track of the session (of ``tracks``, when given) runs a diffusion
    generator."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("type"), str):
                yield node["type"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    names = None if tracks is None else set(tracks)
    return any(kind in _GPU_EFFECTS for t in session.tracks
               if not t.mute and (names is None or t.name in names)
               for kind in walk([t.generator, t.chain]))


def track_groups(session: Session) -> list[list[str]]:
    """The audible tracks in independent groups: a track with every track it depends on or
    that depends on it (keys, sidechains), in render order. A farm may render the groups of a
    long session on different machines."""
    order = session.render_order(session.audible())
    parent = {t.name: t.name for t in order}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for t in order:
        for dep in t.dependencies():
            if dep in parent:
                parent[root(dep)] = root(t.name)
    groups: dict[str, list[str]] = {}
    audible = {t.name for t in session.audible()}
    for t in order:
        if t.name in audible:
            groups.setdefault(root(t.name), []).append(t.name)
    return list(groups.values())


def _rough_seconds(session: Session) -> float:
    """The session's length in seconds, from its stems' headers (for deciding a split; the
    renderer computes the exact length)."""
    if session.length is not None:
        return float(session.length)
    ends = [0.0]
    for t in session.audible():
        if t.file is not None:
            with contextlib.suppress(BlendfxError, OSError):
                left = audio_info(t.file).duration - t.source_offset
                ends.append(t.offset + (min(left, t.duration) if t.duration else left))
    return max(ends)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# -- the task (runs in a worker) ---------------------------------------------------------------
def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _wait_for_lock(out: Path, timeout: float) -> None:
    """Wait until no other render holds ``out``'s cache lock (at most ``timeout`` s); then
    render_session takes it. Creates nothing: a folder without a lock file has no render."""
    lock = out / CACHE_DIR / "lock"
    if not lock.is_file():
        return
    deadline = time.monotonic() + timeout
    with open(lock, "a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if time.monotonic() > deadline:
                    return  # render_session reports the other render
                time.sleep(0.1)
                continue
            fcntl.flock(fh, fcntl.LOCK_UN)
            return


def _start(job: dict[str, Any]) -> dict[str, Any]:
    """The record of a task's attempt, written to its state file as it starts (the attempt
    count, where it runs, the worker's numba cache folder; the last success's key and outputs
    are kept until replaced). Claims the worker's numba cache before anything compiles."""
    numba_cache = claim_numba_cache()
    state = _read_state(Path(job["state"]))
    attempt = (state.get("attempts", 0) if state.get("run") == job["run"] else 0) + 1
    record: dict[str, Any] = {"name": job["name"], "run": job["run"], "attempts": attempt,
                              "host": socket.gethostname(), "pid": os.getpid(),
                              "started": time.time(), "status": "running",
                              "numba_cache": None if numba_cache is None else str(numba_cache)}
    for keep in ("inputs", "report_sha256", "outputs"):
        if keep in state:
            record[keep] = state[keep]
    atomic_write_text(Path(job["state"]), json.dumps(record))
    return record


def _failure(exc: Exception) -> dict[str, Any]:
    error = {"type": type(exc).__name__, "message": str(exc),
             "bad_input": isinstance(exc, BlendfxError)}
    if not isinstance(exc, BlendfxError):  # a bug, not bad input: keep the traceback
        error["traceback"] = traceback.format_exc()
    return error


def render_part(job: dict[str, Any]) -> dict[str, Any]:
    """Render some independent tracks of a long session (a Ray task beside the others of the
    session) into a scratch folder's cache, then move their entries into the session's own
    cache, where the session's task finds them. Never raises for bad input."""
    t0, c0 = time.perf_counter(), time.process_time()
    record = _start(job)
    scratch, tracks = Path(job["scratch"]), Path(job["out"]) / CACHE_DIR / "tracks"
    try:
        results = render_tracks(load_session(job["session"]), scratch, job["tracks"],
                                progress=False, **{k: v for k, v in job["options"].items()
                                                   if k != "figure"})
        tracks.mkdir(parents=True, exist_ok=True)
        for r in results:  # entries are whole folders named by content: a plain rename
            entry = scratch / CACHE_DIR / "tracks" / r.key
            if entry.is_dir() and not (tracks / r.key).exists():
                with contextlib.suppress(OSError):  # (another part may have moved it first)
                    os.replace(entry, tracks / r.key)
        shutil.rmtree(scratch, ignore_errors=True)
        record.update(status="rendered", tracks=job["tracks"], error=None,
                      tracks_rendered=[r.name for r in results if not r.cached])
    except Exception as exc:  # noqa: BLE001 - the session's task renders what is missing
        record.update(status="failed", error=_failure(exc))
    record["timings"] = {"task_s": round(time.perf_counter() - t0, 4),
                         "cpu_s": round(time.process_time() - c0, 4)}
    atomic_write_text(Path(job["state"]), json.dumps(record))
    return record


def render_job(job: dict[str, Any], *parts: dict[str, Any]) -> dict[str, Any]:
    """Render one session of a farm (the function the pool's workers and Ray's tasks run).

    ``parts``: the records of the session's part tasks (:func:`render_part`), when it was
    split; Ray starts this task once they are done. Never raises for a failing session: the
    error comes back in the returned record. Only a dying process (or an interrupt) ends it
    otherwise, and then the farm retries it.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    record = _start(job)
    state_path = Path(job["state"])
    out = Path(job["out"])
    try:
        session = load_session(job["session"])
        _wait_for_lock(out, job.get("lock_wait_s", LOCK_WAIT_S))
        key = _inputs_key(session, job["options"], _hash_memo(out))
        r0 = time.perf_counter()
        result = render_session(session, out, progress=False, **job["options"])
        render_s = time.perf_counter() - r0
        rel = Path(job["name"])
        outs = result.report["outputs"]
        record.update(
            status="rendered", inputs=key, report_sha256=_sha256(result.report_json),
            outputs={"mix": str(rel / outs["mix"]),
                     "stems": {n: str(rel / s) for n, s in outs["stems"].items()},
                     "report_json": str(rel / "report.json"),
                     "report_png": str(rel / outs["report_png"]) if outs["report_png"] else None},
            tracks_rendered=[t.name for t in result.tracks if not t.cached],
            tracks_cached=[t.name for t in result.tracks if t.cached],
            error=None)
        record["timings"] = {"render_s": round(render_s, 4)}
    except Exception as exc:  # noqa: BLE001 - every failure becomes this session's error
        record.update(status="failed", error=_failure(exc))
        record.pop("inputs", None)  # never up to date after a failure
    record.setdefault("timings", {}).update(
        task_s=round(time.perf_counter() - t0, 4), cpu_s=round(time.process_time() - c0, 4))
    if parts:
        record["parts"] = [{k: p.get(k) for k in ("tracks", "tracks_rendered", "host", "pid",
                                                   "attempts", "timings", "error")}
                           for p in parts]
        by_parts = {n for p in parts for n in p.get("tracks_rendered") or []}
        record["tracks_rendered"] = [n for n in record.get("tracks_rendered", [])
                                     if n not in by_parts] + sorted(by_parts)
        record["tracks_cached"] = [n for n in record.get("tracks_cached", [])
                                   if n not in by_parts]
    atomic_write_text(state_path, json.dumps(record))
    return record


# -- backends ----------------------------------------------------------------------------------
class _WorkerDied(Exception):
    """A job's worker process died more often than it may be retried."""


def _worker_init(threads: int) -> None:
    """Start of a local pool worker: ``OMP_NUM_THREADS`` = ``threads``, as Ray sets it for a
    task of ``num_cpus = threads`` (torch reads it on its first parallel operation; BLAS is
    held to one thread by render_session itself)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def _run_local(fn: Callable[[dict[str, Any]], dict[str, Any]], jobs: list[dict[str, Any]],
               workers: int, threads: int, max_retries: int,
               ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | BaseException]]:
    """Run ``fn`` on each job on a pool of ``workers`` processes; yield (job, record or error)
    as they finish. A dead worker breaks the whole pool: it is rebuilt and every unfinished
    job submitted again, each at most ``max_retries`` times more than its first attempt."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    todo = list(jobs)
    idle_rounds = 0  # rounds whose pool broke before any job started (a broken worker start)
    while todo:
        broken: list[dict[str, Any]] = []
        before = {job["name"]: _starts(job) for job in todo}
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                 initializer=_worker_init, initargs=(threads,)) as pool:
            running = {pool.submit(fn, job): job for job in todo}
            todo = []
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = running.pop(fut)
                    try:
                        yield job, fut.result()
                    except BrokenProcessPool:
                        broken.append(job)
        if broken and all(_starts(job) == before[job["name"]] for job in broken):
            idle_rounds += 1
        for job in broken:
            starts = _starts(job)
            if idle_rounds > 1:  # twice: a pool that cannot start, not a killed worker
                yield job, _WorkerDied(
                    "the process pool's workers died before starting a session (a script "
                    "that calls render_many must do so under `if __name__ == '__main__':`)")
            elif starts > max_retries:
                yield job, _WorkerDied(
                    f"its worker process died {starts} times (killed, or out of memory); "
                    f"retries used up (max_retries = {max_retries})")
            else:
                todo.append(job)


def _starts(job: dict[str, Any]) -> int:
    """How many times a job was started in this farm run (its worker counts them)."""
    state = _read_state(Path(job["state"]))
    return int(state.get("attempts", 0)) if state.get("run") == job["run"] else 0


def _ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise SessionError("the ray backend needs Ray: pip install 'blendfx[farm]'") from None
    return ray


def _run_ray(fn: Callable[[dict[str, Any]], dict[str, Any]], jobs: list[dict[str, Any]],
             workers: int | None, max_retries: int, ray: Any,
             ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | BaseException]]:
    """Run ``fn`` on each job as a Ray task (with the job's ``resources``; Ray retries a task
    whose worker died); yield (job, record or error) as they finish. At most ``workers``
    tasks are in flight when it is given (else Ray's resources decide)."""
    remote, part = ray.remote(fn), ray.remote(render_part)
    pending = list(jobs)
    running: dict[Any, dict[str, Any]] = {}
    limit = workers or len(jobs)
    while pending or running:
        while pending and len(running) < limit:
            job = pending.pop(0)
            # a split session: its parts first, anywhere; its own task (the mix) once they
            # are done (Ray passes it their records)
            parts = [part.options(**p["resources"], max_retries=max_retries,
                                  retry_exceptions=False,
                                  name=f"blendfx:{p['name']}.{p['part']}").remote(p)
                     for p in job.get("parts", [])]
            ref = remote.options(**job["resources"],
                                 max_retries=max_retries, retry_exceptions=False,
                                 name=f"blendfx:{job['name']}").remote(job, *parts)
            running[ref] = job
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            job = running.pop(ref)
            try:
                yield job, ray.get(ref)
            except ray.exceptions.RayError as exc:  # retries used up, a lost node...
                yield job, exc


@contextlib.contextmanager
def _ray_cluster(address: str | None, num_cpus: int | None) -> Iterator[Any]:
    """Connect to the cluster at ``address`` (or start a local one) unless Ray is initialized
    already; disconnect at the end only if this call connected."""
    ray = _ray_module()
    if ray.is_initialized():
        yield ray
        return
    if address is None and not os.environ.get("RAY_ADDRESS"):  # (RAY_ADDRESS: a cluster)
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    else:  # an existing cluster (also through Ray Client, "ray://..."): only its address
        ray.init(address=address)
    try:
        yield ray
    finally:
        ray.shutdown()


# -- progress ----------------------------------------------------------------------------------
class _Progress:
    """One bar across the farm on a terminal, one line per finished session otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.enabled = enabled
        self.bar = None
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, unit="session", desc="render-many", file=sys.stderr,
                            dynamic_ncols=True)

    def update(self, outcome: SessionOutcome) -> None:
        self.done += 1
        self.failed += not outcome.ok
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"{outcome.name}: {outcome.status}"
                                     + (f", {self.failed} failed" if self.failed else ""))
            self.bar.update(1)
            return
        if outcome.status == "failed":
            what = f"FAILED: {outcome.error['message'] if outcome.error else '?'}"
        elif outcome.status == "up-to-date":
            what = "up to date"
        else:
            what = (f"rendered in {outcome.timings.get('task_s', 0.0):.2f} s "
                    f"({len(outcome.tracks_rendered)} tracks rendered, "
                    f"{len(outcome.tracks_cached)} cached)")
        print(f"render-many [{self.done}/{self.total}] {outcome.name}: {what}", file=sys.stderr,
              flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- the farm ----------------------------------------------------------------------------------
def _failed(name: str, path: str, exc: BaseException, attempts: int = 0) -> SessionOutcome:
    error = {"type": type(exc).__name__, "message": str(exc),
             "bad_input": isinstance(exc, BlendfxError)}
    return SessionOutcome(name=name, session=path, status="failed", attempts=attempts,
                          error=error)


def _up_to_date(job: dict[str, Any], session: Session) -> SessionOutcome | None:
    """The outcome of a session whose last farm render is still current, else None."""
    state = _read_state(Path(job["state"]))
    out = Path(job["out"])
    if state.get("status") != "rendered" or not state.get("inputs"):
        return None
    outputs = state.get("outputs") or {}
    files = [outputs.get("mix"), outputs.get("report_json"), *(outputs.get("stems") or {}).values()]
    if outputs.get("report_png"):
        files.append(outputs["report_png"])
    root = out.parent
    if not all(isinstance(f, str) and (root / f).is_file() for f in files):
        return None
    if _sha256(out / "report.json") != state.get("report_sha256"):
        return None  # another render wrote here since
    if _inputs_key(session, job["options"], _hash_memo(out)) != state["inputs"]:
        return None
    return SessionOutcome(name=job["name"], session=job["session"], status="up-to-date",
                          outputs=outputs, tracks_cached=list(state.get("tracks_rendered", []))
                          + list(state.get("tracks_cached", [])))


def _write_manifest(path: Path, meta: dict[str, Any], outcomes: dict[str, SessionOutcome],
                    order: list[str]) -> None:
    sessions = [dataclasses.asdict(outcomes[n]) for n in order if n in outcomes]
    summary = {k: sum(s["status"] == k for s in sessions)
               for k in ("rendered", "up-to-date", "failed")}
    atomic_write_text(path, json.dumps({**meta, "summary": {"sessions": len(order), **summary},
                                        "sessions": sessions}, indent=2) + "\n")


def render_many(sessions: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                backend: str = "local", address: str | None = None, jobs: int | None = None,
                threads: int = 1, device: str | None = None, seed: int | None = None,
                cache: bool = True, figure: bool = True, block_seconds: float = 10.0,
                max_retries: int = 3, gpus_per_session: float | None = None,
                split_seconds: float | None = 600.0, progress: bool = True) -> FarmResult:
    """Render many sessions, each into ``out/<session-name>/`` as ``blendfx render`` would.

    Parameters
    ----------
    sessions : iterable of path
        Session manifests (.toml). Their names (:func:`session_output_name`) must differ.
    out : path
        The farm's output folder; ``out/render-many.json`` is the results manifest.
    backend : {"local", "ray"}
        ``"local"``: a process pool here. ``"ray"``: Ray tasks on the cluster at ``address``
        (or on a local Ray instance started for this call, with ``jobs * threads`` CPUs, when
        none is given and Ray is not initialized already).
    address : str, optional
        The Ray cluster (``"auto"``, ``"ray://head:10001"``, ``"10.0.0.1:6379"``); ray only.
    jobs : int, optional
        Sessions rendered at the same time. Default: local, the CPU count over ``threads``;
        ray, as many as the cluster's resources allow.
    threads : int
        Track threads of each session (``render_session(jobs=...)``); a Ray task declares this
        many CPUs. Default 1: on a farm, the sessions are the parallelism.
    device, seed, cache, figure, block_seconds :
        As for :func:`~blendfx.render.render_session`. ``cache=False`` also renders sessions
        that are up to date.
    max_retries : int
        Times a session is started again after its worker process died.
    gpus_per_session : float, optional
        GPUs a Ray task declares for a session with a diffusion generator. Default: 1 when the
        cluster has GPUs and ``device`` is not ``"cpu"``, else 0.
    split_seconds : float, optional
        Ray: a session at least this long (s) whose audible tracks form independent groups
        (:func:`track_groups`) runs each group as its own task, on any node, and then its mix
        as a task that finds those tracks cached. None: never split. The local backend never
        splits (give a session more ``threads`` instead).
    progress : bool
        One progress bar across the farm on stderr (one line per session when stderr is not
        a terminal).

    Returns
    -------
    FarmResult
        Every session's outcome; failed sessions carry their error (nothing is raised for
        them).

    Raises
    ------
    SessionError
        Bad arguments (no sessions, an unknown backend, two sessions with one name, Ray
        missing), before anything is rendered.
    """
    t_start = time.perf_counter()
    paths = [str(Path(p).resolve()) for p in sessions]
    if not paths:
        raise SessionError("render-many: no sessions given")
    if backend not in BACKENDS:
        raise SessionError(f"render-many: unknown backend {backend!r} (use {' or '.join(BACKENDS)})")
    for label, value in (("jobs", jobs), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise SessionError(f"render-many: {label} must be a positive integer, got {value!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise SessionError(f"render-many: max_retries must be >= 0, got {max_retries!r}")
    if split_seconds is not None and not (isinstance(split_seconds, int | float)
                                          and split_seconds >= 0):
        raise SessionError(f"render-many: split_seconds must be >= 0 s, got {split_seconds!r}")
    if address is not None and backend != "ray":
        raise SessionError("render-many: --address is for the ray backend")
    out_dir = Path(out).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise SessionError(f"output folder {out_dir} exists and is not a folder")
    if backend == "ray":
        _ray_module()  # Ray missing: an error before any work
    options = {"device": device, "seed": seed, "cache": cache, "figure": figure,
               "block_seconds": block_seconds, "jobs": threads}
    run_id = uuid.uuid4().hex

    # load every session (names, GPU needs); one that does not load fails here, alone
    loaded: dict[str, tuple[str, Session | BaseException]] = {}
    by_name: dict[str, str] = {}
    for path in paths:
        try:
            session: Session | BaseException = load_session(path)
            name = session_output_name(path, session)  # type: ignore[arg-type]
        except BlendfxError as exc:
            session, name = exc, session_output_name(path)
        if name in by_name:
            raise SessionError(f"render-many: {by_name[name]} and {path} would both render "
                               f"into {out_dir / name} (give one a [session] name)")
        by_name[name] = path
        loaded[name] = (path, session)
    order = list(loaded)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STATE_DIR).mkdir(exist_ok=True)
    manifest = out_dir / MANIFEST
    meta = {"format": 1, "blendfx_version": blendfx.__version__, "backend": backend,
            "address": address, "jobs": jobs, "threads": threads, "options": options,
            "run": run_id}
    outcomes: dict[str, SessionOutcome] = {}
    bar = _Progress(len(order), progress)
    submitted: dict[str, float] = {}
    todo: list[dict[str, Any]] = []
    try:
        for name, (path, session) in loaded.items():
            if isinstance(session, BaseException):
                outcomes[name] = _failed(name, path, session)
                bar.update(outcomes[name])
                continue
            job = {"name": name, "session": path, "out": str(out_dir / name), "run": run_id,
                   "state": str(out_dir / STATE_DIR / f"{name}.json"), "options": options,
                   "gpu": wants_gpu(session), "parts": []}
            current = _up_to_date(job, session) if cache else None
            if current is not None:
                outcomes[name] = current
                bar.update(current)
                continue
            todo.append(job)
            groups = track_groups(session) if backend == "ray" and split_seconds is not None \
                else []
            if len(groups) > 1 and _rough_seconds(session) >= split_seconds:
                job["parts"] = [{
                    "name": name, "part": i, "tracks": group, "session": path, "run": run_id,
                    "out": job["out"],
                    "scratch": str(out_dir / STATE_DIR / "parts" / f"{name}.{i}"),
                    "state": str(out_dir / STATE_DIR / f"{name}.part{i}.json"),
                    "options": options, "gpu": wants_gpu(session, group)}
                    for i, group in enumerate(groups)]
        _write_manifest(manifest, meta, outcomes, order)

        def collect(results: Iterable[tuple[dict[str, Any], dict[str, Any] | BaseException]]
                    ) -> None:
            for job, rec in results:
                name = job["name"]
                latency = round(time.perf_counter() - submitted[name], 4)
                if isinstance(rec, BaseException):
                    state = _read_state(Path(job["state"]))
                    n = state.get("attempts", 0) if state.get("run") == run_id else 0
                    outcome = _failed(name, job["session"], rec, n)
                    outcome.timings = {"latency_s": latency}
                else:
                    outcome = SessionOutcome(
                        name=name, session=job["session"], status=rec["status"],
                        attempts=rec["attempts"], outputs=rec.get("outputs") or {}
                        if rec["status"] == "rendered" else {},
                        tracks_rendered=rec.get("tracks_rendered", []),
                        tracks_cached=rec.get("tracks_cached", []),
                        timings={**rec.get("timings", {}), "latency_s": latency},
                        host=rec.get("host"), pid=rec.get("pid"), error=rec.get("error"),
                        parts=rec.get("parts", []))
                outcomes[name] = outcome
                bar.update(outcome)
                _write_manifest(manifest, meta, outcomes, order)

        if todo:
            now = time.perf_counter()
            for job in todo:
                submitted[job["name"]] = now
            if backend == "local":
                workers = jobs or max(1, (os.cpu_count() or 1) // threads)
                collect(_run_local(render_job, todo, workers, threads, max_retries))
            else:
                with _ray_cluster(address, (jobs or max(1, (os.cpu_count() or 1) // threads))
                                  * threads) as ray:
                    cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
                    for task in [t for job in todo for t in (job, *job["parts"])]:
                        task["resources"] = task_resources(
                            task["gpu"], threads=threads, device=device,
                            cluster_gpus=cluster_gpus, gpus_per_session=gpus_per_session)
                    collect(_run_ray(render_job, todo, jobs, max_retries, ray))
    finally:
        bar.close()
    wall = time.perf_counter() - t_start
    meta["wall_s"] = round(wall, 4)
    _write_manifest(manifest, meta, outcomes, order)
    return FarmResult(out_dir, manifest, [outcomes[n] for n in order], wall, backend)


def task_resources(wants_gpu: bool, *, threads: int, device: str | None,
                   cluster_gpus: float, gpus_per_session: float | None = None) -> dict[str, float]:
    """The resources a session's Ray task declares.

    Parameters
    ----------
    wants_gpu : bool
        The session runs a diffusion generator (OutpaintInpaint, MaskedImg2Img).
    threads : int
        Track threads of the render: ``num_cpus``.
    device : str or None
        The render's device: ``"cpu"`` never asks for a GPU.
    cluster_gpus : float
        GPUs in the cluster (``ray.cluster_resources()``).
    gpus_per_session : float, optional
        GPUs for a diffusion session (a fraction shares one GPU between tasks); default 1 when
        the cluster has GPUs.

    Returns
    -------
    dict
        ``num_cpus`` and ``num_gpus``. A task with ``num_gpus = 0`` sees no GPU (Ray empties
        ``CUDA_VISIBLE_DEVICES``): such sessions render on the CPU.
    """
    gpus = 0.0
    if wants_gpu and device != "cpu":
        if gpus_per_session is not None:
            gpus = float(gpus_per_session)
        elif cluster_gpus > 0:
            gpus = 1.0
    return {"num_cpus": float(threads), "num_gpus": gpus}
