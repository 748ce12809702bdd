"""Shared fixtures: paths to ../shared/data, short real clips, deterministic signals."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

# numba (librosa's pitch and zero-crossing kernels) caches compiled code beside the package;
# two pytest-xdist workers compiling the same function at once leave an index and code files
# from different compilations there, and every later process that loads them crashes
# (reproduced: two fresh processes calling librosa.estimate_tuning at once, then a third
# segfaults). One cache folder per worker: no two processes ever write the same one.
if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = str(Path(__file__).resolve().parents[1] / ".pytest_cache"
                                        / "numba" / os.environ.get("PYTEST_XDIST_WORKER", "main"))

#: The shared test data lives beside the checkout and is never copied into the project.
SHARED_DATA = Path(os.environ.get("BLENDFX_SHARED_DATA",
                                  Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared(*parts: str) -> Path:
    """Path of a file under ../shared/data (or ``$BLENDFX_SHARED_DATA``); skips the test
    when the data is absent, or fails it when ``BLENDFX_REQUIRE_SHARED_DATA=1`` (CI)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("BLENDFX_REQUIRE_SHARED_DATA", "") not in ("", "0"):
            pytest.fail(f"shared data not found: {path} (BLENDFX_REQUIRE_SHARED_DATA is set)")
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture
def music_clip() -> tuple[np.ndarray, float]:
    """5.12 s of real stereo music at 44.1 kHz (vibe_ace, from 10 s)."""
    import blendfx

    return blendfx.read_audio(shared("music", "vibe_ace.ogg"), offset=10.0, duration=5.12)


@pytest.fixture
def clock_tick() -> tuple[np.ndarray, float]:
    """A real clock-tick noise (ESC-10), mono 44.1 kHz."""
    import blendfx

    return blendfx.read_audio(shared("noise", "esc10", "clock_tick", "1-21934-A.ogg"), mono=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@contextlib.contextmanager
def threads_started() -> Iterator[list[str]]:
    """The names of the threads started in the block (any thread's), in order."""
    started: list[str] = []
    start = threading.Thread.start

    def record(self: threading.Thread) -> None:
        started.append(self.name)
        start(self)

    threading.Thread.start = record  # type: ignore[method-assign]
    try:
        yield started
    finally:
        threading.Thread.start = start  # type: ignore[method-assign]
