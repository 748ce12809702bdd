"""The one exception family of blendfx.

Every error a user can cause (a bad parameter, an unreadable file, a preset that names an unknown
class, a model that is not on disk) is a :class:`BlendfxError`, so scripts and the CLI can catch
one type and show one clear line. Subclasses say which kind of input was wrong.
"""

from __future__ import annotations

__all__ = [
    "BlendfxError",
    "ParameterError",
    "ParameterTypeError",
    "AudioFileError",
    "PresetError",
    "SessionError",
    "ModelNotFoundError",
]


class BlendfxError(Exception):
    """Base class of every error blendfx raises for bad input."""


class ParameterError(BlendfxError, ValueError):
    """A parameter or an input array is out of range, of the wrong type, or unknown."""


class ParameterTypeError(ParameterError, TypeError):
    """A value of the wrong type: a string or list where a plugin, a number or an array belongs.

    Also a :class:`TypeError`, which is what pedalboard raises for these and what its users
    catch; still a :class:`ParameterError` (and a :class:`BlendfxError`) for blendfx's own.
    """


class AudioFileError(BlendfxError, OSError):
    """An audio file cannot be read or written (missing, corrupt, unsupported format)."""


class PresetError(BlendfxError, ValueError):
    """A preset file is missing, malformed, or names a class or key blendfx does not allow."""


class SessionError(BlendfxError, ValueError):
    """A session manifest or project file is invalid (missing stem, path escape, key cycle)."""


class ModelNotFoundError(BlendfxError, FileNotFoundError):
    """Model weights are not available locally (blendfx never downloads at run time)."""
