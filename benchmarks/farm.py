"""Benchmark render_many: one session after another, the local process pool, and Ray.

The sessions: ``--sessions`` (8) copies of the demo's job at ``--seconds`` (30 s) each, with
different seeds: a synthesized train (a FLAC stem) and music the Composer writes for it
(``Blend``), mastered to -16 LUFS, report.png included. Three ways to render them, each in a
fresh process (so imports, worker start-up and memory are part of what is measured), in one
run (``--repeats R``: R rounds of the three, interleaved, each mode's fastest reported, so a
neighbour's burst on a shared machine does not decide the ratios):

1. ``sequential``: ``render_session(..., jobs=1)`` for one session after another: one core
   per session (``blendfx render --jobs 1``: one track at a time and none of the render's
   helper threads, see :func:`blendfx.threads.core_limit`), the unit of work a farm hands
   out. The time includes importing the renderer; ``sequential_cores`` (its CPU seconds over
   its wall seconds) says how close to one core it stays.

   Every mode runs with ``OMP_NUM_THREADS=1`` (what Ray sets for a task of ``num_cpus=1``, and
   the local pool for its workers), so torch's own thread pool does not make the baseline a
   two-thread render: each session is one thread of work in all three.
2. ``local``: ``render_many(backend="local")``: a process pool of as many workers as CPUs,
   each session on one core (``threads=1``). The time is the call's: worker start-up and their
   imports included.
3. ``ray``: ``render_many(backend="ray")`` on a local Ray cluster (``ray.init(num_cpus=CPUs)``),
   one task per session with ``num_cpus=1``. The cluster's start is timed apart
   (``ray_init_s``: paid once per cluster, not per farm); the farm's time is the call's, its
   workers' imports included.

Figures: the wall seconds of each, ``speedup_ray_vs_sequential`` (goal >= 1.7 on 2 cores; the
ceiling is the CPU count), ``ray_vs_local_pool`` (the pool's time over Ray's; goal >= 0.95),
per-task overhead (``dispatch_ms``: the round trip of an empty task on warm workers;
``bookkeeping_s``: the farm's own work per session in the worker, outside render_session;
``idle_slot_s``: CPU slots x wall minus the tasks' time, per session: start-up, imports,
scheduling and the tail), ``peak_rss_mb`` of each mode's whole process tree (sampled every
0.1 s; shared pages count once per process), and the load average before and after each mode
(the machine may be shared); ``tasks_cpu_s``: the CPU seconds of the sessions' own work in
each mode (the sum over tasks, in their worker processes), which a busy machine does not
change much. Every run's mixes and stems must be byte-identical.
``session_io_mb``: what one session reads (its stems) and writes (outputs and render cache),
MiB: the load a cluster's shared storage must carry per session.

Usage::

    python benchmarks/farm.py                 # 8 sessions of 30 s
    python benchmarks/farm.py --repeats 3     # three interleaved rounds
    python benchmarks/farm.py --quick         # 4 sessions of 5 s (a smoke run)

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


# -- the cases (each in a child process) -------------------------------------------------------
def prepare(work: Path, args: argparse.Namespace) -> dict:
    import tomli_w
    from blendfx.render.demo import write_demo_session

    paths = []
    for i in range(args.sessions):
        path = write_demo_session(work / "sessions" / f"s{i}", duration=args.seconds, seed=i)
        manifest = tomllib.loads(path.read_text(encoding="utf-8"))
        manifest["session"]["name"] = f"bench-{i}"  # one output folder each
        path.write_text(tomli_w.dumps(manifest), encoding="utf-8")
        paths.append(str(path))
    return {"paths": paths}


def case_sequential(out: Path, paths: list[str]) -> dict:
    t0 = time.perf_counter()
    from blendfx.render import render_session  # (timed: the pool's workers import it too)

    tasks = []
    for path in paths:
        c0, r0 = time.process_time(), time.perf_counter()
        result = render_session(path, out / result_name(path), jobs=1,
                                progress=False)
        tasks.append({"wall_s": time.perf_counter() - r0, "cpu_s": time.process_time() - c0,
                      "tracks_s": result.report["timings"]["tracks_s"]})
    return {"wall_s": time.perf_counter() - t0, "tasks": tasks,
            "cpu_s": time.process_time()}


def result_name(path: str) -> str:
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))["session"]["name"]


def _noop(i: int) -> int:
    return os.getpid()


def run_noop(backend: str, n: int) -> list[float]:
    """Round-trip seconds of ``n`` empty tasks sent one at a time to one warm worker: the
    dispatch overhead of a task, without the work."""
    times = []
    if backend == "local":
        with ProcessPoolExecutor(max_workers=1,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(_noop, -1).result()  # start the worker
            for i in range(n):
                t0 = time.perf_counter()
                pool.submit(_noop, i).result()
                times.append(time.perf_counter() - t0)
        return times
    import ray

    remote = ray.remote(_noop).options(num_cpus=1)
    ray.get(remote.remote(-1))
    for i in range(n):
        t0 = time.perf_counter()
        ray.get(remote.remote(i))
        times.append(time.perf_counter() - t0)
    return times


def case_farm(out_dir: Path, paths: list[str], backend: str) -> dict:
    from blendfx.render import render_many

    out: dict = {}
    jobs = os.cpu_count() or 1
    if backend == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=jobs, include_dashboard=False, logging_level=logging.WARNING)
        out["ray_init_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = render_many(paths, out_dir, backend=backend, jobs=jobs, progress=False)
    out["wall_s"] = time.perf_counter() - t0
    assert result.ok, [s.error for s in result.failed]
    out["tasks"] = [{"wall_s": s.timings["task_s"], "render_s": s.timings["render_s"],
                     "cpu_s": s.timings["cpu_s"], "pid": s.pid} for s in result.sessions]
    out["dispatch_ms"] = sorted(t * 1e3 for t in run_noop(backend, 50))[25]  # the median
    if backend == "ray":
        ray.shutdown()
    return out


# -- the parent --------------------------------------------------------------------------------
def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (from /proc), MiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / 2**20


def run_case(args: argparse.Namespace, work: Path, case: str, out: str) -> dict:
    load_before = os.getloadavg()
    proc = subprocess.Popen([sys.executable, __file__, "--case", case, "--work", str(work),
                             "--out", out, "--sessions", str(args.sessions),
                             "--seconds", str(args.seconds)],
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"case {case} failed ({proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(peak[0], 1)
    result["load_average_before_after"] = [round(load_before[0], 2),
                                           round(os.getloadavg()[0], 2)]
    return result


def compare(work: Path, folders: list[str]) -> bool:
    """True when every run wrote the same mix and stems (bytes) for every session."""
    ref = work / folders[0]
    files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file()
                   and ".blendfx-cache" not in p.parts and p.suffix in (".wav", ".flac"))
    assert files, "no outputs"
    return all((work / m / f).read_bytes() == (ref / f).read_bytes() for m in folders[1:]
               for f in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of each mode, interleaved; each mode's fastest is reported")
    ap.add_argument("--quick", action="store_true", help="4 sessions of 5 s")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.sessions, args.seconds = 4, 5.0
    if args.case:  # a child
        work = Path(args.work)
        paths = json.loads((work / "paths.json").read_text())
        if args.case == "prepare":
            out = prepare(work, args)
            (work / "paths.json").write_text(json.dumps(out["paths"]))
        elif args.case == "sequential":
            out = case_sequential(work / args.out, paths)
        else:
            out = case_farm(work / args.out, paths, args.case)
        print(json.dumps(out))
        return

    modes = ["sequential", "local", "ray"]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="blendfx-farm-bench.") as tmp:
        work = Path(tmp)
        (work / "paths.json").write_text("[]")
        run_case(args, work, "prepare", "-")
        for r in range(args.repeats):
            for m in modes:
                runs[m].append(run_case(args, work, m, f"{m}-{r}"))
        folders = [f"{m}-{r}" for r in range(args.repeats) for m in modes]
        identical = compare(work, folders)
        # bytes per session on the (shared) storage: the stems read, and everything written
        # (outputs and the render cache); what a real cluster's file server must carry
        read_mb = sum(p.stat().st_size for p in (work / "sessions").rglob("*")
                      if p.is_file() and p.suffix != ".toml") / 2**20 / args.sessions
        written_mb = sum(p.stat().st_size for p in (work / "ray-0").rglob("*")
                         if p.is_file() and p.name != "render-many.json") / 2**20 / args.sessions
    res = {m: min(runs[m], key=lambda x: x["wall_s"]) for m in modes}
    seq, local, ray = (res[m]["wall_s"] for m in modes)
    cpus = os.cpu_count() or 1
    n = args.sessions

    def per_task(r: dict) -> dict:
        tasks = r["tasks"]
        return {"bookkeeping_s": round(sum(t["wall_s"] - t["render_s"] for t in tasks) / n, 4),
                "idle_slot_s": round((r["wall_s"] * cpus - sum(t["wall_s"] for t in tasks)) / n, 3),
                "dispatch_ms": round(r["dispatch_ms"], 3), "workers": len({t["pid"] for t in tasks})}

    session_cpu = [t["cpu_s"] for t in res["sequential"]["tasks"]]
    session_wall = [t["wall_s"] for t in res["sequential"]["tasks"]]
    summary = {
        "sessions": n, "seconds": args.seconds, "cpus": cpus, "repeats": args.repeats,
        "sequential_s": round(seq, 3), "local_pool_s": round(local, 3), "ray_s": round(ray, 3),
        "ray_init_s": round(res["ray"]["ray_init_s"], 3),
        "speedup_ray_vs_sequential": round(seq / ray, 3),
        "sequential_cores": round(res["sequential"]["cpu_s"] / seq, 3),
        "speedup_local_vs_sequential": round(seq / local, 3),
        "ray_vs_local_pool": round(local / ray, 3),
        "speedup_ray_with_init_vs_sequential": round(seq / (ray + res["ray"]["ray_init_s"]), 3),
        "all_runs_s": {m: [round(x["wall_s"], 2) for x in runs[m]] for m in modes},
        "tasks_cpu_s": {m: round(sum(t["cpu_s"] for t in res[m]["tasks"]), 2) for m in modes},
        "session_wall_s": [round(min(session_wall), 3), round(max(session_wall), 3)],
        "session_cpu_s": [round(min(session_cpu), 3), round(max(session_cpu), 3)],
        "overhead": {"local": per_task(res["local"]), "ray": per_task(res["ray"])},
        "peak_rss_mb": {m: max(x["peak_rss_mb"] for x in runs[m]) for m in modes},
        "load_average_before_after": {m: [x["load_average_before_after"] for x in runs[m]]
                                      for m in modes},
        "identical_outputs": identical,
        "session_io_mb": {"read": round(read_mb, 2), "written": round(written_mb, 2)},
    }
    for key in ("sequential_s", "local_pool_s", "ray_s", "ray_init_s"):
        print(f"{key:>28}: {summary[key]:8.2f} s")
    for key in ("speedup_ray_vs_sequential", "speedup_local_vs_sequential", "ray_vs_local_pool"):
        print(f"{key:>28}: {summary[key]:8.3f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
