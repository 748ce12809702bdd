"""Does the per-band amplifier pay? The three AdaptiveAmplifier modes on real noise and music.

For each shared ESC-10 noise clip (``--per-class`` per class, 5.12 s) and a real music track
from ../shared/data/music (the three tracks in turn, at the offset that best masks the clip's
core, ``blendfx.effects.blend.best_offset``; ``--align random`` for a random offset), each mode
amplifies the track against the noise (``min_gain_db=-12`` so that no mode mutes the music, the
default ceilings), and the result is judged on the psychoacoustic yardstick of
:mod:`blendfx.metrics`:

- ``cost_lu``: ``cost_to_mask_lu`` of the amplified music: the loudness cost (LU of noise +
  music over the noise) at which half the core's energy is masked, i.e. the cost of reaching
  the same unmasked fraction (0.5) with this mode's spectral/temporal shape. Lower is better.
- ``unmasked_at_equal_cost``: the unmasked fraction with the music scaled so that the mix is
  ``--equal-cost-lu`` (12 LU) louder than the noise alone, the same for every mode. Lower is
  better.
- ``op_unmasked`` / ``op_cost_lu``: the operating point each mode chose itself
  (``blend_report``: unmasked fraction and loudness cost).

``--music composer`` uses the Composer's music for each clip instead (``prompt="lofi"``, seed =
clip index; about 10 s per clip on this machine), when ``"Composer"`` is registered.

Modes: ``global``, ``frame``, ``band`` (8 Bark bands, ``band_range_db`` 12, the default),
``band24`` (``band_range_db=24``) and ``band60`` (60: bands nearly free). Prints a table per
clip, a summary table (medians, and the median of the per-clip difference from ``global``), then
(last line) one JSON object with ``cost_lu``, ``cost_lu_delta_vs_global``,
``unmasked_at_equal_cost``, ``op_unmasked``, ``op_cost_lu`` (medians per mode) and ``clips``.

Run: ``.venv/bin/python benchmarks/amplifier_modes.py [--per-class 3] [--align best|random]
[--music tracks|composer]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BLENDFX_SHARED_DATA", ROOT.parent / "shared" / "data"))
CLASSES = ("dog_bark", "rain", "clock_tick", "person_sneeze", "chainsaw")
TRACKS = ("vibe_ace.ogg", "hungarian_dance_5.ogg", "sugar_plum_fairy.ogg")
CLIP = 225792  # 5.12 s at 44.1 kHz
MODES = {
    "global": {"mode": "global"},
    "frame": {"mode": "frame"},
    "band": {"mode": "band"},
    "band24": {"mode": "band", "band_range_db": 24.0},
    "band60": {"mode": "band", "band_range_db": 60.0},
}


def _cost(noise: np.ndarray, music: np.ndarray, sr: float, gain_db: float, noise_lufs: float) -> float:
    from blendfx.loudness import integrated_lufs

    return integrated_lufs(noise + music * np.float32(10 ** (gain_db / 20)), sr) - noise_lufs


def scale_to_cost(noise: np.ndarray, music: np.ndarray, sr: float, target_lu: float,
                  noise_lufs: float) -> float:
    """Gain in dB on ``music`` that makes ``noise + music`` ``target_lu`` louder than the noise
    (bisection: the cost grows with the gain)."""
    lo, hi = -80.0, 60.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if _cost(noise, music, sr, mid, noise_lufs) < target_lu:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _median(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return round(float(np.median(finite)), 3) if finite else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=3, help="clips per ESC-10 class (max 10)")
    parser.add_argument("--align", choices=("best", "random"), default="best")
    parser.add_argument("--music", choices=("tracks", "composer"), default="tracks")
    parser.add_argument("--equal-cost-lu", type=float, default=12.0,
                        help="loudness cost (LU) at which the modes' unmasked fractions are compared")
    args = parser.parse_args(argv)

    import blendfx
    from blendfx.buffers import fit_channels, fit_length
    from blendfx.effects import AdaptiveAmplifier
    from blendfx.effects.blend import best_offset, track_masking
    from blendfx.metrics import blend_report, cost_to_mask_lu, noise_core, unmasked_fraction

    if not DATA.exists():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    start_time = time.time()
    tracks = [blendfx.read_audio(DATA / "music" / name)[0] for name in TRACKS]
    analyses: list = [None] * len(tracks)
    rng = np.random.default_rng(0)
    keys = ("cost_lu", "unmasked_at_equal_cost", "op_unmasked", "op_cost_lu")
    results: dict[str, dict[str, list]] = {m: {k: [] for k in keys} for m in MODES}
    bands_db: list[np.ndarray] = []
    print(f"{'clip':30s} {'music':22s} " + " ".join(f"{m:>16s}" for m in MODES)
          + f"   (cost_to_mask LU / unmasked at {args.equal_cost_lu:g} LU)")
    clip_index = 0
    for cls in CLASSES:
        for path in sorted((DATA / "noise" / "esc10" / cls).glob("*.ogg"))[: args.per_class]:
            noise, sr = blendfx.read_audio(path)
            noise = fit_length(noise, CLIP)
            k = clip_index % len(tracks)
            track = tracks[k]
            if args.music == "composer":
                composer = blendfx.EFFECT_REGISTRY.get("Composer")
                if composer is None:
                    print("the Composer is not registered in this build", file=sys.stderr)
                    return 1
                music = composer(prompt="lofi", seed=clip_index)(noise, sr)
                music = fit_length(np.atleast_2d(np.asarray(music, np.float32)), CLIP)
            elif args.align == "best":
                if analyses[k] is None:
                    analyses[k] = track_masking(track, sr)
                offset = int(round(best_offset(noise, analyses[k], sr) * sr / 100.0))
            else:
                offset = int(rng.integers(0, track.shape[1] - CLIP))
            if args.music == "tracks":
                offset = min(offset, track.shape[1] - CLIP)
                music = np.ascontiguousarray(track[:, offset:offset + CLIP])
            core = noise_core(noise, sr)
            noise2 = fit_channels(noise, music.shape[0])  # as it plays beside stereo music
            noise_lufs = blendfx.loudness.integrated_lufs(noise2, sr)
            outs = {}
            for name, settings in MODES.items():
                amp = AdaptiveAmplifier(min_gain_db=-12.0, **settings)
                outs[name] = amp(music, sr, sidechain=noise)
                if name == "band":
                    bands_db.append(amp.band_gains_db - amp.optimal_gain_db)
                report = blend_report(noise, outs[name], sr)
                results[name]["op_unmasked"].append(report["unmasked_fraction"])
                results[name]["op_cost_lu"].append(report["loudness_cost_lu"])
                results[name]["cost_lu"].append(cost_to_mask_lu(noise, outs[name], sr, core=core))
            cells = []
            for name in MODES:
                value = None
                if np.any(outs[name]):
                    gain = scale_to_cost(noise2, outs[name], sr, args.equal_cost_lu, noise_lufs)
                    value = unmasked_fraction(noise, outs[name] * np.float32(10 ** (gain / 20)), sr)
                results[name]["unmasked_at_equal_cost"].append(value)
                cost = results[name]["cost_lu"][-1]
                cells.append(f"{cost:7.2f} / {value:5.3f}" if value is not None else f"{cost:7.2f} /   n/a")
            source = TRACKS[k] if args.music == "tracks" else "composer lofi"
            print(f"{cls + '/' + path.name:30s} {source:22s} " + " ".join(f"{c:>16s}" for c in cells),
                  flush=True)
            clip_index += 1

    def delta(name: str, key: str) -> float | None:
        pairs = [(a, b) for a, b in zip(results[name][key], results["global"][key], strict=True)
                 if a is not None and b is not None and np.isfinite(a) and np.isfinite(b)]
        return round(float(np.median([a - b for a, b in pairs])), 3) if pairs else None

    def fmt(value: float | None, width: int, digits: int) -> str:
        return f"{value:{width}.{digits}f}" if value is not None else f"{'n/a':>{width}s}"

    print(f"\n{'mode':8s} {'cost_lu':>8s} {'d_cost':>7s} {'unmasked@cost':>14s} {'d_unm':>7s} "
          f"{'op_unmasked':>12s} {'op_cost_lu':>11s}")
    for name in MODES:
        r = results[name]
        print(f"{name:8s} {fmt(_median(r['cost_lu']), 8, 2)} {fmt(delta(name, 'cost_lu'), 7, 2)} "
              f"{fmt(_median(r['unmasked_at_equal_cost']), 14, 3)} "
              f"{fmt(delta(name, 'unmasked_at_equal_cost'), 7, 3)} "
              f"{fmt(_median(r['op_unmasked']), 12, 3)} {fmt(_median(r['op_cost_lu']), 11, 2)}")
    spread = [float(b.max() - b.min()) for b in bands_db if b.size and np.all(np.isfinite(b))]
    result = {
        "clips": clip_index,
        "music": args.music,
        "align": args.align if args.music == "tracks" else None,
        "equal_cost_lu": args.equal_cost_lu,
        "cost_lu": {m: _median(results[m]["cost_lu"]) for m in MODES},
        "cost_lu_delta_vs_global": {m: delta(m, "cost_lu") for m in MODES},
        "unmasked_at_equal_cost": {m: _median(results[m]["unmasked_at_equal_cost"]) for m in MODES},
        "unmasked_at_equal_cost_delta_vs_global": {m: delta(m, "unmasked_at_equal_cost") for m in MODES},
        "op_unmasked": {m: _median(results[m]["op_unmasked"]) for m in MODES},
        "op_cost_lu": {m: _median(results[m]["op_cost_lu"]) for m in MODES},
        "band_spread_db": _median(spread),
        "seconds": round(time.time() - start_time, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
