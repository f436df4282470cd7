"""``fn.explain(...)``, ``beautyspot explain`` and the per-argument digests records keep: each
diagnosis triggered for real, on real records, and explaining never runs or writes anything."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import sqlite_dump

import beautyspot as bs
from beautyspot import cli
from beautyspot.cachekey.digests import unpack_entries
from beautyspot.explain import BY_INPUT_KEY_FN, IGNORED, KEYED, Explanation, explain_record

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


def total(n: Any) -> Any:
    return n * 2


def mean_of(df: Any) -> float:
    return float(df.to_numpy().mean())


@pytest.fixture
def spot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    opened = bs.Spot("a", db=tmp_path / "a.db")
    yield opened
    opened.close()


# -- would hit, and the parts of the key ---------------------------------------------------


def test_a_stored_call_would_hit_and_shows_its_key_parts(spot: Any) -> None:
    fn = spot.mark(version="v1")(total)
    fn(21)
    explained = fn.explain(21)
    assert isinstance(explained, Explanation)
    assert explained.would_hit is True and explained.reasons == ()
    assert explained.cache_key == fn.cache_key(21)
    assert (explained.func_name, explained.version) == ("tests.test_explain.total", "v1")
    assert explained.code_fingerprint == explained.record["code_fingerprint"]
    (argument,) = explained.arguments
    assert (argument.name, argument.role, argument.value, argument.type_name) == (
        "n", KEYED, 21, "int"
    )  # fmt: skip
    text = str(explained)
    assert text.startswith("tests.test_explain.total(n=21): would hit")
    assert f"cache key  {fn.cache_key(21)}" in text and "version    'v1'" in text
    assert "n            21 (int)" in text
    assert "would_hit=True" in repr(explained)


# -- each diagnosis, for real ----------------------------------------------------------------


def test_a_new_version_is_named(spot: Any) -> None:
    spot.mark(version="v1")(total)(3)
    explained = spot.mark(version="v2")(total).explain(3)
    assert explained.would_hit is False
    assert explained.reasons == ("stored under version 'v1', now 'v2'",)
    assert "  - stored under version 'v1', now 'v2'" in str(explained)


def test_an_int_that_became_a_float_is_named_with_both_types(spot: Any) -> None:
    fn = spot.mark(total)
    fn(1)
    fn(5)  # newer, but further from 1.0: the nearest record is the one of 1
    explained = fn.explain(1.0)
    assert explained.would_hit is False
    assert explained.reasons == ("argument n: stored 1 (int), now 1.0 (float)",)
    assert [n.cache_key for n in explained.neighbours] == [fn.cache_key(1), fn.cache_key(5)]


def test_dataframe_dtypes_that_changed_are_named(spot: Any) -> None:
    fn = spot.mark(mean_of)
    fn(pd.DataFrame({"x": np.array([1, 2], dtype="int32"), "y": [0.5, 1.5]}))
    explained = fn.explain(pd.DataFrame({"x": np.array([1, 2], dtype="int64"), "y": [0.5, 1.5]}))
    assert explained.reasons == ("argument df: same columns, dtypes differ (int32 vs int64)",)
    renamed = fn.explain(pd.DataFrame({"z": np.array([1, 2], dtype="int32"), "y": [0.5, 1.5]}))
    assert renamed.reasons == ("argument df: columns differ (stored 2 x 2, now 2 x 2)",)


def scaled_mean(df: Any, factor: int = 1, label: str = "") -> float:
    return mean_of(df) * factor


def both(first: Any, second: Any) -> int:
    return len(first) + len(second)


def test_a_large_argument_beside_small_ones_is_told_by_the_input_id(spot: Any) -> None:
    """One argument not kept as a value has no digest of its own (the input id stands for
    it): when the small ones match, it is the one that differs; when they do not, only its
    type and shape are compared."""
    fn = spot.mark(scaled_mean)
    frame32 = pd.DataFrame({"x": np.array([1, 2], dtype="int32")})
    fn(frame32, 2)
    entries = unpack_entries(spot.db.get(fn.cache_key(frame32, 2))["arg_digests"])
    assert entries["df"][0] is None and entries["factor"] == 2 and entries["label"] == ""
    assert fn.explain(frame32, 3).reasons == ("argument factor: stored 2 (int), now 3 (int)",)
    assert fn.explain(pd.DataFrame({"x": np.array([5, 6], dtype="int32")}), 2).reasons == (
        "argument df: same columns and dtypes (now 2 x 1), other values",
    )
    frame64 = pd.DataFrame({"x": np.array([1, 2], dtype="int64")})
    assert fn.explain(frame64, 2).reasons == (
        "argument df: same columns, dtypes differ (int32 vs int64)",
    )
    assert fn.explain(frame64, 3).reasons == (
        "argument factor: stored 2 (int), now 3 (int)",
        "argument df: same columns, dtypes differ (int32 vs int64)",
    )


def test_several_large_arguments_each_keep_a_digest(spot: Any) -> None:
    fn = spot.mark(both)
    first, second = np.arange(100), np.arange(100, 200)
    fn(first, second)
    assert fn.explain(first, second + 1).reasons == (
        "argument second: same type and shape (ndarray int64 (100,)), other values",
    )


def test_numpy_arrays_are_told_apart_by_dtype_and_shape(spot: Any) -> None:
    fn = spot.mark(total)
    fn(np.arange(3, dtype="int32"))
    assert fn.explain(np.arange(3, dtype="int64")).reasons == (
        "argument n: stored ndarray int32 (3,), now ndarray int64 (3,)",
    )
    assert fn.explain(np.arange(1, 4, dtype="int32")).reasons == (
        "argument n: same type and shape (ndarray int32 (3,)), other values",
    )


def test_changed_code_is_named(spot: Any) -> None:
    def area(n: int) -> int:
        return n * 2

    before = spot.mark(version="auto")(area)
    before(3)

    def area(n: int) -> int:  # the same function, edited
        return n * 3

    explained = spot.mark(version="auto")(area).explain(3)
    assert explained.would_hit is False
    fingerprints = (before.explain(3).code_fingerprint, explained.code_fingerprint)
    assert explained.reasons == (
        f"function code changed since the record was stored (fingerprint {fingerprints[0]}, "
        f"now {fingerprints[1]})",
    )


def test_a_hit_computed_by_other_code_says_why_it_is_still_served(
    spot: Any, tmp_path: Path
) -> None:
    fn = spot.mark(version="v1")(total)
    fn(2)
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.execute("UPDATE tasks SET code_fingerprint = '00000000deadbeef'")  # as older code did
    conn.commit()
    conn.close()
    explained = fn.explain(2)
    assert explained.would_hit is True
    assert explained.reasons == (
        f"served although computed by other code (fingerprint 00000000deadbeef, now "
        f"{explained.code_fingerprint}): version='v1' did not change",
    )


def test_captured_values_that_changed_are_named(spot: Any) -> None:
    def scaled(factor: int) -> Any:
        def times(n: int) -> int:
            return n * factor

        return spot.mark(times)

    scaled(2)(5)
    (reason,) = scaled(3).explain(5).reasons
    assert reason.startswith("same arguments and version, but the function's identity differs")


def test_no_record_in_this_file_points_at_the_file_that_has_them(spot: Any, tmp_path: Path) -> None:
    other = bs.Spot("b", db=tmp_path / "b.db")
    other.mark(total)(1)
    other.close()
    explained = spot.mark(total).explain(1)
    assert explained.would_hit is False and explained.neighbours == ()
    assert explained.reasons == (
        "no record of this function in this store: is the Spot's db the same file? "
        "(./a.db vs ./b.db, which holds 1 of its records)",
    )


def test_no_record_and_no_other_file_says_which_file_the_spot_uses(spot: Any) -> None:
    (reason,) = spot.mark(total).explain(1).reasons
    assert reason == (
        "no record of this function in this store: is the Spot's db the same file? "
        "(this Spot uses ./a.db)"
    )


def test_a_function_stored_under_another_module_is_named(spot: Any, tmp_path: Path) -> None:
    fn = spot.mark(total)
    fn(1)
    fn(2)
    conn = sqlite3.connect(tmp_path / "a.db")  # as if stored when its script had another name
    conn.execute("UPDATE tasks SET func_name = 'old_script.total', cache_key = 'f' || cache_key")
    conn.commit()
    conn.close()
    (reason,) = fn.explain(1).reasons
    assert reason.startswith(f"no record of {fn._marked_call.func_id} in this store, but ")
    assert "old_script.total has 2: a function is named by its module" in reason


def test_a_shared_store_is_named_without_its_password() -> None:
    from beautyspot.db.redis import RedisTaskDB
    from beautyspot.explain import _no_records

    db = RedisTaskDB("redis://:s3cret-pass@127.0.0.1:6399/0", namespace="api")
    reason = _no_records(db, "m.f", "f")
    assert "s3cret" not in reason
    assert "RedisTaskDB at redis://:***@127.0.0.1:6399/0, namespace 'api'" in reason


def test_an_expired_record_is_named(spot: Any, tmp_path: Path) -> None:
    fn = spot.mark(retention=3600)(total)
    fn(4)
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.execute("UPDATE tasks SET expires_at = 1.0")  # expired long ago
    conn.commit()
    conn.close()
    (reason,) = fn.explain(4).reasons
    assert reason.startswith("the record of this key expired at 1970-01-01")


# -- ignore, input_key_fn, async, old records --------------------------------------------------


def test_ignored_arguments_and_input_key_fn_are_said_so(spot: Any) -> None:
    def greet(text: str, verbose: bool = False) -> str:
        return text

    quiet = spot.mark(ignore=("verbose",))(greet)
    quiet("hi")
    explained = quiet.explain("hi", verbose=True)
    assert explained.would_hit is True
    assert [(a.name, a.role) for a in explained.arguments] == [
        ("text", KEYED), ("verbose", IGNORED)
    ]  # fmt: skip
    assert "verbose      ignored" in str(explained)

    folded = spot.mark(input_key_fn=lambda text, verbose=False: text.lower())(greet)
    folded("Hi")
    assert folded.explain("HI", verbose=True).would_hit is True
    explained = folded.explain("Ho")
    assert [(a.name, a.role) for a in explained.arguments] == [
        ("input_key_fn", KEYED), ("text", BY_INPUT_KEY_FN), ("verbose", BY_INPUT_KEY_FN)
    ]  # fmt: skip
    assert explained.reasons == ("argument input_key_fn: stored 'hi' (str), now 'ho' (str)",)


def test_async_functions_are_explained_by_a_plain_call(spot: Any) -> None:
    calls = []

    async def fetch(n: int) -> int:
        calls.append(n)
        return n

    marked = spot.mark(fetch)
    asyncio.run(marked(1))
    assert marked.explain(1).would_hit is True
    missing = marked.explain(2)
    assert missing.would_hit is False
    assert missing.reasons == ("argument n: stored 1 (int), now 2 (int)",)
    assert calls == [1]


def test_explaining_runs_nothing_and_writes_nothing(spot: Any, tmp_path: Path) -> None:
    calls = []

    def work(n: int) -> int:
        calls.append(n)
        return n

    fn = spot.mark(version="v1")(work)
    fn(1)
    before = sqlite_dump(tmp_path / "a.db")
    for args in [(1,), (2,), (1.0,)]:
        fn.explain(*args)
    spot.mark(version="v2")(work).explain(1)
    assert calls == [1]
    assert sqlite_dump(tmp_path / "a.db") == before
    assert not fn.is_cached(2)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("a.db")) == []


def test_a_record_from_before_digests_says_so(spot: Any, tmp_path: Path) -> None:
    fn = spot.mark(total)
    fn(1)
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.execute("UPDATE tasks SET arg_digests = NULL")
    conn.commit()
    conn.close()
    assert fn.explain(1).would_hit is True  # the key format did not change
    assert fn.explain(2).reasons == (
        "arguments differ; the record predates per-argument digests, so which cannot be told "
        "(stored input: n=1)",
    )
    old = explain_record(spot.db, spot.db.get(fn.cache_key(1)))
    assert old.digests_known is False and old.arguments == ()
    assert "(this record predates per-argument digests)" in str(old)


# -- what records keep -----------------------------------------------------------------------


def test_records_keep_a_few_bytes_per_argument_computed_on_misses_only(
    spot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import beautyspot.call

    computed = []
    real = beautyspot.call.record_digests
    monkeypatch.setattr(
        beautyspot.call, "record_digests", lambda *a: computed.append(a) or real(*a)
    )
    fn = spot.mark(total)
    fn(7)
    fn(7)
    fn(7)
    assert len(computed) == 1  # the miss; never the hits
    stored = spot.db.get(fn.cache_key(7))["arg_digests"]
    assert unpack_entries(stored) == {"n": 7}
    assert len(stored) == 7  # 4 bytes of layout, 3 for n=7 (its name and value)
    fn(np.zeros((100, 100)))
    big = spot.db.get(fn.cache_key(np.zeros((100, 100))))["arg_digests"]
    assert len(big) <= 40  # an 80 KB array: a digest, its type, dtype and shape


# -- the command line ------------------------------------------------------------------------


def test_the_cli_explains_a_stored_record_and_its_neighbours(
    spot: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fn = spot.mark(version="v1")(total)
    fn(1)
    fn(2.5)
    key = fn.cache_key(1)
    code = cli.main(["explain", str(tmp_path / "a.db"), key[:8]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"record {key}: a stored record of tests.test_explain.total")
    assert "n            1 (int)" in out
    assert "argument n: other 2.5 (float), this 1 (int)" in out
    assert out == str(explain_record(spot.db, spot.db.get(key))) + "\n"


def test_the_cli_refuses_unknown_and_ambiguous_prefixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = bs.db.SQLiteTaskDB(tmp_path / "keys.db")
    for key in ("abc1", "abc2", "abd3"):
        db.save(key, "m.f", "in", None, "inline", None, result_data=b"\x01")
    db.close()
    assert cli.main(["explain", str(tmp_path / "keys.db"), "zz"]) == cli.EXIT_NO_MATCH
    assert "no record's key starts with 'zz'" in capsys.readouterr().err
    assert cli.main(["explain", str(tmp_path / "keys.db"), "abc"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "2 keys start with 'abc'" in err and "abc1" in err and "abc2" in err
    assert "abd3" not in err
    assert cli.main(["explain", str(tmp_path / "keys.db"), "abd"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "(this record predates per-argument digests)" in out


def test_input_key_fn_runs_once_per_miss_and_once_per_explain(spot: Any) -> None:
    calls = []

    def key_of(text: str) -> str:
        calls.append(text)  # e.g. KeyGen.from_file_content, which reads the whole file
        return text.lower()

    @spot.mark(input_key_fn=key_of)
    def shout(text: str) -> str:
        return text.upper()

    assert shout("Hi") == "HI"
    assert calls == ["Hi"]  # keyed once; the record keeps the value without a second call
    assert shout("hI") == "HI" and calls == ["Hi", "hI"]  # a hit: once
    explained = shout.explain("Ho")
    assert calls == ["Hi", "hI", "Ho"]
    assert explained.reasons == ("argument input_key_fn: stored 'hi' (str), now 'ho' (str)",)
