"""Keys of pandas values: frames, series and indexes by their values and dtypes. pandas is
recognised by module name and never imported here.

Besides values, dtypes and labels, a key covers the state the serializer keeps: a Series' or
DataFrame's ``attrs`` and ``flags.allows_duplicate_labels``, the ``freq`` of a DatetimeIndex or
TimedeltaIndex, and a MultiIndex's levels (each an Index, with its dtype), codes, names and
sortorder.
"""

from __future__ import annotations

import sys
from typing import Any

from beautyspot.cachekey.arrays import encode_ndarray
from beautyspot.cachekey.core import (
    Unkeyable,
    Walk,
    brief,
    encode,
    encode_at,
    encode_bool,
    encode_object,
    encode_str,
    length,
)
from beautyspot.cachekey.describe import describe

__all__ = ["encode_pandas"]


def encode_pandas(value: Any, walk: Walk) -> bytes | None:
    cls = type(value)
    module = cls.__module__
    if not (module == "pandas" or module.startswith("pandas.")):
        return None
    np, pd = sys.modules["numpy"], sys.modules["pandas"]
    if cls is pd.DataFrame:
        columns = [
            _values_at(value.iloc[:, position], f"[{brief(label)}]", walk)
            for position, label in enumerate(value.columns)
        ]
        return encode_object(
            "pandas.DataFrame",
            encode_at(value.columns, ".columns", walk),
            encode_at(value.index, ".index", walk),
            _attrs_and_flags(value, walk),
            *columns,
        )
    if cls is pd.Series:
        return encode_object(
            "pandas.Series",
            encode_at(value.name, ".name", walk),
            encode_at(value.index, ".index", walk),
            _attrs_and_flags(value, walk),
            _values_at(value, ".values", walk),
        )
    if isinstance(value, pd.MultiIndex):
        # Not as tuples, which lose each level's dtype (categorical or str, int32 or int64).
        levels = [
            encode_at(level, f".levels[{number}]", walk)
            for number, level in enumerate(value.levels)
        ]
        codes = [encode_ndarray(np.asarray(code, dtype=np.int64), walk) for code in value.codes]
        return encode_object(
            "pandas.MultiIndex",
            encode_at(tuple(value.names), ".names", walk),
            encode_at(value.sortorder, ".sortorder", walk),
            length(len(levels)),
            *levels,
            *codes,
        )
    if isinstance(value, pd.Index):
        names = encode_at(tuple(value.names), ".names", walk)
        freq = value.freq if isinstance(value, (pd.DatetimeIndex, pd.TimedeltaIndex)) else None
        return encode_object(
            "pandas.Index",
            names,
            encode_at(freq, ".freq", walk),
            _values_at(value, ".values", walk),
        )
    if isinstance(value, pd.offsets.BaseOffset):
        return _encode_offset(value, walk)
    if value is pd.NaT or value is pd.NA:
        return encode_object("pandas.NaT" if value is pd.NaT else "pandas.NA")
    if cls is pd.Timestamp:
        tz = encode_at(value.tzinfo, ".tzinfo", walk)
        return encode_object("pandas.Timestamp", encode(value.asm8, walk), tz)
    if cls is pd.Timedelta:
        return encode_object("pandas.Timedelta", encode(value.asm8, walk))
    raise Unkeyable(describe(value))


def _attrs_and_flags(value: Any, walk: Walk) -> bytes:
    attrs = encode_at(value.attrs, ".attrs", walk)
    return attrs + encode_bool(value.flags.allows_duplicate_labels)


def _encode_offset(offset: Any, walk: Walk) -> bytes:
    """A DateOffset by its class and parameters (the custom business ones' calendar too).

    Not by freqstr: that of a CustomBusinessDay ('C') leaves out its holidays and weekmask.
    """
    cls = type(offset)
    return encode_object(
        "pandas.DateOffset",
        encode_str(f"{cls.__module__}.{cls.__qualname__}"),
        encode_at(offset.n, ".n", walk),
        encode_bool(offset.normalize),
        encode_at(offset.kwds, ".kwds", walk),
    )


def _values_at(obj: Any, segment: str, walk: Walk) -> bytes:
    """The values of a Series or Index, with their dtype, exactly."""
    np, pd = sys.modules["numpy"], sys.modules["pandas"]
    try:
        dtype = obj.dtype
        if isinstance(dtype, np.dtype):
            return encode_ndarray(obj.to_numpy(), walk)
        if isinstance(dtype, pd.DatetimeTZDtype):
            # The zone's own key, not the dtype's name: that is the same for a pytz zone, a
            # ZoneInfo and a fixed offset named like the zone, even when there are no values.
            zone = encode_at(dtype.tz, ".dtype.tz", walk)
            utc = encode_ndarray(obj.array.tz_convert(None).to_numpy(), walk)
            return encode_object("pandas.DatetimeTZ", zone, utc)
        if isinstance(dtype, pd.CategoricalDtype):
            codes = encode_ndarray(obj.array.codes, walk)
            order = encode_bool(dtype.ordered)
            return encode_object("pandas.Categorical", encode(dtype.categories, walk), order, codes)
        # Other extension dtypes (nullable ints, strings, ...) go element by element.
        elements = encode_ndarray(np.asarray(obj.array, dtype=object), walk)
        return encode_object("pandas.ExtensionArray", encode_str(str(dtype)), elements)
    except Unkeyable as exc:
        exc.where.append(segment)
        raise
