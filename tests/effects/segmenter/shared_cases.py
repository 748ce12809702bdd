"""Cases more than one segmenter test module uses: the recording the tests score shipped weights
on (a minimalist piano piece against two NPS field recordings, all three held out of every
shipped training: ``--hold-music``, ``--hold-noise``), and a tiny data folder for end-to-end
training runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from blendfx.audio_io import write_audio
from blendfx.effects.segmenter.data import item_samples, load_clips, roc_auc
from blendfx.effects.segmenter.net import Segmenter

from ...conftest import shared

SR = 44100
HELD_OUT = ["music_cc/minimalism_n10_piano_novarina.mp3", "noise/nps/yellowstone_bison_grazing.mp3",
            "noise/nps/yellowstone_horse_drawn_wagon.mp3"]


def assert_ranks_held_out_recording(model: Segmenter, trainings: list[Mapping[str, Any]]) -> None:
    """Check that none of ``trainings`` (training metadata: the model's, its base CNN's) used the
    held-out files, then that the windows' p(music) ranks the piano above the noises (AUC >= 0.9)
    and its mean probability is 0.2 above theirs."""
    for record in trainings:
        src = record["sources"]
        assert not set(HELD_OUT) & set(src["train_music"] + src["train_noise"])
    piano = load_clips([shared(*HELD_OUT[0].split("/"))])[0].audio
    noises = load_clips([shared(*n.split("/")) for n in HELD_OUT[1:]])
    length = item_samples(model.config, 49)
    music_p = np.concatenate([model.probabilities(piano[s:s + length], SR).windows.ravel()
                              for s in range(SR * 20, SR * 80, length)])
    noise_p = np.concatenate([model.probabilities(c.audio[s:s + length], SR).windows.ravel()
                              for c in noises for s in range(0, SR * 24, length)])
    auc = roc_auc(np.concatenate([music_p, noise_p]),
                  np.arange(music_p.size + noise_p.size) < music_p.size)
    assert auc >= 0.9, auc
    assert music_p.mean() > noise_p.mean() + 0.2, (music_p.mean(), noise_p.mean())


def tiny_data(root: Path, noises: Sequence[str] = (
        "noise/esc10/hiss/a.wav", "noise/esc10/hiss/b.wav", "noise/esc10/hum/a.wav",
        "noise/long/bed.wav", "noise/nps/park.wav")) -> None:
    """Write a tiny shared-data folder under ``root``: four chord pieces of 4 s (two in music/,
    two in music_cc/) and 4 s of white noise at each path of ``noises``."""
    rng = np.random.default_rng(0)
    t = np.arange(4 * SR) / SR
    for i, folder in enumerate(("music", "music", "music_cc", "music_cc")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        chord = sum(np.sin(2 * np.pi * f0 * (i + 1) * t) for f0 in (220, 277, 330)) * 0.2
        write_audio(root / folder / f"piece{i}.wav", np.stack([chord, 0.8 * chord]), SR)
    for path in noises:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        write_audio(root / path, (rng.standard_normal(t.size) * 0.1).astype(np.float32), SR)
