"""The ``blendfx`` command line.

Commands::

    blendfx demo -o out/                      # the main job: a synthesized train, blended into music
    blendfx blend NOISE.wav -o OUT.wav [--prompt TEXT] [--preset NAME] [--model composer|MODEL]
    blendfx render SESSION.toml -o DIR [--device cuda] [--seed N] [--no-cache] [--jobs N]
                   [--batch-size N] [--no-batch-tracks]
    blendfx session import PROJECT.rpp -o session.toml
    blendfx presets list | presets show NAME
    blendfx inspect AUDIO -o plot.png [--mask]

Exit codes: 0 success; 2 a user error (bad input, bad option, unknown preset, missing or corrupt
file), reported as one line ``blendfx: error: ...`` on stderr; 3 the output could not be written
(permissions, disk full), also one line; 1 an unexpected failure (a bug: the traceback is shown);
130 interrupted. ``-q``/``--quiet`` silences progress bars and summaries.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import blendfx
from blendfx.errors import BlendfxError, ParameterError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_IO"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_IO, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other user error."""

    def error(self, message: str) -> NoReturn:
        print(f"blendfx: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars or summaries")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="blendfx", description=blendfx.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"blendfx {blendfx.__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="synthesize a train ride and blend it into music "
                          "(writes DIR/mix.wav, DIR/stems/, DIR/report.json, DIR/report.png)")
    demo.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    demo.add_argument("--duration", type=float, default=24.0, help="seconds of train (default 24)")
    demo.add_argument("--preset", default="default", help="factory preset for the music track")
    demo.add_argument("--prompt", help="style of the music, e.g. 'jazz' (default: the preset's)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:1")
    _quiet(demo)

    blend = sub.add_parser("blend", help="blend a noise recording into music written for it")
    blend.add_argument("noise", metavar="NOISE", help="the noise recording (wav, flac, ogg, mp3)")
    blend.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="output audio file (.wav or .flac)")
    blend.add_argument("--prompt", help="style of the music, e.g. 'lofi hip hop'")
    blend.add_argument("--preset", default="default", help="factory preset name or .toml file")
    blend.add_argument("--model", default="composer",
                       help="generator: 'composer' (procedural, no weights; default) or a "
                            "diffusion model (a local folder or a cached hub id)")
    blend.add_argument("--music-only", action="store_true",
                       help="write the adapted music alone, not noise + music")
    blend.add_argument("--seed", type=int, help="random seed")
    blend.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:1")
    _quiet(blend)

    render = sub.add_parser("render", help="render a session's stems, mix and report")
    render.add_argument("session", metavar="SESSION", help="session manifest (.toml)")
    render.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    render.add_argument("--device", help="torch device for the effects: auto, cpu, cuda, cuda:1")
    render.add_argument("--seed", type=int, help="seed every effect of every chain")
    render.add_argument("--no-cache", action="store_true",
                        help="render every track again, even if unchanged")
    render.add_argument("--block-seconds", type=float, default=10.0,
                        help="block length for streaming tracks and the mix (default 10 s)")
    render.add_argument("--jobs", type=int, help="tracks rendered at once (default: CPUs, max 4)")
    render.add_argument("--batch-size", type=int, metavar="N",
                        help="windows per model call when diffusion generators of several tracks "
                             "are batched together (default: [render] batch_size, else the "
                             "generators' own)")
    render.add_argument("--no-batch-tracks", action="store_true",
                        help="run each track's diffusion generator on its own")
    _quiet(render)

    session = sub.add_parser("session", help="session tools")
    ssub = session.add_subparsers(dest="session_command", metavar="ACTION")
    imp = ssub.add_parser("import", help="convert a REAPER project (.rpp) to a session manifest")
    imp.add_argument("project", metavar="PROJECT.rpp")
    imp.add_argument("-o", "--output", required=True, metavar="SESSION.toml")
    imp.add_argument("--drop-missing", action="store_true",
                     help="leave out tracks whose media file is missing")
    _quiet(imp)

    presets = sub.add_parser("presets", help="list or show factory presets")
    psub = presets.add_subparsers(dest="presets_command", metavar="ACTION")
    psub.add_parser("list", help="names and one-line descriptions")
    show = psub.add_parser("show", help="print a preset's TOML")
    show.add_argument("name")

    inspect = sub.add_parser("inspect", help="loudness, peaks and a spectrogram plot of a file")
    inspect.add_argument("audio", metavar="AUDIO")
    inspect.add_argument("-o", "--output", required=True, metavar="PLOT.png")
    inspect.add_argument("--mask", action="store_true",
                         help="outline the noise's energy core (MaskExtractor, 15 %%)")
    _quiet(inspect)
    return parser


# -- commands --------------------------------------------------------------------------------
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


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    result = run_demo(args.output, duration=args.duration, seed=args.seed, preset=args.preset,
                      prompt=args.prompt, device=args.device, progress=not args.quiet)
    _summary(args, result)
    return EXIT_OK


def _render(args: argparse.Namespace) -> int:
    from .renderer import render_session

    result = render_session(args.session, args.output, device=args.device, seed=args.seed,
                            progress=not args.quiet, cache=not args.no_cache,
                            block_seconds=args.block_seconds, jobs=args.jobs,
                            batch_size=args.batch_size,
                            batch_tracks=False if args.no_batch_tracks else None)
    _summary(args, result)
    return EXIT_OK


def _blend(args: argparse.Namespace) -> int:
    from blendfx.audio_io import WRITE_FORMATS, audio_info
    from blendfx.presets import read_preset
    from blendfx.session import session_from_dict

    from .demo import _with_prompt
    from .renderer import render_session

    noise = Path(args.noise).resolve()
    out = Path(args.output)
    if out.suffix.lower() not in WRITE_FORMATS:
        raise ParameterError(f"output {out.name}: blendfx writes {', '.join(WRITE_FORMATS)} files")
    if out.exists() and out.is_dir():
        raise ParameterError(f"output {out} is a folder; give a file name such as {out}/blend.wav")
    info = audio_info(noise)  # a missing or unreadable noise is an error before anything runs
    chain = read_preset(args.preset)["chain"]
    if args.prompt:
        chain = _with_prompt(chain, args.prompt)
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
    from blendfx.effect import EFFECT_REGISTRY

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


def _session(args: argparse.Namespace) -> int:
    import warnings

    from blendfx.reaper import import_reaper

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


def _presets(args: argparse.Namespace) -> int:
    from blendfx.presets import factory_preset_path, list_factory_presets, read_preset

    if args.presets_command == "show":
        print(factory_preset_path(args.name).read_text(encoding="utf-8"), end="")
        return EXIT_OK
    if args.presets_command != "list":
        raise ParameterError("presets: give an action: list or show NAME")
    for name in list_factory_presets():
        desc = read_preset(name).get("preset", {}).get("description", "")
        print(f"{name:24s} {desc}")
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    import numpy as np
    from blendfx.audio_io import audio_info, iter_audio_blocks, read_audio

    from .mastering import LoudnessMeter, db, true_peak_max
    from .report import FIGURE_SECONDS, write_inspect_png

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
        from blendfx.effects import MaskExtractor

        mask = MaskExtractor(fraction=0.15).extract(audio, sr)
    write_inspect_png(out, audio, sr, f"{Path(args.audio).name}", mask)
    lufs = meter.integrated()
    _say(args, f"{args.audio}: {info.duration:.2f} s, {info.sample_rate:g} Hz, "
               f"{info.channels} channel(s)")
    _say(args, f"loudness {lufs:.1f} LUFS, sample peak {db(peak):.2f} dBFS, "
               f"true peak {db(tp):.2f} dBTP")
    _say(args, f"plot: {out}")
    return EXIT_OK


_COMMANDS = {"demo": _demo, "blend": _blend, "render": _render, "session": _session,
             "presets": _presets, "inspect": _inspect}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except BlendfxError as exc:
        print(f"blendfx: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"blendfx: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print("blendfx: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _entry() -> None:  # pragma: no cover - console_scripts calls main() via sys.exit
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
