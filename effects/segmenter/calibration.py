"""Calibration of the segmenter's music probability: temperature scaling, reliability, ECE.

A window's probability is ``sigmoid((z_music - z_noise) / T + b)`` of its two logits
(:func:`.net.music_probability`); ``T = 1, b = 0`` (the default of every config) is the network's
plain softmax. :func:`fit_temperature` fits ``T`` (and optionally ``b``) by minimizing the
negative log-likelihood of held-out windows' labels (Guo et al., "On calibration of modern
neural networks", ICML 2017) -- fit it on recordings that neither trained the network nor will
score the calibrated model (whole pieces and noise classes held out), or the reported
calibration is optimistic.

Run (fits on the given held-out files, writes the weights with ``temperature`` in their JSON)::

    python -m blendfx.effects.segmenter.calibration --weights effects/segmenter/weights \\
        --music ../shared/data/music_cc/a.mp3 ... --noise ../shared/data/noise/nps/b.mp3 ... \\
        --out /tmp/calibrated
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from blendfx.errors import BlendfxError, ParameterError
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from .data import SNRS, ValidationItem, load_clips, roc_auc, validation_items, window_targets
from .net import Segmenter, power, stft

__all__ = [
    "WindowScores",
    "window_scores",
    "fit_temperature",
    "calibrate",
    "expected_calibration_error",
    "reliability",
    "calibration_summary",
    "auc_summary",
    "concatenate",
    "cross_fitted",
    "main",
]


@dataclass
class WindowScores:
    """Every labelled window of a set of validation items, flattened.

    Attributes
    ----------
    logits : np.ndarray
        float64 raw logit difference ``z_music - z_noise`` (before any calibration).
    labels : np.ndarray
        float64 hard label: 1 when the music has more energy in the window (dominance label).
    condition : np.ndarray
        str: "clean" or the SNR ("+10", ... "-10") of the item.
    kind : np.ndarray
        str: "music" (music alone), "noise" (noise alone) or "mixture".
    source : np.ndarray
        str: the piece (music alone and mixtures) or the noise file (noise alone).
    """

    logits: np.ndarray
    labels: np.ndarray
    condition: np.ndarray
    kind: np.ndarray
    source: np.ndarray

    def select(self, keep: np.ndarray) -> WindowScores:
        """The windows where ``keep`` is True."""
        return WindowScores(*(getattr(self, f)[keep] for f in
                              ("logits", "labels", "condition", "kind", "source")))

    def probabilities(self, temperature: float = 1.0, logit_bias: float = 0.0) -> np.ndarray:
        """p(music) of every window under a calibration (``1, 0``: the uncalibrated network)."""
        return calibrate(self.logits, temperature, logit_bias)


def window_scores(segmenter: Segmenter, items: Sequence[ValidationItem]) -> WindowScores:
    """Raw logits and dominance labels of the non-silent windows of ``items``.

    The labels and the silence rule are those of :func:`.data.evaluate` (and
    :func:`.data.window_targets`), so AUCs from these scores equal its figures.
    """
    c = segmenter.config
    parts: dict[str, list] = {"logits": [], "labels": [], "condition": [], "kind": [], "source": []}
    for item in items:
        music = torch.as_tensor(item.music, device=segmenter.device)
        noise = torch.as_tensor(item.noise, device=segmenter.device)
        seg = segmenter.segment_tensor(music + noise)
        ms, ns = (stft(x, c.n_fft, c.hop_length) for x in (music, noise))
        _, label, weight = (t[0].cpu().numpy() for t in
                            window_targets(power(ms)[None], power(ns)[None], c, power(ms + ns)[None]))
        cols = min(seg.logits.shape[-1], label.shape[-1])
        keep = weight[:, :cols] > 0
        z = seg.logits[:, :cols][keep].astype(np.float64)
        kind = ("music" if not item.noise.any() else "noise" if not item.music.any()
                else "mixture")
        source = item.name.split("+")[0].split("#")[0] if kind != "noise" else item.name.split("#")[0]
        parts["logits"].append(z)
        parts["labels"].append(label[:, :cols][keep].astype(np.float64))
        for key, value in (("condition", item.condition), ("kind", kind), ("source", source)):
            parts[key].append(np.full(z.size, value, dtype=object))
    return WindowScores(**{k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()})


def calibrate(logits: np.ndarray, temperature: float = 1.0, logit_bias: float = 0.0) -> np.ndarray:
    """``sigmoid(logits / temperature + logit_bias)`` (float64)."""
    return expit(np.asarray(logits, np.float64) / float(temperature) + float(logit_bias))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, bias: bool = False,
                    weights: np.ndarray | None = None) -> tuple[float, float]:
    """Fit the temperature (and with ``bias`` a logit offset) on held-out windows.

    Minimizes the mean (weighted) binary cross-entropy of ``sigmoid(logits / T + b)`` against
    ``labels`` over ``log T`` (and ``b``), from ``T = 1, b = 0`` (L-BFGS; deterministic).

    Parameters
    ----------
    logits : np.ndarray
        Raw logit differences ``z_music - z_noise`` of held-out windows.
    labels : np.ndarray
        Their labels in [0, 1] (1 = music dominates).
    bias : bool
        Fit a logit offset too (Platt scaling with a shared slope); else it stays 0.
    weights : np.ndarray, optional
        Per-window weights (e.g. to balance music and noise windows); default all 1.

    Returns
    -------
    temperature, logit_bias : float
        ``T`` within [0.05, 100] and ``b`` (0 without ``bias``).

    Raises
    ------
    ParameterError
        Empty input, mismatched lengths, non-finite values, or only one class in ``labels``.
    """
    z = np.asarray(logits, np.float64).ravel()
    y = np.asarray(labels, np.float64).ravel()
    w = np.ones_like(z) if weights is None else np.asarray(weights, np.float64).ravel()
    if z.size == 0 or z.shape != y.shape or z.shape != w.shape:
        raise ParameterError(f"fit_temperature needs equally long, non-empty logits, labels and "
                             f"weights; got {z.size}, {y.size}, {w.size}")
    if not (np.isfinite(z).all() and np.isfinite(y).all() and np.isfinite(w).all()):
        raise ParameterError("fit_temperature: logits, labels and weights must be finite")
    if not (y.min() < 0.5 < y.max()):
        raise ParameterError("fit_temperature needs windows of both classes (music and noise)")
    w = w / w.sum()

    def nll(params):
        t, b = np.exp(params[0]), (params[1] if bias else 0.0)
        s = z / t + b
        loss = -np.sum(w * (y * log_expit(s) + (1.0 - y) * log_expit(-s)))
        r = w * (expit(s) - y)  # d loss / d s
        grad = [float(-np.sum(r * z) / t)] + ([float(np.sum(r))] if bias else [])
        return loss, np.array(grad)

    x0 = np.zeros(2 if bias else 1)
    bounds = [(np.log(0.05), np.log(100.0))] + ([(-20.0, 20.0)] if bias else [])
    res = minimize(nll, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    return float(np.exp(res.x[0])), float(res.x[1]) if bias else 0.0


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of p(music): ``sum_b n_b / n * |mean(label) - mean(p)|`` over
    ``bins`` equal-width probability bins (the reliability diagram's gaps, weighted by count).
    NaN for no windows."""
    table = reliability(probs, labels, bins)
    n = sum(row["count"] for row in table)
    if n == 0:
        return float("nan")
    return float(sum(row["count"] * abs(row["fraction_music"] - row["mean_probability"])
                     for row in table if row["count"]) / n)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """The reliability diagram: for each of ``bins`` equal-width bins of p(music) in [0, 1],
    ``low``, ``high``, ``count``, ``mean_probability`` and ``fraction_music`` (the share of its
    windows labelled music; NaN in empty bins)."""
    p = np.asarray(probs, np.float64).ravel()
    y = np.asarray(labels, np.float64).ravel()
    if p.shape != y.shape:
        raise ParameterError(f"reliability: {p.size} probabilities but {y.size} labels")
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = idx == b
        n = int(sel.sum())
        rows.append({"low": b / bins, "high": (b + 1) / bins, "count": n,
                     "mean_probability": float(p[sel].mean()) if n else float("nan"),
                     "fraction_music": float(y[sel].mean()) if n else float("nan")})
    return rows


def calibration_summary(scores: WindowScores, temperature: float = 1.0,
                        logit_bias: float = 0.0) -> dict[str, float]:
    """The issue's calibration figures for ``scores`` under a calibration.

    Returns
    -------
    dict
        ``music_mean`` / ``music_below_half``: mean p(music) of the pure-music windows (music
        alone) and the share of them under 0.5; ``noise_mean`` / ``noise_above_half`` likewise for
        the pure-noise windows; ``ece_clean``: ECE over the pure windows (music and noise
        alone); ``ece_all``: ECE over every window (mixtures with dominance labels too);
        ``windows_music``, ``windows_noise``, ``windows_all``: counts.
    """
    p = scores.probabilities(temperature, logit_bias)
    music, noise = scores.kind == "music", scores.kind == "noise"
    clean = music | noise

    def mean(x):
        return float(x.mean()) if x.size else float("nan")

    return {"music_mean": mean(p[music]), "music_below_half": mean(p[music] < 0.5),
            "noise_mean": mean(p[noise]), "noise_above_half": mean(p[noise] >= 0.5),
            "ece_clean": expected_calibration_error(p[clean], scores.labels[clean]),
            "ece_all": expected_calibration_error(p, scores.labels),
            "windows_music": int(music.sum()), "windows_noise": int(noise.sum()),
            "windows_all": int(p.size)}


def auc_summary(scores: WindowScores) -> dict[str, dict[str, float]]:
    """Window AUCs of ``scores`` (the same figures as :func:`.data.evaluate`'s).

    Returns
    -------
    dict
        ``{"dominance": {condition: auc}, "clean_by_piece": {piece: auc}}``: per condition, the
        AUC of the dominance labels; per music piece, the AUC of its music-alone windows against
        all noise-alone windows (which piece pulls the clean figure down).
    """
    out: dict[str, dict[str, float]] = {"dominance": {}, "clean_by_piece": {}}
    for cond in dict.fromkeys(scores.condition):
        sel = scores.condition == cond
        out["dominance"][str(cond)] = roc_auc(scores.logits[sel], scores.labels[sel])
    noise = scores.logits[scores.kind == "noise"]
    for piece in dict.fromkeys(scores.source[scores.kind == "music"]):
        own = scores.logits[(scores.kind == "music") & (scores.source == piece)]
        if noise.size and own.size:
            out["clean_by_piece"][str(piece)] = roc_auc(
                np.concatenate([own, noise]), np.arange(own.size + noise.size) < own.size)
    return out


def concatenate(parts: Sequence[WindowScores]) -> WindowScores:
    """One :class:`WindowScores` of all windows of ``parts``, in order."""
    fields = ("logits", "labels", "condition", "kind", "source")
    return WindowScores(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def cross_fitted(groups: dict[str, WindowScores], bias: bool = False) -> dict[str, dict]:
    """Calibration scored honestly over disjoint groups (folds, or halves of the pieces).

    For every group, ``T`` (and ``b`` with ``bias``) is fitted on the windows of all the *other*
    groups and the group is scored before (uncalibrated) and after: its own windows never fit
    the calibration that scores them.

    Returns
    -------
    dict
        ``{group: {"temperature", "logit_bias", "before": summary, "after": summary}}`` with the
        summaries of :func:`calibration_summary`, plus ``"pooled"``: the same figures over all
        groups' windows, each calibrated by its own group's fit.
    """
    if len(groups) < 2:
        raise ParameterError("cross_fitted needs at least two groups")
    out: dict[str, dict] = {}
    calibrated = []
    for name, scores in groups.items():
        rest = concatenate([g for other, g in groups.items() if other != name])
        t, b = fit_temperature(rest.logits, rest.labels, bias=bias)
        out[name] = {"temperature": t, "logit_bias": b, "before": calibration_summary(scores),
                     "after": calibration_summary(scores, t, b)}
        # the group's logits rescaled so that T = 1, b = 0 gives its calibrated probabilities
        calibrated.append(replace(scores, logits=scores.logits / t + b))
    pooled = concatenate(list(groups.values()))
    out["pooled"] = {"before": calibration_summary(pooled),
                     "after": calibration_summary(concatenate(calibrated))}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blendfx.effects.segmenter.calibration",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="weights folder (default: shipped)")
    parser.add_argument("--music", nargs="+", required=True, help="held-out music files")
    parser.add_argument("--noise", nargs="+", required=True, help="held-out noise files")
    parser.add_argument("--out", required=True, help="folder for the calibrated weights")
    parser.add_argument("--bias", action="store_true", help="fit a logit offset too")
    args = parser.parse_args(argv)
    try:
        model = Segmenter.from_pretrained(args.weights)
        base = replace(model.config, temperature=1.0, logit_bias=0.0)
        model.config = base  # the logits do not depend on the calibration
        items = validation_items(load_clips([Path(p) for p in args.music]),
                                 load_clips([Path(p) for p in args.noise]), conditions=SNRS,
                                 config=base)
        scores = window_scores(model, items)
        t, b = fit_temperature(scores.logits, scores.labels, bias=args.bias)
        model.config = replace(base, temperature=t, logit_bias=b)
        model.training = {**model.training, "calibration": {
            "temperature": t, "logit_bias": b, "music": [Path(p).name for p in args.music],
            "noise": [Path(p).name for p in args.noise], "windows": int(scores.logits.size),
            "before": calibration_summary(scores), "after": calibration_summary(scores, t, b)}}
        model.save_pretrained(args.out)
    except BlendfxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(model.training["calibration"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
