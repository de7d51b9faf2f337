"""Checks of values read from files (a bundle's config.json and calibration.json, model options).

Each raises ValueError("<field> must be <rule>, got <value as JSON>"); the reader of the file
prefixes its path (anomaly.bundle.naming), so a bad file reads, in one line,

    runs/x/calibration.json: image_threshold must be a finite number, got NaN
"""

from __future__ import annotations

import json
import math
from typing import Any


def shown(value: Any) -> str:
    """`value` as it reads in the JSON file (NaN, -Infinity, "text"), cut to 80 characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def invalid(field: str, rule: str, value: Any) -> ValueError:
    return ValueError(f"{field} must be {rule}, got {shown(value)}")


def is_number(value: Any) -> bool:
    """An int or float (JSON number), not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(field: str, value: Any, interval: str = "", *, integer: bool = False) -> Any:
    """`value` if it is a finite number (an int with `integer`) inside `interval`, written as in
    maths: "[0, 64]", "(0, 1]", "[1, inf)"; "" = any. Raises ValueError naming `field` otherwise."""
    ok = is_number(value) and (isinstance(value, int) or not integer) and math.isfinite(value)
    if ok and interval:
        low, high = (float(bound) for bound in interval[1:-1].split(","))
        ok = (low < value if interval[0] == "(" else low <= value) and (value < high if interval[-1] == ")"
                                                                         else value <= high)
    if not ok:
        raise invalid(field, f"{'an integer' if integer else 'a finite number'}{' in ' + interval if interval else ''}",
                      value)
    return value


def one_of(field: str, value: Any, allowed: tuple | list) -> Any:
    if not isinstance(value, str) or value not in allowed:
        raise invalid(field, f"one of {', '.join(map(shown, allowed))}", value)
    return value


def like(field: str, value: Any, default: Any) -> Any:
    """`value` if it has the JSON type of `default` (bool, integer, finite number (an integer too),
    string, or a list of one of those); a model option checked against its default."""
    if isinstance(default, list):
        if not isinstance(value, list):
            raise invalid(field, f"a list like {shown(default)}", value)
        for i, item in enumerate(value):
            like(f"{field}[{i}]", item, default[0] if default else 0.0)
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise invalid(field, "true or false", value)
    elif isinstance(default, (int, float)):
        number(field, value, integer=isinstance(default, int))
    elif isinstance(default, str) and not isinstance(value, str):
        raise invalid(field, "a string", value)
    return value
