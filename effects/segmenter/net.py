"""The music/noise CNN segmenter (DESIGN.md section 10, ``papers/music-noise-cnn-segmentation.txt``).

The paper classifies 64 x 256-pixel windows of a 512-point STFT at 44.1 kHz with hop 128 (5.5 kHz
x 0.74 s) as music or noise with a small CNN (3x3 convolutions with 32 maps, max-pooling, ReLU,
dropout, a music/noise softmax), slides the window by 16 pixels in time and frequency, and averages
the overlapping windows' probabilities into 16 x 16-pixel cells. This module holds the network,
its front end, the sliding-window segmentation and the safetensors weights I/O.

Speed: every layer is a *valid* (unpadded) convolution or a max-pool whose stride divides 16, so
the network is translation-equivariant on a 16-pixel grid. Running its trunk once over the whole
spectrogram and its dense head as a convolution gives exactly the logits of every 16-pixel-hop
window (checked by the tests against cropping the windows one by one) at a fraction of the cost:
overlapping windows share their feature maps instead of recomputing them 64 times. On the CPU the
STFTs run block by block (:func:`stft_power`, :func:`stft_filter`: no spectrum of a whole signal
is stored) and the network's first layer is a GEMM (:class:`_PooledConv`).

Front end: magnitude STFT (Hann, centred, scaled so a full-scale sine peaks at 0 dB), bins 0-255
(the Nyquist bin is left out of the image and takes the top row's mask), power in dB relative to
the loudest pixel of the whole input (or -100 dB for near-silence), clipped to an 80 dB range and
mapped to [0, 1]. Relative levels make the classifier independent of the input's gain.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import torch  # imported by the package anyway (the effects); the modules below subclass nn.Module
from blendfx.buffers import check_finite, to_channels_first, to_mono
from blendfx.device import resolve_device
from blendfx.effect import check_sample_rate
from blendfx.errors import ModelNotFoundError, ParameterError
from blendfx.files import atomic_path, atomic_write_text
from blendfx.spectral.analysis import resample
from blendfx.spectral.mask import Mask
from blendfx.spectral.params import SpectrogramParams
from blendfx.threads import thread_pool
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from scipy.ndimage import map_coordinates
from torch import nn

from .features import window_features
from .stack import STACK_PREFIX, FeatureStack

__all__ = [
    "SegmenterConfig",
    "Segmenter",
    "Segmentation",
    "MusicProbabilities",
    "music_probability",
    "WEIGHTS_FILE",
    "CONFIG_FILE",
    "default_weights_dir",
    "load_segmenter",
    "stft",
    "stft_power",
    "stft_filter",
    "istft",
    "power",
    "features_from_power",
    "net_input",
    "cells_from_windows",
    "mask_from_cells",
]

WEIGHTS_FILE = "segmenter.safetensors"
CONFIG_FILE = "segmenter.json"
TRAIN_HINT = "train them with `python -m blendfx.effects.segmenter.train --out FOLDER`"


def default_weights_dir() -> Path:
    """The folder of the weights shipped inside the package (``blendfx/effects/segmenter/weights``)."""
    return Path(__file__).resolve().parent / "weights"


#: The shipped feature-stack weights (issue 20): the shipped CNN plus gradient-boosted trees over
#: the long-context features of :mod:`.features`; ``MusicNoiseSegmenter(weights=str(STACK_WEIGHTS))``.
STACK_WEIGHTS = Path(__file__).resolve().parent / "weights" / "stack"


@dataclass(frozen=True)
class SegmenterConfig:
    """Geometry and architecture of the segmenter (stored as JSON beside the weights).

    Attributes
    ----------
    sample_rate : int
        Analysis rate in Hz (44,100; other rates are resampled for analysis).
    n_fft, hop_length : int
        STFT size and hop in samples (512, 128: 86 Hz x 2.9 ms pixels).
    window_bins, window_frames : int
        Observation window in pixels (64 bins = 5.5 kHz, 256 frames = 0.74 s).
    cell : int
        Window hop and probability-cell size in pixels (16).
    channels : int
        Feature maps of every convolution (32).
    conv_strides : tuple of int
        One 3x3 convolution + 2x2 max-pool + ReLU per entry, with this convolution stride. The
        product of the strides and the pools must equal ``cell``.
    hidden : int
        Width of the dense layer before the softmax.
    dropout : float
        Dropout rate in training (before and after the dense layer).
    batch_norm : bool
        Batch normalization after every convolution (not in the paper: it makes the few hundred
        SGD steps affordable on a CPU converge; in eval mode it is a per-map affine map, folded
        into the convolution for inference).
    frequency_channel : bool
        Give the network a second input channel holding each row's frequency (0 at DC, 1 at
        Nyquist), so that one set of weights can treat the bass and the treble differently.
    linear_channel : bool
        Add the magnitude on a linear scale (relative to the loudest pixel) as an input channel,
        so the convolutions can add energies (the labels compare summed energies) as well as
        compare log-levels.
    range_db : float
        Dynamic range of the input image in dB below the loudest pixel.
    silence_db : float
        Reference level in dB (re. full scale) used when the input is quieter than this.
    temperature : float
        Calibration (temperature scaling, Guo et al. 2017): a window's music probability is
        ``sigmoid((z_music - z_noise) / temperature + logit_bias)`` of its two logits. 1 (with
        ``logit_bias`` 0) is the plain softmax of the network, bit for bit. Fitted on held-out
        recordings by :func:`.calibration.fit_temperature`; > 0.
    logit_bias : float
        Added to the scaled logit difference (Platt-style offset); 0 = pure temperature scaling.
    frontend : {"stft", "context"}
        "stft": the paper's window classifier (the fields above). "context" (issue 20): a fully
        convolutional network over the whole image (see :class:`ContextNet`) that adds a per-band
        normalized input channel (each bin's level in dB minus its moving mean over
        ``norm_frames`` frames: the recording's EQ and level drop out), pools to the 16 x
        16-pixel cell grid, widens the temporal context with dilated convolutions (each window's
        logits see about 2.5 s) and classifies every 64 x 256-pixel window from its cells: the
        same window grid, probabilities and masks as "stft".
    context_channels : tuple of int
        "context": feature maps of its four convolution stages.
    norm_frames : int
        "context": frames of the moving mean of the per-band normalized channel (odd).
    full_band : bool
        "context": give every window the mean and the maximum of the features over all bands at
        its times too (whether the whole spectrum sounds like music, not only its own band).
    stack : dict, optional
        Issue 20's feature stack (:class:`.stack.FeatureStack`: ``{"inputs": [...], "hidden":
        n}``): a small classifier over the hand-crafted long-context window features of
        :mod:`.features` and this network's logit difference, whose output replaces the
        network's window logit difference (its tensors, ``stack.*``, are in the weights file).
        None (default): the network alone.
    """

    sample_rate: int = 44100
    n_fft: int = 512
    hop_length: int = 128
    window_bins: int = 64
    window_frames: int = 256
    cell: int = 16
    channels: int = 32
    conv_strides: tuple[int, ...] = (2, 1, 1)
    hidden: int = 32
    dropout: float = 0.1
    batch_norm: bool = True
    frequency_channel: bool = True
    linear_channel: bool = False
    range_db: float = 80.0
    silence_db: float = -100.0
    temperature: float = 1.0
    logit_bias: float = 0.0
    frontend: str = "stft"
    context_channels: tuple[int, ...] = (8, 16, 24, 32)
    norm_frames: int = 129
    full_band: bool = False
    stack: dict | None = None

    def window_columns(self, frames: int) -> int:
        """Windows along time (one per ``cell`` frames, the last one padded) of ``frames``
        STFT frames: at least one."""
        return max(1, -(-(frames - self.window_frames) // self.cell) + 1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv_strides", tuple(int(s) for s in self.conv_strides))
        object.__setattr__(self, "context_channels", tuple(int(s) for s in self.context_channels))
        if self.frontend not in ("stft", "context"):
            raise ParameterError(f"SegmenterConfig: frontend must be 'stft' or 'context', got "
                                 f"{self.frontend!r}")
        if self.frontend == "context":
            if self.cell != 16 or self.n_fft != 512 or len(self.context_channels) != 4:
                raise ParameterError("SegmenterConfig: the 'context' frontend needs cell 16, n_fft "
                                     "512 and four context_channels")
            if self.norm_frames < 1 or self.norm_frames % 2 == 0:
                raise ParameterError(f"SegmenterConfig: norm_frames must be odd and >= 1, got "
                                     f"{self.norm_frames}")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ParameterError(f"SegmenterConfig: temperature must be a positive number, got "
                                 f"{self.temperature!r}")
        if not np.isfinite(self.logit_bias):
            raise ParameterError(f"SegmenterConfig: logit_bias must be finite, got {self.logit_bias!r}")
        total = int(np.prod(self.conv_strides)) * 2 ** len(self.conv_strides)
        if total != self.cell and self.frontend == "stft":
            raise ParameterError(f"SegmenterConfig: conv strides {self.conv_strides} with one 2x2 pool "
                                 f"each give a total stride of {total} px, not cell = {self.cell}")
        if self.window_bins % self.cell or self.window_frames % self.cell:
            raise ParameterError("SegmenterConfig: the window must be a whole number of cells")
        if self.image_bins % self.cell:
            raise ParameterError("SegmenterConfig: n_fft // 2 must be a whole number of cells")

    @property
    def image_bins(self) -> int:
        """Rows of the image: the STFT bins below Nyquist (256)."""
        return self.n_fft // 2

    @property
    def bins(self) -> int:
        """Bins of the STFT, Nyquist included (257)."""
        return self.n_fft // 2 + 1

    @property
    def window_seconds(self) -> float:
        return self.window_frames * self.hop_length / self.sample_rate

    @property
    def window_hz(self) -> float:
        return self.window_bins * self.sample_rate / self.n_fft

    @property
    def calibrated(self) -> bool:
        """Whether a temperature or bias other than the identity is set."""
        return self.temperature != 1.0 or self.logit_bias != 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["conv_strides"] = list(self.conv_strides)
        d["context_channels"] = list(self.context_channels)
        if not self.calibrated:  # uncalibrated configs stay as they were written before
            del d["temperature"], d["logit_bias"]
        if self.frontend == "stft":  # so do the paper's
            del d["frontend"], d["context_channels"], d["norm_frames"], d["full_band"]
        if self.stack is None:
            del d["stack"]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmenterConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"segmenter config has unknown key(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(known))}")
        return cls(**data)


# -- the network ---------------------------------------------------------------------------------

class ContextNet(nn.Module):
    """The "context" front end's network (issue 20): the same window logits as the paper's net,
    from a fully convolutional pass with about 2.5 s of temporal context.

    ``forward`` takes the ``(batch, C, 256, W)`` input of :func:`net_input` (only its first
    channel, the image in [0, 1], is read; ``W`` a multiple of 16 and >= 256) and returns
    ``(batch, 2, 13, (W - 256) / 16 + 1)`` logits (0 = noise, 1 = music), window ``(i, j)``
    covering bins ``16 i .. 16 i + 63`` and frames ``16 j .. 16 j + 255``, like the paper's net;
    each window's logits also see about 300 frames (0.87 s) on either side of it (2.5 s in all).

    Layers: the image averaged over 2 x 2 pixels (128 rows of 172 Hz, 5.8 ms frames); beside it
    the per-band normalized image (minus its moving mean over ``norm_frames`` frames) and each
    row's frequency; a 4x4 convolution of stride 2, then three 3x3 convolutions with max-pools
    (2x2, 2x1, 1x2), each with batch norm and ReLU,
    down to the 16 x 16-pixel cell grid; two residual dilated convolutions (3 x 5 cells, time
    dilation 2 and 4: +-0.56 s more context); with ``full_band``, the mean and maximum of the
    features over all rows (a 1x1 convolution of them added to every row); a 4-cell-tall
    convolution over each window's band;
    the mean and the maximum over each window's 16 cells; a 1x1 classifier.
    """

    #: Frames of context each side that a window's logits depend on (a bound, for chunking: the
    #: receptive field reaches about 300 frames past the window).
    margin_frames = 640

    def __init__(self, cfg: SegmenterConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3, c4 = cfg.context_channels
        chans = [(3, c1), (c1, c2), (c2, c3), (c3, c4)]
        self.convs = nn.ModuleList([nn.Conv2d(3, c1, 4, stride=2, padding=1)]
                                   + [nn.Conv2d(a, b, 3, padding=1) for a, b in chans[1:]])
        self.norms = nn.ModuleList(nn.BatchNorm2d(b) for _, b in chans)
        self.pools = ((1, 1), (2, 2), (2, 1), (1, 2))
        self.context = nn.ModuleList(nn.Conv2d(c4, c4, (3, 5), padding=(1, 2 * d), dilation=(1, d))
                                     for d in (2, 4))
        self.context_norms = nn.ModuleList(nn.BatchNorm2d(c4) for _ in range(2))
        if cfg.full_band:
            self.full = nn.Conv2d(2 * c4, c4, 1)
            self.full_norm = nn.BatchNorm2d(c4)
        rows = cfg.window_bins // cfg.cell
        self.band = nn.Conv2d(c4, cfg.hidden, (rows, 1))
        self.band_norm = nn.BatchNorm2d(cfg.hidden)
        self.out = nn.Conv2d(2 * cfg.hidden, 2, 1)
        self.drop = nn.Dropout(cfg.dropout)
        self.register_buffer("rows", (torch.arange(cfg.image_bins // 2) / (cfg.image_bins // 2))
                             .reshape(1, 1, -1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = nn.functional
        img = f.avg_pool2d(x[:, :1, : self.cfg.image_bins], 2)  # 128 rows x W / 2 frames
        r = self.cfg.norm_frames // 4
        rel = img - f.avg_pool2d(img, (1, 2 * r + 1), stride=1, padding=(0, r),
                                 count_include_pad=False)
        h = torch.cat([img, rel, self.rows.expand(img.shape[0], 1, -1, img.shape[-1])], dim=1)
        for conv, norm, pool in zip(self.convs, self.norms, self.pools, strict=True):
            h = norm(conv(h))
            h = torch.relu(f.max_pool2d(h, pool) if pool != (1, 1) else h)
        for conv, norm in zip(self.context, self.context_norms, strict=True):
            h = h + torch.relu(norm(conv(h)))
        if self.cfg.full_band:  # the whole spectrum at these times, added to every band
            g = torch.cat([h.mean(dim=2, keepdim=True), h.amax(dim=2, keepdim=True)], dim=1)
            h = h + torch.relu(self.full_norm(self.full(g)))
        h = torch.relu(self.band_norm(self.band(h)))  # (batch, hidden, 13, cells)
        k = self.cfg.window_frames // self.cfg.cell
        h = torch.cat([f.avg_pool2d(h, (1, k), stride=1), f.max_pool2d(h, (1, k), stride=1)], dim=1)
        return self.out(self.drop(h))


def _build_net(config: SegmenterConfig):
    if config.frontend == "context":
        return ContextNet(config)

    class SegmenterNet(nn.Module):
        """Fully convolutional form of the paper's window classifier.

        ``forward`` takes ``(batch, 1, H, W)`` images and returns ``(batch, 2, rows, cols)``
        logits (0 = noise, 1 = music), one per 64 x 256 window at 16-pixel hops.
        """

        def __init__(self, cfg: SegmenterConfig):
            super().__init__()
            self.cfg = cfg
            convs, norms, cin = [], [], 1 + int(cfg.frequency_channel) + int(cfg.linear_channel)
            for stride in cfg.conv_strides:
                convs.append(nn.Conv2d(cin, cfg.channels, 3, stride=stride))
                norms.append(nn.BatchNorm2d(cfg.channels) if cfg.batch_norm else nn.Identity())
                cin = cfg.channels
            self.convs = nn.ModuleList(convs)
            self.norms = nn.ModuleList(norms)
            h, w = cfg.window_bins, cfg.window_frames
            for stride in cfg.conv_strides:
                h, w = ((h - 3) // stride + 1) // 2, ((w - 3) // stride + 1) // 2
            if h < 1 or w < 1:
                raise ParameterError("SegmenterConfig: the window is too small for its layers")
            self.head_extent = (h, w)
            self.dense = nn.Conv2d(cfg.channels, cfg.hidden, (h, w))
            self.out = nn.Conv2d(cfg.hidden, 2, 1)
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for conv, norm in zip(self.convs, self.norms, strict=True):
                # pool before ReLU: max-pool and ReLU commute, and pooling first halves the work
                x = torch.relu_(nn.functional.max_pool2d(norm(conv(x)), 2))
            x = torch.relu_(self.dense(self.drop(x)))
            return self.out(self.drop(x))

    return SegmenterNet(config)


def _inference_net(net, config: SegmenterConfig):
    """An eval-mode copy of ``net`` for transposed full-height images, simplified exactly.

    - It reads the image transposed, ``(batch, channels, frames, bins)``, every kernel transposed
      to match: the STFTs are stored frames-major, so their image needs no transposing copy and a
      time chunk of it is one contiguous slice. Its logits come out as ``(batch, 2, cols, rows)``.
    - Each batch norm is folded into its convolution: in eval mode it is ``y = a * x + b`` per
      feature map, so ``conv(x) * a + b`` is one convolution with weights ``w * a`` and bias
      ``bias * a + b``.
    - The frequency channel (constant along time) is folded into the first convolution as a
      per-bin bias, so the image goes in without it (one input channel less to build and read).
    - On the CPU the first convolution and its max-pool run as GEMMs (:class:`_PooledConv`):
      with one or two input maps oneDNN's convolution is slow, and its 32-map output (35 MB per
      chunk) makes a round trip through memory before the pool reads it.

    The copy takes ``net_input`` of the transposed image without the frequency channel and only
    images of the full ``image_bins`` height (what :meth:`Segmenter.window_logits` feeds it).
    """

    folded = copy.deepcopy(net).eval()
    with torch.no_grad():
        for conv, norm in zip(folded.convs, folded.norms, strict=True):
            if isinstance(norm, nn.BatchNorm2d):
                a = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                conv.weight.mul_(a[:, None, None, None])
                conv.bias.copy_(conv.bias * a + norm.bias - norm.running_mean * a)
        first = folded.convs[0]
        device = first.weight.device
        rows = (config.image_bins - 3) // first.stride[0] + 1  # the first convolution's rows
        bin_bias = torch.zeros(first.out_channels, rows, device=device)
        if config.frequency_channel:
            coord = net_input(torch.zeros(1, config.image_bins, 3, device=device), config)[:, 1:2]
            bin_bias = nn.functional.conv2d(coord, first.weight[:, 1:2], stride=first.stride)[0, :, :, 0]
            keep = [0] + ([2] if config.linear_channel else [])
            first = nn.Conv2d(len(keep), first.out_channels, 3, stride=first.stride, device=device)
            first.weight.copy_(folded.convs[0].weight[:, keep])
            first.bias.copy_(folded.convs[0].bias)
        for conv in (first, *folded.convs[1:], folded.dense):  # for the transposed image
            conv.weight = nn.Parameter(conv.weight.mT.contiguous(), requires_grad=False)
            conv.kernel_size = conv.kernel_size[::-1]
        return _InferenceNet(_PooledConv(first, bin_bias), list(folded.convs[1:]), folded.dense,
                             folded.out).eval().to(memory_format=torch.channels_last)


class _PooledConv(nn.Module):
    """``relu(max_pool2d(conv(x) + bin_bias, 2))`` of a 3x3 convolution with stride ``s`` over
    ``(batch, channels, frames, bins)`` images, the bias varying along the bins.

    On the CPU, one GEMM per block of output rows: every pooled output sees a ``(3 + s)``-pixel
    square patch of the input at a ``2 s`` hop, and the four convolution outputs it pools over are
    four placements of the 3x3 kernel in that patch, so ``patches @ W`` gives all four (with their
    biases) and an elementwise maximum pools them, all in cache. Elsewhere (CUDA), the
    convolution and the pool as such. Same values up to float rounding.
    """

    #: Pooled rows (frames) per GEMM: the product (rows x 63 x 128 floats) stays in the L2 cache.
    block_rows = 64

    def __init__(self, conv, bin_bias):
        super().__init__()
        self.conv, s = conv, conv.stride[0]
        cout, cin = conv.weight.shape[:2]
        self.patch, self.step = 3 + s, 2 * s
        w = conv.weight.new_zeros(cin, self.patch, self.patch, 2, 2, cout)
        for a in range(2):
            for b in range(2):
                w[:, s * a:s * a + 3, s * b:s * b + 3, a, b] = conv.weight.permute(1, 2, 3, 0)
        self.register_buffer("gemm_weight", w.reshape(cin * self.patch ** 2, 4 * cout))
        # every conv column's bias (the frequency channel's share plus the convolution's bias)
        bias = bin_bias.T + conv.bias                                   # (conv columns, cout)
        self.register_buffer("col_bias", bias.T[None, :, None].clone())  # (1, cout, 1, columns)
        pooled = bias.shape[0] // 2
        # pooled column j, pool phase (a, b): conv column 2 j + b
        phases = bias[: 2 * pooled].reshape(pooled, 1, 2, cout).expand(pooled, 2, 2, cout)
        self.register_buffer("phase_bias", phases.reshape(pooled, 4 * cout).contiguous())

    def reference(self, x):
        """The convolution, its bias, the pool and the ReLU as such (what runs on a GPU)."""
        y = nn.functional.conv2d(x, self.conv.weight, stride=self.conv.stride)  # col_bias has its bias
        y = y.add_(self.col_bias.to(x.dtype))
        return torch.relu_(nn.functional.max_pool2d(y, 2))

    def forward(self, x):
        if x.device.type != "cpu":
            return self.reference(x)
        cout = self.col_bias.shape[1]
        # (batch, C, rows, cols, patch, patch): rows x cols = the pooled output's pixels
        patches = x.unfold(2, self.patch, self.step).unfold(3, self.patch, self.step)
        batch, _, rows, cols = patches.shape[:4]
        out = x.new_empty(batch, rows, cols, cout)  # channels last
        for n in range(batch):
            for r0 in range(0, rows, self.block_rows):
                r1 = min(rows, r0 + self.block_rows)
                p = patches[n, :, r0:r1].permute(1, 2, 0, 3, 4).reshape((r1 - r0) * cols, -1)
                y = (p @ self.gemm_weight).view(r1 - r0, cols, 4 * cout).add_(self.phase_bias)
                y = y.view(r1 - r0, cols, 4, cout)
                o = out[n, r0:r1]
                torch.maximum(torch.maximum(y[:, :, 0], y[:, :, 1]), y[:, :, 2], out=o)
                torch.maximum(o, y[:, :, 3], out=o).clamp_min_(0.0)
        return out.permute(0, 3, 1, 2)


class _InferenceNet(nn.Module):
    """The folded network (see :func:`_inference_net`): ``(batch, C, frames, bins)`` -> logits
    ``(batch, 2, cols, rows)``."""

    def __init__(self, first, convs, dense, out):
        super().__init__()
        self.first, self.convs = first, nn.ModuleList(convs)
        self.dense, self.out = dense, out

    def forward(self, x):
        x = self.first(x)
        for conv in self.convs:
            x = torch.relu_(nn.functional.max_pool2d(conv(x), 2))
        return self.out(torch.relu_(self.dense(x)))


# -- front end -----------------------------------------------------------------------------------

#: Frames per block of the STFTs below on the CPU: a block's frames, spectra and products stay in
#: the cache (one pass over memory instead of one per operation).
BLOCK_FRAMES = 512


def stft(audio, n_fft: int = 512, hop_length: int = 128):
    """Complex STFT ``(..., n_fft // 2 + 1, frames)`` of torch audio ``(..., samples)``.

    Hann window, centred with zero padding, ``samples // hop_length + 1`` frames, scaled by the
    window's sum so that a full-scale sine has magnitude 0.5 (-6 dB). The values and the
    (frames-major) memory layout are :func:`torch.stft`'s; on the CPU it runs in blocks of
    :data:`BLOCK_FRAMES` frames.
    """
    shape, flat = audio.shape, audio.reshape(-1, audio.shape[-1])
    spec = flat.new_empty(flat.shape[0], flat.shape[-1] // hop_length + 1, n_fft // 2 + 1,
                          dtype=_complex_dtype(flat))
    for b0, b1, block in _stft_blocks(flat, n_fft, hop_length):
        spec[:, b0:b1] = block
    return spec.mT.reshape(*shape[:-1], n_fft // 2 + 1, -1)


def stft_power(audio, n_fft: int = 512, hop_length: int = 128):
    """``|stft(audio)|**2``, ``(..., bins, frames)`` (frames-major), without storing the complex
    STFT (on the CPU, block by block)."""
    shape, flat = audio.shape, audio.reshape(-1, audio.shape[-1])
    out = flat.new_empty(flat.shape[0], flat.shape[-1] // hop_length + 1, n_fft // 2 + 1)
    for b0, b1, block in _stft_blocks(flat, n_fft, hop_length):
        out[:, b0:b1] = power(block)
    return out.mT.reshape(*shape[:-1], n_fft // 2 + 1, -1)


def power(spec):
    """``|spec|**2`` of a complex STFT (cheaper than ``abs().square()``)."""
    return spec.real.square() + spec.imag.square()


def stft_filter(audio, gain, n_fft: int = 512, hop_length: int = 128):
    """``istft(stft(audio) * gain)``: ``audio`` ``(..., samples)`` filtered by a real
    time-frequency gain ``(bins, frames)`` (the same for every channel).

    On the CPU, analysis, gain and synthesis run block by block: no spectrum of the whole signal
    is stored, and every block's work stays in the cache (a GPU takes the signal as one block).
    """
    shape, flat = audio.shape, audio.reshape(-1, audio.shape[-1])
    frames = flat.shape[-1] // hop_length + 1
    if n_fft % hop_length:  # no whole-hop overlap-add: torch.istft on the whole spectrum
        spec = stft(flat, n_fft, hop_length) * gain[:, :frames].to(_complex_dtype(flat))
        return istft(spec, n_fft, hop_length, shape[-1]).reshape(shape)
    by_frame = gain[:, :frames].mT.contiguous()  # (frames, bins); no copy if gain is frames-major
    blocks = ((b0, b1, spec.mul_(by_frame[b0:b1]))
              for b0, b1, spec in _stft_blocks(flat, n_fft, hop_length))
    return _overlap_add(blocks, flat, frames, n_fft, hop_length, shape[-1]).reshape(shape)


def istft(spec, n_fft: int, hop_length: int, length: int):
    """Inverse of :func:`stft`: ``(..., bins, frames)`` complex -> ``(..., length)`` audio."""
    shape = spec.shape
    flat = spec.reshape(-1, *shape[-2:])
    if n_fft % hop_length:
        window = _hann(n_fft, spec.device)
        out = torch.istft(flat * window.sum(), n_fft, hop_length, window=window, center=True,
                          length=length)
        return out.reshape(*shape[:-2], length)
    frames = flat.shape[-1]
    step = _block_frames(frames, spec.device)
    blocks = ((b0, min(frames, b0 + step), flat[..., b0:b0 + step].mT)
              for b0 in range(0, frames, step))
    return _overlap_add(blocks, flat.real, frames, n_fft, hop_length, length
                        ).reshape(*shape[:-2], length)


def _complex_dtype(real):
    """The complex dtype that holds ``real``'s values (complex64 for float32)."""
    return torch.promote_types(real.dtype, torch.complex64)


def _block_frames(frames: int, device) -> int:
    """Frames per block: :data:`BLOCK_FRAMES` on the CPU; all of them on a GPU, where one big
    batch pays better than cache-sized blocks."""
    return BLOCK_FRAMES if device.type == "cpu" else frames


def _stft_blocks(flat, n_fft: int, hop_length: int):
    """Yield ``(b0, b1, spectra)``: :func:`stft`'s frames ``b0:b1`` of ``flat`` ``(batch,
    samples)`` as ``(batch, b1 - b0, bins)`` (frames first), :data:`BLOCK_FRAMES` at a time on the
    CPU, all at once elsewhere."""
    # the scale is folded into the window (the STFT is linear): one pass less over the spectrum
    window = _hann(n_fft, flat.device, scaled=True)
    frames = torch.nn.functional.pad(flat, (n_fft // 2, n_fft // 2)).unfold(-1, n_fft, hop_length)
    count = frames.shape[1]
    step = _block_frames(count, flat.device)
    buffer = flat.new_empty(flat.shape[0], min(count, step), n_fft)
    for b0 in range(0, count, step):
        b1 = min(count, b0 + step)
        yield b0, b1, torch.fft.rfft(torch.mul(frames[:, b0:b1], window, out=buffer[:, : b1 - b0]))


def _overlap_add(blocks, like, frames: int, n_fft: int, hop_length: int, length: int):
    """The inverse STFT's synthesis from ``(b0, b1, spectra (batch, b1 - b0, bins))`` blocks, as
    ``(batch, length)`` audio of ``like``'s batch size, real dtype and device.

    With ``n_fft = k * hop`` every frame is k whole hops, so the overlap-add is k shifted adds per
    block (several times faster than torch.istft's general fold on the CPU), each weighted by a
    synthesis window that also undoes :func:`stft`'s scale and divides by the overlap-added
    squared window where all k frames overlap; only the first and last k - 1 hops, covered by
    fewer frames, are divided by their own sum afterwards.
    """
    k = n_fft // hop_length
    window = _hann(n_fft, None)
    squares = (window ** 2).reshape(k, hop_length)
    interior = squares.sum(dim=0)  # the overlap-added squared window where k frames overlap
    synthesis = ((window * window.sum()).reshape(k, hop_length) / interior).to(like.device)
    batch = like.shape[0]
    acc = like.new_zeros(batch, frames + k - 1, hop_length)
    for b0, b1, spec in blocks:
        seg = torch.fft.irfft(spec, n=n_fft, dim=-1).view(batch, b1 - b0, k, hop_length)
        for j in range(k):  # windowing fused into the adds: no windowed copy of every frame
            acc[:, b0 + j:b1 + j].addcmul_(seg[:, :, j], synthesis[j])
    for h in {*range(k - 1), *range(max(frames, k - 1), frames + k - 1)}:
        # hop h is covered by frames h - j for the j with 0 <= h - j < frames
        cover = squares[max(0, h - frames + 1):min(k - 1, h) + 1].sum(dim=0)
        acc[:, h] *= (interior / cover.clamp_min(1e-8)).to(acc.device)
    start = n_fft // 2  # centred frames: drop the padding
    out = acc.reshape(batch, -1)[:, start:start + length]
    if out.shape[-1] < length:
        out = torch.nn.functional.pad(out, (0, length - out.shape[-1]))
    return out


@lru_cache(maxsize=8)
def _hann(n_fft: int, device, scaled: bool = False):
    """Periodic Hann window; ``scaled`` divides it by its sum (the analysis window of stft)."""
    window = torch.hann_window(n_fft, device=device)
    return window / window.sum() if scaled else window


def features_from_power(power, config: SegmenterConfig, offset_db=0.0):
    """The network's input image in [0, 1] from STFT power ``(..., bins, frames)``.

    Parameters
    ----------
    power : torch.Tensor
        ``|STFT|**2``; only the first ``n_fft // 2`` bins are used.
    offset_db : float or torch.Tensor
        Added to the reference level in dB (training jitters it so the classifier does not depend
        on exactly which pixel was the loudest); a tensor must broadcast as ``(..., 1, 1)``.

    Returns
    -------
    torch.Tensor
        ``(..., n_fft // 2, frames)``: 1 at the reference level, 0 at ``range_db`` below it.
    """

    # in place after the first operation: the same operations in the same order, fewer buffers
    db = (power[..., : config.image_bins, :] + 1e-20).log10_().mul_(10.0)
    ref = db.amax(dim=(-2, -1), keepdim=True).clamp_min(config.silence_db) + offset_db
    return db.sub_(ref).div_(config.range_db).add_(1.0).clamp_(0.0, 1.0)


def net_input(images, config: SegmenterConfig):
    """``(batch, H, W)`` images -> the network's ``(batch, channels, H, W)`` input.

    With ``frequency_channel`` the second channel is each row's bin index over ``n_fft / 2``:
    a property of the absolute position, so windows cropped from a larger image see exactly the
    values the full image has there.
    """
    channels = [images[:, None]]
    if config.frequency_channel:
        rows = torch.arange(images.shape[-2], dtype=images.dtype, device=images.device)
        channels.append((rows / config.image_bins)[None, None, :, None].expand(
            images.shape[0], 1, -1, images.shape[-1]))
    if config.linear_channel:  # 0 dB -> 1, -range_db -> 10**(-range_db / 20)
        channels.append(torch.pow(10.0, (images[:, None] - 1.0) * (config.range_db / 20.0)))
    return channels[0] if len(channels) == 1 else torch.cat(channels, dim=1)


# -- windows -> cells -> mask --------------------------------------------------------------------

def cells_from_windows(window_probs, config: SegmenterConfig):
    """Average overlapping windows' probabilities into cells (the paper's equation).

    Parameters
    ----------
    window_probs : torch.Tensor
        ``(..., rows, cols)`` probability of each window (window ``(i, j)`` starts at pixel
        ``(cell * i, cell * j)``).

    Returns
    -------
    torch.Tensor
        ``(..., rows + window_bins/cell - 1, cols + window_frames/cell - 1)``: each cell's mean
        over the windows that cover it.
    """
    kh, kw = config.window_bins // config.cell, config.window_frames // config.cell
    lead = window_probs.shape[:-2]
    p = window_probs.reshape(-1, 1, *window_probs.shape[-2:])
    ones = torch.ones(1, 1, kh, kw, dtype=p.dtype, device=p.device)
    total = torch.nn.functional.conv_transpose2d(p, ones)
    count = torch.nn.functional.conv_transpose2d(torch.ones_like(p), ones)
    cells = total / count
    return cells.reshape(*lead, *cells.shape[-2:])


def mask_from_cells(cells, config: SegmenterConfig, frames: int):
    """Smooth a cell map ``(..., rows, cols)`` into a ``(..., bins, frames)`` STFT-resolution mask.

    Bilinear interpolation between cell centres (a cell is ``cell`` x ``cell`` pixels); the
    Nyquist bin repeats the top image row.
    """
    lead = cells.shape[:-2]
    # interpolated as (cols, rows): the mask comes out frames-major, the layout of the STFTs it
    # multiplies (a transposed layout would make every product a strided gather)
    c = cells.reshape(-1, 1, *cells.shape[-2:]).mT
    up = torch.nn.functional.interpolate(c, scale_factor=config.cell, mode="bilinear",
                                         align_corners=False)
    up = up[..., :frames, : config.image_bins]
    if up.shape[-2] < frames:  # only when the cells were cropped short: hold the last column
        up = torch.nn.functional.pad(up, (0, 0, 0, frames - up.shape[-2]), mode="replicate")
    up = torch.cat([up, up[..., -1:]], dim=-1)
    return up.reshape(*lead, frames, config.bins).mT


@dataclass
class Segmentation:
    """The segmenter's view of one (mono) signal at 44.1 kHz.

    Attributes
    ----------
    music : np.ndarray
        ``(bins, frames)`` float32 smoothed probability of music at STFT resolution (257 bins of
        86.1 Hz, one frame per 128 samples = 2.9 ms); ``1 - music`` is the noise probability.
    cells : np.ndarray
        ``(16, cols)`` music probability per 16 x 16-pixel cell (row 0 = lowest frequency).
    windows : np.ndarray
        ``(13, cols - 15)`` music probability of every window.
    config : SegmenterConfig
    power : torch.Tensor
        ``(bins, frames)`` power of the analysed STFT (kept for :attr:`cell_level_db`).
    logits : np.ndarray, optional
        ``(13, cols - 15)`` each window's raw logit difference ``z_music - z_noise`` (before
        the config's temperature and bias): what :func:`.calibration.fit_temperature` fits on.
    """

    music: np.ndarray
    cells: np.ndarray
    windows: np.ndarray
    config: SegmenterConfig
    power: Any = field(repr=False)
    logits: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def cell_level_db(self) -> np.ndarray:
        """``(16, cols)`` each cell's mean power in dB relative to the loudest cell (silence is
        -inf): tells "quiet" from "noise". Computed on first use (the effect does not need it)."""
        c, pw = self.config, self.power
        n_cells = self.cells.shape[1]
        level = torch.nn.functional.pad(pw[: c.image_bins], (0, n_cells * c.cell - pw.shape[-1]))
        level = level.reshape(-1, c.cell, n_cells, c.cell).mean(dim=(1, 3))  # 16 x 16-pixel means
        return _numpy(10.0 * torch.log10(level / level.max().clamp_min(1e-30)))

    @property
    def noise(self) -> np.ndarray:
        """``(bins, frames)`` probability of noise."""
        return 1.0 - self.music

    @property
    def frequencies_hz(self) -> np.ndarray:
        """Centre frequency in Hz of each STFT bin (rows of :attr:`music`)."""
        return np.arange(self.config.bins) * self.config.sample_rate / self.config.n_fft

    @property
    def times_s(self) -> np.ndarray:
        """Centre time in s of each STFT frame (columns of :attr:`music`)."""
        return np.arange(self.music.shape[1]) * self.config.hop_length / self.config.sample_rate

    def extent(self) -> tuple[float, float, float, float]:
        """``(left, right, bottom, top)`` in s and Hz, for ``imshow(..., origin="lower")``."""
        c = self.config
        return (0.0, self.music.shape[1] * c.hop_length / c.sample_rate, 0.0, c.sample_rate / 2)

    def music_on_grid(self, frequencies_hz: np.ndarray, times_s: np.ndarray) -> np.ndarray:
        """:attr:`music` interpolated (bilinearly) at other frequencies (Hz) and times (s).

        Returns ``(len(frequencies_hz), len(times_s))`` float32; points beyond the analysed range
        take the nearest edge value. Used to apply the mask to an STFT at another sample rate.
        """

        c = self.config
        rows = np.asarray(frequencies_hz, np.float64) * c.n_fft / c.sample_rate
        cols = np.asarray(times_s, np.float64) * c.sample_rate / c.hop_length
        grid = np.meshgrid(rows, cols, indexing="ij")
        return map_coordinates(self.music, grid, order=1, mode="nearest").astype(np.float32)

    def active_on_grid(self, frequencies_hz: np.ndarray, times_s: np.ndarray,
                       gate_db: float = -60.0) -> np.ndarray:
        """Boolean ``(len(frequencies_hz), len(times_s))``: the cell there is within ``gate_db``
        dB of the loudest cell (quieter cells hold neither music nor noise)."""
        c = self.config
        rows = np.clip((np.asarray(frequencies_hz) * c.n_fft / c.sample_rate / c.cell).astype(int),
                       0, self.cell_level_db.shape[0] - 1)
        cols = np.clip((np.asarray(times_s) * c.sample_rate / c.hop_length / c.cell).astype(int),
                       0, self.cell_level_db.shape[1] - 1)
        return self.cell_level_db[np.ix_(rows, cols)] > gate_db

    def noise_mel_mask(self, frames: int, threshold: float = 0.5, gate_db: float = -60.0):
        """The noise-dominated regions as a :class:`~blendfx.spectral.mask.Mask` on the Riffusion grid.

        Parameters
        ----------
        frames : int
            Columns of the Riffusion image (100 per second).
        threshold : float
            Noise probability from which a pixel belongs to the mask (0.5: noise dominates).
        gate_db : float
            Cells quieter than this (dB re. the loudest cell) are left out: silence is not noise.

        Returns
        -------
        Mask
            ``(512, frames)`` values 0 or 1, row 0 = highest mel bin.
        """

        p = SpectrogramParams()
        centers = librosa.mel_frequencies(p.num_frequencies + 2, fmin=p.min_frequency,
                                          fmax=p.max_frequency, htk=p.mel_scale_type == "htk")[1:-1]
        freqs = centers[::-1]  # image row 0 is the highest mel bin
        times = np.arange(frames) / p.frames_per_second
        noise = 1.0 - self.music_on_grid(freqs, times)
        core = (noise >= threshold) & self.active_on_grid(freqs, times, gate_db)
        return Mask(core.astype(np.float32), p.frames_per_second)


# -- the segmenter -------------------------------------------------------------------------------

class Segmenter:
    """The trained music/noise CNN with its front end and sliding-window segmentation.

    Parameters
    ----------
    config : SegmenterConfig
    device : str
        'auto', 'cpu' or 'cuda:N'.
    training : dict, optional
        Metadata of the training run (saved beside the weights).

    Examples
    --------
    >>> seg = Segmenter.from_pretrained()                     # the shipped weights
    >>> result = seg.segment(mixture, 44100)                   # doctest: +SKIP
    >>> result.music.shape                                     # (257 bins, frames)  # doctest: +SKIP
    """

    #: Windows per trunk pass along time (bounds memory: about 20 MB of features per chunk).
    chunk_windows = 256
    #: Chunks run together in one batch.
    chunk_batch = 1

    def __init__(self, config: SegmenterConfig | None = None, device: str = "cpu",
                 training: dict[str, Any] | None = None):
        self.config = config or SegmenterConfig()
        self.device = resolve_device(device)
        self.net = _build_net(self.config).to(self.device).eval()
        self.training = dict(training or {})
        #: The feature stack of ``config.stack`` (issue 20), or None: the network alone.
        self.stack: FeatureStack | None = None
        #: Inference copy with batch norm folded into the convolutions (set by from_pretrained;
        #: None while training, when ``net`` itself is used).
        self._folded = None

    # -- weights ----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str] | None = None,
                        device: str = "cpu") -> Segmenter:
        """Load weights (safetensors, never pickle) and their JSON config.

        Parameters
        ----------
        path : str or Path, optional
            A folder holding ``segmenter.safetensors`` and ``segmenter.json``, or the
            ``.safetensors`` file itself (its ``.json`` beside it). Default: the weights shipped
            inside the package.
        device : str
            Torch device.

        Raises
        ------
        ModelNotFoundError
            When the weights or the config file are missing or unreadable.
        """

        weights, config_path = resolve_weight_paths(path)
        for f in (weights, config_path):
            if not f.is_file():
                raise ModelNotFoundError(f"segmenter weights not found: {f} is missing; {TRAIN_HINT}")
        try:
            meta = json.loads(config_path.read_text(encoding="utf-8"))
            config = SegmenterConfig.from_dict(meta["config"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelNotFoundError(f"segmenter config {config_path} is not valid: {exc}") from None
        model = cls(config, device=device, training=meta.get("training"))
        try:
            state = load_file(str(weights), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelNotFoundError(f"segmenter weights {weights} are not a safetensors file: "
                                     f"{exc}; {TRAIN_HINT}") from None
        try:
            stack_state = {k: state.pop(k) for k in list(state) if k.startswith(STACK_PREFIX)}
            if config.stack is not None:
                model.stack = FeatureStack.from_state(config.stack, stack_state)
            elif stack_state:
                raise RuntimeError("stack tensors but no 'stack' in the config")
            model.net.load_state_dict(state, strict=True)
        except (RuntimeError, KeyError, TypeError, ParameterError) as exc:
            raise ModelNotFoundError(f"segmenter weights {weights} do not match {config_path}: "
                                     f"{str(exc).splitlines()[0]}") from None
        model.net.to(model.device).eval()
        if config.frontend == "stft":
            model._folded = _inference_net(model.net, model.config)
        return model

    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``segmenter.safetensors`` and ``segmenter.json`` into ``folder``; return it."""

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.net.state_dict().items()}
        if self.stack is not None:
            state.update(self.stack.state())
        with atomic_path(folder / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "model": "blendfx-segmenter"})
        meta = {"config": self.config.to_dict(), "training": self.training}
        atomic_write_text(folder / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder

    # -- inference --------------------------------------------------------------------------
    def window_logits(self, image):
        """Logits ``(2, rows, cols)`` of every 16-pixel-hop window of an image ``(H, W)``.

        The image is padded with zeros (the floor of the input range) to at least one window and
        to a whole number of hops, so the last frames are covered too; the trunk runs over time
        chunks (each a whole number of windows, overlapping by one window minus one hop) batched
        ``chunk_batch`` at a time, through the folded network of :func:`_inference_net` (built
        here from the current weights when :meth:`from_pretrained` did not build it), which
        reads the image transposed: ``image.mT`` is contiguous when ``image`` comes from the
        frames-major STFTs of this module.
        """
        c = self.config
        _, w = image.shape
        cols = c.window_columns(w)
        if c.frontend == "context":
            return self._context_logits(image, cols)
        chunks = -(-cols // self.chunk_windows)
        k = -(-cols // chunks)  # windows per chunk, spread evenly (padding: < 1 window per chunk)
        span = c.window_frames + c.cell * (k - 1)
        need = c.cell * k * (chunks - 1) + span
        net = self._folded if self._folded is not None else _inference_net(self.net, c)
        cfg = replace(c, frequency_channel=False)  # the frequency channel is inside the network
        frames_first = torch.nn.functional.pad(image.mT, (0, 0, 0, need - w))  # (need, H)
        padded = net_input(frames_first[None], cfg)  # (1, C, need, H)
        outs = []
        with torch.inference_mode():
            for start in range(0, chunks, self.chunk_batch):
                pieces = [padded[..., i * c.cell * k:i * c.cell * k + span, :]
                          for i in range(start, min(chunks, start + self.chunk_batch))]
                batch = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
                outs.append(net(batch.contiguous(memory_format=torch.channels_last)).float())
        logits = torch.cat(outs)  # (chunks, 2, k, rows)
        logits = logits.permute(1, 3, 0, 2).reshape(2, logits.shape[3], -1)
        return logits[..., :cols]

    #: "context" front end: windows per chunk (each chunk adds ``margin_frames`` of context on
    #: both sides, so its logits equal those of one pass over the whole image).
    context_chunk_windows = 1024

    def _context_logits(self, image, cols: int):
        """:meth:`window_logits` of the "context" network, over overlapping time chunks."""
        c = self.config
        need = c.window_frames + c.cell * (cols - 1)
        padded = torch.nn.functional.pad(image, (0, need - image.shape[-1]))[None, None]
        margin = ContextNet.margin_frames
        outs = []
        with torch.inference_mode():
            for a in range(0, cols, self.context_chunk_windows):
                b = min(cols, a + self.context_chunk_windows)
                lo = max(0, a * c.cell - margin)
                hi = min(need, (b - 1) * c.cell + c.window_frames + margin)
                z = self.net(padded[..., lo:hi]).float()[0]
                first = (a * c.cell - lo) // c.cell
                outs.append(z[..., first:first + b - a])
        return torch.cat(outs, dim=-1)

    def segment(self, audio: np.ndarray, sample_rate: float) -> Segmentation:
        """Segment ``audio`` (any layout, any rate; mixed to mono) into music and noise.

        Returns
        -------
        Segmentation
            Probabilities at the 44.1 kHz STFT's resolution, per cell and per window.
        """

        data, _ = to_channels_first(audio)
        mono = resample(to_mono(data), sample_rate, self.config.sample_rate)
        x = torch.as_tensor(np.ascontiguousarray(mono), device=self.device)
        return self.segment_tensor(x)

    def segment_tensor(self, audio) -> Segmentation:
        """:meth:`segment` for a 1-D torch tensor already at the config's sample rate."""
        c = self.config
        return self.segment_power(stft_power(audio.float(), c.n_fft, c.hop_length))

    def segment_power(self, pw) -> Segmentation:
        """:meth:`segment` from the power ``(bins, frames)`` of :func:`stft` of mono audio at the
        config's rate (lets a caller that already has the STFT skip a second one)."""
        c = self.config
        frames = pw.shape[-1]
        image = features_from_power(pw, c)
        if self.stack is None:
            logits = self.window_logits(image)
        else:  # issue 20: the feature stack's logit replaces the network's
            # the features on a second thread (when blendfx may use two cores) while the CNN runs
            cols = c.window_columns(frames)
            with thread_pool(1, "segmenter-features") as pool:
                feats = pool.submit(window_features, pw, cols)
                logits = self.window_logits(image)
                z = self.stack.logits_from_features(feats.result(), logits[1] - logits[0])
            logits = torch.stack([torch.zeros_like(z), z])
        probs = music_probability(logits, c)
        cells = cells_from_windows(probs, c)
        n_cells = -(-frames // c.cell)
        cells = cells[:, :n_cells]
        music = mask_from_cells(cells, c, frames)
        return Segmentation(music=_numpy(music), cells=_numpy(cells), windows=_numpy(probs),
                            config=c, power=pw, logits=_numpy(logits[1] - logits[0]))

    def probabilities(self, audio: np.ndarray, sample_rate: float) -> MusicProbabilities:
        """Per-window and per-cell music probabilities of ``audio`` with their times and bands.

        The stable way to score the model with one's own labels: see :class:`MusicProbabilities`
        for the grid (seconds and Hz). The audio is validated, mixed to mono and, at any rate
        other than the config's (44.1 kHz), resampled to it for the analysis.

        Parameters
        ----------
        audio : np.ndarray
            Samples, 1-D (mono) or 2-D ``(channels, samples)`` / ``(samples, channels)``.
        sample_rate : float
            Its rate in Hz (> 0). Below 44.1 kHz the band above the input's Nyquist frequency is
            empty after resampling: the windows and cells wholly above it are flagged
            (``window_in_band``/``cell_in_band`` False) and a :class:`UserWarning` says so.

        Raises
        ------
        ParameterError
            Empty audio, NaN or infinite samples, a square 2-D array (channels and samples cannot
            be told apart), more than two dimensions, a non-numeric dtype, or a sample rate
            that is not a positive number.
        """

        sr = check_sample_rate(sample_rate)
        if np.size(audio) == 0:
            raise ParameterError("audio is empty (0 samples): nothing to segment")
        data, _ = to_channels_first(audio, name="audio")
        check_finite(data, name="audio")
        c = self.config
        nyquist = sr / 2.0
        if nyquist < c.sample_rate / 2.0:
            warnings.warn(f"audio at {sr:g} Hz is resampled to {c.sample_rate} Hz for the "
                          f"segmenter; its windows and cells above the input's Nyquist frequency "
                          f"({nyquist:g} Hz) see no signal (flagged by window_in_band / "
                          f"cell_in_band)", UserWarning, stacklevel=2)
        seg = self.segment(data, sr)
        return MusicProbabilities.from_segmentation(seg, data.shape[1] / sr, sr)


def music_probability(logits, config: SegmenterConfig):
    """Music probabilities from window logits ``(2, ...)`` (0 = noise, 1 = music), calibrated by
    ``config.temperature`` and ``config.logit_bias``; with neither set, exactly the softmax."""
    if not config.calibrated:
        return torch.softmax(logits, dim=0)[1]
    return torch.sigmoid((logits[1] - logits[0]) / config.temperature + config.logit_bias)


@dataclass(frozen=True)
class MusicProbabilities:
    """Music probabilities on the segmenter's grid, with the time and frequency extent of each.

    Grid conventions (analysis at ``sample_rate`` = 44.1 kHz, STFT hop ``hop_s`` = 128 samples =
    2.90 ms, 256 image bins of ``bin_hz`` = 86.13 Hz; times in s from the first sample of the
    input, frequencies in Hz): STFT frame ``f`` stands for ``[f, f + 1) * hop_s`` and bin ``k``
    for ``[k, k + 1) * bin_hz``. Window ``(i, j)`` spans frames ``16 j`` to ``16 j + 255`` (0.743
    s) and bins ``16 i`` to ``16 i + 63`` (5.51 kHz); cell ``(i, j)`` spans 16 x 16 of them
    (46.4 ms x 1.38 kHz). Row 0 is the lowest band. Input shorter than one window, or not a
    whole number of window hops, is zero-padded at the end (the padding is silence at the
    image's floor), so the last window or cell may end after ``duration_s``.

    Attributes
    ----------
    windows : np.ndarray
        ``(13, n_windows)`` float32 p(music) of every window (calibrated by the weights'
        temperature); ``1 - p`` is p(noise).
    window_logits : np.ndarray
        ``(13, n_windows)`` float32 raw logit difference ``z_music - z_noise`` of each window,
        before calibration (to fit or check a calibration of one's own).
    window_start_s, window_end_s : np.ndarray
        ``(n_windows,)`` float64 time span of each window column in s.
    window_low_hz, window_high_hz : np.ndarray
        ``(13,)`` float64 frequency span of each window row in Hz.
    window_in_band : np.ndarray
        ``(13,)`` bool: the row starts below the input's Nyquist frequency (False rows see only
        the silence above a low input rate).
    cells : np.ndarray
        ``(16, n_cells)`` float32 p(music) per cell: the mean over the windows covering it
        (the paper's averaging), ``n_cells = ceil(frames / 16)`` with ``frames = samples // 128
        + 1`` at 44.1 kHz.
    cell_start_s, cell_end_s : np.ndarray
        ``(n_cells,)`` float64 time span of each cell column in s.
    cell_low_hz, cell_high_hz : np.ndarray
        ``(16,)`` float64 frequency span of each cell row in Hz.
    cell_in_band : np.ndarray
        ``(16,)`` bool: the cell row starts below the input's Nyquist frequency.
    duration_s : float
        Length of the input in s.
    input_sample_rate : float
        The input's rate in Hz (the analysis resampled it when it differs from ``sample_rate``).
    sample_rate : int
        Analysis rate in Hz (44,100).
    hop_s, bin_hz : float
        Seconds per STFT frame (2.90 ms) and Hz per bin (86.13 Hz) of the analysis.
    temperature, logit_bias : float
        The calibration applied to ``window_logits`` to give ``windows``.
    """

    windows: np.ndarray
    window_logits: np.ndarray
    window_start_s: np.ndarray
    window_end_s: np.ndarray
    window_low_hz: np.ndarray
    window_high_hz: np.ndarray
    window_in_band: np.ndarray
    cells: np.ndarray
    cell_start_s: np.ndarray
    cell_end_s: np.ndarray
    cell_low_hz: np.ndarray
    cell_high_hz: np.ndarray
    cell_in_band: np.ndarray
    duration_s: float
    input_sample_rate: float
    sample_rate: int
    hop_s: float
    bin_hz: float
    temperature: float = 1.0
    logit_bias: float = 0.0

    @classmethod
    def from_segmentation(cls, seg: Segmentation, duration_s: float,
                          input_sample_rate: float) -> MusicProbabilities:
        """The grid of ``seg`` (the segmenter's output for audio of ``duration_s`` s)."""
        c = seg.config
        hop_s, bin_hz = c.hop_length / c.sample_rate, c.sample_rate / c.n_fft
        rows, cols = seg.windows.shape
        starts = np.arange(cols) * c.cell * hop_s
        lows = np.arange(rows) * c.cell * bin_hz
        cell_rows, cell_cols = seg.cells.shape
        cell_starts = np.arange(cell_cols) * c.cell * hop_s
        cell_lows = np.arange(cell_rows) * c.cell * bin_hz
        nyquist = float(input_sample_rate) / 2.0
        logits = seg.logits if seg.logits is not None else np.full(seg.windows.shape, np.nan,
                                                                    np.float32)
        return cls(windows=seg.windows, window_logits=logits,
                   window_start_s=starts, window_end_s=starts + c.window_frames * hop_s,
                   window_low_hz=lows, window_high_hz=lows + c.window_bins * bin_hz,
                   window_in_band=lows < nyquist,
                   cells=seg.cells, cell_start_s=cell_starts, cell_end_s=cell_starts + c.cell * hop_s,
                   cell_low_hz=cell_lows, cell_high_hz=cell_lows + c.cell * bin_hz,
                   cell_in_band=cell_lows < nyquist, duration_s=float(duration_s),
                   input_sample_rate=float(input_sample_rate), sample_rate=int(c.sample_rate),
                   hop_s=hop_s, bin_hz=bin_hz, temperature=float(c.temperature),
                   logit_bias=float(c.logit_bias))


def _numpy(t) -> np.ndarray:
    """A float32 numpy view (no copy on the CPU) of a torch tensor."""
    return t.detach().float().cpu().numpy()


def resolve_weight_paths(path: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    p = default_weights_dir() if path is None else Path(path)
    if p.suffix == ".safetensors":
        return p, p.with_suffix(".json")
    if p.suffix == ".json":
        return p.with_suffix(".safetensors"), p
    return p / WEIGHTS_FILE, p / CONFIG_FILE


@lru_cache(maxsize=4)
def _cached(path: str, device: str, mtime: float) -> Segmenter:
    return Segmenter.from_pretrained(path or None, device=device)


def load_segmenter(path: str | os.PathLike[str] | None = None, device: str = "cpu") -> Segmenter:
    """A shared, cached :class:`Segmenter` for ``path`` (default: the shipped weights).

    Effects use this so that many instances share one loaded model; it is reloaded when the
    weights file changes on disk.
    """

    weights, _ = resolve_weight_paths(path)
    try:
        mtime = weights.stat().st_mtime
    except OSError:
        mtime = -1.0  # from_pretrained raises the clear error
    return _cached(str(path or ""), str(resolve_device(device)), mtime)
