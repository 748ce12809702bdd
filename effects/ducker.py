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
        level_db = 20.0 * np.log10(np.maximum(env, 1e-9))
        reduction = np.clip((level_db - self.threshold_db) * self.ratio_db_per_db, 0.0,
                            self.depth_db)
        gain = (10.0 ** (-reduction / 20.0)).astype(np.float32)
        return audio * gain[None, :]

    def _follow(self, key: np.ndarray, sample_rate: float) -> np.ndarray:
        """Envelope of the key: instant-attack peak detector with exponential release, then a
        one-pole attack smoother. Both are exact vector operations with carried state, so
        chunked processing equals whole-buffer processing.

        The peak detector ``p[n] = max(x[n], r * p[n-1])`` unrolls to
        ``p[n] = r**n * max_k(x[k] * r**-k)``: a running maximum in the log domain.
        """
        log_r = -1.0 / (self.release_ms * 1e-3 * sample_rate)
        idx = np.arange(1, key.size + 1, dtype=np.float64)
        with np.errstate(divide="ignore"):
            logs = np.log(key) - idx * log_r
        start = np.log(self._peak) if self._peak > 0 else -np.inf
        running = np.maximum.accumulate(np.concatenate([[start], logs]))[1:]
        peak = np.exp(running + idx * log_r)
        self._peak = float(peak[-1]) if peak.size else self._peak
        a = np.exp(-1.0 / (self.attack_ms * 1e-3 * sample_rate))
        smooth, self._smooth = lfilter([1.0 - a], [1.0, -a], peak, zi=self._smooth * a)
        self._smooth = self._smooth / a
        return smooth
