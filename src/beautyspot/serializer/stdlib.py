"""Standard library types: tuples and sets, big ints, Decimal, UUID, dates, times, time zones."""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

from beautyspot.serializer.codec import _expect, _Unstorable
from beautyspot.serializer.messages import _type_name
from beautyspot.serializer.pytz_zones import (
    _PYTZ_OFFSET_ALONE,
    _in_pytz_zone,
    _is_pytz,
    _pytz_key,
    _pytz_local_fields,
)
from beautyspot.serializer.tags import (
    _BIGINT,
    _BYTEARRAY,
    _DATE,
    _DATETIME,
    _DECIMAL,
    _FROZENSET,
    _SET,
    _TIME,
    _TIMEDELTA,
    _TIMEZONE,
    _TUPLE,
    _UUID,
    _ZONEINFO,
)


def _int_to_bytes(number: int) -> tuple[bytes]:
    return (number.to_bytes(number.bit_length() // 8 + 1, "big", signed=True),)


def _build_int(fields: list[Any]) -> int:
    return int.from_bytes(_expect(*fields, bytes), "big", signed=True)


def _uuid_fields(value: uuid.UUID) -> tuple[bytes, int | None]:
    return (value.bytes, value.is_safe.value)


def _build_uuid(fields: list[Any]) -> uuid.UUID:
    raw, safe = fields
    return uuid.UUID(bytes=_expect(raw, bytes), is_safe=uuid.SafeUUID(safe))


def _storable_tz(owner: Any, tz: tzinfo | None) -> tzinfo | None:
    if tz is None or type(tz) is timezone or (type(tz) is zoneinfo.ZoneInfo and tz.key):
        return tz
    if _is_pytz(tz):
        if _pytz_key(tz) is None:
            raise _Unstorable(owner, _PYTZ_OFFSET_ALONE)
        return tz
    raise _Unstorable(
        owner,
        f"its time zone is a {_type_name(type(tz))}; only datetime.timezone, "
        "zoneinfo.ZoneInfo (created by key) and pytz time zones can be stored",
    )


def _expect_tz(tz: Any) -> tzinfo | None:
    if tz is not None and not isinstance(tz, tzinfo):
        raise ValueError(f"expected a time zone, found {type(tz).__name__}")
    return tz


def _datetime_fields(d: datetime) -> tuple[Any, ...]:
    wall = (d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond, d.fold)
    if _is_pytz(d.tzinfo) and _pytz_key(d.tzinfo) is None:
        return (*wall, *_pytz_local_fields(d))
    return (*wall, _storable_tz(d, d.tzinfo))


def _build_datetime(fields: list[Any]) -> datetime:
    if len(fields) == 12:
        *parts, fold, zone, offset, dst, name = fields
        return _in_pytz_zone(datetime(*parts, fold=fold), zone, offset, dst, name)
    *parts, fold, tz = fields
    return datetime(*parts, tzinfo=tz, fold=fold)


def _time_fields(t: time) -> tuple[Any, ...]:
    return (t.hour, t.minute, t.second, t.microsecond, t.fold, _storable_tz(t, t.tzinfo))


def _build_time(fields: list[Any]) -> time:
    *parts, fold, tz = fields
    return time(*parts, tzinfo=tz, fold=fold)


def _timedelta_fields(delta: timedelta) -> tuple[int, int, int]:
    return (delta.days, delta.seconds, delta.microseconds)


def _timezone_fields(tz: timezone) -> tuple[Any, ...]:
    # The pickle hook tells apart timezone(offset) from timezone(offset, name).
    return tz.__getinitargs__()  # type: ignore[attr-defined, no-any-return]


def _zoneinfo_fields(tz: zoneinfo.ZoneInfo) -> tuple[str]:
    if not tz.key:
        raise _Unstorable(tz, "a ZoneInfo without a key (from a file) cannot be stored")
    return (tz.key,)


def _build_zoneinfo(fields: list[Any]) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(_expect(*fields, str))


_STDLIB_CODECS: list[tuple[int, type, Callable[[Any], Any], Callable[[list[Any]], Any], bool]] = [
    (_TUPLE, tuple, lambda t: t, tuple, True),
    (_SET, set, lambda s: s, set, True),
    (_FROZENSET, frozenset, lambda s: s, frozenset, True),
    (_BYTEARRAY, bytearray, lambda b: (bytes(b),), lambda f: bytearray(_expect(*f, bytes)), False),
    (_BIGINT, int, _int_to_bytes, _build_int, False),
    (_DECIMAL, Decimal, lambda d: (str(d),), lambda f: Decimal(_expect(*f, str)), False),
    (_UUID, uuid.UUID, _uuid_fields, _build_uuid, False),
    (_DATETIME, datetime, _datetime_fields, _build_datetime, False),
    (_DATE, date, lambda d: (d.year, d.month, d.day), lambda f: date(*f), False),
    (_TIME, time, _time_fields, _build_time, False),
    (_TIMEDELTA, timedelta, _timedelta_fields, lambda f: timedelta(*f), False),
    (_TIMEZONE, timezone, _timezone_fields, lambda f: timezone(*f), False),
    (_ZONEINFO, zoneinfo.ZoneInfo, _zoneinfo_fields, _build_zoneinfo, False),
]  # fmt: skip
