"""Declared, validated effect parameters.

An effect declares its parameters as class attributes; each one knows its type, unit, default and
allowed range, validates on assignment, and documents itself::

    class Utility(Effect):
        gain_db = FloatParam(0.0, min=-60.0, max=24.0, unit="dB", doc="Output gain.")

``Utility(gain_db=99)`` raises ``ParameterError: Utility.gain_db = 99 is out of range
[-60, 24] dB``. Presets and sessions read and write exactly these declared values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ParameterError, ParameterTypeError

__all__ = ["Param", "FloatParam", "IntParam", "BoolParam", "ChoiceParam", "StrParam"]

_UNSET = object()


class Param:
    """Base descriptor: stores the value in ``instance._param_values[name]``."""

    kind = "value"

    def __init__(self, default: Any, *, unit: str = "", doc: str = "", optional: bool = False):
        self.default = default
        self.unit = unit
        self.doc = doc
        self.optional = optional or default is None
        self.name = "?"
        self.owner_name = "?"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner_name = owner.__name__

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._param_values.get(self.name, self.default)

    def __set__(self, instance: Any, value: Any) -> None:
        owner = type(instance).__name__
        if value is None and self.optional:
            instance._param_values[self.name] = None
        else:
            instance._param_values[self.name] = self.validate(value, owner)
        instance._on_param_change(self.name)

    def _fail(self, owner: str, value: Any, why: str, type_error: bool = False) -> ParameterError:
        cls = ParameterTypeError if type_error else ParameterError
        return cls(f"{owner}.{self.name} = {value!r} {why}")

    def validate(self, value: Any, owner: str) -> Any:
        return value

    def describe(self) -> dict[str, Any]:
        """A plain dict for docs, ``blendfx presets show`` and the CLI."""
        return {"name": self.name, "kind": self.kind, "default": self.default, "unit": self.unit,
                "doc": self.doc}


class FloatParam(Param):
    """A real-valued parameter with an optional closed range ``[min, max]``."""

    kind = "float"

    def __init__(self, default: float | None, *, min: float | None = None,
                 max: float | None = None, **kw: Any):
        super().__init__(default, **kw)
        self.min, self.max = min, max

    def validate(self, value: Any, owner: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            if not (isinstance(value, np.generic) and value.dtype.kind in "fiu"):
                raise self._fail(owner, value, f"must be a number{self._unit()}", type_error=True)
        value = float(value)
        if not math.isfinite(value):
            raise self._fail(owner, value, "must be finite")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise self._fail(owner, value, f"is out of range [{self.min:g}, {self.max:g}]{self._unit()}"
                             if self.min is not None and self.max is not None
                             else f"is out of range (min {self.min}, max {self.max}){self._unit()}")
        return value

    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "min": self.min, "max": self.max}


class IntParam(FloatParam):
    """An integer parameter with an optional closed range."""

    kind = "int"

    def validate(self, value: Any, owner: str) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self._fail(owner, value, "must be an integer", type_error=True)
        try:
            ivalue = int(value)
        except (TypeError, ValueError):
            raise self._fail(owner, value, "must be an integer", type_error=True) from None
        if ivalue != value:
            raise self._fail(owner, value, "must be an integer", type_error=True)
        super().validate(ivalue, owner)
        return ivalue


class BoolParam(Param):
    """A switch."""

    kind = "bool"

    def validate(self, value: Any, owner: str) -> bool:
        if not isinstance(value, bool):
            raise self._fail(owner, value, "must be true or false", type_error=True)
        return value


class ChoiceParam(Param):
    """One string out of a fixed set (a mode)."""

    kind = "choice"

    def __init__(self, default: str, choices: Sequence[str], **kw: Any):
        super().__init__(default, **kw)
        self.choices = tuple(choices)

    def validate(self, value: Any, owner: str) -> str:
        if value not in self.choices:
            raise self._fail(owner, value, f"is not one of {', '.join(map(repr, self.choices))}")
        return value

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "choices": list(self.choices)}


class StrParam(Param):
    """Free text (a prompt, a sidechain key name, a file path)."""

    kind = "str"

    def validate(self, value: Any, owner: str) -> str:
        if not isinstance(value, str):
            raise self._fail(owner, value, "must be a string", type_error=True)
        return value


def declared_params(cls: type) -> dict[str, Param]:
    """All parameters a class declares, base classes first, in declaration order."""
    out: dict[str, Param] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Param):
                out[name] = value
    return out
