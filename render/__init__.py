"""Offline rendering of sessions, and the ``blendfx`` command line.

- :func:`render_session` (:mod:`blendfx.render.renderer`): a session -> stems, mix, report; the
  work is split by job into :mod:`.sources` (where audio comes from), :mod:`.tracks` (each
  track's chain), :mod:`.mixdown` (the mix, loudness, limiter) and :mod:`.results`;
- :mod:`blendfx.render.session`: the session format (TOML), :mod:`blendfx.render.reaper`: REAPER
  projects -> sessions;
- :mod:`blendfx.render.mastering`: streaming true peak and the limiter;
- :mod:`blendfx.render.cache`: the per-track render cache;
- :mod:`blendfx.render.report`: the report's figure;
- :mod:`blendfx.render.demo`: the synthesized train and the ``blendfx demo`` session;
- :func:`render_many` (:mod:`blendfx.render.farm`): many sessions on a process pool or a Ray
  cluster, each into ``OUT/<session-name>/``;
- :mod:`blendfx.render.cli` and :mod:`blendfx.render.commands`: the ``blendfx`` command.

Names load on first use, so ``blendfx --help`` does not pay for scipy and the renderer.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["cache", "cli", "commands", "demo", "farm", "mastering", "mixdown", "reaper", "renderer",
                "report", "results", "session", "sources", "tracks"],
    submod_attrs={"renderer": ["render_session", "RenderResult"],
                  "farm": ["render_many", "FarmResult"]},
)
