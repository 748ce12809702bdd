"""The render report's figure (report.png): what the noise was, what covered it, and how loud.

Four panels on one time axis (the first :data:`FIGURE_SECONDS` seconds of the session):

1. the noise's spectrogram (Riffusion's mel image, 100 columns/s) with its mask outlined: the
   energy core the music has to cover;
2. the music's spectrogram;
3. the mix's spectrogram;
4. the gain curves in dB: the blend's adaptive gain per 10 ms frame, and the master gain
   (loudness gain and true-peak limiter).

When a track runs a Blend, the noise, mask, music and gain come from that Blend (saved beside
the track's cache entry, so a cached track still has its figure); otherwise the first tracks with
the roles "noise" and "music" are shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["save_blend_figure_data", "write_report_png", "write_inspect_png", "FIGURE_SECONDS",
           "spectrogram_pixels"]

#: The figure covers at most this much of the session, in seconds.
FIGURE_SECONDS = 60.0
#: Spectrogram columns per second in the figure: 1,500 columns for a minute, about the PNG's
#: width in pixels (a finer grid would only be averaged away when the image is drawn).
FIGURE_FPS = 25
_ROWS = 4  # mel rows pooled per figure row (512 -> 128)
_MASK_FPS = 100  # the Blend's mask: one column per 10 ms (Riffusion's image)


def spectrogram_pixels(audio: np.ndarray | None, sample_rate: float, fps: int = FIGURE_FPS
                       ) -> np.ndarray | None:
    """Mel spectrogram of ``audio``'s first FIGURE_SECONDS for the figure.

    Same mel scale and range as Riffusion's image (HTK mel, 0 to 10 kHz, 128 rows, i.e. its
    512 rows pooled by 4), so a pooled mask lines up with it; ``fps`` columns per second
    (default :data:`FIGURE_FPS`, the figure's resolution), each a 2048-point FFT (instead of
    Riffusion's 17,640) of a Hann-windowed frame. Returns (128, frames) uint8 over an 80 dB
    range, row 0 the highest band, loud = high.
    """
    from blendfx.buffers import to_mono
    from blendfx.spectrogram import SpectrogramParams
    from scipy.fft import rfft

    if audio is None or np.size(audio) == 0:
        return None
    p = SpectrogramParams()
    mono = to_mono(np.atleast_2d(np.asarray(audio, np.float32)))[: int(FIGURE_SECONDS * sample_rate)]
    n_fft, hop = 2048, max(1, int(round(sample_rate / fps)))
    padded = np.pad(mono, (n_fft // 2, n_fft // 2))
    frames = 1 + max(0, (padded.size - n_fft) // hop)
    fb = _mel_filters(sample_rate, n_fft, p.num_frequencies // _ROWS, p.min_frequency,
                      min(p.max_frequency, sample_rate / 2))
    window = np.hanning(n_fft).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:frames]
    mel = np.empty((fb.shape[0], frames), np.float32)
    for a in range(0, frames, 512):  # in chunks: bounded memory for any fps
        spec = rfft(windows[a:a + 512] * window, axis=1)
        mel[:, a:a + 512] = fb @ (spec.real ** 2 + spec.imag ** 2).T
    top = max(float(mel.max()), 1e-20)
    level = 10.0 * np.log10(np.maximum(mel, top * 1e-8) / top)  # 0 dB = loudest
    return (np.clip(level / 80.0 + 1.0, 0.0, 1.0) * 255).astype(np.uint8)[::-1].copy()


def _mel_filters(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float
                 ) -> np.ndarray:
    """HTK mel triangles (no normalization) over rfft bins: ``(n_mels, n_fft // 2 + 1)``."""
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    edges = 700.0 * (10.0 ** (np.linspace(mel(fmin), mel(fmax), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    lower = (freqs[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    upper = (edges[2:, None] - freqs[None, :]) / np.diff(edges)[1:, None]
    return np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)


def _pool(a: np.ndarray, fn: Any, cols: int = 1) -> np.ndarray:
    """Pool ``_ROWS`` rows (and ``cols`` columns) into one with ``fn`` (e.g. np.max)."""
    rows = a.shape[0] // _ROWS * _ROWS
    out = fn(a[:rows].reshape(rows // _ROWS, _ROWS, -1), axis=1)
    if cols > 1:
        width = -(-out.shape[1] // cols) * cols
        out = np.pad(out, ((0, 0), (0, width - out.shape[1])), mode="edge")
        out = fn(out.reshape(out.shape[0], -1, cols), axis=2)
    return out


def save_blend_figure_data(path: Path, noise: np.ndarray, sample_rate: float, mask: Any,
                           music: np.ndarray | None, gains_db: Any) -> None:
    """Save what the figure needs from a Blend (compact: uint8 images at the figure's
    resolution, float32 gains per 10 ms)."""
    frames = int(FIGURE_SECONDS * 100)
    data: dict[str, np.ndarray] = {"noise": spectrogram_pixels(noise, sample_rate),
                                   "fps": np.array(FIGURE_FPS)}
    values = getattr(mask, "values", mask)
    if values is not None and np.ndim(values) == 2:
        cols = _MASK_FPS // FIGURE_FPS
        data["mask"] = (_pool(np.asarray(values, np.float32)[:, :frames], np.max, cols) * 255
                        ).astype(np.uint8)
    if music is not None:
        data["music"] = spectrogram_pixels(music, sample_rate)
    if gains_db is not None and np.size(gains_db):
        data["gains_db"] = np.asarray(gains_db, np.float32).ravel()[:frames]
    np.savez_compressed(path, **{k: v for k, v in data.items() if v is not None})


def _panel(ax: Any, px: np.ndarray | None, title: str, seconds: float, fps: float) -> None:
    ax.set_title(title, fontsize=9, loc="left")
    if px is None:
        ax.text(0.5, 0.5, "(none)", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        return
    ax.imshow(px, aspect="auto", origin="upper", cmap="magma", interpolation="nearest",
              extent=(0, px.shape[1] / fps, 0, px.shape[0]))
    ax.set_ylabel("mel")
    ax.set_yticks([])
    ax.set_xlim(0, seconds)


def _figure(panels: list[tuple[np.ndarray | None, str]], mask: np.ndarray | None,
            curves: list[tuple[np.ndarray, str]], seconds: float, title: str, path: Path,
            ylabel: str = "gain (dB)", fps: float = FIGURE_FPS) -> None:
    """Draw and save the figure: spectrogram panels at ``fps`` columns/s (the first with
    ``mask`` outlined, same grid), then the curves at 100 values/s.

    Drawn on matplotlib's Agg canvas directly (no pyplot: its import and the GUI-backend
    machinery are not needed for a file) with a fixed layout (a constrained layout draws the
    figure several times), and saved with light PNG compression.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = len(panels) + 1
    fig = Figure(figsize=(11, 2.1 * rows), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True)
    fig.subplots_adjust(left=0.065, right=0.985, bottom=0.35 / rows, top=1 - 0.32 / rows,
                        hspace=0.32)
    for i, (ax, (px, name)) in enumerate(zip(axes, panels, strict=False)):
        _panel(ax, px, name, seconds, fps)
        if i == 0 and mask is not None and px is not None:
            n = min(mask.shape[1], px.shape[1])
            ax.contour((np.arange(n) + 0.5) / fps, np.arange(mask.shape[0])[::-1] + 0.5,
                       mask[:, :n] > 127, levels=[0.5], colors="cyan", linewidths=0.6)
    ax = axes[-1]
    for curve, label in curves:
        if curve.size:
            ax.plot(np.arange(curve.size) / 100.0, curve, lw=0.8, label=label)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, seconds)
    ax.grid(alpha=0.3)
    if any(c.size for c, _ in curves):
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    from blendfx.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 1})


def write_report_png(path: Path, render: Any, staging: Path, stem_files: dict[str, str], *,
                     mix: np.ndarray | None = None, master_db: np.ndarray | None = None) -> None:
    """Draw report.png for a render (see the module docstring).

    ``mix`` (the mastered mix's first FIGURE_SECONDS) and ``master_db`` (the master gain per
    10 ms) can be handed over by the mix while it still writes; otherwise they are read from
    the finished files in ``staging``.
    """
    from blendfx.audio_io import read_audio

    sr = render.sr
    seconds = min(render.total / sr, FIGURE_SECONDS)
    if mix is None:
        mix, _ = read_audio(staging / f"mix{render.session.master.suffix}", duration=seconds)
    blend = next((r for r in render.results if any(b.get("figure") for b in r.reports)), None)
    mask = gains = None
    fps = float(FIGURE_FPS)
    if blend is not None:
        data = np.load(render.entries[blend.name] / "figure.npz")
        noise_px, music_px = data.get("noise"), data.get("music")
        fps = float(data["fps"]) if "fps" in data else float(_MASK_FPS)
        mask, gains = data.get("mask"), data.get("gains_db")
        track = render.session.track(blend.name)
        source = track.key if track.file is None and track.key else blend.name
        noise_name = (f"noise: {source} (the input of {blend.name}), mask outlined"
                      if source != blend.name else f"noise: input of {blend.name}, mask outlined")
        music_name = f"music: {blend.name}"
    else:
        def stem(role: str) -> tuple[np.ndarray | None, str]:
            track = next((r for r in render.results if r.role == role and r.audible), None)
            if track is None:
                return None, f"{role}: (no track with this role)"
            audio, _ = read_audio(render.entries[track.name] / "audio.wav", duration=seconds)
            return spectrogram_pixels(audio, sr), f"{role}: {track.name}"

        (noise_px, noise_name), (music_px, music_name) = stem("noise"), stem("music")
    if master_db is None:
        master_db = np.load(staging / "master_gain_db.npy")
    master_db = master_db[: int(seconds * 100)]
    curves = [(master_db, "master gain (loudness + limiter)")]
    if gains is not None:
        curves.insert(0, (np.asarray(gains), f"blend gain ({blend.name})"))
    title = (f"{render.session.name}: first {seconds:.0f} s of {render.total / sr:.1f} s"
             if render.total / sr > seconds else f"{render.session.name}: {seconds:.1f} s")
    _figure([(noise_px, noise_name), (music_px, music_name),
             (spectrogram_pixels(mix, sr, int(fps)), "mix")], mask, curves, seconds, title, path,
            fps=fps)


def write_inspect_png(path: Path, audio: np.ndarray, sample_rate: float, title: str,
                      mask: Any = None) -> None:
    """``blendfx inspect``: waveform envelope, spectrogram (with an optional mask) of a file."""
    seconds = min(audio.shape[-1] / sample_rate, FIGURE_SECONDS)
    px = spectrogram_pixels(audio, sample_rate)
    values = getattr(mask, "values", None)
    m = (_pool(np.asarray(values, np.float32), np.max, _MASK_FPS // FIGURE_FPS) * 255
         ).astype(np.uint8) if values is not None else None
    hop = int(round(sample_rate / 100))
    mono = np.abs(np.atleast_2d(audio)).max(axis=0)[: int(seconds * sample_rate)]
    frames = mono.size // hop
    with np.errstate(divide="ignore"):
        level = 20 * np.log10(np.maximum(mono[: frames * hop].reshape(frames, hop).max(axis=1),
                                         1e-6))
    _figure([(px, "spectrogram (mask outlined)" if m is not None else "spectrogram")], m,
            [(level, "peak level per 10 ms")], seconds, title, path, ylabel="level (dBFS)")
