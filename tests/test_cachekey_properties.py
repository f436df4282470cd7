"""Property tests of ``canonical_bytes``: the same value has one encoding, however it was built,
and values that are not the same never share one.

"The same" is defined here once, by :func:`same`, type-aware all the way down: ``1``, ``1.0``,
``True`` and ``np.int64(1)`` differ by type; floats are the same when their bits are, or when both
are NaN (``-0.0`` is not ``0.0``, as in the keys of Python floats); arrays when their dtypes,
shapes and values are (padding bytes and NaN bits are not values); sets and dicts are multisets of
such elements and items. pandas objects are the same when their labels, names, dtypes, values,
``attrs`` and flags are (a RangeIndex and an Index of the same integers are the same).
"""

from __future__ import annotations

import math
import random
import struct
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beautyspot.cachekey import canonical_bytes

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
from hypothesis.extra import numpy as hnp  # noqa: E402  (needs numpy, checked just above)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def key(value: Any) -> bytes:
    return canonical_bytes(value)


# -- what "the same value" means --------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.Index) and isinstance(b, pd.Index):
        return _same_index(a, b)  # RangeIndex(3) and Index([0, 1, 2]) are one value
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return _same_array(a, b)
    if isinstance(a, np.generic):
        return _same_array(np.asarray(a), np.asarray(b))
    if isinstance(a, pd.Series):
        return _same_series(a, b)
    if isinstance(a, pd.DataFrame):
        return _same_frame(a, b)
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, (set, frozenset)):
        return _same_multiset(list(a), list(b), same)
    if isinstance(a, dict):
        return _same_multiset(
            list(a.items()), list(b.items()), lambda x, y: same(x[0], y[0]) and same(x[1], y[1])
        )
    return bool(a == b)


def _same_multiset(a: list[Any], b: list[Any], equal: Callable[[Any, Any], bool]) -> bool:
    # `equal` is an equivalence, so matching greedily finds a pairing if there is one.
    if len(a) != len(b):
        return False
    unused = list(b)
    for item in a:
        match = next((index for index, other in enumerate(unused) if equal(item, other)), None)
        if match is None:
            return False
        del unused[match]
    return True


def _same_array(a: Any, b: Any) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    dtype = a.dtype
    if dtype.names is not None:
        return all(_same_array(a[name], b[name]) for name in dtype.names)
    if dtype.kind in "OT":
        return same(a.ravel().tolist(), b.ravel().tolist())
    if dtype.kind == "c":
        return _same_array(a.real, b.real) and _same_array(a.imag, b.imag)
    if dtype.kind == "f":
        both_nan = np.isnan(a) & np.isnan(b)
        return bool(np.all(both_nan | ((a == b) & (np.signbit(a) == np.signbit(b)))))
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _same_index(a: Any, b: Any) -> bool:
    return (
        a.dtype == b.dtype
        and same(list(a.names), list(b.names))
        and _same_values(a, b)
        and getattr(a, "freq", None) == getattr(b, "freq", None)
    )


def _same_values(a: Any, b: Any) -> bool:
    return a.dtype == b.dtype and _same_array(a.to_numpy(), b.to_numpy())


def _same_state(a: Any, b: Any) -> bool:
    return (
        same(a.attrs, b.attrs)
        and a.flags.allows_duplicate_labels == b.flags.allows_duplicate_labels
        and _same_index(a.index, b.index)
    )


def _same_series(a: Any, b: Any) -> bool:
    return same(a.name, b.name) and _same_state(a, b) and _same_values(a, b)


def _same_frame(a: Any, b: Any) -> bool:
    return (
        _same_index(a.columns, b.columns)
        and _same_state(a, b)
        and all(_same_values(a.iloc[:, i], b.iloc[:, i]) for i in range(a.shape[1]))
    )


def test_same_is_type_aware_and_nan_aware() -> None:
    assert not same(1, 1.0) and not same(1, True) and not same(1.0, np.float64(1.0))
    assert same(float("nan"), -float("nan")) and not same(0.0, -0.0)
    assert same({float("nan"), 1}, {1, float("nan")}) and not same({1}, {True})
    assert not same({1.0: "a", float("nan"): 1}, {1.0: "a", -0.0: 1})
    assert same(np.array([np.nan, 1.0]), -np.array([np.nan, -1.0]))
    assert not same(np.array([0.0]), np.array([-0.0])) and not same(np.arange(2), [0, 1])
    assert same(pd.Series([1]), pd.Series([1], index=pd.Index([0])))


# -- values -----------------------------------------------------------------------------------

_NAN_BITS = [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0xFFFFFFFFFFFFFFFF]
NANS = st.sampled_from([struct.unpack(">d", struct.pack(">Q", bits))[0] for bits in _NAN_BITS])
FLOATS = st.floats() | NANS | st.sampled_from([0.0, -0.0, 1.0, math.inf])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3) | st.integers(-(2**80), 2**80),
    FLOATS,
    st.text(max_size=4),
    st.binary(max_size=4),
    st.builds(bytes, st.just(1500)),  # past the inline limit: enters as a digest
)

ALIGNED = np.dtype([("flag", "?"), ("x", "<f8"), ("pair", "<i2", (2,))], align=True)
PACKED = np.dtype([("n", "<i4"), ("z", "<c8")])
StringDType = getattr(getattr(np, "dtypes", None), "StringDType", None)
_INTEGERS = ["?", "i1", "<i8", ">i4", "<u2"]
_FLOATS = ["<f2", "<f4", "<f8", ">f8", "g", "<c8", "<c16", "G"]
_OTHERS = ["<M8[s]", "<m8[ms]", "S3", "<U2"]
DTYPES = [np.dtype(name) for name in _INTEGERS + _FLOATS + _OTHERS] + [ALIGNED, PACKED]
if StringDType is not None:
    DTYPES += [StringDType(), StringDType(na_object=np.nan)]
SHAPES = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)


@st.composite
def arrays(draw: Any, dtypes: list[Any] = DTYPES) -> Any:
    dtype = draw(st.sampled_from(dtypes))
    if dtype.kind == "T" and hasattr(dtype, "na_object"):
        items = draw(st.lists(st.text(max_size=3) | st.just(np.nan), max_size=4))
        return np.array(items, dtype=dtype)
    return draw(hnp.arrays(dtype, draw(SHAPES)))


@st.composite
def object_arrays(draw: Any) -> Any:
    items = draw(st.lists(SCALARS, max_size=4))
    array = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        array[index] = item
    return array


NUMPY_SCALARS = arrays([d for d in DTYPES if d.kind != "T"]).map(
    lambda array: array.reshape(-1)[0] if array.size else np.asarray(0, array.dtype)[()]
)

PANDAS_DTYPES = [np.dtype(name) for name in ["<i8", "<i4", "<f8", "<f4", "?", "<M8[ns]"]]
NAMES = st.none() | st.text(max_size=2) | st.integers(0, 2)


@st.composite
def columns(draw: Any, size: int) -> Any:
    """Values of one pandas column: a numpy dtype pandas keeps, or strings in objects."""
    if draw(st.booleans()):
        items = draw(st.lists(st.text(max_size=2) | st.none(), min_size=size, max_size=size))
        array = np.empty(size, dtype=object)
        array[:] = items
        return array
    return draw(hnp.arrays(draw(st.sampled_from(PANDAS_DTYPES)), size))


@st.composite
def indexes(draw: Any, size: int) -> Any:
    if draw(st.booleans()):
        return pd.RangeIndex(size, name=draw(NAMES))
    return pd.Index(draw(columns(size)), name=draw(NAMES))


@st.composite
def series(draw: Any) -> Any:
    size = draw(st.integers(0, 4))
    result = pd.Series(draw(columns(size)), index=draw(indexes(size)), name=draw(NAMES))
    if draw(st.booleans()):
        result.attrs["unit"] = draw(st.text(max_size=2))
    return result


@st.composite
def frames(draw: Any) -> Any:
    size = draw(st.integers(0, 3))
    labels = draw(st.lists(st.text(max_size=2), unique=True, max_size=3))
    data = {label: draw(columns(size)) for label in labels}
    return pd.DataFrame(data, index=draw(indexes(size)) if size or not labels else None)


HASHABLE = st.recursive(
    SCALARS | NUMPY_SCALARS.filter(lambda value: value.dtype.names is None),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=4,
)
LEAVES = st.one_of(
    SCALARS,
    arrays(),
    object_arrays(),
    NUMPY_SCALARS,
    series(),
    frames(),
    st.integers(0, 4).flatmap(indexes),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(HASHABLE, inner, max_size=3)
        | st.sets(HASHABLE, max_size=3)
        | st.frozensets(HASHABLE, max_size=3)
    ),
    max_leaves=5,
)


# -- (a) unequal values, unequal encodings ----------------------------------------------------


@SETTINGS
@given(VALUES, VALUES)
def test_two_values_share_an_encoding_exactly_when_they_are_the_same(a: Any, b: Any) -> None:
    assert (key(a) == key(b)) == same(a, b)


def _flip_a_bit(draw: Any, array: Any) -> Any:
    """A copy of ``array`` with one bit of its memory flipped (padding bytes included)."""
    copy = np.array(array, order="C", copy=True)
    raw = copy.reshape(-1).view(np.uint8)
    position = draw(st.integers(0, raw.size - 1))
    if copy.dtype.kind == "U":  # stay below U+10000: numpy has no str for U+110000 and up
        position -= position % 4 - (position % 2 if copy.dtype.byteorder != ">" else 3)
    raw[position] ^= 1 << draw(st.integers(0, 7))
    return copy


def _array_mutants(draw: Any, array: Any) -> list[Callable[[], Any]]:
    options: list[Callable[[], Any]] = [
        lambda: array.tolist(),
        lambda: array.reshape(-1) if array.ndim != 1 else array.reshape(1, -1),
        lambda: array.reshape(*array.shape, 1),
        lambda: draw(arrays()),
    ]
    if array.dtype.kind not in "OT" and array.size:
        options += [
            lambda: _flip_a_bit(draw, array),
            lambda: array.view(f"V{array.dtype.itemsize}"),
            lambda: _cast(array, draw(st.sampled_from(DTYPES[:5]))),
        ]
    if array.dtype.kind in "OT" and array.size:
        options.append(lambda: _replaced(draw, array))
    if array.ndim == 0:
        options.append(lambda: array[()])
    return options


def _without_duplicate_labels(value: Any) -> Any:
    labels = [value.index] if isinstance(value, pd.Series) else [value.index, value.columns]
    if not all(axis.is_unique for axis in labels):
        return value.reset_index(drop=True)  # pandas refuses the flag; change the index instead
    return value.set_flags(allows_duplicate_labels=False)


def _changed_column(draw: Any, array: Any) -> Any:
    """``array`` with one element or bit changed (or as it is, if it is empty)."""
    if not array.size:
        return array.copy()
    return _replaced(draw, array) if array.dtype.hasobject else _flip_a_bit(draw, array)


def _cast(array: Any, dtype: Any) -> Any:
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # complex to real, and the like: a change is the aim
            return array.astype(dtype)
    except (TypeError, ValueError, OverflowError):  # no cast from a structured dtype, ...
        return array.tolist()


def _replaced(draw: Any, array: Any) -> Any:
    copy = array.copy()
    flat = copy.reshape(-1)
    item = draw(st.text(max_size=3)) if array.dtype.kind == "T" else draw(SCALARS)
    flat[draw(st.integers(0, flat.size - 1))] = item
    return copy


def _pandas_mutants(draw: Any, value: Any) -> list[Callable[[], Any]]:
    def with_attrs() -> Any:
        copy = value.copy()
        copy.attrs["extra"] = draw(st.integers(0, 2))
        return copy

    options: list[Callable[[], Any]] = [with_attrs]
    if isinstance(value, pd.Index):
        options += [
            lambda: value.rename(draw(NAMES)),
            lambda: value.astype(object),
            lambda: pd.Series(value),
            lambda: pd.Index(_changed_column(draw, value.to_numpy()), name=value.name),
        ]
        return options[1:]  # an Index has no attrs
    options += [
        lambda: _without_duplicate_labels(value),
        lambda: value.set_axis(draw(indexes(len(value)))),
        lambda: value.astype(object),
    ]
    if isinstance(value, pd.Series):
        options += [
            lambda: value.rename(draw(NAMES)),
            lambda: value.to_frame(),
            lambda: pd.Series(
                _changed_column(draw, value.to_numpy()), index=value.index, name=value.name
            ),
        ]
    elif value.shape[1]:
        position = draw(st.integers(0, value.shape[1] - 1))
        options += [
            lambda: value.iloc[:, position],
            lambda: value.drop(columns=value.columns[position]),
            lambda: value.iloc[:, ::-1],
            lambda: value.rename(columns={value.columns[position]: "renamed"}),
            lambda: value.assign(
                **{
                    value.columns[position]: _changed_column(
                        draw, value.iloc[:, position].to_numpy()
                    )
                }
            ),
        ]
    return options


def mutate(draw: Any, value: Any) -> Any:
    """A value near ``value``: of another type, or with one part changed (or, now and then,
    only rebuilt, which `same` then says is the same value)."""
    if isinstance(value, np.ndarray):
        options = _array_mutants(draw, value)
    elif isinstance(value, np.generic):
        options = [
            lambda: value.item() if value.dtype.names is None else value.tolist(),
            lambda: np.asarray(value),
            lambda: _changed_column(draw, np.asarray(value))[()],
        ]
    elif isinstance(value, (pd.Series, pd.DataFrame, pd.Index)):
        options = _pandas_mutants(draw, value)
    elif isinstance(value, (list, tuple)):
        options = [
            lambda: tuple(value) if isinstance(value, list) else list(value),
            lambda: type(value)([*value, draw(SCALARS)]),
            lambda: [value],
        ]
        if value:
            position = draw(st.integers(0, len(value) - 1))
            options += [
                lambda: type(value)(v for i, v in enumerate(value) if i != position),
                lambda: type(value)(
                    mutate(draw, v) if i == position else v for i, v in enumerate(value)
                ),
            ]
    elif isinstance(value, dict):
        options = [lambda: {**value, draw(HASHABLE): draw(SCALARS)}, lambda: list(value.items())]
        if value:
            chosen = draw(st.sampled_from(list(value)))
            options += [
                lambda: {k: v for k, v in value.items() if k is not chosen},
                lambda: {k: mutate(draw, v) if k is chosen else v for k, v in value.items()},
            ]
    elif isinstance(value, (set, frozenset)):
        other = frozenset if isinstance(value, set) else set
        options = [lambda: other(value), lambda: type(value)({*value, draw(HASHABLE)})]
        if value:
            chosen = draw(st.sampled_from(list(value)))
            options.append(lambda: type(value)(v for v in value if v is not chosen))
    elif isinstance(value, float):
        options = [
            lambda: -value,
            lambda: math.nextafter(value, math.inf),
            lambda: np.float64(value),
            lambda: int(value) if math.isfinite(value) else str(value),
        ]
    elif isinstance(value, bool):
        options = [lambda: not value, lambda: int(value), lambda: float(value), lambda: None]
    elif isinstance(value, int):
        options = [lambda: value + 1, lambda: float(value), lambda: str(value), lambda: -value]
        if value in (0, 1):
            options.append(lambda: bool(value))
    elif isinstance(value, str):
        options = [lambda: value + "a", lambda: value.encode(), lambda: value[1:]]
    elif isinstance(value, bytes):
        options = [lambda: value + b"\x00", lambda: bytearray(value), lambda: value[1:]]
    else:
        options = [lambda: False, lambda: 0, lambda: "", lambda: ()]
    return draw(st.sampled_from(options))()


@SETTINGS
@given(st.data())
def test_a_changed_value_has_another_encoding(data: Any) -> None:
    value = data.draw(VALUES, label="value")
    changed = mutate(data.draw, value)
    assert (key(changed) == key(value)) == same(changed, value), (value, changed)


# -- (b) equal values, one encoding -----------------------------------------------------------


def _other_nan_bits(array: Any) -> Any:
    """A copy with each NaN of a float or complex array given another sign and payload."""
    copy = np.array(array, order="C", copy=True)
    flat = copy.reshape(-1)
    if copy.dtype.kind == "c":
        flat = flat.view(copy.real.dtype)
    nan = np.isnan(flat)
    if flat.dtype.itemsize in (2, 4, 8):
        size = flat.dtype.itemsize
        bits = flat.view(np.dtype(f"u{size}").newbyteorder(flat.dtype.byteorder))
        exponent = {2: 0x7C00, 4: 0x7F800000, 8: 0x7FF0000000000000}[size]
        sign = 1 << (8 * size - 1)
        bits[nan] = sign | exponent | (exponent >> 1 & ~exponent) | 1  # negative, quiet, 1
    else:
        flat[nan] = -np.nan
    return copy


def _scrambled(array: Any, seed: int) -> Any:
    """The same values in a buffer whose other bytes (padding) are random."""
    if array.dtype.hasobject:  # its memory is pointers: nothing to scramble
        return array.copy()
    generator = np.random.default_rng(seed)
    copy = np.empty(array.shape, array.dtype)
    raw = copy.reshape(-1).view(np.uint8)
    raw[...] = generator.integers(0, 256, raw.size, dtype=np.uint8)
    if array.dtype.names is not None:
        for name in array.dtype.names:
            copy[name] = array[name]  # leaves the bytes between fields alone
        return copy
    copy[...] = array
    if array.dtype.kind in "fc" and array.dtype.itemsize // (1 + (array.dtype.kind == "c")) > 8:
        info = np.finfo(np.longdouble)
        if int(info.nmant) == 63:  # x87: 10 bytes of value, the rest padding
            rows = copy.reshape(-1).view(np.longdouble).view(np.uint8).reshape(-1, 16)
            rows[:, 10:] = generator.integers(0, 256, rows[:, 10:].shape, dtype=np.uint8)
    return copy


def rebuilt(draw: Any, value: Any) -> Any:
    """``value`` built another way: copies, views, other memory orders and construction orders."""
    if isinstance(value, np.ndarray):
        options = [
            lambda: value.copy(order="F"),
            lambda: value[...],
            lambda: np.asfortranarray(value) if value.ndim else value.copy(),
            lambda: _other_nan_bits(value) if value.dtype.kind in "fc" else value.copy(),
            lambda: _scrambled(value, draw(st.integers(0, 2**32 - 1))),
            lambda: _strided(value),
        ]
        if value.ndim and value.dtype.kind not in "OT":
            options.append(lambda: value[::-1].copy()[::-1])
        return draw(st.sampled_from(options))()
    if isinstance(value, np.generic):
        if value.dtype.kind in "fc":
            return _other_nan_bits(np.asarray(value))[()]
        return np.asarray(value).copy()[()]
    if isinstance(value, pd.Series):
        return _rebuilt_series(draw, value)
    if isinstance(value, pd.DataFrame):
        return _rebuilt_frame(draw, value)
    if isinstance(value, pd.Index):
        return pd.Index(rebuilt(draw, value.to_numpy()), dtype=value.dtype, name=value.name)
    if isinstance(value, (list, tuple)):
        return type(value)(rebuilt(draw, item) for item in value)
    if isinstance(value, dict):
        items = [(k, rebuilt(draw, v)) for k, v in value.items()]
        random.Random(draw(st.integers())).shuffle(items)
        return dict(items)
    if isinstance(value, (set, frozenset)):
        items = list(value)
        random.Random(draw(st.integers())).shuffle(items)
        grown = set(range(100, 140))  # a table grown then emptied iterates in another order
        grown.update(items)
        grown.difference_update(range(100, 140))
        grown.update(items)  # and what the range removed is back
        return type(value)(grown)
    if isinstance(value, float):
        return struct.unpack(">d", struct.pack(">d", value))[0]
    if isinstance(value, (str, bytes)):
        return type(value)(value[:0]) + value  # another object where Python makes one
    return value


def _strided(array: Any) -> Any:
    if not array.ndim:
        return array.copy()
    wide = np.zeros((*array.shape[:-1], array.shape[-1] * 2), array.dtype)
    wide[..., ::2] = array
    return wide[..., ::2]


def _rebuilt_series(draw: Any, value: Any) -> Any:
    def concatenated() -> Any:
        cut = draw(st.integers(0, len(value)))
        joined = pd.concat([value.iloc[:cut], value.iloc[cut:]])
        joined.name = value.name
        joined.attrs = dict(value.attrs)
        return joined

    def from_numpy() -> Any:
        result = pd.Series(
            rebuilt(draw, value.to_numpy()),
            index=rebuilt(draw, value.index),
            name=value.name,
            dtype=value.dtype,
        )
        result.attrs = dict(value.attrs)
        return result

    return draw(st.sampled_from([concatenated, from_numpy, lambda: value.copy(deep=True)]))()


def _rebuilt_frame(draw: Any, value: Any) -> Any:
    def column_by_column() -> Any:
        result = pd.DataFrame(index=value.index)
        for label in value.columns:
            result[label] = value[label].to_numpy().copy()
        result.attrs = dict(value.attrs)
        return result

    def reordered() -> Any:  # columns inserted in another order, then put back in place
        result = value[list(value.columns)[::-1]].copy()
        return result[list(value.columns)]

    return draw(st.sampled_from([column_by_column, reordered, lambda: value.copy(deep=True)]))()


@SETTINGS
@given(st.data())
def test_equal_values_built_differently_share_one_encoding(data: Any) -> None:
    value = data.draw(VALUES, label="value")
    other = rebuilt(data.draw, value)
    assert same(other, value), (value, other)
    assert key(other) == key(value)


@SETTINGS
@given(arrays() | NUMPY_SCALARS, st.data())
def test_equal_numpy_values_built_differently_share_one_encoding(value: Any, data: Any) -> None:
    other = rebuilt(data.draw, value)
    assert same(other, value), (value, other)
    assert key(other) == key(value)


@SETTINGS
@given(arrays() | NUMPY_SCALARS | series() | frames(), st.data())
def test_a_changed_numpy_or_pandas_value_has_another_encoding(value: Any, data: Any) -> None:
    changed = mutate(data.draw, value)
    assert (key(changed) == key(value)) == same(changed, value), (value, changed)


_CELLS = {
    "<i8": st.integers(-(2**63), 2**63 - 1),
    "<f8": FLOATS,
    "?": st.booleans(),
    "O": st.text(max_size=3),
}


@st.composite
def records(draw: Any) -> tuple[list[str], list[str], list[list[Any]]]:
    labels = draw(st.lists(st.text(min_size=1, max_size=2), min_size=1, max_size=3, unique=True))
    kinds = [draw(st.sampled_from(sorted(_CELLS))) for _ in labels]
    rows = draw(
        st.lists(st.tuples(*(_CELLS[kind] for kind in kinds)).map(list), min_size=1, max_size=4)
    )
    return labels, kinds, rows


@SETTINGS
@given(records())
def test_a_frame_built_by_columns_or_by_rows_has_one_encoding(
    made: tuple[list[str], list[str], list[list[Any]]],
) -> None:
    labels, kinds, rows = made
    by_columns = pd.DataFrame(
        {
            label: np.array([row[i] for row in rows], dtype=kind)
            for i, (label, kind) in enumerate(zip(labels, kinds, strict=True))
        }
    )
    by_rows = pd.DataFrame([dict(zip(labels, row, strict=True)) for row in rows])
    by_records = pd.DataFrame.from_records([tuple(row) for row in rows], columns=labels)
    assert [str(dtype) for dtype in by_rows.dtypes] == [str(d) for d in by_columns.dtypes]
    assert same(by_rows, by_columns) and same(by_records, by_columns)
    assert key(by_rows) == key(by_columns) == key(by_records)
