"""The feature stack (issue 20): a small, strongly regularized classifier over the hand-crafted
long-context features of :mod:`.features` and the CNN's own window logit.

Its output replaces the window logit difference of the CNN it rides on, so everything after the
windows (cells, masks, ``probabilities``, calibration) is unchanged. Parameters are a handful
of tensors saved beside the CNN's in the same safetensors file (keys ``stack.*``):

- ``stack.mean``, ``stack.scale``: standardization of the inputs (features, then the CNN logit);
- ``stack.w1`` ``(hidden, inputs)``, ``stack.b1`` ``(hidden,)``: a tanh layer (absent for the
  logistic regression, ``hidden = 0``);
- ``stack.w`` ``(1, hidden or inputs)``, ``stack.b`` ``(1,)``: the output logit.

or, for gradient-boosted trees (``trees > 0``, fitted by scikit-learn's
``HistGradientBoostingClassifier`` at training time, evaluated here with torch alone), every tree
as its split tests and its leaves' paths:

- ``stack.tree_feature`` ``(trees, splits)`` input column of each split, ``stack.tree_threshold``
  its threshold (a window goes left when its input is ``<=`` it; scikit-learn's float64
  thresholds rounded down to float32, which decides every float32 input alike);
- ``stack.tree_paths`` ``(trees, splits, leaves)``: +1 where a leaf's path goes left at a split,
  -1 where it goes right, 0 off its path; ``stack.tree_depth`` ``(trees, leaves)`` the path's
  length; ``stack.tree_value`` ``(trees, leaves)`` the leaf's value;
- ``stack.b``: the baseline logit; the logit is ``b`` plus the sum of the reached leaves' values.

A window reaches the leaf whose path agrees with all of its tests: with ``s = +-1`` the outcome of
every split, ``s @ paths == depth`` marks exactly one leaf per tree (one batched product, no
per-node branching).

:func:`fit_stack` fits the linear and tanh stacks (L-BFGS on the class-balanced, L2-penalized
cross-entropy; deterministic); :func:`trees_from_sklearn` converts a fitted
``HistGradientBoostingClassifier``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from blendfx.errors import ParameterError

from .features import FEATURE_NAMES, window_features

__all__ = ["FeatureStack", "fit_stack", "trees_from_sklearn", "STACK_PREFIX"]

#: Key prefix of the stack's tensors in the weights file.
STACK_PREFIX = "stack."


class FeatureStack(torch.nn.Module):
    """Logistic regression (``hidden = 0``) or a one-hidden-layer tanh MLP over standardized
    window features and the CNN's logit difference.

    Parameters
    ----------
    inputs : sequence of str
        Input names: names of :data:`.features.FEATURE_NAMES` and ``"cnn_logit"``.
    hidden : int
        Tanh units (0: logistic regression).
    trees, splits, leaves : int
        Gradient-boosted trees instead (``trees > 0``): their number, and the most split tests
        and leaves of any of them (smaller trees are padded with tests that never decide).
    """

    def __init__(self, inputs: Sequence[str], hidden: int = 0, trees: int = 0, splits: int = 0,
                 leaves: int = 0):
        super().__init__()
        unknown = [n for n in inputs if n not in FEATURE_NAMES and n != "cnn_logit"]
        if unknown or not inputs:
            raise ParameterError(f"FeatureStack inputs must be names of features.FEATURE_NAMES "
                                 f"or 'cnn_logit'; got unknown {unknown or '(none)'}")
        if hidden < 0 or trees < 0 or (trees and (hidden or splits < 1 or leaves < 2)):
            raise ParameterError(f"FeatureStack: hidden >= 0, trees >= 0, and trees need no hidden "
                                 f"layer, splits >= 1 and leaves >= 2; got hidden {hidden}, trees "
                                 f"{trees}, splits {splits}, leaves {leaves}")
        self.inputs = tuple(inputs)
        self.hidden = int(hidden)
        self.trees, self.splits, self.leaves = int(trees), int(splits), int(leaves)
        n = len(self.inputs)
        if trees:
            self.register_buffer("tree_feature", torch.zeros(trees, splits, dtype=torch.int64))
            self.register_buffer("tree_threshold", torch.full((trees, splits), np.inf))
            self.register_buffer("tree_paths", torch.zeros(trees, splits, leaves))
            self.register_buffer("tree_depth", torch.full((trees, leaves), -1.0))
            self.register_buffer("tree_value", torch.zeros(trees, leaves))
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("scale", torch.ones(n))
        if hidden:
            self.w1 = torch.nn.Parameter(torch.zeros(hidden, n))
            self.b1 = torch.nn.Parameter(torch.zeros(hidden))
        self.w = torch.nn.Parameter(torch.zeros(1, hidden or n))
        self.b = torch.nn.Parameter(torch.zeros(1))
        self._columns = [FEATURE_NAMES.index(name) for name in self.inputs if name != "cnn_logit"]
        self.uses_cnn = "cnn_logit" in self.inputs

    #: Windows the trees evaluate at once (their intermediate tensors: about 20 MB per 1,000
    #: windows for 50 trees of 15 leaves).
    tree_batch = 4096

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n,)`` of raw inputs ``(n, inputs)``."""
        if self.trees and x.shape[0] > self.tree_batch:  # bounded memory on long inputs
            return torch.cat([self(x[i:i + self.tree_batch])
                              for i in range(0, x.shape[0], self.tree_batch)])
        if self.trees:
            # every split's outcome, +1 left / -1 right: (trees, n, splits)
            tests = x.float().T[self.tree_feature.reshape(-1)].reshape(self.trees, self.splits, -1)
            s = (tests <= self.tree_threshold[..., None]).float().mul_(2.0).sub_(1.0)
            agree = torch.bmm(s.transpose(1, 2), self.tree_paths)  # (trees, n, leaves)
            # the reached leaf agrees with all of its path's tests, every other one misses by 2
            reached = agree.sub_(self.tree_depth[:, None]).add_(1.0).clamp_(min=0.0)
            return torch.einsum("tnl,tl->n", reached, self.tree_value) + self.b[0]
        z = (x - self.mean) / self.scale
        if self.hidden:
            z = torch.tanh(z @ self.w1.T + self.b1)
        return (z @ self.w.T + self.b)[:, 0]

    def design(self, features: torch.Tensor, cnn_logit: torch.Tensor | None) -> torch.Tensor:
        """Raw inputs ``(windows, inputs)`` from all features ``(F, rows, cols)`` and the CNN's
        logit difference ``(rows, cols)``, windows in row-major order."""
        cols = [features[i].reshape(-1) for i in self._columns]
        if self.uses_cnn:
            if cnn_logit is None:
                raise ParameterError("this feature stack needs the CNN's logits")
            cols.insert(self.inputs.index("cnn_logit"), cnn_logit.reshape(-1).float())
        return torch.stack(cols, dim=1)

    def window_logits(self, power: torch.Tensor, cnn_logit: torch.Tensor) -> torch.Tensor:
        """The fused logit difference ``(rows, cols)`` of every window of an STFT power
        ``(257, frames)`` whose CNN logit difference is ``cnn_logit`` ``(rows, cols)``."""
        return self.logits_from_features(window_features(power, cnn_logit.shape[-1]), cnn_logit)

    def logits_from_features(self, features: torch.Tensor, cnn_logit: torch.Tensor
                             ) -> torch.Tensor:
        """:meth:`window_logits` from :func:`.features.window_features`'s ``(F, rows, cols)``
        already computed (e.g. on another thread while the CNN ran)."""
        with torch.inference_mode():
            z = self(self.design(features, cnn_logit.cpu()))
        return z.reshape(cnn_logit.shape).to(cnn_logit.device)

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors to save, with :data:`STACK_PREFIX`."""
        return {STACK_PREFIX + k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}

    def to_dict(self) -> dict:
        d = {"inputs": list(self.inputs), "hidden": self.hidden}
        if self.trees:
            d.update(trees=self.trees, splits=self.splits, leaves=self.leaves)
        return d

    @classmethod
    def from_state(cls, spec: dict, state: dict[str, torch.Tensor]) -> FeatureStack:
        """The stack described by ``spec`` (:meth:`to_dict`) with the ``stack.*`` tensors of
        ``state``."""
        stack = cls(spec["inputs"], int(spec.get("hidden", 0)), int(spec.get("trees", 0)),
                    int(spec.get("splits", 0)), int(spec.get("leaves", 0)))
        own = {k[len(STACK_PREFIX):]: v for k, v in state.items() if k.startswith(STACK_PREFIX)}
        stack.load_state_dict(own, strict=True)
        return stack.eval()


def fit_stack(x: np.ndarray, y: np.ndarray, inputs: Sequence[str], hidden: int = 0,
              l2: float = 1e-3, seed: int = 0, weights: np.ndarray | None = None,
              iterations: int = 300) -> FeatureStack:
    """Fit a :class:`FeatureStack` on raw inputs ``x`` ``(n, inputs)`` and labels ``y`` in {0, 1}.

    The inputs are standardized (mean and standard deviation of ``x``); the loss is the mean
    binary cross-entropy, each class weighing half (times ``weights``), plus ``l2`` times the
    sum of squared weights (not the biases). L-BFGS from a seeded small initialization.
    """
    x = torch.as_tensor(np.asarray(x, np.float32))
    y = torch.as_tensor(np.asarray(y, np.float32))
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[1] != len(inputs):
        raise ParameterError(f"fit_stack: x {tuple(x.shape)} must be (n, {len(inputs)}) with n "
                             f"labels, got {tuple(y.shape)}")
    if not (0 < float(y.mean()) < 1):
        raise ParameterError("fit_stack needs windows of both classes")
    torch.manual_seed(seed)
    stack = FeatureStack(inputs, hidden)
    stack.mean.copy_(x.mean(dim=0))
    stack.scale.copy_(x.std(dim=0).clamp_min(1e-6))
    if hidden:
        with torch.no_grad():
            stack.w1.normal_(0.0, 1.0 / np.sqrt(x.shape[1]))
    pos = float(y.mean())
    w = torch.where(y > 0.5, 0.5 / pos, 0.5 / (1.0 - pos))
    if weights is not None:
        w = w * torch.as_tensor(np.asarray(weights, np.float32))
    w = w / w.sum()
    params = [p for p in stack.parameters()]
    penal = [p for n, p in stack.named_parameters() if n in ("w", "w1")]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=iterations, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6)

    def closure():
        opt.zero_grad()
        z = stack(x)
        loss = (w * torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
                ).sum() + l2 * sum((p * p).sum() for p in penal)
        loss.backward()
        return loss

    opt.step(closure)
    return stack.eval()


def trees_from_sklearn(model, inputs: Sequence[str]) -> FeatureStack:
    """A tree :class:`FeatureStack` from a fitted binary ``HistGradientBoostingClassifier``
    (numerical inputs, no missing values) whose columns are ``inputs``: the same logits
    (``model.decision_function``) with torch alone."""
    predictors = [p[0] for p in model._predictors]  # one per boosting iteration (binary)
    trees = []
    for pred in predictors:
        nodes = pred.nodes
        internal = [i for i in range(len(nodes)) if not nodes["is_leaf"][i]]
        leaves = [i for i in range(len(nodes)) if nodes["is_leaf"][i]]
        col = {node: k for k, node in enumerate(internal)}
        paths = np.zeros((max(1, len(internal)), len(leaves)), np.float32)
        todo = [(0, [])]  # depth-first walk from the root: (node, [(split, +-1), ...])
        while todo:
            node, path = todo.pop()
            if nodes["is_leaf"][node]:
                for split, sign in path:
                    paths[col[split], leaves.index(node)] = sign
                continue
            todo.append((int(nodes["left"][node]), [*path, (node, 1.0)]))
            todo.append((int(nodes["right"][node]), [*path, (node, -1.0)]))
        trees.append((np.array([nodes["feature_idx"][i] for i in internal], np.int64),
                      np.array([nodes["num_threshold"][i] for i in internal], np.float64),
                      paths, np.abs(paths).sum(axis=0),
                      np.array([nodes["value"][i] for i in leaves], np.float32)))
    n_splits = max(len(t[0]) for t in trees) or 1
    n_leaves = max(len(t[4]) for t in trees)
    stack = FeatureStack(inputs, trees=len(trees), splits=n_splits, leaves=max(2, n_leaves))
    with torch.no_grad():
        for k, (feat, thr, paths, depth, value) in enumerate(trees):
            stack.tree_feature[k, : feat.size] = torch.from_numpy(feat)
            # the largest float32 <= the float64 threshold: x <= t32 iff x <= t64 for float32 x
            t32 = thr.astype(np.float32)
            t32 = np.where(t32.astype(np.float64) > thr, np.nextafter(t32, np.float32(-np.inf)), t32)
            stack.tree_threshold[k, : thr.size] = torch.from_numpy(t32)
            stack.tree_paths[k, : paths.shape[0], : paths.shape[1]] = torch.from_numpy(paths)
            stack.tree_depth[k, : depth.size] = torch.from_numpy(depth)
            stack.tree_value[k, : value.size] = torch.from_numpy(value)
        stack.b.fill_(float(np.ravel(model._baseline_prediction)[0]))
    return stack.eval()
