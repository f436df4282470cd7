"""Cache keys: exact, stable, order-free where it should be, and loud about what they cannot key."""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime as dt
import enum
import functools
import json
import math
import os
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import uuid
import zoneinfo
from decimal import Decimal
from pathlib import Path, PosixPath, PurePosixPath, PureWindowsPath
from types import MappingProxyType
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import beautyspot
from beautyspot.cachekey import (
    KeyGen,
    KeyPlan,
    cache_key,
    canonical_bytes,
    function_id,
    input_id,
)
from beautyspot.errors import CacheKeyError, ConfigurationError

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

PACKAGE_ROOT = str(Path(beautyspot.__file__).resolve().parent.parent)
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


class Color(enum.Enum):
    RED = 1


class Shade(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    ONE = 1


@dataclasses.dataclass
class Point:
    x: Any
    y: Any = 0


@dataclasses.dataclass
class Vector:
    x: Any
    y: Any = 0


class Pair(NamedTuple):
    a: Any
    b: Any


class FakeModel:
    """Has a ``model_dump`` but is no pydantic model: keyed by its state, like any object."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def model_dump(self) -> dict[str, Any]:
        return dict(self.fields)


# Has no value beyond its address. (An instance of a class defined in Python is keyed by its
# state: one without any is keyed by its class.)
Opaque = object


class Comparable:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Comparable)

    __hash__ = object.__hash__


class MyDict(dict):
    pass


class MyDefaultDict(collections.defaultdict):  # keeps its default_factory in C
    pass


def _nan(payload: int) -> float:
    return struct.unpack(">d", struct.pack(">Q", 0x7FF0000000000000 | payload))[0]


# -- equal inputs, equal keys -----------------------------------------------------------------

EQUAL_FACTORIES = {
    "int": lambda: 12345678901234567890123,
    "negative-int": lambda: -(2**70),
    "float": lambda: 0.1 + 0.2,
    "str": lambda: "naïve ☕ \ud800",
    "long-bytes": lambda: b"x" * 5000,
    "nested": lambda: {"a": [1, (2.5, None)], "b": {"c": b"d", "e": frozenset({1, 2})}},
    "datetime": lambda: dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=TOKYO),
    "time": lambda: dt.time(1, 2, 3, tzinfo=dt.timezone.utc),
    "decimal": lambda: Decimal("1.50"),
    "uuid": lambda: uuid.UUID("12345678123456781234567812345678"),
    "path": lambda: Path("data/in.csv"),
    "dataclass": lambda: Point([1, 2], {"k": "v"}),
    "model": lambda: FakeModel(name="a", tags=["x"]),
    "enum": lambda: Color.RED,
    "class": lambda: Point,
    "stateless-object": lambda: Comparable(),
    "dict-subclass": lambda: MyDict(a=1),
    "namedtuple": lambda: Pair(1, "b"),
    "deque": lambda: collections.deque([1, 2], maxlen=5),
    "defaultdict": lambda: collections.defaultdict(list, {"a": [1]}),
    "numpy": lambda: np.arange(12, dtype=np.int32).reshape(3, 4),
    "numpy-object": lambda: np.array([1, "a", None], dtype=object),
    "numpy-scalar": lambda: np.float32(1.5),
    "dataframe": lambda: pd.DataFrame({"a": [1, 2], "b": ["x", None]}, index=["r", "s"]),
    "series-nullable": lambda: pd.Series([1, None], dtype="Int64", name="n"),
    "series-tz": lambda: pd.Series(pd.date_range("2024-01-01", periods=2, tz="Asia/Tokyo")),
    "categorical": lambda: pd.Series(["a", "b", "a"], dtype="category"),
    "multiindex": lambda: pd.MultiIndex.from_tuples([(1, "a"), (2, "b")], names=["n", "s"]),
}


@pytest.mark.parametrize("make", EQUAL_FACTORIES.values(), ids=EQUAL_FACTORIES.keys())
def test_equal_inputs_give_equal_keys(make: Any) -> None:
    assert canonical_bytes(make()) == canonical_bytes(make())
    assert input_id({"v": make()}) == input_id({"v": make()})


def test_every_nan_is_onecanonical_bytes() -> None:
    nans = [float("nan"), -float("nan"), _nan(1), _nan(0x8000000000001)]
    assert all(math.isnan(value) for value in nans)
    assert len({canonical_bytes(value) for value in nans}) == 1


def test_fortran_and_strided_arrays_key_by_their_values() -> None:
    array = np.arange(24, dtype=np.float64).reshape(4, 6)
    assert canonical_bytes(np.asfortranarray(array)) == canonical_bytes(array)
    assert canonical_bytes(array[:, ::2]) == canonical_bytes(np.ascontiguousarray(array[:, ::2]))


# -- each distinction gives a different key ---------------------------------------------------

DISTINCT_PAIRS = {
    "int-float": (1, 1.0),
    "int-bool": (1, True),
    "int-str": (1, "1"),
    "str-bytes": ("1", b"1"),
    "bytes-bytearray": (b"1", bytearray(b"1")),
    "list-tuple": ([1], (1,)),
    "zero-signs": (0.0, -0.0),
    "set-frozenset": ({1}, frozenset({1})),
    "dict-set": ({}, set()),
    "dict-pairs": ({"a": 1}, [("a", 1)]),
    "none-zero": (None, 0),
    "none-empty-str": (None, ""),
    "empty-list-tuple": ([], ()),
    "nesting": ([[1], [2]], [[1, 2]]),
    "split-lists": (([1, 2], []), ([1], [2])),
    "split-strings": (("ab", "c"), ("a", "bc")),
    "big-int-sign": (2**64, -(2**64)),
    "big-ints": (2**200, 2**200 + 1),
    "long-bytes-last-byte": (b"x" * 5000 + b"a", b"x" * 5000 + b"b"),
    "surrogates": ("\ud83d\ude00", "😀"),
    "lone-surrogate-replaced": ("\ud800", "?"),
    "lone-surrogate-dropped": ("\ud800", ""),
    "nan-inf": (float("nan"), float("inf")),
    "complex-float": (complex(1, 0), 1.0),
    "range-tuple": (range(3), (0, 1, 2)),
    "range-step": (range(0, 4), range(0, 4, 2)),
    "path-str": (Path("a"), "a"),
    "pure-concrete-path": (PurePosixPath("a"), PosixPath("a")),
    "posix-windows-path": (PurePosixPath("a"), PureWindowsPath("a")),
    "naive-aware": (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)),
    "same-instant-other-zone": (
        dt.datetime(2024, 1, 1, 9, tzinfo=TOKYO),
        dt.datetime(2024, 1, 1, 0, tzinfo=dt.timezone.utc),
    ),
    "zone-vs-fixed-offset": (
        dt.datetime(2024, 1, 1, tzinfo=TOKYO),
        dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=9))),
    ),
    "named-offset": (dt.timezone(dt.timedelta(hours=9)), dt.timezone(dt.timedelta(hours=9), "JST")),
    "fold": (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, fold=1)),
    "date-datetime": (dt.date(2024, 1, 1), dt.datetime(2024, 1, 1)),
    "time-microsecond": (dt.time(1), dt.time(1, microsecond=1)),
    "timedelta": (dt.timedelta(days=1), dt.timedelta(seconds=86399)),
    "decimal-precision": (Decimal("1.0"), Decimal("1.00")),
    "decimal-int": (Decimal(1), 1),
    "uuid-bytes": (uuid.UUID(int=1), uuid.UUID(int=1).bytes),
    "enum-value": (Color.RED, 1),
    "enum-classes": (Color.RED, Shade.RED),
    "intenum-int": (Level.ONE, 1),
    "dataclass-classes": (Point(1, 2), Vector(1, 2)),
    "dataclass-fields": (Point(1, 2), Point(1, 3)),
    "dataclass-tuple": (Point(1, 2), (1, 2)),
    "dict-subclass-dict": (MyDict(a=1), {"a": 1}),
    "model-fields": (FakeModel(a=1), FakeModel(a=2)),
    "model-dict": (FakeModel(a=1), {"a": 1}),
    "class-name": (int, "builtins.int"),
    "classes": (Point, Vector),
    "namedtuple-tuple": (Pair(1, 2), (1, 2)),
    "ordereddict-order": (
        collections.OrderedDict([("a", 1), ("b", 2)]),
        collections.OrderedDict([("b", 2), ("a", 1)]),
    ),
    "ordereddict-dict": (collections.OrderedDict(a=1), {"a": 1}),
    "counter-dict": (collections.Counter(a=1), {"a": 1}),
    "defaultdict-factory": (
        collections.defaultdict(int, {"a": 1}),
        collections.defaultdict(float, {"a": 1}),
    ),
    "deque-list": (collections.deque([1]), [1]),
    "deque-maxlen": (collections.deque([1]), collections.deque([1], maxlen=3)),
    "numpy-int64-int": (np.int64(1), 1),
    "numpy-int-widths": (np.int64(1), np.int32(1)),
    "numpy-float-float": (np.float64(1.0), 1.0),
    "numpy-str-str": (np.str_("a"), "a"),
    "array-dtype": (np.arange(3, dtype=np.int64), np.arange(3, dtype=np.int32)),
    "array-shape": (np.zeros((2, 2)), np.zeros(4)),
    "array-values": (np.array([1.0, 2.0]), np.array([1.0, 2.5])),
    "array-list": (np.array([1, 2]), [1, 2]),
    "array-byte-order": (np.arange(3, dtype="<i4"), np.arange(3, dtype=">i4")),
    "array-time-unit": (np.array([1], dtype="M8[s]"), np.array([1], dtype="M8[ms]")),
    "array-structured-names": (
        np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
        np.zeros(2, dtype=[("c", "<i4"), ("b", "<f8")]),
    ),
    "array-object-elements": (np.array([1, "a"], dtype=object), np.array([1, "b"], dtype=object)),
    "array-large-one-element": (np.zeros(10_000), np.concatenate([np.zeros(9_999), [1.0]])),
    "numpy-dtypes": (np.dtype("<i8"), np.dtype("<i4")),
    "frame-values": (pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [1, 3]})),
    "frame-column-names": (pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"b": [1, 2]})),
    "frame-column-order": (
        pd.DataFrame({"a": [1], "b": [2]}),
        pd.DataFrame({"b": [2], "a": [1]}),
    ),
    "frame-index": (pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [1, 2]}, index=[5, 6])),
    "frame-dtypes": (pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [1.0, 2.0]})),
    "series-name": (pd.Series([1], name="a"), pd.Series([1], name="b")),
    "series-frame": (pd.Series([1], name="a"), pd.DataFrame({"a": [1]})),
    "series-nullable-float": (
        pd.Series([1, None], dtype="Int64"),
        pd.Series([1, None], dtype="float64"),
    ),
    "series-missing-position": (
        pd.Series([1, None], dtype="Int64"),
        pd.Series([None, 1], dtype="Int64"),
    ),
    "series-tz": (
        pd.Series(pd.date_range("2024", periods=1, tz="UTC")),
        pd.Series(pd.date_range("2024", periods=1, tz="Asia/Tokyo")),
    ),
    "categories": (
        pd.Series(["a"], dtype=pd.CategoricalDtype(["a", "b"])),
        pd.Series(["a"], dtype=pd.CategoricalDtype(["a", "c"])),
    ),
    "category-order": (
        pd.Series(["a"], dtype=pd.CategoricalDtype(["a", "b"], ordered=True)),
        pd.Series(["a"], dtype=pd.CategoricalDtype(["a", "b"])),
    ),
    "index-names": (pd.Index([1], name="a"), pd.Index([1], name="b")),
    "timestamp-nanosecond": (pd.Timestamp(1), pd.Timestamp(2)),
    "timestamp-datetime": (pd.Timestamp("2024-01-01"), dt.datetime(2024, 1, 1)),
    "timedelta-pandas-std": (pd.Timedelta(seconds=1), dt.timedelta(seconds=1)),
    "nat-na": (pd.NaT, pd.NA),
    "series-tz-unit": (
        pd.Series(pd.date_range("2024", periods=1, tz=TOKYO)),
        pd.Series(pd.date_range("2024", periods=1, tz=TOKYO)).dt.as_unit("s"),
    ),
    # Both dtypes are named "datetime64[ns, Asia/Tokyo]"; with no values, only the zone differs.
    "series-tz-empty-zone-vs-named-offset": (
        pd.Series([], dtype=pd.DatetimeTZDtype("ns", TOKYO)),
        pd.Series(
            [], dtype=pd.DatetimeTZDtype("ns", dt.timezone(dt.timedelta(hours=9), "Asia/Tokyo"))
        ),
    ),
    "series-tz-missing-zone-vs-named-offset": (
        pd.Series([pd.NaT], dtype=pd.DatetimeTZDtype("ns", TOKYO)),
        pd.Series(
            [pd.NaT],
            dtype=pd.DatetimeTZDtype("ns", dt.timezone(dt.timedelta(hours=9), "Asia/Tokyo")),
        ),
    ),
}


@pytest.mark.parametrize(("a", "b"), DISTINCT_PAIRS.values(), ids=DISTINCT_PAIRS.keys())
def test_distinct_inputs_give_distinct_keys(a: Any, b: Any) -> None:
    assert canonical_bytes(a) != canonical_bytes(b)
    assert input_id({"v": a}) != input_id({"v": b})


# -- pytz time zones (pandas 2 gives string time zones as pytz zones) --------------------------


def _berlin(pytz: Any, *wall: int, is_dst: bool = False) -> dt.datetime:
    return pytz.timezone("Europe/Berlin").localize(dt.datetime(*wall), is_dst=is_dst)


PYTZ_EQUAL_FACTORIES = {
    "zone": lambda pytz: pytz.timezone("Europe/Berlin"),
    "utc": lambda pytz: pytz.utc,
    "fixed-offset": lambda pytz: pytz.FixedOffset(-90),
    "offset-object": lambda pytz: _berlin(pytz, 2021, 7, 1).tzinfo,
    "datetime": lambda pytz: _berlin(pytz, 2021, 10, 31, 2, 30),
    "time": lambda pytz: dt.time(1, 2, tzinfo=pytz.timezone("Europe/Berlin")),
    "timestamp": lambda pytz: pd.Timestamp("2021-07-01 12:00", tz=pytz.timezone("Europe/Berlin")),
    "series": lambda pytz: pd.Series(
        pd.date_range("2024-01-01", periods=2, tz=pytz.timezone("Asia/Tokyo"))
    ),
    "frame": lambda pytz: pd.DataFrame(
        {"t": pd.date_range("2024", periods=2, tz=pytz.FixedOffset(330))},
        index=pd.date_range("2024", periods=2, freq="h", tz=pytz.timezone("Europe/Berlin")),
    ),
}


@pytest.mark.parametrize("make", PYTZ_EQUAL_FACTORIES.values(), ids=PYTZ_EQUAL_FACTORIES.keys())
def test_equal_pytz_inputs_give_equal_keys(make: Any) -> None:
    pytz = pytest.importorskip("pytz")
    assert canonical_bytes(make(pytz)) == canonical_bytes(make(pytz))
    assert input_id({"v": make(pytz)}) == input_id({"v": make(pytz)})


PYTZ_DISTINCT_PAIRS = {
    "pytz-zoneinfo-datetime": lambda pytz: (
        _berlin(pytz, 2021, 7, 1),
        dt.datetime(2021, 7, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
    ),
    "pytz-zoneinfo-zone": lambda pytz: (pytz.timezone("Asia/Tokyo"), TOKYO),
    "pytz-zoneinfo-series": lambda pytz: (
        pd.Series(pd.date_range("2024", periods=2, tz=pytz.timezone("Asia/Tokyo"))),
        pd.Series(pd.date_range("2024", periods=2, tz=TOKYO)),
    ),
    "pytz-zoneinfo-empty-series": lambda pytz: (
        pd.Series([], dtype=pd.DatetimeTZDtype("ns", pytz.timezone("Asia/Tokyo"))),
        pd.Series([], dtype=pd.DatetimeTZDtype("ns", TOKYO)),
    ),
    "pytz-zoneinfo-timestamp": lambda pytz: (
        pd.Timestamp("2024-01-01", tz=pytz.timezone("Asia/Tokyo")),
        pd.Timestamp("2024-01-01", tz=TOKYO),
    ),
    "pytz-utc-timezone-utc": lambda pytz: (
        dt.datetime(2024, 1, 1, tzinfo=pytz.utc),
        dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    ),
    "fixed-offset-timezone": lambda pytz: (
        pytz.FixedOffset(540),
        dt.timezone(dt.timedelta(hours=9)),
    ),
    "fixed-offsets": lambda pytz: (pytz.FixedOffset(540), pytz.FixedOffset(-540)),
    # Same wall time, same offset, same instant: only the zone differs.
    "same-instant-and-offset-other-zone": lambda pytz: (
        pytz.timezone("Asia/Tokyo").localize(dt.datetime(2024, 1, 1, 9)),
        pytz.timezone("Asia/Seoul").localize(dt.datetime(2024, 1, 1, 9)),
    ),
    "timestamp-other-zone": lambda pytz: (
        pd.Timestamp("2024-01-01 09:00", tz=pytz.timezone("Asia/Tokyo")),
        pd.Timestamp("2024-01-01 09:00", tz=pytz.timezone("Asia/Seoul")),
    ),
    "ambiguous-wall-time": lambda pytz: (
        _berlin(pytz, 2021, 10, 31, 2, 30, is_dst=True),
        _berlin(pytz, 2021, 10, 31, 2, 30, is_dst=False),
    ),
    # Same instant; arithmetic without normalize() leaves the winter offset on a summer time.
    "normalized-or-not": lambda pytz: (
        _berlin(pytz, 2021, 1, 1, 12) + dt.timedelta(days=180),
        pytz.timezone("Europe/Berlin").normalize(
            _berlin(pytz, 2021, 1, 1, 12) + dt.timedelta(days=180)
        ),
    ),
    "zone-or-its-offset-object": lambda pytz: (
        pytz.timezone("Europe/Berlin"),
        _berlin(pytz, 2021, 1, 1).tzinfo,
    ),
    "given-tzinfo-or-localized": lambda pytz: (
        dt.datetime(2021, 7, 1, tzinfo=pytz.timezone("Europe/Berlin")),
        _berlin(pytz, 2021, 7, 1),
    ),
}


@pytest.mark.parametrize("make", PYTZ_DISTINCT_PAIRS.values(), ids=PYTZ_DISTINCT_PAIRS.keys())
def test_distinct_pytz_inputs_give_distinct_keys(make: Any) -> None:
    a, b = make(pytest.importorskip("pytz"))
    assert canonical_bytes(a) != canonical_bytes(b)
    assert input_id({"v": a}) != input_id({"v": b})


_PYTZ_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Tokyo", "UTC"]


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        dt.datetime(1850, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.timezone.utc)
    ),
    st.sampled_from(_PYTZ_ZONES),
    st.sampled_from(_PYTZ_ZONES),
)
def test_pytz_times_key_by_instant_and_zone(instant: dt.datetime, name: str, other: str) -> None:
    pytz = pytest.importorskip("pytz")
    zone = pytz.timezone(name)
    local = instant.astimezone(zone)
    # The same instant reached another way: from a later time, moved back and normalized.
    again = zone.normalize(
        instant.astimezone(zone) + dt.timedelta(days=400) - dt.timedelta(days=400)
    )
    assert canonical_bytes(again) == canonical_bytes(local)
    assert (
        canonical_bytes(instant.astimezone(pytz.timezone(other))) == canonical_bytes(local)
    ) == (other == name)


def test_argument_names_are_part_of_the_input() -> None:
    assert input_id({"a": 1}) != input_id({"b": 1})
    assert input_id({"a": 1, "b": 2}) != input_id({"a": 2, "b": 1})
    assert input_id({}) != input_id({"a": None})


# -- order independence -----------------------------------------------------------------------


def test_dict_and_set_order_do_not_matter() -> None:
    items = [("b", 2), (1, "one"), (None, [1]), ((1, 2), {"x"}), (2.5, b"z")]
    forward, backward = dict(items), dict(reversed(items))
    assert list(forward) != list(backward)
    assert canonical_bytes(forward) == canonical_bytes(backward)
    assert canonical_bytes({3, "a", None, (1,)}) == canonical_bytes({(1,), None, "a", 3})
    assert canonical_bytes(frozenset(["x", 2])) == canonical_bytes(frozenset([2, "x"]))
    assert canonical_bytes(collections.Counter("abc")) == canonical_bytes(
        collections.Counter("cba")
    )


def test_argument_mapping_order_does_not_matter() -> None:
    arguments = {"text": "hello", "n": 3, "options": {"a": 1}}
    reordered = dict(reversed(arguments.items()))
    assert input_id(arguments) == input_id(reordered) == input_id(MappingProxyType(reordered))


# -- stability --------------------------------------------------------------------------------

STABLE_VALUES = """
import datetime, decimal, pathlib, uuid
VALUES = [
    {"x": 1},
    {"names": {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}},
    {"table": {f"key{i}": i for i in range(50)}, "tags": frozenset("abcdefgh")},
    {"when": datetime.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=datetime.timezone.utc)},
    {"amount": decimal.Decimal("12.340"), "id": uuid.UUID(int=7)},
    {"p": pathlib.PurePosixPath("a/b"), "w": pathlib.PureWindowsPath("C:/a")},
    {"args": (1, 2.5, None, True, b"raw", "text"), "kwargs": {"big": 2**100, "neg": -5}},
]
"""


def _input_ids_in_subprocess(hash_seed: str, values: str = STABLE_VALUES) -> list[str]:
    script = values + textwrap.dedent(
        """
        import json
        from beautyspot.cachekey import input_id
        print(json.dumps([input_id(v) for v in VALUES]))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": PACKAGE_ROOT}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_keys_do_not_depend_on_the_hash_seed() -> None:
    namespace: dict[str, Any] = {}
    exec(STABLE_VALUES, namespace)
    here = [input_id(value) for value in namespace["VALUES"]]
    assert _input_ids_in_subprocess("0") == here
    assert _input_ids_in_subprocess("4242") == here


PYTZ_STABLE_VALUES = """
import datetime, pandas as pd, pytz
berlin = pytz.timezone("Europe/Berlin")
VALUES = [
    {"zone": berlin, "fixed": pytz.FixedOffset(-90), "utc": pytz.utc},
    {"when": berlin.localize(datetime.datetime(2021, 7, 1)), "offset": berlin.normalize(
        berlin.localize(datetime.datetime(2021, 1, 1))).tzinfo},
    {"series": pd.Series(pd.date_range("2024", periods=2, tz=berlin))},
]
"""


def test_pytz_keys_do_not_depend_on_the_process() -> None:
    pytest.importorskip("pytz")
    namespace: dict[str, Any] = {}
    exec(PYTZ_STABLE_VALUES, namespace)
    here = [input_id(value) for value in namespace["VALUES"]]
    assert _input_ids_in_subprocess("0", PYTZ_STABLE_VALUES) == here


# Computed once when the format was fixed: any change to the key format shows up here, and
# would silently turn every stored result into a miss.
PINNED_INPUT_IDS = [
    ({"x": 1}, "9ced08d60df2449dae2754568d7c949e"),
    (
        {"text": "hello", "n": 3, "options": {"a": [1, 2.5, None]}},
        "b56c91a972583301429a82a9db324607",
    ),
    ({"args": (1, "a"), "kwargs": {"b": True}}, "246c10a220dc5f96f1f40aabf7a43b92"),
    (
        {"when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=TOKYO), "d": Decimal("1.10")},
        "1b6f6c00b3d13a327daa3b703b0ba86b",
    ),
    (
        {"array": np.arange(6, dtype="<i8").reshape(2, 3), "p": PurePosixPath("a/b")},
        "15e80c2331248244c4ba529246093fb3",
    ),
]


@pytest.mark.parametrize(("arguments", "expected"), PINNED_INPUT_IDS)
def test_pinned_input_ids(arguments: dict[str, Any], expected: str) -> None:
    assert input_id(arguments) == expected


def test_pinned_cache_keys() -> None:
    assert (
        cache_key("pkg.mod.f", None, "9ced08d60df2449dae2754568d7c949e")
        == "bd75a37b6493bd2b6c984fc7e70eb816"
    )
    assert (
        cache_key("pkg.mod.f", "v2", "9ced08d60df2449dae2754568d7c949e")
        == "caa8de176364c7f7b71ea7277b2fb095"
    )


def test_pinned_canonical_bytes() -> None:
    assert canonical_bytes([None, True, -1, 1.5, "é", (b"x",)]).hex() == (
        "6c0000000000000006"  # list of 6
        "4e"  # None
        "54"  # True
        "690000000000000001ff"  # int, 1 byte
        "663ff8000000000000"  # float
        "730000000000000002c3a9"  # str, 2 bytes of UTF-8
        "740000000000000001"  # tuple of 1
        "62000000000000000178"  # bytes, 1 byte
    )


def test_cache_key_depends_on_each_part() -> None:
    base = cache_key("m.f", "v1", "aa")
    others = [
        cache_key("m.g", "v1", "aa"),
        cache_key("m.f", "v2", "aa"),
        cache_key("m.f", "v1", "ab"),
        cache_key("m.f", None, "aa"),
        cache_key("m.f", "", "aa"),
        cache_key("m.fv1", "", "aa"),
    ]
    assert len({base, *others}) == len(others) + 1
    assert cache_key("m.f", None, "aa") == cache_key("m.f", None, "aa")
    assert len(base) == 32 and int(base, 16) >= 0


# -- function identity ------------------------------------------------------------------------

MODULE_SOURCE = """
import dataclasses, functools
from beautyspot.cachekey import function_id, input_id

def logged(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)
    return wrapper

@logged
def work(x):
    return x

def outer():
    def inner():
        pass
    return inner

@dataclasses.dataclass
class Item:
    name: str

def report():
    return " ".join([function_id(work), function_id(outer()), input_id({"i": Item("a")})])

if __name__ == "__main__":
    print(report())
"""


def _run_python(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_function_id_is_the_same_for_a_script_and_its_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg" / "sub"
    package.mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(MODULE_SOURCE)
    (tmp_path / "script.py").write_text(MODULE_SOURCE)

    imported = _run_python(["-c", "import pkg.sub.mod as m; print(m.report())"], tmp_path)
    assert imported.split()[:2] == ["pkg.sub.mod.work", "pkg.sub.mod.outer.<locals>.inner"]
    assert _run_python(["pkg/sub/mod.py"], tmp_path) == imported
    assert _run_python([str(package / "mod.py")], tmp_path.parent) == imported
    assert _run_python(["-m", "pkg.sub.mod"], tmp_path) == imported

    script_imported = _run_python(["-c", "import script; print(script.report())"], tmp_path)
    assert script_imported.split()[0] == "script.work"
    assert _run_python(["script.py"], tmp_path) == script_imported


SPAWN_SOURCE = """
import multiprocessing
from beautyspot.cachekey import function_id

def work(x):
    return x

def child_id(_):
    return function_id(work)

if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(function_id(work), pool.map(child_id, [0])[0])
"""


def test_function_id_is_the_same_in_a_spawned_child(tmp_path: Path) -> None:
    # The child runs the script again as __mp_main__; its records must be the parent's.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "job.py").write_text(SPAWN_SOURCE)
    assert _run_python(["pkg/job.py"], tmp_path).split() == ["pkg.job.work"] * 2
    assert _run_python(["-m", "pkg.job"], tmp_path).split() == ["pkg.job.work"] * 2


def test_function_id_names_the_undecorated_function() -> None:
    def logged(func: Any) -> Any:
        @functools.wraps(func)
        def wrapper(*args: Any) -> Any:
            return func(*args)

        return wrapper

    @logged
    def work() -> None:
        pass

    assert function_id(json.dumps) == "json.dumps"
    assert function_id(work) == f"{__name__}.{work.__wrapped__.__qualname__}"
    assert function_id(work).endswith(
        "test_function_id_names_the_undecorated_function.<locals>.work"
    )
    assert function_id(Point) == f"{__name__}.Point"


def test_function_id_refuses_what_has_no_name() -> None:
    with pytest.raises(ConfigurationError, match="__qualname__"):
        function_id(functools.partial(print, "x"))


# -- what cannot be keyed ---------------------------------------------------------------------


def _error_for(value: Any, name: str = "callback") -> str:
    with pytest.raises(CacheKeyError) as caught:
        input_id({"ok": 1, name: value})
    return str(caught.value)


def test_error_names_the_argument_and_the_fixes() -> None:
    message = _error_for(threading.Lock())
    assert message.startswith("argument 'callback' is a _thread.lock object")
    assert "ignore=('callback',)" in message
    assert "input_key_fn=" in message


def test_error_gives_the_path_inside_the_argument() -> None:
    message = _error_for({"x": [threading.Lock()]})
    assert message.startswith("argument 'callback' (at callback['x'][0]) is a _thread.lock")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ((1, [2, Opaque()]), "[1][1]"),
        ({Opaque(): 1}, "[<key>]"),
        ({1, Opaque()}, "{<element>}"),
        (Point(1, [Opaque()]), ".y[0]"),
        (FakeModel(a=Opaque()), ".fields['a']"),
        (collections.defaultdict(threading.Lock().acquire), ".default_factory.__self__"),
        (np.array([1, Opaque()], dtype=object), ".flat[1]"),
        (pd.Series([1, Opaque()]), ".values.flat[1]"),
        (pd.DataFrame({"col": [Opaque()]}), "['col'].flat[0]"),
    ],
    ids=["tuple", "dict-key", "set", "dataclass", "model", "defaultdict", "array", "series", "df"],
)
def test_error_paths(value: Any, path: str) -> None:
    assert f"(at callback{path})" in _error_for(value)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: Opaque(), "only identity is its address"),
        (lambda: threading.Lock(), "only identity is its address"),
        (lambda: open(os.devnull), "open file"),  # noqa: SIM115 - closed by the test
        (lambda: (i for i in range(3)), "iterator or generator"),
        (lambda: iter([1]), "iterator or generator"),
        (lambda: socket.socket(), "only identity is its address"),
        (lambda: functools.partial(print, threading.Lock()), "only identity is its address"),
        (lambda: threading.Lock().acquire, "only identity is its address"),
        (lambda: MyDefaultDict(int, a=1), "subclass of dict"),
        (lambda: np.ma.masked_array([1, 2], mask=[0, 1]), "cannot encode exactly"),
        (lambda: np.random.default_rng(0), "only identity is its address"),
        (lambda: pd.Period("2024-01"), "cannot encode exactly"),
    ],
    ids=[
        "opaque", "lock", "file", "generator", "iterator", "socket", "partial-of-a-lock",
        "method-of-a-lock", "dict-subclass", "masked-array", "numpy-rng", "pandas-period",
    ],
)  # fmt: skip
def test_unkeyable_values(make: Any, reason: str) -> None:
    value = make()
    try:
        assert reason in _error_for(value)
        with pytest.raises(CacheKeyError, match="input_key_fn="):
            canonical_bytes(value)
    finally:
        if hasattr(value, "close"):
            value.close()


def test_canonical_bytes_error_gives_the_path() -> None:
    with pytest.raises(CacheKeyError, match=r"^the value \(at value\[0\]\['k'\]\) is a _thread"):
        canonical_bytes([{"k": threading.Lock()}])


def test_reference_cycles_are_errors_not_hangs() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert "(at callback[1]) contains itself" in _error_for(loop)
    table: dict[str, Any] = {}
    table["self"] = [table]
    assert "(at callback['self'][0]) contains itself" in _error_for(table)
    point = Point(1)
    point.y = (point,)
    assert "(at callback.y[0]) contains itself" in _error_for(point)


def test_shared_values_are_not_cycles() -> None:
    shared = [1, 2]
    assert canonical_bytes([shared, shared, (shared,)]) == canonical_bytes(
        [[1, 2], [1, 2], ([1, 2],)]
    )


def test_too_deep_nesting_is_an_error() -> None:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    assert "nested too deeply" in _error_for(value)
    with pytest.raises(CacheKeyError, match="nested too deeply"):
        canonical_bytes(value)


def test_zoneinfo_without_a_key_is_an_error(tmp_path: Path) -> None:
    zone_file = Path(zoneinfo.TZPATH[0], "Asia", "Tokyo") if zoneinfo.TZPATH else None
    if zone_file is None or not zone_file.is_file():
        pytest.skip("no system time zone database")
    with zone_file.open("rb") as file:
        zone = zoneinfo.ZoneInfo.from_file(file)
    assert "(at callback.tzinfo) is a ZoneInfo read from a file" in _error_for(
        dt.datetime(2024, 1, 1, tzinfo=zone)
    )


def test_cachekey_imports_neither_numpy_pandas_nor_pytz() -> None:
    code = (
        "import sys, datetime as dt, beautyspot.cachekey as k\n"
        "k.input_id({'t': dt.datetime.now(dt.timezone.utc)})\n"
        "print(*(name in sys.modules for name in ('numpy', 'pandas', 'pytz')))"
    )
    assert _run_python(["-c", code], Path.cwd()) == "False False False"


# -- large arrays -----------------------------------------------------------------------------


def _peak_bytes(action: Any) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_large_array_is_keyed_without_copying_it() -> None:
    array = np.ones(10_000_000)  # 80 MB
    assert _peak_bytes(lambda: canonical_bytes(array)) < 1_000_000
    # The check above can fail: a strided view needs its copy, and tracemalloc sees it.
    assert _peak_bytes(lambda: canonical_bytes(array[::2])) > array.nbytes // 4


# -- KeyGen -----------------------------------------------------------------------------------


def test_from_path_stat_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n")
    first = KeyGen.from_path_stat(path)
    assert KeyGen.from_path_stat(path) == first
    assert KeyGen.from_path_stat(str(path)) == first

    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    touched = KeyGen.from_path_stat(path)
    assert touched != first

    path.write_bytes(b"a,c\n")  # same size, new content and time
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert KeyGen.from_path_stat(path) == touched  # path-stat keys cannot see same-size edits

    path.write_bytes(b"a,b,c\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert KeyGen.from_path_stat(path) != touched


def test_from_path_stat_gives_a_missing_file_its_owncanonical_bytes(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    missing = KeyGen.from_path_stat(path)
    assert missing == KeyGen.from_path_stat(str(path))
    assert KeyGen.from_path_stat(tmp_path / "file.txt" / "below") != missing
    path.write_bytes(b"")
    assert KeyGen.from_path_stat(path) != missing


def test_from_file_content_keys_the_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 5)  # spans several read chunks
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(data)
    second.write_bytes(data)
    key = KeyGen.from_file_content(first)
    assert KeyGen.from_file_content(str(second)) == key
    second.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert KeyGen.from_file_content(second) != key
    missing = KeyGen.from_file_content(tmp_path / "absent.bin")
    assert missing not in (key, KeyGen.from_file_content(tmp_path / "empty.bin"))


def test_keygen_functions_serve_as_input_key_fn(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_text("hello")
    for keygen in (KeyGen.from_path_stat, KeyGen.from_file_content):
        assert input_id({"key": keygen(path)}) == input_id({"key": keygen(path)})


# -- injectivity ------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Same type and value, recursively; NaNs are one value and 0.0 is not -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


_FLOATS = st.sampled_from([0.0, -0.0, 1.0, 1.5, math.inf, -math.inf, math.nan, _nan(3)])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2).map(lambda n: n * (-1) ** n)
    | _FLOATS
    | st.floats()
    | st.text(alphabet="ab?\x00\ud800é", max_size=3)
    | st.binary(max_size=3)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(alphabet="ab", max_size=2), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES, _VALUES)
def test_canonical_bytes_is_injective(a: Any, b: Any) -> None:
    assert (canonical_bytes(a) == canonical_bytes(b)) == _same(a, b)


@settings(max_examples=200, deadline=None)
@given(_VALUES)
def test_canonical_bytes_of_a_copy_is_the_same(value: Any) -> None:
    assert canonical_bytes(copy.deepcopy(value)) == canonical_bytes(value)


# -- KeyPlan ----------------------------------------------------------------------------------

_NAMES = st.lists(st.text(alphabet="ab_\u00e9", min_size=1, max_size=3), unique=True, max_size=4)


@settings(max_examples=200, deadline=None)
@given(_NAMES, st.data(), st.sampled_from([None, "", "v2"]))
def test_key_plan_gives_the_keys_of_the_bound_arguments(
    names: list[str], data: st.DataObject, version: str | None
) -> None:
    values = tuple(data.draw(_VALUES) for _ in names)
    expected_input = input_id(dict(zip(names, values, strict=True)))
    plan = KeyPlan("pkg.mod.f", version, names)
    assert plan.keys(values) == (expected_input, cache_key("pkg.mod.f", version, expected_input))
    assert plan.cache_key(expected_input) == cache_key("pkg.mod.f", version, expected_input)


def test_key_plan_errors_name_the_argument() -> None:
    plan = KeyPlan("pkg.mod.f", None, ("ok", "callback"))
    with pytest.raises(CacheKeyError, match=r"^argument 'callback' \(at callback\[0\]\) is a"):
        plan.keys((1, [threading.Lock()]))
    with pytest.raises(TypeError, match="expected 2 values, got 1"):
        plan.keys((1,))
    with pytest.raises(ValueError, match="expected a hex digest"):
        plan.cache_key("aa")


@pytest.mark.parametrize("names", [("a", "a"), ("a", 1)])
def test_key_plan_needs_distinct_str_names(names: tuple[Any, ...]) -> None:
    with pytest.raises(ConfigurationError, match="distinct argument names"):
        KeyPlan("pkg.mod.f", None, names)
