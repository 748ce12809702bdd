"""The default ``blendfx blend`` on every shared noise class, through the command line itself.

Each clip (``blend_baselines.clips_of``: the five ESC-10 classes the Composer was tuned on, 5 s
clips, and the eight held-out classes cut into 5 s clips) is written as a 44.1 kHz WAV and
blended by ``blendfx blend CLIP -o OUT.wav --report OUT.json`` (``blendfx.render.cli.main``:
the same parser, preset, session, render and master as a user's command), twice:

- **default**: the factory preset ``default`` as it is (BNMusic's optimum, no knobs);
- **goal 0.5**: ``--mask-goal 0.5``: mask half of the core, as quietly as possible.

For each run it reads ``report.json`` (``blend``: masked share of the noise core, loudness
increase of the mix over the noise, goal met, the one gain by which noise and music were lowered
together to stay under -1 dBTP) and checks it against a recomputation from the written files:
the mix minus the noise as it plays in it (the input, panned to both channels at -3 dB and
times that gain) is the music; ``blend_report`` of the two. It also reads the output's true
peak. Per class: median masked share and loudness increase of the default, median loudness
increase with the goal, how often the goal was met; over all clips the same, and the largest
disagreement between report.json and the files.

Prints a table, then (last line) one JSON object: ``by_class``, ``all``, ``held_out``,
``tuned``, ``max_abs_diff`` (report vs files: masked share, LU), ``max_true_peak_dbtp``,
``clips``, ``seconds``, ``load_average``.

Run: ``nice -n 10 .venv/bin/python benchmarks/blend_cli.py [--per-class 3] [--classes rain,...]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blend_baselines import HELD_OUT, SR, TUNED, clips_of, select_classes  # noqa: E402  (a sibling script)


def _median(values: list) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return round(float(np.median(finite)), 3) if finite else None


def run_blend(clip: Path, out: Path, seed: int, goal: float | None) -> dict:
    """``blendfx blend`` on ``clip`` through the CLI; its report.json, plus figures recomputed
    from the written files (``files``)."""
    import blendfx
    from blendfx.dsp.loudness import true_peak_dbtp
    from blendfx.effects.blend.metrics import blend_report
    from blendfx.render.cli import main

    report_path = out.with_suffix(".json")
    argv = ["blend", str(clip), "-o", str(out), "--report", str(report_path), "--seed", str(seed),
            "-q", "--overwrite"]
    if goal is not None:
        argv += ["--mask-goal", str(goal)]
    code = main(argv)
    if code != 0:
        raise RuntimeError(f"blendfx {' '.join(argv)} exited {code}")
    report = json.loads(report_path.read_text())
    blend = report["blend"]
    mix, sr = blendfx.read_audio(out)
    src, _ = blendfx.read_audio(clip)
    pan = 1.0 / np.sqrt(2.0) if src.shape[0] == 1 else 1.0
    noise = np.repeat(src, mix.shape[0] // src.shape[0], axis=0) * np.float32(
        pan * 10.0 ** (blend["output_gain_db"] / 20.0))
    again = blend_report(noise, mix - noise, sr)
    return {**blend, "files": {"masked_share": again["masked_share"],
                               "loudness_increase_lu": again["loudness_increase_lu"],
                               "true_peak_dbtp": true_peak_dbtp(mix)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=3, help="clips per class (ESC-10: max 10)")
    parser.add_argument("--classes", default="", help="comma-separated subset of the classes")
    args = parser.parse_args(argv)

    import blendfx

    classes = select_classes(parser, args.classes)
    start = time.time()
    rows: dict[str, list[dict]] = {c: [] for c in classes}
    diffs = {"masked_share": 0.0, "loudness_increase_lu": 0.0}
    peak = -np.inf
    print(f"{'clip':34s} {'default: masked':>15s} {'+LU':>6s} {'gain dB':>8s} | "
          f"{'goal .5: masked':>15s} {'+LU':>6s} {'gain dB':>8s} met")
    index = 0
    with tempfile.TemporaryDirectory(prefix="blendfx-bench-") as tmp:
        work = Path(tmp)
        for cls in classes:
            for label, audio in clips_of(cls, args.per_class):
                clip = work / f"clip{index}.wav"
                blendfx.write_audio(clip, audio, SR)
                row = {"label": label}
                for key, goal in (("default", None), ("goal", 0.5)):
                    r = run_blend(clip, work / f"{key}{index}.wav", index, goal)
                    row[key] = r
                    for k in diffs:
                        diffs[k] = max(diffs[k], abs(r[k] - r["files"][k]))
                    peak = max(peak, r["files"]["true_peak_dbtp"])
                rows[cls].append(row)
                d, g = row["default"], row["goal"]
                print(f"{label:34s} {d['masked_share']:15.3f} {d['loudness_increase_lu']:6.1f} "
                      f"{d['output_gain_db']:8.1f} | {g['masked_share']:15.3f} "
                      f"{g['loudness_increase_lu']:6.1f} {g['output_gain_db']:8.1f} "
                      f"{'yes' if g['goal_met'] else 'NO'}", flush=True)
                index += 1

    def summary(names: list[str]) -> dict | None:
        runs = [r for c in names for r in rows[c]]
        if not runs:
            return None
        return {
            "clips": len(runs),
            "default_masked_share": _median([r["default"]["masked_share"] for r in runs]),
            "default_loudness_increase_lu": _median([r["default"]["loudness_increase_lu"]
                                                     for r in runs]),
            "default_output_gain_db": _median([r["default"]["output_gain_db"] for r in runs]),
            "goal_half_loudness_increase_lu": _median([r["goal"]["loudness_increase_lu"]
                                                       for r in runs]),
            "goal_half_masked_share": _median([r["goal"]["masked_share"] for r in runs]),
            "goal_half_met": sum(bool(r["goal"]["goal_met"]) for r in runs),
            "goal_half_output_gain_db": _median([r["goal"]["output_gain_db"] for r in runs]),
        }

    by_class = {c: summary([c]) for c in classes}
    print()
    print(f"{'class':18s} {'clips':>5s} {'masked':>7s} {'+LU':>6s} | {'goal .5 +LU':>11s} "
          f"{'met':>5s} {'gain dB':>8s}")
    for cls, s in by_class.items():
        print(f"{cls:18s} {s['clips']:5d} {s['default_masked_share']:7.2f} "
              f"{s['default_loudness_increase_lu']:6.1f} | {s['goal_half_loudness_increase_lu']:11.1f} "
              f"{s['goal_half_met']:>2d}/{s['clips']:<2d} {s['goal_half_output_gain_db']:8.1f}")
    result = {
        "by_class": by_class,
        "all": summary(classes),
        "held_out": summary([c for c in classes if c in HELD_OUT]),
        "tuned": summary([c for c in classes if c in TUNED]),
        "max_abs_diff": {k: round(v, 4) for k, v in diffs.items()},
        "max_true_peak_dbtp": round(float(peak), 3),
        "clips": index,
        "seconds": round(time.time() - start, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
