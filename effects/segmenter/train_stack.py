"""Train the feature stack (issue 20) on top of a CNN's weights (seeded, CPU, minutes).

Run::

    # one fold of the 4-fold cross-validation over whole recorded pieces and noise classes
    python -m blendfx.effects.segmenter.train_stack --fold 0 --folds 4 --out /tmp/s0
    # the final weights on every piece (the pieces and noise classes named stay out)
    python -m blendfx.effects.segmenter.train_stack --fold none --out DIR \\
        --hold-music minimalism_n10_piano_novarina \\
        --hold-noise nps/yellowstone_bison_grazing nps/yellowstone_horse_drawn_wagon

The training windows come from ``--patches`` patches of 2.97 s drawn exactly as the recorded
recipe's CNN training draws them (:meth:`.train.MixtureSampler.augmented_batch`: recorded music
of the fold's training pieces, a quarter rendered MIDI, 1-3 noises of its training noise
classes, the recording chain of :mod:`.augment`, per-component EQ tilts, channel band limits;
a quarter music alone, a quarter noise alone, the rest mixed at +10 to -10 dB); each window's
features (:mod:`.features`), the base CNN's logit difference and its dominance label
(:func:`.data.window_targets`, silent windows dropped). At most ``--cap`` windows (seeded
draw) fit the stack: gradient-boosted trees by default (scikit-learn's
``HistGradientBoostingClassifier``, class-balanced, mixture windows weighted
``--mixture-weight`` times, its seeded early stopping; converted to torch tensors by
:func:`.stack.trees_from_sklearn`), or ``--model linear``/``mlp`` (:func:`.stack.fit_stack`);
the output folder holds the base CNN's tensors, the stack's (``stack.*``) and the config with
``stack`` set, so ``MusicNoiseSegmenter(weights=DIR)`` and ``benchmarks/segmenter.py --folds``
use it as any other weights.

``--cnn-noise SIGMA`` (and ``--cnn-noise-pure S``) add seeded Gaussian noise to the CNN logit
column of the training windows only: the base CNN heard the stack's training pieces, so there
its logit is far more reliable than on unheard music, and the trees would trust it too much
(the leak-free cross-validation's choice: 2 on mixtures, 1 on pure windows; README, issue 20).

``--cross-fit DIR_A DIR_B`` (with ``--fold K``) is the direct fix for that over-trust: two CNNs
trained by ``train --fold K --group 0`` and ``--group 1`` (each on one seeded half of the fold's
training pieces, noise classes and MIDI tunes, :func:`.data.fold_groups`) score the training
windows instead of the base CNN: each group's patches are drawn from that group's items alone
(music, noises and rendered tunes of one group) and their logit column comes from the *other*
group's CNN, which never heard any of them (checked from both CNNs' training metadata, and
every window's source clips are kept in the table). At inference the stack reads the base
CNN's logit as before. ``--cnn-noise`` may be combined with it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from blendfx.errors import BlendfxError, ParameterError
from sklearn.ensemble import HistGradientBoostingClassifier

from .augment import AugmentConfig, RecordingAugmenter
from .calibration import WindowScores
from .data import (
    SourceSplit,
    ValidationItem,
    fold_split,
    heard_held_out,
    item_samples,
    load_clips,
    render_midi_clips,
    shared_data_dir,
    window_targets,
)
from .features import FEATURE_NAMES, window_features
from .net import Segmenter, features_from_power, power, stft
from .stack import fit_stack, trees_from_sklearn
from .train import MixtureSampler

__all__ = ["WindowTable", "item_table", "table_scores", "cnn_fingerprint", "training_table",
           "cross_fitted_table", "heard_clips", "DEFAULT_INPUTS", "train_stack", "main"]

#: The stack's default inputs: every feature and the CNN's logit.
DEFAULT_INPUTS = (*FEATURE_NAMES, "cnn_logit")


@dataclass
class WindowTable:
    """Labelled windows: raw features ``(n, len(FEATURE_NAMES))``, the base CNN's logit
    difference, the dominance label, and (for scored items) condition, kind and source as in
    :class:`.calibration.WindowScores`."""

    features: np.ndarray
    cnn: np.ndarray
    labels: np.ndarray
    condition: np.ndarray
    kind: np.ndarray
    source: np.ndarray

    def inputs(self, names: Sequence[str]) -> np.ndarray:
        """The columns ``names`` (feature names or ``"cnn_logit"``) as ``(n, len(names))``."""
        cols = [self.cnn if n == "cnn_logit" else self.features[:, FEATURE_NAMES.index(n)]
                for n in names]
        return np.stack(cols, axis=1).astype(np.float32)

    def select(self, keep: np.ndarray) -> WindowTable:
        return WindowTable(*(getattr(self, f.name)[keep] for f in fields(WindowTable)))

    @staticmethod
    def concat(parts: Sequence[WindowTable]) -> WindowTable:
        return WindowTable(*(np.concatenate([getattr(p, f.name) for p in parts])
                             for f in fields(WindowTable)))

    def save(self, path: str | Path) -> None:
        """Write the table to an ``.npz`` file (strings as fixed-width text, no pickle)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        np.savez(path, **{k: a.astype(str) if a.dtype == object else a for k, a in arrays.items()})

    @staticmethod
    def load(path: str | Path) -> WindowTable:
        """A table written by :meth:`save` (or ``train_stack --table-cache``)."""
        with np.load(path) as d:
            return WindowTable(*(d[f.name].astype(object) if d[f.name].dtype.kind == "U"
                                 else d[f.name] for f in fields(WindowTable)))


def _windows(base: Segmenter, music_power, noise_power, mix=None):
    """Features, CNN logit and label of the labelled windows of one patch's component powers
    (``mix``: the mixture's power, default their sum)."""
    c = base.config
    mix = music_power + noise_power if mix is None else mix
    logits = base.window_logits(features_from_power(mix, c))
    cnn = (logits[1] - logits[0]).cpu()
    feats = window_features(mix, cnn.shape[-1])
    _, label, weight = (t[0] for t in window_targets(music_power[None], noise_power[None], c,
                                                      mix[None]))
    cols = min(cnn.shape[-1], label.shape[-1])
    keep = weight[:, :cols] > 0
    return (feats[:, :, :cols].permute(1, 2, 0)[keep].numpy(), cnn[:, :cols][keep].numpy(),
            label[:, :cols][keep].numpy())


def item_table(base: Segmenter, items: Sequence[ValidationItem]) -> WindowTable:
    """The windows of fixed validation items (the same windows, labels, conditions, kinds and
    sources as :func:`.calibration.window_scores`)."""
    c = base.config
    parts: dict[str, list] = {f.name: [] for f in fields(WindowTable)}
    for item in items:
        ms, ns = (power(stft(torch.as_tensor(x), c.n_fft, c.hop_length))
                  for x in (item.music, item.noise))
        # the mixture's power from its own STFT, as the segmenter computes it
        mix = power(stft(torch.as_tensor(item.music + item.noise), c.n_fft, c.hop_length))
        for key, value in zip(("features", "cnn", "labels"), _windows(base, ms, ns, mix),
                              strict=True):
            parts[key].append(value)
        kind = ("music" if not item.noise.any() else "noise" if not item.music.any()
                else "mixture")
        source = item.name.split("+")[0].split("#")[0] if kind != "noise" else item.name.split("#")[0]
        n = parts["labels"][-1].size
        for key, value in (("condition", item.condition), ("kind", kind), ("source", source)):
            parts[key].append(np.full(n, value, dtype=object))
    return WindowTable(*(np.concatenate(parts[f.name]) for f in fields(WindowTable)))


def table_scores(model: Segmenter, table: WindowTable) -> WindowScores:
    """``model``'s scores of the windows of ``table`` without running it on audio: the feature
    stack's logit from the table's features and CNN logit (the CNN's own logit when ``model``
    has no stack). The table must come from ``model``'s CNN (:func:`item_table`; see
    :func:`cnn_fingerprint`); then the scores equal :func:`.calibration.window_scores` on the
    same items (the same windows, labels and order)."""
    if model.stack is None:
        logits = table.cnn.astype(np.float64)
    else:
        with torch.inference_mode():
            logits = model.stack(torch.as_tensor(table.inputs(model.stack.inputs))).numpy()
    return WindowScores(np.asarray(logits, np.float64), table.labels.astype(np.float64),
                        table.condition, table.kind, table.source)


def cnn_fingerprint(model: Segmenter) -> str:
    """A short hash of what a window table of :func:`item_table` depends on besides its items:
    the CNN's tensors and config (not its stack nor its calibration) and the feature names."""
    h = hashlib.sha256()
    cfg = {k: v for k, v in model.config.to_dict().items()
           if k not in ("stack", "temperature", "logit_bias")}
    h.update(json.dumps([cfg, list(FEATURE_NAMES)], sort_keys=True).encode())
    for name, t in sorted(model.net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _gain_power(spec, db):
    """``|spec|**2`` times a per-bin gain in dB ``(bins,)``."""
    return power(spec) * (10.0 ** (db / 10.0))[:, None]


def training_table(base: Segmenter, sampler: MixtureSampler, rng: np.random.Generator,
                   patches: int, batch: int = 8, log=print, sources: bool = False) -> WindowTable:
    """The windows of ``patches`` augmented training patches of ``sampler`` (kind "music",
    "noise" or "mixture"; condition "train"; source "", or with ``sources`` the names of the
    clips the patch was cut from: ``"music|noise+noise"``, see :func:`drawn_clips`)."""
    c = base.config
    freqs = torch.arange(c.bins, dtype=torch.float32) * c.sample_rate / c.n_fft
    octaves = torch.log2(freqs.clamp_min(60.0) / 1000.0)
    feats, cnns, labels, kinds, names = [], [], [], [], []
    t0 = time.perf_counter()
    for start in range(0, patches, batch):
        drawn: list = []
        music, noise, tilts, band = sampler.augmented_batch(rng, min(batch, patches - start),
                                                            drawn=drawn)
        for b in range(music.shape[0]):
            # the CNN training's per-component EQ tilts and the channel's response, in power
            tm = (float(tilts[b, 0]) * octaves).clamp(-15.0, 15.0) + torch.from_numpy(band[b])
            tn = (float(tilts[b, 1]) * octaves).clamp(-15.0, 15.0) + torch.from_numpy(band[b])
            mp = _gain_power(stft(torch.from_numpy(music[b]), c.n_fft, c.hop_length), tm)
            np_ = _gain_power(stft(torch.from_numpy(noise[b]), c.n_fft, c.hop_length), tn)
            f, z, y = _windows(base, mp, np_)
            kind = ("music" if not noise[b].any() else "noise" if not music[b].any()
                    else "mixture")
            feats.append(f)
            cnns.append(z)
            labels.append(y)
            kinds.append(np.full(y.size, kind, dtype=object))
            tag = "+".join(drawn[b][0]) + "|" + "+".join(drawn[b][1]) if sources else ""
            names.append(np.full(y.size, tag, dtype=object))
        if (start // batch) % 25 == 0:
            log(f"  {start + music.shape[0]}/{patches} patches ({time.perf_counter() - t0:.0f} s)")
    n = sum(y.size for y in labels)
    return WindowTable(np.concatenate(feats), np.concatenate(cnns), np.concatenate(labels),
                       np.full(n, "train", dtype=object), np.concatenate(kinds),
                       np.concatenate(names))


def drawn_clips(source: str) -> set[str]:
    """The clip names in a training window's ``source`` tag of :func:`training_table` (MIDI
    voicings ``stem~k`` as ``stem``)."""
    return {name.split("~")[0] for part in source.split("|") for name in part.split("+") if name}


def heard_clips(training: dict) -> set[str]:
    """File stems of every music piece, noise file and MIDI tune a CNN trained on (its training
    metadata's ``sources``), the names :func:`drawn_clips` compares against."""
    sources = (training or {}).get("sources") or {}
    return {Path(p).stem for key in ("train_music", "train_noise", "train_midi")
            for p in sources.get(key, [])}


def cross_fitted_table(cnns: Sequence[Segmenter], samplers: Sequence[MixtureSampler],
                       rng: np.random.Generator, patches: int, batch: int = 8,
                       log=print) -> WindowTable:
    """Training windows whose CNN logit comes from a CNN that never heard them.

    ``samplers[g]`` draws from group ``g``'s clips only (music, noises and MIDI of one group);
    its ``patches // len(samplers)`` patches (the first groups one more for the remainder) are
    scored by ``cnns[(g + 1) % len(cnns)]``, a CNN trained on another group. Every window keeps
    its clips' names in ``source`` (:func:`training_table` with ``sources``) and its scorer in
    ``condition`` (``"train:cnnH"``).

    Raises
    ------
    ParameterError
        Fewer than 2 groups, unequal lists, or a patch cut from a clip its scorer trained on
        (:func:`heard_clips` of the scorer's metadata): its logit would not be held out.
    """
    if len(cnns) < 2 or len(cnns) != len(samplers):
        raise ParameterError(f"cross-fitting needs one CNN per group and at least 2 groups, got "
                             f"{len(cnns)} CNNs and {len(samplers)} samplers")
    n = len(samplers)
    parts = []
    for g, sampler in enumerate(samplers):
        h = (g + 1) % n
        share = patches // n + (1 if g < patches % n else 0)
        log(f"group {g}: {share} patches scored by CNN {h}")
        part = training_table(cnns[h], sampler, rng, share, batch, log, sources=True)
        heard = heard_clips(cnns[h].training)
        leaked = sorted({c for tag in set(part.source) for c in drawn_clips(tag)} & heard)
        if leaked:
            raise ParameterError(f"cross-fitting: CNN {h} trained on {leaked}, which group {g}'s "
                                 f"patches were cut from (its logit would not be held out)")
        part.condition = np.full(part.labels.size, f"train:cnn{h}", dtype=object)
        parts.append(part)
    return WindowTable.concat(parts)


def fold_sampler(root: Path, fold: int | None, folds: int, fold_seed: int, seed: int,
                 hold_music: Sequence[str] = (), hold_noise: Sequence[str] = (),
                 midi_seconds: float = 15.0, clean_share: float = 0.25, use_midi: bool = True,
                 config=None, group: int | None = None, groups: int = 2, group_seed: int = 0):
    """The recorded recipe's :class:`MixtureSampler` over a fold's training sources (2.97 s
    patches; with ``group``, over that group's only, see :func:`.data.fold_split`), and the
    split."""
    split = fold_split(root, fold, folds, fold_seed, midi=use_midi, hold_music=hold_music,
                       hold_noise=hold_noise, group=group, groups=groups, group_seed=group_seed)
    music = load_clips(split.train_music, stereo=True)
    noise = load_clips(split.train_noise)
    midi = render_midi_clips(split.train_midi, max_seconds=midi_seconds) if use_midi else []
    samples = item_samples(config, 49)
    sampler = MixtureSampler(music, noise, samples, clean_share,
                             augmenter=RecordingAugmenter(AugmentConfig(), 44100, seed), midi=midi)
    return sampler, split


def _cross_fit_cnns(root: Path, dirs: Sequence[str | Path], fold: int, folds: int,
                    fold_seed: int, use_midi: bool) -> tuple[list[Segmenter], int]:
    """The group CNNs of ``dirs`` ordered by group, and their group seed, checked against the
    fold: the same fold, folds and seeds, every group once, trained on exactly its group's
    sources, and no group's pieces or noise classes heard by the CNN that scores them
    (:func:`.data.heard_held_out`)."""
    cnns = [Segmenter.from_pretrained(d) for d in dirs]
    groups = len(cnns)
    if groups < 2:
        raise ParameterError(f"cross_fit needs the CNNs of at least 2 groups, got {groups}")
    by_group: dict[int, Segmenter] = {}
    for d, cnn in zip(dirs, cnns, strict=True):
        rec = (cnn.training or {}).get("fold") or {}
        want = {"fold": fold, "folds": folds, "seed": fold_seed, "groups": groups}
        if any(rec.get(k) != v for k, v in want.items()) or "group" not in rec:
            raise ParameterError(f"cross_fit weights {d} were not trained with --fold {fold} "
                                 f"--folds {folds} --fold-seed {fold_seed} --group G --groups "
                                 f"{groups} (their fold record: {rec or None})")
        if cnn.stack is not None:
            raise ParameterError(f"cross_fit weights {d} carry a feature stack: give the CNN's")
        by_group[rec["group"]] = cnn
    seeds = {c.training["fold"].get("group_seed", 0) for c in cnns}
    if sorted(by_group) != list(range(groups)) or len(seeds) != 1:
        raise ParameterError(f"cross_fit needs one CNN of every group 0..{groups - 1} with one "
                             f"group seed, got groups {sorted(by_group)} and seeds {sorted(seeds)}")
    ordered = [by_group[g] for g in range(groups)]
    group_seed = seeds.pop()
    for g in range(groups):
        split = fold_split(root, fold, folds, fold_seed, midi=use_midi, group=g, groups=groups,
                           group_seed=group_seed).describe(root)
        trained = ordered[g].training.get("sources") or {}
        for key in ("train_music", "train_noise") + (("train_midi",) if use_midi else ()):
            if sorted(trained.get(key, [])) != sorted(split[key]):
                raise ParameterError(f"cross_fit: the group {g} CNN's {key} differ from the "
                                     f"fold's group {g} (the data or the split changed)")
        scorer = ordered[(g + 1) % groups]
        items = SourceSplit(val_music=[root / p for p in split["train_music"]],
                            val_noise=[root / p for p in split["train_noise"]])
        heard = heard_held_out(scorer.training, items, root)
        if heard["music"] or heard["noise"]:
            raise ParameterError(f"cross_fit: the CNN scoring group {g} trained on its "
                                 f"pieces {heard['music']} / noise classes {heard['noise']}")
    return ordered, group_seed


def train_stack(data: str | Path | None = None, out: str | Path | None = None, *,
                base: str | Path | None = None, fold: int | None = None, folds: int = 4,
                fold_seed: int = 0, seed: int = 0, patches: int = 1200, model_kind: str = "trees",
                trees: int = 50, leaves: int = 15, mixture_weight: float = 3.0,
                cap: int = 300_000, hidden: int = 8, cnn_noise: float = 0.0,
                cnn_noise_pure: float | None = None,
                l2: float = 1e-3, inputs: Sequence[str] = DEFAULT_INPUTS,
                hold_music: Sequence[str] = (), hold_noise: Sequence[str] = (),
                midi_seconds: float = 15.0, use_midi: bool = True, threads: int = 1,
                table: WindowTable | None = None, table_cache: str | Path | None = None,
                cross_fit: Sequence[str | Path] | None = None, log=print) -> Segmenter:
    """Fit the stack on a fold's (or every) training source and (with ``out``) save it with the
    base CNN's weights.

    Parameters
    ----------
    model_kind : {"trees", "linear", "mlp"}
        Gradient-boosted trees (``trees`` boosting iterations at most, ``leaves`` leaves each,
        learning rate 0.1, L2 1.0, early stopping on a seeded 10 % of the windows), logistic
        regression or a tanh MLP of ``hidden`` units (L2 ``l2``).
    mixture_weight : float
        Weight of the mixture windows against the music-alone and noise-alone ones.
    cap : int
        At most this many training windows (a seeded draw) fit the stack.
    cnn_noise : float
        Standard deviation (logit units) of seeded Gaussian noise added to the CNN's logit
        column of the training windows only (0: none; inference always sees the plain logit).
        The base CNN trained on the stack's training pieces, so on those windows its logit is
        far more reliable than on unheard music (AUC 0.99 against 0.89); the noise keeps the
        trees from trusting it that much. Needs ``"cnn_logit"`` among ``inputs``.
    cnn_noise_pure : float, optional
        The noise's standard deviation on the music-alone and noise-alone windows instead
        (``cnn_noise`` then applies to the mixtures only); default ``cnn_noise`` on every window.
    table : WindowTable, optional
        Skips drawing the training windows (they must come from the same fold).
    table_cache : path, optional
        An ``.npz`` file: the training windows are read from it when it exists (written by an
        earlier run with the same fold, seed, patches and data), else drawn and written to it,
        so that other stack settings refit in seconds.
    cross_fit : sequence of path, optional
        With a ``fold``: the weights folders of the fold's group CNNs (``train --fold K --group
        G --groups N``, one per group, any order; their metadata must name this fold, folds
        and fold seed). The training windows are then drawn group by group and scored by
        another group's CNN (:func:`cross_fitted_table`), never by one that heard their
        piece, noise class or tune; ``base`` still gives the logit at inference.
    """
    if model_kind not in ("trees", "linear", "mlp"):
        raise ParameterError(f"model_kind must be 'trees', 'linear' or 'mlp', got {model_kind!r}")
    if mixture_weight <= 0 or cap < 1000 or patches < 1:
        raise ParameterError(f"mixture_weight must be > 0, cap >= 1000 and patches >= 1; got "
                             f"{mixture_weight}, {cap}, {patches}")
    cnn_noise_pure = cnn_noise if cnn_noise_pure is None else cnn_noise_pure
    for name, value in (("cnn_noise", cnn_noise), ("cnn_noise_pure", cnn_noise_pure)):
        if not (np.isfinite(value) and 0.0 <= value <= 100.0):
            raise ParameterError(f"{name} must be within [0, 100] (logit units), got {value}")
    if (cnn_noise or cnn_noise_pure) and "cnn_logit" not in inputs:
        raise ParameterError("cnn_noise > 0 needs the 'cnn_logit' input (not with --no-cnn)")
    if cross_fit and (fold is None or "cnn_logit" not in inputs):
        raise ParameterError("cross_fit needs a fold and the 'cnn_logit' input (not with --no-cnn)")
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    root = shared_data_dir(data)
    model = Segmenter.from_pretrained(base)
    if model.stack is not None:
        raise ParameterError(f"base weights {base} already carry a feature stack")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    split = fold_split(root, fold, folds, fold_seed, midi=use_midi, hold_music=hold_music,
                       hold_noise=hold_noise)
    # held-out pieces and noise classes the base CNN trained on: its logit would carry them
    # into the stack's held-out scores (the shipped CNN heard some of every fold's items)
    heard = heard_held_out(model.training, split, root)
    if heard["music"] or heard["noise"]:
        log(f"warning: the base CNN ({base or 'shipped'}) trained on held-out pieces "
            f"{heard['music']} and noise classes {heard['noise']}: scores on this split are "
            f"not held out for it (train the base with the same --fold, or use --no-cnn)")
    cross, group_seed = (_cross_fit_cnns(root, cross_fit, fold, folds, fold_seed, use_midi)
                         if cross_fit else (None, 0))
    cache = Path(table_cache) if table_cache else None
    if table is None and cache is not None and cache.is_file():
        table = WindowTable.load(cache)
        log(f"training windows from {cache}")
        if cross is not None and not all(str(c).startswith("train:cnn") for c in set(table.condition)):
            raise ParameterError(f"table_cache {cache} holds windows scored by one CNN, not "
                                 f"cross-fitted ones: give another file")
    if table is None and cross is not None:
        samplers = []
        for g in range(len(cross)):
            sampler, _ = fold_sampler(root, fold, folds, fold_seed, seed, (), (), midi_seconds,
                                      use_midi=use_midi, config=model.config, group=g,
                                      groups=len(cross), group_seed=group_seed)
            samplers.append(sampler)
            log(f"group {g}: {len(sampler.music)} pieces, {len(sampler.midi)} MIDI renders, "
                f"{len(sampler.noise)} noise files ({time.perf_counter() - t0:.0f} s)")
        table = cross_fitted_table(cross, samplers, rng, patches, log=log)
        if cache is not None:
            table.save(cache)
    if table is None:
        sampler, split = fold_sampler(root, fold, folds, fold_seed, seed, hold_music, hold_noise,
                                      midi_seconds, use_midi=use_midi, config=model.config)
        log(f"data: {len(sampler.music)} pieces, {len(sampler.midi)} MIDI renders, "
            f"{len(sampler.noise)} noise files ({time.perf_counter() - t0:.0f} s)")
        table = training_table(model, sampler, rng, patches, log=log)
        if cache is not None:
            table.save(cache)
    t_fit = time.perf_counter()
    if table.labels.size > cap:
        keep = np.random.default_rng(seed).choice(table.labels.size, cap, replace=False)
        table = table.select(np.sort(keep))
    weights = np.where(table.kind == "mixture", mixture_weight, 1.0)
    x = table.inputs(inputs)
    if cnn_noise or cnn_noise_pure:  # the CNN logit nearer its reliability on unheard music
        j = list(inputs).index("cnn_logit")
        sigma = np.where(table.kind == "mixture", cnn_noise, cnn_noise_pure)
        x[:, j] += (sigma * np.random.default_rng(seed + 1).standard_normal(x.shape[0])
                    ).astype(np.float32)
    fitted = {}
    if model_kind == "trees":
        clf = HistGradientBoostingClassifier(max_iter=trees, learning_rate=0.1,
                                             max_leaf_nodes=leaves, l2_regularization=1.0,
                                             class_weight="balanced", random_state=seed)
        clf.fit(x, table.labels, sample_weight=weights)
        stack = trees_from_sklearn(clf, inputs)
        fitted = {"trees": int(clf.n_iter_), "early_stopping": bool(clf.do_early_stopping_)}
    else:
        stack = fit_stack(x, table.labels, inputs,
                          hidden=hidden if model_kind == "mlp" else 0, l2=l2, seed=seed,
                          weights=weights)
    fit_seconds = time.perf_counter() - t_fit
    model.stack = stack
    model.config = replace(model.config, stack=stack.to_dict())
    model.training = {
        "command": "python -m blendfx.effects.segmenter.train_stack " + " ".join(sys.argv[1:]),
        "recipe": "feature-stack", "seed": seed, "patches": patches, "model": model_kind,
        "max_trees": trees, "leaves": leaves, "mixture_weight": mixture_weight, "cap": cap,
        "hidden": hidden, "l2": l2, "cnn_noise": cnn_noise, "cnn_noise_pure": cnn_noise_pure,
        **fitted,
        "inputs": list(inputs), "windows": int(table.labels.size),
        "fold": {"fold": fold, "folds": folds, "seed": fold_seed} if fold is not None else None,
        "held_out": {"music": list(hold_music), "noise": list(hold_noise)} if fold is None else None,
        "augment": AugmentConfig().to_dict(), "midi_seconds": midi_seconds,
        "train_seconds": round(time.perf_counter() - t0, 1), "fit_seconds": round(fit_seconds, 1),
        "threads": threads, "torch": torch.__version__,
        "sources": split.describe(root),
        "labels": "window is music when E_music > E_noise (dominance); windows below the "
                  "input image's floor or SILENCE_DB under the loudest window dropped",
        "base": {"path": str(base) if base else "shipped", "training": model.training},
        "cross_fit": ([{"path": str(d), "group": c.training["fold"]["group"],
                        "sha256": cnn_fingerprint(c), "training": c.training}
                       for d, c in zip(cross_fit, cross, strict=True)] if cross else None),
        "base_heard_held_out": heard,
    }
    if out is not None:
        model.save_pretrained(out)
        log(f"saved {out} ({model.training['train_seconds']} s)")
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blendfx.effects.segmenter.train_stack",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="shared data folder")
    parser.add_argument("--out", required=True, help="folder for the weights and their config")
    parser.add_argument("--base", default=None, help="CNN weights folder (default: shipped)")
    parser.add_argument("--fold", default="none", help="held-out fold K or 'none' (default)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--fold-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patches", type=int, default=1200, help="training patches of 2.97 s")
    parser.add_argument("--model", choices=["trees", "linear", "mlp"], default="trees")
    parser.add_argument("--trees", type=int, default=50, help="boosting iterations at most")
    parser.add_argument("--leaves", type=int, default=15, help="leaves per tree")
    parser.add_argument("--mixture-weight", type=float, default=3.0,
                        help="weight of mixture windows against music-alone and noise-alone ones")
    parser.add_argument("--cap", type=int, default=300_000, help="training windows at most")
    parser.add_argument("--hidden", type=int, default=8, help="--model mlp: tanh units")
    parser.add_argument("--l2", type=float, default=1e-3, help="linear and mlp: L2 penalty")
    parser.add_argument("--no-cnn", action="store_true", help="features only, no CNN logit input")
    parser.add_argument("--cnn-noise", type=float, default=0.0,
                        help="std (logits) of seeded Gaussian noise on the CNN logit of the "
                             "training windows (default 0; the leak-free CV uses 2)")
    parser.add_argument("--cnn-noise-pure", type=float, default=None,
                        help="the noise's std on music-alone and noise-alone windows instead "
                             "(--cnn-noise then on mixtures only; the leak-free CV uses 1)")
    parser.add_argument("--midi-seconds", type=float, default=15.0)
    parser.add_argument("--no-midi", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table-cache", default=None,
                        help="npz file of the training windows: read when it exists, else written")
    parser.add_argument("--cross-fit", nargs="+", default=None, metavar="DIR",
                        help="with --fold K: the fold's group CNNs (train --fold K --group G), "
                             "which score the training windows of the other groups' items")
    parser.add_argument("--hold-music", nargs="*", default=[])
    parser.add_argument("--hold-noise", nargs="*", default=[])
    args = parser.parse_args(argv)
    try:
        fold = None if args.fold == "none" else int(args.fold)
    except ValueError:
        parser.error(f"--fold must be a fold number or 'none', got {args.fold!r}")
    inputs = FEATURE_NAMES if args.no_cnn else DEFAULT_INPUTS
    try:
        model = train_stack(args.data, args.out, base=args.base, fold=fold, folds=args.folds,
                            fold_seed=args.fold_seed, seed=args.seed, patches=args.patches,
                            model_kind=args.model, trees=args.trees, leaves=args.leaves,
                            mixture_weight=args.mixture_weight, cap=args.cap,
                            hidden=args.hidden, l2=args.l2, inputs=inputs,
                            cnn_noise=args.cnn_noise, cnn_noise_pure=args.cnn_noise_pure,
                            table_cache=args.table_cache, cross_fit=args.cross_fit,
                            hold_music=args.hold_music, hold_noise=args.hold_noise,
                            midi_seconds=args.midi_seconds, use_midi=not args.no_midi,
                            threads=args.threads)
    except BlendfxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: model.training[k] for k in ("windows", "train_seconds", "fit_seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
