"""What a generator keyed to a video's shots is given: a prompt per span of time and the cuts
where its music joins (:func:`blendfx.render.score.follow_picture` sets both). Not preset
parameters: they come from the picture, not from the sound designer's settings."""

from __future__ import annotations

from typing import Any

import numpy as np
from blendfx.errors import ParameterError

__all__ = ["ShotSchedule", "check_prompt_spans"]


def check_prompt_spans(value: Any, name: str = "prompts") -> tuple[tuple[float, float, str], ...] | None:
    """A prompt schedule as a tuple of ``(start_s, end_s, text)`` (None stays None).

    Raises
    ------
    ParameterError
        Not a list of 3-tuples, or a span with ``start_s >= end_s``.
    """
    if value is None:
        return None
    try:
        spans = tuple((float(a), float(b), str(t)) for a, b, t in value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be (start_s, end_s, text) spans, not {value!r}") from None
    if any(not a < b for a, b, _ in spans):
        raise ParameterError(f"{name}: every span needs start_s < end_s")
    return spans


class ShotSchedule:
    """The ``prompts`` and ``cuts`` of a generator that follows a picture (a mix-in of the
    Riffusion generators and :class:`~blendfx.effects.diffusion.text_to_music.TextToMusic`;
    the class defines ``prompt``, the text where no span holds)."""

    prompt: str
    _prompts: tuple[tuple[float, float, str], ...] | None = None
    _cuts: tuple[float, ...] = ()

    def __init__(self, *, prompts: list[tuple[float, float, str]] | None = None,
                 cuts: list[float] | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.prompts = prompts
        self.cuts = cuts or []

    @property
    def prompts(self) -> list[tuple[float, float, str]] | None:
        """A prompt schedule: ``(start_s, end_s, text)`` spans (a prompt per shot of a video,
        :func:`blendfx.render.score.shot_prompts`); :meth:`prompt_at` a time gives the text of
        the span that holds it, ``prompt`` where none does. None: ``prompt`` everywhere."""
        return list(self._prompts) if self._prompts is not None else None

    @prompts.setter
    def prompts(self, value: list[tuple[float, float, str]] | None) -> None:
        object.__setattr__(self, "_prompts", check_prompt_spans(value, f"{type(self).__name__}.prompts"))

    @property
    def cuts(self) -> list[float]:
        """Times (s) where the music joins (a video's cuts): each stretch between cuts is made
        on its own, starting at its cut, and crossfaded into the next after the cut."""
        return list(self._cuts)

    @cuts.setter
    def cuts(self, value: list[float]) -> None:
        name = type(self).__name__
        try:
            cuts = tuple(sorted(float(t) for t in value))
        except (TypeError, ValueError):
            raise ParameterError(f"{name}.cuts must be times in s, not {value!r}") from None
        if any(not np.isfinite(t) or t < 0 for t in cuts):
            raise ParameterError(f"{name}.cuts must be finite times >= 0 s, got {value!r}")
        object.__setattr__(self, "_cuts", cuts)

    def prompt_at(self, seconds: float) -> str:
        """The prompt at a time (s) of the clip."""
        for a, b, text in self._prompts or ():
            if a <= seconds < b:
                return text
        return self.prompt
