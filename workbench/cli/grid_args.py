"""Sweep specifications from the command line: parameter grids and values.

    parse_grid("fast=5:25:5")       # ("fast", [5, 10, 15, 20, 25]): start:stop:step, stop INCLUSIVE
    parse_grid("slow=20,40,60")     # ("slow", [20, 40, 60]): a list of values
    parse_grid("kind=a,b")          # ("kind", ["a", "b"]): values are JSON if they parse, else text

A range keeps ints when start, stop and step are all ints; otherwise it gives floats
rounded to 10 decimals (``0.01:0.05:0.01`` ends at 0.05, not 0.049999). The
``--constraint`` text is a :class:`workbench.backtesting.sweeps.grid.Constraint`.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.errors import ConfigError

__all__ = ["parse_grid", "parse_params", "parse_value"]

_MAX_POINTS = 100_000  # one parameter's range; a bigger one is surely a typo


def parse_value(text: str) -> Any:
    """A command-line value: JSON if it parses (``10``, ``0.5``, ``true``, ``null``,
    ``[1, 2]``), else the text itself (``next_open``)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _number(text: str, spec: str) -> int | float:
    value = parse_value(text.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"--grid {spec}: {text.strip()!r} is not a number")
    return value


def _range(name: str, body: str, spec: str) -> list:
    parts = body.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--grid {spec}: a range is start:stop:step, e.g. {name}=5:25:5")
    start, stop, step = (_number(p, spec) for p in parts)
    if step <= 0:
        raise ConfigError(f"--grid {spec}: step must be > 0")
    if stop < start:
        raise ConfigError(f"--grid {spec}: stop {stop} is below start {start}")
    count = int((stop - start) / step + 1e-9) + 1
    if count > _MAX_POINTS:
        raise ConfigError(f"--grid {spec}: {count:,} values; at most {_MAX_POINTS:,} per parameter")
    if all(isinstance(v, int) for v in (start, stop, step)):
        return list(range(start, stop + 1, step))
    return [round(start + i * step, 10) for i in range(count)]


def parse_grid(spec: str) -> tuple[str, list]:
    """``NAME=start:stop:step`` (stop inclusive) or ``NAME=a,b,c`` -> ``(name, values)``."""
    name, sep, body = str(spec).partition("=")
    name, body = name.strip(), body.strip()
    if not sep or not name.isidentifier() or not body:
        raise ConfigError(f"--grid {spec!r}: write NAME=start:stop:step (stop inclusive) "
                          "or NAME=a,b,c")
    if ":" in body:
        values = _range(name, body, spec)
    else:
        values = [parse_value(v.strip()) for v in body.split(",")]
        if any(v == "" for v in values):
            raise ConfigError(f"--grid {spec}: an empty value in the list")
    return name, list(dict.fromkeys(values))


def parse_params(pairs) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs as a dict: a name is a Python identifier, given once (a second
    value is refused, never silently preferred); each value through :func:`parse_value`."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if not name.isidentifier():
            raise ConfigError(f"-p {name!r}: a parameter name is a Python identifier")
        if name in out:
            raise ConfigError(f"-p {name}: given twice")
        out[name] = parse_value(value)
    return out
