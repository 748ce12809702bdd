"""Does the per-band amplifier pay? The three AdaptiveAmplifier modes on real noise and music.

For each shared ESC-10 noise clip (``--per-class`` per class, 5.12 s) and a real music track
from ../shared/data/music (the three tracks in turn, at the offset that best masks the clip's
core, ``blendfx.effects.blend.best_offset``; ``--align random`` for a random offset), each mode
amplifies the track against the noise (``min_gain_db=-12`` so that no mode mutes the music, the
default ceilings), and the result is judged on the psychoacoustic yardstick of
:mod:`blendfx.effects.blend.metrics`:

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
    from blendfx.dsp.loudness import integrated_lufs

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


class MusicSource:
    """The music for each clip: a shared track (in turn) at its best or a random offset, or the
    Composer's music for the clip."""

    def __init__(self, kind: str, align: str):
        import blendfx

        self.kind, self.align = kind, align
        self.tracks = [blendfx.read_audio(DATA / "music" / name)[0] for name in TRACKS]
        self.analyses: list = [None] * len(self.tracks)
        self.rng = np.random.default_rng(0)
        self.composer = blendfx.EFFECT_REGISTRY.get("Composer") if kind == "composer" else None
        if kind == "composer" and self.composer is None:
            raise SystemExit("the Composer is not registered in this build")

    def __call__(self, noise: np.ndarray, sr: float, index: int) -> tuple[np.ndarray, str]:
        from blendfx.buffers import fit_length
        from blendfx.effects.blend.blend import best_offset, track_masking

        if self.composer is not None:
            music = self.composer(prompt="lofi", seed=index)(noise, sr)
            return fit_length(np.atleast_2d(np.asarray(music, np.float32)), CLIP), "composer lofi"
        k = index % len(self.tracks)
        track = self.tracks[k]
        if self.align == "best":
            if self.analyses[k] is None:
                self.analyses[k] = track_masking(track, sr)
            offset = int(round(best_offset(noise, self.analyses[k], sr) * sr / 100.0))
        else:
            offset = int(self.rng.integers(0, track.shape[1] - CLIP))
        offset = min(offset, track.shape[1] - CLIP)
        return np.ascontiguousarray(track[:, offset:offset + CLIP]), TRACKS[k]


def measure_clip(noise: np.ndarray, music: np.ndarray, sr: float, equal_cost_lu: float
                 ) -> dict[str, dict[str, float | None]]:
    """Every mode on one clip: the keys of the module docstring, plus ``band_spread_db``."""
    import blendfx
    from blendfx.buffers import fit_channels
    from blendfx.effects import AdaptiveAmplifier
    from blendfx.effects.blend.metrics import blend_report, cost_to_mask_lu, noise_core, unmasked_fraction

    core = noise_core(noise, sr)
    noise_as_played = fit_channels(noise, music.shape[0])  # beside stereo music
    noise_lufs = blendfx.dsp.loudness.integrated_lufs(noise_as_played, sr)
    rows: dict[str, dict[str, float | None]] = {}
    for name, settings in MODES.items():
        amp = AdaptiveAmplifier(min_gain_db=-12.0, **settings)
        out = amp(music, sr, sidechain=noise)
        report = blend_report(noise, out, sr)
        row: dict[str, float | None] = {
            "op_unmasked": report["unmasked_fraction"], "op_cost_lu": report["loudness_cost_lu"],
            "cost_lu": cost_to_mask_lu(noise, out, sr, core=core), "unmasked_at_equal_cost": None}
        if np.any(out):
            gain = scale_to_cost(noise_as_played, out, sr, equal_cost_lu, noise_lufs)
            row["unmasked_at_equal_cost"] = unmasked_fraction(noise, out * np.float32(10 ** (gain / 20)), sr)
        if name == "band" and np.all(np.isfinite(amp.band_gains_db)):
            row["band_spread_db"] = float(np.ptp(amp.band_gains_db))
        rows[name] = row
    return rows


def _delta(results: dict, name: str, key: str) -> float | None:
    """Median over clips of ``name``'s value minus the global mode's."""
    pairs = [(a, b) for a, b in zip(results[name][key], results["global"][key], strict=True)
             if a is not None and b is not None and np.isfinite(a) and np.isfinite(b)]
    return round(float(np.median([a - b for a, b in pairs])), 3) if pairs else None


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'n/a':>{width}s}"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=3, help="clips per ESC-10 class (max 10)")
    parser.add_argument("--align", choices=("best", "random"), default="best")
    parser.add_argument("--music", choices=("tracks", "composer"), default="tracks")
    parser.add_argument("--equal-cost-lu", type=float, default=12.0,
                        help="loudness cost (LU) at which the modes' unmasked fractions are compared")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import blendfx
    from blendfx.buffers import fit_length

    args, start_time = _arguments(argv), time.time()
    if not DATA.exists():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    source = MusicSource(args.music, args.align)
    keys = ("cost_lu", "unmasked_at_equal_cost", "op_unmasked", "op_cost_lu")
    results: dict[str, dict[str, list]] = {m: {k: [] for k in keys} for m in MODES}
    spread: list[float] = []
    print(f"{'clip':30s} {'music':22s} " + " ".join(f"{m:>16s}" for m in MODES)
          + f"   (cost_to_mask LU / unmasked at {args.equal_cost_lu:g} LU)")
    clips = [p for cls in CLASSES
             for p in sorted((DATA / "noise" / "esc10" / cls).glob("*.ogg"))[: args.per_class]]
    for index, path in enumerate(clips):
        noise, sr = blendfx.read_audio(path)
        noise = fit_length(noise, CLIP)
        music, label = source(noise, sr, index)
        rows = measure_clip(noise, music, sr, args.equal_cost_lu)
        for name, row in rows.items():
            for key in keys:
                results[name][key].append(row[key])
        spread.extend(v for v in [rows["band"].get("band_spread_db")] if v is not None)
        cells = [f"{_fmt(rows[m]['cost_lu'], 7, 2)} / {_fmt(rows[m]['unmasked_at_equal_cost'], 5, 3)}"
                 for m in MODES]
        print(f"{path.parent.name + '/' + path.name:30s} {label:22s} "
              + " ".join(f"{c:>16s}" for c in cells), flush=True)

    print(f"\n{'mode':8s} {'cost_lu':>8s} {'d_cost':>7s} {'unmasked@cost':>14s} {'d_unm':>7s} "
          f"{'op_unmasked':>12s} {'op_cost_lu':>11s}")
    for name in MODES:
        r = results[name]
        print(f"{name:8s} {_fmt(_median(r['cost_lu']), 8, 2)} {_fmt(_delta(results, name, 'cost_lu'), 7, 2)} "
              f"{_fmt(_median(r['unmasked_at_equal_cost']), 14, 3)} "
              f"{_fmt(_delta(results, name, 'unmasked_at_equal_cost'), 7, 3)} "
              f"{_fmt(_median(r['op_unmasked']), 12, 3)} {_fmt(_median(r['op_cost_lu']), 11, 2)}")
    result = {
        "clips": len(clips),
        "music": args.music,
        "align": args.align if args.music == "tracks" else None,
        "equal_cost_lu": args.equal_cost_lu,
        "cost_lu": {m: _median(results[m]["cost_lu"]) for m in MODES},
        "cost_lu_delta_vs_global": {m: _delta(results, m, "cost_lu") for m in MODES},
        "unmasked_at_equal_cost": {m: _median(results[m]["unmasked_at_equal_cost"]) for m in MODES},
        "unmasked_at_equal_cost_delta_vs_global": {m: _delta(results, m, "unmasked_at_equal_cost")
                                                   for m in MODES},
        "op_unmasked": {m: _median(results[m]["op_unmasked"]) for m in MODES},
        "op_cost_lu": {m: _median(results[m]["op_cost_lu"]) for m in MODES},
        "band_spread_db": _median(spread),
        "seconds": round(time.time() - start_time, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
