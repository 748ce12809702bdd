"""What blendfx costs before it does anything: the command line's start and ``import blendfx``.

    python benchmarks/import_time.py [--repeats 3]

Each command runs in a fresh process ``--repeats`` times; the best wall time is kept (the
machine is shared). The reference, in the same run, is ``python -c pass``. Goals (issue 17):
``blendfx --version`` and ``blendfx --help`` within 0.5 s of the reference; ``import blendfx``
loads no torch, numpy, diffusers or librosa (``heavy_modules_loaded``).

Prints a table, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HEAVY = ("torch", "numpy", "scipy", "diffusers", "librosa", "pedalboard")


def best_seconds(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    cli = shutil.which("blendfx", path=os.path.dirname(py)) or shutil.which("blendfx")
    cases = {
        "python_pass_s": [py, "-c", "pass"],
        "import_blendfx_s": [py, "-c", "import blendfx"],
        "blendfx_version_s": [cli, "--version"],
        "blendfx_help_s": [cli, "--help"],
        "import_effects_utility_s": [py, "-c", "from blendfx.effects import Utility"],
    }
    out = {name: round(best_seconds(cmd, args.repeats), 3) for name, cmd in cases.items()}
    probe = subprocess.run([py, "-c", "import sys, blendfx; blendfx.__version__; "
                            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"],
                           check=True, capture_output=True, text=True)
    out["heavy_modules_loaded"] = probe.stdout.split()
    out["version_over_pass_s"] = round(out["blendfx_version_s"] - out["python_pass_s"], 3)
    out["help_over_pass_s"] = round(out["blendfx_help_s"] - out["python_pass_s"], 3)
    out["goal_over_pass_s"] = 0.5
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    for key, value in out.items():
        print(f"{key:28s} {value}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
