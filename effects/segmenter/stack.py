"""The feature stack (issue 20): a small, strongly regularized classifier over the hand-crafted
long-context features of :mod:`.features` and the CNN's own window logit.

Its output replaces the window logit difference of the CNN it rides on, so everything after the
windows (cells, masks, ``probabilities``, calibration) is unchanged. Parameters are a handful
of tensors saved beside the CNN's in the same safetensors file (keys ``stack.*``):

- ``stack.mean``, ``stack.scale``: standardization of the inputs (features, then the CNN logit);
- ``stack.w1`` ``(hidden, inputs)``, ``stack.b1`` ``(hidden,)``: a tanh layer (absent for the
  logistic regression, ``hidden = 0``);
- ``stack.w`` ``(1, hidden or inputs)``, ``stack.b`` ``(1,)``: the output logit.

:func:`fit_stack` fits them (L-BFGS on the class-balanced, L2-penalized cross-entropy;
deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from blendfx.errors import ParameterError

from .features import FEATURE_NAMES, window_features

__all__ = ["FeatureStack", "fit_stack", "STACK_PREFIX"]

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
    """

    def __init__(self, inputs: Sequence[str], hidden: int = 0):
        super().__init__()
        unknown = [n for n in inputs if n not in FEATURE_NAMES and n != "cnn_logit"]
        if unknown or not inputs:
            raise ParameterError(f"FeatureStack inputs must be names of features.FEATURE_NAMES "
                                 f"or 'cnn_logit'; got unknown {unknown or '(none)'}")
        if hidden < 0:
            raise ParameterError(f"FeatureStack hidden must be >= 0, got {hidden}")
        self.inputs = tuple(inputs)
        self.hidden = int(hidden)
        n = len(self.inputs)
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("scale", torch.ones(n))
        if hidden:
            self.w1 = torch.nn.Parameter(torch.zeros(hidden, n))
            self.b1 = torch.nn.Parameter(torch.zeros(hidden))
        self.w = torch.nn.Parameter(torch.zeros(1, hidden or n))
        self.b = torch.nn.Parameter(torch.zeros(1))
        self._columns = [FEATURE_NAMES.index(name) for name in self.inputs if name != "cnn_logit"]
        self.uses_cnn = "cnn_logit" in self.inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n,)`` of raw inputs ``(n, inputs)``."""
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
        with torch.inference_mode():
            feats = window_features(power, cnn_logit.shape[-1])
            z = self(self.design(feats, cnn_logit.cpu()))
        return z.reshape(cnn_logit.shape).to(cnn_logit.device)

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors to save, with :data:`STACK_PREFIX`."""
        return {STACK_PREFIX + k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}

    def to_dict(self) -> dict:
        return {"inputs": list(self.inputs), "hidden": self.hidden}

    @classmethod
    def from_state(cls, spec: dict, state: dict[str, torch.Tensor]) -> FeatureStack:
        """The stack described by ``spec`` (:meth:`to_dict`) with the ``stack.*`` tensors of
        ``state``."""
        stack = cls(spec["inputs"], int(spec.get("hidden", 0)))
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
