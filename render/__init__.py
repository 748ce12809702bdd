"""Offline rendering of sessions, and the ``blendfx`` command line.

- :func:`render_session` (:mod:`blendfx.render.renderer`): a session -> stems, mix, report;
- :mod:`blendfx.render.mastering`: streaming loudness, true peak, limiter;
- :mod:`blendfx.render.cache`: the per-track render cache;
- :mod:`blendfx.render.demo`: the synthesized train and the ``blendfx demo`` session;
- :mod:`blendfx.render.cli`: the ``blendfx`` command.
"""

from typing import Any

__all__ = ["render_session", "RenderResult"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `blendfx --help` does not pay for scipy and the renderer.
    if name in __all__:
        from . import renderer

        return getattr(renderer, name)
    raise AttributeError(f"module 'blendfx.render' has no attribute {name!r}")
