"""Keys of numpy and pandas values: only the bytes that make a value, every NaN as one, dtypes
exactly, and all the state pandas objects carry.

Each test here failed before the rule it checks was added (see the cachekey.arrays and
cachekey.frames docstrings for the rules).
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from beautyspot.cachekey import canonical_bytes
from beautyspot.errors import CacheKeyError

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

RNG = np.random.default_rng(20240601)


def key(value: Any) -> bytes:
    return canonical_bytes(value)


def _scramble(raw: Any) -> None:
    """Fill a uint8 view with random bytes."""
    raw[...] = RNG.integers(0, 256, raw.shape, dtype=np.uint8)


def _value_bytes_of_longdouble() -> int:
    info = np.finfo(np.longdouble)
    if int(info.nmant) == 63 and int(info.nexp) == 15:  # x87 extended precision
        return 10
    return np.dtype(np.longdouble).itemsize


LONGDOUBLE_PADDING = np.dtype(np.longdouble).itemsize - _value_bytes_of_longdouble()
needs_padding = pytest.mark.skipif(
    LONGDOUBLE_PADDING <= 0, reason="longdouble has no padding bytes on this platform"
)


def _longdoubles_with_padding(dtype: str, values: list[Any]) -> Any:
    """``values`` as a (c)longdouble array whose padding bytes are random."""
    array = np.array(values, dtype=dtype)
    rows = (
        array.reshape(-1).view(np.longdouble).view(np.uint8).reshape(-1, np.longdouble().itemsize)
    )
    _scramble(rows[:, _value_bytes_of_longdouble() :])  # the value is in the low bytes (x86)
    return array


# -- 1. padding is not part of a value --------------------------------------------------------


@needs_padding
@pytest.mark.parametrize("dtype", ["g", "G"])
def test_longdouble_arrays_with_other_padding_share_a_key(dtype: str) -> None:
    values = [1.5, -2.25, 1e300, 0.0, np.inf]
    first = _longdoubles_with_padding(dtype, values)
    second = _longdoubles_with_padding(dtype, values)
    assert first.tobytes() != second.tobytes()  # the padding differs ...
    assert np.array_equal(first, second)  # ... not the values
    assert key(first) == key(second)
    assert key(first) != key(_longdoubles_with_padding(dtype, [1.5, -2.25, 1e300, 0.0, 1.0]))


@needs_padding
@pytest.mark.parametrize("dtype", ["g", "G"])
def test_longdouble_scalars_with_other_padding_share_a_key(dtype: str) -> None:
    first = _longdoubles_with_padding(dtype, [1.0 / 3.0])[0]
    second = _longdoubles_with_padding(dtype, [1.0 / 3.0])[0]
    assert first.tobytes() != second.tobytes() and first == second
    assert key(first) == key(second)
    assert key(first) != key(_longdoubles_with_padding(dtype, [0.25])[0])


def test_longdouble_keys_tell_values_apart_and_from_float64() -> None:
    big = np.longdouble(2) ** 60
    if big + 1 != big:  # a difference float64 cannot hold
        assert key(np.array([big])) != key(np.array([big + 1]))
        assert key(big) != key(big + 1)
    assert key(np.longdouble(1.5)) != key(np.float64(1.5))
    assert key(np.array([1.5], dtype="g")) != key(np.array([1.5], dtype="f8"))


ALIGNED = np.dtype([("flag", "?"), ("count", "<i4"), ("x", "<f8"), ("tag", "S3")], align=True)
ROWS = [(True, 7, 0.5, b"ab"), (False, -1, -0.0, b"")]


def _aligned_with_padding(values: list[Any]) -> Any:
    array = np.zeros(len(values), ALIGNED)
    _scramble(array.view(np.uint8))
    array[...] = values  # field assignment leaves the bytes between fields as they were
    return array


def test_aligned_structured_arrays_with_other_padding_share_a_key() -> None:
    assert ALIGNED.itemsize > sum(ALIGNED.fields[name][0].itemsize for name in ALIGNED.names)
    first, second = _aligned_with_padding(ROWS), _aligned_with_padding(ROWS)
    assert first.tobytes() != second.tobytes()
    assert first.tolist() == second.tolist()
    assert key(first) == key(second)
    assert key(first[1]) == key(second[1])  # np.void scalars too
    assert key(first) != key(_aligned_with_padding([ROWS[0], (False, -1, -0.0, b"x")]))


def test_aligned_and_packed_structured_arrays_differ_by_dtype_only() -> None:
    packed = np.dtype([(name, ALIGNED.fields[name][0]) for name in ALIGNED.names])
    assert key(np.array(ROWS, ALIGNED)) != key(np.array(ROWS, packed))  # other offsets


# -- 2. every NaN is one NaN ------------------------------------------------------------------


def _other_nan(dtype: str) -> Any:
    """A NaN of ``dtype`` with another sign and payload than ``np.nan`` cast to it."""
    array = np.array([np.nan], dtype=dtype)
    raw = array.view(np.uint8)
    low = 0 if array.dtype.byteorder in "<=|" else raw.size - 1  # the mantissa's low byte
    raw[low] ^= 1
    sign = raw.size - 1 if low == 0 else 0
    if array.dtype == np.longdouble and _value_bytes_of_longdouble() == 10:
        sign = 9  # x87: the sign is in the tenth byte
    raw[sign] ^= 0x80
    assert np.isnan(array[0])
    return array


FLOAT_DTYPES = ["<f2", "<f4", "<f8", ">f8", ">f4", "g"]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_every_nan_of_a_float_array_is_one_nan(dtype: str) -> None:
    plain, other = np.array([1.0, np.nan], dtype=dtype), np.array([1.0, 0.0], dtype=dtype)
    other[1:] = _other_nan(dtype)
    assert plain.tobytes()[: plain.dtype.itemsize] == other.tobytes()[: plain.dtype.itemsize]
    assert plain.tobytes() != other.tobytes()
    assert key(plain) == key(other)
    assert key(plain[1]) == key(other[1])  # and the numpy scalars
    assert key(plain) != key(np.array([1.0, np.inf], dtype=dtype))


def test_nan_from_zero_over_zero_is_nan() -> None:
    with np.errstate(invalid="ignore"):
        computed = np.array([0.0]) / 0  # negative on x86, unlike np.nan
    assert key(computed) == key(np.array([np.nan]))
    assert key(computed[0]) == key(np.float64(np.nan))


@pytest.mark.parametrize("dtype", ["<c8", "<c16", ">c16", "G"])
def test_every_nan_in_a_complex_part_is_one_nan(dtype: str) -> None:
    parts = np.dtype(dtype).itemsize // 2
    part = f"{np.dtype(dtype).byteorder if np.dtype(dtype).byteorder != '=' else ''}f{parts}"
    if np.dtype(dtype) == np.clongdouble:
        part = "g"
    first = np.array([complex(np.nan, 1), complex(2, np.nan)], dtype=dtype)
    second = first.copy()
    floats = second.view(part)
    floats[0], floats[3] = _other_nan(part)[0], _other_nan(part)[0]
    assert first.tobytes() != second.tobytes()
    assert key(first) == key(second)
    assert key(first[0]) == key(second[0])
    assert key(first) != key(np.array([complex(np.nan, 1), complex(np.nan, 2)], dtype=dtype))


def test_nan_inside_a_structured_array_is_one_nan() -> None:
    dtype = np.dtype([("a", "<i4"), ("b", "<f8", (2,))])
    first = np.zeros(1, dtype)
    first["b"] = np.nan
    second = first.copy()
    second["b"][0, 1] = _other_nan("<f8")[0]
    assert first.tobytes() != second.tobytes()
    assert key(first) == key(second)


def test_minus_zero_is_not_zero_in_arrays_as_in_python_floats() -> None:
    assert key(-0.0) != key(0.0)
    assert key(np.array([-0.0])) != key(np.array([0.0]))
    assert key(np.float32(-0.0)) != key(np.float32(0.0))
    assert key(np.array([complex(0.0, -0.0)])) != key(np.array([complex(0.0, 0.0)]))


def test_series_that_pandas_calls_equal_share_a_key_despite_nan_bits() -> None:
    with np.errstate(invalid="ignore"):
        first = pd.Series([1.0, np.nan], index=[np.nan, 2.0])
        second = pd.Series(np.array([1.0, 0.0]) / np.array([1.0, 0.0]), index=first.index)
    assert first.equals(second)
    assert key(first) == key(second)
    frame = pd.DataFrame({"a": first})
    assert key(frame) == key(pd.DataFrame({"a": second}))
    assert key(pd.Index([np.nan])) == key(pd.Index(-np.array([np.nan])))


def _peak_bytes(action: Any) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", ["<f4", "<f8", ">f8", "<c16", "<f2"])
def test_a_nan_free_float_array_is_not_copied(dtype: str) -> None:
    array = np.linspace(-1, 1, 2_000_000).astype(dtype)
    assert _peak_bytes(lambda: key(array)) < array.nbytes // 8


def test_an_array_with_nan_still_keys_and_leaves_the_array_alone() -> None:
    array = np.arange(100_000, dtype=np.float64)
    array[5] = -np.nan
    before = array.tobytes()
    assert key(array) == key(np.where(np.isnan(array), np.nan, array))
    assert array.tobytes() == before


# -- 3. structured dtypes of any layout -------------------------------------------------------

OUT_OF_ORDER = np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": [4, 0]})
IN_ORDER = np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": [0, 4]})
OVERLAPPING = np.dtype({"names": ["whole", "low"], "formats": ["<i8", "<i4"], "offsets": [0, 0]})


def test_out_of_order_and_overlapping_fields_are_keyed() -> None:
    with pytest.raises(ValueError):
        OUT_OF_ORDER.descr  # noqa: B018  (what the old key relied on)
    first = np.array([(1, 2), (3, 4)], OUT_OF_ORDER)
    assert key(first) == key(first.copy())
    assert key(first) != key(np.array([(1, 2), (3, 5)], OUT_OF_ORDER))
    assert key(first) != key(np.array([(1, 2), (3, 4)], IN_ORDER))  # offsets are keyed
    assert key(OUT_OF_ORDER) != key(IN_ORDER)
    assert key(first[0]) != key(np.array([(1, 2)], IN_ORDER)[0])
    both = np.zeros(2, OVERLAPPING)
    both["whole"] = [1, 2**40]
    assert key(both) == key(both.copy())
    assert key(both) != key(np.zeros(2, OVERLAPPING))
    assert key(OVERLAPPING) != key(np.dtype({"names": ["whole", "low"], "formats": ["<i8", "<i4"],
                                             "offsets": [0, 4]}))  # fmt: skip


def test_structured_dtypes_are_keyed_by_names_titles_offsets_itemsize_and_nesting() -> None:
    base = np.dtype({"names": ["a"], "formats": ["<i4"], "offsets": [0], "itemsize": 8})
    variants = [
        base,
        np.dtype({"names": ["a"], "formats": ["<i4"], "offsets": [0], "itemsize": 12}),
        np.dtype({"names": ["a"], "formats": ["<i4"], "offsets": [4], "itemsize": 8}),
        np.dtype({"names": ["a"], "formats": [">i4"], "offsets": [0], "itemsize": 8}),
        np.dtype({"names": ["b"], "formats": ["<i4"], "offsets": [0], "itemsize": 8}),
        np.dtype(
            {"names": ["a"], "formats": ["<i4"], "offsets": [0], "itemsize": 8, "titles": ["T"]}
        ),
        np.dtype([("a", [("x", "<i4")])]),
        np.dtype([("a", "<i4", (1,))]),
        np.dtype([("a", "<i2", (2,))]),
        np.dtype("V8"),
    ]
    assert len({key(dtype) for dtype in variants}) == len(variants)


def test_dtype_metadata_is_keyed() -> None:
    tagged = np.dtype("<i4", metadata={"unit": "m"})
    assert tagged == np.dtype("<i4")  # numpy's == does not look at it
    assert key(tagged) != key(np.dtype("<i4"))
    assert key(np.zeros(2, tagged)) != key(np.zeros(2, "<i4"))
    assert key(np.zeros(2, tagged)) == key(np.zeros(2, np.dtype("<i4", metadata={"unit": "m"})))
    assert key(np.zeros(2, tagged)) != key(np.zeros(2, np.dtype("<i4", metadata={"unit": "s"})))
    nested = np.dtype([("a", tagged)])
    assert key(nested) != key(np.dtype([("a", "<i4")]))


def test_subarray_dtypes_are_not_their_void_size() -> None:
    assert np.dtype("(2,)<i4").str == np.dtype("(2,)<f4").str  # both '|V8'
    assert key(np.dtype("(2,)<i4")) != key(np.dtype("(2,)<f4"))
    assert key(np.dtype("(2,)<i4")) != key(np.dtype("V8"))


def test_structured_arrays_with_object_fields_are_keyed_by_their_objects() -> None:
    dtype = np.dtype([("name", "O"), ("x", "<f8")])
    first = np.array([("a", 1.0), (("b", 2), 2.0)], dtype)
    assert key(first) == key(np.array([("a", 1.0), (("b", 2), 2.0)], dtype))
    assert key(first) != key(np.array([("a", 1.0), (("b", 3), 2.0)], dtype))
    with pytest.raises(CacheKeyError, match=r"\['name'\]"):
        key(np.array([(object(), 1.0)], dtype))


def test_a_user_dtype_is_not_a_void_of_its_size() -> None:
    rational_tests = pytest.importorskip("numpy._core._rational_tests")
    rational = rational_tests.rational
    array = np.array([rational(1, 2), rational(3)], dtype=rational)
    assert array.dtype.str.endswith("V8")
    assert key(array) == key(array.copy())
    assert key(array) != key(array.view("V8"))
    assert key(array) != key(np.array([rational(1, 3), rational(3)], dtype=rational))


# -- 4. StringDType ---------------------------------------------------------------------------

StringDType = getattr(getattr(np, "dtypes", None), "StringDType", None)
needs_string_dtype = pytest.mark.skipif(StringDType is None, reason="numpy < 2")


@needs_string_dtype
def test_string_dtype_arrays_are_keyed_by_their_strings() -> None:
    def make(*items: Any, **options: Any) -> Any:
        return np.array(items, dtype=StringDType(**options))

    long = "x" * 5000  # held outside the array's own buffer
    assert key(make("a", "bb", long)) == key(make("a", "bb", long))
    assert key(make("a", "bb", long)[::-1][::-1]) == key(make("a", "bb", long))
    distinct = [
        make("a", "bb"),
        make("a", "bc"),
        make("a", "bb", na_object=None),
        make("a", "bb", na_object=np.nan),
        make("a", "bb", na_object=pd.NA),
        make("a", "bb", na_object="__missing__"),
        make("a", "bb", coerce=False),
        make("a", None, na_object=None),
        make("a", "None", na_object=None),
        make("a", np.nan, na_object=np.nan),
        make("a", "nan", na_object=np.nan),
        np.array(["a", "bb"]),
        np.array(["a", "bb"], dtype=object),
    ]
    assert len({key(value) for value in distinct}) == len(distinct)


# -- 5. pandas state beyond the values --------------------------------------------------------


def test_datetime_index_freq_is_keyed() -> None:
    daily = pd.date_range("2024-01-01", periods=3, freq="D")
    bare = pd.DatetimeIndex(daily, freq=None)
    assert daily.equals(bare) and daily.freq != bare.freq
    assert key(daily) != key(bare)
    assert key(pd.Series([1, 2, 3], index=daily)) != key(pd.Series([1, 2, 3], index=bare))
    assert key(pd.DataFrame({"a": [1, 2, 3]}, index=daily)) != key(
        pd.DataFrame({"a": [1, 2, 3]}, index=bare)
    )
    assert key(daily) == key(pd.date_range("2024-01-01", periods=3, freq="D"))
    spans = pd.timedelta_range("1D", periods=3)
    assert key(spans) != key(pd.TimedeltaIndex(spans, freq=None))


def test_offsets_are_keyed_by_all_their_parameters() -> None:
    custom = pd.offsets.CustomBusinessDay
    offsets = [
        pd.offsets.Day(),
        pd.offsets.Day(2),
        pd.offsets.Hour(24),
        pd.offsets.Week(weekday=6),
        pd.offsets.Week(weekday=0),
        pd.DateOffset(months=1),
        pd.DateOffset(months=1, normalize=True),
        custom(),
        custom(holidays=["2024-01-02"]),
        custom(weekmask="Mon Tue"),
        custom(calendar=np.busdaycalendar(weekmask="1100000")),  # freqstr 'C' for all these
    ]
    assert len({key(offset) for offset in offsets}) == len(offsets)
    assert key(custom(holidays=["2024-01-02"])) == key(custom(holidays=["2024-01-02"]))


def test_attrs_and_duplicate_label_flags_are_keyed() -> None:
    series = pd.Series([1.0, 2.0], name="s")
    labelled = series.copy()
    labelled.attrs["unit"] = "m"
    assert series.equals(labelled)
    assert key(series) != key(labelled)
    assert key(series) != key(series.set_flags(allows_duplicate_labels=False))
    frame = series.to_frame()
    tagged = frame.copy()
    tagged.attrs["source"] = "sensor"
    assert key(frame) != key(tagged)
    assert key(frame) != key(frame.set_flags(allows_duplicate_labels=False))
    assert key(tagged) == key(tagged.copy())


def test_unkeyable_attrs_name_their_place() -> None:
    series = pd.Series([1])
    series.attrs["handle"] = object()
    with pytest.raises(CacheKeyError, match=r"\.attrs\['handle'\]"):
        key(series)


def test_multiindex_levels_keep_their_dtypes() -> None:
    def index(first: Any, second: Any) -> Any:
        return pd.MultiIndex.from_arrays([first, second], names=["k", "n"])

    plain = index(["a", "b"], np.array([1, 2], dtype=np.int64))
    categorical = index(pd.Categorical(["a", "b"]), np.array([1, 2], dtype=np.int64))
    narrow = index(["a", "b"], np.array([1, 2], dtype=np.int32))
    assert len({key(plain), key(categorical), key(narrow)}) == 3
    assert key(plain) == key(index(["a", "b"], np.array([1, 2], dtype=np.int64)))
    assert key(plain) != key(index(["a", "b"], np.array([1, 3], dtype=np.int64)))
    assert key(plain) != key(plain.set_names(["k", "m"]))
    assert key(plain) != key(pd.Index([("a", 1), ("b", 2)], tupleize_cols=False))
    frame = pd.DataFrame({"v": [1, 2]}, index=plain)
    assert key(frame) != key(pd.DataFrame({"v": [1, 2]}, index=categorical))


def test_multiindex_missing_labels_are_keyed() -> None:
    first = pd.MultiIndex.from_arrays([["a", None], [1, 2]])
    assert key(first) == key(pd.MultiIndex.from_arrays([["a", None], [1, 2]]))
    assert key(first) != key(pd.MultiIndex.from_arrays([["a", "b"], [1, 2]]))
