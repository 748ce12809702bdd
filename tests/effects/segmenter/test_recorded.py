"""Issue 20: the probabilities API, calibration, whole-piece folds, the recording augmentations
and the "recorded" training recipe (a smoke run on a tiny synthetic data folder).

Never trains on the shared data; the shipped weights are only scored.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from blendfx import ParameterError
from blendfx.effects import MusicNoiseSegmenter
from blendfx.effects.segmenter.augment import AugmentConfig, RecordingAugmenter, compressor_gain
from blendfx.effects.segmenter.calibration import (
    WindowScores,
    calibration_summary,
    cross_fitted,
    expected_calibration_error,
    fit_temperature,
    reliability,
)
from blendfx.effects.segmenter.data import (
    Clip,
    fold_groups,
    fold_split,
    heard_held_out,
    music_pieces,
    noise_classes,
)
from blendfx.effects.segmenter.net import CONFIG_FILE, Segmenter, SegmenterConfig
from blendfx.effects.segmenter.train import MixtureSampler, train
from blendfx.effects.segmenter.train import main as train_main

from ...conftest import SHARED_DATA, shared
from .shared_cases import assert_ranks_held_out_recording, tiny_data

SR = 44100


@pytest.fixture(scope="module")
def model():
    return Segmenter.from_pretrained()


def tone_and_noise(seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


# -- the probabilities API ------------------------------------------------------------------------

def test_probabilities_grid_in_seconds_and_hz(model):
    x = tone_and_noise(3.0)
    p = MusicNoiseSegmenter().probabilities(x, SR)
    frames = x.size // 128 + 1
    cols = -(-(frames - 256) // 16) + 1
    assert p.windows.shape == p.window_logits.shape == (13, cols)
    assert p.cells.shape == (16, -(-frames // 16))
    hop = 128 / SR
    np.testing.assert_allclose(p.window_start_s, np.arange(cols) * 16 * hop)
    np.testing.assert_allclose(p.window_end_s - p.window_start_s, 256 * hop)  # 0.743 s
    np.testing.assert_allclose(p.window_low_hz, np.arange(13) * 16 * SR / 512)
    np.testing.assert_allclose(p.window_high_hz - p.window_low_hz, 64 * SR / 512)  # 5.51 kHz
    assert p.window_high_hz[-1] == SR / 2 and p.cell_high_hz[-1] == SR / 2
    np.testing.assert_allclose(p.cell_end_s - p.cell_start_s, 16 * hop)
    assert p.cell_start_s.size == p.cells.shape[1] and p.cell_low_hz.size == 16
    assert p.duration_s == pytest.approx(3.0) and p.input_sample_rate == SR
    assert p.window_in_band.all() and p.cell_in_band.all()
    assert p.temperature == 1.0 and 0.0 <= p.windows.min() and p.windows.max() <= 1.0
    # the uncalibrated probability is the sigmoid of the logit difference
    np.testing.assert_allclose(p.windows, 1 / (1 + np.exp(-p.window_logits)), atol=1e-6)
    # the same numbers as the older probability_map; stereo is mixed to mono
    seg = MusicNoiseSegmenter().probability_map(x, SR)
    np.testing.assert_array_equal(p.windows, seg.windows)
    np.testing.assert_array_equal(p.cells, seg.cells)
    stereo = MusicNoiseSegmenter().probabilities(np.stack([x, x]).T, SR)  # (samples, channels)
    np.testing.assert_allclose(stereo.windows, p.windows, atol=1e-6)


def test_probabilities_short_input_and_other_rate():
    short = MusicNoiseSegmenter().probabilities(tone_and_noise(0.2), SR)
    assert short.windows.shape == (13, 1)  # padded to one window, which ends after the input
    assert short.window_end_s[0] > short.duration_s
    p48 = MusicNoiseSegmenter().probabilities(tone_and_noise(2.0, 48000), 48000)
    assert p48.duration_s == pytest.approx(2.0) and p48.input_sample_rate == 48000
    assert p48.sample_rate == SR  # times and bands are of the 44.1 kHz analysis, in s and Hz
    assert p48.window_in_band.all()


def test_probabilities_bad_input():
    effect = MusicNoiseSegmenter()
    x = tone_and_noise(1.0)
    with pytest.raises(ParameterError, match="NaN"):
        effect.probabilities(np.where(np.arange(x.size) == 5, np.nan, x), SR)
    with pytest.raises(ParameterError, match="NaN or infinite"):
        effect.probabilities(np.where(np.arange(x.size) == 5, np.inf, x), SR)
    with pytest.raises(ParameterError, match="empty"):
        effect.probabilities(np.zeros(0, np.float32), SR)
    with pytest.raises(ParameterError, match="square"):
        effect.probabilities(np.zeros((64, 64), np.float32), SR)
    with pytest.raises(ParameterError, match="3-D"):
        effect.probabilities(np.zeros((2, 2, 100), np.float32), SR)
    with pytest.raises(ParameterError, match="sample_rate"):
        effect.probabilities(x, 0)
    with pytest.raises(ParameterError, match="float or integer PCM audio"):
        effect.probabilities(np.array(["a", "b", "c"]), SR)


def test_probabilities_8_khz_is_resampled_and_flagged():
    x = tone_and_noise(2.0, 8000)
    with pytest.warns(UserWarning, match="8000 Hz is resampled to 44100 Hz"):
        p = MusicNoiseSegmenter().probabilities(x, 8000)
    assert p.duration_s == pytest.approx(2.0) and p.input_sample_rate == 8000
    # rows starting below 4 kHz carry the input's band, the rows above see only silence
    np.testing.assert_array_equal(p.window_in_band, p.window_low_hz < 4000)
    np.testing.assert_array_equal(p.cell_in_band, p.cell_low_hz < 4000)
    assert p.cell_in_band[:3].all() and not p.cell_in_band[3:].any()
    assert np.isfinite(p.windows).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at full band
        MusicNoiseSegmenter().probabilities(tone_and_noise(1.0, 48000), 48000)


# -- calibration ---------------------------------------------------------------------------------

def test_temperature_in_config_applied_at_inference(model, tmp_path):
    x = tone_and_noise(2.0)
    base = model.probabilities(x, SR)
    # T = 1 is the default: the shipped config has no temperature and saves none
    assert model.config.temperature == 1.0 and not model.config.calibrated
    assert "temperature" not in SegmenterConfig().to_dict()
    hot = Segmenter.from_pretrained()
    hot.config = replace(hot.config, temperature=2.5, logit_bias=0.3)
    hot.save_pretrained(tmp_path)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["config"]["temperature"] == 2.5
    loaded = Segmenter.from_pretrained(tmp_path)
    p = loaded.probabilities(x, SR)
    assert p.temperature == 2.5 and p.logit_bias == 0.3
    np.testing.assert_array_equal(p.window_logits, base.window_logits)  # logits unchanged
    np.testing.assert_allclose(p.windows, 1 / (1 + np.exp(-(base.window_logits / 2.5 + 0.3))),
                               atol=1e-6)
    assert not np.allclose(p.windows, base.windows)
    # the effect's mask follows the calibrated probabilities
    out = MusicNoiseSegmenter(weights=str(tmp_path))(x, SR)
    ref = MusicNoiseSegmenter()(x, SR)
    assert out.shape == ref.shape and not np.allclose(out, ref)
    with pytest.raises(ParameterError, match="temperature"):
        SegmenterConfig(temperature=0.0)


def test_fit_temperature_recovers_a_known_calibration():
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 6.0, 40_000)
    labels = (rng.random(z.size) < 1 / (1 + np.exp(-z / 3.0))).astype(float)
    t, b = fit_temperature(z, labels)
    assert t == pytest.approx(3.0, rel=0.06) and b == 0.0
    labels = (rng.random(z.size) < 1 / (1 + np.exp(-(z / 2.0 + 1.0)))).astype(float)
    t, b = fit_temperature(z, labels, bias=True)
    assert t == pytest.approx(2.0, rel=0.06) and b == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ParameterError, match="both classes"):
        fit_temperature(z, np.ones_like(z))
    with pytest.raises(ParameterError, match="finite"):
        fit_temperature(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))


def test_ece_and_reliability():
    rng = np.random.default_rng(1)
    p = rng.random(50_000)
    calibrated = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(p, calibrated) < 0.02
    over = np.where(p > 0.5, 0.99, 0.01)  # the same ranking, overconfident
    assert expected_calibration_error(over, calibrated) > 0.2
    table = reliability(p, calibrated, bins=10)
    assert len(table) == 10 and sum(r["count"] for r in table) == p.size
    assert all(abs(r["fraction_music"] - r["mean_probability"]) < 0.03 for r in table)


def _scores(z, labels, kind):
    n = z.size
    return WindowScores(z, labels, np.full(n, "clean", object), np.asarray(kind, object),
                        np.full(n, "x", object))


def test_cross_fitted_never_fits_on_the_scored_group():
    rng = np.random.default_rng(2)
    groups = {}
    for name, t_true in (("a", 1.0), ("b", 4.0)):
        z = rng.normal(0.0, 8.0, 20_000)
        y = (rng.random(z.size) < 1 / (1 + np.exp(-z / t_true))).astype(float)
        groups[name] = _scores(z, y, np.where(y > 0, "music", "noise"))
    out = cross_fitted(groups)
    assert out["a"]["temperature"] == pytest.approx(4.0, rel=0.1)  # fitted on b
    assert out["b"]["temperature"] == pytest.approx(1.0, rel=0.1)  # fitted on a
    s = calibration_summary(groups["a"])
    assert s["windows_music"] + s["windows_noise"] == s["windows_all"] == 20_000
    assert set(out) == {"a", "b", "pooled"}


# -- whole-piece folds ---------------------------------------------------------------------------

def test_heard_held_out_follows_bases_and_whole_noise_classes():
    shared("music_cc")
    split = fold_split(SHARED_DATA, 0, 4, seed=0, midi=False)
    own = {"sources": split.describe(SHARED_DATA)}
    assert heard_held_out(own, split, SHARED_DATA) == {"music": [], "noise": []}
    val_music = [str(p.relative_to(SHARED_DATA)) for p in split.val_music]
    esc = next(p for p in split.val_noise if "esc10" in str(p))  # one file of a held-out class
    stack = {**own, "base": {"training": {
        "sources": {"train_music": [val_music[0]], "train_noise": [str(esc.relative_to(SHARED_DATA))]},
        "init": {"training": {"sources": {"train_music": [val_music[1]]}}}}}}
    heard = heard_held_out(stack, split, SHARED_DATA)
    assert heard["music"] == sorted(val_music[:2])
    assert heard["noise"] == [f"esc10/{esc.parent.name}"]  # the whole class, from one file
    # the shipped CNN trained on vibe_ace and on all but two clips of every ESC-10 class
    shipped = heard_held_out(Segmenter.from_pretrained().training, split, SHARED_DATA)
    in_fold = [m for m in val_music if m == "music/vibe_ace.ogg"]
    assert shipped["music"] == in_fold
    assert {c for c in shipped["noise"]} == {f"esc10/{p.parent.name}" for p in split.val_noise
                                              if "esc10" in str(p)}


def test_fold_split_holds_out_whole_pieces_and_noise_classes():
    shared("music_cc")
    pieces, classes = music_pieces(SHARED_DATA), noise_classes(SHARED_DATA)
    assert len(pieces) == 19 and len(classes) == 14  # 3 + 16 pieces; 5 ESC, 2 long, 7 NPS
    folds = [fold_split(SHARED_DATA, k, 4, seed=0, midi=False) for k in range(4)]
    held = [p for f in folds for p in f.val_music]
    assert sorted(held) == sorted(pieces)  # every piece held out exactly once
    held_noise = [p for f in folds for p in f.val_noise]
    assert sorted(held_noise) == sorted(p for fs in classes.values() for p in fs)
    for f in folds:
        assert 4 <= len(f.val_music) <= 5 and not set(f.val_music) & set(f.train_music)
        assert not set(f.val_noise) & set(f.train_noise)
        # a noise class is held out whole: no class has files on both sides
        for files in classes.values():
            assert set(files) <= set(f.val_noise) or not set(files) & set(f.val_noise)
    again = fold_split(SHARED_DATA, 1, 4, seed=0, midi=False)
    assert again.val_music == folds[1].val_music and again.val_noise == folds[1].val_noise
    other = [fold_split(SHARED_DATA, 1, 4, seed=s, midi=False).val_music for s in (1, 2, 3)]
    assert any(o != folds[1].val_music for o in other)  # the seed picks the assignment
    final = fold_split(SHARED_DATA, None, midi=False)
    assert final.val_music == [] and sorted(final.train_music) == sorted(pieces)
    assert any("nps" in str(p) for p in final.train_noise) and final.val_noise
    with pytest.raises(ParameterError, match="fold"):
        fold_split(SHARED_DATA, 4, 4)


def test_final_split_holds_out_named_pieces_and_classes():
    shared("music_cc")
    piece, cls = "minimalism_n10_piano_novarina", "nps/yellowstone_bison_grazing"
    split = fold_split(SHARED_DATA, None, midi=False, hold_music=[piece], hold_noise=[cls])
    assert [p.stem for p in split.val_music] == [piece]
    assert piece not in {p.stem for p in split.train_music} and len(split.train_music) == 18
    held = set(noise_classes(SHARED_DATA)[cls])
    assert held <= set(split.val_noise) and not held & set(split.train_noise)
    assert any("nps" in str(p) for p in split.train_noise)  # the other NPS classes still train
    with pytest.raises(ParameterError, match="no piece or noise class named nocturne"):
        fold_split(SHARED_DATA, None, hold_music=["nocturne"])
    with pytest.raises(ParameterError, match="fold=None"):
        fold_split(SHARED_DATA, 0, 4, hold_music=[piece])


def test_fold_groups_split_a_folds_training_items_whole():
    """Cross-fitting groups: inside fold 2, group 0 and group 1 train on disjoint halves of the
    fold's training pieces, noise classes (whole) and MIDI tunes, together all of them; the
    held-out items stay the fold's; seeded; bad groups are refused."""
    shared("music_cc")
    full = fold_split(SHARED_DATA, 2, 4, seed=0)
    parts = [fold_split(SHARED_DATA, 2, 4, seed=0, group=g) for g in (0, 1)]
    classes = noise_classes(SHARED_DATA)
    for key in ("train_music", "train_noise", "train_midi"):
        a, b = (set(getattr(p, key)) for p in parts)
        assert a and b and not a & b and a | b == set(getattr(full, key)), key
    for p in parts:
        assert p.val_music == full.val_music and p.val_noise == full.val_noise
        for files in classes.values():  # a class trains whole in one group or not at all
            assert set(files) <= set(p.train_noise) or not set(files) & set(p.train_noise)
        assert 6 <= len(p.train_music) <= 8
    music_group, class_group = fold_groups(SHARED_DATA, 2, 4, seed=0)
    assert {str(p.relative_to(SHARED_DATA)) for p in parts[1].train_music} == {
        m for m, g in music_group.items() if g == 1}
    assert set(parts[1].train_noise) == {f for c, g in class_group.items() if g == 1
                                         for f in classes[c]}
    again = fold_split(SHARED_DATA, 2, 4, seed=0, group=0)
    assert again.train_music == parts[0].train_music
    other = [fold_split(SHARED_DATA, 2, 4, seed=0, group=0, group_seed=s).train_music
             for s in (1, 2, 3)]
    assert any(o != parts[0].train_music for o in other)  # the group seed picks the halves
    with pytest.raises(ParameterError, match="group"):
        fold_split(SHARED_DATA, None, group=0)
    with pytest.raises(ParameterError, match="group"):
        fold_split(SHARED_DATA, 0, 4, group=2)
    with pytest.raises(ParameterError, match="groups"):
        fold_split(SHARED_DATA, 0, 4, group=0, groups=1)


# -- the context front end -----------------------------------------------------------------------

def test_context_frontend_grid_chunks_and_config(tmp_path):
    """The "context" network gives the paper net's window grid, the same logits in time chunks
    as in one pass (its margin covers its receptive field), and round-trips through its JSON."""
    torch.manual_seed(0)
    cfg = SegmenterConfig(frontend="context", hidden=8, context_channels=(4, 4, 8, 8), full_band=True)
    seg = Segmenter(cfg)
    for m in seg.net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    x = tone_and_noise(4.0)
    whole = seg.segment(x, SR)
    paper = Segmenter(SegmenterConfig()).segment(x, SR)
    assert whole.windows.shape == paper.windows.shape and whole.cells.shape == paper.cells.shape
    seg.context_chunk_windows = 40
    chunked = seg.segment(x, SR)
    np.testing.assert_allclose(chunked.logits, whole.logits, atol=1e-4)
    seg.save_pretrained(tmp_path / "ctx")
    again = Segmenter.from_pretrained(tmp_path / "ctx")
    assert again.config == cfg
    np.testing.assert_allclose(again.segment(x, SR).logits, whole.logits, atol=1e-5)
    with pytest.raises(ParameterError, match="frontend"):
        SegmenterConfig(frontend="mel")


# -- the recording augmentations -----------------------------------------------------------------

def test_compressor_gain_steady_state():
    x = np.ones(SR, np.float32)  # 0 dB
    g = compressor_gain(x, SR, threshold_db=-10.0, ratio=2.0, attack_s=0.005, release_s=0.1)
    assert 20 * np.log10(g[-1]) == pytest.approx(-5.0, abs=0.05)  # 10 dB over, ratio 2
    quiet = compressor_gain(0.1 * x, SR, -10.0, 2.0, 0.005, 0.1)
    assert np.allclose(quiet, 1.0)  # under the threshold


def test_mixture_chain_is_linear_in_the_components():
    """The whole-mixture part of the chain acts on music and noise alike: processing the
    components and summing equals processing the sum (the labels stay exact)."""
    aug = RecordingAugmenter(AugmentConfig(mix_room_p=1.0, mix_dynamics_p=1.0, rooms=2), seed=0)
    rng = np.random.default_rng(3)
    m, n = rng.standard_normal((2, 30_000)).astype(np.float32) * [[0.3], [0.1]]
    m2, n2 = aug.mixture(np.random.default_rng(7), m, n)
    s2, zero = aug.mixture(np.random.default_rng(7), m + n, np.zeros_like(n))
    np.testing.assert_allclose(m2 + n2, s2, atol=1e-5)
    assert not zero.any() and not np.allclose(m2, m)


def test_band_db_codec_and_band_limits():
    aug = RecordingAugmenter(AugmentConfig(band_p=1.0, codec_p=1.0, rooms=1), seed=0)
    f = np.arange(257) * SR / 512
    db = aug.band_db(np.random.default_rng(0), f)
    assert db.max() <= 0.0 and db[f > 19000].max() <= -90.0  # every codec cut-off <= 19 kHz
    none = RecordingAugmenter(AugmentConfig(band_p=0.0, codec_p=0.0, rooms=1), seed=0)
    assert not none.band_db(np.random.default_rng(0), f).any()


def test_mixing_only_switches_the_recording_chain_off():
    """The ablation's chain leaves mono components and mixtures as they are and the channel
    flat; the default chain, given the same draws, changes them."""
    rng = np.random.default_rng(8)
    m, n = (rng.standard_normal((2, 30_000)) * [[0.3], [0.1]]).astype(np.float32)
    f = np.arange(257) * SR / 512
    off = RecordingAugmenter(AugmentConfig.mixing_only(), seed=0)
    assert off.config.midi_share == AugmentConfig().midi_share
    assert off.config.max_noises == AugmentConfig().max_noises
    for seed in range(20):
        m1, n1 = off.components(np.random.default_rng(seed), m, n)
        m2, n2 = off.mixture(np.random.default_rng(seed), m1, n1)
        np.testing.assert_array_equal(m2, m)
        np.testing.assert_array_equal(n2, n)
        assert not off.band_db(np.random.default_rng(seed), f).any()
    on = RecordingAugmenter(AugmentConfig(rooms=2), seed=0)
    changed = [not np.array_equal(on.mixture(np.random.default_rng(s),
                                             *on.components(np.random.default_rng(s), m, n))[0], m)
               for s in range(20)]
    assert any(changed)


def test_recipe_options_need_the_recorded_recipe_and_a_share(capsys):
    with pytest.raises(SystemExit):
        train_main(["--out", "unused", "--no-recording-chain"])
    assert "need --recipe recorded" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_main(["--out", "unused", "--recipe", "recorded", "--midi-share", "1.5"])
    assert "--midi-share must be within [0, 1], got 1.5" in capsys.readouterr().err


def test_augmented_batch_seeded_and_shaped():
    rng = np.random.default_rng(4)
    music = [Clip("stereo", rng.standard_normal((2, 60_000)).astype(np.float32) * 0.1)]
    noise = [Clip(f"n{i}", rng.standard_normal(30_000).astype(np.float32) * 0.1) for i in range(3)]
    midi = [Clip("midi", rng.standard_normal(50_000).astype(np.float32) * 0.1)]
    aug = RecordingAugmenter(AugmentConfig(pitch_p=0.0, rooms=2), seed=0)
    sampler = MixtureSampler(music, noise, 8192, augmenter=aug, midi=midi)
    a = sampler.augmented_batch(np.random.default_rng(5), 6)
    b = sampler.augmented_batch(np.random.default_rng(5), 6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    music_out, noise_out, tilts, band = a
    assert music_out.shape == noise_out.shape == (6, 8192) and band.shape == (6, 257)
    assert tilts.shape == (6, 2) and np.isfinite(music_out).all()
    assert np.abs(music_out + noise_out).max() <= 1.0 + 1e-6
    with pytest.raises(ParameterError):
        MixtureSampler(music, noise, 8192).augmented_batch(np.random.default_rng(0), 1)


# -- the recipe, end to end on a tiny data folder ------------------------------------------------

def _tiny_data(root):
    """Two pieces in music/, two in music_cc/, four noise classes; 4 s each."""
    tiny_data(root)


def test_recorded_recipe_smoke(tmp_path):
    """Two steps of the recorded recipe on fold 0 of 2: it runs, holds out its fold, and records
    the recipe, the fold and the augmentations beside the weights."""
    data = tmp_path / "data"
    _tiny_data(data)
    logs = []
    model = train(data, tmp_path / "w", steps=2, batch=2, eval_every=0, use_midi=False,
                  recipe="recorded", fold=0, folds=2, fold_seed=0,
                  augment=AugmentConfig(pitch_p=0.0, rooms=2),
                  config=SegmenterConfig(channels=8, hidden=8), log=logs.append)
    meta = json.loads((tmp_path / "w" / CONFIG_FILE).read_text())["training"]
    assert meta["recipe"] == "recorded" and meta["fold"] == {"fold": 0, "folds": 2, "seed": 0}
    assert meta["augment"]["pitch_p"] == 0.0 and meta["steps"] == 2
    src = meta["sources"]
    assert len(src["val_music"]) == 2 and not set(src["val_music"]) & set(src["train_music"])
    assert not set(src["val_noise"]) & set(src["train_noise"])
    assert any("music_cc" in p for p in src["train_music"] + src["val_music"])
    assert "clean" in meta["val_auc_dominance"]
    assert isinstance(model, Segmenter) and Segmenter.from_pretrained(tmp_path / "w")
    # one cross-fitting group of the fold (the recipe's default recording chain): its sources
    # and record
    train(data, tmp_path / "g1", steps=1, batch=2, eval_every=0, use_midi=False,
          recipe="recorded", fold=0, folds=2, group=1, config=SegmenterConfig(channels=8, hidden=8),
          log=logs.append)
    meta = json.loads((tmp_path / "g1" / CONFIG_FILE).read_text())["training"]
    assert meta["fold"] == {"fold": 0, "folds": 2, "seed": 0, "group": 1, "groups": 2,
                            "group_seed": 0}
    assert meta["augment"] == AugmentConfig().to_dict()
    assert meta["sources"] == fold_split(data, 0, 2, midi=False, group=1).describe(data)
    assert len(meta["sources"]["train_music"]) == 1 and src["val_music"] == meta["sources"]["val_music"]
    with pytest.raises(ParameterError, match="group"):
        train(data, None, steps=1, use_midi=False, group=0)


# -- the shipped weights on a recorded piece they never heard ------------------------------------

def test_shipped_weights_on_a_held_out_recording(model):
    """A minimalist piano recording against two field recordings (NPS), none of which the
    shipped weights trained on (their metadata says so: the final training of the recorded
    recipe holds them out with --hold-music/--hold-noise): the windows' p(music) ranks them
    (AUC) and the mean music probability of the piano is above the noises'."""
    assert_ranks_held_out_recording(model, [model.training])


def test_window_logits_match_torch_softmax(model):
    """The calibrated path with T = 1 equals the plain softmax the old code used."""
    x = torch.as_tensor(tone_and_noise(1.5))
    seg = model.segment_tensor(x)
    logit = torch.as_tensor(seg.logits)
    ref = torch.softmax(torch.stack([torch.zeros_like(logit), logit]), dim=0)[1].numpy()
    np.testing.assert_allclose(seg.windows, ref, atol=1e-6)
