"""The yardstick for every generator: the loudness cost of masking half of a noise's core.

For each shared ESC-10 noise clip and each candidate masker,
``blendfx.effects.blend.metrics.cost_to_mask_lu``:
the loudness (LU) of noise + the masker, scaled so that half the energy of the noise's core
falls under the masker's masking threshold, over the noise alone. Lower is better. Candidates:

(a) ``pink``: pink noise (seeded per clip);
(b) ``music_random``: a real music track from ../shared/data/music at a random offset (the
    three tracks in turn);
(c) ``music_best``: the same track at its best-aligned offset (``blendfx.effects.blend.
    best_offset``: the most masking on the core per unit loudness);
(d) ``noise_itself``: the noise (perfectly aligned but unmusical: the reference limit);
(e) ``composer``: when ``"Composer"`` is in ``blendfx.EFFECT_REGISTRY`` (issue 4), its music for
    the clip with each of ``--prompts`` (median over clips and prompts; per prompt too).

Prints a table, then (last line) one JSON object with ``cost_lu`` (median per candidate; a
masker that cannot mask half the core at any gain counts as missing, see ``unmaskable``),
``cost_lu_by_class``, ``cost_lu_by_track`` (b and c per music track), ``cost_lu_by_prompt``
(composer), ``clips`` and ``seconds``.

Run: ``.venv/bin/python benchmarks/blend_baselines.py [--per-class 10] [--prompts lofi,jazz,ambient]``
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


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise, ``(1, n)`` float32, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(f), n)
    return (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)[None]


def _median(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None]
    return round(float(np.median(finite)), 2) if finite else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=10, help="clips per ESC-10 class (max 10)")
    parser.add_argument("--prompts", default="lofi,jazz,ambient",
                        help="comma-separated Composer prompts for candidate (e)")
    args = parser.parse_args(argv)

    import blendfx
    from blendfx.buffers import fit_length
    from blendfx.effects.blend.blend import best_offset, track_masking
    from blendfx.effects.blend.metrics import cost_to_mask_lu, noise_core

    if not DATA.exists():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    start_time = time.time()
    composer_cls = blendfx.EFFECT_REGISTRY.get("Composer")
    prompts = [p.strip() for p in args.prompts.split(",") if p.strip()] if composer_cls else []
    tracks, analyses = [], []
    for name in TRACKS:
        audio, sr = blendfx.read_audio(DATA / "music" / name)
        tracks.append(audio)
        analyses.append(None)  # analysed lazily at the first clip's rate
    rng = np.random.default_rng(0)
    candidates = ["pink", "music_random", "music_best", "noise_itself"] + (["composer"] if prompts else [])
    costs: dict[str, list] = {c: [] for c in candidates}
    by_class: dict[str, dict[str, list]] = {c: {k: [] for k in candidates} for c in CLASSES}
    by_prompt: dict[str, list] = {p: [] for p in prompts}
    by_track: dict[str, dict[str, list]] = {t: {"music_random": [], "music_best": []} for t in TRACKS}
    clip_index = 0
    print(f"{'clip':32s} " + " ".join(f"{c:>13s}" for c in candidates))
    for cls in CLASSES:
        for path in sorted((DATA / "noise" / "esc10" / cls).glob("*.ogg"))[: args.per_class]:
            noise, sr = blendfx.read_audio(path)
            n = noise.shape[1]
            core = noise_core(noise, sr)
            k = clip_index % len(tracks)
            track = tracks[k]
            if analyses[k] is None:
                analyses[k] = track_masking(track, sr)
            row: dict[str, float | None] = {}
            row["pink"] = cost_to_mask_lu(noise, pink_noise(n, rng), sr, core=core)
            offset = int(rng.integers(0, track.shape[1] - n))
            row["music_random"] = cost_to_mask_lu(noise, track[:, offset:offset + n], sr, core=core)
            best = int(round(best_offset(noise, analyses[k], sr) * sr / 100.0))
            best = min(best, track.shape[1] - n)
            row["music_best"] = cost_to_mask_lu(noise, track[:, best:best + n], sr, core=core)
            row["noise_itself"] = cost_to_mask_lu(noise, noise, sr, core=core)
            if prompts:
                per_prompt = []
                for prompt in prompts:
                    music = composer_cls(prompt=prompt, seed=clip_index)(noise, sr)
                    music = fit_length(np.atleast_2d(np.asarray(music, np.float32)), n)
                    cost = cost_to_mask_lu(noise, music, sr, core=core)
                    by_prompt[prompt].append(cost if np.isfinite(cost) else None)
                    per_prompt.append(cost)
                row["composer"] = float(np.median(per_prompt))
                costs["composer"].extend(c if np.isfinite(c) else None for c in per_prompt)
            for c in ("music_random", "music_best"):
                by_track[TRACKS[k]][c].append(row[c] if np.isfinite(row[c]) else None)
            for c in candidates:
                value = row[c] if row[c] is not None and np.isfinite(row[c]) else None
                if c != "composer":
                    costs[c].append(value)
                by_class[cls][c].append(value)
            clip_index += 1
            print(f"{cls + '/' + path.name:32s} "
                  + " ".join(f"{row[c]:13.2f}" if row[c] is not None else f"{'n/a':>13s}"
                             for c in candidates), flush=True)
    result = {
        "clips": clip_index,
        "cost_lu": {c: _median(costs[c]) for c in candidates},
        "cost_lu_by_class": {cls: {c: _median(v) for c, v in d.items()} for cls, d in by_class.items()},
        "cost_lu_by_track": {t: {c: _median(v) for c, v in d.items()} for t, d in by_track.items()},
        "unmaskable": {c: sum(v is None for v in costs[c]) for c in candidates},
        "seconds": round(time.time() - start_time, 1),
        "share_masked": 0.5,
        "core_fraction": 0.15,
    }
    if prompts:
        result["cost_lu_by_prompt"] = {p: _median(v) for p, v in by_prompt.items()}
        result["prompts"] = prompts
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
