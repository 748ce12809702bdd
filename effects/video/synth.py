"""Test videos written with PyAV: shots with known cut times, still or fast, with or without
sound, constant or variable frame rate, any size (8K included).

:func:`write_video` returns the cut times (s) it put in, so tests can check a detector against
the truth. Every shot has its own colour and texture, so a cut changes the picture the way a
real cut does; a 'still' shot barely moves (sensor noise only), a 'fast' one pans its texture
by a large step every frame and moves a bright block across it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

__all__ = ["ShotSpec", "write_video", "frame_times"]


@dataclass
class ShotSpec:
    """One synthesized shot: its length in frames, 'still' or 'fast', and a seed for its look."""

    frames: int
    kind: str = "still"
    seed: int = 0


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random RGB picture (float 0..1) with its own dominant colour (a flat colour
    for pictures over 4K, which would take long to texture)."""
    if h * w > 4096 * 2160:
        return np.broadcast_to(rng.random(3) * 0.8 + 0.1, (h, w, 3))
    small = rng.random((max(2, h // 16), max(2, w // 16), 3))
    big = np.kron(small, np.ones((16, 16, 1)))[:h, :w]
    if big.shape[0] < h or big.shape[1] < w:
        big = np.pad(big, ((0, h - big.shape[0]), (0, w - big.shape[1]), (0, 0)), mode="edge")
    tint = rng.random(3)
    return np.clip(0.35 * big + 0.65 * tint * rng.uniform(0.4, 1.0), 0.0, 1.0)


def _flat_yuv(rgb: np.ndarray, width: int, height: int, pix_fmt: str):
    """A flat-colour 4:2:0 frame built directly (BT.601, limited range)."""
    r, g, b = (float(c) for c in rgb)
    y = 16 + 219 * (0.299 * r + 0.587 * g + 0.114 * b)
    u = 128 + 224 * (-0.168736 * r - 0.331264 * g + 0.5 * b)
    v = 128 + 224 * (0.5 * r - 0.418688 * g - 0.081312 * b)
    data = np.empty((height * 3 // 2, width), dtype=np.uint8)
    data[:height] = int(round(y))
    q = height // 4
    data[height: height + q] = int(round(u))
    data[height + q:] = int(round(v))
    return av.VideoFrame.from_ndarray(data, format="yuv420p" if pix_fmt != "yuvj420p" else "yuvj420p")


def frame_times(shots: list[ShotSpec], fps: float, vfr: bool = False, seed: int = 0) -> np.ndarray:
    """Presentation times (s) of every frame: ``k / fps``, or with ``vfr`` intervals that
    alternate irregularly between 0.5 and 1.5 frame periods (the mean stays ``1 / fps``)."""
    n = sum(s.frames for s in shots)
    if not vfr:
        return np.arange(n) / fps
    rng = np.random.default_rng(seed)
    dt = rng.uniform(0.5, 1.5, n) / fps
    return np.concatenate([[0.0], np.cumsum(dt[:-1])])


def write_video(path: str | os.PathLike[str], shots: list[ShotSpec], *, fps: float = 24.0,
                size: tuple[int, int] = (320, 180), codec: str = "libx264", audio: str | None = "tone",
                sample_rate: int = 44100, vfr: bool = False, seed: int = 0) -> np.ndarray:
    """Write a test video and return its cut times in s (the first frame of every shot after
    the first).

    Parameters
    ----------
    path : str or os.PathLike
        Output file; the container follows the extension (.mp4, .webm, .mkv, .avi).
    shots : list of ShotSpec
    fps : float
        Frame rate (the mean rate with ``vfr``).
    size : (width, height)
        Picture size in pixels (even numbers).
    codec : str
        Video encoder: 'libx264', 'mpeg4', 'libvpx', 'mjpeg', ...
    audio : {'tone', 'noise', None}
        A stereo soundtrack (a 220 Hz tone with a 2 Hz tremolo, or pink-ish noise), or none.
    sample_rate : int
        Soundtrack rate in Hz.
    vfr : bool
        Variable frame rate (see :func:`frame_times`).
    """
    path = os.fspath(path)
    width, height = size
    times = frame_times(shots, fps, vfr, seed)
    ext = os.path.splitext(path)[1].lower()
    acodec = {".webm": "libopus", ".mp4": "aac", ".mkv": "aac", ".mov": "aac", ".avi": "mp3"}.get(ext, "aac")
    tb = 1000 if vfr else None
    with av.open(path, "w") as out:
        rate = Fraction(fps).limit_denominator(1001)
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            vs.options = {"preset": "ultrafast", "crf": "23"}
        if codec == "libvpx":
            vs.options = {"deadline": "realtime", "cpu-used": "8", "b": "1M"}
        if tb:
            vs.time_base = Fraction(1, tb)
            vs.codec_context.time_base = Fraction(1, tb)
        as_ = None
        if audio:
            as_ = out.add_stream(acodec, rate=sample_rate if acodec != "libopus" else 48000)
            as_.layout = "stereo"
        idx = 0
        cuts = []
        for s, shot in enumerate(shots):
            rng = np.random.default_rng([seed, shot.seed, s])
            pad = width if shot.kind == "fast" else 0
            tex = _texture(rng, height, width + pad)
            if s:
                cuts.append(times[idx])
            for k in range(shot.frames):
                if shot.kind == "fast":
                    x = (k * max(8, width // 12)) % pad
                    img = tex[:, x: x + width].copy()
                    by = int((k * 7) % max(1, height - height // 4))
                    bx = int((k * 23) % max(1, width - width // 5))
                    img[by: by + height // 4, bx: bx + width // 5] = 1.0 - img[by: by + height // 4,
                                                                               bx: bx + width // 5]
                elif height * width > 4096 * 2160:
                    img = tex[:, :width]
                else:
                    img = tex[:, :width] + rng.normal(0.0, 0.004, (height, width, 1))
                if height * width > 4096 * 2160:  # flat colour, straight to planar YUV
                    frame = _flat_yuv(np.asarray(img[0, 0]), width, height, vs.pix_fmt)
                else:
                    rgb = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                if tb:
                    frame.pts = int(round(times[idx] * tb))
                    frame.time_base = Fraction(1, tb)
                else:
                    frame.pts = idx
                for packet in vs.encode(frame):
                    out.mux(packet)
                idx += 1
        for packet in vs.encode():
            out.mux(packet)
        if as_ is not None:
            rate_a = as_.codec_context.sample_rate
            total = times[-1] + (1.0 / fps)
            n = int(round(total * rate_a))
            t = np.arange(n) / rate_a
            if audio == "noise":
                sig = np.random.default_rng(seed).normal(0, 0.1, n)
                sig = np.convolve(sig, np.ones(8) / 8, mode="same")
            else:
                sig = 0.2 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
            data = np.stack([sig, sig * 0.9]).astype(np.float32)
            chunk = as_.codec_context.frame_size or 1024
            for i in range(0, n, chunk):
                part = np.ascontiguousarray(data[:, i: i + chunk])
                if part.shape[1] < chunk:
                    part = np.pad(part, ((0, 0), (0, chunk - part.shape[1])))
                af = av.AudioFrame.from_ndarray(part, format="fltp", layout="stereo")
                af.sample_rate = rate_a
                af.pts = i
                for packet in as_.encode(af):
                    out.mux(packet)
            for packet in as_.encode():
                out.mux(packet)
    return np.asarray(cuts, dtype=np.float64)
