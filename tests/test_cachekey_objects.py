"""Keys of objects: the key protocol, registered types, all of an object's state or a refusal,
pydantic models, classes without an importable name, test doubles, annotations, KeyGen paths."""

from __future__ import annotations

import collections
import dataclasses
import enum
import os
import random
import subprocess
import sys
import threading
import types
import typing
from pathlib import Path
from typing import Any, Union
from unittest import mock

import pytest

import beautyspot as bs
from beautyspot.cachekey import KeyGen, KeyPlan, canonical_bytes, core, input_id
from beautyspot.cachekey.core import Walk
from beautyspot.cachekey.describe import describe
from beautyspot.cachekey.objects import importable_name
from beautyspot.errors import CacheKeyError
from beautyspot.serializer import Serializer

try:
    import pydantic
except ImportError:  # the dev extra installs it
    pydantic = None

needs_pydantic = pytest.mark.skipif(pydantic is None, reason="needs pydantic")
PACKAGE_ROOT = str(Path(bs.__file__).resolve().parent.parent)


def key(value: Any, walk: Walk | None = None) -> bytes:
    return canonical_bytes(value, walk)


def refusal(value: Any, name: str = "arg") -> str:
    with pytest.raises(CacheKeyError) as caught:
        input_id({name: value})
    return str(caught.value)


# -- 1. the key protocol ----------------------------------------------------------------------


class Client:
    """Holds a lock (no key of its own); says what identifies it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()

    def __beautyspot_key__(self) -> Any:
        return self.url


class OtherClient(Client):
    pass


@dataclasses.dataclass
class KeyedRecord:
    name: str
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __beautyspot_key__(self) -> Any:
        return self.name


class KeyedList(list):  # type: ignore[type-arg]
    def __beautyspot_key__(self) -> Any:
        return len(self)


class Refused:
    __beautyspot_key__ = None


class KeyRaises:
    def __beautyspot_key__(self) -> Any:
        raise RuntimeError("no key today")


class KeyIsSelf:
    def __beautyspot_key__(self) -> Any:
        return [self]


class KeyIsUnkeyable:
    def __beautyspot_key__(self) -> Any:
        return {"lock": threading.Lock()}


def test_key_protocol_keys_by_type_and_returned_value() -> None:
    assert key(Client("https://a")) == key(Client("https://a"))  # the locks are left out
    assert key(Client("https://a")) != key(Client("https://b"))
    assert key(Client("https://a")) != key(OtherClient("https://a"))  # type identity
    assert key(Client("https://a")) != key("https://a")
    assert input_id({"c": Client("x")}) == input_id({"c": Client("x")})


def test_key_protocol_comes_before_every_other_rule() -> None:
    assert key(KeyedRecord("a", {"x": 1})) == key(KeyedRecord("a", {"y": threading.Lock()}))
    assert key(KeyedList([1, 2])) == key(KeyedList([3, 4]))  # len only, as it says
    serializer = Serializer()
    serializer.register(Client, 3, encoder=lambda c: "registered", decoder=Client)
    assert key(Client("a"), Walk(serializer.registered)) == key(Client("a"))  # not "registered"
    assert key(Client("a"), Walk(serializer.registered)) != key(Client("b"))


def test_key_protocol_refusals_are_cache_key_errors() -> None:
    assert "sets __beautyspot_key__ = None" in refusal(Refused())
    message = refusal(KeyRaises())
    assert "__beautyspot_key__() raised RuntimeError: no key today" in message
    assert "contains itself" in refusal(KeyIsSelf())
    assert "(at arg.__beautyspot_key__()['lock'])" in refusal(KeyIsUnkeyable())


def test_refusals_offer_the_key_protocol() -> None:
    class Holder:
        def __init__(self) -> None:
            self.lock = threading.Lock()

    message = refusal(Holder(), "holder")
    assert "(at holder.lock)" in message
    assert "__beautyspot_key__" in message and "Holder" in message
    assert "ignore=('holder',)" in message and "input_key_fn=" in message


# -- 2. registered types ----------------------------------------------------------------------


class Connection:
    """Unkeyable by itself (a lock); registered, it is keyed by what its encoder returns."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.lock = threading.Lock()


class OtherConnection(Connection):
    pass


def _registered(*types_and_codes: tuple[type, int]) -> Serializer:
    serializer = Serializer()
    for cls, code in types_and_codes:
        serializer.register(cls, code, encoder=lambda c: (c.host, c.port), decoder=cls)
    return serializer


def test_registered_type_is_keyed_by_its_encoder() -> None:
    serializer = _registered((Connection, 5))
    plan = KeyPlan("m.f", None, ("conn",), registered=serializer.registered)
    first = plan.keys((Connection("db", 1),))
    assert plan.keys((Connection("db", 1),)) == first
    assert plan.keys((Connection("db", 2),)) != first
    with pytest.raises(CacheKeyError, match="only identity is its address"):
        KeyPlan("m.f", None, ("conn",)).keys((Connection("db", 1),))  # not registered


def test_registered_key_carries_type_and_code() -> None:
    one = _registered((Connection, 5), (OtherConnection, 6)).registered
    other_code = _registered((Connection, 9)).registered
    value = Connection("db", 1)
    assert key(value, Walk(one)) != key(OtherConnection("db", 1), Walk(one))
    assert key(value, Walk(one)) != key(value, Walk(other_code))
    assert key(value, Walk(one)) != key(("db", 1), Walk(one))


def test_registered_exact_class_only_and_encoder_errors() -> None:
    serializer = Serializer()
    serializer.register(Connection, 5, encoder=lambda c: 1 / 0, decoder=Connection)
    with pytest.raises(CacheKeyError, match="register_type encoder raised ZeroDivisionError"):
        canonical_bytes(Connection("db", 1), Walk(serializer.registered))
    with pytest.raises(CacheKeyError):  # a subclass is not covered, and has a lock
        canonical_bytes(OtherConnection("db", 1), Walk(serializer.registered))


def test_spot_keys_registered_types_and_methods(tmp_path: Path) -> None:
    spot = bs.Spot("objects", db=tmp_path / "objects.db")
    calls: list[Any] = []
    spot.register_type(
        Connection, 7, encoder=lambda c: (c.host, c.port), decoder=lambda hp: Connection(*hp)
    )

    @spot.mark
    def ping(conn: Connection) -> int:
        calls.append(conn.port)
        return conn.port

    assert [ping(Connection("a", port)) for port in (1, 2, 1)] == [1, 2, 1]
    assert calls == [1, 2]

    scale = spot.mark(Scaler.scale)  # as @spot.mark on the method would
    assert [scale(Scaler(2), 5), scale(Scaler(3), 5), scale(Scaler(2), 5)] == [10, 15, 10]
    assert Scaler.calls == [2, 3]


class Scaler:
    calls: typing.ClassVar[list[int]] = []

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def scale(self, x: int) -> int:
        self.calls.append(self.factor)
        return self.factor * x


# -- 3. objects keyed by all of their state, or refused ---------------------------------------


class A:
    def __init__(self, k: Any) -> None:
        self.k = k


class Slotted:
    __slots__ = ("__secret", "x")

    def __init__(self, x: Any, secret: Any) -> None:
        self.x = x
        self.__secret = secret


class MoreSlots(Slotted):
    __slots__ = ("y",)

    def __init__(self, x: Any, secret: Any, y: Any) -> None:
        super().__init__(x, secret)
        self.y = y


class SlotsAndDict(Slotted):
    pass


@dataclasses.dataclass
class Point:
    x: Any
    y: Any = 0


class PointWithExtra(Point):
    def __init__(self, x: Any, y: Any, label: str) -> None:
        super().__init__(x, y)
        self.label = label


@dataclasses.dataclass
class Lazy:
    x: int
    total: int = dataclasses.field(init=False)


@dataclasses.dataclass(slots=True)
class SlottedLazy:
    x: int
    total: int = dataclasses.field(init=False)


@dataclasses.dataclass
class Tagged(list):  # type: ignore[type-arg]
    tag: str = ""


def tagged(items: list[Any], tag: str) -> Tagged:
    value = Tagged(tag=tag)
    value.extend(items)
    return value


class MyDict(dict):  # type: ignore[type-arg]
    def items(self) -> Any:  # the content is read through dict, not these
        return []

    def __iter__(self) -> Any:
        return iter(())


class Shout(str):
    def __str__(self) -> str:
        return "SHOUT"


class MyRandom(random.Random):
    pass


class MyOrderedDict(collections.OrderedDict):  # type: ignore[type-arg]
    pass


def test_instances_are_keyed_by_their_attributes() -> None:
    assert key(A(2)) == key(A(2))
    assert key(A(2)) != key(A(3))
    assert key(A([1, {"a": 2}])) == key(A([1, {"a": 2}]))
    assert key(A(1)) != key({"k": 1})
    first, second = A(1), A(1)
    first.extra, first.more = 1, 2
    second.more, second.extra = 2, 1
    assert key(first) == key(second)  # assignment order does not matter
    assert key(first) != key(A(1))
    assert input_id({"self": A(2), "x": 1}) != input_id({"self": A(3), "x": 1})


def test_slots_along_the_mro_are_keyed() -> None:
    assert key(Slotted(1, "s")) == key(Slotted(1, "s"))
    assert key(Slotted(1, "s")) != key(Slotted(1, "t"))  # a private (mangled) slot
    assert key(MoreSlots(1, "s", 2)) != key(MoreSlots(1, "s", 3))
    assert key(MoreSlots(1, "s", 2)) != key(MoreSlots(1, "t", 2))
    both = SlotsAndDict(1, "s")
    assert key(both) == key(SlotsAndDict(1, "s"))
    both.note = "n"
    assert key(both) != key(SlotsAndDict(1, "s"))


def test_unset_slots_and_fields_are_errors_not_skipped() -> None:
    assert "slot '_Slotted__secret' has no value" in refusal(Slotted.__new__(Slotted))
    half = MoreSlots.__new__(MoreSlots)
    Slotted.__init__(half, 1, "s")
    assert "slot 'y' has no value" in refusal(half)
    assert "dataclass field 'total' has no value" in refusal(Lazy(1))
    assert "slot 'total' has no value" in refusal(SlottedLazy(1))
    done = Lazy(1)
    done.total = 3
    assert key(done) == key(done)  # keyed once it is set


def test_dataclasses_are_keyed_by_all_of_their_state() -> None:
    assert key(Point(1, 2)) != key(Point(1, 3))
    assert key(PointWithExtra(1, 2, "a")) != key(PointWithExtra(1, 2, "b"))
    ad_hoc = Point(1, 2)
    ad_hoc.note = "set later"
    assert key(ad_hoc) != key(Point(1, 2))


def test_subclasses_of_builtins_are_keyed_by_content_and_attributes() -> None:
    assert key(tagged([1, 2], "a")) == key(tagged([1, 2], "a"))
    assert key(tagged([1, 2], "a")) != key(tagged([1, 2], "b"))
    assert key(tagged([1, 2], "a")) != key(tagged([1, 3], "a"))
    assert key(tagged([1, 2], "")) != key([1, 2])
    assert key(MyDict(a=1)) != key(MyDict(a=2))  # overridden items()/__iter__ are not used
    assert key(MyDict(a=1, b=2)) == key(MyDict(b=2, a=1))
    assert key(Shout("a")) != key(Shout("b"))
    assert key(Shout("a")) != key("a")


def test_values_whose_state_python_cannot_show_are_refused() -> None:
    assert "only identity is its address" in refusal(object())
    message = refusal(MyRandom(1))
    assert "_random.Random keeps state in C" in message and "__beautyspot_key__" in message
    assert "subclass of dict" in refusal(MyOrderedDict(a=1))
    assert "__beautyspot_key__" in refusal(MyOrderedDict(a=1))
    assert "only identity is its address" in refusal(threading.Lock())


def test_cycles_are_refused_and_shared_values_are_not() -> None:
    looped = A(None)
    looped.k = [looped]
    assert "(at arg.k[0]) contains itself" in refusal(looped)
    shared = A(1)
    assert key([shared, shared]) == key([A(1), A(1)])


def test_simple_namespace_is_keyed_by_its_attributes() -> None:
    assert key(types.SimpleNamespace(a=1)) == key(types.SimpleNamespace(a=1))
    assert key(types.SimpleNamespace(a=1)) != key(types.SimpleNamespace(a=2))


def test_instances_from_the_standard_library_that_are_plain_python() -> None:
    from fractions import Fraction

    assert key(Fraction(1, 2)) == key(Fraction(2, 4))
    assert key(Fraction(1, 2)) != key(Fraction(1, 3))


# -- 4. pydantic ------------------------------------------------------------------------------


if pydantic is not None:  # module level: each model has an importable name

    class Secret(pydantic.BaseModel):
        name: str
        hidden: int = pydantic.Field(0, exclude=True)
        _token: str = pydantic.PrivateAttr("")

    class Rounded(pydantic.BaseModel):
        value: float

        @pydantic.field_serializer("value")
        def _round(self, value: float) -> float:
            return round(value)

    class Animal(pydantic.BaseModel):
        name: str

    class Dog(Animal):
        pass

    class Cat(pydantic.BaseModel):
        name: str

    class Pen(pydantic.BaseModel):
        animal: Animal

    class Either(pydantic.BaseModel):
        pet: Union[Dog, Cat]  # noqa: UP007 - the typing spelling is the one under test

    class Anything(pydantic.BaseModel):
        value: Any

    class Open(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        a: int = 1

    T = typing.TypeVar("T")

    class Box(pydantic.BaseModel, typing.Generic[T]):
        item: T


@needs_pydantic
def test_pydantic_models_are_keyed_by_their_state_not_their_dump() -> None:
    assert key(Secret(name="a")) == key(Secret(name="a"))
    assert key(Secret(name="a", hidden=1)) != key(Secret(name="a", hidden=2))
    first, second = Secret(name="a"), Secret(name="a")
    first._token, second._token = "x", "y"
    assert key(first) != key(second)
    assert key(Rounded(value=1.01)) != key(Rounded(value=1.02))
    assert key(Pen(animal=Animal(name="a"))) != key(Pen(animal=Dog(name="a")))
    assert key(Either(pet=Dog(name="a"))) != key(Either(pet=Cat(name="a")))
    assert key(Anything(value=Animal(name="a"))) != key(Anything(value={"name": "a"}))
    assert key(Open(a=1, z=1)) != key(Open(a=1, z=2))
    assert key(Open(a=1)) != key(Open())  # which fields were set is part of the state
    assert key(Box[int](item=1)) != key(Box[str](item="1"))
    assert key(Box[int](item=1)) == key(Box[int](item=1))


def test_a_model_dump_method_is_never_called() -> None:
    class Dumps:
        def __init__(self) -> None:
            self.a = 1

        def model_dump(self, mode: str) -> dict[str, Any]:
            raise AssertionError("called")

    assert key(Dumps()) == key(Dumps())


# -- 5. classes without an importable name ----------------------------------------------------


def make_enum(value: int) -> type[enum.Enum]:
    class Metal(enum.Enum):
        GOLD = value

    return Metal


def make_class(value: int) -> type:
    class Config:
        level = value

        def describe(self) -> str:
            return f"{type(self).__name__} {self.level}"

    return Config


def make_dataclass(default: int) -> type:
    @dataclasses.dataclass
    class Settings:
        depth: int = default

    return Settings


def make_recursive(value: int) -> type:
    class Node:
        weight = value

        def __init__(self) -> None:
            super().__init__()  # refers to __class__

        def clone(self) -> Any:
            return Node()

    Node.default = Node()  # type: ignore[attr-defined]
    return Node


def test_local_classes_are_keyed_by_their_contents() -> None:
    assert key(make_enum(1).GOLD) != key(make_enum(2).GOLD)
    assert key(make_enum(1).GOLD) == key(make_enum(1).GOLD)
    assert key(make_class(1)) != key(make_class(2))
    assert key(make_class(1)) == key(make_class(1))
    assert key(make_class(1)()) != key(make_class(2)())
    assert key(make_dataclass(1)()) != key(make_dataclass(2)(1))
    assert key(make_dataclass(1)) != key(make_dataclass(2))


def test_classes_made_by_type_are_keyed_by_their_contents() -> None:
    assert key(type("X", (), {"a": 1})) != key(type("X", (), {"a": 2}))
    assert key(type("X", (), {"a": 1})) == key(type("X", (), {"a": 1}))
    assert key(type("X", (), {"a": 1})) != key(type("X", (A,), {"a": 1}))
    assert key(type("X", (), {"a": 1})()) != key(type("X", (), {"a": 2})())


def test_namedtuples_carry_their_field_names() -> None:
    xy = collections.namedtuple("P", "x y")
    ab = collections.namedtuple("P", "a b")
    assert key(xy(1, 2)) != key(ab(1, 2))
    assert key(xy(1, 2)) == key(collections.namedtuple("P", "x y")(1, 2))
    with_default = collections.namedtuple("P", "x y", defaults=[0])
    assert key(with_default) != key(xy)
    assert key(xy(1, 2)) != key((1, 2))


def test_a_class_that_refers_to_itself_is_keyed() -> None:
    assert key(make_recursive(1)) == key(make_recursive(1))
    assert key(make_recursive(1)) != key(make_recursive(2))
    assert key(make_recursive(1).default) != key(make_recursive(2).default)


def test_a_class_whose_contents_cannot_be_keyed_is_refused_clearly() -> None:
    def make() -> type:
        class Pool:
            guard = threading.Lock()

        return Pool

    message = refusal(make())
    assert "is the class" in message and "Pool" in message
    assert "define the class at module level" in message
    assert "Pool.guard is a _thread.lock" in message


def test_importable_classes_are_keyed_by_name() -> None:
    assert importable_name(A) == f"{__name__}.A"
    assert importable_name(collections.OrderedDict) == "collections.OrderedDict"
    assert importable_name(make_class(1)) is None
    assert key(A) == key(A)


def test_a_replaced_class_is_not_keyed_by_its_name() -> None:
    module = types.ModuleType("beautyspot_test_replaced")
    sys.modules[module.__name__] = module
    try:
        exec("class Thing:\n    size = 1\n", vars(module))
        old = module.Thing
        exec("class Thing:\n    size = 2\n", vars(module))
        assert importable_name(module.Thing) == "beautyspot_test_replaced.Thing"
        assert importable_name(old) is None
        assert key(old) != key(module.Thing)
    finally:
        del sys.modules[module.__name__]


MAIN_SOURCE = """
from beautyspot.cachekey import input_id
class Setting:
    level = {level}
print(input_id({{"s": Setting()}}))
"""


def test_classes_of_a_main_without_a_name_are_keyed_by_contents() -> None:
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}

    def run(level: int) -> str:
        done = subprocess.run(
            [sys.executable, "-c", MAIN_SOURCE.format(level=level)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    assert run(1) != run(2)
    assert run(1) == run(1)


# -- 6. raw exceptions and test doubles --------------------------------------------------------


class Angry:
    """Any attribute it does not have raises something other than AttributeError."""

    def __init__(self, v: Any) -> None:
        self.v = v

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


class Furious:
    def __init__(self, v: Any) -> None:
        object.__setattr__(self, "v", v)

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


def test_objects_whose_attribute_lookup_raises_are_keyed_without_raising() -> None:
    assert key(Angry(1)) == key(Angry(1))
    assert key(Angry(1)) != key(Angry(2))


def test_objects_whose_every_attribute_raises_are_keyed_without_raising() -> None:
    assert key(Furious(1)) == key(Furious(1))
    assert key(Furious(1)) != key(Furious(2))


@pytest.mark.parametrize(
    "double",
    [mock.Mock(), mock.MagicMock(), mock.NonCallableMock(), mock.Mock(spec=A),
     mock.Mock(spec=lambda x: x), mock.AsyncMock()],
    ids=["mock", "magic", "noncallable", "spec-class", "spec-function", "async"],
)  # fmt: skip
def test_test_doubles_are_refused(double: Any) -> None:
    message = refusal(double)
    assert "test double" in message
    with pytest.raises(CacheKeyError, match="test double"):
        canonical_bytes([double])


# -- 7. annotations and messages --------------------------------------------------------------


def test_generic_aliases_are_keyed_by_origin_and_arguments() -> None:
    assert key(list[int]) == key(list[int])
    assert key(list[int]) != key(list[str])
    assert key(list[int]) != key(list)
    assert key(dict[str, int]) != key(dict[int, str])
    assert key(int | str) == key(int | str)
    assert key(int | str) != key(int | bytes)
    assert "function" not in describe(list[int])
    assert "list[int]" in describe(list[int])


def test_describe_never_raises_and_says_what_the_value_is() -> None:
    assert "test double" in describe(mock.Mock())
    assert "bare object()" in describe(object())
    assert "is a function" in describe(print)
    assert "Furious" in describe(Furious(1))


# -- fast paths -------------------------------------------------------------------------------


def test_builtins_never_reach_the_shape_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(value: Any, walk: Walk) -> None:
        raise AssertionError(f"a shape rule saw {value!r}")

    monkeypatch.setattr(core, "SHAPES", [fail])
    value = {"a": [1, 2.5, None, True], "b": (b"x", "y", frozenset({1})), "c": {3}, "d": 1j}
    assert canonical_bytes(value) == canonical_bytes(dict(value))


# -- 8. KeyGen paths ---------------------------------------------------------------------------


def test_from_path_stat_tells_files_with_one_relative_name_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        data = tmp_path / folder / "data.txt"
        data.write_text("same")
        os.utime(data, ns=(1_000_000_000, 1_000_000_000))
        monkeypatch.chdir(tmp_path / folder)
        keys.append(KeyGen.from_path_stat("data.txt"))
        assert KeyGen.from_path_stat(data) == keys[-1]
    assert keys[0] != keys[1]


def test_from_path_stat_resolves_links_and_missing_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data.txt"
    data.write_text("x")
    link = tmp_path / "link.txt"
    try:
        link.symlink_to(data)
    except OSError:
        pytest.skip("no symlinks here")
    assert KeyGen.from_path_stat(link) == KeyGen.from_path_stat(data)
    missing = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        missing.append(KeyGen.from_path_stat("absent.txt"))
        assert missing[-1] == "missing:" + str((tmp_path / folder / "absent.txt").resolve())
        assert KeyGen.from_file_content("absent.txt") == missing[-1]
    assert missing[0] != missing[1]


def test_from_file_content_is_documented_as_the_exact_choice() -> None:
    assert "exact" in (KeyGen.from_file_content.__doc__ or "")
    assert "from_file_content" in (KeyGen.from_path_stat.__doc__ or "")
