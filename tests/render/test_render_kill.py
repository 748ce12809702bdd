"""A render killed with SIGKILL half way leaves no partial output, and the next run finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from blendfx import read_audio
from blendfx.render.renderer import render_session

from ..sessionkit import basic_session, output_files

# Runs a render in a child process and parks it at a chosen point (signalling through a flag
# file), so the test can SIGKILL it exactly there: no timing guesswork.
CHILD = r"""
import contextlib, sys, time
from blendfx.render import mixdown, renderer

point, session, out, flag = sys.argv[1:5]

def park():
    open(flag, "w").close()
    time.sleep(600)

if point == "track":  # the second track is rendered in scratch, not yet in the cache
    original = renderer._Render._render_track
    def patched(self, t, scratch, bar):
        meta = original(self, t, scratch, bar)
        if t.name == "music":
            park()
        return meta
    renderer._Render._render_track = patched
else:  # "mix": half way through writing the mix and stems
    original_writer = mixdown.audio_writer
    class Parking:
        def __init__(self, f):
            self.f = f
        def write(self, block):
            self.f.write(block)
            park()
    @contextlib.contextmanager
    def writer(path, *args, **kwargs):
        with original_writer(path, *args, **kwargs) as f:
            yield Parking(f) if str(path).endswith("mix.wav") else f
    mixdown.audio_writer = writer
renderer.render_session(session, out, progress=False, block_seconds=0.5)
"""


def _kill_at(point: str, session, out, tmp_path) -> None:
    flag = tmp_path / f"{point}.flag"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, point, str(session), str(out),
                             str(flag)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():
            if proc.poll() is not None:
                pytest.fail(f"child exited early: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("child never reached the kill point")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("point, cached_after", [("track", [True, False]), ("mix", [True, True])])
def test_sigkill_leaves_no_partial_output_and_rerun_completes(tmp_path, point, cached_after):
    session = basic_session(tmp_path / "s", seconds=3.0)
    out = tmp_path / "out"
    _kill_at(point, session, out, tmp_path)
    assert output_files(out) == []  # nothing but the hidden cache
    finished = render_session(session, out, progress=False, block_seconds=0.5)
    assert [t.cached for t in finished.tracks] == cached_after
    assert output_files(out) == ["mix.wav", "report.json", "report.png", "stems/music.wav",
                                 "stems/noise.wav"]
    assert not any((out / ".blendfx-cache" / "tmp").glob("*"))
    clean = render_session(session, tmp_path / "clean", progress=False, block_seconds=0.5,
                           figure=False)
    np.testing.assert_array_equal(read_audio(finished.mix)[0], read_audio(clean.mix)[0])
