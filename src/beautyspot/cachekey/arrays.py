"""Keys of numpy values: arrays by dtype, shape and data; scalars and dtypes. numpy is
recognised by module name and never imported here."""

from __future__ import annotations

import sys
from typing import Any

from beautyspot.cachekey.core import (
    Unkeyable,
    Walk,
    encode,
    encode_object,
    guard_cycles,
    payload,
    sequence,
)
from beautyspot.cachekey.describe import describe

__all__ = ["encode_ndarray", "encode_numpy"]


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
        return encode_object("numpy.scalar", _encode_dtype(value.dtype), payload(value.tobytes()))
    if isinstance(value, np.dtype):
        return encode_object("numpy.dtype", _encode_dtype(value))
    raise Unkeyable(describe(value))


def _encode_dtype(dtype: Any) -> bytes:
    # dtype.str names a plain dtype exactly ('<i8', '<M8[ns]', '<U5'); structured ones need descr.
    return encode(dtype.str if dtype.fields is None else dtype.descr, Walk())


@guard_cycles
def encode_ndarray(array: Any, walk: Walk) -> bytes:
    np = sys.modules["numpy"]
    head = _encode_dtype(array.dtype) + encode(array.shape, walk)
    if array.dtype.kind == "O":
        elements = array.ravel().tolist()
        try:
            body = sequence(elements, len(elements), walk)
        except Unkeyable as exc:
            exc.where.append(".flat")
            raise
        return encode_object("numpy.ndarray", head, body)
    if array.dtype.hasobject:
        raise Unkeyable("is a structured numpy array with object fields; pass input_key_fn=")
    # C-contiguous data is hashed in place; only a strided view pays for a contiguous copy.
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return encode_object("numpy.ndarray", head, payload(memoryview(data)))
