"""Keys of standard-library values: collections, datetime, decimal, uuid, pathlib, zones."""

from __future__ import annotations

import collections
import datetime as dt
import sys
import uuid
import zoneinfo
from decimal import Decimal
from pathlib import PosixPath, PurePosixPath, PureWindowsPath, WindowsPath
from typing import Any

from beautyspot.cachekey.core import (
    ENCODERS,
    Unkeyable,
    Walk,
    encode,
    encode_at,
    encode_bytes,
    encode_object,
    encode_str,
    guard_cycles,
    mapping,
    ordered_mapping,
    sequence,
)

__all__ = ["encode_pytz"]


@guard_cycles
def _encode_ordered_dict(value: collections.OrderedDict[Any, Any], walk: Walk) -> bytes:
    # Order is what an OrderedDict adds to a dict (its == compares it), so it is kept.
    return encode_object("collections.OrderedDict", ordered_mapping(value, walk))


@guard_cycles
def _encode_defaultdict(value: collections.defaultdict[Any, Any], walk: Walk) -> bytes:
    factory = encode_at(value.default_factory, ".default_factory", walk)
    return encode_object("collections.defaultdict", factory, mapping(value, walk))


@guard_cycles
def _encode_counter(value: collections.Counter[Any], walk: Walk) -> bytes:
    return encode_object("collections.Counter", mapping(value, walk))


@guard_cycles
def _encode_deque(value: collections.deque[Any], walk: Walk) -> bytes:
    maxlen = encode(value.maxlen, walk)
    return encode_object("collections.deque", maxlen, sequence(value, len(value), walk))


def _encode_datetime(value: dt.datetime, walk: Walk) -> bytes:
    fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
    return encode_object(
        "datetime.datetime",
        encode((*fields, value.microsecond, value.fold), walk),
        encode_at(value.tzinfo, ".tzinfo", walk),
    )


def _encode_date(value: dt.date, walk: Walk) -> bytes:
    return encode_object("datetime.date", encode((value.year, value.month, value.day), walk))


def _encode_time(value: dt.time, walk: Walk) -> bytes:
    fields = (value.hour, value.minute, value.second, value.microsecond, value.fold)
    return encode_object(
        "datetime.time", encode(fields, walk), encode_at(value.tzinfo, ".tzinfo", walk)
    )


def _encode_timedelta(value: dt.timedelta, walk: Walk) -> bytes:
    fields = (value.days, value.seconds, value.microseconds)
    return encode_object("datetime.timedelta", encode(fields, walk))


def _encode_timezone(value: dt.timezone, walk: Walk) -> bytes:
    offset = _encode_timedelta(value.utcoffset(None), walk)
    return encode_object("datetime.timezone", offset, encode_str(value.tzname(None)))


def _encode_zoneinfo(value: zoneinfo.ZoneInfo, walk: Walk) -> bytes:
    if value.key is None:
        raise Unkeyable("is a ZoneInfo read from a file, without a zone name to key on")
    return encode_object("zoneinfo.ZoneInfo", encode_str(value.key))


def _encode_decimal(value: Decimal, walk: Walk) -> bytes:
    return encode_object("decimal.Decimal", encode_str(str(value)))  # exact: keeps 1.0 != 1.00


def _encode_uuid(value: uuid.UUID, walk: Walk) -> bytes:
    return encode_object("uuid.UUID", encode_bytes(value.bytes))


def _encode_path(value: PurePosixPath | PureWindowsPath, walk: Walk) -> bytes:
    # By class name, not __module__: pathlib's classes moved to pathlib._local in 3.13.
    return encode_object(f"pathlib.{type(value).__name__}", encode_str(str(value)))


ENCODERS.update(
    {
        collections.OrderedDict: _encode_ordered_dict,
        collections.defaultdict: _encode_defaultdict,
        collections.Counter: _encode_counter,
        collections.deque: _encode_deque,
        dt.datetime: _encode_datetime,
        dt.date: _encode_date,
        dt.time: _encode_time,
        dt.timedelta: _encode_timedelta,
        dt.timezone: _encode_timezone,
        zoneinfo.ZoneInfo: _encode_zoneinfo,
        Decimal: _encode_decimal,
        uuid.UUID: _encode_uuid,
        PurePosixPath: _encode_path,
        PureWindowsPath: _encode_path,
        PosixPath: _encode_path,
        WindowsPath: _encode_path,
    }
)


def encode_pytz(value: Any, walk: Walk) -> bytes | None:
    """A pytz time zone by name, as a ZoneInfo is keyed by its key.

    pytz objects have no ``__eq__``, but pytz keeps one object per zone name, and one more per
    offset the zone ever used: a localized datetime carries the latter, which is keyed by its
    zone plus the offset, DST and abbreviation it stands for.
    """
    module = type(value).__module__
    if not (module == "pytz" or module.startswith("pytz.")) or not isinstance(value, dt.tzinfo):
        return None
    zone = getattr(value, "zone", None)
    if zone is not None and _is_pytz_zone(zone, value):
        return encode_object("pytz.zone", encode_str(zone))
    # pytz tells an instance's own offset only for a datetime that carries that instance.
    probe = dt.datetime(2000, 1, 1, tzinfo=value)
    if zone is None:  # pytz.FixedOffset(minutes)
        return encode_object("pytz.FixedOffset", encode(probe.utcoffset(), walk))
    fields = (zone, probe.utcoffset(), probe.dst(), probe.tzname())
    return encode_object("pytz.zone-offset", encode(fields, walk))


def _is_pytz_zone(zone: Any, value: dt.tzinfo) -> bool:
    """True if ``value`` is the object ``pytz.timezone(zone)`` returns."""
    try:
        return isinstance(zone, str) and sys.modules["pytz"].timezone(zone) is value
    except KeyError:  # pytz.UnknownTimeZoneError
        return False
