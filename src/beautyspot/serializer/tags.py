"""Type tags and the format version: the numbers written into stored data.

The package docstring of :mod:`beautyspot.serializer` lays out what each tag holds.
"""

from __future__ import annotations

#: First byte of every output; bump it when the layout changes.
FORMAT_VERSION = 1

_USER, _TUPLE, _SET, _FROZENSET, _BYTEARRAY, _BIGINT, _DECIMAL, _UUID = range(8)
_DATETIME, _DATE, _TIME, _TIMEDELTA, _TIMEZONE, _ZONEINFO, _PYTZ = range(8, 15)
_NDARRAY, _NUMPY_SCALAR = 32, 33
_PD_ARRAY, _PD_INDEX, _PD_RANGE_INDEX, _PD_MULTI_INDEX, _PD_SERIES, _PD_FRAME = range(48, 54)
_PD_SCALAR = 54
