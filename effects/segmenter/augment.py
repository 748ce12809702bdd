"""Augmentations that make the segmenter's training music sound like other recordings.

Real recordings differ from the few training pieces by room, microphone, mixing and mastering
and delivery (issue 20): so each training patch goes through a random chain, drawn from a seeded
``numpy.random.Generator``:

- on the music alone: a stereo/mono fold (``w L + (1 - w) R``, w uniform: mono files, a
  single channel and every balance between), a pitch shift at constant tempo (+-2 semitones,
  besides the sampler's tape-speed change that moves pitch and tempo together), a room (a
  synthetic impulse response of the stylizer's :func:`~blendfx.effects.stylizer.impulse.synthetic_ir`,
  RT60 0.2-1.5 s at 1 kHz, longer in the bass, DRR -2 to +12 dB) and mastering compression;
- on the noise alone: its own room;
- on the mixture (both components by the same linear, time-varying gain or filter, so the
  energy labels stay exact): a room, compression or limiting, band limits (high-pass 30-400 Hz,
  low-pass 3-16 kHz) and codec-like brick-wall low-passes (11, 15, 16 or 19 kHz), applied in the
  STFT domain as a per-bin gain in dB (:meth:`RecordingAugmenter.band_db`);
- the spectral tilts of :class:`~.train.MixtureSampler` (per component) stay.

Every transform of the mixture acts on the music and the noise components separately with the
same gain, so ``mixture = music + noise`` holds after it and the window labels (which component
has more energy) describe what the network hears.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import librosa
import numpy as np
from blendfx.effects.stylizer.impulse import synthetic_ir
from blendfx.errors import ParameterError
from scipy import fft as sp_fft
from scipy.signal import lfilter

__all__ = ["AugmentConfig", "RecordingAugmenter", "compressor_gain"]

#: Octave band centres (Hz) of the rooms' RT60 profiles.
ROOM_BANDS_HZ = np.array([125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0])
#: Brick-wall low-pass frequencies (Hz) of lossy codecs at common bit rates.
CODEC_CUTOFFS_HZ = (11025.0, 15000.0, 16000.0, 19000.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (per patch) and ranges of the recording augmentations.

    Attributes
    ----------
    stereo : bool
        Fold stereo music to mono with a random balance (else the plain mean).
    pitch_p : float
        Pitch shift of the music at constant tempo, uniform within +-``pitch_semitones``.
    music_room_p, noise_room_p, mix_room_p : float
        A room on the music alone, on the noise alone, on the whole mixture.
    master_p : float
        Mastering compression of the music alone (ratio 2-6, threshold 4-16 dB under its peak
        envelope, attack 5-30 ms, release 50-300 ms).
    mix_dynamics_p : float
        Compression or (half of the time) limiting of the whole mixture (ratio 20, 1 ms attack).
    band_p, codec_p : float
        Band limits and codec low-passes of the whole mixture (see the module docstring).
    max_noises : int
        A patch's noise sums 1 to ``max_noises`` noise clips (each 10 dB below to 10 dB above
        the first; uniformly many).
    midi_share : float
        Share of patches whose music is rendered MIDI (when rendered music is given); the rest
        come from the recordings.
    rooms : int
        Impulse responses in the seeded bank the rooms are drawn from.
    """

    stereo: bool = True
    pitch_p: float = 0.03
    pitch_semitones: float = 2.0
    music_room_p: float = 0.3
    noise_room_p: float = 0.2
    mix_room_p: float = 0.15
    master_p: float = 0.4
    mix_dynamics_p: float = 0.25
    band_p: float = 0.3
    codec_p: float = 0.25
    max_noises: int = 3
    midi_share: float = 0.25
    rooms: int = 16

    def __post_init__(self) -> None:
        for name in ("pitch_p", "music_room_p", "noise_room_p", "mix_room_p", "master_p",
                     "mix_dynamics_p", "band_p", "codec_p", "midi_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ParameterError(f"AugmentConfig.{name} must be within [0, 1], got {value}")
        if self.max_noises < 1 or self.rooms < 1:
            raise ParameterError("AugmentConfig: max_noises and rooms must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def mixing_only(cls) -> AugmentConfig:
        """The chain switched off (no pitch shift, room, compression, band limit or codec):
        only the stereo fold, the noise sums and the rendered-MIDI share stay. The ablation
        that asks what the recording chain itself adds."""
        return cls(pitch_p=0.0, music_room_p=0.0, noise_room_p=0.0, mix_room_p=0.0, master_p=0.0,
                   mix_dynamics_p=0.0, band_p=0.0, codec_p=0.0)


def compressor_gain(x: np.ndarray, sample_rate: float, threshold_db: float, ratio: float,
                    attack_s: float, release_s: float) -> np.ndarray:
    """Gain (linear, ``<= 1``) of a feed-forward compressor keyed by ``x`` (1-D).

    The level is a peak envelope (one-pole attack/release smoothing of ``|x|``, in dB re. full
    scale); above ``threshold_db`` the gain brings it down to ``threshold + (level - threshold)
    / ratio``. Vectorized: the envelope's attack and release are two one-pole filters of
    ``|x|`` and the envelope takes the larger, which is a close, causal stand-in for the
    sample-by-sample switching detector.
    """
    a = np.exp(-1.0 / max(1.0, attack_s * sample_rate))
    r = np.exp(-1.0 / max(1.0, release_s * sample_rate))
    mag = np.abs(x).astype(np.float64)
    fast = lfilter([1.0 - a], [1.0, -a], mag)
    slow = lfilter([1.0 - r], [1.0, -r], mag)
    env = np.maximum(fast, slow)
    level = 20.0 * np.log10(np.maximum(env, 1e-9))
    over = np.maximum(level - threshold_db, 0.0)
    return (10.0 ** (-over * (1.0 - 1.0 / ratio) / 20.0)).astype(np.float32)


class RecordingAugmenter:
    """The random recording chain of the module docstring, for one sample rate and seed.

    Parameters
    ----------
    config : AugmentConfig
    sample_rate : int
        Hz of the patches.
    seed : int
        Seeds the bank of room responses (the draws per patch come from the caller's rng).
    """

    def __init__(self, config: AugmentConfig | None = None, sample_rate: int = 44100, seed: int = 0):
        self.config = config or AugmentConfig()
        self.sample_rate = int(sample_rate)
        rng = np.random.default_rng(seed)
        self.rooms = []
        for _ in range(self.config.rooms):
            rt_mid = float(np.exp(rng.uniform(np.log(0.2), np.log(1.5))))
            # rooms ring longer in the bass and shorter in the treble
            slope = rng.uniform(0.0, 0.25)
            rt = rt_mid * 2.0 ** (-slope * np.log2(ROOM_BANDS_HZ / 1000.0))
            ir = synthetic_ir(np.clip(rt, 0.1, 2.5), ROOM_BANDS_HZ, self.sample_rate,
                              drr_db=float(rng.uniform(-2.0, 12.0)), seed=rng,
                              predelay_s=float(rng.uniform(0.0, 0.03)))[0]
            self.rooms.append(ir / np.sqrt(np.sum(ir.astype(np.float64) ** 2)))
        self._room_spectra: dict[tuple[int, int], np.ndarray] = {}

    # -- pieces of the chain -----------------------------------------------------------------
    def fold(self, rng: np.random.Generator, audio: np.ndarray) -> np.ndarray:
        """Stereo ``(2, n)`` -> mono with a random balance (1-D input passes through)."""
        if audio.ndim == 1:
            return audio
        if not self.config.stereo:
            return audio.mean(axis=0)
        w = float(rng.uniform(0.0, 1.0))
        return (w * audio[0] + (1.0 - w) * audio[1]).astype(np.float32)

    def room(self, rng: np.random.Generator, *signals: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every signal through the same random room (same length out: the first ``len``
        samples of the convolution, computed with the response's spectrum cached)."""
        k = int(rng.integers(len(self.rooms)))
        out = []
        for s in signals:
            n = s.size
            size = sp_fft.next_fast_len(n + self.rooms[k].size - 1, real=True)
            spec = self._room_spectra.get((k, size))
            if spec is None:
                spec = self._room_spectra[(k, size)] = sp_fft.rfft(self.rooms[k], size)
            out.append(sp_fft.irfft(sp_fft.rfft(s, size) * spec, size)[:n].astype(np.float32))
        return tuple(out)

    def pitch(self, rng: np.random.Generator, music: np.ndarray) -> np.ndarray:
        """A pitch shift at constant tempo (phase vocoder), same length."""
        steps = float(rng.uniform(-self.config.pitch_semitones, self.config.pitch_semitones))
        out = librosa.effects.pitch_shift(music, sr=self.sample_rate, n_steps=steps)
        return np.asarray(out[: music.size], np.float32)

    def dynamics(self, rng: np.random.Generator, key: np.ndarray, limit: bool) -> np.ndarray:
        """A random compressor's (or limiter's) gain curve keyed by ``key``."""
        peak_db = 20.0 * np.log10(max(float(np.abs(key).max()), 1e-9))
        if limit:
            return compressor_gain(key, self.sample_rate, peak_db - rng.uniform(3.0, 12.0), 20.0,
                                   0.001, float(rng.uniform(0.02, 0.2)))
        return compressor_gain(key, self.sample_rate, peak_db - rng.uniform(4.0, 16.0),
                               float(rng.uniform(2.0, 6.0)), float(rng.uniform(0.005, 0.03)),
                               float(rng.uniform(0.05, 0.3)))

    def band_db(self, rng: np.random.Generator, frequencies_hz: np.ndarray) -> np.ndarray:
        """A random channel response in dB per frequency: band limits and codec low-passes
        (0 dB when neither is drawn)."""
        f = np.asarray(frequencies_hz, np.float64)
        db = np.zeros_like(f)
        safe = np.maximum(f, 1.0)
        if rng.random() < self.config.band_p:
            hp = float(np.exp(rng.uniform(np.log(30.0), np.log(400.0))))
            lp = float(np.exp(rng.uniform(np.log(3000.0), np.log(16000.0))))
            order = int(rng.integers(1, 5))  # 6 to 24 dB per octave
            db -= 10.0 * np.log10(1.0 + (hp / safe) ** (2 * order))
            db -= 10.0 * np.log10(1.0 + (safe / lp) ** (2 * order))
        if rng.random() < self.config.codec_p:
            cut = CODEC_CUTOFFS_HZ[int(rng.integers(len(CODEC_CUTOFFS_HZ)))]
            db = np.where(f > cut, db - 90.0, db)
        return np.maximum(db, -120.0).astype(np.float32)

    # -- the chain ---------------------------------------------------------------------------
    def components(self, rng: np.random.Generator, music: np.ndarray, noise: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """The per-component part of the chain: music (stereo folded, pitch, room, mastering)
        and noise (room); 1-D float32 of ``noise``'s length out."""
        c = self.config
        music = self.fold(rng, music)
        if rng.random() < c.pitch_p:
            music = self.pitch(rng, music)
        if rng.random() < c.music_room_p:
            (music,) = self.room(rng, music)
        if rng.random() < c.master_p and music.any():
            music = music * self.dynamics(rng, music, limit=False)
        if rng.random() < c.noise_room_p:
            (noise,) = self.room(rng, noise)
        return np.asarray(music, np.float32), np.asarray(noise, np.float32)

    def mixture(self, rng: np.random.Generator, music: np.ndarray, noise: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """The whole-mixture part of the chain (room, compression or limiting), applied to both
        components alike so that their sum is the processed mixture."""
        c = self.config
        if rng.random() < c.mix_room_p:
            music, noise = self.room(rng, music, noise)
        if rng.random() < c.mix_dynamics_p:
            g = self.dynamics(rng, music + noise, limit=bool(rng.random() < 0.5))
            music, noise = music * g, noise * g
        return np.asarray(music, np.float32), np.asarray(noise, np.float32)
