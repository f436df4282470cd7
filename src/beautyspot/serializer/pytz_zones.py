"""pytz time zones, and datetimes localized in them; pytz is imported only to decode one."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from beautyspot.errors import SerializationError
from beautyspot.serializer.codec import _expect, _Unstorable

_PYTZ_OFFSET_ALONE = (
    "the pytz time zone is the object of one of its zone's offsets (a localized datetime's "
    "tzinfo), which pytz rebuilds only along with that datetime; use pytz.timezone(tz.zone)"
)
_PYTZ_OFFSET_MISMATCH = (
    "its pytz time zone object is not the one its zone has in force at that time (a datetime "
    "given tzinfo=zone instead of zone.localize(), or moved by arithmetic without "
    "zone.normalize()), so it cannot be rebuilt exactly; normalize it, or use zoneinfo"
)
#: IANA zone names: 'UTC', 'Etc/GMT+5', 'America/Argentina/Buenos_Aires', 'America/Port-au-Prince'.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,39}(/[A-Za-z][A-Za-z0-9_+-]{0,39}){0,2}")


def _pytz() -> Any:
    try:
        import pytz
    except ImportError as exc:
        raise SerializationError("the stored value holds a pytz time zone; install pytz") from exc
    return pytz


def _is_pytz(tz: Any) -> bool:
    # By package, not by prefix: pytz_deprecation_shim's zones are not pytz's.
    return type(tz).__module__.partition(".")[0] == "pytz"


def _pytz_zone(key: Any) -> tzinfo:
    """The pytz zone named ``key``, or the pytz.FixedOffset of ``key`` minutes."""
    pytz = _pytz()
    if type(key) is int and -1440 < key < 1440:
        fixed: tzinfo = pytz.FixedOffset(key)
        return fixed
    # Only names of the form pytz writes: pytz.timezone reads a file named by its argument.
    if type(key) is str and _ZONE_NAME.fullmatch(key):
        zone: tzinfo = pytz.timezone(key)
        if getattr(zone, "zone", None) == key:  # pytz also accepts other spellings of a name
            return zone
    raise ValueError(f"bad pytz time zone {key!r:.60}")


def _pytz_key(tz: tzinfo) -> str | int | None:
    """What ``_pytz_zone`` rebuilds exactly ``tz`` from, or None if nothing does."""
    zone = getattr(tz, "zone", None)
    if zone is None:  # pytz.FixedOffset(minutes) has no name
        offset = tz.utcoffset(None)
        zone = offset // timedelta(minutes=1) if type(offset) is timedelta else None
    try:
        return zone if _pytz_zone(zone) is tz else None
    except (ValueError, KeyError):  # pytz.UnknownTimeZoneError is a KeyError
        return None


def _pytz_fields(tz: tzinfo) -> tuple[str | int]:
    key = _pytz_key(tz)
    if key is None:
        raise _Unstorable(tz, _PYTZ_OFFSET_ALONE)
    return (key,)


def _pytz_zone_of(owner: Any, tz: tzinfo) -> tzinfo:
    """The zone whose offset object ``tz`` is."""
    zone = getattr(tz, "zone", None)
    try:
        return tz if zone is None else _pytz_zone(zone)
    except (ValueError, KeyError):
        raise _Unstorable(owner, _PYTZ_OFFSET_ALONE) from None


def _pytz_local_fields(d: datetime) -> tuple[Any, ...]:
    zone = _pytz_zone_of(d, d.tzinfo)
    fields = (zone, d.utcoffset(), d.dst(), d.tzname())
    try:
        exact = _in_pytz_zone(d.replace(tzinfo=None), *fields).tzinfo is d.tzinfo
    except (ValueError, OverflowError):
        exact = False
    if not exact:
        raise _Unstorable(d, _PYTZ_OFFSET_MISMATCH)
    return fields


def _in_pytz_zone(wall: datetime, zone: Any, offset: Any, dst: Any, name: Any) -> datetime:
    """The naive ``wall`` time in pytz ``zone``, at the ``offset`` it was stored with."""
    if not _is_pytz(zone):
        raise ValueError(f"expected a pytz time zone, found {type(zone).__name__}")
    instant = (wall - _expect(offset, timedelta)).replace(tzinfo=timezone.utc)
    local = instant.astimezone(zone)  # pytz picks the object of the offset in force then
    if local.replace(tzinfo=None) != wall or (
        (local.utcoffset(), local.dst(), local.tzname()) != (offset, dst, name)
    ):
        raise ValueError("the pytz time zone does not give this wall time its stored offset")
    return local.replace(fold=wall.fold)


def _build_pytz(fields: list[Any]) -> tzinfo:
    return _pytz_zone(*fields)
