"""Benchmark: how fast the Composer writes and renders music for a noise (goal: >= 10x realtime;
stretch goal for 180 s: >= 50x, so that a whole session with composing renders at >= 20x).

For 30 s and 180 s of a real noise (the shared exercise-bike recording, resampled to 44.1 kHz and
looped), it times ``Composer.process`` (listening, composing, synthesizing, mixing) and the
re-render of the exported MIDI file, and reports the realtime factor (seconds of music per
second of computing; also in CPU seconds of this process, which a busy shared machine distorts
less), the best of ``--repeats`` runs (a shared machine only ever slows a run down), the time
of the listening stage alone (``music_analysis.listen``), the load average, the peak resident
memory of the process after composing (before the re-render and the reference) and how much
composing added to the resident memory the process had before (imports, the noise), and, as a
reference measured in the same run, the time of the mask analysis the composer starts from
(``MaskExtractor(analysis="fast").extract`` on the same noise), since timings on a shared
machine are noisy.

With ``--musicality``, how musical the Composer's music is, with real recorded music as the
reference in the same run: for every style and each of ``--noises`` (30 s of every long shared
noise recording: the exercise bike, the cat, the seven National Park Service recordings), the
key clarity and the tempo stability (:mod:`blendfx.effects.blend.musicality`) of the music, the
median per style (goal: key clarity >= 0.66 on every style); the same two measures of the
shared recorded music (``music/`` and ``music_cc/`` pieces of 20 s or more, first 60 s) and of
the noises themselves.

Run::

    nice -n 10 .venv/bin/python benchmarks/composer.py [--durations 30 180] [--prompts lofi edm]
        [--repeats 3] [--musicality] [--no-speed] [--styles lofi jazz] [--noise-seconds 30]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("BLENDFX_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
NOISE = DATA / "noise" / "long" / "exercise_bike.wav"
#: Noises the musicality table composes for (paths under noise/), split as in
#: benchmarks/blend_baselines.py: the held-out ones (the headline) were never tuned on; the
#: tuning ones are the exercise bike and each shared ESC-10 class (its clips joined end to end).
HELD_OUT_NOISES = ("long/dude_miaowing.wav",) + tuple(
    f"nps/yellowstone_{n}.mp3" for n in ("beryl_hot_spring", "mud_pot", "chorus_frogs", "dawn_bird_chorus",
                                         "bison_grazing", "horse_drawn_wagon", "wolves_howling"))
TUNING_NOISES = ("long/exercise_bike.wav",) + tuple(
    f"esc10/{c}" for c in ("dog_bark", "rain", "clock_tick", "person_sneeze", "chainsaw"))


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    """Resident set size of this process now, in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def load_noise(seconds: float, sample_rate: int = 44100) -> np.ndarray:
    import blendfx
    from blendfx.spectral.analysis import resample

    audio, sr = blendfx.read_audio(NOISE)
    audio = resample(audio, sr, sample_rate)
    reps = int(np.ceil(seconds * sample_rate / audio.shape[1]))
    return np.tile(audio, (1, reps))[:, : int(round(seconds * sample_rate))]


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def _noise(rel: str, seconds: float, sr: int) -> np.ndarray:
    """``seconds`` of a shared noise at ``sr``, mono or stereo: a file, or a folder's clips
    joined end to end."""
    import blendfx
    from blendfx.buffers import fit_channels
    from blendfx.spectral.analysis import resample

    path = DATA / "noise" / rel
    if path.is_dir():
        parts = []
        for clip in sorted(path.glob("*.ogg")):
            audio, rate = blendfx.read_audio(clip)
            parts.append(fit_channels(resample(audio, rate, sr), 1))
            if sum(p.shape[1] for p in parts) >= seconds * sr:
                break
        return np.concatenate(parts, axis=1)[:, : int(seconds * sr)]
    audio, rate = blendfx.read_audio(path, duration=seconds)
    return resample(audio, rate, sr)


def musicality(styles: list[str], seconds: float, noise_set: str = "held_out", *,
               reference: bool = True) -> dict:
    """Key clarity and tempo stability of the Composer's music per style, of recorded music and
    of the noises (see the module docstring)."""
    import blendfx
    from blendfx.effects import Composer
    from blendfx.effects.blend.musicality import key_clarity, tempo_stability

    sr = 44100
    names = {"held_out": HELD_OUT_NOISES, "tuning": TUNING_NOISES,
             "all": HELD_OUT_NOISES + TUNING_NOISES}[noise_set]
    noises = [(Path(rel).stem, _noise(rel, seconds, sr)) for rel in names]
    pieces = []
    for folder in ("music", "music_cc") if reference else ():
        for path in sorted((DATA / folder).iterdir()):
            if path.suffix.lower() not in (".ogg", ".mp3", ".flac", ".wav"):
                continue
            audio, rate = blendfx.read_audio(path, duration=60.0)
            if audio.shape[1] < 20.0 * rate:
                continue  # loops and single notes: too short for a tempo over time
            pieces.append({"piece": path.name, "key_clarity": round(key_clarity(audio, rate), 3),
                           "tempo_stability": round(tempo_stability(audio, rate), 3)})
            print(f"reference {path.name:44s} key clarity {pieces[-1]['key_clarity']:.3f}  "
                  f"tempo stability {pieces[-1]['tempo_stability']:.3f}", flush=True)
    noise_rows = [{"noise": name, "key_clarity": round(key_clarity(a, sr), 3),
                   "tempo_stability": round(tempo_stability(a, sr), 3)} for name, a in noises]
    per_style = {}
    for style in styles:
        kc, ts = [], []
        for i, (name, audio) in enumerate(noises):
            music = Composer(prompt=style, seed=i, progress=False)(audio, sr)
            kc.append(key_clarity(music, sr))
            ts.append(tempo_stability(music, sr))
            print(f"{style:10s} {name:34s} key clarity {kc[-1]:.3f}  tempo stability {ts[-1]:.3f}",
                  flush=True)
        per_style[style] = {"key_clarity_median": _median(kc), "key_clarity_min": round(min(kc), 3),
                            "tempo_stability_median": _median(ts), "tempo_stability_min": round(min(ts), 3)}
    return {
        "goal_key_clarity_median": 0.66,
        "noise_set": noise_set,
        "noises_used": list(names),
        "noise_seconds": seconds,
        "per_style": per_style,
        "worst_style_key_clarity": min(((s, v["key_clarity_median"]) for s, v in per_style.items()),
                                       key=lambda x: x[1]) if per_style else None,
        "reference_music": {"pieces": len(pieces),
                            "key_clarity_median": _median([r["key_clarity"] for r in pieces]),
                            "tempo_stability_median": _median([r["tempo_stability"] for r in pieces]),
                            "rows": pieces},
        "noises": {"key_clarity_median": _median([r["key_clarity"] for r in noise_rows]),
                   "tempo_stability_median": _median([r["tempo_stability"] for r in noise_rows]),
                   "rows": noise_rows},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[30.0, 180.0])
    parser.add_argument("--prompts", nargs="+", default=["lofi"])
    parser.add_argument("--repeats", type=int, default=2, help="runs per case; the best is reported")
    parser.add_argument("--musicality", action="store_true", help="key clarity and tempo stability table")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    parser.add_argument("--styles", nargs="+", default=None, help="styles of the musicality table (all)")
    parser.add_argument("--noise-seconds", type=float, default=30.0, help="noise length for musicality")
    parser.add_argument("--noise-set", choices=["held_out", "tuning", "all"], default="held_out",
                        help="the noises of the musicality table (held_out: the headline)")
    parser.add_argument("--no-reference", action="store_true", help="skip the recorded-music reference")
    args = parser.parse_args(argv)
    if args.no_speed:
        args.durations = []

    from blendfx.effects import Composer, MaskExtractor
    from blendfx.effects.composer.composer import render_midi
    from blendfx.effects.composer.listening import listen
    from blendfx.effects.composer.styles import style_from_prompt

    sr = 44100
    if not NOISE.exists():
        print(f"shared data not found: {NOISE}", file=sys.stderr)
        return {}
    Composer(prompt="lofi", progress=False).process(load_noise(2.0), sr)  # warm-up: imports, tables
    results = []
    for seconds in args.durations:
        noise = load_noise(seconds)
        reference = None
        for prompt in args.prompts:
            walls, cpus = [], []
            before = current_rss_mib()
            rss = 0.0
            for repeat in range(max(1, args.repeats)):
                music = None  # the last run's music is not kept while the next one runs
                composer = Composer(prompt=prompt, seed=0, progress=False)
                t0, c0 = time.perf_counter(), time.process_time()
                music = composer.process(noise, sr)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                if repeat == 0:  # the first run's peak, before the re-render and the reference
                    rss = peak_rss_mib()
            elapsed, cpu = min(walls), min(cpus)
            style = style_from_prompt(prompt).style
            t0 = time.perf_counter()
            listen(noise, sr, tempo_range=style.tempo, default_bpm=float(np.mean(style.tempo)))
            listening = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "piece.mid"
                composer.export_midi(path)
                t0 = time.perf_counter()
                again = render_midi(path, sr)
                rerender = time.perf_counter() - t0
            if reference is None:
                t0 = time.perf_counter()
                MaskExtractor(analysis="fast").extract(noise, sr)
                reference = time.perf_counter() - t0
            row = {
                "duration_s": seconds,
                "prompt": prompt,
                "seconds": round(elapsed, 3),
                "realtime_factor": round(seconds / elapsed, 2),
                "seconds_all_runs": [round(w, 3) for w in walls],
                "cpu_seconds": round(cpu, 3),
                "cpu_realtime_factor": round(seconds / cpu, 2),
                "listen_s": round(listening, 3),
                "render_midi_s": round(rerender, 3),
                "render_midi_realtime_factor": round(seconds / rerender, 2),
                "rerender_identical": bool(np.array_equal(music, again)),
                "reference_mask_extractor_s": round(reference, 3),
                "ratio_to_reference": round(elapsed / reference, 2),
                "notes": int(sum(len(t.notes) for t in composer.last_arrangement.tracks)),
                "peak_rss_mib": round(rss, 1),
                "rss_before_mib": round(before, 1),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
            results.append(row)
            print(f"{seconds:6.0f} s {prompt:10s} {elapsed:7.2f} s  x{row['realtime_factor']:5.2f} realtime "
                  f"(CPU x{row['cpu_realtime_factor']:5.2f})  listen {listening:5.2f} s  "
                  f"render_midi {rerender:6.2f} s  reference {reference:5.2f} s  "
                  f"peak RSS {row['peak_rss_mib']:.0f} MiB (before {before:.0f})  "
                  f"load {row['load_average'][0]:.1f}", flush=True)
    summary = {
        "benchmark": "composer",
        "goal_realtime_factor": 10.0,
        "stretch_goal_realtime_factor_180s": 50.0,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "results": results,
    }
    for seconds in args.durations:
        rows = [r for r in results if r["duration_s"] == seconds]
        if rows:
            summary[f"realtime_factor_{int(seconds)}s"] = min(r["realtime_factor"] for r in rows)
            summary[f"cpu_realtime_factor_{int(seconds)}s"] = min(r["cpu_realtime_factor"] for r in rows)
    summary["peak_rss_mib"] = round(peak_rss_mib(), 1)  # before the musicality table
    if args.musicality:
        from blendfx.effects.composer.styles import style_names

        summary["musicality"] = musicality(args.styles or style_names(), args.noise_seconds, args.noise_set,
                                           reference=not args.no_reference)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
