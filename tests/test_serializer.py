"""Tests for beautyspot.serializer: exact round trips, registration, errors, hostile bytes."""

from __future__ import annotations

import ast
import collections
import contextlib
import dataclasses
import enum
import gc
import inspect
import math
import os
import pickle
import subprocess
import sys
import threading
import typing
import uuid
import zoneinfo
from collections import abc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, NewType, Optional, TypeVar

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beautyspot.errors import ConfigurationError, SerializationError
from beautyspot.serializer import FORMAT_VERSION, Serializer

SOURCE = Path(__file__).resolve().parents[1] / "src" / "beautyspot" / "serializer"
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


class Unregistered:
    pass


class Model:
    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return type(other) is Model and other.name == self.name


class SubModel(Model):
    pass


class Color(enum.Enum):
    RED = "r"
    GREEN = (1, 2)


class Perm(enum.Flag):
    R = 1
    W = 2


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float = 0.0
    label: str = dataclasses.field(default="", init=False)


@dataclasses.dataclass
class Box:
    inner: Point
    items: list[Any]


def roundtrip(value: Any, serializer: Serializer | None = None) -> Any:
    serializer = serializer or Serializer()
    result = serializer.loads(serializer.dumps(value))
    assert_same(value, result)
    return result


def assert_same(expected: Any, actual: Any, path: str = "value") -> None:
    """Type and value equal all the way down (nan, -0.0, Decimal digits, tz, fold included)."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} is not {type(expected)}"
    kind = type(expected).__module__.partition(".")[0]
    if kind == "numpy":
        assert_same_numpy(expected, actual, path)
    elif kind == "pandas":
        assert_same_pandas(expected, actual, path)
    elif isinstance(expected, float):
        assert math.isnan(actual) if math.isnan(expected) else actual == expected, path
        assert math.copysign(1, actual) == math.copysign(1, expected), path
    elif isinstance(expected, Decimal):
        assert str(actual) == str(expected), path
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_same(e, a, f"{path}[{i}]")
    elif isinstance(expected, dict):
        assert len(actual) == len(expected), path
        for (ek, ev), (ak, av) in zip(expected.items(), actual.items(), strict=True):
            assert_same(ek, ak, f"{path} key {ek!r}")
            assert_same(ev, av, f"{path}[{ek!r}]")
    elif isinstance(expected, (set, frozenset)):
        assert actual == expected, path
        for e in expected:
            assert_same(e, next(a for a in actual if a == e), f"{path} item {e!r}")
    elif isinstance(expected, (datetime, time)):
        assert (actual, actual.fold) == (expected, expected.fold), path
        assert_same(expected.tzinfo, actual.tzinfo, f"{path}.tzinfo")
    elif isinstance(expected, timezone):
        assert actual.__getinitargs__() == expected.__getinitargs__(), path
    elif isinstance(expected, uuid.UUID):
        assert (actual, actual.is_safe) == (expected, expected.is_safe), path
    else:
        assert actual == expected, path


def assert_same_numpy(expected: Any, actual: Any, path: str) -> None:
    import numpy as np

    assert actual.dtype == expected.dtype, path
    assert actual.dtype.type is expected.dtype.type, path
    assert actual.dtype.isalignedstruct == expected.dtype.isalignedstruct, path
    if isinstance(expected, np.ndarray):
        assert actual.shape == expected.shape, path
        assert actual.flags.writeable, path
        if expected.flags.c_contiguous or expected.flags.f_contiguous:
            assert actual.flags.f_contiguous == expected.flags.f_contiguous, path
        assert actual.tobytes("A") == expected.tobytes("A"), path
    else:
        assert actual.tobytes() == expected.tobytes(), path


def assert_same_pandas(expected: Any, actual: Any, path: str) -> None:
    import pandas as pd

    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)
        for (_, e), (_, a) in zip(expected.items(), actual.items(), strict=True):
            assert_same_pandas(e, a, path)
        assert_same_pandas(expected.index, actual.index, f"{path}.index")
        assert_same_pandas(expected.columns, actual.columns, f"{path}.columns")
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(actual, expected, check_exact=True)
        assert_same(expected.name, actual.name, f"{path}.name")
        assert_same_pandas(expected.index, actual.index, f"{path}.index")
        if expected.dtype == object:
            assert_same(expected.tolist(), actual.tolist(), f"{path} values")
    elif isinstance(expected, pd.Index):
        pd.testing.assert_index_equal(actual, expected, exact=True, check_exact=True)
        assert getattr(actual, "freq", None) == getattr(expected, "freq", None), path
        assert list(actual.names) == list(expected.names), path
        if expected.dtype == object:
            assert_same(expected.tolist(), actual.tolist(), f"{path} values")
    elif isinstance(expected, pd.api.extensions.ExtensionArray):
        pd.testing.assert_extension_array_equal(actual, expected, check_exact=True)
    elif expected is pd.NA or expected is pd.NaT:
        assert actual is expected, path
    else:
        assert (actual, actual.unit) == (expected, expected.unit), path
        assert getattr(actual, "tz", None) is getattr(expected, "tz", None), path
    if isinstance(expected, (pd.DataFrame, pd.Series)):
        assert_same(expected.attrs, actual.attrs, f"{path}.attrs")
        assert actual.flags == expected.flags, path


# -- round trips ------------------------------------------------------------------------------

PLAIN_VALUES = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int64 max": 2**63 - 1,
    "uint64 max": 2**64 - 1,
    "int64 min": -(2**63),
    "just over uint64": 2**64,
    "just under int64": -(2**63) - 1,
    "huge int": 10**300,
    "huge negative int": -(7**500),
    "float": 1.5,
    "negative zero": -0.0,
    "inf": math.inf,
    "minus inf": -math.inf,
    "nan": math.nan,
    "str": "héllo 日本語 \x00",
    "empty str": "",
    "bytes": b"\x00\xff\xc4\xc7",
    "bytearray": bytearray(b"\xc4 raw"),
    "empty bytearray": bytearray(),
    "list": [1, [2, [3, "x"]], []],
    "tuple": (1, (2, (3,)), ()),
    "empty tuple": (),
    "set": {1, "a", (2, 3)},
    "frozenset": frozenset({frozenset({1}), b"x"}),
    "empty set": set(),
    "dict order": {"b": 1, "a": 2, "c": {"z": 0, "y": 1}},
    "int keys": {3: "c", 1: "a", -5: "neg", 2**70: "big"},
    "mixed keys": {(1, "a"): 1, b"k": 2, frozenset({1, 2}): 3, None: 4, 1.5: 5, "s": 6},
    "bool key": {True: "t", False: "f"},
    "datetime naive": datetime(2024, 2, 29, 23, 59, 59, 999999),
    "datetime utc": datetime(2020, 1, 1, tzinfo=timezone.utc),
    "datetime offset": datetime(2020, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "datetime named offset": datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=-3), "BRT")),
    "datetime zoneinfo": datetime(2021, 3, 28, 12, tzinfo=BERLIN),
    "datetime fold": datetime(2021, 10, 31, 2, 30, tzinfo=BERLIN, fold=1),
    "datetime naive fold": datetime(2021, 10, 31, 2, 30, fold=1),
    "date": date(1, 1, 1),
    "time": time(23, 59, 59, 1),
    "time tz fold": time(1, 2, 3, tzinfo=timezone(timedelta(minutes=-90)), fold=1),
    "timedelta": timedelta(days=-1, seconds=5, microseconds=7),
    "timedelta max": timedelta.max,
    "timezone": timezone.utc,
    "zoneinfo": BERLIN,
    "decimal": Decimal("1.10"),
    "decimal negative zero": Decimal("-0"),
    "decimal exponent": Decimal("0E-30"),
    "decimal big": Decimal("-123456789012345678901234567890.123456789e+999"),
    "decimal nan": Decimal("NaN"),
    "decimal snan payload": Decimal("-sNaN123"),
    "decimal infinity": Decimal("-Infinity"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "uuid safe": uuid.UUID(int=5, is_safe=uuid.SafeUUID.safe),
    "nested mix": {"rows": [(1, Decimal("2.5"), {b"x"}), [datetime(2020, 1, 1), None]]},
    "tuple of bytearrays": (bytearray(b"a"), [bytearray(b"b")], {"k": bytearray()}),
}


@pytest.mark.parametrize("value", PLAIN_VALUES.values(), ids=PLAIN_VALUES.keys())
def test_plain_values_round_trip_exactly(value: Any) -> None:
    roundtrip(value)


def test_timezone_utc_comes_back_as_the_singleton() -> None:
    assert roundtrip(timezone.utc) is timezone.utc


NUMPY_VALUES: dict[str, Callable[[Any], Any]] = {
    "int matrix": lambda np: np.arange(6, dtype=np.int64).reshape(2, 3),
    "fortran": lambda np: np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)),
    "0-d": lambda np: np.array(5.5),
    "empty": lambda np: np.zeros((0, 3), dtype=np.float32),
    "strided view": lambda np: np.arange(10)[::3],
    "big endian": lambda np: np.array([1, -2], dtype=">i4"),
    "nan and -0": lambda np: np.array([np.nan, -0.0, np.inf]),
    "complex": lambda np: np.array([1 + 2j], dtype=np.complex64),
    "bool": lambda np: np.array([True, False]),
    "unicode": lambda np: np.array(["ab", "ç"]),
    "bytes": lambda np: np.array([b"x", b"\x00yz"]),
    "datetime64": lambda np: np.array(["2020-01-01T00:00:00.123", "NaT"], dtype="M8[ms]"),
    "timedelta64": lambda np: np.array([1, 2], dtype="m8[D]"),
    "longlong": lambda np: np.array([1, 2], dtype=np.longlong),
    "structured": lambda np: np.array(
        [(1, [2.0, 3.0], b"ab")], dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S2")]
    ),
    "aligned struct": lambda np: np.zeros(2, np.dtype([("a", "i1"), ("b", "<i8")], align=True)),
    "nested struct": lambda np: np.zeros(1, [("p", [("x", "<f4"), ("y", "<f4")]), ("n", "u1")]),
    "titled struct": lambda np: np.zeros(1, {"names": ["a"], "formats": ["<i2"], "titles": ["A"]}),
    "void": lambda np: np.zeros(2, dtype="V3"),
    "float32 scalar": lambda np: np.float32(1.5),
    "float64 scalar": lambda np: np.float64("nan"),
    "longlong scalar": lambda np: np.longlong(-3),
    "uint64 scalar": lambda np: np.uint64(2**64 - 1),
    "bool scalar": lambda np: np.bool_(True),
    "str scalar": lambda np: np.str_("abc"),
    "bytes scalar": lambda np: np.bytes_(b"ab"),
    "datetime64 scalar": lambda np: np.datetime64("2020-01-01", "D"),
    "timedelta64 scalar": lambda np: np.timedelta64(-5, "ns"),
    "complex scalar": lambda np: np.complex128(1 - 1j),
    "structured scalar": lambda np: np.zeros(1, dtype=[("a", "<i2"), ("b", "f4")])[0],
    "scalars in a list": lambda np: [np.int8(1), (np.float16(2.5), {"k": np.uint32(3)})],
}  # fmt: skip


@pytest.mark.parametrize("make", NUMPY_VALUES.values(), ids=NUMPY_VALUES.keys())
def test_numpy_values_round_trip_exactly(make: Callable[[Any], Any]) -> None:
    np = pytest.importorskip("numpy")
    roundtrip(make(np))


def _frame(pd: Any, np: Any) -> Any:
    frame = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.5, np.nan, -0.0],
            "s": ["a", None, "c"],
            "o": pd.Series([(1, 2), None, Decimal("1.5")], dtype=object),
            "cat": pd.Categorical(["x", "y", "x"], categories=["y", "x"], ordered=True),
            "Int64": pd.array([1, None, 3], dtype="Int64"),
            "UInt8": pd.array([1, None, 255], dtype="UInt8"),
            "boolean": pd.array([True, None, False], dtype="boolean"),
            "Float64": pd.array([1.5, None, np.nan], dtype="Float64"),
            "string": pd.array(["a", None, "b"], dtype="string"),
            "berlin": pd.date_range("2020-03-29", periods=3, freq="h", tz="Europe/Berlin"),
            "utc ns": pd.date_range("2020", periods=3, tz="UTC").as_unit("ns"),
            "naive": pd.date_range("2020", periods=3),
            "delta": pd.to_timedelta([1, 2, 3], unit="s"),
            "f32": np.array([1, 2, 3], dtype=np.float32),
        }
    )
    frame.index = pd.date_range("2021-01-01", periods=3, freq="D", name="when")
    frame.attrs["source"] = ("test", 1)
    return frame


PANDAS_VALUES: dict[str, Callable[[Any, Any], Any]] = {
    "frame of every dtype": _frame,
    "empty frame": lambda pd, np: pd.DataFrame(),
    "rows without columns": lambda pd, np: pd.DataFrame(index=pd.Index([1, 2], name="k")),
    "columns without rows": lambda pd, np: pd.DataFrame({"a": pd.Series([], dtype="float32")}),
    "multi index both axes": lambda pd, np: pd.DataFrame(
        [[1, 2], [3, 4]],
        index=pd.MultiIndex.from_tuples([(1, "a"), (1, "b")], names=["n", None]),
        columns=pd.MultiIndex.from_tuples([("x", 1), ("x", 2)]),
    ),
    "duplicate column labels": lambda pd, np: pd.DataFrame([[1, "a"]], columns=["c", "c"]),
    "object index and tuple name": lambda pd, np: pd.Series(
        [1.5, 2.5], name=("a", 1), index=pd.Index(["x", (1, 2)], dtype=object)
    ),
    "range index series": lambda pd, np: pd.Series([1, 2, 3], index=pd.RangeIndex(10, 16, 2)),
    "categorical series": lambda pd, np: pd.Series(pd.Categorical([1, 3, None], categories=[3, 1])),
    "no duplicates flag": lambda pd, np: pd.Series([1]).set_flags(allows_duplicate_labels=False),
    "timedelta index": lambda pd, np: pd.Series([1, 2], index=pd.timedelta_range("1s", periods=2)),
    "range index": lambda pd, np: pd.RangeIndex(2, 10, 3, name="r"),
    "categorical index": lambda pd, np: pd.CategoricalIndex(["a", "b", "a"], ordered=True),
    "tz index": lambda pd, np: pd.date_range("2020", periods=2, freq="2h", tz="UTC", name="t"),
    "pandas array": lambda pd, np: pd.array([1, None], dtype="Int16"),
    "frame inside a tuple": lambda pd, np: (pd.DataFrame({"a": [1]}), pd.Series(["x"])),
    "pandas scalars": lambda pd, np: [
        pd.NA,
        pd.NaT,
        pd.Timestamp("2020-03-29 03:30:00.123456789", tz="Europe/Berlin"),
        pd.Timestamp("3000-01-01").as_unit("s"),
        pd.Timedelta(5, unit="ms").as_unit("ms"),
    ],
    "object column of pandas scalars": lambda pd, np: pd.Series(
        [pd.NA, pd.Timestamp("2020-01-01"), None], dtype=object
    ),
}


@pytest.mark.parametrize("make", PANDAS_VALUES.values(), ids=PANDAS_VALUES.keys())
def test_pandas_values_round_trip_exactly(make: Callable[[Any, Any], Any]) -> None:
    pd = pytest.importorskip("pandas")
    roundtrip(make(pd, pytest.importorskip("numpy")))


# pandas 2 gives string time zones ("Europe/Berlin") as pytz zones; pandas 3 takes them too.

PYTZ_VALUES: dict[str, Callable[[Any], Any]] = {
    "zone": lambda pytz: pytz.timezone("Europe/Berlin"),
    "utc": lambda pytz: pytz.utc,
    "zone without rules": lambda pytz: pytz.timezone("Etc/GMT+5"),
    "fixed offset": lambda pytz: pytz.FixedOffset(-90),
    "localized in winter": lambda pytz: pytz.timezone("Europe/Berlin").localize(
        datetime(2021, 1, 1, 12, 0, 0, 7)
    ),
    "localized in summer": lambda pytz: pytz.timezone("Europe/Berlin").localize(
        datetime(2021, 7, 1, 12)
    ),
    "first of an ambiguous hour": lambda pytz: pytz.timezone("Europe/Berlin").localize(
        datetime(2021, 10, 31, 2, 30), is_dst=True
    ),
    "second of an ambiguous hour": lambda pytz: pytz.timezone("Europe/Berlin").localize(
        datetime(2021, 10, 31, 2, 30), is_dst=False
    ),
    "fold kept": lambda pytz: (
        pytz.timezone("Europe/Berlin")
        .localize(datetime(2021, 10, 31, 2, 30), is_dst=False)
        .replace(fold=1)
    ),
    "converted from utc": lambda pytz: datetime(2024, 3, 10, 7, 30, tzinfo=timezone.utc).astimezone(
        pytz.timezone("America/New_York")
    ),
    "before the zone's rules": lambda pytz: pytz.timezone("Europe/Berlin").localize(
        datetime(1850, 1, 1)
    ),
    "given tzinfo=zone": lambda pytz: datetime(2021, 7, 1, 12, tzinfo=pytz.timezone("Asia/Tokyo")),
    "time in a zone": lambda pytz: time(1, 2, 3, tzinfo=pytz.timezone("Europe/Berlin")),
    "nested": lambda pytz: {
        "when": [pytz.timezone("Asia/Tokyo").localize(datetime(2024, 1, 1, 9))],
        "zones": (pytz.timezone("Asia/Tokyo"), pytz.utc),
    },
}


@pytest.mark.parametrize("make", PYTZ_VALUES.values(), ids=PYTZ_VALUES.keys())
def test_pytz_values_round_trip_exactly(make: Callable[[Any], Any]) -> None:
    value = make(pytest.importorskip("pytz"))
    back = roundtrip(value)  # pytz zones have no __eq__: assert_same checks they are the same
    if isinstance(value, datetime):
        assert (back.utcoffset(), back.dst(), back.tzname()) == (
            value.utcoffset(),
            value.dst(),
            value.tzname(),
        )
        assert back.replace(tzinfo=None) == value.replace(tzinfo=None)


def _pytz_frame(pd: Any, pytz: Any) -> Any:
    frame = pd.DataFrame(
        {
            "berlin": pd.date_range("2021-10-31", periods=4, freq="h", tz=pytz.timezone("CET")),
            "tokyo s": pd.date_range("2024", periods=4, tz=pytz.timezone("Asia/Tokyo")).as_unit(
                "s"
            ),
            "fixed": pd.date_range("2024", periods=4, tz=pytz.FixedOffset(330)),
            "utc": pd.date_range("2024", periods=4, tz=pytz.utc),
        }
    )
    frame.index = pd.date_range("2021-03-28", periods=4, freq="h", tz="Europe/Berlin", name="t")
    frame.index = frame.index.tz_convert(pytz.timezone("Europe/Berlin"))
    return frame


PYTZ_PANDAS_VALUES: dict[str, Callable[[Any, Any], Any]] = {
    "frame": _pytz_frame,
    "series": lambda pd, pytz: pd.Series(
        pd.date_range("2024-01-01", periods=3, tz=pytz.timezone("Asia/Tokyo")), name="when"
    ),
    "index with freq": lambda pd, pytz: pd.date_range(
        "2020-03-29", periods=5, freq="30min", tz=pytz.timezone("Europe/Berlin")
    ),
    "empty series": lambda pd, pytz: pd.Series(
        [], dtype=pd.DatetimeTZDtype("ns", pytz.timezone("Asia/Tokyo"))
    ),
    "missing values": lambda pd, pytz: pd.Series(
        [pd.NaT, pd.Timestamp("2024-01-01")]
    ).dt.tz_localize(pytz.timezone("Asia/Tokyo")),
    "array": lambda pd, pytz: pd.array(
        pd.date_range("2024", periods=2, tz=pytz.timezone("Asia/Tokyo"))
    ),
    "timestamps": lambda pd, pytz: [
        pd.Timestamp("2020-03-29 03:30:00.123456789", tz=pytz.timezone("Europe/Berlin")),
        pd.Timestamp("2021-10-31 00:30", tz="UTC").tz_convert(pytz.timezone("Europe/Berlin")),
        pd.Timestamp("2021-10-31 01:30", tz="UTC").tz_convert(pytz.timezone("Europe/Berlin")),
        pd.Timestamp("2024-01-01", tz=pytz.FixedOffset(-90)).as_unit("s"),
        pd.Timestamp("2024-01-01", tz=pytz.utc),
    ],
}


@pytest.mark.parametrize("make", PYTZ_PANDAS_VALUES.values(), ids=PYTZ_PANDAS_VALUES.keys())
def test_pandas_values_in_pytz_zones_round_trip_exactly(make: Callable[[Any, Any], Any]) -> None:
    pd = pytest.importorskip("pandas")
    pytz = pytest.importorskip("pytz")
    value = make(pd, pytz)
    back = roundtrip(value)
    # pandas 3 finds a pytz zone's dtype equal to a ZoneInfo's: check the zone objects too.
    assert all(new is old for new, old in zip(_zones(back), _zones(value), strict=True))


def _zones(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [stamp.tzinfo for stamp in value]
    if hasattr(value, "columns"):
        return [*(dtype.tz for dtype in value.dtypes), value.index.tz]
    return [value.dtype.tz]


def test_pytz_and_zoneinfo_zones_of_one_name_each_come_back_as_they_were() -> None:
    pd = pytest.importorskip("pandas")
    pytz = pytest.importorskip("pytz")
    series = [
        pd.Series(pd.date_range("2024", periods=2, tz=zone))
        for zone in (pytz.timezone("Asia/Tokyo"), zoneinfo.ZoneInfo("Asia/Tokyo"))
    ]
    assert str(series[0].dtype) == str(series[1].dtype)  # pandas 2 finds them unequal, 3 not
    for value in series:
        assert roundtrip(value).dtype.tz is value.dtype.tz


PYTZ_REFUSED: dict[str, tuple[Callable[[Any], Any], str]] = {
    "moved without normalize()": (
        lambda pytz: (
            pytz.timezone("Europe/Berlin").localize(datetime(2021, 1, 1)) + timedelta(days=180)
        ),
        "normalize",
    ),
    "an offset object alone": (
        lambda pytz: pytz.timezone("Europe/Berlin").localize(datetime(2021, 7, 1)).tzinfo,
        r"pytz\.timezone\(tz\.zone\)",
    ),
    "a time with an offset object": (
        lambda pytz: time(
            1, tzinfo=pytz.timezone("Europe/Berlin").localize(datetime(2021, 7, 1)).tzinfo
        ),
        r"pytz\.timezone\(tz\.zone\)",
    ),
}


@pytest.mark.parametrize(("make", "reason"), PYTZ_REFUSED.values(), ids=PYTZ_REFUSED.keys())
def test_pytz_values_pytz_cannot_rebuild_are_refused(
    make: Callable[[Any], Any], reason: str
) -> None:
    value = make(pytest.importorskip("pytz"))
    with pytest.raises(SerializationError, match=reason) as info:
        Serializer().dumps([value])
    assert "cannot store result[0]" in str(info.value)


def test_pandas_timestamps_pytz_cannot_rebuild_are_refused() -> None:
    pd = pytest.importorskip("pandas")
    pytz = pytest.importorskip("pytz")
    berlin = pytz.timezone("Europe/Berlin")
    moved = pd.Timestamp(berlin.localize(datetime(2021, 1, 1)) + timedelta(days=180))
    attached = pd.Timestamp(datetime(2021, 7, 1, 12, tzinfo=berlin))
    for stamp in (moved, attached):
        assert stamp.tz_convert(berlin).tzinfo is not stamp.tzinfo  # what makes them unusual
        with pytest.raises(SerializationError, match="normalize"):
            Serializer().dumps(stamp)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(datetime(1850, 1, 1), datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Tokyo"]),
)
def test_generated_pytz_times_round_trip_exactly(instant: datetime, name: str) -> None:
    pytz = pytest.importorskip("pytz")
    local = instant.astimezone(pytz.timezone(name))
    back = roundtrip(local)
    assert back.replace(tzinfo=None) == local.replace(tzinfo=None)


def test_object_column_items_keep_their_types() -> None:
    pd = pytest.importorskip("pandas")
    series = pd.Series([(1, 2), [1, 2], bytearray(b"x"), Decimal("1")], dtype=object)
    back = roundtrip(series)
    assert [type(item) for item in back] == [tuple, list, bytearray, Decimal]


def test_plain_values_load_neither_numpy_pandas_nor_pytz() -> None:
    code = (
        "import sys, beautyspot.serializer as m\n"
        "s = m.Serializer()\n"
        "import datetime as dt\n"
        "s.loads(s.dumps({'a': (1, 2.5), 'b': [None], 'c': dt.datetime.now(dt.timezone.utc)}))\n"
        "print('numpy' in sys.modules, 'pandas' in sys.modules, 'pytz' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SOURCE.parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["False", "False", "False"], out.stderr


# -- registration -----------------------------------------------------------------------------


def test_registered_type_with_bytes_encoder_round_trips() -> None:
    s = Serializer()
    s.register(Model, 10, encoder=lambda m: m.name.encode(), decoder=lambda b: Model(b.decode()))
    roundtrip([Model("a"), {"m": Model("b")}], s)


def test_registered_encoder_may_return_any_storable_value() -> None:
    s = Serializer()
    seen = []

    def decode(value: Any) -> Model:
        seen.append(value)
        return Model(value[0])

    s.register(Model, 3, encoder=lambda m: (m.name, {1: b"x"}), decoder=decode)
    roundtrip(Model("a"), s)
    assert_same(("a", {1: b"x"}), seen[0])


def test_user_codes_do_not_collide_with_library_tags() -> None:
    s = Serializer()
    for code in (0, 1, 2, 127):  # 1 and 2 are the library's tuple and set tags
        cls = type(f"T{code}", (), {"__eq__": lambda a, b: type(a) is type(b)})
        s.register(cls, code, encoder=lambda o: b"", decoder=lambda b, cls=cls: cls())
        roundtrip([cls(), (1,), {2}], s)


@pytest.mark.parametrize("code", [-1, 128, "1", 1.0, True, None])
def test_register_rejects_a_bad_code(code: Any) -> None:
    with pytest.raises(ConfigurationError, match="code"):
        Serializer().register(Model, code, encoder=bytes, decoder=bytes)


def test_register_rejects_duplicates_and_non_classes() -> None:
    s = Serializer()
    s.register(Model, 5, encoder=lambda m: b"", decoder=lambda b: Model(""))
    with pytest.raises(ConfigurationError, match="code 5 is already taken"):
        s.register(Unregistered, 5, encoder=bytes, decoder=bytes)
    with pytest.raises(ConfigurationError, match="already registered"):
        s.register(Model, 6, encoder=bytes, decoder=bytes)
    with pytest.raises(ConfigurationError, match="type_ must be a class"):
        s.register(Model("x"), 7, encoder=bytes, decoder=bytes)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="encoder must be callable"):
        s.register(Unregistered, 8, encoder=None, decoder=bytes)  # type: ignore[arg-type]


@pytest.mark.parametrize("builtin", [int, str, dict, tuple, bytearray, datetime, memoryview])
def test_register_rejects_types_beautyspot_stores_itself(builtin: type) -> None:
    with pytest.raises(ConfigurationError, match="stored by beautyspot itself"):
        Serializer().register(builtin, 1, encoder=bytes, decoder=bytes)


def test_register_rejects_numpy_types() -> None:
    np = pytest.importorskip("numpy")
    with pytest.raises(ConfigurationError, match="stored by beautyspot itself"):
        Serializer().register(np.float32, 1, encoder=bytes, decoder=bytes)


def test_a_subclass_of_a_registered_type_is_not_stored_as_its_parent() -> None:
    s = Serializer()
    s.register(Model, 1, encoder=lambda m: m.name.encode(), decoder=lambda b: Model(b.decode()))
    with pytest.raises(SerializationError, match="SubModel"):
        s.dumps(SubModel("x"))


def test_register_enum_stores_members_by_value() -> None:
    s = Serializer()
    s.register_enum(Color, 1)
    s.register_enum(Perm, 2)
    s.register_enum(Level, 3)
    back = roundtrip([Color.GREEN, Perm.R | Perm.W, Level.LOW, Perm(0)], s)
    assert back[0] is Color.GREEN and back[2] is Level.LOW
    with pytest.raises(ConfigurationError, match="Enum"):
        s.register_enum(Model, 4)  # type: ignore[arg-type]


def test_an_unregistered_enum_is_refused() -> None:
    with pytest.raises(SerializationError, match="register_enum"):
        Serializer().dumps(Level.LOW)


def test_register_dataclass_round_trips_fields_by_name() -> None:
    s = Serializer()
    s.register_dataclass(Point, 1)
    s.register_dataclass(Box, 2)
    point = Point(1, 2.5)
    object.__setattr__(point, "label", "set after init")
    back = roundtrip(Box(point, [Point(3), (bytearray(b"z"),)]), s)
    assert back.inner.label == "set after init"
    assert_same(back.items[1], (bytearray(b"z"),))


def test_register_dataclass_refuses_only_what_is_no_dataclass() -> None:
    @dataclasses.dataclass
    class WithInitVar:
        x: int
        secret: dataclasses.InitVar[str]

    # Decoding no longer calls __init__, so an InitVar it would need is no obstacle.
    s = Serializer()
    s.register_dataclass(WithInitVar, 1)
    assert s.loads(s.dumps(WithInitVar(3, "unused"))) == WithInitVar(3, "unused")
    with pytest.raises(ConfigurationError, match="dataclass"):
        s.register_dataclass(Model, 2)


def test_a_failing_decoder_or_missing_registration_is_a_serialization_error() -> None:
    writer = Serializer()
    writer.register(
        Model, 9, encoder=lambda m: m.name.encode(), decoder=lambda b: Model(b.decode())
    )
    data = writer.dumps(Model("x"))
    with pytest.raises(SerializationError, match="code 9"):
        Serializer().loads(data)
    broken = Serializer()
    broken.register(Model, 9, encoder=bytes, decoder=lambda b: 1 / 0)
    with pytest.raises(SerializationError, match="decoder registered for") as info:
        broken.loads(data)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_failing_encoder_is_a_serialization_error_with_its_cause() -> None:
    s = Serializer()
    s.register(Model, 1, encoder=lambda m: 1 / 0, decoder=bytes)
    with pytest.raises(SerializationError, match=r"result\[0\]") as info:
        s.dumps([Model("x")])
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_encoders_and_decoders_may_use_the_serializer_again() -> None:
    s = Serializer()
    s.register(Model, 1, encoder=lambda m: s.dumps((m.name,)), decoder=lambda b: Model(*s.loads(b)))
    roundtrip([Model("a"), (Model("b"),)], s)


# -- what cannot be stored --------------------------------------------------------------------


def test_unsupported_value_error_names_type_path_and_register_type() -> None:
    value = [1, 2, {"x": Unregistered()}]
    with pytest.raises(SerializationError) as info:
        Serializer().dumps(value)
    message = str(info.value)
    assert "result[2]['x']" in message
    assert f"{Unregistered.__module__}.Unregistered" in message
    assert "spot.register_type(" in message
    assert info.value.result is value


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (Unregistered(), "result "),
        ((1, (2, Unregistered())), "result[1][1]"),
        ({(1, Unregistered()): 1}, "result.keys()[0][1]"),
        ({frozenset({Unregistered()})}, "result{…}{…}"),
        ([lambda: 1], "result[0]"),
        ({"a": collections.OrderedDict()}, "result['a']"),
        ([1, memoryview(b"x")], "result[1]"),
        ({"e": msgpack.ExtType(1, b"")}, "result['e']"),
        ((msgpack.ExtType(5, b"abc"),), "result[0]"),
        ([datetime(2020, 1, 1, tzinfo=type("MyTz", (tzinfo,), {})())], "result[0]"),
        ([zoneinfo.ZoneInfo.no_cache("UTC"), time(tzinfo=type("T", (tzinfo,), {})())], "[1]"),
    ],
)
def test_unstorable_values_are_refused_with_their_path(value: Any, where: str) -> None:
    with pytest.raises(SerializationError, match="cannot store") as info:
        Serializer().dumps(value)
    assert where in str(info.value)


def test_a_zoneinfo_without_a_key_is_refused() -> None:
    tzdata = pytest.importorskip("tzdata")
    with (Path(tzdata.__file__).parent / "zoneinfo" / "UTC").open("rb") as tzfile:
        tz = zoneinfo.ZoneInfo.from_file(tzfile)
    with pytest.raises(SerializationError, match="ZoneInfo"):
        Serializer().dumps(datetime(2020, 1, 1, tzinfo=tz))


def test_numpy_object_arrays_and_unknown_pandas_dtypes_are_refused() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    with pytest.raises(SerializationError, match=r"result\['a'\].*object"):
        Serializer().dumps({"a": np.array([1, None], dtype=object)})
    frame = pd.DataFrame({"p": pd.period_range("2020", periods=2, freq="M")})
    with pytest.raises(SerializationError, match="column 'p' has dtype period"):
        Serializer().dumps(frame)
    with pytest.raises(SerializationError, match="Unregistered"):
        Serializer().dumps(pd.Series([Unregistered()], dtype=object))


def test_deep_or_cyclic_values_are_refused() -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for value in (deep, cyclic, (cyclic,)):
        with pytest.raises(SerializationError, match="nested too deeply"):
            Serializer().dumps(value)


# -- what msgpack packs without asking: bytearray, memoryview, ExtType ----------------------

#: Neighbours that send dumps down each of its ways of looking for those: a small output is
#: scanned first; a large one of few objects is walked first; a large one of many objects is
#: scanned first, then walked if the scan finds a header it cannot account for.
NEIGHBOURS = {
    "none": None,
    "large bytes": b"\xc4\xc7\xd4" * 2000,
    "many small ints": [7] * 5000,
    "many noisy floats": [i + 0.123 for i in range(3000)],
}


def beside(neighbour: Any, value: Any) -> Any:
    return value if neighbour is None else {"pad": neighbour, "value": value}


HOLDERS_OF_BYTEARRAYS: dict[str, Any] = {
    "alone": bytearray(b"\xc4"),
    "in a list": [1, bytearray(b"a")],
    "as a dict value": {"k": bytearray(b"a")},
    "deep in lists and dicts": [{"a": [[{"b": bytearray(b"\xd4")}]]}],
    "in a tuple in a list": [(bytearray(b"t"),)],
    "in a list in a tuple in a dict": {"s": (1, [bytearray()])},
}


@pytest.mark.parametrize("neighbour", NEIGHBOURS.values(), ids=NEIGHBOURS.keys())
@pytest.mark.parametrize("value", HOLDERS_OF_BYTEARRAYS.values(), ids=HOLDERS_OF_BYTEARRAYS.keys())
def test_bytearrays_come_back_as_bytearrays_at_any_size(neighbour: Any, value: Any) -> None:
    roundtrip(beside(neighbour, value))


@pytest.mark.parametrize("neighbour", NEIGHBOURS.values(), ids=NEIGHBOURS.keys())
def test_a_bytearray_a_registered_encoder_returns_comes_back(neighbour: Any) -> None:
    s = Serializer()
    s.register(Model, 7, encoder=lambda m: [bytearray(m.name.encode())], decoder=list)
    back = s.loads(s.dumps(beside(neighbour, Model("n"))))
    assert_same(beside(neighbour, [bytearray(b"n")]), back)


IMPOSTORS: dict[str, Any] = {
    "memoryview": [memoryview(b"x")],
    "memoryview as a key": {"a": 1, memoryview(b"k"): 2},
    "ExtType": {"e": msgpack.ExtType(1, b"")},
    "ExtType as a key": {msgpack.ExtType(3, b"x"): 1},
    "ExtType in a tuple": (msgpack.ExtType(5, b"abc"),),
    "memoryview deep": [{"a": [[{"b": memoryview(b"\xd4")}]]}],
    "memoryview beside a bytearray": [bytearray(b"a"), memoryview(b"b")],
}


@pytest.mark.parametrize("neighbour", NEIGHBOURS.values(), ids=NEIGHBOURS.keys())
@pytest.mark.parametrize("value", IMPOSTORS.values(), ids=IMPOSTORS.keys())
def test_memoryviews_and_ext_types_are_refused_at_any_size(neighbour: Any, value: Any) -> None:
    refused = r"cannot store .*\((memoryview|msgpack\.ext\.ExtType)\)"
    with pytest.raises(SerializationError, match=refused):
        Serializer().dumps(beside(neighbour, value))


@pytest.mark.parametrize("neighbour", NEIGHBOURS.values(), ids=NEIGHBOURS.keys())
def test_a_memoryview_a_registered_encoder_returns_is_refused(neighbour: Any) -> None:
    s = Serializer()
    s.register(Model, 7, encoder=lambda m: {"v": memoryview(m.name.encode())}, decoder=dict)
    with pytest.raises(SerializationError, match="memoryview"):
        s.dumps(beside(neighbour, [Model("n")]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(NEIGHBOURS.values())), st.deferred(lambda: VALUES))
def test_generated_values_round_trip_exactly_beside_large_data(neighbour: Any, value: Any) -> None:
    roundtrip(beside(neighbour, value))


def test_storing_a_large_value_leaves_no_garbage_cycle_behind() -> None:
    # A packer's buffer is as large as the output; a cycle would keep it until the next gc run.
    s = Serializer()
    gc.disable()
    try:
        gc.collect()
        s.dumps(b"x" * (3 << 20))
        assert gc.collect() == 0
    finally:
        gc.enable()


# -- annotations ------------------------------------------------------------------------------

T = TypeVar("T")
UserId = NewType("UserId", int)
BadId = NewType("BadId", Unregistered)


def annotation_serializer() -> Serializer:
    s = Serializer()
    s.register(Model, 1, encoder=bytes, decoder=bytes)
    s.register_enum(Color, 2)
    return s


@pytest.mark.parametrize(
    "annotation",
    [
        int, str, bytes, None, type(None), list[int], dict[str, tuple[int, ...]], Optional[int],  # noqa: UP045
        int | None, Any, object, T, "Unregistered", typing.ForwardRef("X"), Model, list[Model],
        abc.Sequence[int], abc.Iterator[Unregistered], abc.Callable[[], int], enum.Enum,
        Literal["a", 1, Color.RED], Annotated[int, "meta"], UserId, Decimal, datetime, tzinfo,
        frozenset[uuid.UUID], inspect.Signature.empty, typing.Hashable,
    ],
)  # fmt: skip
def test_check_annotation_accepts_what_may_be_stored(annotation: Any) -> None:
    assert annotation_serializer().check_annotation(annotation) is None


@pytest.mark.parametrize(
    "annotation",
    [
        Unregistered, list[Unregistered], Optional[Unregistered], Unregistered | None,  # noqa: UP045
        dict[str, Unregistered], dict[Unregistered, int], tuple[int, Unregistered],
        Annotated[Unregistered, "x"], Literal[Level.LOW], BadId, SubModel, type[int], Point,
        abc.Mapping[str, list[SubModel]], typing.List[Unregistered],  # noqa: UP006
    ],
)  # fmt: skip
def test_check_annotation_reports_types_that_cannot_be_stored(annotation: Any) -> None:
    reason = annotation_serializer().check_annotation(annotation)
    assert reason is not None
    assert "register_type" in reason


def test_check_annotation_names_the_offending_type() -> None:
    reason = Serializer().check_annotation(dict[str, list[Unregistered]])
    assert reason is not None and f"{Unregistered.__module__}.Unregistered" in reason


def test_check_annotation_knows_numpy_and_pandas() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    s = Serializer()
    for annotation in (np.ndarray, np.float32, pd.DataFrame, pd.Series, list[pd.Index]):
        assert s.check_annotation(annotation) is None
    assert s.check_annotation(np.matrix) is not None


# -- generated values -------------------------------------------------------------------------

HASHABLE_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.decimals(allow_nan=False),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.dates(),
    st.times(timezones=st.none() | st.just(timezone(timedelta(hours=-2), "X"))),
    st.timedeltas(),
    st.uuids(),
)
HASHABLES = st.recursive(
    HASHABLE_LEAVES,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
VALUES = st.recursive(
    HASHABLE_LEAVES | st.floats() | st.decimals() | st.binary().map(bytearray),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.sets(HASHABLES, max_size=4),
        st.frozensets(HASHABLES, max_size=4),
        st.dictionaries(HASHABLES, inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_generated_values_round_trip_exactly(value: Any) -> None:
    roundtrip(value)


# -- hostile bytes ----------------------------------------------------------------------------


def _rich_value() -> Any:
    return {
        "t": (1, -(2**70), [Decimal("1.5"), uuid.UUID(int=1)]),
        "s": frozenset({b"x", 2.5}),
        7: [datetime(2021, 10, 31, 2, 30, tzinfo=BERLIN, fold=1), date(2020, 1, 1)],
        "b": bytearray(b"\xc4"),
        "d": {timedelta(1): time(1, tzinfo=timezone(timedelta(hours=1), "X"))},
    }


def _load_or_refuse(data: bytes) -> None:
    with contextlib.suppress(SerializationError):
        Serializer().loads(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_serialization_error(data: bytes) -> None:
    _load_or_refuse(data)
    _load_or_refuse(bytes([FORMAT_VERSION]) + data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_valid_bytes_only_ever_raise_serialization_error(data: st.DataObject) -> None:
    valid = bytearray(Serializer().dumps(_rich_value()))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(1, len(valid) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip":
            valid[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            valid.insert(at, data.draw(st.integers(0, 255)))
        else:
            del valid[at]
    _load_or_refuse(bytes(valid))


def test_every_truncation_of_a_valid_output_is_refused() -> None:
    data = Serializer().dumps(_rich_value())
    for end in range(len(data)):
        with pytest.raises(SerializationError):
            Serializer().loads(data[:end])


def tagged(*items: Any) -> bytes:
    """Bytes as the format lays them out: version, then msgpack with our ExtType heads."""
    return bytes([FORMAT_VERSION]) + msgpack.packb(list(items), use_bin_type=True)


def head(tag: int) -> msgpack.ExtType:
    return msgpack.ExtType(tag, b"")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x02\xc0", id="unknown version"),
        pytest.param(b"\x01\xdd\xff\xff\xff\xff", id="array claims 4G items"),
        pytest.param(b"\x01\xc6\xff\xff\xff\xff", id="bin claims 4 GiB"),
        pytest.param(b"\x01\xc0\xc0", id="trailing data"),
        pytest.param(b"\x01" + b"\x91" * 100_000 + b"\xc0", id="deep arrays"),
        pytest.param(tagged(head(4), 10**12), id="bytearray of a size"),
        pytest.param(tagged(head(5), 10**12), id="bigint of an int"),
        pytest.param(tagged(head(32), "<f8", [10**12], False, b"x" * 8), id="huge shape"),
        pytest.param(tagged(head(32), "S", [10**12], False, b""), id="zero itemsize"),
        pytest.param(tagged(head(32), "O", [1], False, b"x" * 8), id="object dtype"),
        pytest.param(tagged(head(32), ["<f8", [10**9, 10**9]], [1], False, b""), id="subarray"),
        pytest.param(tagged(head(32), "<f8", [-1], False, b""), id="negative shape"),
        pytest.param(tagged(head(33), "<f8", b"x"), id="scalar short data"),
        pytest.param(b"\x01" + msgpack.packb({"a": head(1)}), id="stray head"),
        pytest.param(tagged(1, head(1), 2), id="head not first"),
        pytest.param(b"\x01" + msgpack.packb(head(1)), id="bare head"),
        pytest.param(tagged(msgpack.ExtType(1, b"data")), id="head with data"),
        pytest.param(tagged(msgpack.ExtType(99, b"")), id="unknown tag"),
        pytest.param(b"\x01\x91\xc7\x00\xfb", id="negative tag"),
        pytest.param(tagged(head(8), 2020, 13, 1, 0, 0, 0, 0, 0, None), id="month 13"),
        pytest.param(tagged(head(13), "../../etc/passwd"), id="zone key path"),
        pytest.param(tagged(head(14), "../../etc/passwd"), id="pytz zone path"),
        pytest.param(tagged(head(14), "europe/berlin"), id="pytz zone spelt otherwise"),
        pytest.param(tagged(head(14), "Nowhere/Zone"), id="pytz zone unknown"),
        pytest.param(tagged(head(14), 1440), id="pytz offset of a day"),
        pytest.param(tagged(head(14), 5.5), id="pytz offset not an int"),
        pytest.param(
            tagged(
                head(8),
                2021,
                7,
                1,
                12,
                0,
                0,
                0,
                0,
                [head(14), "Europe/Berlin"],
                [head(11), 0, 3600, 0],
                [head(11), 0, 0, 0],
                "CET",
            ),
            id="pytz offset the zone does not give",
        ),
        pytest.param(
            tagged(
                head(8),
                2021,
                7,
                1,
                12,
                0,
                0,
                0,
                0,
                [head(13), "Europe/Berlin"],
                [head(11), 0, 7200, 0],
                [head(11), 0, 3600, 0],
                "CEST",
            ),
            id="pytz offset in a ZoneInfo",
        ),
        pytest.param(
            tagged(head(54), "Timestamp", [head(33), "<M8[ns]", bytes(8)], "Europe/Berlin"),
            id="pandas zone as text",
        ),
        pytest.param(tagged(head(33), "<M8[0s]", bytes(8)), id="datetime unit of 0 seconds"),
        pytest.param(
            tagged(head(48), "datetime", [head(32), "<M8[0s]", [1], False, bytes(8)], None),
            id="pandas datetimes in units of 0 seconds",
        ),
        pytest.param(tagged(head(6), "1E+999999999999999999999"), id="decimal exponent"),
        pytest.param(tagged(head(2), [1], [2]), id="set of lists"),
        pytest.param(tagged(head(0), 200, b""), id="user code never registered"),
        pytest.param(b"\x01\x81\x91\x01\x02", id="list as a map key"),
        pytest.param(tagged(head(48), "masked", "category", [], []), id="bad pandas kind"),
        pytest.param(tagged(head(50), 0, 10**18, 1, None, "extra"), id="range index extra"),
    ],
)
def test_crafted_bytes_are_refused_without_allocating(data: bytes) -> None:
    with pytest.raises(SerializationError):
        Serializer().loads(data)


def test_deeply_nested_tags_are_refused() -> None:
    data = b"\x01" + b"\x92\xc7\x00\x01" * 100_000 + b"\xc0"
    with pytest.raises(SerializationError):
        Serializer().loads(data)


def test_loads_accepts_bytes_like_and_refuses_other_types() -> None:
    s = Serializer()
    data = s.dumps((1, "x"))
    assert s.loads(bytearray(data)) == s.loads(memoryview(data)) == (1, "x")
    with pytest.raises(SerializationError, match="expects bytes"):
        s.loads("text")  # type: ignore[arg-type]


# -- no pickle, pinned format, concurrency ----------------------------------------------------


def test_round_trips_never_touch_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pickle was used")

    for name in ("dumps", "loads", "dump", "load", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    for value in PLAIN_VALUES.values():
        roundtrip(value)
    for make in NUMPY_VALUES.values():
        roundtrip(make(np))
    for make_frame in PANDAS_VALUES.values():
        roundtrip(make_frame(pd, np))
    pytz = pytest.importorskip("pytz")
    for make_pytz in PYTZ_VALUES.values():
        roundtrip(make_pytz(pytz))
    for make_pandas in PYTZ_PANDAS_VALUES.values():
        roundtrip(make_pandas(pd, pytz))


def test_source_has_no_pickle_eval_or_dynamic_import() -> None:
    modules = sorted(SOURCE.glob("*.py"))
    assert modules  # the scan sees the serializer package, not an empty folder
    banned_modules = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "importlib", "copyreg"}
    for node in (node for path in modules for node in ast.walk(ast.parse(path.read_text()))):
        if isinstance(node, ast.Import):
            assert not {alias.name.partition(".")[0] for alias in node.names} & banned_modules
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").partition(".")[0] not in banned_modules
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"eval", "exec", "__import__", "compile"}


PINNED = [
    (None, b"\x01\xc0"),
    ({"a": 1}, b"\x01\x81\xa1a\x01"),
    ((1, "x"), b"\x01\x93\xc7\x00\x01\x01\xa1x"),
    ({3}, b"\x01\x92\xc7\x00\x02\x03"),
    (2**64, b"\x01\x92\xc7\x00\x05\xc4\x09\x01" + bytes(8)),
    (bytearray(b"ab"), b"\x01\x92\xc7\x00\x04\xc4\x02ab"),
    (Decimal("-1.50"), b"\x01\x92\xc7\x00\x06\xa5-1.50"),
    (date(2020, 1, 2), b"\x01\x94\xc7\x00\x09\xcd\x07\xe4\x01\x02"),
    (
        datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc),
        b"\x01\x9a\xc7\x00\x08\xcd\x07\xe4\x01\x02\x03\x04\x05\x06\x00"
        b"\x92\xc7\x00\x0c\x94\xc7\x00\x0b\x00\x00\x00",
    ),
    (BERLIN, b"\x01\x92\xc7\x00\x0d\xadEurope/Berlin"),
]


def test_pinned_pytz_encodings() -> None:
    pytz = pytest.importorskip("pytz")
    berlin = pytz.timezone("Europe/Berlin")
    pinned = [
        (berlin, b"\x01\x92\xc7\x00\x0e\xadEurope/Berlin"),
        (pytz.FixedOffset(-90), b"\x01\x92\xc7\x00\x0e\xd0\xa6"),
        (
            berlin.localize(datetime(2021, 10, 31, 2, 30), is_dst=True),
            tagged(head(8), 2021, 10, 31, 2, 30, 0, 0, 0, [head(14), "Europe/Berlin"],
                   [head(11), 0, 7200, 0], [head(11), 0, 3600, 0], "CEST"),
        ),
    ]  # fmt: skip
    s = Serializer()
    for value, encoded in pinned:
        assert s.dumps(value) == encoded
        assert_same(value, s.loads(encoded))


@pytest.mark.parametrize(("value", "encoded"), PINNED, ids=[repr(v) for v, _ in PINNED])
def test_pinned_encodings_do_not_change(value: Any, encoded: bytes) -> None:
    s = Serializer()
    assert s.dumps(value) == encoded
    assert_same(value, s.loads(encoded))


def test_pinned_user_type_and_numpy_encodings() -> None:
    s = Serializer()
    s.register(Model, 5, encoder=lambda m: m.name.encode(), decoder=lambda b: Model(b.decode()))
    assert s.dumps(Model("hi")) == b"\x01\x93\xc7\x00\x00\x05\xc4\x02hi"
    np = pytest.importorskip("numpy")
    encoded = b"\x01\x95\xc7\x00\x20\xa3<i2\x91\x03\xc2\xc4\x06\x00\x00\x01\x00\x02\x00"
    assert s.dumps(np.arange(3, dtype="<i2")) == encoded
    assert_same(np.arange(3, dtype="<i2"), s.loads(encoded))


def test_one_packer_is_reused_across_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    created = []
    real_packer = msgpack.Packer

    def counting_packer(*args: Any, **kwargs: Any) -> Any:
        created.append(1)
        return real_packer(*args, **kwargs)

    monkeypatch.setattr(msgpack, "Packer", counting_packer)
    s = Serializer()
    for i in range(50):
        s.loads(s.dumps({"i": i, "t": (i,)}))
    assert len(created) == 1


def test_threads_share_one_serializer_safely() -> None:
    s = Serializer()
    s.register(
        Model, 1, encoder=lambda m: (m.name, threading.get_ident()), decoder=lambda v: Model(v[0])
    )
    values = [{"n": n, "t": (n, Model(str(n))), "b": bytearray(n % 7)} for n in range(300)]

    def check(value: Any) -> None:
        assert_same(value, s.loads(s.dumps(value)))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, values * 4))
