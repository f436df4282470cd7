"""Keys under pressure: equal inputs share a key, unequal inputs never do, in any interpreter.

Covered elsewhere and not repeated: hypothesis injectivity over scalars, lists, tuples and
str-keyed dicts, hash-seed independence of input ids, pinned input ids, cache keys and canonical
bytes (test_cachekey.py). Added here: numpy arrays of every dtype and shape by hypothesis, sets
and dicts whose elements and keys mix 1, 1.0, True, -0.0 and 0.0, and whole cache keys of a marked
function (defaults, ``*args``, ``**kwargs``, ``version``) identical in two interpreters with
different PYTHONHASHSEED and pinned in this file.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import beautyspot as bs
from beautyspot.cachekey import canonical_bytes, input_id

np = pytest.importorskip("numpy")
from hypothesis.extra import numpy as hnp  # noqa: E402  (needs numpy, checked just above)

SRC = str(Path(bs.__file__).resolve().parents[1])

# -- numpy arrays -----------------------------------------------------------------------------

DTYPES = ["<i1", "<u1", "<i4", ">i4", "<u4", "<f4", "<i8", "<f8", ">f8", "<c16", "?", "<M8[s]",
          "<M8[ns]", "<m8[D]", "S3", "<U2"]  # fmt: skip
ARRAYS = hnp.arrays(
    dtype=st.sampled_from(DTYPES).map(np.dtype),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def key(value: Any) -> str:
    return input_id({"value": value})


@SETTINGS
@given(ARRAYS)
def test_equal_arrays_in_any_memory_layout_share_a_key(array: Any) -> None:
    copies = [array.copy(), array.copy(order="F")]
    if array.ndim:  # asfortranarray would make a 0-d array 1-d
        copies.append(np.asfortranarray(array))
        padded = np.zeros((*array.shape[:-1], array.shape[-1] * 2), array.dtype)
        padded[..., ::2] = array
        copies.append(padded[..., ::2])  # a strided view with the same values
    assert {key(copy) for copy in copies} == {key(array)}


@SETTINGS
@given(ARRAYS, st.sampled_from(DTYPES).map(np.dtype))
def test_the_same_bytes_under_another_dtype_is_another_key(array: Any, other: Any) -> None:
    if other == array.dtype or other.itemsize != array.dtype.itemsize:
        other = np.dtype(f"V{array.dtype.itemsize}")  # same bytes, a dtype it cannot equal
    viewed = np.ascontiguousarray(array).view(other)
    assert key(viewed) != key(array)


@SETTINGS
@given(ARRAYS)
def test_the_same_values_in_another_shape_is_another_key(array: Any) -> None:
    shapes = {(array.size,), (1, array.size), (array.size, 1), (*array.shape, 1)} - {array.shape}
    assert key(array) not in {key(array.reshape(shape)) for shape in shapes}


@SETTINGS
@given(ARRAYS)
def test_an_array_is_not_its_list_nor_its_scalars(array: Any) -> None:
    assert key(array) != key(array.tolist())
    if array.size == 1:
        assert key(array) != key(array.reshape(())[()])


def test_numpy_scalars_are_not_python_scalars_nor_each_other() -> None:
    values = [1, 1.0, True, np.int64(1), np.int32(1), np.float64(1.0), np.float32(1.0),
              np.bool_(True), np.array(1), np.array([1])]  # fmt: skip
    assert len({key(value) for value in values}) == len(values)


# -- mixed scalars in sets and mappings -------------------------------------------------------

_TRICKY = st.sampled_from([0, 1, -1, 0.0, -0.0, 1.0, -1.0, True, False, "1", b"1", "", b"", None])
_HASHABLE = st.recursive(
    _TRICKY, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=6
)
_VALUES = st.recursive(
    _HASHABLE,
    lambda inner: (
        st.sets(_HASHABLE, max_size=4)
        | st.lists(inner, max_size=3)
        | st.dictionaries(_HASHABLE, inner, max_size=4)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal as beautyspot keys them: same types all the way down, -0.0 is not 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            any(same(k, j) and same(v, b[j]) for j in b) for k, v in a.items()
        )
    return a == b


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES, _VALUES)
def test_keys_are_equal_exactly_when_values_are_the_same(a: Any, b: Any) -> None:
    assert (canonical_bytes(a) == canonical_bytes(b)) == same(a, b)


def test_sets_and_dict_keys_keep_1_and_1_0_and_true_apart() -> None:
    assert {1} == {1.0} == {True} and {1: "x"} == {1.0: "x"} == {True: "x"}  # Python says equal
    assert len({key({1}), key({1.0}), key({True})}) == 3
    assert len({key({1: "x"}), key({1.0: "x"}), key({True: "x"})}) == 3
    assert key({0.0}) != key({-0.0}) and key({"k": 0.0}) != key({"k": -0.0})
    assert key({math.nan: 1}) == key({float("nan"): 1})  # every NaN is one input


# -- the same keys in every interpreter ------------------------------------------------------

KEYED_MODULE = """
import datetime, decimal, math, os
import numpy as np
import beautyspot as bs

spot = bs.Spot("keys", db=os.environ["KEYS_DB"])

@spot.mark(version="v1")
def job(a, b=2, *rest, **options):
    return None

CALLS = [
    ((1,), {}), ((1.0,), {}), ((True,), {}), ((1, 2), {}), ((1,), {"b": 2}),
    ((0.0,), {}), ((-0.0,), {}), ((math.nan,), {}), (("1",), {}), ((b"1",), {}),
    (((1,),), {}), (([1],), {}), ((1, 2, 3), {}), ((1,), {"z": 1, "y": 2}),
    (({"beta", "alpha", "gamma", "delta", "epsilon", "zeta", "eta", "theta"},), {}),
    ((frozenset("abcdefghijklmnop"),), {}),
    (({f"k{i}": i for i in range(40)},), {}),
    (({3: "int", 3.5: "float", "3": "str", (3,): "tuple"},), {}),
    ((np.arange(6, dtype="<i4").reshape(2, 3),), {}),
    ((np.arange(6, dtype="<i4").reshape(3, 2),), {}),
    ((np.arange(6, dtype=">i4").reshape(2, 3),), {}),
    ((np.arange(6, dtype="<i8"),), {}),
    ((np.float32(1.5),), {}),
    ((decimal.Decimal("1.10"), datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)), {}),
]

def keys():
    return [job.cache_key(*args, **kwargs) for args, kwargs in CALLS]
"""

# Computed once when the key format was fixed; a change here turns every stored result into a
# miss, so it must be deliberate (and bump the key format's personalisation strings).
PINNED_KEYS = [
    "0a9afa662b0ffeb0c6d3f84b425a137a",
    "8abe5a2e922c9e50d8d1fe8866f9414c",
    "cf39da826fc6edf447d35b6940bec44b",
    "0a9afa662b0ffeb0c6d3f84b425a137a",
    "0a9afa662b0ffeb0c6d3f84b425a137a",
    "808d6f1c7aad5a18c0bb7b619a0f096c",
    "79528b30c2402e02f6b4e175eb238c4e",
    "7523a75ef47cccc90b7dd60be9a739fb",
    "8f15ca1881f96605bb3081ee4db7ee88",
    "d245dd2847cb36e5e93e72ff0604a85a",
    "25846f610249cebb66ac9d01a82a5720",
    "0680f3fa883aac9e644ce730f6d838c3",
    "0aeab548960c6f722a8c5116bb46b884",
    "19a554f00d286c6604a22db3484d3e42",
    "db23e888f6ba54d244471253a8aee124",
    "222495da290af2b9243f13ce2b4f076d",
    "419a2f0f3d1d6c934ac5bc0042b76f55",
    "dca8bbb931e217ff3c659b46472657a1",
    "4c134f4518053cb5e511adc4799e3a7c",
    "f8fef1968af79b6e93a9e6c7020564f6",
    "fc3c9e63d5e691552559a415a8ffddff",
    "e87734ee39bd3a06bf26b53c78d260cb",
    "e300d37fdbe26e54463ab7d77ee8fda9",
    "8a45e9645d4948e62e1c531cfa5e4712",
]


@pytest.fixture
def keyed_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "keyed_job.py").write_text(textwrap.dedent(KEYED_MODULE))
    monkeypatch.setenv("KEYS_DB", str(tmp_path / "keys.db"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import keyed_job

    yield keyed_job
    keyed_job.spot.close()
    del sys.modules["keyed_job"]


def keys_in_another_interpreter(folder: Path, hash_seed: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", "import json, keyed_job; print(json.dumps(keyed_job.keys()))"],
        cwd=folder,
        env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": f"{SRC}{os.pathsep}{folder}"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_cache_keys_are_the_same_in_every_interpreter_and_pinned(
    keyed_module: Any, tmp_path: Path
) -> None:
    here = keyed_module.keys()
    # (1,), (1, 2) and (1, b=2) bind to the same arguments; every other call differs
    assert here[0] == here[3] == here[4]
    assert len(set(here)) == len(here) - 2
    assert keys_in_another_interpreter(tmp_path, "1") == here
    assert keys_in_another_interpreter(tmp_path, "2024") == here
    assert here == PINNED_KEYS
