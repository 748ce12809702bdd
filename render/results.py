"""What a render returns and records: :class:`TrackResult` per track, :class:`RenderResult`
for the whole render, and :func:`jsonable` (the values written to meta.json and report.json)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TrackResult", "RenderResult", "jsonable", "level_db"]


@dataclass
class TrackResult:
    """What happened to one track."""

    name: str
    role: str
    key: str
    cached: bool
    seconds: float
    streamed: bool
    peak_dbfs: float
    rms_dbfs: float
    audible: bool
    stem: Path | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RenderResult:
    """Paths of everything a render wrote, and its report (the content of report.json)."""

    out_dir: Path
    mix: Path
    stems: dict[str, Path]
    report_json: Path
    report_png: Path | None
    report: dict[str, Any]
    tracks: list[TrackResult]

    def track(self, name: str) -> TrackResult:
        return next(t for t in self.tracks if t.name == name)


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data: dicts (string keys), lists, numbers, strings, booleans and
    None; numpy arrays become lists (or ``"array[shape]"`` past 64 values), numpy scalars
    Python ones, non-finite floats None, anything else its ``str``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist()) if value.size <= 64 else f"array{list(value.shape)}"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON: silence's -inf LUFS is written as null
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def level_db(value: Any) -> float:
    """A level read back from meta.json or report.json as a float in dB: :func:`jsonable`
    writes silence's ``-inf`` as null, which comes back here as ``-inf`` (never None)."""
    return float("-inf") if value is None else float(value)
