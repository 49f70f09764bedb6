"""The one rule for names and short texts an operator gives, whatever the surface.

The CLI, the admin API and the console all reach the store through the
services, which check here: no control characters (C0, C1, DEL: NUL among
them, which PostgreSQL refuses outright), no line breaks, no bidirectional
controls (which make a name read as another), no lone surrogates (which no
store can encode), nothing longer than its column. A lookup of a name that
breaks the rule finds nothing: no such name can have been stored.
"""

from __future__ import annotations

import re

from acauth.errors import InvalidParameter

_FORBIDDEN = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0, DEL, C1: NUL, ESC, newlines among them
    "\u2028\u2029"  # line and paragraph separators
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks and overrides
    "\ud800-\udfff"  # lone surrogates
    "]"
)
FORBIDDEN = "control characters, line breaks or bidirectional overrides"


def check(field: str, value: str, limit: int, *, required: bool = False) -> str:
    """``value`` if ``field`` may hold it; ``InvalidParameter`` saying why not otherwise."""
    if required and not value.strip():
        raise InvalidParameter(f"{field} is required")
    if len(value) > limit:
        raise InvalidParameter(f"{field} is longer than {limit} characters")
    if _FORBIDDEN.search(value):
        raise InvalidParameter(f"{field} must not contain {FORBIDDEN}")
    return value


def usable(value: str, limit: int) -> bool:
    """Whether ``value`` could have been stored under the rule: what a lookup asks first."""
    return len(value) <= limit and _FORBIDDEN.search(value) is None
