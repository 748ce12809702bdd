"""Data for the music/noise segmenter: sources, the split by file, mixtures, labels, AUC.

Shared by the training script, the tests and the benchmark so that all three label and score
windows the same way.

Sources (``../shared/data``, never copied): the music excerpts in ``music/``, the ESC-10 clips in
``noise/esc10/`` and the long noise beds in ``noise/long/``, plus, when the Composer's
``render_midi`` exists (issue 4), music rendered from ``midi/``. The split is **by source file**:
no file contributes to both training and validation (:func:`source_split`).

Labels: a window (64 bins x 256 frames) is *music* when the music's energy in it exceeds the
noise's, ``E_music > E_noise``, measured on the separate components before mixing (the STFT is
linear, so the mixture is exactly their sum). Training uses the soft target
``E_music / (E_music + E_noise)`` (the music's share, i.e. a Wiener gain over the window), the AUC
the hard label. Windows more than :data:`SILENCE_DB` below the loudest window of their item, and
windows whose mean power lies below the network's input range (more than ``range_db`` below the
loudest pixel of the mixture, the floor of the image the network sees), carry neither music nor
noise and are left out of both (weight 0). The paper describes no such rule (it labels every
window by the clip it comes from); without it, near-silent windows -- the empty upper bands of a
mellow rendered voice, the pauses between barks -- would be scored as music or noise although the
network's input there is blank.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np
import torch
from blendfx.audio_io import audio_info, read_audio
from blendfx.effects.composer import render_midi
from blendfx.errors import ParameterError
from scipy.stats import rankdata

from .net import Segmenter, SegmenterConfig, power, stft

__all__ = [
    "SNRS",
    "SILENCE_DB",
    "SourceSplit",
    "Clip",
    "ValidationItem",
    "shared_data_dir",
    "source_split",
    "music_pieces",
    "noise_classes",
    "fold_split",
    "heard_held_out",
    "stratified_folds",
    "spread_segments",
    "load_clips",
    "render_midi_clips",
    "noise_gain",
    "window_targets",
    "item_samples",
    "validation_items",
    "evaluate",
    "roc_auc",
]

#: The conditions of the training mixtures and of ``auc_by_snr``: clean clips, then SNR in dB.
SNRS: tuple[str | float, ...] = ("clean", 10.0, 5.0, 0.0, -5.0, -10.0)
#: Windows this far (dB) below their item's loudest window are silence, not music nor noise.
SILENCE_DB = 60.0
#: Held out for validation (file stems). Music: none of the three recorded excerpts by default
#: (there are only three; ``--val-music`` holds one out for the leave-one-piece-out estimate);
#: MIDI: every fifth file of ``midi/``, rendered (the Slakh arrangement ``stems/*/all_src.mid``
#: always trains); noise: the last two clips of every ESC-10 class by file name and one of the
#: two long beds.
VALIDATION_MUSIC: tuple[str, ...] = ()
VALIDATION_LONG_NOISE = ("dude_miaowing",)
VALIDATION_ESC_PER_CLASS = 2


def shared_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The shared data folder: ``path``, else ``$BLENDFX_SHARED_DATA``, else ``../shared/data``.

    ``../shared/data`` is looked up beside the checkout holding this package, then beside the
    current directory.
    """
    if path is not None:
        root = Path(path)
    elif os.environ.get("BLENDFX_SHARED_DATA"):
        root = Path(os.environ["BLENDFX_SHARED_DATA"])
    else:
        beside_repo = Path(__file__).resolve().parents[2] / "shared" / "data"
        root = beside_repo if beside_repo.is_dir() else Path("..") / "shared" / "data"
    if not (root / "music").is_dir() or not (root / "noise").is_dir():
        raise ParameterError(f"shared data folder {root} has no music/ and noise/ folders; pass "
                             f"--data or set BLENDFX_SHARED_DATA")
    return root


@dataclass
class SourceSplit:
    """Source files for training and validation (paths; no file in both lists of a kind)."""

    train_music: list[Path] = field(default_factory=list)
    val_music: list[Path] = field(default_factory=list)
    train_noise: list[Path] = field(default_factory=list)
    val_noise: list[Path] = field(default_factory=list)
    train_midi: list[Path] = field(default_factory=list)
    val_midi: list[Path] = field(default_factory=list)

    def describe(self, root: Path) -> dict[str, list[str]]:
        """The split as relative path lists (for the training metadata)."""
        return {k: [str(p.relative_to(root)) for p in v] for k, v in vars(self).items()}


def source_split(root: str | os.PathLike[str] | None = None, midi: bool = True,
                 val_music: Sequence[str] = VALIDATION_MUSIC) -> SourceSplit:
    """Split the shared sources by file.

    Parameters
    ----------
    root : path, optional
        The shared data folder (see :func:`shared_data_dir`).
    midi : bool
        List the MIDI files too (every fifth one is held out).
    val_music : sequence of str
        Stems of the music files held out (default :data:`VALIDATION_MUSIC`).
    """
    root = shared_data_dir(root)
    split = SourceSplit()
    for p in sorted((root / "music").glob("*.ogg")):
        (split.val_music if p.stem in val_music else split.train_music).append(p)
    for folder in sorted(d for d in (root / "noise" / "esc10").iterdir() if d.is_dir()):
        clips = sorted(folder.glob("*.ogg"))
        split.train_noise += clips[:-VALIDATION_ESC_PER_CLASS]
        split.val_noise += clips[-VALIDATION_ESC_PER_CLASS:]
    for p in sorted((root / "noise" / "long").glob("*.wav")):
        (split.val_noise if p.stem in VALIDATION_LONG_NOISE else split.train_noise).append(p)
    if midi and (root / "midi").is_dir():
        tunes = sorted((root / "midi").rglob("*.mid"))
        split.val_midi = tunes[4::5]
        split.train_midi = [t for t in tunes if t not in split.val_midi]
        # the one full multi-instrument arrangement (drums, bass, guitars, piano, strings)
        split.train_midi += sorted((root / "stems").glob("*/all_src.mid"))
    return split


#: Audio file suffixes of the recorded music folders.
AUDIO_SUFFIXES = (".ogg", ".mp3", ".flac", ".wav")


def music_pieces(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The recorded music pieces: ``music/`` (3) and ``music_cc/`` (16), by path.

    One file is one piece (the unit a fold holds out whole). Sorted by folder, then name.
    """
    root = shared_data_dir(root)
    return [p for folder in ("music", "music_cc") if (root / folder).is_dir()
            for p in sorted((root / folder).iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES]


def noise_classes(root: str | os.PathLike[str] | None = None) -> dict[str, list[Path]]:
    """The noise classes a fold holds out whole: each ESC-10 folder (``esc10/dog_bark`` ...)
    and each long recording of ``noise/long`` and ``noise/nps`` (its own kind of sound)."""
    root = shared_data_dir(root)
    classes: dict[str, list[Path]] = {}
    for folder in sorted(d for d in (root / "noise" / "esc10").iterdir() if d.is_dir()):
        classes[f"esc10/{folder.name}"] = sorted(p for p in folder.iterdir()
                                                 if p.suffix.lower() in AUDIO_SUFFIXES)
    for kind in ("long", "nps"):
        if (root / "noise" / kind).is_dir():
            for p in sorted((root / "noise" / kind).iterdir()):
                if p.suffix.lower() in AUDIO_SUFFIXES:
                    classes[f"{kind}/{p.stem}"] = [p]
    return classes


def heard_held_out(training: dict, split: SourceSplit,
                   root: str | os.PathLike[str] | None = None) -> dict[str, list[str]]:
    """The held-out recorded pieces and noise classes of ``split`` that a model trained on.

    Follows the model's training metadata (the ``training`` dict saved beside its weights): its
    own ``sources``, and those of the weights it was built on (``base``: a feature stack's CNN;
    ``cross_fit``: the CNNs that scored its training windows) or fine-tuned from (``init``),
    recursively. A noise class counts as heard when any of its
    files trained (ESC-10 classes are held out whole by :func:`fold_split`, file by file by
    :func:`source_split`).

    Parameters
    ----------
    training : dict
        A model's training metadata (``Segmenter.training``).
    split : SourceSplit
        The split whose ``val_music`` and ``val_noise`` are checked (e.g. a fold's).
    root : path, optional
        The shared data folder (see :func:`shared_data_dir`).

    Returns
    -------
    dict
        ``{"music": [...], "noise": [...]}``: relative paths of the held-out pieces and names of
        the held-out noise classes (see :func:`noise_classes`) that trained the model or any
        model it was built on; both empty for an honest held-out score.
    """
    root = shared_data_dir(root)
    trained: set[str] = set()
    stack = [training]
    while stack:
        t = stack.pop()
        if not isinstance(t, dict):
            continue
        sources = t.get("sources") or {}
        trained.update(sources.get("train_music", []))
        trained.update(sources.get("train_noise", []))
        stack.extend((t.get(key) or {}).get("training") for key in ("base", "init"))
        stack.extend(c.get("training") for c in t.get("cross_fit") or [] if isinstance(c, dict))
    class_of = {str(f.relative_to(root)): name for name, files in noise_classes(root).items()
                for f in files}
    held_classes = {class_of.get(str(p.relative_to(root)), str(p.relative_to(root)))
                    for p in split.val_noise}
    heard_classes = {class_of.get(f, f) for f in trained}
    return {"music": sorted(str(p.relative_to(root)) for p in split.val_music
                            if str(p.relative_to(root)) in trained),
            "noise": sorted(held_classes & heard_classes)}


def stratified_folds(names: Sequence[str], lengths: Sequence[float], folds: int,
                      rng: np.random.Generator) -> dict[str, int]:
    """Fold of every name: sorted by length, each run of ``folds`` consecutive names gets a
    seeded permutation of the folds (every fold gets one long, one shorter ... item: the
    folds' sizes and total lengths stay close)."""
    order = sorted(range(len(names)), key=lambda i: (-lengths[i], names[i]))
    out: dict[str, int] = {}
    for start in range(0, len(order), folds):
        perm = rng.permutation(folds)
        for k, i in enumerate(order[start:start + folds]):
            out[names[i]] = int(perm[k])
    return out


def fold_split(root: str | os.PathLike[str] | None = None, fold: int | None = 0, folds: int = 4,
               seed: int = 0, midi: bool = True, hold_music: Sequence[str] = (),
               hold_noise: Sequence[str] = (), group: int | None = None, groups: int = 2,
               group_seed: int = 0) -> SourceSplit:
    """Whole-piece k-fold split over the recorded music, with noise classes held out too.

    Every recorded piece (:func:`music_pieces`) and every noise class (:func:`noise_classes`)
    is in exactly one of ``folds`` folds; fold ``fold`` is held out (``val_music``/``val_noise``:
    all of its pieces and all files of its noise classes), the others train. The assignment is
    stratified by length (see :func:`stratified_folds`; durations from the files' headers) and
    seeded: the same ``seed`` gives the same folds. MIDI (augmentation only) keeps the split of
    :func:`source_split` (every fifth tune held out).

    With ``fold=None`` (the final model, after the cross-validation): every recorded piece and
    the ``noise/nps`` recordings train; validation keeps :func:`source_split`'s held-out noise
    (the last two ESC-10 clips of every class, one long bed) and rendered MIDI tunes, plus the
    pieces named in ``hold_music`` and the noise classes in ``hold_noise``, which do not train
    (e.g. the recording a test scores the final weights on).

    Parameters
    ----------
    fold : int or None
        The held-out fold, ``0 <= fold < folds``; None holds out no recorded piece.
    folds : int
        Number of folds, 2 to the number of noise classes.
    seed : int
        Seeds the fold assignment.
    hold_music, hold_noise : sequence of str
        Only with ``fold=None``: stems of recorded pieces (``minimalism_n10_piano_novarina``) and
        names of noise classes (``nps/yellowstone_bison_grazing``, see :func:`noise_classes`)
        held out of the training.
    group, groups, group_seed : int
        Cross-fitting inside a fold (issue 20): with ``group`` set, the fold's training pieces
        and noise classes are split into ``groups`` groups (whole pieces, whole classes;
        stratified by length as the folds are, seeded by ``group_seed``; see
        :func:`fold_groups`) and only group ``group`` trains, with a seeded ``1/groups`` of the
        training MIDI tunes (see :func:`fold_groups`); the other groups' items neither train nor
        validate, and validation stays the fold's held-out items. ``None``: the whole fold
        trains.

    Raises
    ------
    ParameterError
        ``fold`` or ``folds`` out of range, fewer pieces or noise classes than folds, a
        ``hold_music``/``hold_noise`` name that is no piece or class, or either given with a fold;
        ``group`` without a fold or outside ``[0, groups)``, ``groups`` below 2 or above the
        fold's training pieces or classes.
    """
    root = shared_data_dir(root)
    pieces, classes = music_pieces(root), noise_classes(root)
    if fold is not None and (hold_music or hold_noise):
        raise ParameterError("hold_music/hold_noise only apply with fold=None (the folds hold "
                             "out their own pieces and classes)")
    if group is not None and fold is None:
        raise ParameterError("group needs a fold (it splits that fold's training items)")
    if fold is None:
        unknown = ([m for m in hold_music if m not in {p.stem for p in pieces}]
                   + [n for n in hold_noise if n not in classes])
        if unknown:
            raise ParameterError(f"hold_music/hold_noise: no piece or noise class named "
                                 f"{', '.join(unknown)} in {root} (pieces: file stems of "
                                 f"music/ and music_cc/; classes: {', '.join(classes)})")
        base = source_split(root, midi=midi)
        base.train_music = [p for p in pieces if p.stem not in hold_music]
        base.val_music = [p for p in pieces if p.stem in hold_music]
        held = {f for n in hold_noise for f in classes[n]}
        base.train_noise = [f for f in base.train_noise if f not in held]
        base.val_noise = [f for f in base.val_noise if f not in held] + sorted(held)
        base.train_noise += [f for name, fs in classes.items() if name.startswith("nps/")
                             and name not in hold_noise for f in fs]
        return base
    if folds < 2 or not 0 <= fold < folds:
        raise ParameterError(f"need 2 <= folds and 0 <= fold < folds, got fold {fold} of {folds}")
    if len(pieces) < folds or len(classes) < folds:
        raise ParameterError(f"{folds} folds need at least as many pieces and noise classes; "
                             f"found {len(pieces)} pieces, {len(classes)} noise classes in {root}")
    piece_fold, class_fold = _fold_assignment(root, pieces, classes, folds, seed)
    split = SourceSplit()
    for p in pieces:
        name = str(p.relative_to(root))
        (split.val_music if piece_fold[name] == fold else split.train_music).append(p)
    for name in classes:
        (split.val_noise if class_fold[name] == fold else split.train_noise).extend(classes[name])
    if group is not None:
        music_group, class_group = _groups(root, pieces, classes, piece_fold, class_fold, fold,
                                           groups, group_seed)
        if not 0 <= group < groups:
            raise ParameterError(f"need 0 <= group < groups, got group {group} of {groups}")
        split.train_music = [p for p in split.train_music
                             if music_group[str(p.relative_to(root))] == group]
        split.train_noise = [f for name, g in class_group.items() if g == group
                             for f in classes[name]]
    if midi:
        base = source_split(root, midi=True)
        split.train_midi, split.val_midi = base.train_midi, base.val_midi
        if group is not None:  # the rendered tunes too, so no window's tune is heard by both
            perm = np.random.default_rng([group_seed, fold, groups, 1]).permutation(
                len(split.train_midi))
            split.train_midi = [split.train_midi[i] for i in sorted(perm[group::groups])]
    return split


def _fold_assignment(root: Path, pieces, classes, folds: int, seed: int):
    """``{piece: fold}`` and ``{noise class: fold}`` (seeded, stratified by length)."""
    rng = np.random.default_rng(seed)
    piece_names = [str(p.relative_to(root)) for p in pieces]
    piece_fold = stratified_folds(piece_names, [audio_info(p).duration for p in pieces], folds, rng)
    class_names = list(classes)
    class_fold = stratified_folds(class_names, [sum(audio_info(p).duration for p in classes[c])
                                                 for c in class_names], folds, rng)
    return piece_fold, class_fold


def _groups(root: Path, pieces, classes, piece_fold, class_fold, fold: int, groups: int,
            group_seed: int) -> tuple[dict[str, int], dict[str, int]]:
    train_pieces = [p for p in pieces if piece_fold[str(p.relative_to(root))] != fold]
    train_classes = [c for c in classes if class_fold[c] != fold]
    if groups < 2 or groups > min(len(train_pieces), len(train_classes)):
        raise ParameterError(f"groups must be within [2, {min(len(train_pieces), len(train_classes))}] "
                             f"(the fold's training pieces and classes), got {groups}")
    rng = np.random.default_rng([group_seed, fold, groups])
    names = [str(p.relative_to(root)) for p in train_pieces]
    music_group = stratified_folds(names, [audio_info(p).duration for p in train_pieces], groups, rng)
    class_group = stratified_folds(train_classes, [sum(audio_info(p).duration for p in classes[c])
                                                   for c in train_classes], groups, rng)
    return music_group, class_group


def fold_groups(root: str | os.PathLike[str] | None = None, fold: int = 0, folds: int = 4,
                seed: int = 0, groups: int = 2, group_seed: int = 0
                ) -> tuple[dict[str, int], dict[str, int]]:
    """The cross-fitting groups of a fold's training items (see :func:`fold_split`'s ``group``).

    Returns
    -------
    tuple of dict
        ``{piece: group}`` over the fold's training pieces (paths relative to ``root``) and
        ``{noise class: group}`` over its training noise classes (:func:`noise_classes` names).
        (The MIDI tunes of group ``g`` are ``fold_split(..., group=g).train_midi``.)
    """
    root = shared_data_dir(root)
    if folds < 2 or not 0 <= fold < folds:
        raise ParameterError(f"need 2 <= folds and 0 <= fold < folds, got fold {fold} of {folds}")
    pieces, classes = music_pieces(root), noise_classes(root)
    piece_fold, class_fold = _fold_assignment(root, pieces, classes, folds, seed)
    return _groups(root, pieces, classes, piece_fold, class_fold, fold, groups, group_seed)


@dataclass
class Clip:
    """One mono source at the segmenter's rate."""

    name: str
    audio: np.ndarray


def load_clips(paths: Sequence[Path], sample_rate: int = 44100, stereo: bool = False) -> list[Clip]:
    """Read files as float32 at ``sample_rate`` (16 kHz noise beds are resampled).

    Mono (1-D) by default; with ``stereo``, ``(2, samples)`` (a mono file repeated on both
    channels) for the training's stereo/mono augmentation.
    """

    clips = []
    for p in paths:
        audio, _ = read_audio(p, sample_rate=sample_rate, mono=not stereo)
        if stereo:
            audio = np.asarray(audio)
            audio = np.repeat(audio[:1], 2, axis=0) if audio.shape[0] == 1 else audio[:2]
        clips.append(Clip(p.stem, np.ascontiguousarray(audio, dtype=np.float32)))
    return clips


#: General MIDI programs the MIDI tunes are re-voiced with, so that the rendered training music
#: spans the Composer's voices (piano, vibes, organ, guitar, strings, choir, brass, reed, flute,
#: leads, pads, harp ...) rather than one piano.
MELODIC_PROGRAMS = (0, 4, 11, 16, 19, 24, 25, 29, 32, 40, 42, 44, 46, 48, 52, 56, 61, 65, 68, 73,
                    80, 81, 84, 89)


def _voiced_midi(path: Path, rng: np.random.Generator, max_seconds: float):
    """``path`` as a ``mido.MidiFile`` with random melodic programs and no note after
    ``max_seconds`` s (at the file's first tempo, 120 BPM when it has none)."""

    mid = mido.MidiFile(str(path), clip=True)
    tempo = next((m.tempo for t in mid.tracks for m in t if m.type == "set_tempo"), 500_000)
    limit = int(max_seconds * 1e6 / tempo * mid.ticks_per_beat)
    for i, track in enumerate(mid.tracks):
        kept, tick, carry = [], 0, 0
        channels = sorted({m.channel for m in track if hasattr(m, "channel") and m.channel != 9})
        for msg in track:
            tick += msg.time
            late_on = msg.type == "note_on" and msg.velocity > 0 and tick > limit
            if msg.type == "program_change" or late_on:
                carry += msg.time  # drop the message, keep the timing of the next one
                continue
            kept.append(msg.copy(time=msg.time + carry))
            carry = 0
        programs = [mido.Message("program_change", channel=ch, time=0,
                                 program=int(rng.choice(MELODIC_PROGRAMS))) for ch in channels]
        mid.tracks[i] = mido.MidiTrack(programs + kept)
    return mid


def render_midi_clips(paths: Sequence[Path], sample_rate: int = 44100, max_seconds: float = 30.0,
                      seed: int = 0, voicings: int = 1) -> list[Clip]:
    """Music rendered from MIDI files by the Composer's voices, or ``[]`` without a Composer.

    Each file's melodic channels get random General MIDI programs (:data:`MELODIC_PROGRAMS`,
    seeded; drums stay drums), its notes are cut after ``max_seconds`` s, and it is rendered
    with ``blendfx.effects.composer.render_midi`` (issue 4) and mixed to mono.

    Parameters
    ----------
    voicings : int
        Renders of every file, each with its own random programs (clip names ``stem~k`` for
        k >= 1): more timbres for the same rendering time when ``max_seconds`` shrinks to match.
        With 1 the clips (and their programs) are exactly those of earlier versions.
    """
    rng = np.random.default_rng(seed)
    clips = []
    for p in paths:
        for k in range(voicings):
            audio = np.asarray(render_midi(_voiced_midi(p, rng, max_seconds), sample_rate=sample_rate),
                               dtype=np.float32)
            mono = audio.mean(axis=0) if audio.ndim == 2 else audio
            mono = mono[: int((max_seconds + 1.0) * sample_rate)]  # the file may end much later
            if np.sqrt(np.mean(mono ** 2)) > 1e-4:
                clips.append(Clip(p.stem if k == 0 else f"{p.stem}~{k}", np.ascontiguousarray(mono)))
    return clips


def spread_segments(clip: Clip, length: int, count: int) -> Clip:
    """``clip`` cut to at most ``count`` of its consecutive ``length``-sample segments, evenly
    spread over it and joined (so :func:`validation_items` cuts exactly those segments again):
    caps how much one long piece weighs in a pooled figure."""
    audio = clip.audio
    n = audio.shape[-1] // length
    if n <= count:
        return clip
    picks = np.linspace(0, n - 1, count).round().astype(int)
    return Clip(clip.name, np.ascontiguousarray(
        np.concatenate([audio[..., i * length:(i + 1) * length] for i in picks], axis=-1)))


def noise_gain(music: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """Gain for ``noise`` so that ``music`` is ``snr_db`` dB above it (mean power over the clip)."""
    pm = float(np.mean(np.square(music, dtype=np.float64)))
    pn = float(np.mean(np.square(noise, dtype=np.float64)))
    if pn <= 0.0:
        return 0.0
    return float(np.sqrt(pm / (pn * 10.0 ** (snr_db / 10.0))))


def window_targets(music_power, noise_power, config: SegmenterConfig, mixture_power=None):
    """Per-window music share, hard label and weight from the components' STFT power.

    Parameters
    ----------
    music_power, noise_power : torch.Tensor
        ``(batch, bins, frames)`` power of the music and of the (scaled) noise.
    mixture_power : torch.Tensor, optional
        ``(batch, bins, frames)`` power of the mixture the network sees. Windows whose mean power
        is more than ``config.range_db`` below its loudest pixel (the reference of
        :func:`~.net.features_from_power`) lie below the floor of the network's input
        image and get weight 0 too.

    Returns
    -------
    share, label, weight : torch.Tensor
        ``(batch, rows, cols)`` on the windows' 16-pixel grid: ``E_music / (E_music + E_noise)``,
        ``E_music > E_noise`` as float, and 1 for non-silent windows (0 for silent ones).
    """

    pool = torch.nn.functional.avg_pool2d
    kernel = (config.window_bins // config.cell, config.window_frames // config.cell)

    def window_energy(power):
        # mean over cells, then over the windows' cells: the same as one 64 x 256 mean at hop 16
        cells = pool(power[:, None, : config.image_bins], config.cell)
        return pool(cells, kernel, stride=1)[:, 0]

    em, en = window_energy(music_power), window_energy(noise_power)
    total = em + en
    loudest = total.amax(dim=(-2, -1), keepdim=True)
    visible = (total > loudest * 10.0 ** (-SILENCE_DB / 10.0)) & (total > 1e-20)
    if mixture_power is not None:
        # the same reference as features_from_power: the loudest pixel, floored at silence_db
        peak_db = 10.0 * torch.log10(mixture_power[:, : config.image_bins].amax(dim=(-2, -1)) + 1e-30)
        floor_db = peak_db.clamp_min(config.silence_db) - config.range_db
        visible &= total > (10.0 ** (floor_db / 10.0))[:, None, None]
    weight = visible.float()
    share = em / total.clamp_min(1e-30)
    return share, (em > en).float(), weight


def item_samples(config: SegmenterConfig, windows: int) -> int:
    """Samples of a clip whose STFT is exactly ``windows`` window hops long (no padding)."""
    frames = config.window_frames + config.cell * (windows - 1)
    return (frames - 1) * config.hop_length


@dataclass
class ValidationItem:
    """A fixed validation clip: its condition and its two components (either may be silent)."""

    condition: str
    music: np.ndarray
    noise: np.ndarray
    name: str

    @property
    def mixture(self) -> np.ndarray:
        return self.music + self.noise


def _loudest_segments(audio: np.ndarray, length: int, count: int) -> list[np.ndarray]:
    """``count`` non-overlapping segments of ``length`` samples, loudest first (deterministic)."""
    if audio.size < length:
        audio = np.pad(audio, (0, length - audio.size))
    starts = np.arange(0, audio.size - length + 1, length)
    if starts.size == 0 or starts[-1] + length < audio.size:  # also try the very end
        starts = np.append(starts, audio.size - length)
    energy = [float(np.mean(audio[s:s + length] ** 2)) for s in starts]
    order = np.argsort(energy, kind="stable")[::-1][:count]
    return [audio[starts[i]:starts[i] + length] for i in sorted(order)]


def validation_items(music: Sequence[Clip], noise: Sequence[Clip],
                     conditions: Sequence[str | float] = SNRS, windows: int = 49,
                     noise_segments_per_long_clip: int = 3, max_music_segments: int | None = None,
                     config: SegmenterConfig | None = None) -> list[ValidationItem]:
    """A fixed, deterministic validation set.

    Every noise clip gives its loudest segment (long clips their ``noise_segments_per_long_clip``
    loudest), every music clip its segments in order; each segment is ``windows`` window hops
    long (49: 2.97 s); ``max_music_segments`` keeps that many, evenly spread. Condition "clean"
    gives music-only and noise-only items; an SNR condition pairs each noise segment with a music
    segment (spread over all of them and shifted by the condition's index, so each SNR hears
    other pairs) at that SNR over the segment.
    """
    config = config or SegmenterConfig()
    length = item_samples(config, windows)
    noise_segs: list[tuple[str, np.ndarray]] = []
    for clip in noise:
        n = noise_segments_per_long_clip if clip.audio.size >= 4 * length else 1
        noise_segs += [(f"{clip.name}#{k}", seg) for k, seg in
                       enumerate(_loudest_segments(clip.audio, length, n))]
    music_segs: list[tuple[str, np.ndarray]] = []
    for clip in music:
        segs = [clip.audio[s:s + length] for s in range(0, clip.audio.size - length + 1, length)]
        music_segs += [(f"{clip.name}#{k}", s) for k, s in enumerate(segs)
                       if np.sqrt(np.mean(s ** 2)) > 1e-3]
    if max_music_segments is not None and len(music_segs) > max_music_segments:
        picks = np.linspace(0, len(music_segs) - 1, max_music_segments).round().astype(int)
        music_segs = [music_segs[i] for i in picks]  # spread over every music file
    if not noise_segs or not music_segs:
        raise ParameterError("validation_items needs at least one music and one noise clip")
    zeros = np.zeros(length, np.float32)
    items: list[ValidationItem] = []
    for i, cond in enumerate(conditions):
        if cond == "clean":
            items += [ValidationItem("clean", m, zeros, name) for name, m in music_segs]
            items += [ValidationItem("clean", zeros, n, name) for name, n in noise_segs]
            continue
        for k, (nname, n) in enumerate(noise_segs):
            # spread the pairs over all music segments; each condition shifts them by i
            mname, m = music_segs[(k * len(music_segs) // len(noise_segs) + i) % len(music_segs)]
            g = noise_gain(m, n, float(cond))
            items.append(ValidationItem(_cond_name(cond), m, (n * g).astype(np.float32),
                                        f"{mname}+{nname}"))
    return items


def _cond_name(cond: str | float) -> str:
    return cond if isinstance(cond, str) else f"{float(cond):+g}"


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with midranks for ties); NaN with one class."""

    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def evaluate(segmenter: Segmenter, items: Sequence[ValidationItem]) -> dict[str, dict[str, float]]:
    """Window-level AUCs of ``segmenter`` on ``items``, per condition.

    Returns
    -------
    dict
        ``{"dominance": {cond: auc}, "presence": {cond: auc}, "windows": {cond: n},
        "clean_by_source": {source: auc}}``.
        *dominance*: the hard label ``E_music > E_noise`` of each non-silent window (for "clean":
        music-only vs noise-only clips). *presence* (the paper's protocol): every non-silent window
        of the condition's mixtures is positive, every window of the noise-only clean items
        negative. *clean_by_source*: for every source file of the clean items (the name before
        ``#``), the AUC of its windows against all clean windows of the other kind -- which piece
        or which noise pulls the clean figure down.
    """

    c = segmenter.config
    scores: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[np.ndarray]] = {}
    noise_only: list[np.ndarray] = []
    clean_sources: dict[tuple[str, bool], list[np.ndarray]] = {}
    for item in items:
        music = torch.as_tensor(item.music, device=segmenter.device)
        noise = torch.as_tensor(item.noise, device=segmenter.device)
        probs = torch.as_tensor(segmenter.segment_tensor(music + noise).windows)
        ms, ns = (stft(x, c.n_fft, c.hop_length) for x in (music, noise))
        targets = window_targets(power(ms)[None], power(ns)[None], c, power(ms + ns)[None])
        _, label, weight = (t[0].cpu() for t in targets)
        cols = min(probs.shape[-1], label.shape[-1])
        keep = weight[:, :cols] > 0
        s, lab = probs[:, :cols][keep].numpy(), label[:, :cols][keep].numpy()
        scores.setdefault(item.condition, []).append(s)
        labels.setdefault(item.condition, []).append(lab)
        if item.condition == "clean" and not item.music.any():
            noise_only.append(s)
        if item.condition == "clean":
            clean_sources.setdefault((item.name.split("#")[0], bool(item.music.any())), []).append(s)
    out: dict[str, dict[str, float]] = {"dominance": {}, "presence": {}, "windows": {},
                                        "clean_by_source": {}}
    neg = np.concatenate(noise_only) if noise_only else np.zeros(0)
    for cond in scores:
        s, lab = np.concatenate(scores[cond]), np.concatenate(labels[cond])
        out["dominance"][cond] = roc_auc(s, lab)
        out["windows"][cond] = int(s.size)
        if cond == "clean":
            out["presence"][cond] = out["dominance"][cond]
        elif neg.size:
            out["presence"][cond] = roc_auc(np.concatenate([s, neg]),
                                            np.concatenate([np.ones(s.size), np.zeros(neg.size)]))
    pools = {kind: np.concatenate([np.concatenate(v) for (_, m), v in clean_sources.items() if m == kind])
             for kind in (True, False) if any(m == kind for _, m in clean_sources)}
    for (name, is_music), parts in clean_sources.items():
        own, other = np.concatenate(parts), pools.get(not is_music)
        if other is not None and other.size and own.size:
            s = np.concatenate([own, other]) if is_music else np.concatenate([other, own])
            n_pos = own.size if is_music else other.size
            out["clean_by_source"][name] = roc_auc(s, np.arange(s.size) < n_pos)
    return out
