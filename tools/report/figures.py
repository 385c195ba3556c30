"""How a figure is written for people: one rule for the report, the stopping reasons and the CLI."""

from __future__ import annotations

from numbers import Integral, Real


def figure(value: object, digits: int = 3, missing: str = "undefined") -> str:
    """A number with `digits` decimals (counts as they are); `missing` where there is none."""
    if value is None or value == "":
        return missing
    if isinstance(value, Real) and not isinstance(value, Integral):
        return f"{float(value):.{digits}f}"
    return str(value)
