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
    "877b0ad62422eddd8f3a22e7f5b07f2f",
    "bf6d3e665481347fda7131ed825678b6",
    "d1ade6fa4da7a57b5692274ef64f9022",
    "877b0ad62422eddd8f3a22e7f5b07f2f",
    "877b0ad62422eddd8f3a22e7f5b07f2f",
    "54fc0d4b7dcd20e8d87ada9d82524d2f",
    "674c5d3367add156e21416da0f0014e5",
    "3cea567d426a012f68ee1fd86b8997ef",
    "33ef823c3ac0ef69ad8c981f3f9eb65f",
    "cfe82ca0b0d3995c028244646bb16e28",
    "c29f81f67beb0b818a85ef80a267af6f",
    "30ee168d29b7b36bc7c6ceb7f4447c95",
    "52888d8923caa11dad5eb7026222026b",
    "60e55ba7582bcbe0df90aad7a052626e",
    "25e76a8bfb1d18e256aaaf5010f74bc1",
    "9c943a1719260312a33dfd31433ed336",
    "47eff6d0dc05bbb01b9fb9b09ba64472",
    "f472f73ae6b6f43fe4490f542cac9872",
    "e691473bb4ca3250817da53643df6810",
    "c8641fa494d59fa7af040dfbca478f4d",
    "7a6c4b530cd932ac1cdd7553aa0d668f",
    "21b20cdeabb8ef2579d8854ede38ad58",
    "82d9d84a63dd6df4a1659016b43d5930",
    "07ddb3309d9cfbf80b79b6daf98b6f05",
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
