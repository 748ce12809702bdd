"""Reading and analysing a video for scoring music to picture.

:func:`analyze_video` decodes a video once with PyAV (threaded decoding) and measures, per
frame, on a small copy of the picture taken straight from the decoder's planes (no colour
conversion, no scaler on the full picture):

- **brightness**: mean luma, 0..1;
- **motion**: mean absolute luma difference to the previous frame, 0..1, per nominal frame
  interval (so a variable-frame-rate video measures the same motion as a constant one);
- **saturation** and **hue**: mean chroma magnitude (0..1) and the chroma-weighted mean hue
  (degrees, 0..360, YUV hue angle);
- **cut score**: the L1 distance between consecutive frames' luma+chroma histograms (0..1).

From these: hard cuts (a histogram jump far above its neighbourhood, flashes excluded),
gradual transitions (dissolves and fades, by twin comparison: a run of moderate differences
whose ends differ like a cut and whose middle frame is close to the blend of its ends), shots
between them with per-shot summaries, colour key frames at 1 frame per second for reports and
prompts, and the soundtrack as float32 audio when the file has one.

Pure: a path in, a :class:`VideoFeatures` of arrays with times (s) out; nothing is written.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import av
import numpy as np
from blendfx.errors import BlendfxError
from scipy.ndimage import median_filter

__all__ = ["VideoError", "VideoFeatures", "Shot", "Transition", "analyze_video", "read_soundtrack",
           "detect_cuts", "detect_gradual", "hist_distance", "open_media", "container_start",
           "ANALYSIS_WIDTH", "MAX_PIXELS"]

#: Width (pixels) of the picture the measurements are taken on; the height keeps the aspect.
ANALYSIS_WIDTH = 96
#: Largest picture decoded (pixels): 8K UHD (7680 x 4320) and DCI 8K (8192 x 4320) pass.
MAX_PIXELS = 8192 * 4320
#: Histogram bins: luma, then each chroma plane.
_Y_BINS, _C_BINS = 24, 12
#: Planar YUV formats read straight from the decoder's planes: name -> (bytes per sample, bits).
_PLANAR = {"yuv420p": (1, 8), "yuvj420p": (1, 8), "yuv422p": (1, 8), "yuvj422p": (1, 8),
           "yuv444p": (1, 8), "yuvj444p": (1, 8), "yuv420p10le": (2, 10), "yuv422p10le": (2, 10),
           "yuv444p10le": (2, 10), "yuv420p12le": (2, 12)}


class VideoError(BlendfxError, ValueError):
    """A file that cannot be analysed as a video (the message says why)."""


@dataclass
class Transition:
    """A shot change: ``kind`` is 'cut', 'dissolve', 'fade_in' (from black) or 'fade_out' (to
    black); ``start_s``..``end_s`` is its span (a cut's span is its frame interval), ``time_s``
    the time the new shot counts from (a cut's first new frame, a dissolve's middle)."""

    kind: str
    start_s: float
    end_s: float
    time_s: float
    strength: float


@dataclass
class Shot:
    """One shot: ``start_s``..``end_s`` and the means of the frame measurements over it."""

    start_s: float
    end_s: float
    motion: float
    brightness: float
    saturation: float
    hue_deg: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class VideoFeatures:
    """What :func:`analyze_video` measured (see the module docstring).

    Attributes
    ----------
    times : np.ndarray
        ``(n,)`` presentation time (s) of every decoded frame from the container's start (the
        time 0 of a soundtrack muxed by :func:`~blendfx.effects.video.mux_soundtrack`).
    brightness, motion, saturation, hue_deg, cut_score : np.ndarray
        ``(n,)`` per-frame measurements (0..1; hue in degrees).
    cuts : np.ndarray
        Times (s) of the hard cuts (the first frame of each new shot).
    transitions : list of Transition
        Every cut, dissolve and fade, in time order.
    shots : list of Shot
    keyframes : np.ndarray
        ``(k, h, w, 3)`` uint8 RGB pictures at ``keyframe_times`` (about 1 per second).
    audio : np.ndarray or None
        ``(channels, samples)`` float32 soundtrack (at most 2 channels), None without one.
    """

    path: str
    duration_s: float
    width: int
    height: int
    fps: float
    codec: str
    variable_frame_rate: bool
    times: np.ndarray
    brightness: np.ndarray
    motion: np.ndarray
    saturation: np.ndarray
    hue_deg: np.ndarray
    cut_score: np.ndarray
    cuts: np.ndarray
    transitions: list[Transition]
    shots: list[Shot]
    keyframes: np.ndarray
    keyframe_times: np.ndarray
    audio: np.ndarray | None = None
    sample_rate: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        return int(self.times.size)

    def curve(self, name: str, fps: float) -> tuple[np.ndarray, np.ndarray]:
        """A measurement resampled on a uniform grid of ``fps`` points per second:
        ``(times, values)``, by linear interpolation over the frame times."""
        t = np.arange(0.0, self.duration_s, 1.0 / fps)
        return t, np.interp(t, self.times, getattr(self, name))


# -- decoding ------------------------------------------------------------------------------------
def open_media(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open a media file for reading with PyAV.

    Raises
    ------
    VideoError
        Missing, a folder, empty (0 bytes) or not a media file FFmpeg reads.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoError(f"{path}: no such file")
    if os.path.isdir(path):
        raise VideoError(f"{path}: is a folder, not a video")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: not a video FFmpeg can read ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip()


def _stride(width: int, height: int, target: int) -> int:
    return max(1, int(round(max(width, height * 16 / 9) / target)))


def _plane(frame, i: int, nbytes: int) -> np.ndarray:
    p = frame.planes[i]
    buf = np.frombuffer(p, dtype=np.uint8 if nbytes == 1 else np.uint16)
    return buf.reshape(-1, p.line_size // nbytes)[: p.height, : p.width]


def _hist_rows(x: np.ndarray, scale: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Per-row histograms of ``x / scale`` (rows: the first axis), smoothed over neighbouring
    bins ([1, 2, 1] / 4), so a small shift moves mass gradually; each row sums to 1."""
    rows = x.shape[0]
    k = (bins / (hi - lo)) / scale
    idx = ((x - (lo * scale)[:, None, None]) * k[:, None, None]).reshape(rows, -1)
    np.clip(idx, 0, bins - 1, out=idx)
    idx = idx.astype(np.intp) + (np.arange(rows, dtype=np.intp) * bins)[:, None]
    h = np.bincount(idx.ravel(), minlength=rows * bins).reshape(rows, bins).astype(np.float32)
    padded = np.pad(h, ((0, 0), (1, 1)), mode="edge")
    h = 0.25 * padded[:, :-2] + 0.5 * h + 0.25 * padded[:, 2:]
    return h / idx.shape[1]


#: Frames measured together (numpy works on the whole batch at once).
BATCH = 64
#: Grey thumbnail size (rows, columns) kept per frame.
THUMB_SHAPE = (18, 32)


class _Measure:
    """Takes decoded frames, keeps small copies of their planes (read with strides straight
    from the decoder's buffers; luma as two phase-shifted grids, averaged later) and measures
    them :data:`BATCH` at a time on a worker thread, while the decoder goes on (numpy and
    FFmpeg both release the GIL, so the two overlap on two cores)."""

    def __init__(self, analysis_width: int):
        self.width = analysis_width
        self.key = None
        self.k = 0
        self.prev = None
        self.sets: list[dict] = []
        self.current = 0
        self.keep: list[int] = []
        self.jobs: list = []
        self.busy: list = [None, None]
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blendfx-video")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _setup(self, frame) -> None:
        self.key = (frame.format.name, frame.width, frame.height)
        self.prev = None  # no motion across a change of picture size or format
        name = frame.format.name
        self.direct = name in _PLANAR and len(frame.planes) >= 3
        step = _stride(frame.width, frame.height, self.width)
        if self.direct:
            nbytes, bits = _PLANAR[name]
            cw, ch = frame.planes[1].width, frame.planes[1].height
            sx = max(1, frame.width // cw)
            sy = max(1, frame.height // ch)
            step = max(sx, sy, step - step % max(sx, sy))  # a whole number of chroma samples
            self.csx, self.csy = 2 * step // sx, 2 * step // sy
            self.scale = 1.0 / ((1 << bits) - 1)
            self.nbytes = nbytes
            dtype = np.uint8 if nbytes == 1 else np.uint16
            self.h, self.w = frame.height // step, frame.width // step
            self.ch, self.cw = ch // self.csy, cw // self.csx
            self.limited = not name.startswith("yuvj")
        else:  # rgb, nv12, grey...: the scaler makes a small planar picture
            dtype = np.uint8
            self.scale = 1.0 / 255.0
            self.h = max(2, frame.height // step)
            self.w = max(2, frame.width // step)
            self.ch, self.cw = self.h, self.w
            self.limited = False
        self.hd = frame.height >= 720
        self.step = step
        self.sets = [{"y": np.zeros((2, BATCH, self.h, self.w), dtype),
                      "u": np.zeros((BATCH, self.ch, self.cw), dtype),
                      "v": np.zeros((BATCH, self.ch, self.cw), dtype)} for _ in range(2)]
        self.busy = [None, None]
        self.current = 0

    def add(self, frame, keep: bool = False) -> None:
        """Take one frame; ``keep`` also keeps it as a colour key frame."""
        key = (frame.format.name, frame.width, frame.height)
        if key != self.key:
            self.flush()
            self._setup(frame)
        k = self.k
        if k == 0 and self.busy[self.current] is not None:  # the worker still reads this set
            self.busy[self.current].result()
        buf = self.sets[self.current]
        if self.direct:
            s, h, w = self.step, self.h, self.w
            o = s // 2
            p = _plane(frame, 0, self.nbytes)
            buf["y"][0, k] = p[0: h * s: s, 0: w * s: s]
            buf["y"][1, k] = p[o: o + h * s: s, o: o + w * s: s]
            sy, sx, ch, cw = self.csy, self.csx, self.ch, self.cw
            oy, ox = sy // 2, sx // 2
            buf["u"][k] = _plane(frame, 1, self.nbytes)[oy: oy + ch * sy: sy, ox: ox + cw * sx: sx]
            buf["v"][k] = _plane(frame, 2, self.nbytes)[oy: oy + ch * sy: sy, ox: ox + cw * sx: sx]
        else:
            small = frame.reformat(width=self.w, height=self.h, format="yuv444p")
            buf["y"][0, k] = buf["y"][1, k] = _plane(small, 0, 1)
            buf["u"][k] = _plane(small, 1, 1)
            buf["v"][k] = _plane(small, 2, 1)
        if keep:
            self.keep.append(k)
        self.k += 1
        if self.k == BATCH:
            self.flush()

    def flush(self) -> None:
        n = self.k
        if not n:
            return
        buf = self.sets[self.current]
        prev = self.prev
        self.prev = buf["y"][:, n - 1].copy()
        params = (self.scale, self.h, self.w, self.limited, self.hd)
        job = self.pool.submit(_measure_batch, buf, n, prev, list(self.keep), params)
        self.jobs.append(job)
        self.busy[self.current] = job
        self.current = 1 - self.current
        self.k = 0
        self.keep = []

    def arrays(self) -> dict[str, np.ndarray]:
        self.flush()
        parts = [job.result() for job in self.jobs]
        self.close()
        out = {}
        for name in parts[0]:
            out[name] = np.concatenate([p[name] for p in parts])
        return out


def _measure_batch(buf: dict, n: int, prev: np.ndarray | None, keep: list[int], params) -> dict:
    """The measurements of ``n`` frames' small planes (see :class:`_Measure`)."""
    scale, h, w, limited, hd = params
    half = 0.5 * scale
    y = (buf["y"][0, :n].astype(np.float32) + buf["y"][1, :n]) * half
    u = buf["u"][:n].astype(np.float32) * scale - 0.5
    v = buf["v"][:n].astype(np.float32) * scale - 0.5
    if limited:  # video range: black at 16/255, white at 235/255, chroma over 224/255
        y = np.clip((y - 16.0 / 255.0) * (255.0 / 219.0), 0.0, 1.0)
        u *= 255.0 / 224.0
        v *= 255.0 / 224.0
    m = y.mean(axis=(1, 2))
    motion = np.zeros(n, dtype=np.float64)
    if prev is not None:
        p = (prev[0].astype(np.float32) + prev[1]) * half
        motion[0] = np.abs(y[0] - p).mean()
    if n > 1:
        motion[1:] = np.abs(np.diff(y, axis=0)).mean(axis=(1, 2))
    chroma = np.hypot(u, v)
    csum = chroma.sum(axis=(1, 2))
    hue = np.degrees(np.arctan2((v * chroma).sum(axis=(1, 2)), (u * chroma).sum(axis=(1, 2)))) % 360.0
    hue[csum < 1e-6] = 0.0
    c = np.maximum(csum / chroma[0].size, 0.02)
    # a near-grey picture's chroma is noise: its histograms weigh in only as colour appears
    cw = (0.5 * np.minimum(1.0, csum / chroma[0].size / 0.05))[:, None]
    # likewise a near-black picture's luma shape: it weighs in as light comes up
    wy = np.minimum(1.0, m / 0.1)[:, None]
    hist = np.concatenate([wy * _hist_rows(y, np.maximum(m, 0.04), 0.0, 3.0, _Y_BINS),
                           cw * _hist_rows(u, c, -6.0, 6.0, _C_BINS),
                           cw * _hist_rows(v, c, -6.0, 6.0, _C_BINS), m[:, None]], axis=1)
    rows = np.linspace(0, h - 1, THUMB_SHAPE[0]).round().astype(np.intp)
    cols = np.linspace(0, w - 1, THUMB_SHAPE[1]).round().astype(np.intp)
    thumb = np.clip(y[:, rows][:, :, cols] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    keys = np.stack([_to_rgb(y[k], u[k], v[k], hd) for k in keep]) if keep else \
        np.zeros((0, h, w, 3), np.uint8)
    return {"bright": m.astype(np.float64), "motion": motion,
            "sat": np.minimum(1.0, 2.0 * csum / chroma[0].size).astype(np.float64),
            "hue": hue.astype(np.float64), "hist": hist.astype(np.float32), "thumb": thumb, "keys": keys}


def _to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, hd: bool) -> np.ndarray:
    """RGB (uint8) of a small full-range YUV picture (chroma upsampled by nearest neighbour),
    BT.709 for HD pictures and BT.601 otherwise."""
    h, w = y.shape
    ri = np.minimum(np.arange(h) * u.shape[0] // h, u.shape[0] - 1)
    ci = np.minimum(np.arange(w) * u.shape[1] // w, u.shape[1] - 1)
    u = u[ri][:, ci]
    v = v[ri][:, ci]
    kr, kb = (0.2126, 0.0722) if hd else (0.299, 0.114)
    kg = 1.0 - kr - kb
    r = y + 2 * (1 - kr) * v
    b = y + 2 * (1 - kb) * u
    g = (y - kr * r - kb * b) / kg
    return np.clip(np.stack([r, g, b], axis=-1) * 255 + 0.5, 0, 255).astype(np.uint8)


def hist_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cut score between histograms from :func:`_hist` (rows): half their L1 distance plus
    a term for a jump in mean luma (0.5 at a jump of 1/8 of the range), clipped to 0..1."""
    d = 0.5 * np.abs(a[..., :-1] - b[..., :-1]).sum(axis=-1)
    return np.minimum(1.0, d + np.minimum(0.5, 4.0 * np.abs(a[..., -1] - b[..., -1])))


def _audio_resampler(stream):
    layout = "mono" if stream.codec_context.channels == 1 else "stereo"
    return av.AudioResampler(format="fltp", layout=layout, rate=stream.codec_context.sample_rate)


def analyze_video(path: str | os.PathLike[str], *, with_audio: bool = True, threads: int = 0,
                  analysis_width: int = ANALYSIS_WIDTH) -> VideoFeatures:
    """Decode a video once and measure its picture over time (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        Any container and codec FFmpeg decodes (WebM/VP8, MP4/H.264, HEVC, ...).
    with_audio : bool
        Also decode the first audio stream into :attr:`VideoFeatures.audio` (float32, the
        stream's own rate, 6-channel audio downmixed to stereo).
    threads : int
        Decoder threads (0: FFmpeg chooses, one per core).
    analysis_width : int
        Width (pixels) of the picture the measurements are taken on.

    Returns
    -------
    VideoFeatures

    Raises
    ------
    VideoError
        The file is missing, empty, not a media file, has no video stream, has no decodable
        frame (zero length), is corrupt or truncated (decoding fails, fewer than 90% of the
        frames its header declares decode, or, where the header counts no frames, its packets
        end before 90% of the duration it declares), or its picture exceeds :data:`MAX_PIXELS`.

    Notes
    -----
    Variable frame rate: every measurement is stamped with its frame's own presentation
    time, and motion is scaled to the median frame interval, so nothing assumes a constant
    rate; :attr:`VideoFeatures.variable_frame_rate` says when intervals vary by more than 10%.
    Large pictures (4K, 8K) are decoded at full size by the codec (MPEG-4 and MJPEG decode at
    1/2..1/8 size with FFmpeg's ``lowres``), then read at ``analysis_width`` straight from the
    decoder's planes, so memory stays at a few decoded frames.
    """
    container = open_media(path)
    name = os.fspath(path)
    measure = None
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise VideoError(f"{name}: no video stream (the file holds {', '.join(kinds)})")
        vs = container.streams.video[0]
        cc = vs.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width * height > MAX_PIXELS:
            raise VideoError(f"{name}: picture of {width}x{height} is larger than 8K "
                             f"({MAX_PIXELS} pixels); scale it down first")
        vs.thread_type = "AUTO"
        cc.thread_count = int(threads)
        lowres = 0
        if cc.name in ("mpeg4", "mjpeg", "h263", "mpeg1video", "mpeg2video") and width > 2 * 1920:
            lowres = min(3, int(math.log2(width / 1920)))
            cc.options = {**cc.options, "lowres": str(lowres)}
        streams = [vs]
        audio_stream = container.streams.audio[0] if with_audio and container.streams.audio else None
        if audio_stream is not None:
            streams.append(audio_stream)
            resampler = _audio_resampler(audio_stream)
            chunks: list[np.ndarray] = []
        declared = int(vs.frames or 0)
        times: list[float] = []
        measure = _Measure(analysis_width)
        key_times: list[float] = []
        next_key = 0.0
        base = container_start(container)
        end = 0.0  # where the last packet of any stream ends (s)
        try:
            for packet in container.demux():
                if packet.pts is not None and packet.time_base is not None:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                if packet.stream is not vs:
                    if packet.stream is audio_stream:
                        for af in packet.decode():
                            chunks.extend(out.to_ndarray() for out in resampler.resample(af))
                    continue
                for frame in packet.decode():
                    t = _frame_time(frame, vs, len(times))
                    if base is None:
                        base = t
                    keep = t - base >= next_key
                    measure.add(frame, keep)
                    times.append(t - base)
                    if keep:
                        key_times.append(t - base)
                        next_key = math.floor(t - base) + 1.0
            if audio_stream is not None:
                chunks.extend(out.to_ndarray() for out in resampler.resample(None))
        except av.error.FFmpegError as exc:
            raise VideoError(f"{name}: corrupt video, decoding failed after {len(times)} frames "
                             f"({_reason(exc)})") from None
        if not times:
            raise VideoError(f"{name}: zero length, no frame decodes")
        if declared and len(times) < 0.9 * declared:
            raise VideoError(f"{name}: truncated or corrupt, {len(times)} of the {declared} frames "
                             f"its header declares decode")
        length = container.duration / 1e6 if container.duration else 0.0
        if not declared and length > 1.0 and end - (base or 0.0) < 0.9 * length:
            raise VideoError(f"{name}: truncated or corrupt, its streams end at "
                             f"{end - (base or 0.0):.2f} s of the {length:.2f} s its header declares")
        m = measure.arrays()
    finally:
        container.close()
        if measure is not None:
            measure.close()
    t = np.asarray(times, dtype=np.float64)
    order = np.argsort(t, kind="stable")  # presentation order (decoders already give it)
    t = t[order]
    h = m["hist"][order]
    th = m["thumb"][order]
    bright = m["bright"][order].astype(np.float64)
    dt = np.diff(t)
    med = float(np.median(dt)) if dt.size else 1.0 / float(vs.average_rate or 25)
    med = med if med > 0 else 1.0 / 25.0
    vfr = bool(dt.size > 2 and np.percentile(np.abs(dt - med), 90) > 0.1 * med)
    motion = m["motion"][order]
    if dt.size:
        motion[1:] *= med / np.maximum(dt, 0.25 * med)
    score = np.zeros(t.size)
    score[1:] = hist_distance(h[1:], h[:-1])
    duration = float(t[-1] + med)
    cuts_idx = detect_cuts(score, fps=1.0 / med, hists=h)
    gradual = detect_gradual(score, h, th, bright, fps=1.0 / med, cuts=cuts_idx)
    transitions = [Transition("cut", float(t[i - 1]), float(t[i]), float(t[i]), float(score[i]))
                   for i in cuts_idx]
    transitions += [Transition(kind, float(t[a]), float(t[b]), float(0.5 * (t[a] + t[b])), s)
                    for a, b, kind, s in gradual]
    transitions.sort(key=lambda tr: tr.time_s)
    # motion at a transition is the picture changing, not moving: hold the level before it
    for i in cuts_idx:
        motion[i] = motion[i - 1]
    for a, b, _, _ in gradual:
        motion[a: b + 1] = motion[max(a - 1, 0)]
    audio = None
    sample_rate = 0.0
    if audio_stream is not None and chunks:
        audio = np.concatenate(chunks, axis=1).astype(np.float32)
        sample_rate = float(audio_stream.codec_context.sample_rate)
    features = VideoFeatures(
        path=name, duration_s=duration, width=width, height=height, fps=1.0 / med,
        codec=cc.name, variable_frame_rate=vfr, times=t, brightness=bright, motion=motion,
        saturation=m["sat"][order].astype(np.float64), hue_deg=m["hue"][order].astype(np.float64),
        cut_score=score,
        cuts=np.array([t[i] for i in cuts_idx], dtype=np.float64), transitions=transitions,
        shots=[], keyframes=m["keys"],
        keyframe_times=np.asarray(key_times), audio=audio, sample_rate=sample_rate)
    if lowres:
        features.notes.append(f"decoded at 1/{1 << lowres} size (lowres)")
    if vfr:
        features.notes.append("variable frame rate: measurements use each frame's own time")
    features.shots = _shots(features)
    return features


def container_start(container) -> float | None:
    """The container's start time (s), the origin of every time :func:`analyze_video` gives
    (None when the container does not say: then the first frame's time is the origin)."""
    start = getattr(container, "start_time", None)
    return None if start is None else float(start) / 1e6


def _frame_time(frame, vs, index: int) -> float:
    if frame.time is not None:
        return float(frame.time)
    rate = float(vs.average_rate or 25)
    return index / rate


# -- transitions ---------------------------------------------------------------------------------
def _local_median(x: np.ndarray, half: int) -> np.ndarray:
    return median_filter(x, size=2 * half + 1, mode="nearest")


def detect_cuts(score: np.ndarray, fps: float, hists: np.ndarray | None = None, *,
                threshold: float = 0.3, ratio: float = 3.0) -> np.ndarray:
    """Indices of the frames that start a new shot after a hard cut.

    Parameters
    ----------
    score : np.ndarray
        ``(n,)`` histogram distance of each frame to the one before (0..1; ``score[0]`` = 0).
    fps : float
        Frames per second (the neighbourhood is 1 s on each side).
    hists : np.ndarray, optional
        ``(n, bins)`` histograms; with them a flash (a frame or two that differ, then the
        picture comes back) is not a cut.
    threshold, ratio : float
        A cut's score is above ``threshold`` and ``ratio`` times its neighbourhood's median.

    Returns
    -------
    np.ndarray
        int indices, ascending.
    """
    n = score.size
    if n < 2:
        return np.zeros(0, dtype=np.int64)
    half = max(2, int(round(fps)))
    med = _local_median(score, half)
    out = []
    for i in range(1, n):
        s = score[i]
        if s < threshold or s < ratio * med[i]:
            continue
        lo, hi = max(1, i - 2), min(n, i + 3)
        if s < score[lo:hi].max():
            continue
        # a cut stands alone: a change spread over neighbouring frames is a fade or motion
        if s < 1.5 * max(score[i - 1], score[i + 1] if i + 1 < n else 0.0):
            continue
        if hists is not None and i + 2 < n:  # a flash: the picture two frames on is the one before
            back = float(hist_distance(hists[i + 2], hists[i - 1]))
            if back < 0.3 * s:
                continue
        out.append(i)
    return np.asarray(out, dtype=np.int64)


def detect_gradual(score: np.ndarray, hists: np.ndarray, thumbs: np.ndarray, brightness: np.ndarray,
                   fps: float, cuts: np.ndarray, *, low: float = 0.02, high: float = 0.3,
                   min_s: float = 0.15, max_s: float = 3.0) -> list[tuple[int, int, str, float]]:
    """Dissolves and fades by twin comparison.

    A run of consecutive frames each differing from the one before by more than ``low`` (and
    more than twice the neighbourhood's median) is a candidate; it is a gradual transition when
    its first and last frames differ by more than ``high`` (like a cut), it lasts ``min_s`` to
    ``max_s`` seconds, and its middle frame is nearer the mean of its ends than either end is
    (a blend, not motion). A transition from or to a near-black picture is a fade.

    Returns
    -------
    list of (first index, last index, kind, strength)
        kind is 'dissolve', 'fade_in' or 'fade_out'; strength the ends' histogram distance.
    """
    n = score.size
    above = score > max(low, 1.5 * float(np.median(score)))
    cut_set = set(int(c) for c in cuts)
    out: list[tuple[int, int, str, float]] = []
    i = 1
    while i < n:
        if not above[i] or i in cut_set:
            i += 1
            continue
        j = i
        while True:  # the run goes on over gaps of up to two quieter frames
            nxt = next((k for k in range(j + 1, min(j + 4, n)) if above[k]), None)
            if nxt is None or any(k in cut_set for k in range(j + 1, nxt + 1)):
                break
            j = nxt
        a, b = i - 1, j
        length = (b - a) / fps
        if min_s <= length <= max_s:
            d = float(hist_distance(hists[b], hists[a]))
            if d > high:
                m = (a + b) // 2
                ta, tb, tm = (thumbs[k].astype(np.float32) for k in (a, b, m))
                blend = float(np.abs(tm - 0.5 * (ta + tb)).mean())
                ends = float(np.abs(ta - tb).mean())
                if blend < 0.25 * ends:
                    kind = "dissolve"
                    if brightness[a] < 0.06 or brightness[a] < 0.25 * brightness[b]:
                        kind = "fade_in"
                    elif brightness[b] < 0.06 or brightness[b] < 0.25 * brightness[a]:
                        kind = "fade_out"
                    out.append((a, b, kind, d))
        i = j + 1
    return out


def _shots(f: VideoFeatures) -> list[Shot]:
    bounds = [float(f.times[0])] + [tr.time_s for tr in f.transitions] + [f.duration_s]
    shots = []
    for s0, s1 in zip(bounds[:-1], bounds[1:], strict=True):
        if s1 - s0 <= 0:
            continue
        sel = (f.times >= s0) & (f.times < s1)
        if not sel.any():
            continue
        w = f.saturation[sel] + 1e-9
        ang = np.radians(f.hue_deg[sel])
        hue = math.degrees(math.atan2(float((np.sin(ang) * w).sum()), float((np.cos(ang) * w).sum()))) % 360
        shots.append(Shot(float(s0), float(s1), float(f.motion[sel].mean()),
                          float(f.brightness[sel].mean()), float(f.saturation[sel].mean()), hue))
    return shots


# -- sound ---------------------------------------------------------------------------------------
def read_soundtrack(path: str | os.PathLike[str]) -> tuple[np.ndarray | None, float]:
    """A video's first audio stream as ``(channels, samples)`` float32 at its own rate (more
    than two channels are downmixed to stereo), or ``(None, 0.0)`` when it has none.

    Raises
    ------
    VideoError
        Missing, empty, unreadable or corrupt file.
    """
    container = open_media(path)
    try:
        if not container.streams.audio:
            return None, 0.0
        stream = container.streams.audio[0]
        resampler = _audio_resampler(stream)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
        except av.error.FFmpegError as exc:
            raise VideoError(f"{os.fspath(path)}: corrupt audio ({_reason(exc)})") from None
        if not chunks:
            return None, 0.0
        return np.concatenate(chunks, axis=1).astype(np.float32), float(stream.codec_context.sample_rate)
    finally:
        container.close()
