"""pandas arrays, indexes, Series, DataFrames and scalars; pandas is imported only when a value
or stored data holds pandas data."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from beautyspot.errors import SerializationError
from beautyspot.serializer.arrays import _numpy
from beautyspot.serializer.codec import _Encoder, _expect, _Unstorable
from beautyspot.serializer.messages import _short_repr
from beautyspot.serializer.pytz_zones import _PYTZ_OFFSET_MISMATCH, _is_pytz, _pytz_zone_of
from beautyspot.serializer.stdlib import _expect_tz, _storable_tz
from beautyspot.serializer.tags import (
    _PD_ARRAY,
    _PD_FRAME,
    _PD_INDEX,
    _PD_MULTI_INDEX,
    _PD_RANGE_INDEX,
    _PD_SCALAR,
    _PD_SERIES,
)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise SerializationError("the stored value holds pandas data; install pandas") from exc
    return pandas


def _pandas_encoder(cls: type) -> _Encoder | None:
    pd = _pandas()
    if cls in (pd.Index, pd.DatetimeIndex, pd.TimedeltaIndex, pd.CategoricalIndex):
        return _Encoder(_PD_INDEX, _index_fields, holds_values=True)
    if cls is pd.RangeIndex:
        return _Encoder(_PD_RANGE_INDEX, _range_index_fields, holds_values=True)
    if cls is pd.MultiIndex:
        return _Encoder(_PD_MULTI_INDEX, _multi_index_fields, holds_values=True)
    if cls is pd.Series:
        return _Encoder(_PD_SERIES, _series_fields, holds_values=True)
    if cls is pd.DataFrame:
        return _Encoder(_PD_FRAME, _frame_fields, holds_values=True)
    if issubclass(cls, pd.api.extensions.ExtensionArray):
        return _Encoder(_PD_ARRAY, _pandas_array_fields, holds_values=True)
    if cls in (pd.Timestamp, pd.Timedelta, type(pd.NA), type(pd.NaT)):
        return _Encoder(_PD_SCALAR, _pandas_scalar_fields)
    return None


def _pandas_scalar_fields(value: Any) -> tuple[Any, ...]:
    pd = _pandas()
    if value is pd.NA or value is pd.NaT:
        return ("NA" if value is pd.NA else "NaT",)
    if type(value) is pd.Timedelta:
        return ("Timedelta", value.asm8)
    fields = ("Timestamp", value.asm8, _timestamp_zone(value))  # asm8 is in UTC, if aware
    if not value.fold:
        return fields  # the only form written before fold was kept
    # An aware stamp's fold need not follow from its instant (replace(fold=1) off a transition).
    try:
        back = _timestamp_from(pd, *fields[1:], 1)
    except (ValueError, TypeError):
        back = None
    if back is None or (back.value, back.unit, back.fold) != (value.value, value.unit, 1):
        raise _Unstorable(value, "its fold=1 cannot be rebuilt exactly in its time zone")
    return (*fields, 1)


def _timestamp_zone(stamp: Any) -> tzinfo | None:
    tz = stamp.tz
    if not _is_pytz(tz):
        return _storable_tz(stamp, tz)
    # pandas gives a stamp the object of the offset in force, and converting to the zone picks
    # it again, unless the stamp was made from a datetime that carried another offset's object.
    zone = _pytz_zone_of(stamp, tz)
    if stamp.tz_convert(zone).tzinfo is not tz:
        raise _Unstorable(stamp, _PYTZ_OFFSET_MISMATCH)
    return _storable_tz(stamp, zone)


def _build_pandas_scalar(fields: list[Any]) -> Any:
    pd, np = _pandas(), _numpy()
    kind, *rest = fields
    if kind == "NA" or kind == "NaT":
        return pd.NA if kind == "NA" else pd.NaT
    if kind == "Timedelta":
        return pd.Timedelta(_expect(*rest, np.timedelta64))
    value, tz, *fold = rest
    if fold not in ([], [1]):
        raise ValueError(f"bad Timestamp fold {fold!r}")
    return _timestamp_from(pd, _expect(value, np.datetime64), _expect_tz(tz), 1 if fold else 0)


def _timestamp_from(pd: Any, value: Any, tz: tzinfo | None, fold: int) -> Any:
    stamp = pd.Timestamp(value)
    if tz is not None:
        stamp = stamp.tz_localize("UTC").tz_convert(tz)
    if stamp.fold == fold:
        return stamp
    # Only the fold changes: replace() keeps the unit, and the instant unless the wall time is
    # ambiguous, which the conversion already resolved to the stored instant's fold.
    refolded = stamp.replace(fold=fold)
    if refolded.value != stamp.value:
        raise ValueError("the stored fold does not fit the stored instant")
    return refolded


_MASKED_DTYPES = frozenset(
    {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}
    | {"Float32", "Float64", "boolean"}
)


def _array_kind(pd: Any, array: Any) -> str | None:
    """Which of the stored layouts fits a pandas array, or None if none does exactly."""
    dtype = array.dtype
    if type(array) is pd.arrays.NumpyExtensionArray:  # StringArray subclasses it
        return "object" if dtype.numpy_dtype.kind == "O" else "numpy"
    if isinstance(array, pd.arrays.DatetimeArray):
        return "datetime"
    if isinstance(array, pd.arrays.TimedeltaArray):
        return "timedelta"
    if isinstance(array, pd.Categorical):
        return "categorical"
    if dtype.name in _MASKED_DTYPES and type(array) is dtype.construct_array_type():
        return "masked"
    if isinstance(dtype, pd.StringDtype) and type(array) is dtype.construct_array_type():
        return "string"
    return None


def _storable_array(owner: Any, array: Any, what: str) -> Any:
    kind = _array_kind(_pandas(), array)
    if kind is None:
        raise _Unstorable(owner, f"{what} has dtype {array.dtype}, which cannot be stored exactly")
    if kind == "datetime":
        _storable_tz(owner, array.tz)
    return array


def _pandas_array_fields(array: Any) -> tuple[Any, ...]:
    pd = _pandas()
    kind = _array_kind(pd, array)
    if kind == "numpy" or kind == "timedelta":
        return (kind, array.to_numpy())
    if kind == "object":
        return (kind, array.to_numpy().tolist())
    if kind == "datetime":
        tz = _storable_tz(array, array.tz)
        return (kind, array.tz_convert(None).to_numpy() if tz else array.to_numpy(), tz)
    if kind == "categorical":
        return (kind, array.categories, array.codes, array.ordered)
    if kind == "masked":
        numpy_dtype = array.dtype.numpy_dtype
        values = array.to_numpy(numpy_dtype, na_value=numpy_dtype.type(0))
        return (kind, array.dtype.name, values, array.isna())
    if kind == "string":
        nan_missing = array.dtype.na_value is not pd.NA
        items = array.to_numpy(object, na_value=None).tolist()
        return (kind, array.dtype.storage, nan_missing, items)
    raise _Unstorable(array, f"pandas arrays of dtype {array.dtype} cannot be stored exactly")


def _build_pandas_array(fields: list[Any]) -> Any:
    pd, np = _pandas(), _numpy()
    kind, *rest = fields
    if kind == "numpy":
        return pd.arrays.NumpyExtensionArray(_expect(*rest, np.ndarray))
    if kind == "object":
        return pd.arrays.NumpyExtensionArray(_object_array(np, *rest))
    if kind == "timedelta":
        return pd.array(_expect(*rest, np.ndarray))
    if kind == "datetime":
        values, tz = rest
        array = pd.array(_expect(values, np.ndarray))
        return array.tz_localize("UTC").tz_convert(tz) if _expect_tz(tz) else array
    if kind == "categorical":
        categories, codes, ordered = rest
        dtype = pd.CategoricalDtype(_expect_index(pd, categories), ordered=_expect(ordered, bool))
        return pd.Categorical.from_codes(_expect(codes, np.ndarray), dtype=dtype)
    if kind == "masked":
        name, values, mask = rest
        if name not in _MASKED_DTYPES:
            raise ValueError(f"bad masked dtype {name!r}")
        array_type = pd.api.types.pandas_dtype(name).construct_array_type()
        return array_type(_expect(values, np.ndarray), _expect(mask, np.ndarray))
    if kind == "string":
        storage, nan_missing, items = rest
        dtype = pd.StringDtype(storage, na_value=np.nan if nan_missing else pd.NA)
        return pd.array(_expect(items, list), dtype=dtype)
    raise ValueError(f"bad pandas array kind {kind!r}")


def _object_array(np: Any, items: Any) -> Any:
    # fromiter keeps each item whole; np.array would unpack tuples into a second dimension.
    return np.fromiter(_expect(items, list), dtype=object, count=len(items))


def _expect_index(pd: Any, value: Any) -> Any:
    if not isinstance(value, pd.Index):
        raise ValueError(f"expected a pandas Index, found {type(value).__name__}")
    return value


def _column_data(pd: Any, array: Any) -> tuple[Any, Any]:
    """Data and dtype to build a Series or Index from, so pandas infers nothing."""
    if type(array) is pd.arrays.NumpyExtensionArray:
        values = array.to_numpy()
        return values, values.dtype
    if not isinstance(array, pd.api.extensions.ExtensionArray):
        raise ValueError(f"expected a pandas array, found {type(array).__name__}")
    return array, array.dtype


def _index_fields(index: Any) -> tuple[Any, ...]:
    freq = getattr(index, "freq", None)
    if freq is not None and _pandas().tseries.frequencies.to_offset(freq.freqstr) != freq:
        raise _Unstorable(index, f"its freq {freq!r} cannot be stored exactly")
    array = _storable_array(index, index.array, "the index")
    return (array, index.name, None if freq is None else freq.freqstr)


def _build_index(fields: list[Any]) -> Any:
    pd = _pandas()
    array, name, freq = fields
    data, dtype = _column_data(pd, array)
    index = pd.Index(data, dtype=dtype, name=name, copy=False)
    return index if freq is None else type(index)(index, freq=_expect(freq, str), name=name)


def _range_index_fields(index: Any) -> tuple[Any, ...]:
    return (index.start, index.stop, index.step, index.name)


def _build_range_index(fields: list[Any]) -> Any:
    start, stop, step, name = fields
    return _pandas().RangeIndex(
        _expect(start, int), _expect(stop, int), _expect(step, int), name=name
    )


def _multi_index_fields(index: Any) -> tuple[Any, ...]:
    return (list(index.levels), list(index.codes), list(index.names), index.sortorder)


def _build_multi_index(fields: list[Any]) -> Any:
    levels, codes, names, sortorder = fields
    return _pandas().MultiIndex(levels=levels, codes=codes, names=names, sortorder=sortorder)


def _series_fields(series: Any) -> tuple[Any, ...]:
    array = _storable_array(series, series.array, "the series")
    flags = series.flags.allows_duplicate_labels
    return (array, series.index, series.name, series.attrs, flags)


def _build_series(fields: list[Any]) -> Any:
    pd = _pandas()
    array, index, name, attrs, allows_duplicates = fields
    data, dtype = _column_data(pd, array)
    series = pd.Series(data, index=_expect_index(pd, index), name=name, dtype=dtype, copy=False)
    return _with_attrs_and_flags(series, attrs, allows_duplicates)


def _frame_fields(frame: Any) -> tuple[Any, ...]:
    arrays = [
        _storable_array(frame, column.array, f"column {_short_repr(label)}")
        for label, column in frame.items()
    ]
    flags = frame.flags.allows_duplicate_labels
    return (arrays, frame.index, frame.columns, frame.attrs, flags)


def _build_frame(fields: list[Any]) -> Any:
    pd = _pandas()
    arrays, index, columns, attrs, allows_duplicates = fields
    # Build on a plain 0..n-1 index so nothing aligns, then put the real axes in place.
    positions = pd.RangeIndex(len(_expect_index(pd, index)))
    series = {}
    for i, array in enumerate(_expect(arrays, list)):
        data, dtype = _column_data(pd, array)
        series[i] = pd.Series(data, index=positions, dtype=dtype, copy=False)
    frame = pd.DataFrame(series, index=positions, copy=False)
    frame.index = index
    frame.columns = _expect_index(pd, columns)
    return _with_attrs_and_flags(frame, attrs, allows_duplicates)


def _with_attrs_and_flags(obj: Any, attrs: Any, allows_duplicates: Any) -> Any:
    obj.attrs = _expect(attrs, dict)
    obj.flags.allows_duplicate_labels = _expect(allows_duplicates, bool)
    return obj
