"""Keys of numpy values: arrays by dtype, shape and data; scalars and dtypes. numpy is
recognised by module name and never imported here.

The data of an array is keyed by the bytes that make its values, and only those:

- Every NaN is one input, as for Python floats: before hashing, each NaN of a float or complex
  array (float16 to longdouble, either byte order, inside structured dtypes too) becomes the
  dtype's ``np.nan``. One ``min`` over the data (which propagates NaN) finds out whether there
  is any; an array without NaN is hashed in place, never copied. ``-0.0`` and ``0.0`` stay
  apart, as their bytes do, like Python floats' keys.
- Padding is never hashed: a longdouble in the x87 80-bit format gives its 10 value bytes, not
  the 16 it is stored in, and a structured array is keyed field by field (the bytes between
  fields, and after them, are not part of any value).
- Object arrays are keyed element by element, and so are ``StringDType`` arrays (whose buffers
  hold pointers, not text).
- A dtype is keyed exactly: its ``str`` (byte order, kind, size, unit), and for a structured one
  each field's name, title, offset and dtype plus the itemsize. A dtype of any other kind
  (a third-party dtype numpy cannot describe by ``str`` alone) is refused.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from beautyspot.cachekey.core import (
    INLINE_LIMIT,
    Unkeyable,
    Walk,
    encode,
    encode_object,
    guard_cycles,
    payload,
    payload_of_chunks,
    sequence,
)
from beautyspot.cachekey.describe import describe

__all__ = ["encode_ndarray", "encode_numpy"]

# The kinds whose values are exactly their bytes (once NaN and padding are dealt with).
_BYTE_KINDS = frozenset("biufcmMSUV")


def _is_numpy(cls: type) -> bool:
    module = cls.__module__
    return module == "numpy" or module.startswith("numpy.")


def encode_numpy(value: Any, walk: Walk) -> bytes | None:
    cls = type(value)
    if not _is_numpy(cls):
        return None
    np = sys.modules["numpy"]
    if cls is np.ndarray or cls is np.memmap:  # a memmap is keyed by its values, like an array
        return encode_ndarray(value, walk)
    if isinstance(value, np.generic):  # np.int64(1) != 1: the dtype travels with the bytes
        dtype = value.dtype
        kind = dtype.kind
        if kind in "biumMSU" or (kind in "fc" and value == value and _part_size(dtype) <= 8):
            data = payload(value.tobytes())  # all value, no NaN, no padding: as _data gives
        else:  # as a 0-d array, so NaN and padding are dealt with as an array's are
            data = _data(np.asarray(value), walk)
        return encode_object("numpy.scalar", _encode_dtype(dtype, walk), data)
    if isinstance(value, np.dtype):
        return encode_object("numpy.dtype", _encode_dtype(value, walk))
    if cls is np.busdaycalendar:  # what a pandas CustomBusinessDay offset counts days by
        weekmask, holidays = (
            encode_ndarray(value.weekmask, walk),
            encode_ndarray(value.holidays, walk),
        )
        return encode_object("numpy.busdaycalendar", weekmask, holidays)
    raise Unkeyable(describe(value))


@guard_cycles
def encode_ndarray(array: Any, walk: Walk) -> bytes:
    head = _encode_dtype(array.dtype, walk) + encode(array.shape, walk)
    return encode_object("numpy.ndarray", head, _data(array, walk))


# dtypes ----------------------------------------------------------------------------------------


# Encodings of plain dtypes, which depend on nothing but what the cache is keyed by.
_PLAIN_DTYPES: dict[tuple[type, type, str], bytes] = {}


def _encode_dtype(dtype: Any, walk: Walk) -> bytes:
    plain = (
        dtype.fields is None
        and dtype.subdtype is None
        and dtype.kind != "T"
        and dtype.metadata is None
    )
    if plain:
        cache_key = (type(dtype), dtype.type, dtype.str)
        encoded = _PLAIN_DTYPES.get(cache_key)
        if encoded is None:
            encoded = encode(_dtype_fields(dtype), Walk())
            if len(_PLAIN_DTYPES) < 4096:  # '<U1', '<U2', ...: there is no end to them
                _PLAIN_DTYPES[cache_key] = encoded
        return encoded
    return encode(_dtype_fields(dtype), walk)


def _dtype_fields(dtype: Any) -> Any:
    """Everything that makes a dtype what it is, as builtins (a str for the plain dtypes)."""
    fields = _layout(dtype)
    if dtype.metadata is not None:  # numpy's == ignores it, but code can read it
        return ("metadata", dict(dtype.metadata), fields)
    return fields


def _layout(dtype: Any) -> Any:
    np = sys.modules["numpy"]
    if dtype.fields is not None:
        # Not dtype.descr: numpy cannot give it for overlapping or out-of-order fields.
        fields = []
        for name in dtype.names:
            field = dtype.fields[name]
            title = field[2] if len(field) > 2 else None
            fields.append((name, title, field[1], _dtype_fields(field[0])))
        return ("struct", dtype.itemsize, tuple(fields))
    if dtype.subdtype is not None:  # a field holding an array, e.g. ('pos', '<f8', (3,))
        base, shape = dtype.subdtype
        return ("subarray", _dtype_fields(base), shape)
    if isinstance(dtype, _string_dtype()):
        # na_object is absent, or any object (None, nan, pd.NA, a str): keyed as a value.
        missing = (True, dtype.na_object) if hasattr(dtype, "na_object") else (False, None)
        return ("StringDType", bool(dtype.coerce), missing)
    scalar = dtype.type
    if scalar is np.object_:
        return dtype.str  # '|O': the elements are keyed one by one
    if dtype.kind not in _BYTE_KINDS or scalar.__module__ != "numpy":
        # A legacy user dtype (bfloat16, rational, ...) is bytes whose str is only '<V2' or
        # the like: its scalar type names it. Of any other, the bytes may not be the values.
        if dtype.kind not in _BYTE_KINDS or dtype.isbuiltin != 2 or dtype.hasobject:
            raise Unkeyable(
                f"is a numpy array or value of dtype {dtype!r} ({type(dtype).__qualname__}), "
                "whose values beautyspot cannot read exactly; pass input_key_fn="
            )
        return ("user", f"{scalar.__module__}.{scalar.__qualname__}", dtype.str)
    if dtype.kind in "fc" and _part_size(dtype) > 8:
        # '<f16' is the x87 format on x86-64 but IEEE quad on aarch64: name the format too.
        info = np.finfo(np.longdouble)
        return ("longdouble", dtype.str, int(info.nmant), int(info.nexp))
    return dtype.str


def _part_size(dtype: Any) -> int:
    """The size of one float: of the whole item, or of each half of a complex one."""
    return dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize


@functools.cache
def _string_dtype() -> Any:
    """numpy's StringDType class (numpy 2), or an empty tuple for isinstance where it is absent."""
    dtypes = getattr(sys.modules["numpy"], "dtypes", None)
    return getattr(dtypes, "StringDType", ())


@functools.cache
def _longdouble_value_bytes() -> int | None:
    """How many bytes of a longdouble hold its value, if fewer than it occupies (x87: 10)."""
    np = sys.modules["numpy"]
    info = np.finfo(np.longdouble)
    if int(info.nmant) == 63 and int(info.nexp) == 15:  # sign, 15-bit exponent, 64-bit mantissa
        return 10 if np.dtype(np.longdouble).itemsize > 10 else None
    return None  # a double, IEEE quad or double-double: no padding


# Data ------------------------------------------------------------------------------------------


def _data(array: Any, walk: Walk) -> bytes:
    """The self-delimiting encoding of an array's values (its dtype and shape aside)."""
    np = sys.modules["numpy"]
    dtype = array.dtype
    if dtype.fields is not None:
        # Field by field, each a (strided) view of its own dtype: padding bytes belong to none.
        parts = []
        for name in dtype.names:
            try:
                parts.append(_data(array[name], walk))
            except Unkeyable as exc:
                exc.where.append(f"[{name!r}]")
                raise
        return b"".join(parts)
    kind = dtype.kind
    if kind == "O" or kind == "T":
        # Objects, and StringDType (its buffer holds pointers): element by element. A missing
        # StringDType element comes out as the dtype's na_object, which the dtype's key names.
        elements = array.ravel().tolist()
        try:
            return sequence(elements, len(elements), walk)
        except Unkeyable as exc:
            exc.where.append(".flat")
            raise
    # C-contiguous data is hashed in place; only a strided view pays for a contiguous copy.
    flat = np.ascontiguousarray(array).reshape(-1)
    if kind in "fc" and _is_numpy(dtype.type):  # not a user dtype that only says it is a float
        return _float_data(flat)
    return payload(memoryview(flat.view(np.uint8)))


def _float_data(flat: Any) -> bytes:
    np = sys.modules["numpy"]
    # A complex array is its floats, real and imaginary parts in turn.
    floats = flat.view(flat.real.dtype) if flat.dtype.kind == "c" else flat
    if _has_nan(floats):
        floats = floats.copy()
        floats[np.isnan(floats)] = np.nan  # one NaN: sign and payload dropped
    used = _longdouble_value_bytes() if floats.dtype.itemsize > 8 else None
    if used is None:
        return payload(memoryview(floats.view(np.uint8)))
    itemsize = floats.dtype.itemsize
    rows = floats.view(np.uint8).reshape(-1, itemsize)
    little = floats.dtype.byteorder == "<" or (
        floats.dtype.byteorder == "=" and sys.byteorder == "little"
    )
    value_bytes = rows[:, :used] if little else rows[:, itemsize - used :]
    return _payload_of_rows(value_bytes)


def _has_nan(floats: Any) -> bool:
    np = sys.modules["numpy"]
    if floats.size <= 16:  # cheaper in Python than through a ufunc
        return any(item != item for item in floats.tolist())
    return bool(np.isnan(np.minimum.reduce(floats)))  # NaN propagates: one pass, no copy


def _payload_of_rows(rows: Any) -> bytes:
    """payload() of the rows' bytes in order, without gathering them all in one copy."""
    np = sys.modules["numpy"]
    size = rows.size
    if size <= INLINE_LIMIT:
        return payload(np.ascontiguousarray(rows).tobytes())
    step = max(1, (1 << 20) // rows.shape[1])
    chunks = (
        memoryview(np.ascontiguousarray(rows[start : start + step])).cast("B")
        for start in range(0, rows.shape[0], step)
    )
    return payload_of_chunks(size, chunks)
