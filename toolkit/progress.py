"""Progress bars that suit where they are written.

On a terminal a progress bar redraws itself in place (tqdm). Written to a file or a pipe (a
log, CI, ``blendfx render ... 2> log``) the same redraws would pile up on one line with
carriage returns; there :func:`progress_bar` prints plain lines instead, one snapshot every
``line_interval`` seconds (10 by default) and none for an unchanged state.

Examples
--------
>>> with progress_bar(total=3, desc="tracks", disable=True) as bar:
...     bar.update(1)
"""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import tqdm

__all__ = ["progress_bar", "LineProgress", "is_terminal"]

#: Seconds between two plain progress lines when the output is not a terminal.
LINE_INTERVAL = 10.0


def is_terminal(stream: IO[str] | None) -> bool:
    """True when ``stream`` is an interactive terminal."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False


class _Lines:
    """A file wrapper that lets only whole non-blank lines through (tqdm's own bare ``\r`` and
    ``\n`` writes, at close, are dropped)."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file

    def write(self, s: str) -> None:
        if s.strip():
            self.file.write(s)

    def flush(self) -> None:
        self.file.flush()


class LineProgress(tqdm):
    """A tqdm that writes each state as its own plain line (ASCII, no carriage returns)."""

    def __init__(self, *args: Any, file: IO[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, file=_Lines(sys.stderr if file is None else file), **kwargs)

    @staticmethod
    def status_printer(file: IO[str]) -> Any:
        last = [""]

        def print_status(s: str) -> None:
            s = s.strip()
            if s and s != last[0]:
                file.write(s + "\n")
                file.flush()
                last[0] = s

        return print_status


def progress_bar(iterable: Any = None, *, file: IO[str] | None = None,
                 line_interval: float = LINE_INTERVAL, **kwargs: Any) -> tqdm:
    """A tqdm progress bar on ``file`` (default stderr): redrawn in place on a terminal, plain
    lines at most every ``line_interval`` seconds elsewhere. Takes tqdm's arguments."""
    file = sys.stderr if file is None else file
    if is_terminal(file) or kwargs.get("disable"):
        return tqdm(iterable, file=file, **kwargs)
    kwargs.update(ascii=True, mininterval=line_interval, dynamic_ncols=False, ncols=80)
    kwargs.setdefault("maxinterval", line_interval * 2)
    return LineProgress(iterable, file=file, **kwargs)
