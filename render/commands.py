"""What each ``blendfx`` command does (the parser and the exit codes are in :mod:`.cli`).

Imported only when a command runs: ``blendfx --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from blendfx.audio_io import WRITE_FORMATS, audio_info, iter_audio_blocks, read_audio
from blendfx.dsp.loudness import LoudnessMeter
from blendfx.effect import EFFECT_REGISTRY
from blendfx.effects.amplifier.amplifier import SILENT_PEAK
from blendfx.effects.mask_extractor import MaskExtractor
from blendfx.errors import ParameterError, SessionError
from blendfx.files import owned_tempdir, writable_folder
from blendfx.presets import factory_preset_path, list_factory_presets, read_preset

from . import farm
from .cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from .demo import run_demo, with_prompt
from .mastering import db, true_peak_max
from .reaper import import_reaper
from .renderer import render_session
from .report import FIGURE_SECONDS, write_inspect_png
from .results import jsonable
from .score import score_video
from .session import session_from_dict

__all__ = ["demo", "blend", "blend_summary", "render", "render_many", "session", "presets",
           "inspect", "score", "output_file"]


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def _summary(args: argparse.Namespace, result: Any) -> None:
    m = result.report["master"]
    level = (f"  ({m['output_lufs']:.1f} LUFS, true peak {m['output_true_peak_dbtp']:.2f} dBTP)"
             if isinstance(m["output_lufs"], float) else "  (silent)")
    _say(args, f"mix: {result.mix}{level}")
    for t in result.report["tracks"]:
        for played in t["reports"]:
            if played.get("effect") == "instrument" and played.get("stand_in"):
                _say(args, f"stand-in: {t['name']!r} played by the {played['stand_in']} voice"
                           + (f" for {played['for']}" if played.get("for") else "")
                           + f" ({played['why']})")
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
                            batch_tracks=False if args.no_batch_tracks else None,
                            allow_large=args.allow_large, stems=not args.no_stems,
                            figure=not args.no_report, keep_cache=not args.drop_cache)
    _summary(args, result)
    return EXIT_OK


def output_file(path: str, suffixes: tuple[str, ...], overwrite: bool, example: str) -> Path:
    """Check an output file option (``-o``) before anything runs; returns it as a Path.

    The convention of every command that writes one file (``blend``, ``inspect``, ``session
    import``): a folder is refused (with a file name to use instead), so is a suffix the
    command does not write, and so is an existing file unless ``--overwrite`` is given. The
    folder it goes in is created and must be writable (one line naming it, exit code 3).
    """
    out = Path(path)
    if out.is_dir():
        raise ParameterError(f"output {out} is a folder; give a file name, such as "
                             f"{out / example}")
    if out.suffix.lower() not in suffixes:
        raise ParameterError(f"output {out.name}: this command writes "
                             f"{', '.join(suffixes)} files")
    if out.exists() and not overwrite:
        raise ParameterError(f"output {out} exists; pass --overwrite to replace it")
    writable_folder(out.parent if str(out.parent) else Path("."))
    return out


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
    info = audio_info(noise)  # a missing or unreadable noise is an error before anything runs
    out = output_file(args.output, tuple(WRITE_FORMATS), args.overwrite, "blend.wav")
    if not any(np.abs(b).max(initial=0.0) >= SILENT_PEAK for b in iter_audio_blocks(noise)):
        raise ParameterError(f"{args.noise} is digital silence (peak under -140 dBFS): there "
                             f"is nothing to blend music into")
    chain = read_preset(args.preset)["chain"]
    if args.prompt:
        chain = with_prompt(chain, args.prompt)
    if args.model and args.model != "composer":
        chain = _with_model(chain, args.model)
    report_path = None
    if getattr(args, "report", None):
        report_path = output_file(args.report, (".json",), args.overwrite, "report.json")
    knobs = {"mask_goal": getattr(args, "mask_goal", None),
             "loudness_budget_lu": getattr(args, "loudness_budget", None)}
    # the Blend solves its level on what plays (the preset's music FX inside it) and for the
    # mix (no ceiling of its own on the music stem); the master then lowers noise and music
    # together, by one gain, when their sum would pass the ceiling (never a limiter, which
    # would reshape the peaks the masking was solved for, and never clipping)
    chain = _with_settings(_fx_into_blend(chain), {"ceiling_on": "mix", **{
        k: v for k, v in knobs.items() if v is not None}})
    manifest = {
        "session": {"name": noise.stem, "sample_rate": info.sample_rate},
        # the noise keeps its level unless noise + music would pass the true-peak ceiling:
        # then one gain lowers both (their balance, so the masking, stays as solved)
        "master": {"target_lufs": False, "true_peak_dbtp": -1.0, "limiter": False,
                   "format": out.suffix.lower().lstrip("."), "bit_depth": 24},
        "tracks": [{"name": "noise", "file": str(noise), "role": "noise",
                    "mute": bool(args.music_only)},
                   {"name": "music", "role": "music", "key": "noise", "chain": chain}],
    }
    if args.seed is not None:
        manifest["session"]["seed"] = args.seed
    session = session_from_dict(manifest, noise.parent, label=f"blend {noise.name}")
    # the work folder sits beside the output (the result moves in by one rename); a killed
    # run's folder is removed by the next run (owned_tempdir)
    work = owned_tempdir(out.parent, ".blendfx-blend.")
    try:
        result = render_session(session, work, device=args.device, progress=not args.quiet,
                                cache=False, figure=False, allow_large=args.allow_large)
        shutil.move(str(result.mix), out)  # same folder: an atomic rename
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = blend_summary(result.report)
    if report_path is not None:
        report = {**result.report, "blend": summary, "outputs": {"mix": out.name}}
        write_json(report_path, report)
    extra = ""
    if isinstance(summary.get("masked_share"), float):
        extra = f", masks {100 * summary['masked_share']:.0f}% of the noise's core"
    if isinstance(summary.get("loudness_increase_lu"), float):
        extra += f", {summary['loudness_increase_lu']:+.1f} LU over the noise"
    if summary["output_gain_db"] < -0.005:
        cut, ceiling = -summary["output_gain_db"], summary["true_peak_ceiling_dbtp"]
        extra += (f", the music lowered {cut:.1f} dB to stay under {ceiling:g} dBTP (lower the "
                  f"noise as much to keep this masking)" if args.music_only else
                  f", noise and music lowered {cut:.1f} dB together to stay under {ceiling:g} dBTP")
    _say(args, f"{out}  ({result.report['duration_s']:.1f} s{extra})")
    if summary.get("goal_met") is False:
        why = f" (held back by the {summary['limited_by'].replace('_', ' ')})" \
            if summary.get("limited_by") else ""
        _say(args, f"masking goal {summary['mask_goal']:g} missed{why}")
    if report_path is not None:
        _say(args, f"report: {report_path}")
    return EXIT_OK


def blend_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What ``blendfx blend`` did, from its render report: the music track's Blend figures
    (``masked_share``, ``loudness_increase_lu``, ``nmr_bark_db``, ``mask_goal``, ``goal_met``,
    ``loudness_budget_lu``, ``within_budget``, ``limited_by``) and ``output_gain_db``, the one
    gain (<= 0 dB) the master put on noise and music together to stay under the ceiling."""
    music = report["tracks"][-1]
    blend = next((b for b in music["reports"] if "masked_share" in b), {})
    keys = ("masked_share", "loudness_increase_lu", "nmr_bark_db", "mask_goal", "goal_met",
            "loudness_budget_lu", "within_budget", "limited_by")
    master = report["master"]
    return {**{k: blend.get(k) for k in keys},
            "output_gain_db": float(master["master_gain_db"]),
            "true_peak_ceiling_dbtp": master["true_peak_ceiling_dbtp"],
            "output_true_peak_dbtp": master["output_true_peak_dbtp"],
            "output_lufs": master["output_lufs"]}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically (a temporary file beside it, renamed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(jsonable(data), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def score(args: argparse.Namespace) -> int:
    report = score_video(args.video, args.output, prompt=args.prompt, seed=args.seed, bpm=args.bpm,
                         container=args.container, progress=not args.quiet, model=args.model,
                         device=args.device, generator=args.generator, meter=args.meter)
    music = report["music"]
    out = Path(args.output)
    _say(args, f"{out / report['files']['video']}  ({report['video']['duration_s']:.1f} s, "
               f"{len(music['hit_points_on_bar_lines_s'])} cuts on bar lines, "
               f"{len(music['tempo'])} tempi, {music['meter']}, {music['key']})")
    if music["hit_points_missed_s"]:
        _say(args, "cuts too close together for a bar line: "
                   + ", ".join(f"{t:.2f} s" for t in music["hit_points_missed_s"]))
    _say(args, f"report: {out / 'report.json'}, {out / 'report.png'}")
    return EXIT_OK


def _with_settings(chain: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of a processor dict with ``settings`` on every Blend in it."""
    if not settings:
        return chain
    out = dict(chain)
    if out.get("type") == "Blend":
        out.update(settings)
    if isinstance(out.get("plugins"), list):
        out["plugins"] = [_with_settings(p, settings) for p in out["plugins"]]
    return out


def _fx_into_blend(chain: dict[str, Any]) -> dict[str, Any]:
    """A copy of a preset chain whose first effect is a Blend making a music stem, with the
    effects after it moved into the Blend's ``fx``: the Blend then solves its level (masking
    goal, loudness budget) and reports on the music as it plays, after them. Other chains are
    returned as they are."""
    plugins = chain.get("plugins")
    if chain.get("type") != "Chain" or not isinstance(plugins, list) or len(plugins) < 2:
        return chain
    first = plugins[0]
    if not (isinstance(first, dict) and first.get("type") == "Blend"
            and first.get("output", "mix") == "music" and "fx" not in first):
        return chain
    return {**chain, "plugins": [{**first, "fx": {"type": "Chain", "plugins": plugins[1:]}}]}


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
    if not Path(args.project).is_file():  # the input first, then the output
        raise SessionError(f"REAPER project not found: {args.project}")
    output_file(args.output, (".toml",), args.overwrite, "session.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported below, once, in our own words
        result = import_reaper(args.project, args.output, include_missing=not args.drop_missing,
                               bare_midi=getattr(args, "bare_midi", False))
    if getattr(args, "report", False):
        print(result.table())  # (the stand-ins and what is not rendered are in the table)
    elif not args.quiet:  # -q: no warnings either (they stay in the result and the summary)
        for line in result.stand_ins:
            print(f"blendfx: stand-in: {line}", file=sys.stderr)
        for line in result.warnings:
            print(f"blendfx: warning: {line}", file=sys.stderr)
    if not args.quiet:
        for path in dict.fromkeys(result.missing_media):  # one line per file
            print(f"blendfx: warning: missing media: {path}", file=sys.stderr)
    _say(args, f"{result.path}: {len(result.tracks)} tracks, {len(result.buses)} buses, "
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
    info = audio_info(args.audio)
    out = output_file(args.output, (".png",), args.overwrite, "plot.png")
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
