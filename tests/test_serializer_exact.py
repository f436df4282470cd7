"""Exactness II: a hit must come back exactly as the first result, in every case below.

Dataclasses are rebuilt without re-running ``__init__``/``__post_init__``; pandas Timestamps
keep ``fold``; numpy dtype metadata is refused whatever was stored before; zero-size and very
long string scalars and arrays round-trip, while decoding still refuses what no bytes back.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
import threading
import tracemalloc
import zoneinfo
from pathlib import Path
from typing import Any

import msgpack
import pytest

from beautyspot.errors import ConfigurationError, SerializationError
from beautyspot.serializer import FORMAT_VERSION, Serializer

SOURCE = Path(__file__).resolve().parents[1] / "src"
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
USER, NDARRAY, NUMPY_SCALAR, PD_SCALAR = 0, 32, 33, 54


def tagged(tag: int, *fields: Any) -> bytes:
    """Stored bytes of one tagged array, written by hand."""
    return bytes([FORMAT_VERSION]) + msgpack.packb(
        [msgpack.ExtType(tag, b""), *fields], use_bin_type=True
    )


def state(obj: Any) -> dict[str, Any]:
    """Everything an instance holds: its __dict__ and every slot that is set."""
    found = dict(getattr(obj, "__dict__", {}))
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                found[name] = getattr(obj, name)
    return found


# -- 1. dataclasses are rebuilt from their state, not through __init__ -------------------------


@dataclasses.dataclass
class Tagged:
    items: list[str]

    def __post_init__(self) -> None:
        self.items += ["__end__"]


@dataclasses.dataclass(frozen=True)
class FrozenTagged:
    items: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", (*self.items, "__end__"))


@dataclasses.dataclass(slots=True)
class SlotsTagged:
    items: list[str]
    count: int = dataclasses.field(default=0, init=False)

    def __post_init__(self) -> None:
        self.items.append("__end__")
        self.count += 1


@dataclasses.dataclass(frozen=True, slots=True)
class FrozenSlotsTagged:
    items: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", (*self.items, "__end__"))


@dataclasses.dataclass
class Derived:
    values: list[int]

    def __post_init__(self) -> None:
        self.total = sum(self.values)  # not a field

    @functools.cached_property
    def doubled(self) -> list[int]:
        return [v * 2 for v in self.values]


class SlotsSub(SlotsTagged):
    __slots__ = ("__private", "extra", "never_set")

    def __init__(self, items: list[str]) -> None:
        super().__init__(items)
        self.extra = len(self.items)
        self.__private = "p"


class Counted:
    made = 0


@dataclasses.dataclass
class CountsInit:
    x: int

    def __post_init__(self) -> None:
        Counted.made += 1


def registered(*classes: type) -> Serializer:
    s = Serializer()
    for code, cls in enumerate(classes, start=1):
        s.register_dataclass(cls, code)
    return s


@pytest.mark.parametrize(
    "make",
    [
        lambda: Tagged(["a"]),
        lambda: FrozenTagged(("a",)),
        lambda: SlotsTagged(["a"]),
        lambda: FrozenSlotsTagged(("a",)),
        lambda: SlotsSub(["a"]),
    ],
    ids=["plain", "frozen", "slots", "frozen slots", "slots subclass"],
)
def test_a_dataclass_comes_back_as_first_returned_not_post_initialised_again(make: Any) -> None:
    first = make()
    s = registered(type(first))
    hit = s.loads(s.dumps(first))
    assert type(hit) is type(first)
    assert hit == first
    assert state(hit) == state(first)
    assert hit.items.count("__end__") == 1


def test_decoding_a_dataclass_calls_neither_init_nor_post_init() -> None:
    s = registered(CountsInit)
    first = [CountsInit(1), CountsInit(2)]
    data = s.dumps(first)
    before = Counted.made
    hit = s.loads(data)
    assert Counted.made == before
    assert hit == first


def test_state_outside_the_fields_is_stored_too() -> None:
    first = Derived([1, 2])
    assert first.doubled == [2, 4]  # cached in __dict__
    first.note = "set later"  # type: ignore[attr-defined]
    s = registered(Derived)
    hit = s.loads(s.dumps(first))
    assert vars(hit) == {"values": [1, 2], "total": 3, "doubled": [2, 4], "note": "set later"}
    assert list(vars(hit)) == list(vars(first))

    fresh = s.loads(s.dumps(Derived([5])))
    assert vars(fresh) == {"values": [5], "total": 5}  # the cached property was never computed


def test_slots_outside_the_fields_are_stored_and_unset_ones_stay_unset() -> None:
    first = SlotsSub(["a"])
    s = registered(SlotsSub)
    hit = s.loads(s.dumps(first))
    assert (hit.extra, hit._SlotsSub__private, hit.count) == (2, "p", 1)
    assert not hasattr(hit, "never_set")


def test_a_dataclass_holding_only_its_fields_keeps_the_old_payload() -> None:
    s = registered(Tagged)
    assert s.dumps(Tagged(["a"])) == tagged(USER, 1, {"items": ["a", "__end__"]})


def test_a_payload_written_before_is_read_as_exactly_its_fields() -> None:
    old = tagged(USER, 1, {"items": ["a", "__end__"]})  # written through __init__ before
    hit = registered(Tagged).loads(old)
    assert vars(hit) == {"items": ["a", "__end__"]}


def test_an_attribute_that_cannot_be_stored_is_refused_by_name() -> None:
    first = Derived([1])
    first.lock = threading.Lock()  # type: ignore[attr-defined]
    with pytest.raises(SerializationError, match=r"result\[0\]\.lock \(_thread\.lock\)"):
        registered(Derived).dumps([first])


@pytest.mark.parametrize(
    "payload",
    [
        [{"items": []}, {}],
        [{"items": []}, {}, {}, {}],
        [{"items": []}, [], {}],
        ({"items": []}, {}, {}),
        [{"items": []}, {}, {"not_a_slot": 1}],
        [{"wrong": []}, {}, {}],
        [{"items": []}, {"extra": 1}, {}],  # a slots class has no __dict__
        "items",
    ],
)
def test_malformed_dataclass_state_is_a_serialization_error(payload: Any) -> None:
    with pytest.raises(SerializationError):
        registered(SlotsTagged).loads(tagged(USER, 1, payload))


# -- 2. pandas Timestamp keeps its fold ------------------------------------------------------


TIMESTAMPS = {
    "naive": lambda pd: pd.Timestamp(year=2021, month=10, day=31, hour=2, minute=30, fold=1),
    "naive ns": lambda pd: pd.Timestamp("2021-10-31 02:30:00.000000001").replace(fold=1),
    "naive seconds": lambda pd: pd.Timestamp("2021-10-31 02:30").as_unit("s").replace(fold=1),
    "ambiguous": lambda pd: pd.Timestamp(
        year=2021, month=10, day=31, hour=2, minute=30, fold=1, tz=BERLIN
    ),
    "ambiguous fold 0": lambda pd: pd.Timestamp(
        year=2021, month=10, day=31, hour=2, minute=30, fold=0, tz=BERLIN
    ),
    "unambiguous": lambda pd: pd.Timestamp(
        year=2021, month=10, day=31, hour=5, minute=30, fold=1, tz=BERLIN
    ),
    "utc": lambda pd: pd.Timestamp(2021, 1, 1, tz="UTC").replace(fold=1),
}


@pytest.mark.parametrize("make", TIMESTAMPS.values(), ids=TIMESTAMPS.keys())
def test_a_timestamp_keeps_its_fold(make: Any) -> None:
    pd = pytest.importorskip("pandas")
    first = make(pd)
    s = Serializer()
    hit = s.loads(s.dumps([first]))[0]
    assert type(hit) is pd.Timestamp
    assert (hit, hit.value, hit.unit, hit.fold) == (first, first.value, first.unit, first.fold)
    assert hit.tz is first.tz


def test_a_timestamp_with_fold_0_keeps_the_old_layout() -> None:
    pd = pytest.importorskip("pandas")
    stamp = pd.Timestamp("2024-01-01")
    assert Serializer().dumps(stamp) == tagged(PD_SCALAR, "Timestamp", _encoded(stamp.asm8), None)


@pytest.mark.parametrize("fold", [[0], [2], ["1"], [1, 1], [None]])
def test_a_bad_stored_fold_is_a_serialization_error(fold: list[Any]) -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    value = pd.Timestamp("2024-01-01").asm8
    assert isinstance(value, np.datetime64)
    data = bytes([FORMAT_VERSION]) + msgpack.packb(
        [msgpack.ExtType(PD_SCALAR, b""), "Timestamp", _encoded(value), None, *fold],
        use_bin_type=True,
    )
    with pytest.raises(SerializationError):
        Serializer().loads(data)


def _encoded(value: Any) -> Any:
    """msgpack's form of a stored value, to splice into hand-written bytes."""
    return msgpack.unpackb(Serializer().dumps(value)[1:], ext_hook=msgpack.ExtType)


# -- 3. dtype metadata: one rule, whatever was stored before ---------------------------------

METADATA_ORDERS = """
import numpy as np
from beautyspot.errors import ConfigurationError, SerializationError
from beautyspot.serializer import Serializer

plain = np.zeros(2)
tagged = np.zeros(2, dtype=np.dtype(np.float64, metadata={"unit": "m"}))
s = Serializer()
for value in ({order}):
    try:
        back = s.loads(s.dumps(value))
        print("kept" if back.dtype.metadata == value.dtype.metadata else "dropped")
    except SerializationError as exc:
        print("refused", "metadata" in str(exc))
"""


@pytest.mark.parametrize("order", ["plain, tagged", "tagged, plain"])
def test_dtype_metadata_is_refused_in_a_fresh_process_whatever_came_first(order: str) -> None:
    pytest.importorskip("numpy")
    env = {**os.environ, "PYTHONPATH": str(SOURCE)}
    code = METADATA_ORDERS.replace("{order}", order)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    results = dict(zip(order.split(", "), out.stdout.splitlines(), strict=True))
    assert results == {"plain": "kept", "tagged": "refused True"}, out.stderr


def _with_metadata(np: Any) -> dict[str, Any]:
    meta = np.dtype(np.float64, metadata={"unit": "m"})
    return {
        "array": np.zeros(2, dtype=meta),
        "empty metadata": np.zeros(2, dtype=np.dtype(np.float64, metadata={})),
        "struct field": np.zeros(2, dtype=[("a", meta), ("b", "<i4")]),
        "sub-array base": np.zeros(2, dtype=[("a", meta, (2,))]),
        "struct scalar": np.zeros(1, dtype=[("a", meta)])[0],
    }


@pytest.mark.parametrize(
    "name", ["array", "empty metadata", "struct field", "sub-array base", "struct scalar"]
)
def test_dtype_metadata_is_refused_after_the_same_dtype_without_it_was_stored(name: str) -> None:
    np = pytest.importorskip("numpy")
    value = _with_metadata(np)[name]
    plain = np.zeros_like(value, dtype=_without_metadata(np, value.dtype))
    s = Serializer()
    assert s.loads(s.dumps(plain)).dtype == plain.dtype  # fills any cache first
    with pytest.raises(SerializationError, match="carries metadata"):
        s.dumps(value)
    with pytest.raises(SerializationError, match="carries metadata"):
        Serializer().dumps(value)


def _without_metadata(np: Any, dtype: Any) -> Any:
    if dtype.fields is not None:
        return np.dtype(
            [(name, _without_metadata(np, dtype.fields[name][0])) for name in dtype.names]
        )
    if dtype.subdtype is not None:
        return np.dtype((_without_metadata(np, dtype.subdtype[0]), dtype.subdtype[1]))
    return np.dtype(dtype.str)


# -- 4. zero-size and very long strings --------------------------------------------------------


STRINGS = {
    "empty str_": lambda np: np.str_(""),
    "empty bytes_": lambda np: np.bytes_(b""),
    "empty void": lambda np: np.void(b""),
    "empty struct scalar": lambda np: np.zeros((), dtype=[])[()],
    "str_ ending in NUL": lambda np: np.str_("a\x00"),
    "bytes_ ending in NUL": lambda np: np.bytes_(b"a\x00"),
    "str_ with a lone surrogate": lambda np: np.str_("\ud800x"),
    "long str_": lambda np: np.str_("x" * 1_000_000),
    "long U array": lambda np: np.array(["x" * 1_000_000]),
    "long S array": lambda np: np.array([b"y" * 1_000_000, b""]),
    "U array of empty strings": lambda np: np.array(["", ""]),
}


@pytest.mark.parametrize("make", STRINGS.values(), ids=STRINGS.keys())
def test_zero_size_and_long_string_values_round_trip_exactly(make: Any) -> None:
    np = pytest.importorskip("numpy")
    first = make(np)
    s = Serializer()
    hit = s.loads(s.dumps(first))
    assert type(hit) is type(first)
    assert (hit.dtype, hit.dtype.type, hit.shape) == (first.dtype, first.dtype.type, first.shape)
    assert hit.tobytes() == first.tobytes()
    if isinstance(first, (str, bytes)):
        assert (hit, len(hit)) == (first, len(first))
    if isinstance(first, np.ndarray):
        assert hit.tolist() == first.tolist()


def test_an_array_of_zero_size_items_is_refused_clearly() -> None:
    np = pytest.importorskip("numpy")
    for value in (np.zeros(3, "V0"), np.zeros(2, dtype=[])):
        with pytest.raises(SerializationError, match="zero size"):
            Serializer().dumps(value)


HOSTILE_NUMPY = {
    # Zero-size items: no stored bytes bound how many there are.
    "V0 array of 2**40 items": (NDARRAY, "|V0", [2**40], False, b""),
    "empty struct array": (
        NDARRAY,
        {"names": [], "formats": [], "offsets": [], "titles": [], "itemsize": 0, "aligned": False},
        [2**40],
        False,
        b"",
    ),
    "zero-size struct field": (
        NDARRAY,
        {
            "names": ["a"],
            "formats": ["|V0"],
            "offsets": [0],
            "titles": [None],
            "itemsize": 1,
            "aligned": False,
        },
        [1],
        False,
        b"\x00",
    ),
    # Item sizes numpy refuses, or that the stored bytes do not hold.
    "U past numpy's limit": (NDARRAY, "<U536870912", [0], False, b""),
    "eleven digits": (NDARRAY, "<U10000000000", [0], False, b""),
    "huge S, no bytes": (NDARRAY, "|S2147483647", [1], False, b""),
    "huge U scalar, no bytes": (NUMPY_SCALAR, "<U536870911", b""),
    "str_ bytes of the wrong size": (NUMPY_SCALAR, "<U2", b"a\x00\x00\x00"),
    "str_ beyond unicode": (NUMPY_SCALAR, "<U1", b"\x00\x00\x11\x00"),
    "bytes_ of the wrong size": (NUMPY_SCALAR, "|S0", b"\x00"),
    "sub-array scalar": (NUMPY_SCALAR, ["<f8", [0]], b""),
}


@pytest.mark.parametrize("fields", HOSTILE_NUMPY.values(), ids=HOSTILE_NUMPY.keys())
def test_stored_numpy_data_no_bytes_back_is_refused_without_allocating(fields: Any) -> None:
    pytest.importorskip("numpy")
    data = tagged(*fields)
    s = Serializer()
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError):
            s.loads(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_an_old_str_scalar_payload_still_reads() -> None:
    np = pytest.importorskip("numpy")
    old = tagged(NUMPY_SCALAR, "<U2", np.str_("ab").tobytes())
    hit = Serializer().loads(old)
    assert (type(hit), hit, hit.dtype) == (np.str_, "ab", np.dtype("<U2"))


@pytest.mark.parametrize("base", [list, Exception, dict])
def test_register_dataclass_refuses_a_builtin_base_it_could_not_restore(base: type) -> None:
    cls = dataclasses.dataclass(type("WithBase", (base,), {"__annotations__": {"x": int}}))
    with pytest.raises(ConfigurationError, match=f"inherits from {base.__name__}"):
        Serializer().register_dataclass(cls, 5)
