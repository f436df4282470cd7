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
    if array.dtype.itemsize == 0:
        raise _Unstorable(array, f"its items have zero size ({array.dtype}), which is not stored")
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
    dtype = scalar.dtype
    wire = _dtype_wire(scalar, dtype)
    # The value itself, trailing NULs included: tobytes() pads b"" to one byte, and an array
    # item drops trailing NULs, so neither gives str_ and bytes_ scalars back exactly.
    if dtype.kind == "U":
        return (wire, scalar.encode(_utf32(dtype.str), "surrogatepass"))
    if dtype.kind == "S":
        return (wire, bytes(scalar))
    return (wire, scalar.tobytes())


def _build_numpy_scalar(fields: list[Any]) -> Any:
    np = _numpy()
    wire, raw = fields
    # A scalar is one item whatever its size, so a zero-size dtype (np.str_("")) is safe here.
    dtype = _dtype_from_wire(np, wire, top_may_be_empty=True)
    if len(_expect(raw, bytes)) != dtype.itemsize or dtype.subdtype is not None:
        raise ValueError("scalar data does not match its dtype")
    if dtype.type is np.str_:
        return np.str_(raw.decode(_utf32(dtype.str), "surrogatepass"))
    if dtype.type is np.bytes_:
        return np.bytes_(raw)
    if dtype.itemsize == 0:
        return np.zeros((), dtype)[()]  # np.void(b"") or an empty struct: no bytes to copy
    return _array_from_bytes(np, raw, dtype, (), "C")[()]


def _utf32(dtype_str: str) -> str:
    return "utf-32-be" if dtype_str[0] == ">" else "utf-32-le"


_NUMPY_KINDS = frozenset("biufcmMSUV")


def _dtype_wire(owner: Any, dtype: Any) -> Any:
    # Checked outside the cache: dtypes equal but for metadata are one cache key.
    if _has_metadata(dtype):
        raise _Unstorable(
            owner, f"numpy dtype {dtype} carries metadata, which beautyspot never stores"
        )
    try:
        # dtype equality ignores the type code ('q' == 'l') and alignment, so both are in the key.
        return _cached_dtype_wire(dtype, dtype.char, dtype.isalignedstruct)
    except ValueError as exc:
        raise _Unstorable(owner, str(exc)) from None


@functools.lru_cache(maxsize=512)
def _cached_dtype_wire(dtype: Any, char: str, aligned: bool) -> Any:
    if dtype.hasobject or dtype.kind not in _NUMPY_KINDS:
        raise ValueError(f"numpy dtype {dtype} holds Python objects or is not a built-in dtype")
    wire = _dtype_to_wire(dtype)
    back = _dtype_from_wire(_numpy(), wire, top_may_be_empty=True)
    if back != dtype or back.type is not dtype.type or back.isalignedstruct != aligned:
        raise ValueError(f"numpy dtype {dtype!r} cannot be stored exactly")
    return wire


def _has_metadata(dtype: Any) -> bool:
    """True if ``dtype`` or a dtype inside it has metadata (even ``{}``, which is not None)."""
    if dtype.metadata is not None:
        return True
    if dtype.fields is not None:
        return any(_has_metadata(entry[0]) for entry in dtype.fields.values())
    return dtype.subdtype is not None and _has_metadata(dtype.subdtype[0])


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
#: Ten digits reach numpy's own item size limit (2**31 - 1 bytes), which refuses larger ones.
#: A unit's multiple is never 0: numpy accepts '<M8[0s]', but pandas 2 dies dividing by it.
_SIMPLE_DTYPE = re.compile(r"[<>|=][A-Za-z?][0-9]{0,10}(\[([1-9][0-9]{0,5})?[A-Za-z]{1,3}\])?")


def _dtype_from_wire(np: Any, wire: Any, top_may_be_empty: bool = False) -> Any:
    """The dtype ``wire`` names; only a scalar's own dtype may have zero size, since the stored
    bytes of anything else would not bound how many items it has."""
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
    if dtype.hasobject or (dtype.itemsize == 0 and not top_may_be_empty):
        raise ValueError(f"numpy dtype {dtype} is not allowed in stored data")
    return dtype
