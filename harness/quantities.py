"""Durations, ratios and objectives as people write them: ``20s``, ``99.9%``, ``< 500ms``.

Everything is normalised to SI base units at the edge: seconds and plain ratios
(0.999), so the rest of the code never compares "500ms" with 0.5.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_MAX_SECONDS = 7 * 24 * 3600.0  # a week: anything longer is a typo, not an experiment


def parse_duration(value: object) -> float:
    """``"20s"`` -> 20.0, ``"500ms"`` -> 0.5, ``"3m"`` -> 180.0, ``5`` -> 5.0 seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 500ms or 5m, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like 30s, 500ms or 5m, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0 or seconds > _MAX_SECONDS:
        raise ValueError(f"duration {value!r} is out of range (0 to 7 days)")
    return seconds


class Seconds(float):
    """A duration parsed once at load (a float of seconds) that still prints as written
    (``300ms``), so descriptions, journals and reports read like the experiment."""

    text: str

    def __new__(cls, seconds: float, text: str | None = None) -> "Seconds":
        obj = super().__new__(cls, seconds)
        obj.text = text if text is not None else format_duration(seconds)
        return obj

    def __str__(self) -> str:
        return self.text

    def __format__(self, spec: str) -> str:
        return self.text if not spec else super().__format__(spec)

    def __reduce__(self):
        return (Seconds, (float(self), self.text))


def parse_seconds(value: object) -> Seconds:
    """:func:`parse_duration`, keeping the text as written."""
    return Seconds(parse_duration(value), str(value).strip() if isinstance(value, str) else None)


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"


_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
_OBJECTIVE = re.compile(r"^\s*(<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?)\s*(%|ms|s|m|/s|rps)?\s*$")


@dataclass(frozen=True)
class Objective:
    """A comparison such as ``>= 99%`` or ``< 500ms``, normalised to base units."""

    op: str
    value: float  # ratio (0.99) for %, seconds for durations, plain number otherwise
    unit: str  # "ratio", "seconds" or "number"
    text: str  # what the user wrote, for messages

    def holds(self, observed: float) -> bool:
        return bool(_OPS[self.op](observed, self.value))

    def render(self, observed: float | None) -> str:
        return render_value(observed, self.unit)

    def __str__(self) -> str:
        return self.text


def parse_objective(value: object) -> Objective:
    """Parse ``">= 99.9%"``, ``"< 500ms"``, ``"> 3m"``, ``"<= 10"``."""
    if not isinstance(value, str):
        raise ValueError(
            f"expected a comparison such as '>= 99%' or '< 500ms', got {value!r}"
        )
    match = _OBJECTIVE.match(value)
    if not match:
        raise ValueError(
            f"expected a comparison such as '>= 99%' or '< 500ms', got {value!r}"
        )
    op, number, unit = match.group(1), float(match.group(2)), match.group(3)
    if unit == "%":
        return Objective(op, number / 100.0, "ratio", value.strip())
    if unit in ("ms", "s", "m"):
        return Objective(op, number * _UNIT_SECONDS[unit], "seconds", value.strip())
    return Objective(op, number, "number", value.strip())


def render_value(observed: float | None, unit: str) -> str:
    if observed is None:
        return "no data"
    if unit == "ratio":
        return f"{observed * 100:.3g}%" if observed < 0.999 else f"{observed * 100:.4g}%"
    if unit == "seconds":
        return format_duration(observed)
    return f"{observed:.4g}"
