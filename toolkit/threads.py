"""Threads, the BLAS library's own thread pool, and pauses that stop every thread.

blendfx parallelizes with its own threads (tracks, channel strips, blocks of the mix), and
numpy's BLAS (OpenBLAS here) starts a pool of its own for every matrix product: two pools on
the same cores oversubscribe them, and OpenBLAS's idle workers spin for a while after each
call. Measured on the 3-minute benchmark session (2 cores): 16.8 CPU-s with BLAS threads,
14.4 without, the same output bit for bit.

Python's cyclic garbage collector stops every thread while it runs (it holds the GIL), and a
full collection walks every live object: :func:`gc_paused` holds it off while a step builds
tens of thousands of short-lived objects that reference counting frees anyway.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Any

from threadpoolctl import threadpool_limits

__all__ = ["one_blas_thread", "gc_paused"]


def one_blas_thread() -> Any:
    """A context manager limiting BLAS to one thread (process-wide, restored on exit)."""
    return threadpool_limits(limits=1, user_api="blas")


_gc_lock = threading.Lock()
_gc_state = {"pauses": 0, "was_enabled": False}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector while the block (or decorated function) runs.

    Re-entrant and thread-safe: the collector runs again when the last paused block on any
    thread ends, if it was enabled when the first began. Objects are still freed by reference
    counting; only cycles wait for the next collection. Measured on the Composer's 3-minute
    piece: its two MIDI builds and read-backs (~50 000 messages each) set off 3 full
    collections, 0.15 s in all, that found nothing to free.
    """
    with _gc_lock:
        if _gc_state["pauses"] == 0:
            _gc_state["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_state["pauses"] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_state["pauses"] -= 1
            if _gc_state["pauses"] == 0 and _gc_state["was_enabled"]:
                gc.enable()
