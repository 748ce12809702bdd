"""The per-track render cache: a rendered track is reused until its inputs change.

An entry is keyed by a SHA-256 over everything that decides the track's audio: blendfx's
version, the session's sample rate and length, the track's settings and chain (every parameter
value), the content hash (SHA-1) of its stem file, and the keys of the tracks it listens to (so a change
upstream re-renders what depends on it). Entries live under ``OUT/.blendfx-cache/tracks/<key>/``:
``audio.wav`` (32-bit float, the track's post-fader stem), ``meta.json`` and optional extras.

Writes are crash-safe: an entry is built in ``.blendfx-cache/tmp/`` and renamed into place in
one step, so a render killed half way (even by SIGKILL) leaves either a whole entry or none, and
the next run finishes the work. A lock file keeps two renders out of one output folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blendfx
import numpy as np
from blendfx.audio_io import audio_writer
from blendfx.errors import SessionError
from blendfx.files import atomic_write_text

__all__ = ["RenderCache", "file_digest", "CACHE_DIR", "MEMORY_BUDGET"]

CACHE_DIR = ".blendfx-cache"
_FORMAT = 2  # bump when the entry layout or the render semantics change

#: Bytes of rendered stems a render without the cache may hold in memory instead of writing
#: them to disk and reading them back: 2 GB (about 100 min of stereo float32 in all tracks),
#: at most a quarter of the machine's memory.
MEMORY_BUDGET = 2_000_000_000


def memory_budget() -> int:
    """:data:`MEMORY_BUDGET`, or a quarter of the physical memory if that is less."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return MEMORY_BUDGET
    return min(MEMORY_BUDGET, physical // 4)


class _MemorySink:
    """Collects a stem's blocks (what ``audio_writer`` would have written)."""

    def __init__(self) -> None:
        self.blocks: list[Any] = []

    def write(self, block: Any) -> None:
        self.blocks.append(block.copy())

    def audio(self) -> Any:
        return np.concatenate(self.blocks, axis=1) if self.blocks else np.zeros((2, 0), "f4")


def file_digest(path: Path, memo: dict[str, Any] | None = None) -> str:
    """SHA-1 of a file's bytes (a content fingerprint for the cache, not a security measure:
    twice as fast as SHA-256 here); ``memo`` remembers it by (size, mtime) between renders."""
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns]
    key = "sha1:" + str(path.resolve())
    if memo is not None and key in memo and memo[key][:2] == stamp:
        return memo[key][2]
    h = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)  # hashlib releases the GIL on large chunks: files hash in parallel
    digest = h.hexdigest()
    if memo is not None:
        memo[key] = [*stamp, digest]
    return digest


_BUILD_LOCK = threading.Lock()


class RenderCache:
    """The cache folder of one output directory.

    Parameters
    ----------
    out_dir : Path
        The render's output folder; the cache is ``out_dir/.blendfx-cache``.
    enabled : bool
        False: nothing is reused; the rendered stems go to :attr:`memory` when the renderer
        sets :attr:`in_memory` (they fit :data:`MEMORY_BUDGET`), else to entries as usual.
    """

    def __init__(self, out_dir: Path, enabled: bool = True) -> None:
        self.root = Path(out_dir) / CACHE_DIR
        self.enabled = enabled
        self.tracks = self.root / "tracks"
        self.tmp = self.root / "tmp"
        self._lock_fh: Any = None
        self.hashes: dict[str, Any] = {}
        self.used: set[str] = set()
        self.built: set[str] = set()  # entries written by this render
        #: Rendered stems held in memory by key, instead of ``audio.wav`` files: a render
        #: without the cache (``--no-cache``) that fits :data:`MEMORY_BUDGET` writes no float
        #: copy of its tracks to disk (see :meth:`stem_writer`).
        self.memory: dict[str, Any] = {}
        self.in_memory = False

    # -- lifetime ---------------------------------------------------------------------------
    def open(self) -> RenderCache:
        """Create the folders, take the lock, and clear what a killed run left in ``tmp``."""

        self.tracks.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.root / "lock", "w")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_fh.close()
            self._lock_fh = None
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise SessionError(f"another blendfx render is writing to {self.root.parent}") from None
            raise
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError, ValueError):
            self.hashes = json.loads((self.root / "hashes.json").read_text(encoding="utf-8"))
        return self

    def close(self, prune: bool = False) -> None:
        """Save the file-hash memo, optionally drop entries this render did not use, unlock."""
        with contextlib.suppress(OSError):
            atomic_write_text(self.root / "hashes.json", json.dumps(self.hashes))
        if prune:
            for entry in self.tracks.iterdir():
                if entry.name not in self.used:
                    shutil.rmtree(entry, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> RenderCache:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close(prune=exc[0] is None)

    # -- entries ----------------------------------------------------------------------------
    @staticmethod
    def key(spec: dict[str, Any]) -> str:
        """The entry key of a track spec (any JSON-able dict)."""

        blob = json.dumps({"blendfx": blendfx.__version__, "format": _FORMAT, **spec},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]

    def lookup(self, key: str) -> Path | None:
        """The entry folder for ``key`` if it is complete and reuse is enabled."""
        entry = self.tracks / key
        self.used.add(key)
        if self.enabled and (entry / "meta.json").is_file() and (entry / "audio.wav").is_file():
            return entry
        return None

    @contextlib.contextmanager
    def build(self, key: str) -> Iterator[Path]:
        """Yield a scratch folder to fill; on success it becomes the entry for ``key``."""
        scratch = Path(tempfile.mkdtemp(prefix=f"{key[:8]}.", dir=self.tmp))
        try:
            yield scratch
            entry = self.tracks / key
            with _BUILD_LOCK:
                # two tracks of a session with the same inputs share a key: the first built
                # wins (the same content)
                if key not in self.built:
                    if entry.exists():  # --no-cache re-render: replace the old entry
                        shutil.rmtree(entry)
                    os.replace(scratch, entry)
                    self.built.add(key)
                self.used.add(key)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @contextlib.contextmanager
    def stem_writer(self, scratch: Path, key: str, sample_rate: float) -> Iterator[Any]:
        """A writer (``.write(block)``) for a track's rendered stereo stem: ``audio.wav`` in
        ``scratch`` (32-bit float), or, when :attr:`in_memory`, an array kept in
        :attr:`memory` (only once the block exits without an error)."""
        if not self.in_memory:
            with audio_writer(scratch / "audio.wav", sample_rate, 2, bit_depth=32) as w:
                yield w
            return
        sink = _MemorySink()
        yield sink
        self.memory[key] = sink.audio()

    def staging(self) -> Path:
        """A fresh folder for the final outputs before they are moved into the output folder."""
        return Path(tempfile.mkdtemp(prefix="out.", dir=self.tmp))
