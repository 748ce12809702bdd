"""Threads and the BLAS library's own thread pool.

blendfx parallelizes with its own threads (tracks, channel strips, blocks of the mix), and
numpy's BLAS (OpenBLAS here) starts a pool of its own for every matrix product: two pools on
the same cores oversubscribe them, and OpenBLAS's idle workers spin for a while after each
call. Measured on the 3-minute benchmark session (2 cores): 16.8 CPU-s with BLAS threads,
14.4 without, the same output bit for bit.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["one_blas_thread"]


def one_blas_thread() -> Any:
    """A context manager limiting BLAS to one thread (process-wide, restored on exit); a
    no-op where ``threadpoolctl`` (installed with librosa's scikit-learn) is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
