"""Benchmark of the Stylizer: RT60 accuracy, speed, and stylize vs separate_remix.

Run from the repository root::

    .venv/bin/python benchmarks/stylizer.py

Prints its figures as it goes; the LAST line is one JSON object:

- ``rt60_median_rel_error``: median |estimate / truth - 1| of the blind broadband RT60 on dry
  material (speech-like bursts, clicks, an ESC-10 dog bark) in textbook rooms of 0.3-2 s;
  ``output_rt60_median_rel_error``: the same for the T20 (500 Hz-4 kHz) of the room the stylizer
  builds from each reference;
- ``drr_median_abs_error_db``: median |error| in dB of the blind DRR for rooms of -6 to +12 dB;
- ``realtime_factor``: seconds of 60 s stereo 44.1 kHz music stylized per second of CPU wall time
  (reference analysed once, cached), with ``reference_fftconvolve_s``, the time of one plain
  scipy FFT convolution of the same stem with a 1 s response measured in the same run, and
  ``stylize_time_over_fftconvolve`` (stylizer time over that; the machine's load cancels);
- ``comparison``: log-mel long-term spectral distance in dB (lower = closer) of the output to the
  reference, for the input itself, ``stylize`` and ``separate_remix``, with the shared noise
  clips (and two synthetic rooms) as references, on a dry speech-like stem and a music stem.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

import blendfx  # noqa: E402
from blendfx.effects import Stylizer  # noqa: E402
from blendfx.effects.stylizer.probe_signals import click_train, exponential_ir, speech_like  # noqa: E402
from blendfx.effects.stylizer.reference_profile import analyze_reference  # noqa: E402
from blendfx.effects.stylizer.reverb_analysis import estimate_reverb, octave_centers, schroeder_rt60  # noqa: E402
from blendfx.effects.stylizer.spectral_match import ltas_distance_db  # noqa: E402
from blendfx.spectral.analysis import resample  # noqa: E402
from scipy.signal import fftconvolve  # noqa: E402

SR = 44100
RT60S = (0.3, 0.6, 1.0, 2.0)
ESC = {"dog_bark": "1-100032-A.ogg", "rain": "1-17367-A.ogg", "clock_tick": "1-21934-A.ogg",
       "person_sneeze": "1-26143-A.ogg", "chainsaw": "1-116765-A.ogg"}
LONG = ("exercise_bike.wav", "dude_miaowing.wav")


def log(*args) -> None:
    print(*args, flush=True)


def in_room(dry: np.ndarray, rt60: float, seed: int = 7, drr_db: float = 0.0) -> np.ndarray:
    wet = fftconvolve(dry, exponential_ir(rt60, SR, drr_db, seed=seed))[: dry.size]
    floor = 1e-3 * np.abs(dry).max()
    return (wet + floor * np.random.default_rng(seed + 1).standard_normal(wet.size)).astype(np.float32)


def read(path: Path, seconds: float | None = None) -> np.ndarray:
    audio, sr = blendfx.read_audio(path, mono=True, duration=seconds)
    return resample(audio, sr, SR)


def rt60_accuracy() -> dict:
    materials = {f"speech_like_{s}": speech_like(6.0, SR, seed=s) for s in range(3)}
    materials["clicks"] = click_train(6.0, SR, seed=2)
    dog = DATA / "noise" / "esc10" / "dog_bark" / ESC["dog_bark"]
    if dog.exists():
        materials["esc10_dog_bark"] = read(dog)
    mid = (octave_centers(SR) >= 500) & (octave_centers(SR) <= 4000)
    blind, built, rows = [], [], []
    for name, dry in materials.items():
        for rt in RT60S:
            ref = in_room(dry, rt)
            est = estimate_reverb(ref, SR).broadband_rt60_s
            click = np.zeros(int((1.3 * rt + 0.3) * SR), dtype=np.float32)
            click[0] = 0.5
            response = Stylizer(eq=False, ambience=False).process(click, SR, sidechain=ref)
            out = float(np.mean(schroeder_rt60(response, SR)[mid]))
            blind.append(abs(est / rt - 1))
            built.append(abs(out / rt - 1))
            rows.append({"material": name, "rt60_s": rt, "blind_estimate_s": round(est, 3),
                         "output_t20_s": round(out, 3)})
            log(f"  {name:16s} RT60 {rt:.1f} s: blind {est:.3f} s, stylized output T20 {out:.3f} s")
    return {"rt60_median_rel_error": round(float(np.median(blind)), 4),
            "rt60_max_rel_error": round(float(np.max(blind)), 4),
            "output_rt60_median_rel_error": round(float(np.median(built)), 4),
            "output_rt60_max_rel_error": round(float(np.max(built)), 4),
            "rt60_cases": rows}


def drr_accuracy() -> dict:
    errors, rows = [], []
    for drr in (-6.0, 0.0, 6.0, 12.0):
        for rt in (0.6, 1.0):
            for seed in (0, 1):
                est = estimate_reverb(in_room(speech_like(6.0, SR, seed=seed), rt, drr_db=drr), SR)
                errors.append(est.drr_db - drr)
                rows.append({"drr_db": drr, "rt60_s": rt, "seed": seed, "estimate_db": round(est.drr_db, 2)})
        got = [r["estimate_db"] for r in rows if r["drr_db"] == drr]
        log(f"  DRR {drr:+5.1f} dB: estimates {got}")
    return {"drr_median_abs_error_db": round(float(np.median(np.abs(errors))), 2),
            "drr_max_abs_error_db": round(float(np.max(np.abs(errors))), 2), "drr_cases": rows}


def speed() -> dict:
    music, sr = blendfx.read_audio(DATA / "music" / "vibe_ace.ogg", duration=60.0)
    assert sr == SR and music.shape == (2, 60 * SR)
    ref = in_room(speech_like(5.0, SR, seed=1), 1.0)
    t0 = time.perf_counter()
    profile = analyze_reference(ref, SR, use_cache=False)
    analysis_s = time.perf_counter() - t0
    st = Stylizer(profile=profile)
    t0 = time.perf_counter()
    st.process(music, SR)  # first call builds (and caches) the room
    first_s = time.perf_counter() - t0
    times, conv = [], []
    ir = exponential_ir(1.0, SR, seed=3)[: SR].astype(np.float32)
    for _ in range(3):
        t0 = time.perf_counter()
        st.process(music, SR)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fftconvolve(music, ir[None], axes=-1)
        conv.append(time.perf_counter() - t0)
    run_s, conv_s = float(np.median(times)), float(np.median(conv))
    log(f"  60 s stereo stem: {run_s:.3f} s per call ({60 / run_s:.1f}x real time), first call "
        f"{first_s:.3f} s, analysis of a 5 s reference {analysis_s:.3f} s; one plain FFT "
        f"convolution {conv_s:.3f} s")
    return {"realtime_factor": round(60.0 / run_s, 2), "stylize_60s_s": round(run_s, 3),
            "first_call_s": round(first_s, 3), "analysis_5s_reference_s": round(analysis_s, 3),
            "reference_fftconvolve_s": round(conv_s, 3),
            "stylize_time_over_fftconvolve": round(run_s / conv_s, 2)}


def comparison() -> dict:
    refs: dict[str, np.ndarray] = {}
    for cls, name in ESC.items():
        path = DATA / "noise" / "esc10" / cls / name
        if path.exists():
            refs[f"esc10/{cls}"] = read(path)
    for name in LONG:
        path = DATA / "noise" / "long" / name
        if path.exists():
            refs[f"long/{name}"] = read(path, seconds=10.0)
    refs["room_0.6s"] = in_room(speech_like(6.0, SR, seed=8), 0.6)
    refs["room_1.5s"] = in_room(speech_like(6.0, SR, seed=9), 1.5)
    music, _ = blendfx.read_audio(DATA / "music" / "hungarian_dance_5.ogg", offset=5.0,
                                  duration=8.0, mono=True)
    stems = {"speech_like": speech_like(8.0, SR, seed=11), "music": music}
    rows = []
    summary: dict[str, dict[str, list[float]]] = {}
    for stem_name, stem in stems.items():
        for ref_name, ref in refs.items():
            row = {"stem": stem_name, "reference": ref_name,
                   "input_db": round(ltas_distance_db(stem, ref, SR), 2)}
            for mode in ("stylize", "separate_remix"):
                out = Stylizer(mode=mode).process(stem, SR, sidechain=ref)
                row[f"{mode}_db"] = round(ltas_distance_db(out, ref, SR), 2)
            rows.append(row)
            for key in ("input_db", "stylize_db", "separate_remix_db"):
                summary.setdefault(stem_name, {}).setdefault(key, []).append(row[key])
            log(f"  {stem_name:11s} vs {ref_name:24s} input {row['input_db']:6.2f}  stylize "
                f"{row['stylize_db']:6.2f}  separate_remix {row['separate_remix_db']:6.2f}  (dB)")
    means = {stem: {k: round(float(np.mean(v)), 2) for k, v in d.items()} for stem, d in summary.items()}
    wins = sum(r["stylize_db"] < r["separate_remix_db"] for r in rows)
    return {"metric": "log-mel (64 bands, 30 Hz-16 kHz) long-term spectral distance in dB, "
                      "level-normalised; lower = closer to the reference",
            "mean_by_stem": means, "stylize_better_in": f"{wins}/{len(rows)}", "cases": rows}


def main() -> None:
    t0 = time.perf_counter()
    log("RT60: blind estimates and the stylized output's room, against textbook rooms")
    result: dict = {"benchmark": "stylizer", "command": "python benchmarks/stylizer.py",
                    "machine": f"{platform.machine()} {platform.python_version()}"}
    result.update(rt60_accuracy())
    log("DRR: blind estimates against textbook rooms")
    result.update(drr_accuracy())
    log("Speed")
    result.update(speed())
    log("stylize vs separate_remix (spectral distance to the reference)")
    result["comparison"] = comparison()
    result["benchmark_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
