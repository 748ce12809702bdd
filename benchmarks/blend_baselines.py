"""The yardstick for every generator: the loudness cost of masking half of a noise's core.

For each noise clip and each candidate masker, ``blendfx.effects.blend.metrics.cost_to_mask_lu``:
the loudness (LU) of noise + the masker, scaled so that half the energy of the noise's core
falls under the masker's masking threshold, over the noise alone. Lower is better. Candidates:

(a) ``pink``: pink noise (seeded per clip);
(b) ``music_random``: a real music track from ../shared/data/music at a random offset (the
    three tracks in turn);
(c) ``music_best``: the same track at its best-aligned offset (``blendfx.effects.blend.
    best_offset``: the most masking on the core per unit loudness);
(d) ``noise_itself``: the noise (perfectly aligned but unmusical: the reference limit);
(e) ``composer``: the Composer's music for the clip with each of ``--prompts`` (median over
    clips and prompts; per prompt too).

**Hold-out discipline.** The noise classes are split, once and up front, into

- ``TUNED``: the five shared ESC-10 classes (``noise/esc10/``: dog bark, rain, clock tick,
  sneeze, chainsaw), 10 clips each. The Composer was developed and tuned on these;
- ``HELD_OUT``: noises no part of the Composer was developed on: the seven National Park
  Service field recordings (``noise/nps/``: hot spring, mud pot, chorus frogs, dawn birds, bison
  grazing, horse-drawn wagon, wolves howling) and the cat of ``noise/long/dude_miaowing.wav``,
  each cut into ``--per-class`` 5 s clips at evenly spaced offsets, resampled to 44.1 kHz.

The held-out figures are the headline (goal: median <= 14.5 LU, no class median above 18 LU;
over all classes: median <= 14 LU). Nothing in blendfx may be tuned on a held-out class.

The default ``blendfx blend`` on the same clips, through the command line itself (masked share,
loudness increase, and what a masking goal of one half needs): ``benchmarks/blend_cli.py``.

Prints a table, then (last line) one JSON object with ``split``, ``cost_lu`` (median per
candidate over all clips), ``cost_lu_held_out``, ``cost_lu_tuned``, ``cost_lu_by_class``,
``worst_class`` (composer, per split), ``cost_lu_by_track`` (b and c per music track),
``cost_lu_by_prompt`` (composer), ``clips``, ``seconds``, ``load_average``.
A masker that cannot mask half the core at any gain counts as missing (``unmaskable``).

Run: ``nice -n 10 .venv/bin/python benchmarks/blend_baselines.py [--per-class 10]
[--prompts lofi,jazz,ambient] [--classes chainsaw,nps_wolves] [--no-baselines]``
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
#: Classes the Composer was developed on (ESC-10 folders under noise/esc10/).
TUNED = ("dog_bark", "rain", "clock_tick", "person_sneeze", "chainsaw")
#: Classes it was not: recordings cut into 5 s clips (name -> path under noise/).
HELD_OUT = {
    "nps_hot_spring": "nps/yellowstone_beryl_hot_spring.mp3",
    "nps_mud_pot": "nps/yellowstone_mud_pot.mp3",
    "nps_chorus_frogs": "nps/yellowstone_chorus_frogs.mp3",
    "nps_dawn_birds": "nps/yellowstone_dawn_bird_chorus.mp3",
    "nps_bison": "nps/yellowstone_bison_grazing.mp3",
    "nps_wagon": "nps/yellowstone_horse_drawn_wagon.mp3",
    "nps_wolves": "nps/yellowstone_wolves_howling.mp3",
    "cat_miaowing": "long/dude_miaowing.wav",
}
TRACKS = ("vibe_ace.ogg", "hungarian_dance_5.ogg", "sugar_plum_fairy.ogg")
SR = 44100
CLIP_S = 5.0


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise, ``(1, n)`` float32, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(f), n)
    return (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)[None]


def _median(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return round(float(np.median(finite)), 2) if finite else None


def clips_of(cls: str, per_class: int) -> list[tuple[str, np.ndarray]]:
    """``(label, (channels, samples) at 44.1 kHz)`` clips of one class (see the module doc)."""
    import blendfx
    from blendfx.spectral.analysis import resample

    if cls in TUNED:
        out = []
        for path in sorted((DATA / "noise" / "esc10" / cls).glob("*.ogg"))[:per_class]:
            audio, sr = blendfx.read_audio(path)
            out.append((f"{cls}/{path.name}", resample(audio, sr, SR)))
        return out
    audio, sr = blendfx.read_audio(DATA / "noise" / HELD_OUT[cls])
    audio = resample(audio, sr, SR)
    n = int(CLIP_S * SR)
    starts = np.linspace(0, max(audio.shape[1] - n, 0), per_class).astype(int)
    return [(f"{cls}@{s / SR:.0f}s", np.ascontiguousarray(audio[:, s:s + n])) for s in starts]


def select_classes(parser: argparse.ArgumentParser, names: str) -> list[str]:
    """The tuned and held-out classes, or the comma-separated subset ``names`` of them."""
    classes = list(TUNED) + list(HELD_OUT)
    if names:
        wanted = [c.strip() for c in names.split(",") if c.strip()]
        unknown = set(wanted) - set(classes)
        if unknown:
            parser.error(f"unknown classes: {sorted(unknown)}")
        classes = [c for c in classes if c in wanted]
    return classes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=10, help="clips per class (ESC-10: max 10)")
    parser.add_argument("--prompts", default="lofi,jazz,ambient",
                        help="comma-separated Composer prompts for candidate (e)")
    parser.add_argument("--classes", default="", help="comma-separated subset of the classes")
    parser.add_argument("--no-baselines", action="store_true", help="the composer only")
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
    classes = select_classes(parser, args.classes)
    tracks = [blendfx.read_audio(DATA / "music" / name)[0] for name in TRACKS]
    analyses: list = [None] * len(tracks)
    rng = np.random.default_rng(0)
    baselines = [] if args.no_baselines else ["pink", "music_random", "music_best", "noise_itself"]
    candidates = baselines + (["composer"] if prompts else [])
    costs: dict[str, list] = {c: [] for c in candidates}
    by_class: dict[str, dict[str, list]] = {c: {k: [] for k in candidates} for c in classes}
    by_prompt: dict[str, list] = {p: [] for p in prompts}
    by_track: dict[str, dict[str, list]] = {t: {"music_random": [], "music_best": []} for t in TRACKS}
    clip_index = 0
    print(f"{'clip':34s} " + " ".join(f"{c:>13s}" for c in candidates))
    for cls in classes:
        for label, noise in clips_of(cls, args.per_class):
            sr = SR
            n = noise.shape[1]
            core = noise_core(noise, sr)
            row: dict[str, float | None] = {}
            if baselines:
                k = clip_index % len(tracks)
                track = tracks[k]
                if analyses[k] is None:
                    analyses[k] = track_masking(track, sr)
                row["pink"] = cost_to_mask_lu(noise, pink_noise(n, rng), sr, core=core)
                offset = int(rng.integers(0, track.shape[1] - n))
                row["music_random"] = cost_to_mask_lu(noise, track[:, offset:offset + n], sr, core=core)
                best = int(round(best_offset(noise, analyses[k], sr) * sr / 100.0))
                best = min(best, track.shape[1] - n)
                row["music_best"] = cost_to_mask_lu(noise, track[:, best:best + n], sr, core=core)
                row["noise_itself"] = cost_to_mask_lu(noise, noise, sr, core=core)
                for c in ("music_random", "music_best"):
                    by_track[TRACKS[k]][c].append(row[c] if np.isfinite(row[c]) else None)
            if prompts:
                per_prompt = []
                for prompt in prompts:
                    music = composer_cls(prompt=prompt, seed=clip_index, progress=False)(noise, sr)
                    music = fit_length(np.atleast_2d(np.asarray(music, np.float32)), n)
                    cost = cost_to_mask_lu(noise, music, sr, core=core)
                    by_prompt[prompt].append(cost if np.isfinite(cost) else None)
                    per_prompt.append(cost)
                row["composer"] = float(np.median(per_prompt))
                costs["composer"].extend(c if np.isfinite(c) else None for c in per_prompt)
                by_class[cls]["composer"].extend(c if np.isfinite(c) else None for c in per_prompt)
            for c in baselines:
                value = row[c] if row[c] is not None and np.isfinite(row[c]) else None
                costs[c].append(value)
                by_class[cls][c].append(value)
            clip_index += 1
            print(f"{label:34s} " + " ".join(f"{row[c]:13.2f}" if row.get(c) is not None else f"{'n/a':>13s}"
                                             for c in candidates), flush=True)

    def split_of(names: list[str]) -> dict[str, float | None]:
        return {c: _median([v for cls in names for v in by_class[cls][c]]) for c in candidates}

    held = [c for c in classes if c in HELD_OUT]
    tuned = [c for c in classes if c in TUNED]
    by_class_median = {cls: {c: _median(v) for c, v in d.items()} for cls, d in by_class.items()}

    def worst(names: list[str]) -> list | None:
        if not prompts or not names:
            return None
        values = [(cls, by_class_median[cls]["composer"]) for cls in names
                  if by_class_median[cls]["composer"] is not None]
        return list(max(values, key=lambda x: x[1])) if values else None

    result = {
        "split": {"tuned": list(TUNED), "held_out": list(HELD_OUT)},
        "clips": clip_index,
        "cost_lu_held_out": split_of(held) if held else None,
        "cost_lu_tuned": split_of(tuned) if tuned else None,
        "cost_lu": {c: _median(costs[c]) for c in candidates},
        "worst_class": {"held_out": worst(held), "tuned": worst(tuned)},
        "cost_lu_by_class": by_class_median,
        "cost_lu_by_track": {t: {c: _median(v) for c, v in d.items()} for t, d in by_track.items()},
        "unmaskable": {c: sum(v is None for v in costs[c]) for c in candidates},
        "seconds": round(time.time() - start_time, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
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
