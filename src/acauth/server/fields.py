"""The emulator's inputs, read field by field: of their JSON type, or refused in our words.

A control request, a scenario step or a saved state is JSON, and JSON has types:
``"count": "2"`` or ``"keep_old": "yes"`` is refused, not guessed at, with a message
that names the field (``"count must be a whole number"``), never Python's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

# Exact in every JSON reader (JavaScript's Number.MAX_SAFE_INTEGER), and within
# the 64 bits a snapshot can be written with.
MAX_WHOLE = 2**53 - 1
_DECIMAL = re.compile(r"-?[0-9]+")


class BadRequest(ValueError):
    """A control request that cannot be applied (answered 400 with its message)."""


def required(data: Mapping[str, Any], name: str) -> Any:
    if name not in data:
        raise BadRequest(f"{name} is required")
    return data[name]


def whole(value: Any, name: str, *, least: int | None = None) -> int:
    """A whole number (``3`` or ``3.0``; not ``"3"``, ``3.5`` or ``true``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be a whole number")
    if abs(value) > MAX_WHOLE:
        raise BadRequest(f"{name} is too large (at most {MAX_WHOLE} either way)")
    if least is not None and value < least:
        raise BadRequest(f"{name} is at least {least}")
    return value


def number(value: Any, name: str) -> float:
    """A finite number (``0.5``, ``2``; not ``"0.5"`` or ``true``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name} must be a number")
    return float(value)


def boolean(value: Any, name: str) -> bool:
    """``true`` or ``false`` (not ``"yes"``, ``1`` or ``null``)."""
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def query_whole(raw: str | None, name: str, *, least: int | None = None) -> int | None:
    """A whole number from a query string; None when the parameter is absent."""
    if raw is None:
        return None
    raw = raw.strip()
    if not _DECIMAL.fullmatch(raw):
        raise BadRequest(f"{name} must be a whole number")
    # Python refuses to read very long numbers; anything past 17 digits is too large anyway.
    return whole(int(raw) if len(raw) <= 17 else MAX_WHOLE + 1, name, least=least)
