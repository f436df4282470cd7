"""Spot and mark: configuration, options, helpers, Project, user backends."""

from __future__ import annotations

import datetime as dt
import inspect
import os
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs
from beautyspot.db import SQLiteTaskDB, TaskDB
from beautyspot.storage import BlobStorageBase, LocalStorage


class Counter:
    """Counts executions of the functions under test."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __beautyspot_key__(self) -> None:
        return None  # a side channel of the test: results never depend on it

    def __len__(self) -> int:
        return len(self.calls)


def test_default_paths_are_name_db_and_blob_folder_in_the_working_directory(workdir: Path):
    spot = bs.Spot("my_analysis")

    @spot.mark(save_blob=True)
    def big():
        return b"x" * 10

    assert big() == b"x" * 10
    assert (workdir / "my_analysis.db").is_file()
    blobs = [p for p in (workdir / "my_analysis_blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1


def test_db_and_storage_accept_paths_and_instances(tmp_path: Path):
    by_path = bs.Spot("p", db=tmp_path / "x" / "a.db", storage=tmp_path / "blobs")
    assert isinstance(by_path.db, SQLiteTaskDB) and isinstance(by_path.storage, LocalStorage)
    db, storage = SQLiteTaskDB(tmp_path / "b.db"), LocalStorage(tmp_path / "b")
    by_instance = bs.Spot("i", db=db, storage=storage)
    assert by_instance.db is db and by_instance.storage is storage


def test_blobs_default_next_to_a_given_db_path(tmp_path: Path):
    spot = bs.Spot("near", db=tmp_path / "sub" / "cache.db", save_blob=True)

    @spot.mark
    def f():
        return 1

    f()
    assert any((tmp_path / "sub" / "near_blobs").rglob("*"))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "save_blob": "yes"}, "save_blob"),
        ({"name": "x", "blob_threshold": -1}, "blob_threshold"),
        ({"name": "x", "retention": "forever"}, "retention"),
        ({"name": "x", "db": 3}, "db"),
        ({"name": "x", "storage": 3.5}, "storage"),
        ({"name": "x", "db": "mongo://host/db"}, "db"),
        ({"name": "x", "tpm": 10, "tokens_per_minute": 10}, "tokens_per_minute"),
    ],
)
def test_bad_spot_settings_raise_a_clear_error(workdir: Path, kwargs: dict, named: str):
    with pytest.raises(bs.ConfigurationError, match=named):
        bs.Spot(**kwargs)


def test_unknown_keyword_arguments_are_type_errors(spot: bs.Spot):
    with pytest.raises(TypeError, match="colour"):
        bs.Spot("x", colour="red")
    with pytest.raises(TypeError, match="cache_forever"):
        spot.mark(cache_forever=True)


def test_mark_bare_and_with_options_keeps_name_doc_and_wrapped(spot: bs.Spot):
    def plain(x):
        """Doc."""
        return x

    bare = spot.mark(plain)
    configured = spot.mark(version="v1")(plain)
    for marked in (bare, configured):
        assert marked.__name__ == "plain" and marked.__doc__ == "Doc."
        assert marked.__wrapped__ is plain
        assert marked(3) == 3


def test_computed_once_per_input_and_helpers(spot: bs.Spot):
    seen = Counter()

    @spot.mark
    def square(x):
        seen.calls.append(x)
        return x * x

    assert not square.is_cached(4)
    assert [square(4), square(4), square(5)] == [16, 16, 25]
    assert seen.calls == [4, 5]
    assert square.is_cached(4)
    assert square.cache_key(4) == square.cache_key(x=4) != square.cache_key(5)
    assert square.invalidate(4) is True
    assert square.invalidate(4) is False
    assert not square.is_cached(4)
    assert square(4) == 16
    assert seen.calls == [4, 5, 4]


def test_results_persist_across_spots_on_one_file(workdir: Path):
    seen = Counter()

    def make():
        spot = bs.Spot("persist")

        @spot.mark
        def f(x):
            seen.calls.append(x)
            return {"x": x}

        return f

    assert make()("a") == {"x": "a"}
    assert make()("a") == {"x": "a"}
    assert len(seen) == 1


def test_defaults_and_keyword_spellings_share_one_key(spot: bs.Spot):
    seen = Counter()

    @spot.mark
    def f(a, b=2):
        seen.calls.append((a, b))
        return a + b

    assert {f(1), f(1, 2), f(1, b=2), f(a=1, b=2)} == {3}
    assert len(seen) == 1
    assert f(1, 3) == 4 and len(seen) == 2


def test_type_tagged_keys_keep_equal_looking_inputs_apart(spot: bs.Spot):
    @spot.mark
    def echo(x):
        return x

    inputs = [1, 1.0, True, "1", [1], (1,)]
    results = [echo(x) for x in inputs]
    for given, got in zip(inputs, results, strict=True):
        assert type(got) is type(given) and got == given
    assert len({echo.cache_key(x) for x in inputs}) == len(inputs)


def test_version_changes_the_key(spot: bs.Spot):
    seen = Counter()

    def body(x):
        seen.calls.append(x)
        return x

    v1 = spot.mark(version="v1")(body)
    v2 = spot.mark(version="v2")(body)
    v1(1), v1(1), v2(1)
    assert len(seen) == 2


def test_ignore_leaves_arguments_out_of_the_key(spot: bs.Spot):
    seen = Counter()

    @spot.mark(ignore=("logger",))
    def f(x, logger=None):
        seen.calls.append(x)
        return x

    f(1, logger=object())
    f(1, logger=lambda: None)
    assert len(seen) == 1
    with pytest.raises(bs.ConfigurationError, match="nope"):
        spot.mark(ignore=("nope",))(f.__wrapped__)


def test_unkeyable_argument_names_it_and_suggests_ignore(spot: bs.Spot):
    @spot.mark
    def f(callback):
        return 1

    with pytest.raises(bs.CacheKeyError, match="callback") as caught:
        f(threading.Lock())
    assert "ignore" in str(caught.value) and "input_key_fn" in str(caught.value)


def test_input_key_fn_and_keygen_alias(spot: bs.Spot, tmp_path: Path):
    seen = Counter()
    path = tmp_path / "data.txt"
    path.write_text("one")

    @spot.mark(keygen=bs.KeyGen.from_path_stat)
    def read(p):
        seen.calls.append(p)
        return Path(p).read_text()

    assert read(str(path)) == "one"
    assert read(str(path)) == "one"
    assert len(seen) == 1
    path.write_text("two!")
    assert read(str(path)) == "two!"
    assert len(seen) == 2
    with pytest.raises(bs.ConfigurationError, match="keygen"):
        spot.mark(keygen=len, input_key_fn=len)


def test_save_blob_modes_choose_where_the_result_lives(workdir: Path):
    spot = bs.Spot("modes", blob_threshold=100)
    kinds = {}
    for mode, size in [(None, 10), (None, 1000), (True, 10), (False, 1000)]:

        @spot.mark(save_blob=mode, version=f"{mode}-{size}")
        def make(n):
            return b"z" * n

        assert make(size) == b"z" * size
        kinds[(mode, size)] = spot.db.get(make.cache_key(size))["result_type"]
        assert make(size) == b"z" * size
    assert kinds == {
        (None, 10): "inline",
        (None, 1000): "blob",
        (True, 10): "blob",
        (False, 1000): "inline",
    }


def test_retention_expires_results(spot: bs.Spot, monkeypatch: pytest.MonkeyPatch):
    seen = Counter()

    @spot.mark(retention="1h")
    def f(x):
        seen.calls.append(x)
        return x

    f(1)
    record = spot.db.get(f.cache_key(1))
    assert record["expires_at"] == pytest.approx(record["created_at"] + 3600)
    f(1)
    assert len(seen) == 1
    later = time.time() + 3601
    monkeypatch.setattr(time, "time", lambda: later)
    assert not f.is_cached(1)
    f(1)
    assert len(seen) == 2


def test_spot_retention_is_inherited_and_overridable(workdir: Path):
    spot = bs.Spot("ret", retention=dt.timedelta(days=1))

    @spot.mark
    def inherits():
        return 1

    @spot.mark(retention=None)
    def forever():
        return 2

    inherits(), forever()
    assert spot.db.get(inherits.cache_key())["expires_at"] is not None
    assert spot.db.get(forever.cache_key())["expires_at"] is None


def test_generator_functions_are_marked_as_streams_of_their_own_kind(spot: bs.Spot):
    def gen():
        yield 1

    async def agen():
        yield 1

    assert inspect.isgeneratorfunction(spot.mark(gen))
    assert inspect.isasyncgenfunction(spot.mark(agen))
    assert list(spot.mark(gen)()) == [1]  # more in tests/test_stream.py


def test_project_task_is_mark_with_one_deprecation_warning(workdir: Path, monkeypatch):
    import beautyspot.spot as spot_module

    monkeypatch.setattr(spot_module, "_warned_v1", False)
    project = bs.Project("my_experiment")
    with pytest.warns(DeprecationWarning, match="mark"):

        @project.task
        def first(text):
            return f"Processed: {text}"

    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @project.task(version="v2")
        def second(text):
            return text

    assert first("A") == "Processed: A" and second("B") == "B"
    assert (workdir / "my_experiment.db").is_file()


def test_register_type_round_trips_and_accepts_type_class(spot: bs.Spot):
    class MyModel:
        def __init__(self, name):
            self.name = name

    spot.register_type(
        type_class=MyModel,
        code=10,
        encoder=lambda obj: obj.name.encode("utf-8"),
        decoder=lambda data: MyModel(data.decode("utf-8")),
    )

    @spot.mark
    def make(name):
        return MyModel(name)

    first, second = make("a"), make("a")
    assert isinstance(second, MyModel) and second.name == "a" and second is not first
    with pytest.raises(bs.ConfigurationError):
        spot.register_type(type_=dict, code=10, encoder=bytes, decoder=dict)


def test_unstorable_result_raises_before_writing_and_keeps_the_value(spot: bs.Spot):
    class Opaque:
        pass

    @spot.mark
    def make():
        return Opaque()

    with pytest.raises(bs.SerializationError, match="register_type") as caught:
        make()
    assert isinstance(caught.value.result, Opaque)
    assert not make.is_cached()
    assert spot.db.get_history(10) == []


def test_return_annotation_that_cannot_be_stored_warns_at_decoration(spot: bs.Spot):
    class Unregistered:
        pass

    def make() -> Unregistered:
        return Unregistered()

    make.__annotations__["return"] = Unregistered
    with pytest.warns(bs.BeautyspotWarning, match="Unregistered"):
        spot.mark(make)
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @spot.mark
        def fine() -> dict[str, int]:
            return {}


def test_exceptions_are_recorded_not_cached(spot: bs.Spot):
    seen = Counter()

    @spot.mark
    def flaky(x):
        seen.calls.append(x)
        if len(seen) == 1:
            raise ValueError(f"boom {x}")
        return x

    with pytest.raises(ValueError, match="boom 7"):
        flaky(7)
    assert not flaky.is_cached(7)
    assert flaky(7) == 7 and len(seen) == 2
    (failure,) = spot.db.get_failures(10)
    assert failure["error_type"] == "ValueError" and failure["message"] == "boom 7"
    assert "x=7" in failure["input_preview"] and "raise ValueError" in failure["traceback"]


def test_damaged_blob_is_a_miss_with_a_warning(spot: bs.Spot):
    seen = Counter()

    @spot.mark(save_blob=True)
    def f():
        seen.calls.append(1)
        return "precious"

    f()
    location = spot.db.get(f.cache_key())["result_value"]
    path = Path(spot.storage.root) / location
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert f() == "precious"
    assert len(seen) == 2
    # the same content has the same blob name: recomputing repaired the file
    assert f() == "precious"
    assert len(seen) == 2


def test_missing_blob_is_a_miss_with_a_warning(spot: bs.Spot):
    @spot.mark(save_blob=True)
    def f():
        return [1, 2]

    f()
    location = spot.db.get(f.cache_key())["result_value"]
    (Path(spot.storage.root) / location).unlink()
    with pytest.warns(bs.BeautyspotWarning, match="cannot be read"):
        assert f() == [1, 2]


def test_tampered_inline_value_is_a_miss(spot: bs.Spot):
    @spot.mark
    def f():
        return "right"

    f()
    with sqlite3.connect(spot.db.path) as conn:
        data = conn.execute("SELECT result_data FROM tasks").fetchone()[0]
        conn.execute("UPDATE tasks SET result_data = ?", (data.replace(b"right", b"wrong"),))
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert f() == "right"


def test_failed_save_warns_and_still_returns_the_result(spot: bs.Spot, monkeypatch):
    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spot.db, "save_record", disk_full)

    @spot.mark
    def f():
        return "paid"

    with pytest.warns(bs.BeautyspotWarning, match="not saved"):
        assert f() == "paid"


class MinimalDB(TaskDB):
    """Only the four methods the contract requires, JSON-ish storage like the seed's example."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.schema_ready = False

    def init_schema(self) -> None:
        self.schema_ready = True

    def get(self, cache_key: str) -> dict[str, Any] | None:
        return self.rows.get(cache_key)

    def save(self, cache_key, func_name, input_id, version, result_type, content_type,
             result_value=None, result_data=None):  # fmt: skip
        self.rows[cache_key] = {
            "func_name": func_name,
            "input_id": input_id,
            "version": version,
            "result_type": result_type,
            "content_type": content_type,
            "result_value": result_value,
            "result_data": result_data,
        }

    def get_history(self, limit: int = 1000) -> list[dict[str, Any]]:
        return list(self.rows.values())[-limit:]


class MinimalStorage(BlobStorageBase):
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def save(self, key: str, data: bytes) -> str:
        self.objects[f"mem/{key}"] = data
        return f"mem/{key}"

    def load(self, location: str) -> bytes:
        return self.objects[location]


def test_minimal_user_backends_work_as_full_caches(workdir: Path):
    db, storage = MinimalDB(), MinimalStorage()
    spot = bs.Spot("user", db=db, storage=storage)
    assert db.schema_ready
    seen = Counter()

    @spot.mark(save_blob=True, version="v2.0.1", content_type="application/json")
    def blob(x):
        seen.calls.append(x)
        return {"x": x}

    @spot.mark
    def inline(x):
        seen.calls.append(x)
        return (x,)

    assert blob(1) == blob(1) == {"x": 1}
    assert inline(2) == inline(2) == (2,)
    assert len(seen) == 2
    row = db.rows[blob.cache_key(1)]
    assert row["result_type"] == "blob" and row["result_value"] in storage.objects
    assert row["version"] == "v2.0.1" and row["content_type"] == "application/json"
    assert db.rows[inline.cache_key(2)]["result_type"] == "inline"
    with pytest.raises(bs.NotSupportedError, match="delete"):
        blob.invalidate(1)


def test_retention_on_a_backend_that_cannot_expire_records_is_refused(workdir: Path):
    spot = bs.Spot("user", db=MinimalDB(), storage=MinimalStorage())
    with pytest.raises(bs.NotSupportedError, match=r"retention= needs .* save_record"):
        spot.mark(retention="1s")(lambda x: x)
    with pytest.raises(bs.NotSupportedError, match="retention="):
        bs.Spot("user", db=MinimalDB(), retention="7d").mark(lambda x: x)


def test_import_does_not_pull_heavy_or_backend_libraries():
    import subprocess
    import sys

    code = (
        "import sys, beautyspot\n"
        "heavy = {'numpy', 'pandas', 'boto3', 'redis', 'psycopg', 'fsspec', 'nicegui',"
        " 'fastapi', 'starlette', 'pickle'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(Path(bs.__file__).parents[1])},
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_repr_names_the_backends_not_their_memory_addresses(workdir: Path) -> None:
    spot = bs.Spot("api", tpm=60, memory_cache=10)
    try:
        shown = repr(spot)
    finally:
        spot.close()
    assert shown == (
        f"Spot('api', db=SQLiteTaskDB({str(workdir / 'api.db')!r}), "
        f"storage=LocalStorage({str(workdir / 'api_blobs')!r}), "
        "limiter=Limiter(tpm=60, burst=0), "
        "memory_cache=MemoryCache(max_entries=10, max_bytes=None))"
    )
    assert " at 0x" not in shown
    assert not (workdir / "api_blobs").exists()  # the blob folder comes with the first blob


def test_repr_of_a_url_backend_hides_its_password(workdir: Path) -> None:
    pytest.importorskip("fsspec")
    spot = bs.Spot("remote", storage="memory://user:s3cret@bucket/blobs", lease=30)
    try:
        shown = repr(spot)
    finally:
        spot.close()
    assert "s3cret" not in shown and "lease=30" in shown and " at 0x" not in shown
