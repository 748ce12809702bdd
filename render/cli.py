"""The ``blendfx`` command line.

Commands::

    blendfx demo -o out/                      # the main job: a synthesized train, blended into music
    blendfx blend NOISE.wav -o OUT.wav [--prompt TEXT] [--preset NAME] [--model composer|MODEL]
                  [--mask-goal SHARE] [--loudness-budget LU] [--report FILE.json]
                  [--overwrite] [--allow-large]
    blendfx render SESSION.toml -o DIR [--device cuda] [--seed N] [--no-cache] [--jobs N]
                   [--batch-size N] [--no-batch-tracks] [--no-stems] [--no-report]
                   [--drop-cache] [--allow-large]
    blendfx render-many SESSION... -o OUT [--backend local|ray] [--address ADDR] [--jobs N]
                   [--threads N] [--device cuda] [--seed N] [--no-cache] [--max-retries N]
                   [--split-seconds S | --no-split]
    blendfx session import PROJECT.rpp -o session.toml [--overwrite]
    blendfx presets list | presets show NAME
    blendfx inspect AUDIO -o plot.png [--mask] [--overwrite]
    blendfx score VIDEO -o DIR [--prompt TEXT] [--seed N] [--bpm BPM] [--meter M] [--container EXT]
                  [--generator composer|riffusion|audioldm2] [--model MODEL] [--device cuda]

Output files (``blend -o``, ``inspect -o``, ``session import -o``): a folder or a suffix the
command does not write is refused, and so is an existing file unless ``--overwrite`` is given;
``render``/``demo -o`` take a folder and re-render into it (the render cache is for that).
``--allow-large`` lets ``render``/``blend`` make a timeline longer than 6 h (the render says
what it would write first; what the disk cannot hold is refused in any case).

Exit codes: 0 success; 2 a user error (bad input, bad option, unknown preset, missing or corrupt
file), reported as one line ``blendfx: error: ...`` on stderr; 3 the output could not be written
(permissions, disk full), also one line; 1 an unexpected failure (a bug: the traceback is shown);
130 interrupted. ``-q``/``--quiet`` silences progress bars, summaries and warnings. ``render-many`` renders
every session it can and then exits 2 if some failed on their input, 1 if a worker crashed past
its retries; it lists each failed session with its error on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

import blendfx
from blendfx.errors import BlendfxError
from blendfx.numba_cache import claim_numba_cache

#: What ``blendfx score --generator`` accepts (blendfx.render.score.GENERATORS).
SCORE_GENERATORS = ("composer", "riffusion", "audioldm2")

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_IO"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_IO, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other user error."""

    def error(self, message: str) -> NoReturn:
        print(f"blendfx: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars, summaries or warnings")


def _overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output file if it exists (default: refuse)")


def _allow_large(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-large", action="store_true",
                   help="render a timeline longer than 6 h (refused by default: the render says "
                        "what it would write first)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="blendfx", description=blendfx.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"blendfx {blendfx.__version__}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars, summaries or warnings")
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
    blend.add_argument("--mask-goal", type=float, metavar="SHARE",
                       help="mask at least this share (0-1] of the noise's core, as quietly as possible")
    blend.add_argument("--loudness-budget", type=float, metavar="LU",
                       help="the mix at most this many LU louder than the noise alone")
    blend.add_argument("--report", metavar="FILE.json",
                       help="also write the render's report (masked share, loudness increase, "
                            "goal met, the gain that kept the mix under the ceiling) as JSON")
    blend.add_argument("--seed", type=int, help="random seed")
    blend.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:1")
    _allow_large(blend)
    _overwrite(blend)
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
    render.add_argument("--jobs", type=int,
                        help="cores the render may use: tracks at once and its helper threads "
                             "(default: CPUs, max 4)")
    render.add_argument("--batch-size", type=int, metavar="N",
                        help="windows per model call when diffusion generators of several tracks "
                             "are batched together (default: [render] batch_size, else the "
                             "generators' own)")
    render.add_argument("--no-batch-tracks", action="store_true",
                        help="run each track's diffusion generator on its own")
    render.add_argument("--no-stems", action="store_true",
                        help="write the mix and the report only, no stems/")
    render.add_argument("--no-report", action="store_true", help="do not draw report.png")
    render.add_argument("--drop-cache", action="store_true",
                        help="remove OUT/.blendfx-cache after the render (one float32 copy of "
                             "every track, kept by default so a re-render is quick)")
    _allow_large(render)
    _quiet(render)

    many = sub.add_parser("render-many", help="render many sessions, each into OUT/<name>/, "
                          "on a process pool here or on a Ray cluster")
    many.add_argument("sessions", nargs="+", metavar="SESSION", help="session manifests (.toml)")
    many.add_argument("-o", "--output", required=True, metavar="OUT",
                      help="output folder: OUT/<session name>/ for each session (as 'blendfx "
                           "render' writes it), OUT/render-many.json for the results")
    many.add_argument("--backend", choices=("local", "ray"), default="local",
                      help="local: a process pool on this machine (default); ray: Ray tasks "
                           "(pip install 'blendfx[farm]')")
    many.add_argument("--address", metavar="ADDR",
                      help="Ray cluster to run on, e.g. auto or ray://head:10001 (default: "
                           "RAY_ADDRESS, else a local Ray instance)")
    many.add_argument("--jobs", type=int, metavar="N",
                      help="sessions at once (default: local, the CPUs; ray, what the cluster's "
                           "CPUs allow)")
    many.add_argument("--threads", type=int, default=1, metavar="N",
                      help="cores per session (its track and helper threads); a Ray task asks "
                           "for N CPUs (default 1)")
    many.add_argument("--device", help="torch device for the effects: auto, cpu, cuda")
    many.add_argument("--seed", type=int, help="seed every effect of every chain")
    many.add_argument("--no-cache", action="store_true",
                      help="render every session and track again, even if unchanged")
    many.add_argument("--max-retries", type=int, default=3, metavar="N",
                      help="restarts of a session whose worker process died (default 3)")
    many.add_argument("--gpus-per-session", type=float, metavar="G",
                      help="GPUs a Ray task asks for when its session runs a diffusion generator "
                           "(default: 1 if the cluster has GPUs and --device is not cpu)")
    many.add_argument("--split-seconds", type=float, default=600.0, metavar="S",
                      help="ray: a session at least S seconds long runs its independent groups "
                           "of tracks as separate tasks, then mixes (default 600; 0: always)")
    many.add_argument("--no-split", action="store_true", help="one task per session, always")
    _quiet(many)

    session = sub.add_parser("session", help="session tools")
    ssub = session.add_subparsers(dest="session_command", metavar="ACTION")
    imp = ssub.add_parser("import", help="convert a REAPER project (.rpp) to a session manifest")
    imp.add_argument("project", metavar="PROJECT.rpp")
    imp.add_argument("-o", "--output", required=True, metavar="SESSION.toml")
    imp.add_argument("--drop-missing", action="store_true",
                     help="leave out tracks whose media file is missing")
    imp.add_argument("--report", action="store_true",
                     help="print a table of what was imported: each REAPER track, the session "
                          "tracks and buses it became, stand-in instruments, what is not rendered")
    imp.add_argument("--bare-midi", action="store_true",
                     help="also play MIDI on tracks without an instrument (silent in REAPER) "
                          "through stand-in voices")
    _overwrite(imp)
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
    _overwrite(inspect)
    _quiet(inspect)

    score = sub.add_parser("score", help="score a video: music to picture, blended with its sound "
                           "(writes DIR/music.wav, music.mid, mix.wav, scored.<ext>, report.json, "
                           "report.png)")
    score.add_argument("video", metavar="VIDEO", help="the video (mp4, webm, mkv, mov, ...)")
    score.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    score.add_argument("--prompt", default="cinematic ambient",
                       help="style of the music (default 'cinematic ambient')")
    score.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    score.add_argument("--bpm", type=float, help="keep the overall tempo near this")
    score.add_argument("--meter", choices=["auto", "2/4", "3/4", "4/4", "6/8"],
                       help="the music's meter (default: the one the prompt names, e.g. 'waltz' or "
                            "'in 6/8', else 4/4; auto: the picture chooses 4/4 or 3/4)")
    score.add_argument("--container", choices=[".mp4", ".mkv", ".webm", ".mov"],
                       help="container of DIR/scored.<ext> (default: the source's, else .mkv)")
    score.add_argument("--generator", choices=list(SCORE_GENERATORS),
                       help="what makes the music: composer (default without --model), riffusion "
                            "(the Composer's music restyled by a Riffusion model, a prompt per shot), "
                            "audioldm2 (text-to-music, a prompt per shot, joined at the cuts); "
                            "default with --model: what the model folder holds")
    score.add_argument("--model", help="the diffusion model of --generator (a local folder or a cached "
                       "hub id; default: riffusion/riffusion-model-v1 or cvssp/audioldm2-music)")
    score.add_argument("--device", help="torch device for --model: auto, cpu, cuda, cuda:1")
    _quiet(score)
    return parser


#: Each command's function in :mod:`blendfx.render.commands`, imported when a command runs, so
#: ``blendfx --help`` and ``blendfx --version`` load neither numpy nor the renderer.
_COMMANDS = {"demo": "demo", "blend": "blend", "render": "render", "render-many": "render_many",
             "session": "session", "presets": "presets", "inspect": "inspect", "score": "score"}


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
    claim_numba_cache()  # two renders started at once must not share numba's cache
    try:
        commands = importlib.import_module("blendfx.render.commands")
        return getattr(commands, _COMMANDS[args.command])(args)
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
