"""Reading and writing audio files (through ``pedalboard.io``).

Reading accepts every format pedalboard reads (WAV, FLAC, Ogg Vorbis, MP3, AIFF), optionally
resampled on the fly; writing produces WAV (24-bit integer by default, 16-bit, or 32-bit float)
or FLAC (16/24-bit), always atomically (temporary file, then rename), and refuses to clip.

Arrays are ``(channels, samples)`` float32, pedalboard's own layout.

Examples
--------
>>> import numpy as np, blendfx
>>> tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
>>> blendfx.write_audio("/tmp/tone.wav", tone, 44100)          # doctest: +SKIP
>>> audio, sr = blendfx.read_audio("/tmp/tone.wav", sample_rate=22050)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from .buffers import check_finite, check_sample_rate, to_channels_first
from .errors import AudioFileError, ParameterError
from .files import atomic_path

__all__ = ["read_audio", "write_audio", "audio_info", "AudioInfo", "iter_audio_blocks",
           "open_audio", "audio_writer", "check_wav_complete", "WRITE_FORMATS"]

#: File suffixes :func:`write_audio` writes, and the bit depths each allows.
WRITE_FORMATS = {".wav": (16, 24, 32), ".flac": (16, 24)}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header."""

    path: Path
    sample_rate: float
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def open_audio(path: str | os.PathLike[str]):
    """A pedalboard ``AudioFile`` open for reading (use it as a context manager), for seeking and
    partial reads; a missing, unreadable or truncated file raises :class:`AudioFileError`
    naming it (see :func:`check_wav_complete`)."""

    p = Path(path)
    if not p.is_file():
        raise AudioFileError(f"audio file not found: {p}")
    try:
        f = AudioFile(str(p))
    except Exception as exc:  # pedalboard raises ValueError/RuntimeError for bad files
        raise AudioFileError(f"cannot read audio file {p}: {exc}") from None
    try:
        check_wav_complete(p, float(f.samplerate))
    except BaseException:
        f.close()
        raise
    return f


def check_wav_complete(path: Path, sample_rate: float) -> None:
    """Raise :class:`AudioFileError` if a WAV file holds fewer bytes than its header declares.

    A WAV cut short (an interrupted copy or recording) still opens, and the decoder pads the
    missing part with silence: a 3 s header over 1 s of data would read as 3 s with 2 s of
    zeros. blendfx refuses such a file instead, saying how much of it is there. Other formats,
    and WAVs whose header leaves the length open (streamed RIFF, RF64), are not checked.
    """
    if path.suffix.lower() not in (".wav", ".wave"):
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            size = path.stat().st_size
            block_align = 0
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                chunk = fh.read(8)
                cid, length = chunk[:4], int.from_bytes(chunk[4:8], "little")
                if cid == b"fmt ":
                    fmt = fh.read(16)
                    block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                elif cid == b"data":
                    if length in (0, 0xFFFFFFFF):  # written while streaming: no length given
                        return
                    have = size - (pos + 8)
                    if have < length and block_align > 0:
                        declared = length // block_align / sample_rate
                        held = have // block_align / sample_rate
                        raise AudioFileError(
                            f"audio file {path} is truncated: its header says {declared:.3f} s "
                            f"but the file holds {held:.3f} s (an interrupted copy or "
                            f"recording?); blendfx does not pad it with silence: re-export it")
                    return
                pos += 8 + length + (length & 1)
    except AudioFileError:
        raise
    except OSError as exc:
        raise AudioFileError(f"cannot read audio file {path}: {exc}") from None


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Sample rate, channel count and length of an audio file, without decoding it."""
    with open_audio(path) as f:
        return AudioInfo(Path(path), float(f.samplerate), int(f.num_channels), int(f.frames))


def read_audio(
    path: str | os.PathLike[str],
    sample_rate: float | None = None,
    *,
    mono: bool = False,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, float]:
    """Read an audio file.

    Parameters
    ----------
    path : str or Path
        Any file pedalboard reads: WAV, FLAC, Ogg Vorbis, MP3, AIFF.
    sample_rate : float, optional
        Resample to this rate in Hz while reading; None keeps the file's rate.
    mono : bool
        Average the channels and return a 1-D array.
    offset, duration : float
        Start and length to read, in seconds (of the output rate); None reads to the end.

    Returns
    -------
    audio : np.ndarray
        ``(channels, samples)`` float32, or 1-D when ``mono``.
    sample_rate : float
        The rate of ``audio`` in Hz.

    Raises
    ------
    AudioFileError
        The file is missing, unreadable, corrupt or truncated (a WAV holding less than its
        header declares is refused, not padded with silence).
    """
    if sample_rate is not None:
        sample_rate = check_sample_rate(sample_rate)
    if offset < 0 or (duration is not None and duration < 0):
        raise ParameterError(f"offset and duration must be >= 0 s, got {offset}, {duration}")
    f = open_audio(path)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(f)
            if sample_rate is not None and float(sample_rate) != float(f.samplerate):
                f = stack.enter_context(f.resampled_to(float(sample_rate)))
            sr = float(f.samplerate)
            start = int(round(offset * sr))
            total = int(f.frames)
            count = total - start if duration is None else min(int(round(duration * sr)),
                                                               total - start)
            if start:
                f.seek(min(start, total))
            audio = f.read(max(count, 0)) if count > 0 else np.zeros((f.num_channels, 0),
                                                                     np.float32)
    except AudioFileError:
        raise
    except Exception as exc:
        raise AudioFileError(f"cannot decode audio file {path}: {exc}") from None
    audio = np.asarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise AudioFileError(f"audio file {path} decodes to NaN or infinite samples")
    if mono:
        return audio.mean(axis=0), sr
    return audio, sr


def iter_audio_blocks(path: str | os.PathLike[str], block_seconds: float = 10.0,
                      sample_rate: float | None = None) -> Iterator[np.ndarray]:
    """Yield ``(channels, samples)`` float32 blocks of a file, so long stems never sit in memory.

    ``sample_rate`` resamples on the fly (pedalboard's streaming resampler keeps its state
    across blocks, so the concatenated blocks equal a whole-file read).
    """
    f = open_audio(path)
    with contextlib.ExitStack() as stack:
        stack.enter_context(f)
        if sample_rate is not None and float(sample_rate) != float(f.samplerate):
            f = stack.enter_context(f.resampled_to(float(sample_rate)))
        block = max(1, int(block_seconds * f.samplerate))
        while f.tell() < f.frames:
            yield np.asarray(f.read(block), dtype=np.float32)


def _check_format(path: Path, bit_depth: int) -> None:
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise ParameterError(f"cannot write {path.name}: blendfx writes "
                             f"{', '.join(WRITE_FORMATS)} files")
    if bit_depth not in WRITE_FORMATS[suffix]:
        raise ParameterError(f"bit_depth = {bit_depth} is not available for {suffix} "
                             f"(allowed: {', '.join(map(str, WRITE_FORMATS[suffix]))})")


@contextlib.contextmanager
def audio_writer(path: str | os.PathLike[str], sample_rate: float, channels: int, *,
                 bit_depth: int = 24) -> Iterator[object]:
    """Open an atomic streaming writer: ``with audio_writer(p, sr, 2) as w: w.write(block)``.

    The file appears at ``path`` only when the block exits without an error.
    """

    path = Path(path)
    _check_format(path, bit_depth)
    with atomic_path(path) as tmp, AudioFile(str(tmp), "w", float(sample_rate), int(channels),
                                             bit_depth=bit_depth) as f:
        yield f


def write_audio(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: float,
    *,
    bit_depth: int = 24,
    allow_clipping: bool = False,
) -> Path:
    """Write audio to WAV or FLAC atomically.

    Parameters
    ----------
    path : str or Path
        Destination; the suffix (``.wav``, ``.flac``) picks the format.
    audio : np.ndarray
        1-D mono or 2-D (either orientation, pedalboard's rules), float samples in [-1, 1].
    sample_rate : float
        Hz.
    bit_depth : int
        16 or 24 (integer PCM), or 32 (IEEE float, WAV only). Default 24.
    allow_clipping : bool
        Integer formats cannot hold samples beyond +-1.0: by default such audio is refused
        rather than silently clipped. 32-bit float keeps them.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    _check_format(path, bit_depth)
    sample_rate = check_sample_rate(sample_rate)
    data, _ = to_channels_first(audio, name="audio")
    check_finite(data, name="audio")
    peak = float(np.abs(data).max()) if data.size else 0.0
    if bit_depth != 32 and peak > 1.0:
        if not allow_clipping:
            raise ParameterError(
                f"audio for {path.name} peaks at {20 * np.log10(peak):+.2f} dBFS and would clip "
                f"at {bit_depth}-bit; lower the gain, use a limiter, or write bit_depth=32")
        data = np.clip(data, -1.0, 1.0)
    with audio_writer(path, sample_rate, data.shape[0], bit_depth=bit_depth) as f:
        f.write(np.ascontiguousarray(data))
    return path
