"""How long a cached result lives: parse "7d", "12h", seconds or a timedelta."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from beautyspot.errors import ConfigurationError

__all__ = ["Retention", "retention_seconds"]

Retention = str | int | float | timedelta | None

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def retention_seconds(retention: Retention, *, argument: str = "retention") -> float | None:
    """Seconds a result stays valid, or None for forever.

    >>> retention_seconds("7d"), retention_seconds("1.5h"), retention_seconds(90)
    (604800.0, 5400.0, 90.0)
    >>> retention_seconds(timedelta(minutes=2)), retention_seconds(None)
    (120.0, None)
    """
    if retention is None:
        return None
    if isinstance(retention, timedelta):
        seconds = retention.total_seconds()
    elif isinstance(retention, (int, float)) and not isinstance(retention, bool):
        seconds = float(retention)
    elif isinstance(retention, str) and (match := _TEXT.match(retention)):
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        raise ConfigurationError(
            f"{argument}={retention!r}: use None (forever), seconds, a timedelta, or text like "
            "'30s', '15m', '12h', '7d', '2w'"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"{argument}={retention!r}: must be a positive, finite duration")
    return seconds
