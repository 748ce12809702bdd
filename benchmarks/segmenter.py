"""Benchmark of the music/noise CNN segmenter: AUC by SNR, training time, CPU real-time factor.

    python benchmarks/segmenter.py                 # the shipped weights
    python benchmarks/segmenter.py --retrain       # also time a fresh training run (minutes)

Prints its figures, then one JSON object on the last line:

- ``auc_by_snr``: window-level ROC AUC on the held-out files (:mod:`blendfx.effects.segmenter.data`):
  "clean" = music-only vs noise-only clips; an SNR = mixtures at that SNR, each non-silent window
  labelled by which component has more energy in it. Goal >= 0.99 clean.
- ``auc_by_snr_presence``: the paper's protocol (windows of the mixtures at that SNR vs windows of
  the noise alone); the paper reports 0.997 clean, falling to 0.546 at its lowest SNR.
- ``training_seconds``: from the metadata saved beside the weights (or measured with --retrain);
  for weights fine-tuned from earlier ones (``--init``), the sum over the chain of runs, each
  run's own figure in ``training_stages``.
- ``realtime_factor``: seconds of 44.1 kHz stereo audio the ``MusicNoiseSegmenter`` effect processes
  per second on the CPU (2 threads), end to end (analysis + masking + resynthesis); goal >= 100.
  ``window_by_window_realtime_factor`` is the same network run the paper's way (each window cropped
  and classified on its own), measured in the same run as the reference. The machine is shared, so
  ``realtime_factor_cpu`` (audio seconds per CPU second, all threads together) and the load average
  are reported too.
- ``long`` (with ``--long SECONDS``, e.g. 600): the effect on that much seeded stereo noise in a
  fresh process: ``seconds``, ``realtime_factor``, the process's ``peak_rss_mb`` and, as the
  reference, its RSS just before the call (torch, the model, the input) and the input and output
  buffers' own size.
- ``auc_by_snr_leave_one_piece_out`` (with ``--cv FOLDER ...``): models trained with
  ``--val-music NAME`` scored on that recorded excerpt alone, the honest estimate for music unlike
  anything in training (the shipped weights train on all three recorded excerpts).
- ``calibration_unseen`` (with ``--calibration`` or ``--calibration-only``): on the recorded
  pieces (``music/``, ``music_cc/``) and the noise classes the weights never trained on, cut into
  2.97 s items (at most 12 per piece, the 6 loudest per noise file; clean and every SNR), split
  into two groups of whole pieces and whole noise classes: per group, the mean p(music) of the
  pure-music and of the pure-noise windows, the expected calibration error (15 bins) over the
  pure windows and over all windows (mixtures with dominance labels), before calibration and
  with the temperature (``--calibration-bias``: and a logit offset) fitted on the *other* group;
  the window AUCs and the clean AUC of every piece.
- ``cross_validation`` (with ``--folds DIR ...``, weights from ``train.py --recipe recorded
  --fold K --folds N``): each fold model on its own held-out pieces and noise classes; mean and
  worst-fold AUC (clean, -10 dB), the worst piece, and the calibration cross-fitted over folds.
  Feature-stack folds (``python -m blendfx.effects.segmenter.train_stack --fold K --folds N``)
  score the same way: their weights folders carry the fold in their metadata. Held-out pieces
  and noise classes that a fold model's base CNN or the ``--folds-baseline`` weights trained on
  are listed (``heard_held_out``, with a warning): such figures are not held out.
  ``--eval-cache DIR`` keeps each fold's held-out windows (the 30 features and the fold CNN's
  logit of every window, :func:`blendfx.effects.segmenter.train_stack.item_table`) in DIR, keyed
  by the CNN's tensors and the items: other stacks over the same fold CNNs then score in seconds.
  The key does not cover the feature or label code: empty DIR after changing either.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def best_time(fn, repeats: int = 3, clock=time.perf_counter) -> float:
    """The fastest of ``repeats`` runs in s (the machine is shared; the minimum is the least noisy)."""
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def long_input(seconds: float, weights: str | None) -> dict:
    """The effect on ``seconds`` of 44.1 kHz stereo in this process (run it in a fresh one): wall
    time and peak RSS."""
    import resource

    import torch
    from blendfx.effects import MusicNoiseSegmenter

    torch.set_num_threads(2)
    sr = 44100
    x = (np.random.default_rng(0).standard_normal((2, int(seconds * sr))) * 0.1).astype(np.float32)
    effect = MusicNoiseSegmenter(device="cpu", weights=weights or "")
    effect(x[:, :sr], sr)  # load and warm up

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB

    before = rss_mb()
    t = time.perf_counter()
    effect(x, sr)
    elapsed = time.perf_counter() - t
    return {"seconds": seconds, "effect_seconds": round(elapsed, 2),
            "realtime_factor": round(seconds / elapsed, 1), "peak_rss_mb": round(rss_mb(), 1),
            "rss_before_call_mb": round(before, 1),
            "input_and_output_mb": round(2 * x.nbytes / 2 ** 20, 1)}


def window_by_window_seconds(model, audio: np.ndarray, batch: int = 256) -> float:
    """Time to classify every 16-pixel-hop window of ``audio`` one crop at a time (batched)."""
    import torch
    from blendfx.effects.segmenter.net import features_from_power, net_input, power, stft

    c = model.config

    def run():
        x = torch.as_tensor(audio)
        image = net_input(features_from_power(power(stft(x, c.n_fft, c.hop_length)), c)[None], c)[0]
        crops = image.unfold(1, c.window_bins, c.cell).unfold(2, c.window_frames, c.cell)
        crops = crops.permute(1, 2, 0, 3, 4).reshape(-1, image.shape[0], c.window_bins, c.window_frames)
        with torch.inference_mode():
            for i in range(0, crops.shape[0], batch):
                model.net(crops[i:i + batch].contiguous())

    return best_time(run, repeats=1)


def training_stages(training: dict) -> list[dict]:
    """The chain of training runs behind some weights, first run first (``init`` links)."""
    stages = []
    while training:
        stages.append({"command": training.get("command"), "steps": training.get("steps"),
                       "seconds": training.get("train_seconds")})
        training = (training.get("init") or {}).get("training") or {}
    return stages[::-1]


def split_of(model, root: Path):
    """The source split a model was trained with (its held-out music stems from its metadata)."""
    from blendfx.effects.segmenter.data import source_split

    held = [Path(p).stem for p in model.training.get("sources", {}).get("val_music", [])]
    return source_split(root, val_music=held)


def _rounded(d):
    """``d`` with its floats rounded to 4 digits (nested dicts too)."""
    if isinstance(d, dict):
        return {k: _rounded(v) for k, v in d.items()}
    return round(d, 4) if isinstance(d, float) else d


def _items_of(model, music_paths, noise_paths, per_piece: int, noise_segments: int):
    """The validation items of the given held-out files (clean and every SNR of SNRS), each
    piece capped at ``per_piece`` 2.97 s segments (spread over it), each long noise at its
    ``noise_segments`` loudest."""
    from blendfx.effects.segmenter.data import item_samples, load_clips, spread_segments, validation_items

    length = item_samples(model.config, 49)
    music = [spread_segments(c, length, per_piece) for c in load_clips(music_paths)]
    noise = load_clips(noise_paths)
    return validation_items(music, noise, windows=49, noise_segments_per_long_clip=noise_segments,
                            config=model.config)


def _scores_of(model, music_paths, noise_paths, per_piece: int, noise_segments: int):
    """Window scores of ``model`` on the items of :func:`_items_of`."""
    from blendfx.effects.segmenter.calibration import window_scores

    return window_scores(model, _items_of(model, music_paths, noise_paths, per_piece, noise_segments))


def _cached_scores_of(model, music_paths, noise_paths, per_piece: int, noise_segments: int,
                      cache: Path, root: Path):
    """:func:`_scores_of` through a window table (every window's features and CNN logit) kept
    in ``cache`` per CNN and item set: a stack over a CNN already scored there is scored in
    seconds, without touching the audio."""
    from blendfx.effects.segmenter.train_stack import (
        WindowTable,
        cnn_fingerprint,
        item_table,
        table_scores,
    )

    items_key = json.dumps([sorted(str(p.relative_to(root)) for p in music_paths),
                            sorted(str(p.relative_to(root)) for p in noise_paths),
                            per_piece, noise_segments])
    key = hashlib.sha256((cnn_fingerprint(model) + items_key).encode()).hexdigest()[:20]
    path = Path(cache) / f"windows-{key}.npz"
    if path.is_file():
        table = WindowTable.load(path)
    else:
        table = item_table(model, _items_of(model, music_paths, noise_paths, per_piece,
                                            noise_segments))
        path.parent.mkdir(parents=True, exist_ok=True)
        table.save(path)
    return table_scores(model, table)


def unseen_sources(model, root: Path):
    """The recorded pieces and the noise classes none of whose files trained ``model`` (from
    the training metadata beside its weights)."""
    from blendfx.effects.segmenter.data import music_pieces, noise_classes

    src = model.training.get("sources", {})
    trained = {str(p) for k in ("train_music", "train_noise") for p in src.get(k, [])}
    pieces = [p for p in music_pieces(root) if str(p.relative_to(root)) not in trained]
    classes = {name: files for name, files in noise_classes(root).items()
               if not any(str(f.relative_to(root)) in trained for f in files)}
    return pieces, classes


def calibration_on_unseen(model, root: Path, groups: int = 2, seed: int = 0, per_piece: int = 12,
                          noise_segments: int = 6, bias: bool = False) -> dict:
    """Calibration (and AUCs) of ``model`` on recorded music and noise classes it never trained
    on, the temperature cross-fitted over ``groups`` disjoint groups of whole pieces and whole
    noise classes (each group scored with the temperature fitted on the other groups)."""
    from blendfx.audio_io import audio_info
    from blendfx.effects.segmenter.calibration import auc_summary, concatenate, cross_fitted
    from blendfx.effects.segmenter.data import stratified_folds

    pieces, classes = unseen_sources(model, root)
    rng = np.random.default_rng(seed)
    names = [str(p.relative_to(root)) for p in pieces]
    piece_group = stratified_folds(names, [audio_info(p).duration for p in pieces], groups, rng)
    class_group = stratified_folds(list(classes), [sum(audio_info(f).duration for f in fs)
                                                   for fs in classes.values()], groups, rng)
    scores, members = {}, {}
    for g in range(groups):
        music = [p for p, n in zip(pieces, names, strict=True) if piece_group[n] == g]
        noise = [f for c, fs in classes.items() if class_group[c] == g for f in fs]
        scores[f"group{g}"] = _scores_of(model, music, noise, per_piece, noise_segments)
        members[f"group{g}"] = {"music": [p.name for p in music],
                                "noise": [c for c in classes if class_group[c] == g]}
    result = cross_fitted(scores, bias=bias)
    pooled = concatenate(list(scores.values()))
    return _rounded({"groups": members, "calibration": result, "auc": auc_summary(pooled),
                     "per_piece_segments": per_piece, "noise_segments_per_file": noise_segments,
                     "seed": seed, "bias": bias})


def print_calibration(title: str, report: dict) -> None:
    """The calibration figures of :func:`calibration_on_unseen` or of the folds, readable."""
    print(title)
    for name, r in report["calibration"].items():
        t = "" if "temperature" not in r else f" T {r['temperature']:.3f} b {r['logit_bias']:+.3f}"
        for when in ("before", "after"):
            x = r[when]
            print(f"  {name:>8} {when:>6}:{t if when == 'after' else ''}  music mean "
                  f"{x['music_mean']:.3f} ({100 * x['music_below_half']:.0f}% < 0.5)  noise mean "
                  f"{x['noise_mean']:.3f} ({100 * x['noise_above_half']:.0f}% >= 0.5)  ECE clean "
                  f"{x['ece_clean']:.3f}  all {x['ece_all']:.3f}  windows {x['windows_music']}/"
                  f"{x['windows_noise']}/{x['windows_all']}")


def cross_validation(folders, root: Path, bias: bool = False, write_calibration: str | None = None,
                     baseline=None, eval_cache: str | None = None) -> dict:
    """Cross-validated figures of fold models (``train.py --fold K --folds N``): each scored on
    its own held-out pieces and noise classes; the calibration cross-fitted over the folds.

    With ``write_calibration`` (a weights folder of the same recipe, e.g. the final one trained
    on every piece), the temperature (and with ``bias`` the offset) fitted on all folds'
    held-out windows together is written into that folder's config. With ``baseline`` (a
    :class:`Segmenter`, e.g. the shipped weights), it is scored on every fold's items too (its
    AUCs beside the fold model's; it may have trained on some of them: the held-out pieces and
    noise classes it, or a fold model's base CNN, trained on are listed, from their metadata,
    as ``baseline_heard_held_out`` and each fold's ``heard_held_out``). With ``eval_cache`` (a
    folder), each fold model's held-out windows (features, CNN logit, labels) are kept there per
    CNN and item set, and models over a CNN already scored there reuse them (the same figures)."""
    from blendfx.effects.segmenter.calibration import (
        auc_summary,
        calibration_summary,
        concatenate,
        cross_fitted,
        fit_temperature,
    )
    from blendfx.effects.segmenter.data import fold_split, heard_held_out
    from blendfx.effects.segmenter.net import Segmenter

    scores, per_fold, base_auc, base_heard = {}, {}, {}, {}
    for folder in folders:
        m = Segmenter.from_pretrained(folder)
        f = m.training.get("fold")
        if not f:
            raise SystemExit(f"{folder}: not trained with --fold (no 'fold' in its metadata)")
        split = fold_split(root, f["fold"], f["folds"], f["seed"], midi=False)
        name = f"fold{f['fold']}of{f['folds']}"
        scores[name] = (_cached_scores_of(m, split.val_music, split.val_noise, 12, 6, eval_cache, root)
                        if eval_cache else
                        _scores_of(m, split.val_music, split.val_noise, per_piece=12, noise_segments=6))
        if baseline is not None:
            base = auc_summary(_scores_of(baseline, split.val_music, split.val_noise, per_piece=12,
                                          noise_segments=6))
            base_auc[name] = base["dominance"]
            base_heard[name] = heard_held_out(baseline.training, split, root)
        per_fold[name] = {"auc": auc_summary(scores[name]), "steps": m.training.get("steps"),
                          "train_seconds": m.training.get("train_seconds"),
                          "music": [p.name for p in split.val_music],
                          # held-out items this model (or the CNN under its stack) trained on
                          "heard_held_out": heard_held_out(m.training, split, root)}
        heard = per_fold[name]["heard_held_out"]
        if heard["music"] or heard["noise"]:
            print(f"warning: {folder} (or the weights it was built on) trained on {name}'s "
                  f"held-out pieces {heard['music']} and noise classes {heard['noise']}: "
                  f"its figures for this fold are not held out")
        a = per_fold[name]["auc"]["dominance"]
        by_piece = per_fold[name]["auc"]["clean_by_piece"]
        per_fold[name]["worst_piece_clean"] = (min(by_piece.items(), key=lambda kv: kv[1])
                                               if by_piece else None)
        print(f"{name} ({folder}): " + "  ".join(f"{k} {v:.4f}" for k, v in a.items())
              + f"; worst piece {per_fold[name]['worst_piece_clean']}")
    out = {"folds": per_fold}
    if base_auc:
        out["baseline_auc"] = base_auc
        out["baseline_heard_held_out"] = base_heard
        for cond in ("clean", "-10"):
            out[f"baseline_mean_auc_{cond}"] = float(np.mean([v.get(cond, np.nan)
                                                              for v in base_auc.values()]))
        print("baseline (--weights) on the same items: " + "; ".join(
            f"{k}: clean {v.get('clean', np.nan):.4f}, -10 dB {v.get('-10', np.nan):.4f}"
            for k, v in base_auc.items()))
        print("baseline trained on these held-out items (its column is not held out there): "
              + "; ".join(f"{k}: {v['music'] + v['noise']}" for k, v in base_heard.items()))
    for cond in per_fold[next(iter(per_fold))]["auc"]["dominance"]:
        values = {k: v["auc"]["dominance"].get(cond, float("nan")) for k, v in per_fold.items()}
        out[f"mean_auc_{cond}"] = float(np.mean(list(values.values())))
        out[f"worst_fold_{cond}"] = min(values.items(), key=lambda kv: kv[1])
    pieces = {p: a for v in per_fold.values() for p, a in v["auc"]["clean_by_piece"].items()}
    out["worst_piece_clean"] = min(pieces.items(), key=lambda kv: kv[1]) if pieces else None
    if len(scores) >= 2:
        out["calibration"] = cross_fitted(scores, bias=bias)
        print_calibration("cross-validated calibration (each fold's T fitted on the other folds"
                          + (", with a logit offset):" if bias else "):"), out)
        other = {"calibration": cross_fitted(scores, bias=not bias)}
        print_calibration("the same " + ("without" if bias else "with") + " a logit offset:", other)
        out["calibration_" + ("temperature_only" if bias else "with_bias")] = other["calibration"]
    if write_calibration:
        pooled = concatenate(list(scores.values()))
        t, b = fit_temperature(pooled.logits, pooled.labels, bias=bias)
        final = Segmenter.from_pretrained(write_calibration)
        final.config = replace(final.config, temperature=t, logit_bias=b)
        final.training = {**final.training, "calibration": {
            "temperature": t, "logit_bias": b, "fitted_on": "the held-out windows of the "
            "cross-validation folds " + ", ".join(str(f) for f in folders),
            "windows": int(pooled.logits.size),
            "folds_after": calibration_summary(pooled, t, b)}}
        final.save_pretrained(write_calibration)
        out["written_calibration"] = {"folder": str(write_calibration), "temperature": t,
                                      "logit_bias": b}
        print(f"wrote T {t:.3f}, b {b:+.3f} (fitted on all folds' held-out windows) into "
              f"{write_calibration}")
    print(f"cross-validation over {len(per_fold)} folds: mean clean AUC {out['mean_auc_clean']:.4f}, "
          f"-10 dB {out['mean_auc_-10']:.4f}; worst fold {out['worst_fold_clean']}; worst piece "
          f"{out['worst_piece_clean']}")
    return _rounded(out)


def main(argv=None) -> int:
    import torch
    from blendfx.effects import MusicNoiseSegmenter
    from blendfx.effects.segmenter.data import (
        evaluate,
        load_clips,
        noise_gain,
        render_midi_clips,
        shared_data_dir,
        validation_items,
    )
    from blendfx.effects.segmenter.net import WEIGHTS_FILE, Segmenter, resolve_weight_paths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: shipped)")
    parser.add_argument("--data", default=None, help="shared data folder")
    parser.add_argument("--retrain", action="store_true", help="time a fresh training run too")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length for the RTF")
    parser.add_argument("--cv", nargs="*", default=[],
                        help="weights folders trained with --val-music NAME (leave-one-piece-out)")
    parser.add_argument("--long", type=float, default=0.0,
                        help="also run the effect on this many seconds of stereo in a fresh "
                             "process and report its peak RSS")
    parser.add_argument("--long-case", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--calibration", action="store_true",
                        help="calibration and AUC on the recorded pieces and noise classes the "
                             "weights never trained on, the temperature cross-fitted over halves")
    parser.add_argument("--calibration-only", action="store_true",
                        help="--calibration and --only")
    parser.add_argument("--only", action="store_true",
                        help="only the --calibration and --folds figures (no old benchmark, no "
                             "timing)")
    parser.add_argument("--calibration-bias", action="store_true",
                        help="fit a logit offset beside the temperature")
    parser.add_argument("--folds", nargs="*", default=[],
                        help="weights folders trained with --fold K --folds N: cross-validated "
                             "AUC and calibration over their held-out pieces and noise classes")
    parser.add_argument("--folds-baseline", action="store_true",
                        help="with --folds: score --weights (default: shipped) on every fold's "
                             "held-out items too")
    parser.add_argument("--eval-cache", default=None, metavar="DIR",
                        help="with --folds: keep every fold's held-out windows (features, CNN "
                             "logit, labels) in DIR; stacks over a CNN already there score in "
                             "seconds, with the same figures (empty DIR after changing the "
                             "feature or label code)")
    parser.add_argument("--write-calibration", default=None, metavar="DIR",
                        help="with --folds: write the temperature (and with --calibration-bias the "
                             "offset) fitted on all folds' held-out windows into DIR's config")
    args = parser.parse_args(argv)
    if args.long_case:
        print(json.dumps(long_input(args.long_case, args.weights)))
        return 0
    torch.set_num_threads(2)

    root = shared_data_dir(args.data)
    model = Segmenter.from_pretrained(args.weights)
    calibration = None
    args.calibration |= args.calibration_only
    args.only |= args.calibration_only
    if args.calibration:
        t = time.perf_counter()
        calibration = calibration_on_unseen(model, root, bias=args.calibration_bias)
        print_calibration(f"calibration on unseen recordings ({time.perf_counter() - t:.0f} s), "
                          f"the temperature fitted on the other group of pieces and noise classes:",
                          calibration)
        aucs = calibration["auc"]
        print("  AUC (dominance) on them: " + "  ".join(f"{k} {v:.4f}" for k, v in
                                                      aucs["dominance"].items()))
        print("  clean AUC by piece, worst first: " + ", ".join(
            f"{k} {v:.3f}" for k, v in sorted(aucs["clean_by_piece"].items(), key=lambda kv: kv[1])))
    folds = (cross_validation(args.folds, root, bias=args.calibration_bias,
                              write_calibration=args.write_calibration,
                              baseline=model if args.folds_baseline else None,
                              eval_cache=args.eval_cache)
             if args.folds else None)
    if args.only:
        print(json.dumps({"benchmark": "segmenter", "calibration_unseen": calibration,
                          "cross_validation": folds}))
        return 0
    weights_path, _ = resolve_weight_paths(args.weights)
    split = split_of(model, root)
    music = load_clips(split.val_music) + render_midi_clips(split.val_midi)
    noise = load_clips(split.val_noise)

    t = time.perf_counter()
    items = validation_items(music, noise, config=model.config)
    result = evaluate(model, items)
    eval_seconds = time.perf_counter() - t
    auc = {k: round(v, 4) for k, v in result["dominance"].items()}
    presence = {k: round(v, 4) for k, v in result["presence"].items()}
    print(f"validation: {len(items)} clips of 2.97 s from {len(music)} music ({len(split.val_music)} "
          f"recorded, {len(split.val_midi)} rendered MIDI) and {len(noise)} noise files never "
          f"trained on ({eval_seconds:.1f} s)")
    for cond in auc:
        print(f"  {cond:>5}: AUC {auc[cond]:.4f} (energy labels)  {presence[cond]:.4f} (paper's "
              f"protocol)  windows {result['windows'][cond]}")

    by_source = {k: round(v, 4) for k, v in sorted(result["clean_by_source"].items(), key=lambda kv: kv[1])}
    print("  clean AUC by source file (against all windows of the other kind), worst first: "
          + ", ".join(f"{k} {v:.4f}" for k, v in by_source.items()))

    # Leave-one-piece-out: models trained without one recorded excerpt, scored on it alone.
    loo: dict[str, dict[str, float]] = {}
    for folder in args.cv:
        cv_model = Segmenter.from_pretrained(folder)
        cv_split = split_of(cv_model, root)
        if not cv_split.val_music:
            continue
        cv_items = validation_items(load_clips(cv_split.val_music), noise, config=cv_model.config)
        cv_auc = evaluate(cv_model, cv_items)["dominance"]
        name = "+".join(p.stem for p in cv_split.val_music)
        loo[name] = {k: round(v, 4) for k, v in cv_auc.items()}
        print(f"  leave {name} out: " + "  ".join(f"{k} {v:.4f}" for k, v in loo[name].items()))

    training = dict(model.training)
    stages = training_stages(training)
    train_seconds = round(sum(s["seconds"] or 0.0 for s in stages), 1)
    if args.retrain:
        from blendfx.effects.segmenter.train import train

        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            # the last run of the chain, from the same initial weights when they are still there
            # (same SHA-256; else from scratch)
            import hashlib

            record = training.get("init") or {}
            init = record.get("path")
            if init and not (Path(resolve_weight_paths(init)[0]).is_file() and hashlib.sha256(
                    Path(resolve_weight_paths(init)[0]).read_bytes()).hexdigest() == record.get("sha256")):
                init = None
            train(args.data, tmp, steps=training.get("steps", 600), batch=training.get("batch", 8),
                  seed=training.get("seed", 0), lr=training.get("lr", 0.002),
                  init=init, config=None if init else model.config,
                  patch_windows=training.get("patch_windows", 17),
                  optimizer=training.get("optimizer", "adam"), targets=training.get("targets", "soft"),
                  voicings=training.get("voicings", 1), midi_seconds=training.get("midi_seconds", 30.0),
                  clean_share=training.get("clean_share"), noise_mix=training.get("noise_mix", 0.0),
                  log=lambda *_: None)
            train_seconds = round(time.perf_counter() - t, 1)
        print(f"retrained in {train_seconds} s")
    print(f"training: {train_seconds} s for {sum(s['steps'] or 0 for s in stages)} steps in "
          f"{len(stages)} run(s) (from {'this run' if args.retrain else 'the metadata beside the weights'})")

    # Real-time factor: a long stereo mixture, the effect end to end on the CPU.
    sr = 44100
    n = int(args.seconds * sr)
    m = np.resize(music[0].audio, n)
    z = np.resize(noise[0].audio, n) * noise_gain(m, np.resize(noise[0].audio, n), 0.0)
    stereo = np.stack([m + z, 0.8 * m + z]).astype(np.float32)
    effect = MusicNoiseSegmenter(device="cpu", weights=args.weights or "")
    effect(stereo[:, :sr], sr)  # load and warm up
    t_effect = best_time(lambda: effect(stereo, sr))
    cpu_effect = best_time(lambda: effect(stereo, sr), clock=time.process_time)
    t_segment = best_time(lambda: effect.model().segment(stereo, sr))
    short = (m + z)[: 3 * sr]
    # the paper's window-by-window form exists for the paper's net only (the "context" network
    # needs the whole image: its windows see past their own pixels)
    paper_net = effect.model().config.frontend == "stft" and effect.model().stack is None
    t_naive = window_by_window_seconds(effect.model(), short) if paper_net else float("nan")
    rtf = args.seconds / t_effect
    rtf_segment = args.seconds / t_segment
    rtf_naive = 3.0 / t_naive
    naive = (f"window by window RTF {rtf_naive:.1f} (x{rtf_segment / rtf_naive:.0f} slower than the "
             f"fully convolutional form)" if paper_net else "no window-by-window form for this net")
    print(f"inference on the CPU (2 threads): effect {t_effect * 1000:.0f} ms for {args.seconds:g} s "
          f"of stereo (RTF {rtf:.0f}), analysis only RTF {rtf_segment:.0f}, {naive}")

    long = None
    if args.long:
        import subprocess

        cmd = [sys.executable, os.path.abspath(__file__), "--long-case", str(args.long)]
        if args.weights:
            cmd += ["--weights", args.weights]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"the long-input run failed:\n{proc.stderr[-4000:]}")
        long = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"long input: {args.long:g} s of stereo in {long['effect_seconds']} s (RTF "
              f"{long['realtime_factor']}), peak RSS {long['peak_rss_mb']} MB (before the call "
              f"{long['rss_before_call_mb']} MB; input + output {long['input_and_output_mb']} MB)")

    out = {
        "benchmark": "segmenter",
        "auc_by_snr": auc,
        "auc_by_snr_presence": presence,
        "auc_by_snr_leave_one_piece_out": loo,
        "paper_auc": {"clean": 0.997, "lowest_snr": 0.546},
        "windows_by_snr": result["windows"],
        "auc_clean_by_source": by_source,
        "training_seconds": train_seconds,
        "training_steps": sum(s["steps"] or 0 for s in stages),
        "training_stages": stages,
        "training_cpu_threads": training.get("threads"),
        "weights_bytes": Path(weights_path).stat().st_size if Path(weights_path).is_file() else None,
        "weights_file": WEIGHTS_FILE,
        "realtime_factor": round(rtf, 1),
        "realtime_factor_cpu": round(args.seconds / cpu_effect, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "realtime_factor_analysis_only": round(rtf_segment, 1),
        "window_by_window_realtime_factor": round(rtf_naive, 2) if paper_net else None,
        "speedup_vs_window_by_window": round(rtf_segment / rtf_naive, 1) if paper_net else None,
        "long": long,
        "calibration_unseen": calibration,
        "cross_validation": folds,
        "goals": {"auc_clean_ge_0.99": auc.get("clean", 0) >= 0.99, "realtime_factor_ge_100": rtf >= 100},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
