"""Chain/Mix and effects shared between threads: pedalboard's guarantees (issue 21).

pedalboard locks every plugin of a call and resets inside the lock, so two boards sharing
plugins give, from two threads, what they give one after the other. These tests hold blendfx's
containers (over native plugins and blendfx effects alike) to the same, and check the locks
behind it: a parameter change, a ``reset()`` or a list change waits for a call in progress.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pedalboard
import pytest
from blendfx import Chain, Mix
from blendfx.chain import native_lock
from blendfx.effect import Effect
from blendfx.effects import Utility
from blendfx.params import FloatParam

SR = 44100
STRESS = Path(__file__).with_name("chain_stress.py")


def noise(n=SR // 4, ch=2, seed=0):
    return (np.random.default_rng(seed).standard_normal((ch, n)) * 0.1).astype(np.float32)


def run_stress(*args: str) -> dict:
    """The stress script in its own process, so that a crash fails the test instead of pytest."""
    proc = subprocess.run([sys.executable, str(STRESS), *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_stress_threads_share_natives_and_effects():
    result = run_stress("--threads", "4", "--trials", "10")
    assert result["calls"] == 4 * 2 * 10
    assert result["mismatches"] == 0


def test_stress_with_resets_from_another_thread():
    result = run_stress("--threads", "3", "--trials", "10", "--resets")
    assert result["resets"] > 0
    assert result["mismatches"] == 0


def test_stress_many_chains_over_many_shared_reverbs():
    result = run_stress("--wide", "--threads", "4", "--trials", "3")
    assert result["calls"] == 4 * 2 * 3
    assert result["mismatches"] == 0


def test_two_chains_share_reverbs_in_opposite_orders():
    x = noise()
    p = [pedalboard.Reverb(room_size=0.3), pedalboard.Reverb(room_size=0.9)]
    a, b = Chain(p), Chain(p[::-1])
    ref_a, ref_b = a(x, SR), b(x, SR)
    with ThreadPoolExecutor(2) as pool:
        for _ in range(20):
            fa, fb = pool.submit(a.process, x, SR), pool.submit(b.process, x, SR)
            np.testing.assert_array_equal(fa.result(), ref_a)
            np.testing.assert_array_equal(fb.result(), ref_b)


def test_shared_effect_in_mixed_chains():
    x = noise(seed=1)
    u, rev = Utility(gain_db=-4, pan=0.3), pedalboard.Reverb(room_size=0.6)
    chains = [Chain([rev, u]), Chain([u, rev]), Mix([u, Chain([rev, None])])]
    refs = [c(x, SR) for c in chains]
    with ThreadPoolExecutor(3) as pool:
        for _ in range(10):
            outs = list(pool.map(lambda c: c(x, SR), chains * 2))
            for out, ref in zip(outs, refs * 2, strict=True):
                np.testing.assert_array_equal(out, ref)


class _Gate(Effect):
    """Scales by ``gain``; waits in ``_process`` until released, to hold a call open."""

    registered = False
    gain = FloatParam(1.0, min=0.0, max=10.0)

    def __init__(self, **params):
        object.__setattr__(self, "entered", threading.Event())
        object.__setattr__(self, "release", threading.Event())
        object.__setattr__(self, "resets", 0)
        super().__init__(**params)

    def reset(self) -> None:
        super().reset()
        object.__setattr__(self, "resets", self.resets + 1)

    def _process(self, audio, sample_rate, sidechain):
        self.entered.set()
        gain = self.gain
        assert self.release.wait(10)
        return audio * np.float32(gain) * np.float32(self.gain / gain)  # same gain before and after


def _start_call(proc, gate: _Gate, x: np.ndarray) -> tuple[threading.Thread, list]:
    """Start ``proc(x)`` on a thread and wait until it is inside ``gate``'s processing."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(proc(x, SR)))
    t.start()
    assert gate.entered.wait(10)
    return t, out


def test_parameter_change_waits_for_the_call_in_progress():
    gate, x = _Gate(gain=2.0), noise(n=100)
    t, out = _start_call(gate, gate, x)
    setter = threading.Thread(target=setattr, args=(gate, "gain", 3.0))
    setter.start()
    setter.join(0.3)
    assert setter.is_alive()  # blocked behind the call
    gate.release.set()
    t.join(10)
    setter.join(10)
    np.testing.assert_allclose(out[0], x * 2.0, rtol=1e-6)  # the call saw one gain throughout
    assert gate.gain == 3.0


def test_reset_override_waits_for_the_call_in_progress():
    gate, x = _Gate(), noise(n=100)
    t, _ = _start_call(gate, gate, x)
    before = gate.resets
    resetter = threading.Thread(target=gate.reset)
    resetter.start()
    resetter.join(0.3)
    assert resetter.is_alive() and gate.resets == before
    gate.release.set()
    t.join(10)
    resetter.join(10)
    assert gate.resets == before + 1


def test_list_change_waits_for_the_call_in_progress():
    gate = _Gate()
    chain = Chain([gate])
    t, _ = _start_call(chain, gate, noise(n=100))
    appender = threading.Thread(target=chain.append, args=(Utility(),))
    appender.start()
    appender.join(0.3)
    assert appender.is_alive()
    gate.release.set()
    t.join(10)
    appender.join(10)
    assert len(chain) == 2


def test_native_lock_holds_off_blendfx_processing():
    rev = pedalboard.Reverb()
    chain, x = Chain([rev]), noise(n=1000)
    done = threading.Event()
    with native_lock(rev):
        t = threading.Thread(target=lambda: (chain(x, SR), done.set()))
        t.start()
        assert not done.wait(0.3)  # waits for the lock
        rev.room_size = 0.7  # a parameter change no blendfx call can land in
    t.join(10)
    assert done.is_set()


def test_native_lock_takes_plugins_inside_native_containers():
    inner = pedalboard.Gain(-3)
    board = pedalboard.Pedalboard([inner, None])
    chain = Chain([inner])
    done = threading.Event()
    with native_lock(board):  # holds inner's lock too
        t = threading.Thread(target=lambda: (chain(noise(n=100), SR), done.set()))
        t.start()
        assert not done.wait(0.3)
    t.join(10)
    assert done.is_set()


@pytest.mark.parametrize("order", [0, 1])
def test_native_locks_in_any_order_do_not_deadlock(order):
    a, b = pedalboard.Gain(-1), pedalboard.Gain(-2)
    pairs = [(a, b), (b, a)]
    count = [0]

    def work(i):
        for _ in range(200):
            with native_lock(*pairs[(i + order) % 2]):
                count[0] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads) and count[0] == 800
