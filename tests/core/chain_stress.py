"""Threaded stress of Chain/Mix over shared native plugins and shared blendfx effects.

Six containers share eight pedalboard plugins and four blendfx effects (each native plugin sits
in two or more containers, in different orders, some nested, some next to ``None`` slots). Each
container's output on its own input is first computed serially; then ``--threads`` worker
threads run ``--trials`` rounds, each round processing ``2 x threads`` randomly drawn containers
at once, and every output is compared bit for bit with the serial one. With ``--resets``, one
more thread calls ``reset()`` on random containers all the while (it must not change any
``reset=True`` output). With ``--wide``, eight chains share 32 reverbs instead, in reversed and
shuffled orders (the case where unlocked resets crashed the process).

Run as a script (``python tests/core/chain_stress.py --threads 8 --trials 50``): it prints one
JSON line ``{"threads", "trials", "calls", "mismatches", "resets", "seconds"}``; a crash shows as
the process's exit status (139 for a segmentation fault). ``tests/core/test_chain_threads.py``
runs it in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pedalboard
from blendfx import Chain, Mix
from blendfx.effects import Ducker, Utility

SR = 44100


def build() -> list:
    """The containers, sharing their plugins and effects."""
    n = [pedalboard.Reverb(room_size=0.3), pedalboard.Reverb(room_size=0.85, width=0.5),
         pedalboard.Delay(delay_seconds=0.013, feedback=0.4, mix=0.5),
         pedalboard.LowpassFilter(cutoff_frequency_hz=2500), pedalboard.Chorus(rate_hz=2.0),
         pedalboard.Compressor(threshold_db=-25, ratio=4), pedalboard.HighpassFilter(150),
         pedalboard.Phaser(rate_hz=1.5)]
    u = [Utility(gain_db=-3), Utility(pan=0.4), Utility(invert=True, gain_db=-1)]
    duck = Ducker(depth_db=12, threshold_db=-40)
    return [
        Chain([n[0], u[0], n[1], n[2]]),
        Chain([n[2], n[1], u[1], n[0]]),
        Chain([Mix([n[3], u[2], None]), n[4], duck]),
        Chain([u[0], Chain([n[4], n[3]]), None, n[5], u[1]]),
        Mix([Chain([n[6], n[0]]), n[7], u[2]]),
        Chain([duck, n[7], n[6], n[5], n[2], u[0]]),
    ]


def build_wide(plugins: int = 32, containers: int = 8, seed: int = 0) -> list:
    """``containers`` chains over the same ``plugins`` reverbs (each with its own room size), in
    reversed and shuffled orders, with shared blendfx effects and ``None`` slots among them."""
    rng = random.Random(seed)
    natives = [pedalboard.Reverb(room_size=0.1 + 0.8 * i / plugins) for i in range(plugins)]
    effects = [Utility(gain_db=-1), Utility(pan=-0.2), None]
    out = []
    for i in range(containers):
        order = natives[::-1] if i % 2 else list(natives)
        if i >= 2:
            rng.shuffle(order)
        items = list(order)
        for e in effects:
            items.insert(rng.randrange(len(items) + 1), e)
        out.append(Chain(items))
    return out


def inputs(count: int, seconds: float = 0.2) -> list[np.ndarray]:
    rng = np.random.default_rng(21)
    m = int(SR * seconds)
    t = np.arange(m) / SR
    out = []
    for i in range(count):
        tone = 0.3 * np.sin(2 * np.pi * (110 + 55 * i) * t) * (t < seconds / 2)
        out.append((tone + 0.05 * rng.standard_normal((2, m))).astype(np.float32))
    return out


def stress(threads: int, trials: int, resets: bool = False, seed: int = 0,
           wide: bool = False) -> dict:
    """Run the stress; return the counts (see the module docstring)."""
    containers = build_wide(seed=seed) if wide else build()
    xs = inputs(len(containers))
    expected = [c.process(x, SR) for c, x in zip(containers, xs, strict=True)]
    rng = random.Random(seed)
    stop = threading.Event()
    reset_count = [0]

    def resetter() -> None:
        r = random.Random(seed + 1)
        while not stop.is_set():
            r.choice(containers).reset()
            reset_count[0] += 1
            time.sleep(0.0005)

    def job(i: int) -> bool:
        return np.array_equal(containers[i].process(xs[i], SR), expected[i])

    calls = mismatches = 0
    start = time.perf_counter()
    side = threading.Thread(target=resetter) if resets else None
    if side is not None:
        side.start()
    try:
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(trials):
                picks = [rng.randrange(len(containers)) for _ in range(2 * threads)]
                results = list(pool.map(job, picks))
                calls += len(results)
                mismatches += results.count(False)
    finally:
        stop.set()
        if side is not None:
            side.join()
    return {"threads": threads, "trials": trials, "calls": calls, "mismatches": mismatches,
            "resets": reset_count[0], "seconds": round(time.perf_counter() - start, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--resets", action="store_true", help="reset containers from a thread")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wide", action="store_true",
                        help="8 chains over 32 shared reverbs in different orders instead")
    args = parser.parse_args()
    print(json.dumps(stress(args.threads, args.trials, args.resets, args.seed, args.wide)),
          flush=True)


if __name__ == "__main__":
    main()
