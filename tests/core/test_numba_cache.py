"""claim_numba_cache: one numba cache folder per live process, reused after it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Claims, prints the folder, then holds it until its stdin closes (or exits at once).
CLAIM = textwrap.dedent("""
    import os, sys
    if sys.argv[2] == "numba-first":
        import numba  # noqa: F401
    from blendfx.numba_cache import claim_numba_cache
    folder = claim_numba_cache(None if sys.argv[1] == "-" else sys.argv[1])
    print(folder, os.environ.get("NUMBA_CACHE_DIR"), flush=True)
    if sys.argv[2] == "hold":
        sys.stdin.read()
    elif sys.argv[2] == "child":
        import subprocess
        out = subprocess.run([sys.executable, "-c", sys.argv[3], "-", "exit"],
                             capture_output=True, text=True, check=True).stdout
        print(out.split()[0], flush=True)
""")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "BLENDFX_NUMBA_CACHE_ROOT")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return env


def _start(root: Path | str, mode: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLAIM, str(root), mode, CLAIM],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def test_live_processes_never_share_a_folder_and_later_ones_reuse(tmp_path: Path) -> None:
    env, root = _env(tmp_path), tmp_path / "cache"
    holders = [_start(root, "hold", env) for _ in range(3)]
    try:
        claimed = [h.stdout.readline().split() for h in holders]
    finally:
        for h in holders:
            h.communicate("")
    folders = [c[0] for c in claimed]
    assert len(set(folders)) == 3 and all(Path(f).parent == root for f in folders)
    assert all(c[0] == c[1] for c in claimed)  # and numba is pointed at it
    # all three ended: the next process takes the first folder again (compiled code reused)
    again = subprocess.run([sys.executable, "-c", CLAIM, str(root), "exit"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()[0]
    assert again == str(root / "slot-00")


def test_children_claim_beside_their_parent_and_default_root(tmp_path: Path) -> None:
    env = _env(tmp_path)
    out = subprocess.run([sys.executable, "-c", CLAIM, "-", "child", CLAIM], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    root = tmp_path / "xdg" / "blendfx" / "numba"
    # the child inherited NUMBA_CACHE_DIR = the parent's folder, yet claims its own beside it
    assert out[0] == str(root / "slot-00") and out[2] == str(root / "slot-01")


def test_user_numba_cache_dir_is_the_root(tmp_path: Path) -> None:
    env = _env(tmp_path) | {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    out = subprocess.run([sys.executable, "-c", CLAIM, "-", "exit"], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == str(tmp_path / "mine" / "slot-00")


def test_too_late_once_numba_is_imported(tmp_path: Path) -> None:
    env = _env(tmp_path)
    out = subprocess.run([sys.executable, "-c", CLAIM, str(tmp_path / "c"), "numba-first"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["None", "None"]  # numba keeps its default; the environment is untouched
    assert not (tmp_path / "c").exists()
