"""Keys of pandas values: frames, series and indexes by their values and dtypes. pandas is
recognised by module name and never imported here."""

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
)
from beautyspot.cachekey.describe import describe

__all__ = ["encode_pandas"]


def encode_pandas(value: Any, walk: Walk) -> bytes | None:
    cls = type(value)
    module = cls.__module__
    if not (module == "pandas" or module.startswith("pandas.")):
        return None
    pd = sys.modules["pandas"]
    if cls is pd.DataFrame:
        columns = [
            _values_at(value.iloc[:, position], f"[{brief(label)}]", walk)
            for position, label in enumerate(value.columns)
        ]
        return encode_object(
            "pandas.DataFrame",
            encode_at(value.columns, ".columns", walk),
            encode_at(value.index, ".index", walk),
            *columns,
        )
    if cls is pd.Series:
        return encode_object(
            "pandas.Series",
            encode_at(value.name, ".name", walk),
            encode_at(value.index, ".index", walk),
            _values_at(value, ".values", walk),
        )
    if isinstance(value, pd.Index):
        names = encode_at(tuple(value.names), ".names", walk)
        return encode_object("pandas.Index", names, _values_at(value, ".values", walk))
    if value is pd.NaT or value is pd.NA:
        return encode_object("pandas.NaT" if value is pd.NaT else "pandas.NA")
    if cls is pd.Timestamp:
        tz = encode_at(value.tzinfo, ".tzinfo", walk)
        return encode_object("pandas.Timestamp", encode(value.asm8, walk), tz)
    if cls is pd.Timedelta:
        return encode_object("pandas.Timedelta", encode(value.asm8, walk))
    raise Unkeyable(describe(value))


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
