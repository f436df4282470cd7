"""numpy arrays, scalars and dtypes; numpy is imported only when a value or stored data holds
numpy data."""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from beautyspot.errors import SerializationError
from beautyspot.serializer.codec import _Encoder, _expect, _Unstorable
from beautyspot.serializer.tags import _NDARRAY, _NUMPY_SCALAR


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise SerializationError("the stored value holds numpy data; install numpy") from exc
    return numpy


def _numpy_encoder(cls: type) -> _Encoder | None:
    np = _numpy()
    if cls is np.ndarray:
        return _Encoder(_NDARRAY, _ndarray_fields)
    if issubclass(cls, np.generic):
        return _Encoder(_NUMPY_SCALAR, _numpy_scalar_fields)
    return None


def _ndarray_fields(array: Any) -> tuple[Any, ...]:
    fortran = array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
    order = "F" if fortran else "C"
    return (_dtype_wire(array, array.dtype), list(array.shape), fortran, array.tobytes(order))


def _build_ndarray(fields: list[Any]) -> Any:
    np = _numpy()
    wire, shape, fortran, raw = fields
    dtype = _dtype_from_wire(np, wire)
    if (
        type(shape) is not list
        or len(shape) > 64
        or any(type(n) is not int or n < 0 for n in shape)
    ):
        raise ValueError(f"bad array shape {shape!r}")
    if math.prod(shape) * dtype.itemsize != len(_expect(raw, bytes)):
        raise ValueError("array data does not match its shape and dtype")
    return _array_from_bytes(np, raw, dtype, shape, "F" if _expect(fortran, bool) else "C")


def _array_from_bytes(np: Any, raw: bytes, dtype: Any, shape: Any, order: str) -> Any:
    # Byte for byte, so padding inside structured items comes back as it was written.
    array = np.empty(shape, dtype, order=order)
    array.ravel(order="K").view(np.uint8)[:] = np.frombuffer(raw, np.uint8)
    return array


def _numpy_scalar_fields(scalar: Any) -> tuple[Any, bytes]:
    return (_dtype_wire(scalar, scalar.dtype), scalar.tobytes())


def _build_numpy_scalar(fields: list[Any]) -> Any:
    np = _numpy()
    wire, raw = fields
    dtype = _dtype_from_wire(np, wire)
    if len(_expect(raw, bytes)) != dtype.itemsize:
        raise ValueError("scalar data does not match its dtype")
    return _array_from_bytes(np, raw, dtype, (), "C")[()]


_NUMPY_KINDS = frozenset("biufcmMSUV")


def _dtype_wire(owner: Any, dtype: Any) -> Any:
    try:
        # dtype equality ignores the type code ('q' == 'l') and alignment, so both are in the key.
        return _cached_dtype_wire(dtype, dtype.char, dtype.isalignedstruct)
    except ValueError as exc:
        raise _Unstorable(owner, str(exc)) from None


@functools.lru_cache(maxsize=512)
def _cached_dtype_wire(dtype: Any, char: str, aligned: bool) -> Any:
    if dtype.hasobject or dtype.kind not in _NUMPY_KINDS:
        raise ValueError(f"numpy dtype {dtype} holds Python objects or is not a built-in dtype")
    if dtype.metadata or dtype.itemsize == 0:
        raise ValueError(f"numpy dtype {dtype} has metadata or zero size, which is not stored")
    wire = _dtype_to_wire(dtype)
    back = _dtype_from_wire(_numpy(), wire)
    if back != dtype or back.type is not dtype.type or back.isalignedstruct != aligned:
        raise ValueError(f"numpy dtype {dtype!r} cannot be stored exactly")
    return wire


def _dtype_to_wire(dtype: Any) -> Any:
    if dtype.fields is not None:
        names = list(dtype.names)
        entries = [dtype.fields[name] for name in names]
        return {
            "names": names,
            "formats": [_dtype_to_wire(entry[0]) for entry in entries],
            "offsets": [entry[1] for entry in entries],
            "titles": [entry[2] if len(entry) > 2 else None for entry in entries],
            "itemsize": dtype.itemsize,
            "aligned": dtype.isalignedstruct,
        }
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return [_dtype_to_wire(base), list(shape)]
    # '<i8' names int64; a 'q' (longlong) dtype with the same layout needs its type code.
    return dtype.str if _numpy().dtype(dtype.str).type is dtype.type else dtype.str[0] + dtype.char


#: byte order, type character, item size, datetime unit: '<i8', '|b1', '<M8[ns]', '<U5', '<q'.
#: A unit's multiple is never 0: numpy accepts '<M8[0s]', but pandas 2 dies dividing by it.
_SIMPLE_DTYPE = re.compile(r"[<>|=][A-Za-z?][0-9]{0,6}(\[([1-9][0-9]{0,5})?[A-Za-z]{1,3}\])?")


def _dtype_from_wire(np: Any, wire: Any) -> Any:
    kind = type(wire)
    if kind is str:
        # Only the forms _dtype_to_wire writes: numpy parses other strings with a Python parser,
        # which hostile stored text should never reach.
        if not _SIMPLE_DTYPE.fullmatch(wire):
            raise ValueError(f"bad numpy dtype {wire[:40]!r}")
        dtype = np.dtype(wire)
    elif kind is list:
        base, shape = wire
        dtype = np.dtype((_dtype_from_wire(np, base), tuple(_expect(shape, list))))
    elif kind is dict:
        spec = {key: wire[key] for key in ("names", "offsets", "titles", "itemsize")}
        spec["formats"] = [_dtype_from_wire(np, item) for item in _expect(wire["formats"], list)]
        dtype = np.dtype(spec, align=_expect(wire["aligned"], bool))
    else:
        raise ValueError(f"bad numpy dtype {wire!r}")
    if dtype.hasobject or dtype.itemsize == 0:
        raise ValueError(f"numpy dtype {dtype} is not allowed in stored data")
    return dtype
