"""Threads, the BLAS library's own thread pool, and pauses that stop every thread.

blendfx parallelizes with its own threads (tracks, channel strips, blocks of the mix), and
numpy's BLAS (OpenBLAS here) starts a pool of its own for every matrix product: two pools on
the same cores oversubscribe them, and OpenBLAS's idle workers spin for a while after each
call. Measured on the 3-minute benchmark session (2 cores): 16.8 CPU-s with BLAS threads,
14.4 without, the same output bit for bit.

A render may be held to fewer cores than the machine has (``render_session(jobs=1)``: the unit
of work a farm hands out, one task per core): :func:`core_limit` sets that bound for the
process and :func:`cores` is what every pool of blendfx's sizes itself by, so a render on
one core runs its helper work (decoding ahead, measuring, mastering, the Composer's channel
strips) in its own thread instead of on a second core.

Python's cyclic garbage collector stops every thread while it runs (it holds the GIL), and a
full collection walks every live object: :func:`gc_paused` holds it off while a step builds
tens of thousands of short-lived objects that reference counting frees anyway.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from threadpoolctl import threadpool_limits

from .errors import ParameterError

__all__ = ["one_blas_thread", "gc_paused", "cores", "core_limit", "thread_pool"]


def one_blas_thread() -> Any:
    """A context manager limiting BLAS to one thread (process-wide, restored on exit)."""
    return threadpool_limits(limits=1, user_api="blas")


_limits: list[int] = []  # the bounds of the core_limit blocks now open (any thread)
_limits_lock = threading.Lock()


def cores() -> int:
    """The cores blendfx's own threads may use now: the CPUs this process may run on
    (its affinity, else ``os.cpu_count()``), at most the tightest open :func:`core_limit`."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    with _limits_lock:
        return max(1, min([n, *_limits]))


@contextlib.contextmanager
def core_limit(n: int) -> Iterator[None]:
    """Hold blendfx's threads to ``n`` cores while the block runs (process-wide; when blocks
    overlap on several threads, the tightest bound holds until it closes).

    Parameters
    ----------
    n : int
        Cores, >= 1.

    Examples
    --------
    >>> from blendfx.threads import core_limit, cores
    >>> with core_limit(1):
    ...     cores()
    1
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"core_limit needs a positive number of cores, got {n!r}")
    with _limits_lock:
        _limits.append(n)
    try:
        yield
    finally:
        with _limits_lock:
            _limits.remove(n)


class _Inline(Executor):
    """An executor that runs each task when it is submitted, in the submitting thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed over as a thread pool would
            future.set_exception(exc)
        return future


def thread_pool(workers: int, name: str) -> Executor:
    """A pool of ``min(workers, cores())`` threads named ``name``, or, when blendfx is held
    to one core, an executor that runs each task in the caller's thread when it is submitted
    (the same results, in the same order, with no second thread of work beside the caller's).

    Parameters
    ----------
    workers : int
        Threads wanted, >= 1 (one thread works *beside* the caller: an overlap).
    name : str
        The threads' name prefix (shown by debuggers and profilers).
    """
    if cores() < 2:
        return _Inline()
    return ThreadPoolExecutor(max_workers=min(workers, cores()), thread_name_prefix=name)


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
