"""How the conformance suite builds each registered effect.

Most effects are built with their defaults. An effect that needs something the suite cannot
guess (a tiny model, a music file) registers a factory here: ``FACTORIES[name] = callable``
returning a ready instance. Keep factories fast: the suite runs each effect a dozen times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FACTORIES: dict[str, Callable[[], Any]] = {}

#: Effects the suite skips, with the reason (e.g. abstract helpers). Keep this empty if you can.
SKIP: dict[str, str] = {}
