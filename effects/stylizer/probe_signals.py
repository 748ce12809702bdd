"""Dry probe signals and reference rooms with known answers, for measuring reverberation tools.

Blind RT60 estimation needs sounds that stop: :func:`speech_like` makes syllable-like bursts
(a buzzy source through a random formant band-pass, abrupt offsets) grouped into phrases with
pauses, :func:`click_train` makes isolated clicks. :func:`exponential_ir` is the textbook room
(a direct impulse plus Gaussian noise decaying by 60 dB in RT60 seconds, the same at every
frequency), built independently of :mod:`.impulse` so it can serve as ground truth.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, lfilter

__all__ = ["speech_like", "click_train", "exponential_ir", "shoebox_response",
           "direct_to_reverberant_db"]


def speech_like(seconds: float, sample_rate: float, seed: int = 0, peak: float = 0.5) -> np.ndarray:
    """Dry speech-like bursts: 2-5 syllables of 80-250 ms per phrase, 0.4-1.3 s pauses.

    Returns a 1-D float32 signal peaking at ``peak``.
    """
    sr = float(sample_rate)
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * sr))
    t = 0.1
    while t < seconds - 0.5:
        for _ in range(int(rng.integers(2, 6))):
            n = int(rng.uniform(0.08, 0.25) * sr)
            i = int(t * sr)
            if i + n > x.size:
                break
            tt = np.arange(n) / sr
            buzz = 0.3 * np.sign(np.sin(2 * np.pi * rng.uniform(100, 220) * tt))
            src = buzz + 0.3 * rng.standard_normal(n)
            lo, hi = rng.uniform(300, 800), min(rng.uniform(1500, 4000), 0.45 * sr)
            b, a = butter(2, [lo, hi], btype="bandpass", fs=sr)
            x[i: i + n] += lfilter(b, a, src) * np.hanning(n) ** 0.2
            t += n / sr + rng.uniform(0.02, 0.08)
        t += rng.uniform(0.4, 1.3)
    return (x / max(np.abs(x).max(), 1e-12) * peak).astype(np.float32)


def click_train(seconds: float, sample_rate: float, seed: int = 0,
                gap_s: tuple[float, float] = (0.3, 1.2)) -> np.ndarray:
    """Single-sample clicks (amplitude 0.5-1) separated by random gaps in s; 1-D float32."""
    sr = float(sample_rate)
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * sr), dtype=np.float32)
    t = 0.05
    while t < seconds - gap_s[0]:
        x[int(t * sr)] = rng.uniform(0.5, 1.0)
        t += rng.uniform(*gap_s)
    return x


def exponential_ir(rt60_s: float, sample_rate: float, drr_db: float = 0.0, seed: int = 0,
                   length_s: float | None = None) -> np.ndarray:
    """Direct impulse (1 at sample 0) plus a white Gaussian tail decaying 60 dB in ``rt60_s``,
    with ``drr_db`` dB more energy in the direct impulse than in the tail. 1-D float64,
    ``1.5 * rt60_s + 0.1`` s long by default."""
    sr = float(sample_rate)
    rng = np.random.default_rng(seed)
    n = int((length_s if length_s is not None else 1.5 * rt60_s + 0.1) * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * 10.0 ** (-3.0 * t / rt60_s)
    tail[0] = 0.0
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail ** 2))
    tail[0] = 1.0
    return tail


def shoebox_response(dims_m: tuple[float, float, float], materials: dict[str, str],
                     source_m: tuple[float, float, float], mic_m: tuple[float, float, float],
                     sample_rate: float, *, reach: float = 1.5, max_order: int = 110,
                     seed: int = 0) -> np.ndarray:
    """A shoebox room's impulse response from pyroomacoustics (a test and benchmark dependency),
    built independently of blendfx: image sources (randomized positions against sweeping
    echoes), octave-band wall absorption from its material database, air absorption.

    Images reach out to ``reach`` times the room's Eyring RT60 at 500 Hz-1 kHz (at most
    ``max_order`` reflections). The hybrid ray tracer is not used: it lengthens decays several
    fold (LCAV/pyroomacoustics#404).

    Parameters
    ----------
    dims_m : tuple of float
        Room size in m (x, y, z).
    materials : dict
        pyroomacoustics material name per surface: ``east``, ``west``, ``north``, ``south``,
        ``floor``, ``ceiling``.
    source_m, mic_m : tuple of float
        Positions in m.
    sample_rate : float
        Hz.
    reach : float
        How far out images are taken, in Eyring RT60s.
    max_order : int
        Most reflections per image.
    seed : int
        Seed of the image randomization.

    Returns
    -------
    np.ndarray
        1-D float64 response, peak-normalised, starting at sample 0 (the propagation delay
        included).
    """
    import pyroomacoustics as pra  # heavy optional dependency (test/benchmark extra)

    lx, ly, lz = (float(v) for v in dims_m)
    mats = {k: pra.Material(v) for k, v in materials.items()}
    area = {"east": ly * lz, "west": ly * lz, "north": lx * lz, "south": lx * lz,
            "floor": lx * ly, "ceiling": lx * ly}
    total = sum(area.values())
    alpha = sum(area[k] * float(np.mean(m.absorption_coeffs[2:4])) for k, m in mats.items()) / total
    rt = 0.161 * lx * ly * lz / (-total * np.log(1.0 - alpha))
    distance = 343.0 * reach * max(rt, 0.25)
    order = int(np.ceil(distance * np.sqrt(1 / lx ** 2 + 1 / ly ** 2 + 1 / lz ** 2)))
    room = pra.ShoeBox([lx, ly, lz], fs=int(sample_rate), materials=mats,
                       max_order=min(order, max_order), air_absorption=True, use_rand_ism=True,
                       max_rand_disp=0.05)
    room.add_source(list(source_m))
    room.add_microphone(list(mic_m))
    pra.random.seed(seed)  # the image jitter comes from pyroomacoustics' own global generator
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    return h / np.abs(h).max()


def direct_to_reverberant_db(impulse_response: np.ndarray, sample_rate: float,
                             window_s: float = 0.0025) -> float:
    """DRR of a response in dB: the energy within ``window_s`` of its peak over all the energy
    after that window."""
    h = np.asarray(impulse_response, dtype=np.float64)
    h = h.reshape(-1, h.shape[-1]).mean(axis=0)
    k = int(np.argmax(np.abs(h)))
    w = int(round(window_s * float(sample_rate)))
    direct = float(np.sum(h[max(0, k - w): k + w + 1] ** 2))
    rest = float(np.sum(h[k + w + 1:] ** 2))
    return 10.0 * np.log10(max(direct, 1e-30) / max(rest, 1e-30))
