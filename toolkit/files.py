"""Atomic file writing: output appears whole or not at all.

A render that is killed half way, or an error while encoding, must never leave a truncated file
where the user expects a result. Everything blendfx writes goes to a temporary file in the same
folder first and is renamed into place (an atomic operation on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes", "read_toml", "nesting_depth",
           "MAX_TOML_DEPTH", "owned_tempdir", "remove_stale", "writable_folder"]

#: Deepest nesting of tables and arrays a preset or session may have: real ones need under 10;
#: a deeper document is refused before anything walks it recursively.
MAX_TOML_DEPTH = 48


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary name keeps the suffix (encoders pick the format from it), starts with a dot,
    carries the writing process's id and ends in ``.partial`` before the suffix
    (``.mix.4242.k2j1.partial.wav``), so a crashed run's leftovers are recognizable: the next
    write of the same file removes those whose process is gone (:func:`remove_stale`).
    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # what a killed run left for this same file (its owner process gone) goes first
    remove_stale(path.parent, f".{path.stem}.", f".partial{path.suffix}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}.",
                               suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file 0600; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def owned_tempdir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new hidden work folder ``parent/{prefix}{pid}.{random}``, owned by this process.

    Stale ones (their process gone: a killed run) are removed first (:func:`remove_stale`), so
    killed runs never pile up hidden folders.
    """
    parent = Path(parent)
    remove_stale(parent, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", dir=parent))


def remove_stale(parent: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Remove the entries ``parent/{prefix}{pid}.*{suffix}`` whose process ``pid`` is gone.

    Entries of a live process (this one, or a render running beside it) are kept; so are
    names that carry no process id. Returns what was removed.
    """
    removed = []
    try:
        entries = [e for e in Path(parent).iterdir() if e.name.startswith(prefix)
                   and e.name.endswith(suffix)]
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    """True if a process ``pid`` exists (it may belong to another user)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def writable_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` if needed and check this process can write there.

    Raises
    ------
    PermissionError or OSError
        One line naming ``folder`` (never an internal temporary name), e.g.
        ``cannot write to /data/out: Permission denied``.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(f"cannot write to {folder}: it exists and is not a folder") from None
    except OSError as exc:
        raise type(exc)(f"cannot write to {folder}: {exc.strerror or exc}") from None
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write to {folder}: it exists and is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write to {folder}: Permission denied")
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_toml(path: str | os.PathLike[str], error: type[Exception], what: str = "TOML file"
              ) -> dict[str, Any]:
    """Parse a TOML file; every way it can be bad is one ``error`` naming the file.

    The one reader of presets and sessions: a file that cannot be read, is not UTF-8 text, is
    not valid TOML, or nests tables or arrays deeper than :data:`MAX_TOML_DEPTH` (which would
    otherwise end in a ``RecursionError`` in the parser or in whatever walks the result)
    raises ``error`` (e.g. :class:`~blendfx.PresetError`) with one clear line.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text (TOML) file") from None
    except RecursionError:
        raise error(f"{path}: tables or arrays nested too deeply "
                    f"(more than {MAX_TOML_DEPTH} levels)") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if nesting_depth(data) > MAX_TOML_DEPTH:
        raise error(f"{path}: tables or arrays nested too deeply "
                    f"(more than {MAX_TOML_DEPTH} levels)")
    return data


def nesting_depth(value: Any) -> int:
    """Nesting depth of dicts and lists in ``value`` (0 for a scalar), counted without
    recursion; counting stops a level past :data:`MAX_TOML_DEPTH`."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            deepest = max(deepest, d + 1)
            if d + 1 <= MAX_TOML_DEPTH:
                todo.extend((x, d + 1) for x in v)
    return deepest
