"""``Blend``: BNMusic's whole chain as one plugin on a noise track, and ``MusicTrack``, the
real-music generator (the paper's "real music" baseline).

::

    noise ──► MaskExtractor ──► generator ──► AdaptiveAmplifier ──► (FX) ──► music ──► noise + music
      └──────────── sidechain key (the noise) ──────────┘
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import scipy.fft
from blendfx.audio_io import read_audio
from blendfx.buffers import fit_channels, fit_length, to_channels_first
from blendfx.dsp.loudness import db_to_gain, gain_to_db, integrated_lufs, true_peak_ceiling
from blendfx.effect import EFFECT_REGISTRY, Effect, EffectParam, is_native_plugin
from blendfx.effects.amplifier.amplifier import SILENT_PEAK, AdaptiveAmplifier
from blendfx.effects.mask_extractor import MaskExtractor
from blendfx.errors import ParameterError
from blendfx.params import BoolParam, ChoiceParam, FloatParam, Param, StrParam
from blendfx.spectral.analysis import resample
from blendfx.spectral.mask import Mask
from blendfx.spectral.psychoacoustics import default_model

from .metrics import blend_report, gain_to_mask, noise_core

__all__ = ["Blend", "MusicTrack", "best_offset", "track_masking"]

_FPS = 100.0  # mel frames per second (Riffusion's 10 ms hop)
_GOAL_MARGIN_DB = 0.02  # over the gain that masks exactly the goal's share (float rounding)


def _same(param: Param, doc: str | None = None, optional: bool | None = None) -> Param:
    """A copy of another effect's parameter declaration (same type, range, unit, default;
    ``optional`` overrides whether None is allowed)."""
    twin = copy.copy(param)
    if doc is not None:
        twin.doc = doc
    if optional is not None:
        twin.optional = optional
    return twin


def track_masking(track: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`best_offset` needs of a track: its masking threshold ``(512, frames)`` (the
    part that scales with gain) and its energy per frame ``(frames,)``. Compute once per track."""
    model = default_model()
    power = model.power_spectrum(track, sample_rate)
    return model.threshold(power).spread, model.to_mel(power).sum(axis=0, dtype=np.float64)


def best_offset(noise: np.ndarray, track: np.ndarray | tuple[np.ndarray, np.ndarray],
                sample_rate: float, *, fraction: float = 0.15) -> int:
    """The start (in 10 ms frames) of ``track`` that best masks ``noise``'s core per unit loudness.

    For each offset ``o`` the score is the core-energy-weighted sum of the log of the track's
    masking threshold over the core pixels, minus the core's weight times the log of the
    track's energy over the window: the gain a core pixel needs to be masked goes as
    ``E / C_o``, and the loudness that gain costs grows with the window's energy, so the best
    offset puts the most masking where the core is for the least loudness. All offsets at once:
    one FFT cross-correlation per mel row along time, plus a running sum.

    Parameters
    ----------
    noise : np.ndarray
        ``(channels, samples)`` at ``sample_rate``.
    track : np.ndarray or tuple
        ``(channels, samples)`` at ``sample_rate``, at least as long as the noise, or its
        precomputed :func:`track_masking`.

    Returns
    -------
    int
        Offset in frames (multiply by ``sample_rate / 100`` for samples).
    """

    spread, energy = track if isinstance(track, tuple) else track_masking(track, sample_rate)
    core = noise_core(noise, sample_rate, fraction=fraction, listening_lufs=None)
    weights = core.weights * core.energy
    frames = weights.shape[1]
    offsets = spread.shape[1] - frames + 1
    if frames == 0 or offsets <= 1 or not weights.any():
        return 0
    rows = np.flatnonzero(weights.sum(axis=1) > 0)
    floor = max(float(spread.max()), 1e-30) * 1e-10
    log_c = np.log(spread[rows] + floor)
    size = scipy.fft.next_fast_len(spread.shape[1] + frames)
    # correlation: sum_t w[r, t] logC[r, t + o] for every o, summed over rows
    corr = scipy.fft.irfft(scipy.fft.rfft(log_c, size, axis=1)
                           * np.conj(scipy.fft.rfft(weights[rows], size, axis=1)), size, axis=1)
    score = corr.sum(axis=0)[:offsets]
    window = np.convolve(energy, np.ones(frames), mode="valid")[:offsets]
    score -= weights.sum() * np.log(window + max(float(window.max()), 1e-30) * 1e-10)
    return int(np.argmax(score))


class MusicTrack(Effect):
    """Play a music file (or array) against the input noise: same length, aligned.

    The paper's "real music" baseline as a generator: ``Blend(generator=MusicTrack(path=...))``
    plays a given track, offset to align with the noise, then adaptively amplified. The output
    has the input's channel count (a stereo track is averaged for a mono noise track); the track
    is resampled to the noise's rate and looped when shorter than the noise.

    Parameters
    ----------
    path : str
        Audio file (wav, flac, ogg, mp3, ...). A missing file raises ``AudioFileError``.
    align : {"best", "random", "start"}
        "best": the offset whose masking best covers the noise's core per unit loudness
        (:func:`best_offset`); "random": a seeded random offset; "start": ``start_s``.
    start_s : float
        Offset into the track in seconds for ``align="start"``.

    Attributes
    ----------
    offset_s : float
        After processing: the offset into the track that was played, in seconds.
    """

    supports_streaming = False

    path = StrParam("", doc="Music file to play.")
    align = ChoiceParam("best", ["best", "random", "start"], doc="How the track is aligned.")
    start_s = FloatParam(0.0, min=0.0, max=86400.0, unit="s", doc="Offset for align='start'.")

    def __init__(self, **params):
        object.__setattr__(self, "_array", None)
        object.__setattr__(self, "_cache", {})
        super().__init__(**params)

    @classmethod
    def from_array(cls, audio: np.ndarray, sample_rate: float, **params) -> MusicTrack:
        """A MusicTrack playing an in-memory ``audio`` (any layout) at ``sample_rate`` Hz."""

        track = cls(**params)
        data, _ = to_channels_first(audio, name="audio")
        object.__setattr__(track, "_array", (data.copy(), float(sample_rate)))
        return track

    def reset(self) -> None:
        super().reset()
        self._offset_s = 0.0

    @property
    def offset_s(self) -> float:
        return self._offset_s

    def _on_param_change(self, name: str) -> None:
        if name == "path":
            self._cache = {}

    def _track(self, sample_rate: float) -> np.ndarray:
        """The track as ``(channels, samples)`` at ``sample_rate`` (cached per rate)."""
        if self._cache.get("rate") != sample_rate:
            if self._array is not None:
                data, rate = self._array
            elif not self.path:
                raise ParameterError("MusicTrack.path is empty: give a music file "
                                     "(or use MusicTrack.from_array)")
            else:
                data, rate = read_audio(Path(self.path).expanduser())
            if data.shape[1] == 0:
                raise ParameterError(f"MusicTrack {self.path or 'array'} holds no samples")
            self._cache = {"rate": sample_rate, "track": resample(data, rate, sample_rate)}
        return self._cache["track"]

    def _looped(self, track: np.ndarray, n: int) -> np.ndarray:
        """The track looped so that any start in it is followed by ``n`` samples."""
        copies = 1 + int(np.ceil(n / track.shape[1]))
        return np.tile(track, (1, copies)) if copies > 1 else track

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        track = self._track(sample_rate)
        n, span = audio.shape[1], track.shape[1]
        looped = self._looped(track, n)
        if self.align == "start":
            start = int(round(self.start_s * sample_rate)) % span
        elif self.align == "random":
            start = int(self._rng.integers(0, span))
        else:
            key = ("masking", n)
            if key not in self._cache:  # the track's analysis does not depend on the noise
                self._cache[key] = track_masking(looped[:, : span + n], sample_rate)
            frames = best_offset(audio, self._cache[key], sample_rate)
            start = int(round(frames * sample_rate / _FPS)) % span
        self._offset_s = start / sample_rate
        return fit_channels(fit_length(looped[:, start:start + n], n), audio.shape[0])


class Blend(Effect):
    """Blend a noise into music written or chosen for it (BNMusic), as one plugin on the noise.

    MaskExtractor (the noise's core) -> generator (music for this noise) -> AdaptiveAmplifier
    (just enough gain to mask the core, keyed by the noise) -> optional FX -> mixed with the
    noise (``output="mix"``) or alone (``output="music"``), scaled by ``wet``.

    Parameters
    ----------
    prompt : str
        Style for the default generator (the Composer): "lofi", "jazz", "ambient", ...
    generator : Effect, optional
        Any effect whose ``process(noise, sr)`` returns music of the noise's length
        (``MusicTrack``, a diffusion generator, ...). None: the Composer
        (``blendfx.EFFECT_REGISTRY["Composer"]``, issue 4) with ``prompt`` and ``seed``.
    mask_mode : {"energy", "cnn"}
        How the noise's core is found (see MaskExtractor).
    fraction : float
        Share of the noise's mel-image pixels in the core (0.15).
    amp_mode : {"global", "frame", "band"}
        One gain for the clip, one per 10 ms frame with attack/release, or one per Bark band (a
        static EQ toward the noise's core; see AdaptiveAmplifier, default 8 bands, 12 dB range).
    smr_db, alpha, attack_ms, release_ms, max_gain_db : float
        The AdaptiveAmplifier's settings.
    min_gain_db : float or None
        Lowest music gain in dB. None keeps BNMusic's optimum, which mutes a music that has too
        little of its energy in the noise's core to be worth its loudness (common with
        unrelated music); a floor such as -12 keeps it audible.
    ceiling_dbtp : float
        True-peak ceiling, dBTP: of the music and of the output (``ceiling_on="output"``) or of
        the mix of noise and music (``ceiling_on="mix"``).
    ceiling_on : {"output", "mix"}
        What the ceiling holds (it matters for a ``"music"`` stem; a ``"mix"`` output is always
        lowered as a whole, noise and music together, so the music keeps the level masking
        needs). "output" (default): the Blend's output; a ``"music"`` stem then stays under
        the ceiling on its own, which holds the music back against a loud noise (its masking
        goal may be missed). "mix": noise + music as they will play; the music is made at the
        level masking needs (no ceiling of its own, so a ``"music"`` stem may exceed 0 dBFS in
        float) and whoever mixes the stem lowers the mix with one gain (``blendfx blend``'s
        master does). ``last_report["mix_trim_db"]`` says by how much.
    fx : Effect or pedalboard plugin, optional
        Post FX on the music (a ``blendfx.Chain``, ``pedalboard.Reverb()``, ...).
    wet : float
        Level of the music in the output, 0 to 1 (0 = the noise alone).
    output : {"mix", "music"}
        "mix": noise + music (a plugin on the noise track); "music": the music alone (a stem).
    mask_goal : float or None
        A sound designer's masking goal: mask at least this share (0..1] of the noise core's
        energy, as quietly as possible. The amplified music is scaled by the one gain at which
        exactly this share falls under its masking threshold (``metrics.gain_to_mask``), up or
        down from the amplifier's choice (from the generator's own level where BNMusic's
        optimum muted it). With ``output="mix"`` the whole mix is then trimmed under the
        true-peak ceiling (the goal holds; the output is quieter); a ``"music"`` stem stays
        under the ceiling and may miss the goal (``goal_met`` says). None (default):
        BNMusic's optimum alone.
    loudness_budget_lu : float or None
        A loudness budget: the mix is at most this many LU louder than the noise alone (the
        music is turned down until it is). With ``mask_goal`` too, the budget wins and the
        report says the goal was missed. None (default): no budget.
    noise_lufs : float or None
        BNMusic's level convention: normalize the noise to this integrated loudness (LUFS, the
        paper uses -18) before blending; the output mix carries the normalized noise, and a
        ``"music"`` stem is scaled back by the same gain (it plays beside the noise track as
        it is, which is not the Blend's to change). None (default): the noise keeps its level.
    report : bool
        Compute :attr:`last_report` after each call (about 0.1 s per 5 s); it holds
        ``masked_share`` (0..1) and ``loudness_increase_lu`` beside the SMR and Bark-band NMR
        measures (:func:`.metrics.blend_report`), and ``mask_goal``, ``loudness_budget_lu``,
        ``goal_met``, ``within_budget``, ``goal_gain_db`` (what the two knobs changed, dB),
        ``noise_gain_db`` (the ``noise_lufs`` normalization, dB), ``ceiling_on``,
        ``mix_trim_db`` (<= 0: how much noise and music are lowered together so that the mix
        fits under the ceiling: applied by the Blend with ``output="mix"``, to be applied by the
        mixer for a ``ceiling_on="mix"`` stem, 0 otherwise) and ``limited_by`` (what held the
        music under the level the goal or BNMusic's optimum asked for: ``"loudness_budget"``,
        ``"ceiling"`` (a stem's own ceiling), ``"unmaskable"`` (no gain of this music masks
        the goal's share: it has no energy where the core needs it) or None).
    progress : bool
        Show the default Composer's progress bar on noises of 20 s or more.

    Attributes
    ----------
    last_music : np.ndarray
        ``(channels, samples)`` float32: the amplified (and FX'd) music, in the generator's
        channels, before ``wet`` and before any trim of the mix under the ceiling.
    last_mask : Mask
        The noise's core.
    last_gains_db : np.ndarray
        The amplifier's gain per 10 ms frame in dB.
    last_report : dict
        :func:`.metrics.blend_report` of the noise and the music as output (with ``wet``);
        ``{"silent_noise": True}`` when the noise was digital silence (peak under -140 dBFS):
        there is nothing to mask, so no music is made and the output is the input ("mix") or
        silence ("music").

    Examples
    --------
    >>> blend = Blend(prompt="lofi")                                          # doctest: +SKIP
    >>> out = blend(noise, 44100); blend.last_report["unmasked_fraction"]     # doctest: +SKIP
    >>> real = Blend(generator=MusicTrack(path="song.wav"), output="music")   # doctest: +SKIP
    """

    supports_streaming = False

    prompt = StrParam("lofi", doc="Style for the default generator (the Composer).")
    generator = EffectParam(None, doc="Music generator; None = the Composer.")
    mask_mode = ChoiceParam("energy", ["energy", "cnn"], doc="How the noise's core is found.")
    # the amplifier's knobs, declared once (in AdaptiveAmplifier) and shown here too
    fraction = _same(AdaptiveAmplifier.fraction)
    amp_mode = _same(AdaptiveAmplifier.mode)
    smr_db = _same(AdaptiveAmplifier.smr_db)
    alpha = _same(AdaptiveAmplifier.alpha)
    attack_ms = _same(AdaptiveAmplifier.attack_ms)
    release_ms = _same(AdaptiveAmplifier.release_ms)
    max_gain_db = _same(AdaptiveAmplifier.max_gain_db)
    min_gain_db = _same(AdaptiveAmplifier.min_gain_db,
                        doc="Lowest music gain (None: BNMusic's optimum, which can mute).")
    ceiling_dbtp = _same(AdaptiveAmplifier.ceiling_dbtp, optional=False)
    ceiling_on = ChoiceParam("output", ["output", "mix"],
                             doc="What the ceiling holds: the Blend's output, or noise + music.")
    fx = EffectParam(None, doc="Post FX on the music (a Chain or pedalboard plugin).")
    wet = FloatParam(1.0, min=0.0, max=1.0, doc="Music level in the output.")
    output = ChoiceParam("mix", ["mix", "music"], doc="Noise + music, or music alone.")
    mask_goal = FloatParam(None, min=0.01, max=1.0,
                           doc="Mask at least this share of the core, as quietly as possible (None: off).")
    loudness_budget_lu = FloatParam(None, min=0.0, max=60.0, unit="LU",
                                    doc="The mix at most this many LU above the noise (None: off).")
    noise_lufs = FloatParam(None, min=-70.0, max=0.0, unit="LUFS",
                            doc="Normalize the noise to this loudness first (BNMusic: -18; None: off).")
    report = BoolParam(True, doc="Compute last_report after each call.")
    progress = BoolParam(True, doc="Progress bar of the default Composer on long noises.")

    def reset(self) -> None:
        super().reset()
        self._last_music = np.zeros((0, 0), np.float32)
        self._last_mask: Mask | None = None
        self._last_gains_db = np.zeros(0)
        self._last_report: dict = {}
        for slot in (self.generator, self.fx):
            if isinstance(slot, Effect):
                slot.reset()
            elif slot is not None and is_native_plugin(slot):
                slot.reset()

    @property
    def last_music(self) -> np.ndarray:
        return self._last_music

    @property
    def last_mask(self) -> Mask | None:
        return self._last_mask

    @property
    def last_gains_db(self) -> np.ndarray:
        return self._last_gains_db

    @property
    def last_report(self) -> dict:
        return self._last_report

    def _generator(self) -> Effect:
        if self.generator is not None:
            return self.generator
        composer = EFFECT_REGISTRY.get("Composer")
        if composer is None:
            raise ParameterError(
                "Blend.generator is None, which means the Composer (blendfx.effects.Composer, "
                "issue 4), but this build has no Composer; pass a generator, e.g. "
                "Blend(generator=MusicTrack(path='song.wav'))")
        cached = getattr(self, "_composer", None)
        if cached is None or cached.prompt != self.prompt or cached.seed != self.seed:
            cached = composer(prompt=self.prompt, seed=self.seed)
            self._composer = cached
        if "progress" in cached.params():  # any registered generator may stand in for it
            cached.progress = self.progress
        return cached

    def _process(self, audio: np.ndarray, sample_rate: float,
                 sidechain: np.ndarray | None) -> np.ndarray:
        n = audio.shape[1]
        if not float(np.abs(audio).max(initial=0.0)) >= SILENT_PEAK:
            # digital silence: nothing to mask, so no music is made (the noise passes as it is)
            self._last_report = {"silent_noise": True}
            return audio.copy() if self.output == "mix" else np.zeros_like(audio)
        noise_gain_db = 0.0
        if self.noise_lufs is not None:  # BNMusic's convention: the noise at a fixed loudness
            loud = integrated_lufs(audio, sample_rate)
            if np.isfinite(loud):
                noise_gain_db = float(self.noise_lufs - loud)
                audio = audio * np.float32(db_to_gain(noise_gain_db))
        # a "music" stem with ceiling_on="output" stays under the ceiling on its own; otherwise
        # the music is made at the level masking needs and noise + music are trimmed together
        # (a mix output is what plays: holding its music alone under the ceiling would only
        # keep it from masking a loud noise)
        own_ceiling = self.ceiling_dbtp if self.ceiling_on == "output" and self.output == "music" else None
        extractor = MaskExtractor(mode=self.mask_mode, fraction=self.fraction, analysis="fast")
        mask = extractor.extract(audio, sample_rate)
        music = self._generate(audio, sample_rate)
        amp = AdaptiveAmplifier(mode=self.amp_mode, smr_db=self.smr_db, alpha=self.alpha,
                                fraction=self.fraction, attack_ms=self.attack_ms,
                                release_ms=self.release_ms, max_gain_db=self.max_gain_db,
                                min_gain_db=self.min_gain_db, ceiling_dbtp=own_ceiling)
        raw = music
        music = amp.amplify(music, audio, sample_rate, mask=mask)
        limited = self.amp_mode == "global" and own_ceiling is not None and np.isfinite(
            amp.optimal_gain_db) and amp.gain_db < min(amp.optimal_gain_db, self.max_gain_db) - 0.01
        if self.mask_goal is not None and not np.any(music):
            music = raw  # BNMusic's optimum muted it: the goal scales the generator's music instead
        if self.fx is not None:
            music = np.asarray(self.fx(music, sample_rate), dtype=np.float32)
            music = fit_length(music, n)
            if own_ceiling is not None:
                music, _ = true_peak_ceiling(music, own_ceiling)
        music, goal_db, bound = self._meet_goals(audio, music, sample_rate, mask)
        if self.mask_goal is not None or self.loudness_budget_lu is not None:
            limited = False  # the knobs chose the level: only what held them back counts
        wet_music = fit_channels(music, audio.shape[0]) * np.float32(self.wet)
        out = audio + wet_music if self.output == "mix" else wet_music
        trim = np.float32(1.0)
        trim_db = 0.0
        if self.wet > 0 and (self.output == "mix" or self.ceiling_on == "mix"):
            # the mix may exceed what either part does: noise and music are trimmed together
            # (here for a mix; for a stem, the trim its mixer must apply is reported)
            _, trim_db = true_peak_ceiling(audio + wet_music, self.ceiling_dbtp)
            if self.output == "mix":
                trim = np.float32(10.0 ** (trim_db / 20.0))
                out = out * trim
        self._last_music = music
        self._last_mask = mask
        self._last_gains_db = amp.gains_db
        if self.report:  # what plays: the output mix, or this music against the noise track
            noise_heard = audio * trim if self.output == "mix" else audio
            report = blend_report(noise_heard, wet_music * trim, sample_rate, mask=mask,
                                  fraction=self.fraction)
            report.update(self._goal_report(report, goal_db, noise_gain_db))
            report.update({"ceiling_on": self.ceiling_on, "mix_trim_db": float(trim_db),
                           "limited_by": bound or ("ceiling" if limited else None)})
            self._last_report = report
        else:
            self._last_report = {}
        if self.output == "music" and noise_gain_db != 0.0:
            # the stem plays beside the noise track as it is: undo the normalization's gain
            out = out * np.float32(db_to_gain(-noise_gain_db))
        return out

    def _meet_goals(self, noise: np.ndarray, music: np.ndarray, sample_rate: float,
                    mask: Mask) -> tuple[np.ndarray, float, str | None]:
        """``music`` rescaled for ``mask_goal`` and ``loudness_budget_lu`` (and a stem back under
        its own true-peak ceiling), the gain that changed in dB (0.0 when both are off), and
        what held the music under the goal's level: "loudness_budget", "ceiling",
        "unmaskable" or None."""
        if self.mask_goal is None and self.loudness_budget_lu is None:
            return music, 0.0, None
        heard = fit_channels(music, noise.shape[0]) * np.float32(self.wet)  # as it will play
        scale = 1.0
        bound = None
        if self.mask_goal is not None and self.wet > 0:
            core = noise_core(noise, sample_rate, mask=mask)
            need = gain_to_mask(noise, heard, sample_rate, share=float(self.mask_goal), core=core)
            if np.isfinite(need):
                # the least gain that masks the goal's share, and _GOAL_MARGIN_DB more: at that
                # gain the last pixel it needs sits exactly on the music's threshold, and the
                # float32 music's spectrum, computed again, may put it a hair above
                scale = float(need) * float(db_to_gain(_GOAL_MARGIN_DB))
            else:
                bound = "unmaskable"  # no gain of this music masks that share of the core
        if self.loudness_budget_lu is not None and scale > 0 and self.wet > 0:
            noise_lufs = integrated_lufs(noise, sample_rate)
            if np.isfinite(noise_lufs):
                limit = noise_lufs + float(self.loudness_budget_lu)

                def louder(db: float) -> bool:
                    mix = noise + heard * np.float32(scale * db_to_gain(db))
                    return integrated_lufs(mix, sample_rate) > limit + 0.01

                if louder(0.0):  # bisect the cut in dB: loudness grows with the music's gain
                    lo, hi = -80.0, 0.0
                    for _ in range(14):
                        mid = 0.5 * (lo + hi)
                        lo, hi = (lo, mid) if louder(mid) else (mid, hi)
                    scale *= float(db_to_gain(lo))
                    bound = "loudness_budget"
        music = music * np.float32(scale)
        trim_db = 0.0
        if self.ceiling_on == "output" and (self.output != "mix" or self.wet <= 0):
            # a stem stays under its own ceiling (the goal may then be missed); a mix, or a
            # stem whose mixer trims the mix, keeps the music's level against the noise
            music, trim_db = true_peak_ceiling(music, self.ceiling_dbtp)
            if trim_db < -0.01:
                bound = bound or "ceiling"
        return music, float(gain_to_db(scale)) + float(trim_db), bound

    def _goal_report(self, report: dict, goal_db: float, noise_gain_db: float) -> dict:
        """The knobs' part of :attr:`last_report`."""
        goal, budget = self.mask_goal, self.loudness_budget_lu
        return {
            "mask_goal": goal,
            "loudness_budget_lu": budget,
            "goal_met": None if goal is None else bool(report["masked_share"] >= goal - 1e-3),
            "within_budget": None if budget is None
            else bool(report["loudness_increase_lu"] <= budget + 0.05),
            "goal_gain_db": goal_db,
            "noise_gain_db": noise_gain_db,
        }

    def _generate(self, noise: np.ndarray, sample_rate: float) -> np.ndarray:
        """The generator's music for ``noise``, as ``(channels, n)`` float32."""
        generator = self._generator()
        music = generator(noise, sample_rate)
        music = np.asarray(music, dtype=np.float32)
        if music.ndim == 1:
            music = music[None]
        elif music.ndim == 2 and music.shape[0] > music.shape[1]:
            music = music.T
        if music.ndim != 2 or not np.isfinite(music).all():
            raise ParameterError(f"Blend.generator {type(generator).__name__} returned no usable "
                                 "music (expected finite (channels, samples) audio)")
        return np.ascontiguousarray(fit_length(music, noise.shape[1]))
