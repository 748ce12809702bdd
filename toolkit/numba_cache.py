"""A numba cache folder that no other live process writes.

librosa compiles some of its kernels with numba (``cache=True``: pitch tracking, local maxima,
zero crossings, used by chroma features and tuning estimates) and by default keeps the compiled
code beside the installed package. Two processes compiling the same ``@guvectorize`` kernel at
once can leave index and code files from different compilations there, and every process that
loads them afterwards crashes (numba/numba#10128, open; reproduced here: two fresh processes
calling ``librosa.estimate_tuning`` at once, then a third segfaults). A farm starts exactly
such processes on a fresh install.

:func:`claim_numba_cache` gives each process one of a fixed set of numbered folders, held with
an exclusive ``flock`` for the life of the process: no two live processes share one, and later
processes reuse the compiled code of earlier ones (a folder per process id would recompile in
every worker and fill the disk).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO

__all__ = ["claim_numba_cache", "numba_cache_root"]

#: Numbered folders tried before giving up (more live processes than this on one machine
#: share nothing and fall back to numba's own default).
SLOTS = 64

_held: tuple[Path, IO[bytes]] | None = None  # the folder this process holds, and its lock


#: Set by a claim to the root it used, so that child processes (which inherit the claimed
#: folder in ``NUMBA_CACHE_DIR``) claim beside their parent instead of inside its folder.
ROOT_VARIABLE = "BLENDFX_NUMBA_CACHE_ROOT"


def numba_cache_root() -> Path:
    """Where the numbered folders live: the root a parent process claimed in, else
    ``$NUMBA_CACHE_DIR`` (the slots sit inside it), else ``$XDG_CACHE_HOME/blendfx/numba``
    (``~/.cache/blendfx/numba``)."""
    if os.environ.get(ROOT_VARIABLE):
        return Path(os.environ[ROOT_VARIABLE])
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "blendfx" / "numba"


def claim_numba_cache(root: str | os.PathLike[str] | None = None) -> Path | None:
    """Point numba's cache at a folder this process alone writes while it lives.

    Call it at the start of a worker process, before anything imports numba (librosa imports
    it lazily, on the first feature that needs it). Idempotent: later calls return the same
    folder.

    Parameters
    ----------
    root : path, optional
        Folder holding the numbered slot folders (default :func:`numba_cache_root`).

    Returns
    -------
    Path or None
        The folder now in ``NUMBA_CACHE_DIR``; None when numba was already imported (its
        kernels keep the cache they were given, the environment is left as it is) or when no
        slot could be claimed (every one held, or the root not writable).

    Examples
    --------
    >>> from blendfx.numba_cache import claim_numba_cache
    >>> folder = claim_numba_cache()   # at a worker's start
    """
    global _held
    if _held is not None:
        return _held[0]
    if "numba" in sys.modules:  # too late: its config and cache locators are set
        return None
    base = Path(root) if root is not None else numba_cache_root()
    for slot in range(SLOTS):
        folder = base / f"slot-{slot:02d}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = open(folder / ".lock", "ab")  # noqa: SIM115 - held for the process's life
        except OSError:
            return None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another live process holds this one
            lock.close()
            continue
        _held = (folder, lock)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
        os.environ[ROOT_VARIABLE] = str(base)
        return folder
    return None
