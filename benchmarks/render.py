"""Benchmark the session renderer on the CPU.

Two cases, each in its own subprocess (so one case's memory never shows in the other's figure):

1. ``session``: a 4-track, 3-minute session: a noise (the demo's synthesized train), music the
   Composer writes for it (a generated track keyed by the noise, with a compressor and reverb),
   and two stems with DSP chains (a pad: EQ, compression, reverb; a percussion loop: high-pass,
   a Ducker keyed by the noise, a limiter). Mastered to -16 LUFS / -1 dBTP, report.png included.
   Goal: ``realtime_factor`` (session seconds per wall-clock second of ``render_session``) >= 20.
   ``cpu_realtime_factor`` divides by the CPU seconds used instead (the figure a quiet machine
   would show when the render runs on one core; the wall clock on a shared machine is mostly
   the other tenants).
   A second, cached render of the unchanged session is timed too. Every run's wall and CPU
   seconds, the per-track seconds, the renderer's own ``timings`` (with ``cpu_s`` and
   ``tracks_cpu_s``) and the load average before and after are reported: on a shared machine
   the CPU figures are the comparable ones.
   ``renderer``: the same session with the generator replaced by a Utility (the music track is
   the noise through the music chain): the renderer's own speed, measured in the same run.
   Goal: ``renderer_realtime_factor`` >= 50 (so that with a Composer at >= 50x realtime the
   whole session reaches 20x).
2. ``long``: a single 60-minute stereo stem (synthesized block by block into a temporary WAV)
   through a streaming DSP chain (high-pass, compressor, utility, reverb). Goal:
   ``peak_rss_mb`` <= 1500 (a 60-minute float32 stereo stem alone is 1,270 MB).

3. ``daw``: the session of the DawDreamer comparison in issue 23: 4 stereo stems of
   ``--session-seconds`` (180 s), a compressor and a reverb (pedalboard's) on two of them, a
   24-bit WAV mix, no loudness target (the mix's level as it is, as a DAW bounce). Rendered as
   DawDreamer would, the mix only (``cache=False, stems=False, figure=False``), then with the
   defaults (cache, stems, report). Each reports its wall and CPU seconds and the bytes it wrote
   (``wchar`` of ``/proc/self/io``: everything passed to ``write``, cache included), beside the
   size of the mix alone and the time ``import blendfx`` plus the renderer took.

Each case's inputs are synthesized by an earlier process, and the render runs in a fresh one:
``peak_rss_mb`` is that process's own peak resident set (``getrusage(RUSAGE_SELF)`` in the
child, cross-checked by the parent's ``RUSAGE_CHILDREN`` when the case is the largest so far).
The reference figure measured in the same run: ``baseline_rss_mb``, the peak RSS of a process
that only imports blendfx and the renderer.

Usage::

    python benchmarks/render.py            # both cases, full size
    python benchmarks/render.py --quick    # 30 s session, 3-minute long stem (a smoke run)
    python benchmarks/render.py --repeats 3  # each session case 3 times, the fastest reported
    python benchmarks/render.py --only daw   # the DawDreamer-like session alone

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used: on a shared, loaded machine the
    wall clock says more about the neighbours than about the renderer."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# -- the cases (run in a child process) -------------------------------------------------------
def case_baseline(_: Path, __: argparse.Namespace) -> dict:
    import blendfx  # noqa: F401
    from blendfx.render.renderer import render_session  # noqa: F401

    return {}


def prepare_session(work: Path, args: argparse.Namespace) -> dict:
    import blendfx
    from blendfx.effect import EFFECT_REGISTRY
    from blendfx.render.demo import synthesize_train
    from blendfx.render.session import save_session

    seconds, sr = args.session_seconds, 44100
    folder = work / "session"
    t = np.arange(int(seconds * sr)) / sr
    blendfx.write_audio(folder / "train.flac", synthesize_train(seconds, sr, seed=1), sr)
    chord = sum(np.sin(2 * np.pi * f * t) for f in (196.0, 246.9, 293.7, 370.0)) / 4
    pad = 0.3 * chord * (0.6 + 0.4 * np.sin(2 * np.pi * t / 8.0))
    blendfx.write_audio(folder / "pad.wav", np.stack([pad, np.roll(pad, 300)]).astype(np.float32),
                        sr)
    rng = np.random.default_rng(2)
    perc = np.zeros(t.size)
    hit = rng.standard_normal(int(0.08 * sr)) * np.exp(-np.arange(int(0.08 * sr)) / (0.01 * sr))
    for k in range(int(seconds * 2)):  # eighth notes at 120 BPM... with accents
        i = int(k * 0.25 * sr)
        m = min(hit.size, t.size - i)
        if m > 0:
            perc[i:i + m] += (0.5 if k % 4 == 0 else 0.25) * hit[:m]
    perc *= 0.5 / np.abs(perc).max()
    blendfx.write_audio(folder / "perc.wav", perc.astype(np.float32), sr)

    composer = "Composer" in EFFECT_REGISTRY
    music: dict = {"name": "music", "role": "music", "key": "train",
                   "chain": {"type": "Chain", "plugins": [
                       {"type": "pedalboard.Compressor", "threshold_db": -18.0, "ratio": 2.0},
                       {"type": "pedalboard.Reverb", "room_size": 0.3, "wet_level": 0.15}]}}
    if composer:
        music["generator"] = {"type": "Composer", "prompt": "lofi hip hop"}
    else:  # stand-in until the Composer is merged: a file stem, so the session still has 4 tracks
        blendfx.write_audio(folder / "music.wav", (0.5 * np.roll(pad, 5000)).astype(np.float32), sr)
        music.pop("key")
        music["file"] = "music.wav"
    manifest = {
        "session": {"name": "bench", "sample_rate": sr, "tempo": 96},
        "master": {"target_lufs": -16.0, "true_peak_dbtp": -1.0},
        "tracks": [
            {"name": "train", "file": "train.flac", "role": "noise"},
            music,
            {"name": "pad", "file": "pad.wav", "role": "music", "pan": -0.2, "chain": {
                "type": "Chain", "plugins": [
                    {"type": "pedalboard.HighShelfFilter", "cutoff_frequency_hz": 4000.0,
                     "gain_db": -3.0},
                    {"type": "pedalboard.Compressor", "threshold_db": -20.0, "ratio": 3.0},
                    {"type": "pedalboard.Reverb", "room_size": 0.7, "wet_level": 0.3}]}},
            {"name": "perc", "file": "perc.wav", "role": "fx", "pan": 0.3, "sidechain": "train",
             "chain": {"type": "Chain", "plugins": [
                 {"type": "pedalboard.HighpassFilter", "cutoff_frequency_hz": 150.0},
                 {"type": "Ducker", "depth_db": 6.0, "threshold_db": -24.0},
                 {"type": "pedalboard.Limiter", "threshold_db": -6.0}]}},
        ],
    }
    save_session(manifest, folder / "session.toml")
    # the renderer alone: the same session with the generator replaced by a Utility (the music
    # track is then the key track through the music chain), measured in the same run
    alone = json.loads(json.dumps(manifest))
    if composer:
        alone["tracks"][1]["generator"] = {"type": "Utility", "gain_db": -6.0}
    save_session(alone, folder / "renderer.toml")
    return {"composer": "Composer" if composer else "missing (file stand-in)"}


def case_session(work: Path, args: argparse.Namespace, manifest: str = "session.toml",
                 out: str = "out") -> dict:
    from blendfx.effect import EFFECT_REGISTRY
    from blendfx.render.renderer import render_session

    seconds = args.session_seconds
    composer = "Composer" in EFFECT_REGISTRY and manifest == "session.toml"
    path = work / "session" / manifest
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu_s()
    result = render_session(path, work / out, progress=False, device="cpu")
    cold, cpu = time.perf_counter() - t0, _cpu_s() - c0
    load_after = os.getloadavg()[0]
    t0 = time.perf_counter()
    again = render_session(path, work / out, progress=False, device="cpu")
    warm = time.perf_counter() - t0
    assert all(tr.cached for tr in again.tracks)
    return {"seconds": seconds, "render_s": round(cold, 3), "realtime_factor": seconds / cold,
            "cpu_s": round(cpu, 3), "cpu_realtime_factor": seconds / cpu,
            "cached_render_s": round(warm, 3), "cached_realtime_factor": seconds / warm,
            "composer_generated": composer,
            "generator_track_s": result.track("music").seconds,
            "timings": result.report["timings"],
            "tracks_s": {tr.name: tr.seconds for tr in result.tracks},
            "load_average_before_after": [round(load_before, 2), round(load_after, 2)],
            "output_lufs": result.report["master"]["output_lufs"]}


def case_renderer(work: Path, args: argparse.Namespace) -> dict:
    """The session with the generator replaced by a Utility: the renderer's own speed."""
    return case_session(work, args, "renderer.toml", "out-renderer")


def prepare_long(work: Path, args: argparse.Namespace) -> dict:
    from blendfx.audio_io import audio_writer
    from blendfx.render.session import save_session

    minutes, sr = args.long_minutes, 44100
    folder = work / "long"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    block = 30 * sr
    t0 = time.perf_counter()
    # a slowly changing chord over noise, written 30 s at a time
    with audio_writer(folder / "long.wav", sr, 2, bit_depth=16) as w:
        for start in range(0, int(minutes * 60 * sr), block):
            t = (start + np.arange(block)) / sr
            f = 110.0 * 2 ** ((start // block) % 7 / 12)
            x = 0.2 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal((2, block))
            w.write(x.astype(np.float32))
    synth_s = time.perf_counter() - t0
    manifest = {
        "session": {"name": "long", "sample_rate": sr},
        "master": {"target_lufs": -16.0, "true_peak_dbtp": -1.0},
        "tracks": [{"name": "long", "file": "long.wav", "chain": {"type": "Chain", "plugins": [
            {"type": "pedalboard.HighpassFilter", "cutoff_frequency_hz": 60.0},
            {"type": "pedalboard.Compressor", "threshold_db": -20.0, "ratio": 2.5},
            {"type": "Utility", "gain_db": -2.0, "pan": 0.1},
            {"type": "pedalboard.Reverb", "room_size": 0.5, "wet_level": 0.2}]}}],
    }
    save_session(manifest, folder / "session.toml")
    return {"synthesize_s": round(synth_s, 1)}


def case_long(work: Path, args: argparse.Namespace) -> dict:
    from blendfx.render.renderer import render_session

    minutes = args.long_minutes
    t0, c0 = time.perf_counter(), _cpu_s()
    result = render_session(work / "long" / "session.toml", work / "out", progress=False)
    render_s, cpu = time.perf_counter() - t0, _cpu_s() - c0
    assert result.tracks[0].streamed
    return {"minutes": minutes, "render_s": round(render_s, 1), "cpu_s": round(cpu, 1),
            "realtime_factor": minutes * 60 / render_s, "timings": result.report["timings"]}


def _written_bytes() -> int:
    """Bytes this process has passed to ``write`` so far (Linux ``/proc/self/io``)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def prepare_daw(work: Path, args: argparse.Namespace) -> dict:
    """Four stereo stems (a chord pad, a bass line, noise hats, a noise bed) and the session."""
    import blendfx
    import tomli_w

    sr, seconds = 44100, args.session_seconds
    folder = work / "daw"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    stems = {
        "pad": sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.15,
        "bass": 0.3 * np.sin(2 * np.pi * 55.0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)),
        "hats": 0.1 * rng.standard_normal(t.size) * (np.mod(t, 0.25) < 0.03),
        "bed": 0.05 * rng.standard_normal(t.size),
    }
    tracks = []
    for i, (name, x) in enumerate(stems.items()):
        stereo = np.stack([x, np.roll(x, 17 + i)]).astype(np.float32)
        blendfx.write_audio(folder / f"{name}.wav", stereo, sr)
        track = {"name": name, "file": f"{name}.wav", "role": "music"}
        if i < 2:  # compressor + reverb on two of them
            track["chain"] = {"type": "Chain", "plugins": [
                {"type": "pedalboard.Compressor", "threshold_db": -18.0, "ratio": 3.0},
                {"type": "pedalboard.Reverb", "room_size": 0.4, "wet_level": 0.2}]}
        tracks.append(track)
    manifest = {"session": {"name": "daw", "sample_rate": sr},
                "master": {"target_lufs": False, "true_peak_dbtp": 0.0, "format": "wav",
                           "bit_depth": 24},
                "tracks": tracks}
    (folder / "session.toml").write_text(tomli_w.dumps(manifest), encoding="utf-8")
    return {"stems": len(stems), "seconds": seconds}


def case_daw(work: Path, args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    from blendfx.render.renderer import render_session

    import_s = time.perf_counter() - t0
    out = {"seconds": args.session_seconds, "import_s": round(import_s, 3)}
    for name, kw in (("mix_only", {"cache": False, "stems": False, "figure": False}),
                     ("defaults", {})):
        shutil.rmtree(work / f"out-daw-{name}", ignore_errors=True)
        w0, t0, c0 = _written_bytes(), time.perf_counter(), _cpu_s()
        result = render_session(work / "daw" / "session.toml", work / f"out-daw-{name}",
                                progress=False, **kw)
        wall, cpu, wrote = time.perf_counter() - t0, _cpu_s() - c0, _written_bytes() - w0
        out[name] = {"render_s": round(wall, 3), "cpu_s": round(cpu, 3),
                     "realtime_factor": round(args.session_seconds / wall, 2),
                     "bytes_written": wrote, "mix_bytes": result.mix.stat().st_size,
                     "timings": result.report["timings"]}
    return out


CASES = {"baseline": case_baseline, "prepare_daw": prepare_daw, "daw": case_daw,
         "prepare_session": prepare_session, "session": case_session, "renderer": case_renderer,
         "prepare_long": prepare_long, "long": case_long}


def child(args: argparse.Namespace) -> None:
    out = CASES[args.case](Path(args.work), args)
    out["peak_rss_mb"] = round(_rss_mb(), 1)
    print(json.dumps(out))


def run_case(name: str, args: argparse.Namespace, work: Path) -> dict:
    """Run one case in a fresh process; its inputs were written by an earlier process."""
    cmd = [sys.executable, os.path.abspath(__file__), "--case", name, "--work", str(work),
           "--session-seconds", str(args.session_seconds), "--long-minutes", str(args.long_minutes)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"case {name} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    if after > before:  # this child is the largest so far: the parent's figure is its own
        result["peak_rss_mb_children"] = round(after, 1)
    result["process_wall_s"] = round(wall, 1)
    print(f"{name}: {json.dumps(result)}", flush=True)
    return result


def best_of(name: str, args: argparse.Namespace, work: Path) -> dict:
    """Run a render case ``args.repeats`` times (fresh processes, fresh output folders) and keep
    the fastest wall clock: on a shared machine the slow runs measure the neighbours."""
    runs = []
    for i in range(args.repeats):
        for out in ("out", "out-renderer"):  # a cold render each time
            shutil.rmtree(work / out, ignore_errors=True)
        run = run_case(name, args, work)
        run["load_average_1min"] = round(os.getloadavg()[0], 2)
        run["repeat"] = i
        runs.append(run)
    best = min(runs, key=lambda r: r["render_s"])
    best["render_s_all"] = [r["render_s"] for r in runs]
    best["cpu_s_all"] = [r["cpu_s"] for r in runs]
    best["load_average_all"] = [r["load_average_1min"] for r in runs]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", choices=["session", "long", "daw"], help="run one case")
    parser.add_argument("--session-seconds", type=float, default=180.0)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each session case; the fastest is reported (default 1)")
    args = parser.parse_args()
    if args.case:
        child(args)
        return
    if args.quick:
        args.session_seconds, args.long_minutes = 30.0, 3.0
    with tempfile.TemporaryDirectory(prefix="blendfx-bench-") as tmp:
        work = Path(tmp)
        baseline = run_case("baseline", args, work)
        session = alone = long = daw = None
        if args.only in (None, "daw"):
            run_case("prepare_daw", args, work)
            daw = run_case("daw", args, work)
        if args.only in (None, "session"):
            prepared = run_case("prepare_session", args, work)
            alone = best_of("renderer", args, work)
            session = best_of("session", args, work)
            session["composer"] = prepared["composer"]
        if args.only in (None, "long"):
            run_case("prepare_long", args, work)
            long = run_case("long", args, work)
    summary: dict = {"cpu_count": os.cpu_count(),
                     "load_average_1min": round(os.getloadavg()[0], 2),
                     "baseline_rss_mb": baseline["peak_rss_mb"]}
    if session:
        summary.update({
            "session_seconds": args.session_seconds,
            "realtime_factor": round(session["realtime_factor"], 2),
            "realtime_factor_goal": 20,
            "cpu_realtime_factor": round(session["cpu_realtime_factor"], 2),
            "cached_realtime_factor": round(session["cached_realtime_factor"], 2),
            "composer": session["composer"],
            "generator_track_s": session["generator_track_s"],
            "session_render_s": session["render_s"],
            "session_cpu_s": session["cpu_s"],
            "session_render_s_all": session["render_s_all"],
            "session_cpu_s_all": session["cpu_s_all"],
            "session_tracks_s": session["tracks_s"],
            "session_timings": session["timings"],
            "session_load_average": session["load_average_1min"],
            "session_load_average_all": session["load_average_all"],
            "session_load_average_before_after": session["load_average_before_after"],
            "session_peak_rss_mb": session["peak_rss_mb"],
            "session_rss_over_baseline": round(session["peak_rss_mb"] / baseline["peak_rss_mb"],
                                               2),
            "renderer_realtime_factor": round(alone["realtime_factor"], 2),
            "renderer_realtime_factor_goal": 50,
            "renderer_cpu_realtime_factor": round(alone["cpu_realtime_factor"], 2),
            "renderer_render_s": alone["render_s"],
            "renderer_cpu_s": alone["cpu_s"],
            "renderer_load_average": alone["load_average_1min"],
            "renderer_timings": alone["timings"],
            "renderer_peak_rss_mb": alone["peak_rss_mb"],
            "repeats": args.repeats})
    if daw:
        summary["daw"] = {k: daw[k] for k in ("seconds", "import_s", "peak_rss_mb")}
        for name in ("mix_only", "defaults"):
            summary["daw"][name] = {k: v for k, v in daw[name].items() if k != "timings"}
    if long:
        summary.update({
            "long_minutes": args.long_minutes,
            "long_peak_rss_mb": long["peak_rss_mb"],
            "long_peak_rss_goal_mb": 1500,
            "long_realtime_factor": round(long["realtime_factor"], 2),
            "long_rss_over_baseline": round(long["peak_rss_mb"] / baseline["peak_rss_mb"], 2)})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
