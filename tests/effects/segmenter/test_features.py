"""Issue 20: the hand-crafted window features (one test per measure, on signals whose answer is
known), the feature stack's fit, its weights I/O and its place in the segmenter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from blendfx import ParameterError
from blendfx.effects import MusicNoiseSegmenter
from blendfx.effects.segmenter.calibration import window_scores
from blendfx.effects.segmenter.data import (
    Clip,
    fold_groups,
    fold_split,
    heard_held_out,
    noise_classes,
    validation_items,
)
from blendfx.effects.segmenter.features import (
    FEATURE_NAMES,
    band_flatness_db,
    harmonicity,
    modulation_energy,
    onset_periodicity,
    sustained_peaks,
    window_features,
)
from blendfx.effects.segmenter.net import CONFIG_FILE, STACK_WEIGHTS, Segmenter, stft_power
from blendfx.effects.segmenter.stack import FeatureStack, fit_stack, trees_from_sklearn
from blendfx.effects.segmenter.train_stack import (
    WindowTable,
    cnn_fingerprint,
    cross_fitted_table,
    drawn_clips,
    fold_sampler,
    item_table,
    table_scores,
    train_stack,
)

from .shared_cases import assert_ranks_held_out_recording, tiny_data

SR = 44100


def _power(x: np.ndarray) -> torch.Tensor:
    return stft_power(torch.as_tensor(np.asarray(x, np.float32)), 512, 128)


def _db(x: np.ndarray) -> torch.Tensor:
    return 10.0 * torch.log10(_power(x)[:256] + 1e-20)


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 0.1).astype(np.float32)


def _chord(seconds: float, f0: float = 430.66, partials: int = 8) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, partials + 1)).astype(np.float32)


def _column(name: str) -> int:
    return FEATURE_NAMES.index(name)


def test_sustained_peaks_hold_partials_not_noise():
    tone, noise = _db(_chord(1.0)), _db(_noise(1.0))
    peaks_tone = sustained_peaks(tone, tone > tone.amax() - 60)
    peaks_noise = sustained_peaks(noise, noise > noise.amax() - 60)
    assert peaks_tone[10, 20:-20].all()  # 430.66 Hz = bin 5 ... its 2nd partial is bin 10
    assert peaks_noise.float().mean() < 0.06  # chance peaks of white noise rarely hold 35 ms

    def share(db, peaks):  # the share of the energy in sustained peaks
        p = 10.0 ** (db / 10.0)
        return float((p * peaks).sum() / p.sum())

    # a partial's peak bin holds about 60 % of its energy (the Hann window's main lobe)
    assert share(tone, peaks_tone) > 0.5 and share(noise, peaks_noise) < 0.2


def test_band_flatness_white_noise_and_a_tone():
    flat_noise = band_flatness_db(_power(_noise(1.0))[:256]).mean().item()
    assert -3.5 < flat_noise < -1.5  # chi-square(2) power: E[ln] - ln E = -0.577 -> -2.5 dB
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 1033.6 * t)).astype(np.float32) + 1e-4 * _noise(1.0)
    assert band_flatness_db(_power(tone)[:256])[0].mean().item() < -10.0  # bin 12: band 0


def test_onset_periodicity_regular_beats_vs_random_clicks():
    steps = 400
    regular = torch.zeros(1, steps)
    regular[0, ::22] = 1.0  # a beat every 22 steps (0.51 s at 23 ms)
    rng = np.random.default_rng(0)
    random = torch.zeros(1, steps)
    random[0, np.sort(rng.choice(steps, 18, replace=False))] = 1.0
    p_regular = onset_periodicity(regular, 96)[0, 100:300].mean().item()
    p_random = onset_periodicity(random, 96)[0, 100:300].mean().item()
    assert p_regular > 0.7 and p_random < 0.5, (p_regular, p_random)


def test_harmonicity_of_a_harmonic_comb():
    comb, noise = _db(_chord(1.0, f0=430.66, partials=20)), _db(_noise(1.0))
    h_comb = harmonicity(comb.clamp_min(comb.amax() - 60))[:4].mean().item()
    h_noise = harmonicity(noise.clamp_min(noise.amax() - 60))[:4].mean().item()
    assert h_comb > 0.5 and h_noise < 0.3, (h_comb, h_noise)


@pytest.mark.parametrize("rate_hz, faster", [(4.0, False), (20.0, True)])
def test_modulation_bands(rate_hz, faster):
    frames = torch.arange(2000) * 128 / SR
    level = 10.0 * torch.sin(2 * np.pi * rate_hz * frames)[None]
    mid, fast = (m[0, 200:-200].mean().item() for m in modulation_energy(level))
    assert (fast > mid) == faster, (mid, fast)


def test_window_features_grid_finite_and_gain_invariant():
    x = _chord(3.0) * (1 + 0.5 * np.sin(2 * np.pi * 2 * np.arange(3 * SR) / SR)) + _noise(3.0)
    x = x.astype(np.float32)
    pw = _power(x)
    seg = Segmenter.from_pretrained()
    cols = seg.segment_power(pw).logits.shape[-1]
    f = window_features(pw)
    assert f.shape == (len(FEATURE_NAMES), 13, cols) and torch.isfinite(f).all()
    quieter = window_features(_power(x * 0.01))  # -40 dB: every feature is relative
    torch.testing.assert_close(quieter, f, atol=2e-3, rtol=2e-3)
    # long inputs run in chunks with margins: the same features as one pass
    torch.testing.assert_close(window_features(pw, chunk_windows=7), f, atol=1e-5, rtol=1e-5)
    # the tonal share of the chord's band beats the noise's alone
    noise_f = window_features(_power(_noise(3.0)))
    k = _column("tonal_share@window")
    assert f[k, 0].mean() > 0.5 > 0.2 > noise_f[k, 0].mean()
    # frequency is the band's position
    k = _column("frequency")
    assert f[k, 0, 0] == 0.0 and abs(f[k, 12, 0].item() - 192 / 256) < 1e-6


def test_fit_stack_separates_and_validates():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(np.float32)
    x = rng.standard_normal((2000, 2)).astype(np.float32)
    x[:, 0] += 2.0 * y
    names = ["tonal_share@window", "cnn_logit"]
    stack = fit_stack(x, y, names)
    z = stack(torch.from_numpy(x)).detach().numpy()
    assert z[y > 0.5].mean() > z[y < 0.5].mean() + 1.0
    assert abs(stack.w[0, 0].item()) > 5 * abs(stack.w[0, 1].item())  # the informative input
    with pytest.raises(ParameterError, match="inputs"):
        FeatureStack(["no_such_feature"])
    with pytest.raises(ParameterError, match="both classes"):
        fit_stack(x, np.zeros(2000), names)


def test_stack_weights_round_trip_and_probabilities(tmp_path):
    """A stack saved beside the CNN loads with ``weights=DIR``; its logits replace the CNN's
    window logits on the same grid, cells and masks included."""
    base = Segmenter.from_pretrained()
    rng = np.random.default_rng(0)
    names = [*FEATURE_NAMES, "cnn_logit"]
    x = rng.standard_normal((500, len(names))).astype(np.float32)
    y = (x[:, _column("tonal_share@window")] > 0).astype(np.float32)
    base.stack = fit_stack(x, y, names, hidden=4)
    from dataclasses import replace

    base.config = replace(base.config, stack=base.stack.to_dict())
    base.training = {"recipe": "feature-stack"}
    base.save_pretrained(tmp_path)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["config"]["stack"]["hidden"] == 4
    audio = (_chord(2.0) + _noise(2.0)).astype(np.float32)
    loaded = Segmenter.from_pretrained(tmp_path)
    p = MusicNoiseSegmenter(weights=str(tmp_path)).probabilities(audio, SR)
    plain = MusicNoiseSegmenter().probabilities(audio, SR)
    assert p.windows.shape == plain.windows.shape and p.cells.shape == plain.cells.shape
    np.testing.assert_array_equal(p.window_start_s, plain.window_start_s)
    pw = _power(audio)
    cnn = torch.as_tensor(Segmenter.from_pretrained().segment_power(pw).logits)
    expected = loaded.stack.window_logits(pw, cnn).numpy()
    np.testing.assert_allclose(p.window_logits, expected, atol=1e-5)
    assert not np.allclose(p.windows, plain.windows)
    out = MusicNoiseSegmenter(weights=str(tmp_path), mode="music")(np.stack([audio, audio]), SR)
    assert out.shape == (2, audio.size) and np.isfinite(out).all()


def test_trees_from_sklearn_equal_decision_function():
    """Gradient-boosted trees converted to torch give scikit-learn's logits (float32 inputs:
    the float32 thresholds decide exactly as the float64 ones)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 3)).astype(np.float32)
    y = x[:, 0] + x[:, 1] * x[:, 2] > 0
    clf = HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=7, random_state=0).fit(x, y)
    stack = trees_from_sklearn(clf, ["tonal_share@window", "flux_db@window", "cnn_logit"])
    with torch.no_grad():
        z = stack(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(z, clf.decision_function(x), atol=1e-5)
    assert stack.to_dict()["trees"] == 20


def _tiny_data(root):
    """Four chord pieces (music/, music_cc/) and four noise classes of 4 s each."""
    tiny_data(root, ("noise/esc10/hiss/a.wav", "noise/esc10/hum/a.wav", "noise/long/bed.wav",
                     "noise/nps/park.wav"))


def test_train_stack_smoke(tmp_path):
    """The training command's path on a tiny data folder: fold 0 of 2, a few trees; the
    weights load by folder and record the fold, the base CNN and the sources."""
    data = tmp_path / "data"
    _tiny_data(data)
    # a base CNN whose metadata says it trained on every piece and noise file: the stack's
    # fold-0 scores would not be held out for its logit, which the run must say and record
    base = Segmenter.from_pretrained()
    base.training = {"sources": {
        "train_music": [f"{d}/piece{i}.wav" for i, d in enumerate(("music",) * 2 + ("music_cc",) * 2)],
        "train_noise": ["noise/esc10/hiss/a.wav", "noise/esc10/hum/a.wav", "noise/long/bed.wav",
                        "noise/nps/park.wav"]}}
    base.save_pretrained(tmp_path / "base")
    logged = []
    model = train_stack(data, tmp_path / "w", base=tmp_path / "base", fold=0, folds=2, patches=6,
                        trees=3, cap=1000, use_midi=False, log=logged.append)
    meta = json.loads((tmp_path / "w" / CONFIG_FILE).read_text())
    assert meta["config"]["stack"]["trees"] >= 1
    train = meta["training"]
    assert train["fold"] == {"fold": 0, "folds": 2, "seed": 0} and train["model"] == "trees"
    assert not set(train["sources"]["val_music"]) & set(train["sources"]["train_music"])
    assert "sources" in train["base"]["training"]
    heard = train["base_heard_held_out"]
    assert heard["music"] == sorted(train["sources"]["val_music"]) and len(heard["music"]) == 2
    assert len(heard["noise"]) == 2 and any("warning: the base CNN" in m for m in logged)
    p = Segmenter.from_pretrained(tmp_path / "w").probabilities(_chord(2.0), SR)
    assert p.windows.shape[0] == 13 and np.isfinite(p.windows).all() and model.stack is not None
    with pytest.raises(ParameterError, match="model_kind"):
        train_stack(data, None, fold=0, folds=2, model_kind="forest")


def test_cnn_noise_lowers_the_trust_in_the_cnn_logit(tmp_path):
    """``cnn_noise``: trees fitted on windows whose CNN logit is perfect trust it less when it
    is noised (a window whose features say music and whose CNN says noise scores higher; the
    CNN's swing shrinks); the noise is recorded and validated."""
    data = tmp_path / "data"
    _tiny_data(data)
    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.5).astype(np.float64)
    feats = rng.standard_normal((n, len(FEATURE_NAMES))).astype(np.float32)
    feats[:, 0] += 2.0 * y  # one informative feature
    kind = np.array(["music", "noise", "mixture"], dtype=object)[rng.integers(0, 3, n)]
    table = WindowTable(feats, (8.0 * y - 4.0).astype(np.float32), y, np.full(n, "train", object),
                        kind, np.full(n, "", object))

    def probe(model, f0, cnn):
        x = np.zeros((1, len(model.stack.inputs)), np.float32)
        x[0, 0], x[0, -1] = f0, cnn
        with torch.inference_mode():
            return float(model.stack(torch.as_tensor(x))[0])

    plain, noised = (train_stack(data, None, fold=0, folds=2, trees=15, cap=n, use_midi=False,
                                 table=table, cnn_noise=s, log=lambda m: None) for s in (0.0, 6.0))
    assert noised.training["cnn_noise"] == 6.0 and plain.training["cnn_noise"] == 0.0
    assert probe(noised, 3.0, -4.0) > probe(plain, 3.0, -4.0) + 1.0
    swing = [probe(m, 1.0, 4.0) - probe(m, 1.0, -4.0) for m in (plain, noised)]
    assert swing[1] < swing[0]
    with pytest.raises(ParameterError, match="cnn_noise"):
        train_stack(data, None, fold=0, folds=2, table=table, cnn_noise=-1.0)
    with pytest.raises(ParameterError, match="cnn_noise_pure"):
        train_stack(data, None, fold=0, folds=2, table=table, cnn_noise=1.0, cnn_noise_pure=np.nan)
    # noise on the mixtures only: the pure windows' perfect logit is trusted again
    mixed = train_stack(data, None, fold=0, folds=2, trees=15, cap=n, use_midi=False, table=table,
                        cnn_noise=6.0, cnn_noise_pure=0.0, log=lambda m: None)
    assert mixed.training["cnn_noise_pure"] == 0.0
    assert probe(mixed, 1.0, 4.0) - probe(mixed, 1.0, -4.0) > swing[1]
    with pytest.raises(ParameterError, match="cnn_logit"):
        train_stack(data, None, fold=0, folds=2, table=table, cnn_noise=2.0, inputs=FEATURE_NAMES)


def _group_cnns(data, tmp_path, monkeypatch):
    """Two fake group CNNs of fold 0 of 2 (shipped weights, metadata of ``train --fold 0
    --folds 2 --group G``) whose window logit difference is ``100 + G``: a window's logit
    names the CNN that scored it."""
    real = Segmenter.window_logits

    def marked(self, image):
        out = real(self, image)
        group = ((self.training or {}).get("fold") or {}).get("group")
        if group is None:
            return out
        return torch.stack([torch.zeros_like(out[0]), torch.full_like(out[1], 100.0 + group)])

    monkeypatch.setattr(Segmenter, "window_logits", marked)
    dirs = []
    for g in (0, 1):
        cnn = Segmenter.from_pretrained()
        cnn.training = {"fold": {"fold": 0, "folds": 2, "seed": 0, "group": g, "groups": 2,
                                 "group_seed": 0},
                        "sources": fold_split(data, 0, 2, midi=False, group=g).describe(data)}
        dirs.append(cnn.save_pretrained(tmp_path / f"group{g}"))
    base = Segmenter.from_pretrained()
    base.training = {"sources": fold_split(data, 0, 2, midi=False).describe(data)}
    base.save_pretrained(tmp_path / "base")
    return dirs


def test_cross_fit_scores_every_window_with_a_cnn_that_never_heard_it(tmp_path, monkeypatch):
    """``cross_fit``: every training window's CNN logit comes from the group CNN that did not
    train on its piece nor its noise class (read from the window's source clips and the fold's
    groups, independently of the code's own check); both groups contribute; the stack records
    both CNNs; misuse is refused."""
    data = tmp_path / "data"
    tiny_data(data, ("noise/esc10/hiss/a.wav", "noise/esc10/hum/a.wav", "noise/long/bed.wav",
                     "noise/nps/park.wav", "noise/nps/pond.wav", "noise/nps/rain.wav"))
    dirs = _group_cnns(data, tmp_path, monkeypatch)
    cache = tmp_path / "cross.npz"
    model = train_stack(data, tmp_path / "w", base=tmp_path / "base", fold=0, folds=2,
                        patches=8, trees=3, cap=1000, use_midi=False, cross_fit=dirs[::-1],
                        table_cache=cache, log=lambda m: None)
    table = WindowTable.load(cache)
    music_group, class_group = fold_groups(data, 0, 2)
    group_of = {m.rsplit("/", 1)[-1].rsplit(".", 1)[0]: g for m, g in music_group.items()}
    group_of |= {f.stem: g for c, g in class_group.items() for f in noise_classes(data)[c]}
    scorer = np.round(table.cnn - 100.0).astype(int)
    assert set(scorer) == {0, 1} and table.labels.size > 0
    for h, source, cond in zip(scorer, table.source, table.condition, strict=True):
        clips = drawn_clips(source)
        assert clips and cond == f"train:cnn{h}"
        assert all(group_of[c] != h for c in clips), (h, source)  # the scorer never heard them
    train = model.training
    assert [c["group"] for c in train["cross_fit"]] == [0, 1]
    assert heard_held_out(train, fold_split(data, 0, 2, midi=False), data) == {"music": [],
                                                                               "noise": []}
    # the CNN of a window's own group would have heard it: refused
    cnns = [Segmenter.from_pretrained(d) for d in dirs]
    samplers = [fold_sampler(data, 0, 2, 0, 0, use_midi=False, config=cnns[0].config, group=g)[0]
                for g in (0, 1)]
    with pytest.raises(ParameterError, match="trained on"):
        cross_fitted_table(cnns[::-1], samplers, np.random.default_rng(0), 4, log=lambda m: None)
    with pytest.raises(ParameterError, match="cross_fit needs a fold"):
        train_stack(data, None, fold=None, cross_fit=dirs)
    with pytest.raises(ParameterError, match="one CNN of every group"):
        train_stack(data, None, fold=0, folds=2, cross_fit=[dirs[0], dirs[0]], use_midi=False)
    with pytest.raises(ParameterError, match="--fold 1"):
        train_stack(data, None, fold=1, folds=2, cross_fit=dirs, use_midi=False)
    plain = tmp_path / "plain.npz"
    WindowTable(table.features, table.cnn, table.labels, np.full(table.labels.size, "train", object),
                table.kind, table.source).save(plain)
    with pytest.raises(ParameterError, match="cross-fitted"):
        train_stack(data, None, fold=0, folds=2, cross_fit=dirs, use_midi=False, table_cache=plain)


def test_table_scores_equal_window_scores(tmp_path):
    """A stack scored from a cached window table (features + CNN logit) gives the windows,
    labels and logits of running it on the items; the table survives save/load; the
    fingerprint follows the CNN, not the stack or the calibration."""
    model = Segmenter.from_pretrained(STACK_WEIGHTS)
    items = validation_items([Clip("chord", _chord(3.2))], [Clip("hiss", _noise(3.2, 1))],
                             conditions=("clean", -5.0), config=model.config)
    direct = window_scores(model, items)
    table = item_table(model, items)
    table.save(tmp_path / "t.npz")
    cached = table_scores(model, WindowTable.load(tmp_path / "t.npz"))
    for field in ("labels", "condition", "kind", "source"):
        assert (getattr(cached, field) == getattr(direct, field)).all(), field
    np.testing.assert_allclose(cached.logits, direct.logits, atol=1e-3)
    cnn = Segmenter.from_pretrained()
    np.testing.assert_allclose(table_scores(cnn, table).logits, window_scores(cnn, items).logits,
                               atol=1e-3)
    assert cnn_fingerprint(cnn) == cnn_fingerprint(model)
    other = Segmenter.from_pretrained()
    with torch.no_grad():
        next(other.net.parameters()).add_(1e-3)
    assert cnn_fingerprint(other) != cnn_fingerprint(cnn)


def test_shipped_stack_weights_on_a_held_out_recording():
    """The shipped feature-stack weights on a minimalist piano recording against two NPS field
    recordings that neither the stack nor its base CNN trained on (both metadata say so):
    the windows' p(music) ranks them and the piano's mean probability is above the noises'."""
    model = Segmenter.from_pretrained(STACK_WEIGHTS)
    assert model.stack is not None and model.stack.trees >= 1
    assert_ranks_held_out_recording(model, [model.training, model.training["base"]["training"]])


@pytest.mark.parametrize("audio, sr, error", [
    (np.zeros(0, np.float32), SR, "empty"),
    (np.full(SR, np.nan, np.float32), SR, "NaN|finite"),
    (np.zeros((300, 300), np.float32), SR, "square"),
    (np.zeros(SR, np.float32), -1.0, "sample"),
])
def test_stack_weights_bad_input(audio, sr, error):
    """The stack's weights validate their input like the CNN's (same entry point)."""
    from blendfx.effects.segmenter.net import STACK_WEIGHTS

    with pytest.raises(ParameterError, match=error):
        MusicNoiseSegmenter(weights=str(STACK_WEIGHTS)).probabilities(audio, sr)


def test_stack_weights_8_khz_resampled_and_flagged():
    from blendfx.effects.segmenter.net import STACK_WEIGHTS

    audio = _chord(2.0)[::5].copy()  # about 8.8 kHz
    with pytest.warns(UserWarning, match="resampled"):
        p = MusicNoiseSegmenter(weights=str(STACK_WEIGHTS)).probabilities(audio, 8820)
    assert np.isfinite(p.windows).all() and not p.window_in_band[-1] and p.window_in_band[0]
