"""Check the architecture's import rules (import-linter contracts in setup.cfg).

blendfx maps one import name onto three top-level folders (``setup.cfg``'s ``package_dir``:
``blendfx`` = toolkit/, ``blendfx.effects`` = effects/, ``blendfx.render`` = render/), and
import-linter's graph builder (grimp) reads a package from one folder. So this script lays the
sources out as the installed package (a copy of the ``.py`` files in a temporary folder) and runs
``lint-imports`` on that copy, with the contracts from the repository's ``setup.cfg``.

Usage: ``python .ci/lint_imports.py [--repo DIR]``; the exit status is lint-imports' own.
"""

from __future__ import annotations

import argparse
import configparser
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def package_dirs(setup_cfg: Path) -> dict[str, str]:
    """``package_dir`` of ``setup.cfg``: import name -> folder, relative to the repository."""
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg)
    lines = [ln.strip() for ln in cfg["options"]["package_dir"].splitlines() if "=" in ln]
    return dict(tuple(part.strip() for part in ln.split("=", 1)) for ln in lines)


def mirror(repo: Path, dest: Path) -> None:
    """Copy every ``.py`` file of the mapped folders to ``dest`` as the installed package."""
    for name, folder in package_dirs(repo / "setup.cfg").items():
        src = repo / folder
        target = dest.joinpath(*name.split("."))
        for path in src.rglob("*.py"):
            out = target / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1],
                        help="repository root (default: this script's repository)")
    repo = parser.parse_args().repo.resolve()
    with tempfile.TemporaryDirectory(prefix="blendfx-imports-") as tmp:
        mirror(repo, Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}  # found before the editable install's finder
        lint = Path(sys.executable).with_name("lint-imports")
        cmd = [str(lint) if lint.exists() else "lint-imports", str(repo / "setup.cfg"),
               "--no-cache", "--no-logo"]
        return subprocess.run(cmd, cwd=tmp, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
