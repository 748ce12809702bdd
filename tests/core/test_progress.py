"""Progress output (issue 23): plain lines when not written to a terminal."""

from __future__ import annotations

import io

from blendfx.progress import LineProgress, progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with progress_bar(total=5, desc="tracks", file=out, line_interval=0.0) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(5):
            bar.update(1)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text  # the issue: one line of \r redraws
    lines = text.splitlines()
    assert len(lines) >= 2 and lines[-1].startswith("tracks: 100%") and "5/5" in lines[-1]
    assert len(lines) == len(set(lines))  # an unchanged state is not printed again


def test_a_terminal_keeps_the_redrawn_bar():
    tty = _Tty()
    with progress_bar(total=2, desc="x", file=tty, mininterval=0) as bar:
        assert not isinstance(bar, LineProgress)
        bar.update(2)
    assert "\r" in tty.getvalue()


def test_disabled_writes_nothing():
    out = io.StringIO()
    with progress_bar(total=2, desc="x", file=out, disable=True) as bar:
        bar.update(2)
    assert out.getvalue() == ""
