"""Long spectrogram images as model-sized windows, and back to one image and one audio signal.

A diffusion model sees 512 columns (5.12 s) at a time. A longer image is covered in two *waves*
of windows so that every window of a wave is independent (and the wave can run as one batch on
the device) while every seam is still generated with context on both sides:

- **anchors** (wave 1): windows of ``A <= 512`` columns, separated by gaps of ``g`` columns;
- **bridges** (wave 2): one per gap, ``g + 2c`` columns wide, whose first and last ``c`` columns
  (the *context*) overlap the neighbouring anchors and are pinned to them while the gap is
  generated: the bridge continues the left anchor's tail into the right anchor's head.

::

    | anchor 0 (A) |   gap (g)   | anchor 1 (A) |   gap   | anchor 2 |
               |c|   bridge 0   |c|         |c| bridge 1 |c|

:func:`assemble` pastes the decoded windows back together, crossfading each context region
linearly from the anchor to the bridge (away from each window's border, where a decoder sees its
zero padding), and :func:`invert_long` turns the whole image back to audio in segments of up to
``segment`` columns with a short crossfade, so the inverse of a long file fits in memory and
there is no seam at window boundaries at all.

**Joins** (a video's cuts): with ``joins``, :func:`plan_windows` covers each stretch between
joins with its own anchors and bridges, starting at the join, so no window straddles a cut and
each stretch can have its own prompt; the stretch before a join runs ``join_fade`` columns past
it, and :func:`assemble` crossfades from it into the next stretch over those columns, starting
at the join::

    | anchor | bridge | anchor |fade|            <- stretch 0 (ends at the join + fade)
                               | anchor | bridge | anchor |   <- stretch 1 (starts at the join)
                               ^ join
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from blendfx.errors import ParameterError
from blendfx.spectral.spectrogram import SpectrogramConverter
from blendfx.spectral.spectrogram_image import SpectrogramImage, mel_from_image

__all__ = ["Window", "WindowPlan", "plan_windows", "pad_columns", "assemble", "invert_long",
           "WINDOW_COLUMNS", "CONTEXT_COLUMNS"]

#: The model's window: 512 columns = 5.12 s at 100 columns per second.
WINDOW_COLUMNS = 512
#: Context each bridge shares with each neighbouring anchor: 128 columns = 1.28 s.
CONTEXT_COLUMNS = 128


@dataclass(frozen=True)
class Window:
    """One model window over a long image.

    Attributes
    ----------
    start : int
        First column in the (padded) image.
    width : int
        Columns.
    kind : str
        "anchor" (wave 1) or "bridge" (wave 2).
    index : int
        Position in time order (anchors even, bridges odd): seeds derive from it, so a window
        gets the same random numbers whatever batch it runs in.
    context : int
        Columns at each side pinned to the neighbouring anchors (bridges; 0 for anchors).
    segment : int
        The stretch between joins it belongs to (0 without joins).
    """

    start: int
    width: int
    kind: str
    index: int
    context: int = 0
    segment: int = 0

    @property
    def stop(self) -> int:
        return self.start + self.width


@dataclass(frozen=True)
class WindowPlan:
    """How an image of ``frames`` columns is covered (see module docstring).

    Attributes
    ----------
    frames : int
        Columns of the real image.
    padded : int
        Columns the windows cover (>= ``frames``; the image is padded, the result cropped).
    windows : tuple of Window
        In time order.
    segments : tuple of (start, stop, fade)
        The stretches between joins: columns ``[start, stop)`` plus ``fade`` columns of
        crossfade into the next one (one stretch ``(0, frames, 0)`` without joins).
    """

    frames: int
    padded: int
    windows: tuple[Window, ...]
    segments: tuple[tuple[int, int, int], ...] = ()

    def segment_of(self, win: Window) -> tuple[int, int, int]:
        """``(start, stop, fade)`` of the stretch ``win`` belongs to."""
        return self.segments[win.segment] if self.segments else (0, self.frames, 0)

    @property
    def anchors(self) -> list[Window]:
        return [w for w in self.windows if w.kind == "anchor"]

    @property
    def bridges(self) -> list[Window]:
        return [w for w in self.windows if w.kind == "bridge"]

    @property
    def generated_columns(self) -> int:
        """Columns the model generates in total (the cost, in window columns)."""
        return sum(w.width for w in self.windows)


def _round_up(x: float, multiple: int) -> int:
    return int(math.ceil(x / multiple) * multiple)


def plan_windows(frames: int, *, multiple: int = 64, window: int = WINDOW_COLUMNS,
                 context: int = CONTEXT_COLUMNS, min_gap: int | None = None,
                 joins: list[int] | tuple[int, ...] = (), join_fade: int = 8,
                 min_segment: int = 25) -> WindowPlan:
    """Cover ``frames`` columns with anchors and bridges at the least generated columns.

    Parameters
    ----------
    frames : int
        Image columns (100 per second).
    multiple : int
        Window widths are multiples of this (the model's size granularity, 64 for SD).
    window : int
        Widest window (512).
    context : int
        Columns each bridge shares with each anchor (128); a multiple of ``multiple // 8``.
    min_gap : int, optional
        Narrowest gap a bridge generates (default ``multiple``).
    joins : sequence of int
        Columns where a new stretch starts (see the module docstring); joins closer than
        ``min_segment`` columns to another join or to either end are dropped.
    join_fade : int
        Columns of crossfade after each join.
    min_segment : int
        Shortest stretch (columns).

    Returns
    -------
    WindowPlan
        One anchor of ``roundup(frames, multiple)`` columns when the image fits one window;
        else anchors of equal width ``A`` and bridges of equal width ``g + 2 * context``; with
        joins, such a cover per stretch.
    """
    frames = int(frames)
    if frames < 1:
        raise ParameterError(f"cannot plan windows over {frames} columns")
    cols = [0]
    for j in sorted(int(round(j)) for j in joins):
        if j - cols[-1] >= min_segment and frames - j >= min_segment:
            cols.append(j)
    if len(cols) > 1:
        cols.append(frames)
        windows: list[Window] = []
        segments = []
        padded = frames
        base = 0
        for k, (a, b) in enumerate(zip(cols[:-1], cols[1:], strict=True)):
            fade = int(join_fade) if b < frames else 0
            sub = plan_windows(b - a + fade, multiple=multiple, window=window, context=context,
                               min_gap=min_gap)
            windows += [Window(a + w.start, w.width, w.kind, base + w.index, w.context, k)
                        for w in sub.windows]
            base += len(sub.windows) + 1  # anchors keep even indices
            segments.append((a, b, fade))
            padded = max(padded, a + sub.padded)
        return WindowPlan(frames, padded, tuple(windows), tuple(segments))
    if window % multiple or window < multiple:
        raise ParameterError(f"window {window} must be a multiple of {multiple}")
    if frames <= window:
        width = min(window, _round_up(frames, multiple))
        return WindowPlan(frames, width, (Window(0, width, "anchor", 0),))
    min_gap = multiple if min_gap is None else _round_up(min_gap, multiple)
    max_gap = window - 2 * context
    if max_gap < min_gap or (2 * context) % multiple:
        raise ParameterError(f"context {context} leaves no gap in a {window}-column window "
                             f"(2 x context must be a multiple of {multiple} and < window)")
    best = None
    first = max(2, math.ceil((frames + max_gap) / (window + max_gap)))
    for n in range(first, first + 3 + frames // window):
        for width in range(window, 2 * context - 1, -multiple):
            if width < max(multiple, context):
                continue
            gap = max(min_gap, _round_up((frames - n * width) / (n - 1), multiple))
            if gap > max_gap:
                continue
            cost = n * width + (n - 1) * (gap + 2 * context)
            key = (cost, 2 * n - 1, -width)
            if best is None or key < best[0]:
                best = (key, n, width, gap)
    if best is None:  # pragma: no cover - the loop always finds full-width anchors
        raise ParameterError(f"no window plan for {frames} columns")
    _, n, width, gap = best
    windows = []
    for k in range(n):
        start = k * (width + gap)
        windows.append(Window(start, width, "anchor", 2 * k))
        if k < n - 1:
            windows.append(Window(start + width - context, gap + 2 * context, "bridge", 2 * k + 1,
                                  context))
    padded = n * width + (n - 1) * gap
    return WindowPlan(frames, padded, tuple(windows))


def pad_columns(array: np.ndarray, columns: int, mode: str = "symmetric") -> np.ndarray:
    """Extend ``(..., frames)`` to ``columns`` along the last axis (mirrored, or zeros with
    ``mode="constant"``); never shortens."""
    extra = int(columns) - array.shape[-1]
    if extra <= 0:
        return array
    pad = [(0, 0)] * (array.ndim - 1) + [(0, extra)]
    return np.pad(array, pad, mode=mode)


def assemble(plan: WindowPlan, images: list[np.ndarray]) -> np.ndarray:
    """Paste decoded windows ``(rows, width)`` (in ``plan.windows`` order) into one
    ``(rows, plan.frames)`` float32 image, crossfading every context region linearly from the
    anchor to the bridge and back, and (with joins) each stretch into the next over its fade
    columns, from the join on."""
    if len(images) != len(plan.windows):
        raise ParameterError(f"{len(images)} images for {len(plan.windows)} windows")
    if len(plan.segments) <= 1:
        return _assemble_one(plan.windows, images, plan.padded)[:, :plan.frames]
    rows = images[0].shape[0]
    out = np.zeros((rows, plan.padded), np.float32)
    fade_in = 0
    for k, (a, b, fade) in enumerate(plan.segments):
        pairs = [(w, img) for w, img in zip(plan.windows, images, strict=True) if w.segment == k]
        wins = [Window(w.start - a, w.width, w.kind, w.index, w.context) for w, _ in pairs]
        img = _assemble_one(tuple(wins), [i for _, i in pairs], max(w.stop for w in wins))
        img = img[:, :min(b - a + fade, out.shape[1] - a)]
        if fade_in:
            ramp = ((np.arange(fade_in, dtype=np.float32) + 0.5) / fade_in)[None, :]
            img = img.copy()
            img[:, :fade_in] = out[:, a:a + fade_in] * (1 - ramp) + img[:, :fade_in] * ramp
        out[:, a:a + img.shape[1]] = img
        fade_in = fade
    return out[:, :plan.frames]


def _assemble_one(windows: tuple[Window, ...], images: list[np.ndarray], padded: int) -> np.ndarray:
    """One stretch's windows (starts relative to it) pasted into ``(rows, padded)``."""
    rows = images[0].shape[0]
    out = np.zeros((rows, padded), np.float32)
    for win, img in zip(windows, images, strict=True):
        if img.shape != (rows, win.width):
            raise ParameterError(f"window {win.index} image has shape {img.shape}, "
                                 f"expected {(rows, win.width)}")
        if win.kind == "anchor":
            out[:, win.start:win.stop] = img
    for win, img in zip(windows, images, strict=True):
        if win.kind != "bridge":
            continue
        c = win.context
        ramp = ((np.arange(c, dtype=np.float32) + 0.5) / c)[None, :]
        left = slice(win.start, win.start + c)
        right = slice(win.stop - c, win.stop)
        out[:, left] = out[:, left] * (1 - ramp) + img[:, :c] * ramp
        out[:, win.start + c:win.stop - c] = img[:, c:win.width - c]
        out[:, right] = img[:, win.width - c:] * (1 - ramp) + out[:, right] * ramp
    return out


def invert_long(pixels: np.ndarray, max_value: float, converter: SpectrogramConverter, *,
                segment: int = 2048, overlap: int = 32, batch: int = 8, n_iter: int | None = None,
                mel_iters: int | None = None, seed: int = 0, power: float = 0.25) -> np.ndarray:
    """Audio (1-D float32, ``frames * hop`` samples) from a long 8-bit spectrogram image.

    The image is cut into segments of at most ``segment`` columns overlapping by ``overlap``;
    segments are inverted in batches of ``batch`` with the converter's batched Griffin-Lim and
    joined with linear crossfades over the overlaps. An image of at most ``segment`` columns is
    inverted whole.

    Parameters
    ----------
    pixels : np.ndarray
        ``(mels, frames)`` image values 0..255 (0 = loudest), any float or uint8.
    max_value : float
        The mel magnitude pixel 0 stands for (keep the source's true maximum).
    converter : SpectrogramConverter
        Does the inverse (on its device).
    n_iter, mel_iters : int, optional
        Passed to :meth:`SpectrogramConverter.audio_from_mel` (its defaults when None).
    """
    pix = np.clip(np.rint(np.asarray(pixels, np.float32)), 0, 255).astype(np.uint8)
    mel = mel_from_image(SpectrogramImage(pix, float(max_value), power))
    frames = mel.shape[1]
    hop = converter.params.hop_length
    kwargs = {"seed": int(seed)}
    if n_iter is not None:
        kwargs["n_iter"] = int(n_iter)
    if mel_iters is not None:
        kwargs["mel_iters"] = int(mel_iters)
    if frames <= segment:
        return converter.audio_from_mel(mel[None], **kwargs)[0].cpu().numpy().astype(np.float32)
    step = segment - overlap
    starts = list(range(0, frames - overlap, step))
    pieces = []
    for i in range(0, len(starts), batch):
        group = starts[i:i + batch]
        stack = np.stack([pad_columns(mel[:, s:s + segment], segment, "constant") for s in group])
        pieces.extend(converter.audio_from_mel(stack, **kwargs).cpu().numpy())
    out = np.zeros(frames * hop, np.float32)
    fade = overlap * hop
    ramp = (np.arange(fade, dtype=np.float32) + 0.5) / fade
    for s, piece in zip(starts, pieces, strict=True):
        a = s * hop
        piece = piece[:len(out) - a].astype(np.float32)
        if s > 0:
            piece[:fade] *= ramp
            out[a:a + fade] *= 1 - ramp
            out[a:a + fade] += piece[:fade]
            out[a + fade:a + len(piece)] = piece[fade:]
        else:
            out[:len(piece)] = piece
    return out
