"""Train the music/noise segmenter on mixtures of the shared clips (reproducible, CPU, minutes).

Run::

    python -m blendfx.effects.segmenter.train --out effects/segmenter/weights  # the shipped weights
    python -m blendfx.effects.segmenter.train --data /work/shared/data --out /tmp/seg --steps 200
    # issue 20: recorded music, recording augmentations, whole pieces and noise classes held out
    python -m blendfx.effects.segmenter.train --recipe recorded --fold 0 --folds 4 --out /tmp/f0 \
        --steps 2400 --hidden 64 --midi-seconds 15

Every step draws ``--batch`` patches of 512 STFT frames (1.49 s, 13 x 17 windows) from the
training files (:func:`.data.source_split`): a seventh are music alone, a seventh
noise alone and the rest music + noise at +10, +5, 0, -5 or -10 dB over the patch. Targets are
each window's music share of the energy (:func:`~.data.window_targets`); the
loss is the softmax cross-entropy against them over the non-silent windows. The whole patch goes
through the fully convolutional network at once, so its 221 overlapping windows share their
feature maps. SGD with Nesterov momentum and a cosine learning-rate schedule, seeded, with
deterministic torch algorithms on 2 threads: the same command gives the same weights on the same
machine and torch version.

The weights and a JSON config with the training metadata (sources, steps, seconds, validation
AUCs) are written to ``--out``; the data is read in place and never copied.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from blendfx.errors import BlendfxError, ParameterError
from scipy.signal import resample_poly

from .augment import AugmentConfig, RecordingAugmenter
from .data import (
    SNRS,
    VALIDATION_MUSIC,
    Clip,
    evaluate,
    fold_split,
    item_samples,
    load_clips,
    noise_gain,
    render_midi_clips,
    shared_data_dir,
    source_split,
    validation_items,
    window_targets,
)
from .net import Segmenter, SegmenterConfig, features_from_power, net_input, power, resolve_weight_paths, stft

__all__ = ["MixtureSampler", "learning_rate", "train", "main"]


class MixtureSampler:
    """Random training patches: music and scaled noise components of equal length.

    Parameters
    ----------
    music, noise : sequence of Clip
        Training sources (mono, 44.1 kHz). Music clips are drawn in proportion to their length,
        noise clips uniformly (so the two long beds do not crowd out the 40 short ESC-10 clips).
    samples : int
        Patch length in samples.
    clean_share : float, optional
        Probability of a music-only patch and, as much again, of a noise-only one (the rest are
        mixtures, the five SNRs equally likely). Default: every one of the seven conditions
        equally likely (1/7).
    noise_mix : float, optional
        Probability that a patch's noise is the sum of two noise clips (the second 10 dB below to
        10 dB above the first, RMS over the patch): a transient noise over another one's bed, so
        the few noise files make many more scenes. 0 (default) draws exactly as before.
    augmenter : RecordingAugmenter, optional
        The recording chain of :mod:`.augment` for :meth:`augmented_batch` (music clips may
        then be stereo ``(2, samples)``).
    midi : sequence of Clip
        Rendered music drawn for a share ``augmenter.config.midi_share`` of the patches of
        :meth:`augmented_batch` (in proportion to length), the recordings for the rest.
    """

    def __init__(self, music: Sequence[Clip], noise: Sequence[Clip], samples: int,
                 clean_share: float | None = None, noise_mix: float = 0.0,
                 augmenter: RecordingAugmenter | None = None, midi: Sequence[Clip] = ()):
        self.music = [c.audio for c in music]
        self.noise = [c.audio for c in noise]
        self.midi = [c.audio for c in midi]
        self.music_names = [c.name for c in music]
        self.noise_names = [c.name for c in noise]
        self.midi_names = [c.name for c in midi]
        self.augmenter = augmenter
        self.samples = samples
        if not 0.0 <= noise_mix <= 1.0:
            raise ParameterError(f"noise_mix must be within [0, 1], got {noise_mix}")
        self.noise_mix = float(noise_mix)
        snrs = len(SNRS) - 1
        clean = 1.0 / (snrs + 2) if clean_share is None else float(clean_share)
        if not 0.0 <= clean <= 0.5:
            raise ParameterError(f"clean_share must be within [0, 0.5], got {clean}")
        self.condition_p = np.array([clean, clean] + [(1.0 - 2 * clean) / snrs] * snrs)
        lengths = np.array([m.shape[-1] for m in self.music], float)
        self.music_p = lengths / lengths.sum()
        midi_lengths = np.array([m.shape[-1] for m in self.midi], float)
        self.midi_p = midi_lengths / midi_lengths.sum() if self.midi else None

    def _segment(self, rng: np.random.Generator, clips: list[np.ndarray],
                 p: np.ndarray | None, fold=None, picked: list | None = None) -> np.ndarray:
        """A random stretch of a random clip, played 0.8 to 1.25 times as fast (pitch and tempo
        move together, as on a tape): more timbres and tempi than the few sources hold.
        ``fold(rng, stereo)`` turns a stereo stretch to mono before the resampling; the index of
        every clip tried is appended to ``picked``."""

        rate = Fraction(float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))).limit_denominator(12)
        need = int(np.ceil(self.samples * rate)) + 16
        for _ in range(20):  # skip near-silent picks (fades, pauses between barks)
            index = int(rng.choice(len(clips), p=p))
            if picked is not None:
                picked.append(index)
            clip = clips[index]
            n = clip.shape[-1]
            if n <= need:
                seg = np.pad(clip, [(0, 0)] * (clip.ndim - 1) + [(0, need - n)])
            else:
                start = int(rng.integers(0, n - need + 1))
                seg = clip[..., start:start + need]
            if np.sqrt(np.mean(seg ** 2)) > 1e-3:
                break
        if fold is not None and seg.ndim == 2:
            seg = fold(rng, seg)
        out = resample_poly(seg, rate.denominator, rate.numerator, axis=-1) if rate != 1 else seg
        return np.asarray(out[..., : self.samples], np.float32)

    def batch(self, rng: np.random.Generator, size: int):
        """A training batch.

        Returns
        -------
        music, noise : np.ndarray
            ``(size, samples)`` float32 components (one of the two may be zero).
        tilts : np.ndarray
            ``(size, 2)`` spectral tilts in dB per octave (around 1 kHz) for the music and the
            noise, a random EQ applied in the STFT domain.
        """
        music = np.zeros((size, self.samples), np.float32)
        noise = np.zeros((size, self.samples), np.float32)
        conditions = ("music", "noise") + tuple(s for s in SNRS if s != "clean")
        for b in range(size):
            cond = conditions[int(rng.choice(len(conditions), p=self.condition_p))]
            m = self._segment(rng, self.music, self.music_p)
            n = self._segment(rng, self.noise, None)
            if self.noise_mix and rng.random() < self.noise_mix:
                other = self._segment(rng, self.noise, None)
                ratio = 10.0 ** (rng.uniform(-10.0, 10.0) / 20.0)  # RMS of the second re. the first
                n = n + other * (ratio * _rms(n) / max(_rms(other), 1e-9))
            level = 10.0 ** (rng.uniform(-20.0, 0.0) / 20.0)  # overall level: gain invariance
            if cond == "music":
                music[b] = m * (level / max(float(np.abs(m).max()), 1e-9))
            elif cond == "noise":
                noise[b] = n * (level / max(float(np.abs(n).max()), 1e-9))
            else:
                mix_m, mix_n = m, n * noise_gain(m, n, float(cond))
                scale = level / max(float(np.abs(mix_m + mix_n).max()), 1e-9)
                music[b], noise[b] = mix_m * scale, mix_n * scale
        tilts = rng.uniform(-3.0, 3.0, (size, 2)).astype(np.float32)
        return music, noise, tilts


    def augmented_batch(self, rng: np.random.Generator, size: int, drawn: list | None = None):
        """A training batch through the recording chain of :mod:`.augment`.

        Music comes from rendered MIDI for a share ``midi_share`` of the patches (when any was
        given), else from the recordings; the noise is the sum of 1 to ``max_noises`` clips at
        random relative levels (+-10 dB); the components go through the augmenter's
        per-component chain, are mixed at the drawn condition (music alone, noise alone, or one
        of the SNRs), then through its mixture chain. With ``drawn`` (a list), one
        ``(music names, noise names)`` pair of tuples per patch is appended to it: the names
        (:class:`Clip` ``name``) of every clip its components were cut from (or tried), whether
        or not the condition kept that component.

        Returns
        -------
        music, noise : np.ndarray
            ``(size, samples)`` float32 components (one of the two may be zero).
        tilts : np.ndarray
            ``(size, 2)`` spectral tilts in dB per octave for the music and the noise.
        band_db : np.ndarray
            ``(size, bins)`` the channel's response in dB on the STFT bins of
            :class:`SegmenterConfig` (applied to both components).
        """
        if self.augmenter is None:
            raise ParameterError("augmented_batch needs a RecordingAugmenter")
        aug = self.augmenter
        cfg = aug.config
        config = SegmenterConfig()
        freqs = np.arange(config.bins) * config.sample_rate / config.n_fft
        music = np.zeros((size, self.samples), np.float32)
        noise = np.zeros((size, self.samples), np.float32)
        band_db = np.zeros((size, config.bins), np.float32)
        conditions = ("music", "noise") + tuple(s for s in SNRS if s != "clean")
        for b in range(size):
            cond = conditions[int(rng.choice(len(conditions), p=self.condition_p))]
            mp: list[int] = []
            npk: list[int] = []
            if self.midi and rng.random() < cfg.midi_share:
                m = self._segment(rng, self.midi, self.midi_p, aug.fold, mp)
                music_names = self.midi_names
            else:
                m = self._segment(rng, self.music, self.music_p, aug.fold, mp)
                music_names = self.music_names
            n = self._segment(rng, self.noise, None, picked=npk)
            for _ in range(int(rng.integers(1, cfg.max_noises + 1)) - 1):
                other = self._segment(rng, self.noise, None, picked=npk)
                ratio = 10.0 ** (rng.uniform(-10.0, 10.0) / 20.0)
                n = n + other * (ratio * _rms(n) / max(_rms(other), 1e-9))
            m, n = aug.components(rng, m, n)
            if cond == "music":
                n = np.zeros_like(n)
            elif cond == "noise":
                m = np.zeros_like(m)
            else:
                n = n * noise_gain(m, n, float(cond))
            m, n = aug.mixture(rng, m, n)
            level = 10.0 ** (rng.uniform(-20.0, 0.0) / 20.0)
            scale = level / max(float(np.abs(m + n).max()), 1e-9)
            music[b], noise[b] = m * scale, n * scale
            band_db[b] = aug.band_db(rng, freqs)
            if drawn is not None:
                drawn.append((tuple(music_names[i] for i in mp),
                              tuple(self.noise_names[i] for i in npk)))
        tilts = rng.uniform(-3.0, 3.0, (size, 2)).astype(np.float32)
        return music, noise, tilts, band_db


def learning_rate(step: int, steps: int, lr: float, cycles: int = 1) -> float:
    """The learning rate at ``step`` (0-based) of ``steps``: ``cycles`` cosine cycles of equal
    length, each with a linear warm-up over its first 5 %, cycle k peaking at ``lr / 2**k``."""
    cycle_steps = -(-steps // cycles)
    warm = max(1, cycle_steps // 20)
    k, step = divmod(step, cycle_steps)
    length, peak = min(cycle_steps, steps - k * cycle_steps), lr / 2.0 ** k
    if step < warm:
        return peak * (step + 1) / warm
    return 0.5 * peak * (1.0 + float(np.cos(np.pi * (step - warm) / max(1, length - warm))))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _tilt(spec, db_per_octave, config: SegmenterConfig):
    """EQ ``(batch, bins, frames)`` spectra by a tilt in dB per octave around 1 kHz (+-15 dB)."""

    freqs = torch.arange(config.bins, dtype=torch.float32) * config.sample_rate / config.n_fft
    octaves = torch.log2(freqs.clamp_min(60.0) / 1000.0)
    db = (db_per_octave[:, None] * octaves[None]).clamp(-15.0, 15.0)
    return spec * (10.0 ** (db / 20.0))[..., None]


def _loss(net, music, noise, tilts, config: SegmenterConfig, offset_db, hard: bool = False,
          band_db=None):
    m, n = (stft(x, config.n_fft, config.hop_length) for x in (music, noise))
    m, n = _tilt(m, tilts[:, 0], config), _tilt(n, tilts[:, 1], config)
    if band_db is not None:  # the channel (band limits, codec low-pass) on both components
        gain = (10.0 ** (band_db / 20.0))[..., None]
        m, n = m * gain, n * gain
    mixture = power(m + n)
    image = features_from_power(mixture, config, offset_db)
    share, label, weight = window_targets(power(m), power(n), config, mixture)
    if hard:
        share = label
    logp = torch.log_softmax(net(net_input(image, config)), dim=1)
    ce = -(share * logp[:, 1] + (1.0 - share) * logp[:, 0])
    # the targets' own entropy, so the logged figure (a KL divergence) reaches 0 at a perfect fit
    with torch.no_grad():
        s = share.clamp(1e-7, 1 - 1e-7)
        entropy = -(s * s.log() + (1 - s) * (1 - s).log())
    total = weight.sum().clamp_min(1.0)
    return (ce * weight).sum() / total, float(((ce.detach() - entropy) * weight).sum() / total)


def train(data: str | Path | None = None, out: str | Path | None = None, *, steps: int = 1000,
          batch: int = 8, patch_windows: int = 17, lr: float = 0.002, seed: int = 0,
          eval_every: int = 250, use_midi: bool = True, threads: int = 2, optimizer: str = "adam",
          val_music: Sequence[str] = VALIDATION_MUSIC, targets: str = "soft",
          config: SegmenterConfig | None = None, init: str | Path | None = None,
          voicings: int = 1, midi_seconds: float = 30.0, clean_share: float | None = None,
          noise_mix: float = 0.0, cycles: int = 1, recipe: str = "paper",
          fold: int | None = None, folds: int = 4, fold_seed: int = 0,
          hold_music: Sequence[str] = (), hold_noise: Sequence[str] = (),
          group: int | None = None, groups: int = 2, group_seed: int = 0,
          augment: AugmentConfig | None = None, log=print) -> Segmenter:
    """Train a segmenter and (with ``out``) save it with its metadata.

    Parameters
    ----------
    data : path, optional
        The shared data folder (default: ``$BLENDFX_SHARED_DATA`` or ``../shared/data``).
    out : path, optional
        Folder for ``segmenter.safetensors`` and ``segmenter.json``.
    steps, batch : int
        SGD steps and patches per step.
    patch_windows : int
        Patch length in window hops along time (17: 512 frames, 1.49 s).
    lr : float
        Peak learning rate (cosine decay to 0 after a 5 % warm-up).
    seed : int
        Seeds the data sampler, the initialization and dropout.
    eval_every : int
        Steps between validation AUC lines in the log (0: only at the end).
    use_midi : bool
        Add music rendered from ``midi/`` when the Composer's ``render_midi`` is available.
    threads : int
        Torch CPU threads.
    optimizer : {"sgd", "adam"}
        SGD with Nesterov momentum (the paper's) or Adam.
    val_music : sequence of str
        Stems of the music files held out for validation.
    targets : {"soft", "hard"}
        Train on each window's music share of the energy, or on the label ``E_music > E_noise``.
    config : SegmenterConfig, optional
        Architecture and geometry (default: :class:`SegmenterConfig`'s; with ``init``, the
        initial weights' config).
    init : path, optional
        Weights folder (or ``.safetensors``) to start from instead of a random initialization
        (fine-tuning: the schedule restarts; the metadata records the initial weights' SHA-256
        and their own training record).
    voicings : int
        Renders of every training MIDI file, each with its own random programs.
    midi_seconds : float
        Length in s of each training render (validation renders keep 30 s).
    clean_share : float, optional
        Share of music-only patches and, as much again, of noise-only ones (default 1/7 each).
    noise_mix : float
        Probability of a two-noise patch (see :class:`MixtureSampler`).
    cycles : int
        Cosine learning-rate cycles of equal length (warm restarts, each with its own warm-up;
        cycle k peaks at ``lr / 2**k``): 1 is one plain cosine schedule.
    recipe : {"paper", "recorded"}
        "paper": the shipped weights' recipe (the three ``music/`` excerpts and rendered MIDI
        as the music, :func:`.data.source_split`). "recorded" (issue 20): the recorded pieces of
        ``music/`` and ``music_cc/`` are the music class and rendered MIDI only an augmentation
        (``augment.midi_share`` of the patches), the noise classes include ``noise/nps``, the
        split is :func:`.data.fold_split` (``fold``, ``folds``, ``fold_seed``) and every patch
        goes through the recording chain of :mod:`.augment`; ``val_music`` is ignored.
    fold, folds, fold_seed : int
        The held-out fold of the "recorded" recipe (None: no recorded piece held out, for the
        final weights), the number of folds and the seed of the fold assignment.
    hold_music, hold_noise : sequence of str
        "recorded" recipe with ``fold=None``: pieces (file stems) and noise classes kept out of
        the final training (:func:`.data.fold_split`), e.g. those a test scores the weights on.
    group, groups, group_seed : int
        "recorded" recipe with a fold: train on group ``group`` of the fold's training pieces and
        noise classes only (``groups`` seeded groups, :func:`.data.fold_groups`; the CNNs a
        cross-fitted feature stack scores its training windows with, see
        :mod:`.train_stack`); None: the whole fold.
    augment : AugmentConfig, optional
        The recording chain's settings for the "recorded" recipe (default
        :class:`~.augment.AugmentConfig`'s).

    Returns
    -------
    Segmenter
        The trained model (in eval mode).
    """

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    start = None
    if init is not None:

        start = Segmenter.from_pretrained(init, device="cpu")
        if config is not None and config != start.config:
            raise ParameterError(f"init weights {init} have another config than the one given")
        config = start.config
        init_record = {"path": str(init), "sha256": hashlib.sha256(
            resolve_weight_paths(init)[0].read_bytes()).hexdigest(), "training": start.training}
    config = config or SegmenterConfig()
    root = shared_data_dir(data)
    if recipe not in ("paper", "recorded"):
        raise ParameterError(f"recipe must be 'paper' or 'recorded', got {recipe!r}")
    recorded = recipe == "recorded"
    if recorded:
        split = fold_split(root, fold, folds, fold_seed, midi=use_midi, hold_music=hold_music,
                           hold_noise=hold_noise, group=group, groups=groups, group_seed=group_seed)
        augment = augment or AugmentConfig()
    elif group is not None:
        raise ParameterError("group needs the recorded recipe and a fold")
    else:
        split = source_split(root, midi=use_midi, val_music=val_music)
    t0 = time.perf_counter()
    train_music = load_clips(split.train_music, config.sample_rate, stereo=recorded)
    val_music = load_clips(split.val_music, config.sample_rate)
    midi_train = (render_midi_clips(split.train_midi, config.sample_rate, max_seconds=midi_seconds,
                                    voicings=voicings) if use_midi else [])
    # the recorded recipe validates on recorded pieces when it holds some out
    midi_val = (render_midi_clips(split.val_midi, config.sample_rate)
                if use_midi and not (recorded and val_music) else [])
    train_noise = load_clips(split.train_noise, config.sample_rate)
    val_noise = load_clips(split.val_noise, config.sample_rate)
    load_seconds = time.perf_counter() - t0
    log(f"data: {len(train_music)} music + {len(midi_train)} rendered MIDI / {len(train_noise)} noise "
        f"files for training, {len(val_music)} + {len(midi_val)} / {len(val_noise)} for validation "
        f"({load_seconds:.1f} s to load)")
    if recorded:
        sampler = MixtureSampler(train_music, train_noise, item_samples(config, patch_windows),
                                 clean_share, augmenter=RecordingAugmenter(augment, config.sample_rate,
                                                                           seed), midi=midi_train)
    else:
        sampler = MixtureSampler(train_music + midi_train, train_noise,
                                 item_samples(config, patch_windows), clean_share, noise_mix)
    quick_val = validation_items(val_music + midi_val, val_noise, conditions=("clean", 10.0, 0.0),
                                 windows=33, noise_segments_per_long_clip=1, max_music_segments=8,
                                 config=config)

    model = Segmenter(config, device="cpu")
    net = model.net
    if start is not None:
        net.load_state_dict(start.net.state_dict())
    if optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
    if cycles < 1 or cycles > steps:
        raise ParameterError(f"cycles must be within [1, steps], got {cycles}")
    bn_batches = min(steps, max(1, steps // 10))

    history = []
    t_train = time.perf_counter()
    running = 0.0
    for step in range(steps):
        if step == steps - bn_batches and config.batch_norm:
            # Precise batch norm: the last steps also average the batch statistics over many
            # batches (equal weights) instead of the noisy exponential running estimate.
            for module in net.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.reset_running_stats()
                    module.momentum = None
        net.train()
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, steps, lr, cycles)
        band = None
        if recorded:
            music, noise, tilts, band = sampler.augmented_batch(rng, batch)
            band = torch.from_numpy(band)
        else:
            music, noise, tilts = sampler.batch(rng, batch)
        offset = torch.as_tensor(rng.uniform(0.0, 6.0, (batch, 1, 1)), dtype=torch.float32)
        loss, value = _loss(net, torch.from_numpy(music), torch.from_numpy(noise),
                            torch.from_numpy(tilts), config, offset, hard=targets == "hard",
                            band_db=band)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running = 0.98 * running + 0.02 * value if step else value
        if (eval_every and (step + 1) % eval_every == 0) or step + 1 == steps:
            net.eval()
            aucs = evaluate(model, quick_val)["dominance"]
            elapsed = time.perf_counter() - t_train
            history.append({"step": step + 1, "kl": round(running, 4), "seconds": round(elapsed, 1),
                            "val_auc": {k: round(v, 4) for k, v in aucs.items()}})
            log(f"step {step + 1}/{steps}  KL {running:.4f}  val AUC "
                + "  ".join(f"{k} {v:.4f}" for k, v in aucs.items()) + f"  ({elapsed:.0f} s)")
    train_seconds = time.perf_counter() - t_train
    net.eval()
    # the recorded recipe's folds are scored by benchmarks/segmenter.py --folds; here a capped set
    full_val = validation_items(val_music + midi_val, val_noise, config=config,
                                max_music_segments=40 if recorded else None)
    final = evaluate(model, full_val)
    log("validation AUC (dominance): " + json.dumps({k: round(v, 4) for k, v in final["dominance"].items()}))
    log("validation AUC (presence):  " + json.dumps({k: round(v, 4) for k, v in final["presence"].items()}))
    model.training = {
        "command": "python -m blendfx.effects.segmenter.train " + " ".join(sys.argv[1:]),
        "seed": seed, "steps": steps, "batch": batch, "patch_windows": patch_windows, "lr": lr,
        "optimizer": optimizer, "targets": targets, "voicings": voicings,
        "midi_seconds": midi_seconds, "clean_share": clean_share, "noise_mix": noise_mix, "cycles": cycles,
        "init": init_record if start is not None else None,
        "recipe": recipe,
        "fold": ({"fold": fold, "folds": folds, "seed": fold_seed}
                 | ({"group": group, "groups": groups, "group_seed": group_seed}
                    if group is not None else {})
                 if recorded and fold is not None else None),
        "held_out": ({"music": list(hold_music), "noise": list(hold_noise)}
                     if recorded and fold is None else None),
        "augment": augment.to_dict() if recorded else None,
        "threads": threads, "torch": torch.__version__,
        "train_seconds": round(train_seconds, 1), "load_seconds": round(load_seconds, 1),
        "sources": split.describe(root),
        "rendered_midi": {"train": [c.name for c in midi_train], "val": [c.name for c in midi_val]},
        "labels": "window is music when E_music > E_noise; soft target E_music/(E_music+E_noise); "
                  "windows below the input image's floor (range_db under the mixture's loudest "
                  "pixel) or SILENCE_DB under the loudest window carry no label",
        "history": history,
        "val_auc_dominance": {k: round(v, 4) for k, v in final["dominance"].items()},
        "val_auc_presence": {k: round(v, 4) for k, v in final["presence"].items()},
    }
    if out is not None:
        path = model.save_pretrained(out)
        log(f"saved {path / 'segmenter.safetensors'} ({train_seconds:.0f} s of training)")
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blendfx.effects.segmenter.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="shared data folder (default: $BLENDFX_SHARED_DATA or ../shared/data)")
    parser.add_argument("--out", required=True, help="folder for the weights and their JSON config")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch-windows", type=int, default=None,
                        help="training patch length in window hops (default 17: 512 frames, "
                             "1.49 s; 49 with the context front end: 1024 frames, 2.97 s)")
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="adam")
    parser.add_argument("--no-midi", action="store_true", help="do not add music rendered from MIDI")
    parser.add_argument("--val-music", nargs="*", default=list(VALIDATION_MUSIC),
                        help="music file stems held out for validation")
    parser.add_argument("--dropout", type=float, default=SegmenterConfig.dropout)
    parser.add_argument("--hidden", type=int, default=SegmenterConfig.hidden)
    parser.add_argument("--linear-channel", action="store_true")
    parser.add_argument("--frontend", choices=["stft", "context"], default=None,
                        help="network: the paper's window CNN ('stft', default of the paper recipe) "
                             "or the per-band normalized CNN with ~3 s of context ('context', "
                             "default of the recorded recipe)")
    parser.add_argument("--full-band", action=argparse.BooleanOptionalAction, default=True,
                        help="context front end: every window also sees the whole spectrum's "
                             "features at its times (default: on)")
    parser.add_argument("--context-channels", type=int, nargs=4, default=None,
                        help="context front end: feature maps of its four convolution stages")
    parser.add_argument("--targets", choices=["soft", "hard"], default="soft")
    parser.add_argument("--init", default=None, help="weights folder to fine-tune from")
    parser.add_argument("--voicings", type=int, default=1,
                        help="renders of every training MIDI file, each with other random programs")
    parser.add_argument("--midi-seconds", type=float, default=30.0,
                        help="length in s of each training MIDI render")
    parser.add_argument("--clean-share", type=float, default=None,
                        help="share of music-only patches (and of noise-only ones); default 1/7")
    parser.add_argument("--cycles", type=int, default=1,
                        help="cosine learning-rate cycles (warm restarts, each at half the last peak)")
    parser.add_argument("--noise-mix", type=float, default=0.0,
                        help="probability that a patch's noise is the sum of two noise clips")
    parser.add_argument("--recipe", choices=["paper", "recorded"], default="paper",
                        help="paper: the shipped weights' recipe; recorded: recorded music as the "
                             "music class, the recording augmentations, whole-piece folds")
    parser.add_argument("--no-recording-chain", action="store_true",
                        help="recorded recipe: no rooms, compression, band limits, codecs or pitch "
                             "shifts (AugmentConfig.mixing_only; the noise sums and MIDI share stay)")
    parser.add_argument("--midi-share", type=float, default=None,
                        help="recorded recipe: share of patches whose music is rendered MIDI "
                             f"(default {AugmentConfig.midi_share})")
    parser.add_argument("--fold", default=None,
                        help="recorded recipe: the held-out fold K (0-based) or 'none' (default)")
    parser.add_argument("--folds", type=int, default=4, help="recorded recipe: number of folds")
    parser.add_argument("--fold-seed", type=int, default=0, help="seed of the fold assignment")
    parser.add_argument("--hold-music", nargs="*", default=[],
                        help="recorded recipe, --fold none: piece stems kept out of the training")
    parser.add_argument("--hold-noise", nargs="*", default=[],
                        help="recorded recipe, --fold none: noise classes (e.g. "
                             "nps/yellowstone_bison_grazing) kept out of the training")
    parser.add_argument("--group", type=int, default=None,
                        help="recorded recipe with --fold: train on this group of the fold's "
                             "training pieces and noise classes only (cross-fitting a stack)")
    parser.add_argument("--groups", type=int, default=2, help="number of groups of --group")
    parser.add_argument("--group-seed", type=int, default=0, help="seed of the group assignment")
    args = parser.parse_args(argv)
    try:
        fold = None if args.fold in (None, "none") else int(args.fold)
    except ValueError:
        parser.error(f"--fold must be a fold number or 'none', got {args.fold!r}")
    if args.fold is not None and args.recipe != "recorded":
        parser.error("--fold needs --recipe recorded")
    if (args.no_recording_chain or args.midi_share is not None) and args.recipe != "recorded":
        parser.error("--no-recording-chain and --midi-share need --recipe recorded")
    augment = AugmentConfig.mixing_only() if args.no_recording_chain else AugmentConfig()
    if args.midi_share is not None:
        if not 0.0 <= args.midi_share <= 1.0:
            parser.error(f"--midi-share must be within [0, 1], got {args.midi_share}")
        augment = replace(augment, midi_share=args.midi_share)
    frontend = args.frontend or ("context" if args.recipe == "recorded" else "stft")
    patch_windows = args.patch_windows or (49 if frontend == "context" else 17)
    extra = {"context_channels": tuple(args.context_channels)} if args.context_channels else {}
    if frontend == "context":
        extra["full_band"] = args.full_band

    try:
        train(args.data, args.out, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
              patch_windows=patch_windows, noise_mix=args.noise_mix, cycles=args.cycles,
              eval_every=args.eval_every, use_midi=not args.no_midi, threads=args.threads,
              optimizer=args.optimizer, val_music=args.val_music,
              targets=args.targets, init=args.init, voicings=args.voicings,
              midi_seconds=args.midi_seconds, clean_share=args.clean_share,
              recipe=args.recipe, fold=fold, folds=args.folds, fold_seed=args.fold_seed,
              hold_music=args.hold_music, hold_noise=args.hold_noise,
              group=args.group, groups=args.groups, group_seed=args.group_seed,
              augment=augment,
              config=None if args.init else SegmenterConfig(dropout=args.dropout, hidden=args.hidden,
                                                            linear_channel=args.linear_channel,
                                                            frontend=frontend, **extra))
    except BlendfxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
