"""The render report's figure (report.png): what the noise was, what covered it, and how loud.

Four panels on one time axis (the first :data:`FIGURE_SECONDS` seconds of the session; drawn
with Pillow, see :func:`_figure`), under a title, the report's key numbers (loudness target,
ceiling, master gain, each Blend's unmasked fraction: :func:`figure_caption`) and a colour bar
(spectrogram level in dB under each panel's loudest cell, -80 to 0 dB); the mel axes are
labelled in Hz:

1. the noise's spectrogram (Riffusion's mel scale, :data:`FIGURE_FPS` columns/s) with its mask
   outlined: the energy core the music has to cover;
2. the music's spectrogram;
3. the mix's spectrogram;
4. the gain curves in dB: the blend's adaptive gain per 10 ms frame, and the master gain
   (loudness gain and true-peak limiter).

When a track runs a Blend, the noise, mask, music and gain come from that Blend (saved beside
the track's cache entry, so a cached track still has its figure); otherwise every audible track
with the role "noise", summed, and every one with the role "music", summed, are shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from blendfx.audio_io import read_audio
from blendfx.buffers import to_mono
from blendfx.files import atomic_path
from blendfx.spectral.params import SpectrogramParams
from PIL import Image, ImageDraw, ImageFont
from scipy.fft import rfft

from .sources import open_stem

__all__ = ["save_blend_figure_data", "write_report_png", "write_inspect_png", "FIGURE_SECONDS",
           "spectrogram_pixels", "figure_caption"]

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


#: The magma colour map (matplotlib's, sampled at 17 points and interpolated linearly).
_MAGMA = np.array([(0, 0, 4), (10, 8, 34), (29, 17, 71), (54, 16, 107), (81, 18, 124),
                   (106, 28, 129), (131, 38, 129), (156, 46, 127), (183, 55, 121), (208, 65, 111),
                   (231, 82, 99), (245, 107, 92), (252, 137, 97), (254, 167, 114), (254, 196, 136),
                   (253, 226, 163), (252, 253, 191)], np.float64)
_CURVE_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]  # matplotlib's first three
_MASK_COLOUR = (0, 255, 255)
_WIDTH, _ROW_HEIGHT = 990, 189  # pixels: 11 x 2.1 inches at 90 dpi, as the figure always was
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 14, 34, 44  # margins around the panels, pixels


def _magma_lut() -> np.ndarray:
    x = np.linspace(0.0, 1.0, len(_MAGMA))
    v = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(v, x, _MAGMA[:, c]) for c in range(3)], axis=1).round().astype(
        np.uint8)


def _ticks(lo: float, hi: float, count: int = 6) -> np.ndarray:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``[lo, hi]``."""
    span = max(hi - lo, 1e-9)
    raw = span / count
    step = min((m * 10.0 ** np.floor(np.log10(raw)) for m in (1, 2, 5, 10)
                if m * 10.0 ** np.floor(np.log10(raw)) >= raw), default=raw)
    return np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)


def _label(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-6 else f"{value:.1f}"


#: Frequencies labelled on the mel axes, Hz.
_HZ_TICKS = (100, 250, 500, 1000, 2000, 4000, 8000)


def _hz_label(f: float) -> str:
    return f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"


def _figure(panels: list[tuple[np.ndarray | None, str]], mask: np.ndarray | None,
            curves: list[tuple[np.ndarray, str]], seconds: float, title: str, path: Path,
            ylabel: str = "gain (dB)", fps: float = FIGURE_FPS, caption: str = "") -> None:
    """Draw and save the figure: spectrogram panels at ``fps`` columns/s (the first with
    ``mask`` outlined, same grid), then the curves at 100 values/s, on one time axis.

    Drawn with Pillow straight into an RGB image (a 990-pixel-wide PNG): the panels are
    images and polylines, and matplotlib's import and layout machinery would cost more than
    the render's whole mix.
    """

    rows = len(panels) + 1
    height = _ROW_HEIGHT * rows
    img = Image.new("RGB", (_WIDTH, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=11)
    big = ImageFont.load_default(size=13)
    x0, x1 = _LEFT, _WIDTH - _RIGHT
    pitch = (height - _TOP - _BOTTOM) / rows
    gap = 22  # room for each panel's title
    boxes = [(x0, int(_TOP + i * pitch + gap), x1, int(_TOP + (i + 1) * pitch) - 4)
             for i in range(rows)]
    seconds = max(seconds, 1e-9)
    xticks = _ticks(0.0, seconds, 8)

    def x_of(t: np.ndarray | float) -> np.ndarray | float:
        return x0 + (np.asarray(t) / seconds) * (x1 - x0)

    draw.text((_WIDTH / 2, 6), title, fill="black", font=big, anchor="mt")
    if caption:  # the report's key numbers
        draw.text((_WIDTH / 2, 21), caption, fill="black", font=font, anchor="mt")
    lut = _magma_lut()
    # the colour bar: spectrogram level in dB under the loudest cell of each panel
    bar_w, bar_x = 120, _WIDTH - _RIGHT - 120
    bar = Image.fromarray(np.repeat(lut[np.linspace(0, 255, bar_w).astype(int)][None], 7, axis=0))
    img.paste(bar, (bar_x, 8))
    draw.rectangle((bar_x, 8, bar_x + bar_w, 15), outline="black")
    draw.text((bar_x - 4, 12), "-80 dB", fill="black", font=font, anchor="rm")
    draw.text((bar_x + bar_w, 17), "0 dB (loudest)", fill="black", font=font, anchor="rt")
    p = SpectrogramParams()
    mel_top = 2595.0 * np.log10(1.0 + p.max_frequency / 700.0)
    for i, (px, name) in enumerate(panels):
        left, top, right, bottom = boxes[i]
        draw.text((left, top - 4), name, fill="black", font=font, anchor="lb")
        if px is None:
            draw.text(((left + right) / 2, (top + bottom) / 2), "(none)", fill="black",
                      font=font, anchor="mm")
        else:
            # the columns that fall inside the time axis, stretched to the panel
            cols = min(px.shape[1], int(round(seconds * fps)))
            shown = max(1, int(round(cols / (seconds * fps) * (right - left))))
            tile = Image.fromarray(lut[px[:, :cols]]).resize((shown, bottom - top),
                                                             Image.Resampling.NEAREST)
            panel = np.asarray(tile).copy()
            if i == 0 and mask is not None:
                m = Image.fromarray(((mask[:, :cols] > 127) * 255).astype(np.uint8))
                inside = np.asarray(m.resize((shown, bottom - top), Image.Resampling.NEAREST)) > 0
                edge = np.zeros_like(inside)
                edge[1:] |= inside[1:] != inside[:-1]
                edge[:, 1:] |= inside[:, 1:] != inside[:, :-1]
                panel[edge] = _MASK_COLOUR
            img.paste(Image.fromarray(panel), (left, top))
            for hz in _HZ_TICKS:  # mel axis, labelled in Hz
                if hz >= p.max_frequency:
                    continue
                y = bottom - 2595.0 * np.log10(1.0 + hz / 700.0) / mel_top * (bottom - top)
                draw.line((left - 3, y, left, y), fill="black")
                draw.text((left - 5, y), _hz_label(hz), fill="black", font=font, anchor="rm")
            draw.text((left - 5, top), "Hz", fill="black", font=font, anchor="rt")
        draw.rectangle((left, top, right, bottom), outline="black")
        for t in xticks:
            x = float(x_of(t))
            draw.line((x, bottom, x, bottom + 3), fill="black")
    # the curves
    left, top, right, bottom = boxes[-1]
    values = np.concatenate([c[np.isfinite(c)] for c, _ in curves if c.size] or [np.zeros(1)])
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.05 * (hi - lo), 0.5)
    lo, hi = lo - pad, hi + pad

    def y_of(v: np.ndarray) -> np.ndarray:
        return bottom - (np.clip(v, lo, hi) - lo) / (hi - lo) * (bottom - top)

    for v in _ticks(lo, hi, 5):
        y = float(y_of(np.array(v)))
        draw.line((left, y, right, y), fill=(225, 225, 225))
        draw.line((left - 3, y, left, y), fill="black")
        draw.text((left - 5, y), _label(float(v)), fill="black", font=font, anchor="rm")
    for t in xticks:
        x = float(x_of(t))
        draw.line((x, top, x, bottom), fill=(225, 225, 225))
        draw.text((x, bottom + 5), _label(float(t)), fill="black", font=font, anchor="mt")
    draw.text(((left + right) / 2, height - 6), "time (s)", fill="black", font=font, anchor="mb")
    label = Image.new("RGB", (int(draw.textlength(ylabel, font=font)) + 4, 14), "white")
    ImageDraw.Draw(label).text((2, 0), ylabel, fill="black", font=font)
    label = label.rotate(90, expand=True)
    img.paste(label, (4, int((top + bottom) / 2 - label.height / 2)))
    legend_y = top + 6
    for k, (curve, name) in enumerate(c for c in curves if c[0].size):
        colour = _CURVE_COLOURS[k % len(_CURVE_COLOURS)]
        t = np.arange(curve.size) / 100.0
        keep = t <= seconds
        xs, ys = x_of(t[keep]), y_of(np.nan_to_num(curve[keep], nan=lo, neginf=lo, posinf=hi))
        if xs.size > 1:
            draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=colour, width=1)
        text_w = draw.textlength(name, font=font)
        draw.line((right - text_w - 34, legend_y + 6, right - text_w - 14, legend_y + 6),
                  fill=colour, width=2)
        draw.text((right - text_w - 8, legend_y), name, fill="black", font=font)
        legend_y += 15
    draw.rectangle((left, top, right, bottom), outline="black")

    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", compress_level=1)


def _blend_summary(reports: list[dict[str, Any]]) -> str:
    """What the blend achieved, for the music panel's title: masked share of the noise's core,
    loudness increase of the mix over the noise and the Bark-band noise-to-mask ratio."""
    report = next((b for b in reports if "masked_share" in b), None)
    if report is None:
        return ""
    parts = []
    if isinstance(report.get("masked_share"), float):
        parts.append(f"masks {100 * report['masked_share']:.0f}% of the noise's core")
    if isinstance(report.get("loudness_increase_lu"), float) and np.isfinite(report["loudness_increase_lu"]):
        parts.append(f"mix {report['loudness_increase_lu']:+.1f} LU over the noise")
    if isinstance(report.get("nmr_bark_db"), float) and np.isfinite(report["nmr_bark_db"]):
        parts.append(f"Bark NMR {report['nmr_bark_db']:+.1f} dB")
    return f" ({', '.join(parts)})" if parts else ""


def write_report_png(path: Path, render: Any, staging: Path, stem_files: dict[str, str], *,
                     mix: np.ndarray | None = None, master_db: np.ndarray | None = None) -> None:
    """Draw report.png for a render (see the module docstring).

    ``mix`` (the mastered mix's first FIGURE_SECONDS) and ``master_db`` (the master gain per
    10 ms) can be handed over by the mix while it still writes; otherwise they are read from
    the finished files in ``staging``.
    """

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
        music_name = f"music: {blend.name}" + _blend_summary(blend.reports)
    else:
        def stem(role: str) -> tuple[np.ndarray | None, str]:
            """Every audible track of ``role``, summed (a 20-stem session shows all 20)."""
            tracks = [r for r in render.results if r.role == role and r.audible]
            if not tracks:
                return None, f"{role}: (no track with this role)"
            total = None
            for track in tracks:
                reader = open_stem(render.cache, render.entries[track.name])
                try:
                    audio = reader.read(0, int(round(seconds * sr)))
                finally:
                    reader.close()
                total = audio if total is None else total + audio
            names = ", ".join(t.name for t in tracks[:6]) + (", ..." if len(tracks) > 6 else "")
            label = (f"{role}: {tracks[0].name}" if len(tracks) == 1
                     else f"{role}: {len(tracks)} tracks summed ({names})")
            return spectrogram_pixels(total, sr), label

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
            fps=fps, caption=figure_caption(render))


def figure_caption(render: Any) -> str:
    """The report's key numbers for the figure: the master's loudness, ceiling and gain (set by
    the mix as ``render.figure_numbers``) and each Blend's unmasked fraction."""
    n = getattr(render, "figure_numbers", None) or {}
    parts = []
    if n.get("target_lufs") is not None:
        parts.append(f"mix {n['target_lufs']:.1f} LUFS target")
    elif n.get("pre_master_lufs") is not None and np.isfinite(n["pre_master_lufs"]):
        parts.append(f"mix {n['pre_master_lufs']:.1f} LUFS")
    if n.get("true_peak_dbtp") is not None:
        parts.append(f"ceiling {n['true_peak_dbtp']:.1f} dBTP")
    if n.get("master_gain_db") is not None:
        parts.append(f"master gain {n['master_gain_db']:+.1f} dB"
                     + (" + limiter" if n.get("limiter") else ""))
    for r in render.results:
        value = next((b.get("unmasked_fraction") for b in r.reports
                      if isinstance(b.get("unmasked_fraction"), float)), None)
        if value is not None:
            parts.append(f"{r.name}: unmasked fraction {value:.3f}")
    return ";  ".join(parts)


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
