"""Choosing the torch device: CUDA when there is one, the CPU otherwise."""

from __future__ import annotations

from functools import lru_cache

from .errors import ParameterError

__all__ = ["resolve_device", "validate_device", "default_dtype"]


@lru_cache(maxsize=32)
def resolve_device(spec: str | None = "auto"):
    """Turn 'auto', 'cpu', 'cuda', 'cuda:1' (or None = 'auto') into a ``torch.device``.

    'auto' picks CUDA when ``torch.cuda.is_available()``; asking for CUDA on a machine without it
    raises :class:`ParameterError` instead of failing later inside torch.
    """

    import torch  # loaded only when a torch device is asked for (about 2 s)

    spec = "auto" if spec is None else str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device = {spec!r} is not a torch device ('auto', 'cpu', 'cuda:0')") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device = {spec!r} but no CUDA device is available; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda"):
        raise ParameterError(f"device = {spec!r}: blendfx supports 'cpu' and 'cuda' devices")
    return dev


def validate_device(spec: str | None) -> None:
    """Raise :class:`ParameterError` unless ``spec`` names a usable device.

    'cpu' is always usable and is accepted without importing torch (about 2 s), so DSP-only
    chains on the CPU never load it; anything else is checked by :func:`resolve_device`.
    """
    if spec != "cpu":
        resolve_device(spec)


def default_dtype(device):
    """The float dtype models run in on ``device``: fp16 on CUDA, fp32 on the CPU."""

    import torch

    return torch.float16 if device.type == "cuda" else torch.float32
