"""Muxing a new soundtrack into a video: the picture's packets are copied (not re-encoded).

:func:`mux_soundtrack` writes ``video``'s picture stream unchanged and ``audio`` encoded for the
output's container (AAC in MP4/MOV/MKV, Opus in WebM), atomically: the file appears complete or
not at all.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction

import av
import numpy as np

from .analysis import VideoError, container_start, open_media

__all__ = ["mux_soundtrack", "AUDIO_CODECS"]

#: Audio encoder and rate per output container (by extension).
AUDIO_CODECS = {".mp4": ("aac", None), ".m4v": ("aac", None), ".mov": ("aac", None),
                ".mkv": ("aac", None), ".webm": ("libopus", 48000)}


def mux_soundtrack(video: str | os.PathLike[str], audio: np.ndarray, sample_rate: float,
                   out: str | os.PathLike[str], *, bitrate: int = 192_000) -> str:
    """Write ``out``: the picture of ``video`` (packets copied) with ``audio`` as its only
    soundtrack.

    Parameters
    ----------
    video : str or os.PathLike
        The source video (its first video stream is copied; its audio is dropped).
    audio : np.ndarray
        ``(channels, samples)`` float (1 or 2 channels), -1..1.
    sample_rate : float
        Hz of ``audio`` (resampled when the codec needs another rate: Opus runs at 48 kHz).
    out : str or os.PathLike
        Output path; the extension picks the container (.mp4, .mov, .m4v, .mkv, .webm). It
        must be a container that can hold the source's picture codec (VP8/VP9/AV1 in WebM).
    bitrate : int
        Audio bit rate in bit/s.

    Returns
    -------
    str
        ``out``.

    Raises
    ------
    VideoError
        Unreadable source, no video stream, an extension without a known container, or a
        container that cannot hold the picture codec. Nothing is written on error.
    """
    out = os.fspath(out)
    ext = os.path.splitext(out)[1].lower()
    if ext not in AUDIO_CODECS:
        raise VideoError(f"{out}: unknown output container {ext!r} (use one of {', '.join(AUDIO_CODECS)})")
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[0] not in (1, 2):
        raise VideoError(f"mux_soundtrack: audio must be (channels, samples) with 1 or 2 channels, "
                         f"not {data.shape}")
    codec, rate = AUDIO_CODECS[ext]
    src = open_media(video)
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".mux-", suffix=ext, dir=folder)
    os.close(fd)
    try:
        with src:
            if not src.streams.video:
                raise VideoError(f"{os.fspath(video)}: no video stream to copy")
            vin = src.streams.video[0]
            try:
                fmt = {".webm": "webm", ".mkv": "matroska", ".mov": "mov"}.get(ext, "mp4")
                dst = av.open(tmp, "w", format=fmt)
            except av.error.FFmpegError as exc:
                raise VideoError(f"{out}: cannot write ({exc})") from None
            with dst:
                try:
                    vout = dst.add_stream_from_template(vin)
                except (ValueError, av.error.FFmpegError) as exc:
                    raise VideoError(f"{out}: the {ext} container cannot hold {vin.codec_context.name} "
                                     f"video ({exc})") from None
                layout = "mono" if data.shape[0] == 1 else "stereo"
                a_rate = int(rate or round(sample_rate))
                aout = dst.add_stream(codec, rate=a_rate)
                aout.layout = layout
                aout.bit_rate = int(bitrate)
                _write_packets(src, vin, vout, dst, aout, data, float(sample_rate), a_rate, layout)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; give it an ordinary file's mode
        os.replace(tmp, out)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{out}: muxing failed ({exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _write_packets(src, vin, vout, dst, aout, data, sample_rate, a_rate, layout) -> None:
    # the audio first, encoded into packets held in memory; then both streams interleaved by time
    resampler = av.AudioResampler(format=aout.codec_context.format.name, layout=layout, rate=a_rate)
    audio_packets = []
    chunk = 4096
    pts = 0
    for i in range(0, data.shape[1], chunk):
        block = np.ascontiguousarray(data[:, i: i + chunk])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
        frame.sample_rate = int(round(sample_rate))
        frame.pts = i
        frame.time_base = Fraction(1, int(round(sample_rate)))
        for rf in resampler.resample(frame):
            rf.pts = pts
            pts += rf.samples
            audio_packets.extend(aout.encode(rf))
    for rf in resampler.resample(None):
        rf.pts = pts
        pts += rf.samples
        audio_packets.extend(aout.encode(rf))
    audio_packets.extend(aout.encode(None))
    # the picture keeps its timing relative to the container's start, which becomes 0 s
    start = container_start(src) or 0.0
    shift = int(round(start / float(vin.time_base))) if vin.time_base else 0
    ai = 0
    for packet in src.demux(vin):
        if packet.dts is None:  # the demuxer's flush packet
            continue
        if shift:
            packet.dts -= shift
            if packet.pts is not None:
                packet.pts -= shift
        t = float(packet.dts * packet.time_base)
        while ai < len(audio_packets) and audio_packets[ai].pts is not None and \
                float(audio_packets[ai].pts * audio_packets[ai].time_base) <= t:
            dst.mux(audio_packets[ai])
            ai += 1
        packet.stream = vout
        dst.mux(packet)
    for packet in audio_packets[ai:]:
        dst.mux(packet)
