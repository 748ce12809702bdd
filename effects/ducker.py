"""``Ducker``: a sidechain compressor that turns the input down while the key plays."""

from __future__ import annotations

import numpy as np
from blendfx.effect import Effect
from blendfx.params import FloatParam
from scipy.signal import lfilter

__all__ = ["Ducker"]


class Ducker(Effect):
    """Lower the input by up to ``depth_db`` while the sidechain is above ``threshold_db``.

    The classic "music ducks under the voice-over" effect, and the mirror image of blendfx's
    adaptive amplifier. The key's level is followed by a peak envelope with separate attack and
    release; the gain reduction is proportional to how far the key exceeds the threshold, up to
    ``depth_db``. State carries across ``reset=False`` calls, so it streams.

    Parameters
    ----------
    threshold_db : float
        Key level in dBFS above which ducking starts (-80 to 0).
    depth_db : float
        Maximum gain reduction in dB (0 to 60).
    ratio_db_per_db : float
        dB of reduction per dB the key exceeds the threshold (0.1 to 10).
    attack_ms, release_ms : float
        Envelope time constants in ms.
    """

    uses_sidechain = True
    requires_sidechain = True

    threshold_db = FloatParam(-30.0, min=-80.0, max=0.0, unit="dBFS", doc="Ducking threshold.")
    depth_db = FloatParam(12.0, min=0.0, max=60.0, unit="dB", doc="Maximum gain reduction.")
    ratio_db_per_db = FloatParam(1.0, min=0.1, max=10.0, unit="dB/dB",
                                 doc="Reduction per dB above threshold.")
    attack_ms = FloatParam(10.0, min=0.1, max=1000.0, unit="ms", doc="Attack time.")
    release_ms = FloatParam(250.0, min=1.0, max=5000.0, unit="ms", doc="Release time.")

    def reset(self) -> None:
        super().reset()
        self._peak = 0.0  # release-peak detector state
        self._smooth = np.zeros(1)  # attack smoother state (lfilter zi)

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        assert sidechain is not None
        n = audio.shape[1]
        key = np.abs(sidechain).max(axis=0).astype(np.float64)
        key = key[:n] if key.size >= n else np.pad(key, (0, n - key.size))
        env = self._follow(key, sample_rate)
        return audio * self._gain(env)[None, :]

    def _gain(self, env: np.ndarray) -> np.ndarray:
        """float32 gain of an envelope: ``10 ** (-clip((20 log10(env) - threshold) * ratio, 0,
        depth) / 20)``, computed as ``clip((env / threshold) ** -ratio, 10 ** (-depth / 20),
        1)`` (the same function, without a logarithm and an exponential per sample)."""
        threshold = 10.0 ** (self.threshold_db / 20.0)
        floor = 10.0 ** (-self.depth_db / 20.0)
        # a near-silent key (env -> 0) overflows to inf: the gain clips to 1 below (no ducking)
        with np.errstate(divide="ignore", over="ignore"):
            if self.ratio_db_per_db == 1.0:
                gain = np.divide(threshold, env)
            else:
                gain = np.power(env * (1.0 / threshold), -self.ratio_db_per_db)
        np.clip(gain, floor, 1.0, out=gain)
        return gain.astype(np.float32)

    def _follow(self, key: np.ndarray, sample_rate: float) -> np.ndarray:
        """Envelope of the key: instant-attack peak detector with exponential release, then a
        one-pole attack smoother. Both are exact vector operations with carried state, so
        chunked processing equals whole-buffer processing.

        The peak detector ``p[n] = max(x[n], r p[n-1])`` unrolls, within a stretch of ``L``
        samples starting at ``s``, to ``p[s+j] = r**j max(max_{k<=j} x[s+k] r**-k, r p[s-1])``:
        a running maximum of the key scaled by ``r**-k`` (``r**-L`` kept far from overflow),
        with each stretch's start carried from the previous stretch's end.
        """
        r_log = -1.0 / (self.release_ms * 1e-3 * sample_rate)
        n = key.size
        if n == 0:
            return key.copy()
        # stretch length: r ** -L stays under e ** 300 (no overflow, no lost precision)
        L = int(max(1, min(4096, 300.0 // -r_log, n)))
        blocks = -(-n // L)
        x = np.zeros(blocks * L)
        x[:n] = key
        x = x.reshape(blocks, L)
        j = np.arange(L, dtype=np.float64)
        down = np.exp(j * r_log)  # r ** j
        # the running maximum along each stretch, with the stretches laid down the columns:
        # numpy's accumulate holds the GIL along the last axis but not along the first (the
        # same maxima), and this runs beside the other tracks' threads
        acc = np.maximum.accumulate((x * np.exp(-j * r_log)).T.copy(), axis=0).T
        acc *= down
        # the peak at each stretch's end, in order: the carry into the next stretch
        ends = acc[:, -1]
        carry = np.empty(blocks)
        decay = float(np.exp(L * r_log))
        c = self._peak
        for b in range(blocks):
            carry[b] = c
            c = max(float(ends[b]), c * decay)
        peak = np.maximum(acc, carry[:, None] * (down * np.exp(r_log))).ravel()[:n]
        self._peak = float(peak[-1])
        a = np.exp(-1.0 / (self.attack_ms * 1e-3 * sample_rate))
        smooth, self._smooth = lfilter([1.0 - a], [1.0, -a], peak, zi=self._smooth * a)
        self._smooth = self._smooth / a
        return smooth
