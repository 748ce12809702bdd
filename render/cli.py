"""The ``blendfx`` command line.

Every user error is reported as one line on stderr (``blendfx: error: ...``) with exit code 2;
an unexpected failure exits 1 with its traceback. ``--quiet`` silences progress output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import blendfx
from blendfx.errors import BlendfxError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blendfx", description=blendfx.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"blendfx {blendfx.__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    presets = sub.add_parser("presets", help="list or show factory presets")
    psub = presets.add_subparsers(dest="presets_command", metavar="ACTION")
    psub.add_parser("list", help="names and one-line descriptions")
    show = psub.add_parser("show", help="print a preset's TOML")
    show.add_argument("name")
    return parser


def _presets(args: argparse.Namespace) -> int:
    from blendfx.presets import factory_preset_path, list_factory_presets, read_preset

    if args.presets_command == "show":
        print(factory_preset_path(args.name).read_text(encoding="utf-8"), end="")
        return EXIT_OK
    for name in list_factory_presets():
        desc = read_preset(name).get("preset", {}).get("description", "")
        print(f"{name:24s} {desc}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "presets":
            return _presets(args)
        parser.print_help()
        return EXIT_USAGE
    except BlendfxError as exc:
        print(f"blendfx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("blendfx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
