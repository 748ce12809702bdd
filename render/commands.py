"""What each ``blendfx`` command does (the parser and the exit codes are in :mod:`.cli`).

Imported only when a command runs: ``blendfx --help`` stays fast.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from blendfx.audio_io import WRITE_FORMATS, audio_info, iter_audio_blocks, read_audio
from blendfx.dsp.loudness import LoudnessMeter
from blendfx.effect import EFFECT_REGISTRY
from blendfx.effects.mask_extractor import MaskExtractor
from blendfx.errors import ParameterError
from blendfx.presets import factory_preset_path, list_factory_presets, read_preset

from . import farm
from .cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from .demo import run_demo, with_prompt
from .mastering import db, true_peak_max
from .reaper import import_reaper
from .renderer import render_session
from .report import FIGURE_SECONDS, write_inspect_png
from .session import session_from_dict

__all__ = ["demo", "blend", "render", "render_many", "session", "presets", "inspect"]


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def _summary(args: argparse.Namespace, result: Any) -> None:
    m = result.report["master"]
    level = (f"  ({m['output_lufs']:.1f} LUFS, true peak {m['output_true_peak_dbtp']:.2f} dBTP)"
             if isinstance(m["output_lufs"], float) else "  (silent)")
    _say(args, f"mix: {result.mix}{level}")
    for t in result.report["tracks"]:
        if t["stem"]:
            extra = f", unmasked fraction {t['unmasked_fraction']:.3f}" \
                if isinstance(t["unmasked_fraction"], float) else ""
            took = "cached" if t["cached"] else f"{t['render_s']:.1f} s"
            _say(args, f"stem: {result.out_dir / t['stem']}  ({took}{extra})")
    _say(args, f"report: {result.report_json}" + (f", {result.report_png}"
                                                  if result.report_png else ""))


def demo(args: argparse.Namespace) -> int:
    result = run_demo(args.output, duration=args.duration, seed=args.seed, preset=args.preset,
                      prompt=args.prompt, device=args.device, progress=not args.quiet)
    _summary(args, result)
    return EXIT_OK


def render(args: argparse.Namespace) -> int:
    result = render_session(args.session, args.output, device=args.device, seed=args.seed,
                            progress=not args.quiet, cache=not args.no_cache,
                            block_seconds=args.block_seconds, jobs=args.jobs,
                            batch_size=args.batch_size,
                            batch_tracks=False if args.no_batch_tracks else None)
    _summary(args, result)
    return EXIT_OK


def render_many(args: argparse.Namespace) -> int:
    result = farm.render_many(args.sessions, args.output, backend=args.backend,
                              address=args.address, jobs=args.jobs, threads=args.threads,
                              device=args.device, seed=args.seed, cache=not args.no_cache,
                              max_retries=args.max_retries,
                              gpus_per_session=args.gpus_per_session,
                              split_seconds=None if args.no_split else args.split_seconds,
                              progress=not args.quiet)
    counts = {k: sum(s.status == k for s in result.sessions)
              for k in ("rendered", "up-to-date", "failed")}
    _say(args, f"render-many: {len(result.sessions)} sessions in {result.wall_s:.1f} s: "
               f"{counts['rendered']} rendered, {counts['up-to-date']} up to date, "
               f"{counts['failed']} failed; results: {result.manifest}")
    for s in result.failed:  # (errors are shown even with --quiet)
        message = " ".join(str((s.error or {}).get("message", "")).split())
        print(f"blendfx: error: session {s.name} ({s.session}): {message}", file=sys.stderr)
    if not result.failed:
        return EXIT_OK
    return EXIT_USAGE if all((s.error or {}).get("bad_input") for s in result.failed) \
        else EXIT_FAILURE


def blend(args: argparse.Namespace) -> int:
    noise = Path(args.noise).resolve()
    out = Path(args.output)
    if out.suffix.lower() not in WRITE_FORMATS:
        raise ParameterError(f"output {out.name}: blendfx writes {', '.join(WRITE_FORMATS)} files")
    if out.exists() and out.is_dir():
        raise ParameterError(f"output {out} is a folder; give a file name such as {out}/blend.wav")
    info = audio_info(noise)  # a missing or unreadable noise is an error before anything runs
    chain = read_preset(args.preset)["chain"]
    if args.prompt:
        chain = with_prompt(chain, args.prompt)
    if args.model and args.model != "composer":
        chain = _with_model(chain, args.model)
    manifest = {
        "session": {"name": noise.stem, "sample_rate": info.sample_rate,
                    "allow_outside_paths": True},
        # the noise keeps its level: only the true-peak ceiling is applied to the sum
        "master": {"target_lufs": False, "true_peak_dbtp": -1.0,
                   "format": out.suffix.lower().lstrip("."), "bit_depth": 24},
        "tracks": [{"name": "noise", "file": str(noise), "role": "noise",
                    "mute": bool(args.music_only)},
                   {"name": "music", "role": "music", "key": "noise", "chain": chain}],
    }
    if args.seed is not None:
        manifest["session"]["seed"] = args.seed
    session = session_from_dict(manifest, noise.parent, label=f"blend {noise.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".blendfx-blend.", dir=out.parent))
    try:
        result = render_session(session, work, device=args.device, progress=not args.quiet,
                                cache=False, figure=False)
        shutil.move(str(result.mix), out)  # same folder: an atomic rename
    finally:
        shutil.rmtree(work, ignore_errors=True)
    music = result.report["tracks"][-1]
    extra = ""
    if isinstance(music.get("unmasked_fraction"), float):
        extra = f", unmasked fraction {music['unmasked_fraction']:.3f}"
    _say(args, f"{out}  ({result.report['duration_s']:.1f} s{extra})")
    return EXIT_OK


def _with_model(chain: dict[str, Any], model: str) -> dict[str, Any]:
    """Put a diffusion generator with ``model`` into every Blend of a preset chain."""
    gen_cls = EFFECT_REGISTRY.get("OutpaintInpaint")
    if gen_cls is None:
        raise ParameterError(f"--model {model}: the diffusion generator (OutpaintInpaint) is not "
                             f"available in this installation; use --model composer")
    slot = next((p for p in ("model", "model_id", "model_path") if p in gen_cls.params()), None)
    if slot is None:
        raise ParameterError("--model: OutpaintInpaint takes no model parameter")

    def visit(d: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        d, found = dict(d), False
        if d.get("type") == "Blend":
            gen = {"type": "OutpaintInpaint", slot: model}
            if "prompt" in d and "prompt" in gen_cls.params():
                gen["prompt"] = d["prompt"]
            d["generator"], found = gen, True
        if isinstance(d.get("plugins"), list):
            kids = [visit(p) for p in d["plugins"]]
            d["plugins"] = [k for k, _ in kids]
            found = found or any(f for _, f in kids)
        return d, found

    chain, found = visit(chain)
    if not found:
        raise ParameterError("--model: the preset has no Blend to give a generator to")
    return chain


def session(args: argparse.Namespace) -> int:
    if args.session_command != "import":
        raise ParameterError("session: give an action: import")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported below, once, in our own words
        result = import_reaper(args.project, args.output, include_missing=not args.drop_missing)
    for line in result.warnings:
        print(f"blendfx: warning: {line}", file=sys.stderr)
    for path in result.missing_media:
        print(f"blendfx: warning: missing media: {path}", file=sys.stderr)
    _say(args, f"{result.path}: {len(result.tracks)} tracks, "
               f"{len(result.missing_media)} missing media file(s)")
    return EXIT_OK


def presets(args: argparse.Namespace) -> int:
    if args.presets_command == "show":
        print(factory_preset_path(args.name).read_text(encoding="utf-8"), end="")
        return EXIT_OK
    if args.presets_command != "list":
        raise ParameterError("presets: give an action: list or show NAME")
    for name in list_factory_presets():
        desc = read_preset(name).get("preset", {}).get("description", "")
        print(f"{name:24s} {desc}")
    return EXIT_OK


def inspect(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise ParameterError(f"inspect writes a PNG plot; {out.name} does not end in .png")
    info = audio_info(args.audio)
    meter = LoudnessMeter(info.sample_rate, min(info.channels, 5), info.frames)
    peak = tp = 0.0
    for block in iter_audio_blocks(args.audio, 10.0):
        block = block[:5]
        meter.add(block)
        peak = max(peak, float(np.abs(block).max(initial=0.0)))
        tp = true_peak_max(block, at_least=tp)
    audio, sr = read_audio(args.audio, duration=FIGURE_SECONDS)
    mask = None
    if args.mask:
        mask = MaskExtractor(fraction=0.15).extract(audio, sr)
    write_inspect_png(out, audio, sr, f"{Path(args.audio).name}", mask)
    lufs = meter.integrated()
    _say(args, f"{args.audio}: {info.duration:.2f} s, {info.sample_rate:g} Hz, "
               f"{info.channels} channel(s)")
    _say(args, f"loudness {lufs:.1f} LUFS, sample peak {db(peak):.2f} dBFS, "
               f"true peak {db(tp):.2f} dBTP")
    _say(args, f"plot: {out}")
    return EXIT_OK
