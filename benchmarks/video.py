"""Benchmark: video analysis against PyAV's bare decode of the same file, and a 60 s video
scored end to end.

1. Analysis speed: ``analyze_video`` (picture only) on a 720p clip (default: the shared Big Buck
   Bunny opening, 30 s of 1280x720 VP8) against a bare threaded decode of the same file with
   PyAV (decoding every frame, nothing else) in the same run, interleaved, best of
   ``--repeats`` each (a shared machine only ever slows a run down). Decoding is the floor;
   goal: analysis at >= 80% of the bare decode rate.
2. A 60 s video scored end to end (``score_video``: analysis, timeline, Composer, Blend with the
   soundtrack, mux, report), from a synthesized 60 s 1280x720 H.264 clip with sound and a cut
   every 3-8 s. Goal: <= 15 s. It runs in a fresh process, which reports its wall time, its
   CPU time (less distorted by a busy shared machine) and its peak resident memory.

Run::

    .venv/bin/python benchmarks/video.py [--video PATH] [--repeats 3] [--no-score]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("BLENDFX_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
CLIP = SHARED / "video" / "bbb_opening_0_30.webm"


def bare_decode(path: Path) -> int:
    """Decode every frame of the first video stream (threaded, as the analysis does)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def analysis_vs_decode(path: Path, repeats: int) -> dict:
    from blendfx.effects.video import analyze_video

    dec, ana = [], []
    frames = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        frames = bare_decode(path)
        dec.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        f = analyze_video(path, with_audio=False)
        ana.append(time.perf_counter() - t0)
    d, a = min(dec), min(ana)
    return {"video": path.name, "size": f"{f.width}x{f.height}", "codec": f.codec, "frames": frames,
            "duration_s": round(f.duration_s, 3), "decode_s": round(d, 3), "analysis_s": round(a, 3),
            "decode_x_realtime": round(f.duration_s / d, 1),
            "analysis_x_realtime": round(f.duration_s / a, 1),
            "analysis_over_decode_rate": round(d / a, 3), "decode_runs_s": [round(x, 3) for x in dec],
            "analysis_runs_s": [round(x, 3) for x in ana]}


def _score_child(video: str, out: str) -> None:
    """Runs in a fresh process: score, then print time and peak RSS as JSON."""
    from blendfx.render.score import score_video

    t0 = time.perf_counter()
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    report = score_video(video, out, prompt="pop", seed=0)
    took = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    print(json.dumps({"score_s": round(took, 2), "score_cpu_s": round(cpu, 2), "peak_rss_mib":
                      round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "stages_s": report["timings_s"],
                      "cuts_on_bar_lines": len(report["music"]["hit_points_on_bar_lines_s"]),
                      "cuts_missed": len(report["music"]["hit_points_missed_s"])}))


def score_60s() -> dict:
    from blendfx.effects.video import ShotSpec, write_video

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "sixty.mp4"
        lengths = [96, 168, 72, 120, 192, 84, 144, 108, 180, 96, 108, 72]  # frames at 24 fps: 60 s
        shots = [ShotSpec(n, "fast" if i % 3 == 1 else "still", i) for i, n in enumerate(lengths)]
        write_video(video, shots, fps=24, size=(1280, 720), audio="noise")
        out = subprocess.run([sys.executable, __file__, "--child", str(video), str(Path(tmp) / "out")],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["video_s"] = sum(lengths) / 24
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=CLIP)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-score", action="store_true", help="skip the 60 s end-to-end run")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _score_child(*args.child)
        return
    result = {"analysis": analysis_vs_decode(args.video, args.repeats)}
    a = result["analysis"]
    print(f"{a['video']} ({a['size']} {a['codec']}, {a['frames']} frames): bare decode {a['decode_s']} s "
          f"({a['decode_x_realtime']}x realtime), analysis {a['analysis_s']} s "
          f"({a['analysis_x_realtime']}x), "
          f"analysis at {100 * a['analysis_over_decode_rate']:.0f}% of the decode rate")
    if not args.no_score:
        result["score_60s"] = score_60s()
        s = result["score_60s"]
        print(f"{s['video_s']:.0f} s video scored end to end in {s['score_s']} s ({s['score_cpu_s']} CPU-s), "
              f"peak RSS {s['peak_rss_mib']} MiB")
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
