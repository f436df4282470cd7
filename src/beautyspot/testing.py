"""Contract suites for backends: what makes a TaskDB or a blob storage a beautyspot backend.

Subclass a suite in your own tests and give it a fixture that yields a fresh, empty backend;
pytest runs every test of the contract against it::

    import pytest
    from beautyspot.testing import FullTaskDBContract, LeaseTaskDBContract, StorageContract

    class TestMyTaskDB(FullTaskDBContract, LeaseTaskDBContract):
        @pytest.fixture
        def taskdb(self, tmp_path):
            return MyTaskDB(tmp_path / "records")

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(tmp_path / "blobs")

- :class:`TaskDBContract`: the four required methods (a minimal backend passes it);
  :class:`FullTaskDBContract` adds the optional ones (``lookup``, ``save_record``, ``delete``,
  failures, what garbage collection needs) and saves from several processes;
  :class:`LeaseTaskDBContract`: leases (``lease=``), from threads and processes;
  :class:`StatsTaskDBContract`: what the CLI, the dashboard and stats need (``find_records``,
  ``add_counts``, ``get_stats``), with counts added from threads and processes.
- :class:`StorageContract`: ``save`` and ``load``; :class:`FullStorageContract` adds
  ``delete``, ``iter_locations`` and ``stat``.

Tests that use processes pickle the backend (built-in backends pickle by configuration: paths
and URLs, never open connections); one that cannot be pickled skips them with the reason.
Importing this module imports pytest: it is for test suites, never imported by beautyspot
itself.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict
from multiprocessing.reduction import ForkingPickler
from typing import Any

import pytest

from beautyspot.db.base import (
    RECORD_ORDERS,
    FailureRecord,
    FunctionCounts,
    HitRow,
    RecordQuery,
    TaskDB,
    TaskRecord,
)
from beautyspot.errors import NotSupportedError
from beautyspot.storage.base import BlobStorageBase

__all__ = [
    "FullStorageContract",
    "FullTaskDBContract",
    "LeaseTaskDBContract",
    "StatsTaskDBContract",
    "StorageContract",
    "TaskDBContract",
]

ALL_BYTES = bytes(range(256))


def save_inline(db: TaskDB, key: str, data: bytes = b"\x81\xa1a\x01") -> None:
    """Save an inline record for ``key`` through the required 8-argument ``save``."""
    db.save(key, "pkg.module.fn", f"input-{key}", "v1", "inline", "application/json", None, data)


def history_keys(db: TaskDB, limit: int = 1000) -> list[str]:
    return [record["cache_key"] for record in db.get_history(limit)]


# -- helpers run in other processes (at module level, so spawned interpreters find them) ----


def _processes() -> ProcessPoolExecutor:
    # spawn: a fresh interpreter, as on macOS and Windows, that must rebuild the backend
    return ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))


def _shippable(backend: Any) -> Any:
    """``backend``, if it can travel to another process (the pool pickles it), else a skip
    saying why it cannot."""
    try:
        ForkingPickler.dumps(backend)  # what the process pool will do with it
    except Exception as exc:
        pytest.skip(f"{type(backend).__name__} cannot be pickled ({exc}): no process tests")
    return backend


def _save_in_another_process(db: TaskDB, prefix: str, count: int) -> int:
    db.init_schema()
    for n in range(count):
        save_inline(db, f"{prefix}-{n}", f"{prefix}{n}".encode())
    return os.getpid()


def _race_for_a_lease(db: TaskDB, owner: str) -> bool:
    return db.acquire_lease("raced-by-processes", owner, 30)


def _add_counts_in_another_process(db: TaskDB, times: int) -> int:
    db.init_schema()
    for _ in range(times):
        db.add_counts({"pkg.fn": FunctionCounts(2, 1, 1)}, {"k1": 2})
    return os.getpid()


class TaskDBContract:
    """What caching needs from any TaskDB. Requires a ``taskdb`` fixture (fresh and empty)."""

    @pytest.fixture
    def db(self, taskdb: TaskDB) -> TaskDB:
        taskdb.init_schema()
        return taskdb

    def test_init_schema_twice_keeps_records(self, db: TaskDB) -> None:
        save_inline(db, "k1")
        db.init_schema()
        assert db.get("k1") is not None

    def test_missing_key_is_none(self, db: TaskDB) -> None:
        assert db.get("never-saved") is None

    def test_inline_record_round_trips_every_byte(self, db: TaskDB) -> None:
        db.save("k1", "pkg.módulo.関数", "in-1", "v2.0", "inline", "text/plain", None, ALL_BYTES)
        record = db.get("k1")
        assert record is not None
        assert record["result_type"] == "inline"
        assert record["result_data"] == ALL_BYTES
        assert record["result_value"] is None
        assert record.get("func_name", "pkg.módulo.関数") == "pkg.módulo.関数"

    def test_blob_record_keeps_none_fields(self, db: TaskDB) -> None:
        db.save("k1", "pkg.fn", "in-1", None, "blob", None, result_value="ab/abcdef")
        record = db.get("k1")
        assert record is not None
        assert (record["result_type"], record["result_value"]) == ("blob", "ab/abcdef")
        assert record.get("result_data") is None
        assert record.get("version") is None
        assert record.get("content_type") is None

    def test_save_replaces_the_record(self, db: TaskDB) -> None:
        save_inline(db, "k1", b"old")
        db.save("k1", "pkg.fn", "in-1", "v2", "blob", None, result_value="ne/new")
        record = db.get("k1")
        assert record is not None
        assert (record["result_type"], record["result_value"]) == ("blob", "ne/new")
        assert record.get("result_data") is None
        assert history_keys(db) == ["k1"]

    def test_keys_are_independent(self, db: TaskDB) -> None:
        save_inline(db, "k1", b"one")
        save_inline(db, "k2", b"two")
        assert db.get("k1")["result_data"] == b"one"  # type: ignore[index]
        assert db.get("k2")["result_data"] == b"two"  # type: ignore[index]

    def test_history_is_newest_first_and_limited(self, db: TaskDB) -> None:
        for key in ("k1", "k2", "k3"):
            save_inline(db, key)
            time.sleep(0.02)  # distinct save times even on a coarse clock
        assert history_keys(db) == ["k3", "k2", "k1"]
        assert history_keys(db, limit=2) == ["k3", "k2"]

    def test_threads_save_and_read_concurrently(self, db: TaskDB) -> None:
        def work(worker: int) -> list[bool]:
            seen = []
            for i in range(25):
                key = f"w{worker}-{i}"
                save_inline(db, key, key.encode())
                seen.append(db.get(key)["result_data"] == key.encode())  # type: ignore[index]
            return seen

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = [ok for seen in pool.map(work, range(4)) for ok in seen]
        assert results == [True] * 100
        assert len(history_keys(db)) == 100


class FullTaskDBContract(TaskDBContract):
    """The required contract plus the optional methods."""

    def test_lookup_gives_the_hit_fields_of_get(self, db: TaskDB) -> None:
        save_inline(db, "k1", b"payload")
        db.save("k2", "pkg.fn", "in-2", None, "blob", None, result_value="ab/ab12")
        for key, payload in (("k1", b"payload"), ("k2", "ab/ab12")):
            full, fast = db.get(key), db.lookup(key)
            assert full is not None and fast is not None
            assert tuple(fast) == HitRow.of(full)
            assert fast[0] == payload
        assert db.lookup("never-saved") is None

    def test_iter_blob_locations_lists_blob_records_only(self, db: TaskDB) -> None:
        save_inline(db, "inline")
        db.save("b1", "pkg.fn", "in-1", None, "blob", None, result_value="ab/one")
        db.save("b2", "pkg.fn", "in-2", None, "blob", None, result_value="cd/two")
        assert sorted(db.iter_blob_locations()) == ["ab/one", "cd/two"]

    def test_delete_expired_removes_only_expired_records(self, db: TaskDB) -> None:
        for key, expires in (("past", 1000.0), ("future", 9e9), ("forever", None)):
            db.save_record(
                TaskRecord(key, "fn", "in", None, "inline", None, None, b"x", expires_at=expires)
            )
        assert db.delete_expired(now=2000.0) == 1
        assert [db.get(k) is None for k in ("past", "future", "forever")] == [True, False, False]

    def test_save_record_round_trips_every_field(self, db: TaskDB) -> None:
        record = TaskRecord(
            cache_key="k1",
            func_name="pkg.fn",
            input_id="in-1",
            version="v3",
            result_type="inline",
            content_type="application/json",
            result_value=None,
            result_data=ALL_BYTES,
            input_preview="fn('hello', n=3)",
            checksum="sha256:" + "0" * 64,
            size=256,
            duration=1.25,
            created_at=1_700_000_000.5,
            expires_at=4_000_000_000.25,
            code_fingerprint="0123456789abcdef",
            cost=12.5,
            arg_digests=b"\x92\x01\x81\xa1n\x00" + ALL_BYTES[:16],
        )
        db.save_record(record)
        stored = db.get("k1")
        assert stored is not None
        assert {name: stored[name] for name in record.as_dict()} == record.as_dict()

    def test_history_orders_by_created_at(self, db: TaskDB) -> None:
        for key, created in (("middle", 2000.0), ("newest", 3000.0), ("oldest", 1000.0)):
            db.save_record(
                TaskRecord(key, "fn", "in", None, "inline", None, None, b"x", created_at=created)
            )
        assert history_keys(db) == ["newest", "middle", "oldest"]

    def test_delete_reports_whether_a_record_was_removed(self, db: TaskDB) -> None:
        save_inline(db, "k1")
        save_inline(db, "k2")
        assert db.delete("k1") is True
        assert db.delete("k1") is False
        assert db.get("k1") is None
        assert db.get("k2") is not None

    def test_failures_are_kept_newest_first(self, db: TaskDB) -> None:
        assert list(db.get_failures()) == []
        failures = [
            FailureRecord(
                f"k{i}", "pkg.fn", f"fn({i})", "ValueError", f"bad {i}", "Traceback...", 100.0 + i
            )
            for i in range(3)
        ]
        for failure in failures:
            db.record_failure(failure)
        stored = db.get_failures(limit=2)
        assert [row["message"] for row in stored] == ["bad 2", "bad 1"]
        expected = asdict(failures[2])
        assert {name: stored[0][name] for name in expected} == expected

    def test_failures_are_not_cached_results(self, db: TaskDB) -> None:
        db.record_failure(FailureRecord("k1", "pkg.fn", "fn(1)", "ValueError", "bad", "tb", 1.0))
        assert db.get("k1") is None

    def test_saves_from_several_processes_all_land(self, db: TaskDB) -> None:
        shipped = _shippable(db)
        with _processes() as pool:
            pids = set(pool.map(_save_in_another_process, [shipped] * 2, ["p", "q"], [25, 25]))
        assert os.getpid() not in pids
        for prefix in "pq":
            for n in range(25):
                record = db.get(f"{prefix}-{n}")
                assert record is not None and record["result_data"] == f"{prefix}{n}".encode()


class LeaseTaskDBContract(TaskDBContract):
    """Leases (``lease=``): one owner at a time per key, extended by its owner, taken over only
    once expired."""

    def test_one_owner_at_a_time(self, db: TaskDB) -> None:
        assert db.acquire_lease("k", "a", 5)
        assert not db.acquire_lease("k", "b", 5)
        assert db.acquire_lease("k", "a", 5)  # its owner takes it again: extended
        assert db.acquire_lease("other", "b", 5)  # leases are per key

    def test_renew_keeps_it_and_only_for_its_owner(self, db: TaskDB) -> None:
        assert db.acquire_lease("k", "a", 0.3)
        assert not db.renew_lease("k", "b", 5)
        time.sleep(0.2)
        assert db.renew_lease("k", "a", 1.0)
        time.sleep(0.2)
        assert not db.acquire_lease("k", "b", 5)  # renewed past its first expiry

    def test_an_expired_lease_is_taken_over_and_its_old_owner_learns_it(self, db: TaskDB) -> None:
        assert db.acquire_lease("k", "a", 0.1)
        time.sleep(0.2)
        assert db.acquire_lease("k", "b", 5)
        assert not db.renew_lease("k", "a", 5)
        db.release_lease("k", "a")  # not theirs any more: nothing happens
        assert not db.acquire_lease("k", "c", 5)

    def test_release_frees_it(self, db: TaskDB) -> None:
        assert db.acquire_lease("k", "a", 5)
        db.release_lease("k", "a")
        assert db.acquire_lease("k", "b", 5)

    def test_exactly_one_of_many_racing_owners_gets_it(self, db: TaskDB) -> None:
        with ThreadPoolExecutor(8) as pool:
            taken = list(pool.map(lambda n: db.acquire_lease("race", f"o{n}", 5), range(16)))
        assert taken.count(True) == 1

    def test_one_owner_across_racing_processes(self, db: TaskDB) -> None:
        shipped = _shippable(db)
        owners = [f"o{n}" for n in range(6)]
        with _processes() as pool:
            taken = list(pool.map(_race_for_a_lease, [shipped] * len(owners), owners))
        assert taken.count(True) == 1


def record(key: str, func_name: str = "pkg.fn", **fields: Any) -> TaskRecord:
    """An inline record of ``func_name`` under ``key``; ``fields`` set any other field."""
    values: dict[str, Any] = {
        "input_id": f"input-{key}", "version": "v1", "result_type": "inline",
        "content_type": "application/json", "result_data": b"\x81\xa1a\x01",
        **fields,
    }  # fmt: skip
    return TaskRecord(key, func_name, **values)


def page_keys(db: TaskDB, **query: Any) -> list[str]:
    """The keys of one page of ``find_records``."""
    return [row["cache_key"] for row in db.find_records(RecordQuery(**query))[0]]


def stats_of(db: TaskDB) -> dict[str | None, dict[str, Any]]:
    """``get_stats`` by function name."""
    return {row["func_name"]: dict(row) for row in db.get_stats()}


_BLOB = {"result_type": "blob", "result_data": None, "result_value": "loc/blob"}
#: For each order: the fields of three records in ascending order (missing values first; a
#: store stamps a missing created_at, and a blob of unknown size has no result_size).
ASCENDING: dict[str, list[dict[str, Any]]] = {
    "created_at": [{"created_at": 1.0}, {"created_at": 2.0}, {"created_at": 3.0}],
    "func_name": [{"func_name": None}, {"func_name": "B.fn"}, {"func_name": "a.fn"}],
    "version": [{"version": None}, {"version": "V2"}, {"version": "v1"}],
    "size": [_BLOB, {"size": 10}, {"size": 200}],
    "duration": [{"duration": None}, {"duration": 0.5}, {"duration": 3.0}],
    "hits": [{}, {}, {}],  # hits 0, 1 and 4, added by the test
}

STATS_FIELDS = {"func_name", "records", "hits", "misses", "failures", "bytes_inline",
                "bytes_blob", "time_saved", "tokens_saved"}  # fmt: skip


class StatsTaskDBContract(TaskDBContract):
    """Pages of records (``find_records``) and stats (``add_counts``, ``get_stats``): what the
    CLI, the dashboard and the stats of a Spot need. Uses ``save_record``."""

    # -- find_records -------------------------------------------------------------------------

    def test_an_empty_store_has_no_records(self, db: TaskDB) -> None:
        assert db.find_records(RecordQuery()) == ([], 0)

    def test_rows_carry_every_field_but_the_result_bytes(self, db: TaskDB) -> None:
        saved = record(
            "k1", input_preview="fn('hello')", checksum="xxh:00", size=4, duration=1.5,
            created_at=1_700_000_000.25, expires_at=4_000_000_000.5, code_fingerprint="fp",
            cost=12.0, arg_digests=b"\x92\x01\x80\x00\xff",
        )  # fmt: skip
        db.save_record(saved)
        rows, total = db.find_records(RecordQuery())
        assert total == 1 and len(rows) == 1
        row = rows[0]
        assert "result_data" not in row
        expected = {name: value for name, value in saved.as_dict().items() if name != "result_data"}
        assert {name: row[name] for name in expected} == expected
        assert row["hits"] == 0
        assert row["result_size"] == 4

    def test_result_size_is_the_stored_bytes_when_size_is_unknown(self, db: TaskDB) -> None:
        db.save("k1", "pkg.fn", "in-1", None, "inline", None, None, b"12345")
        assert db.find_records(RecordQuery())[0][0]["result_size"] == 5

    def test_newest_first_by_default_and_ties_by_key_in_the_same_direction(
        self, db: TaskDB
    ) -> None:
        for key, created in (("b", 2.0), ("c", 1.0), ("a", 2.0), ("d", 3.0), ("e", 2.0)):
            db.save_record(record(key, created_at=created))
        assert page_keys(db) == ["d", "e", "b", "a", "c"]
        assert page_keys(db, descending=False) == ["c", "a", "b", "e", "d"]

    def test_pages_cover_the_order_and_total_counts_every_match(self, db: TaskDB) -> None:
        for n in range(12):
            db.save_record(record(f"k{n:02d}", created_at=1000.0 + n))
        newest_first = [f"k{n:02d}" for n in reversed(range(12))]
        pages = []
        for offset in range(0, 12, 5):
            rows, total = db.find_records(RecordQuery(offset=offset, limit=5))
            assert total == 12
            pages += [row["cache_key"] for row in rows]
        assert pages == newest_first
        assert db.find_records(RecordQuery(offset=12)) == ([], 12)
        assert db.find_records(RecordQuery(limit=0)) == ([], 12)

    def test_filters_match_exactly_and_combine(self, db: TaskDB) -> None:
        db.save_record(record("k1", "pkg.fn", version="v1", content_type="text/plain"))
        db.save_record(record("k2", "pkg.fn", version="v2", content_type="application/json"))
        db.save_record(record("k3", "pkg.fn2", version="v1", content_type="text/plain"))
        db.save_record(record("k4", "pkg", version=None, content_type=None))
        assert sorted(page_keys(db, func_name="pkg.fn")) == ["k1", "k2"]
        assert sorted(page_keys(db, version="v1")) == ["k1", "k3"]
        assert sorted(page_keys(db, content_type="text/plain")) == ["k1", "k3"]
        assert page_keys(db, func_name="pkg.fn", version="v1") == ["k1"]
        assert page_keys(db, func_name="pkg.f") == []
        assert db.find_records(RecordQuery(func_name="pkg.fn", version="v2"))[1] == 1

    def test_text_is_a_case_insensitive_substring_of_the_preview(self, db: TaskDB) -> None:
        previews = {"k1": "text='Hello World'", "k2": "text='say HELLO'", "k3": "n=5",
                    "k4": "pct='100%_done'", "k5": "pct='100 percent'", "k6": None}  # fmt: skip
        for key, preview in previews.items():
            db.save_record(record(key, input_preview=preview))
        assert sorted(page_keys(db, text="hello")) == ["k1", "k2"]
        assert sorted(page_keys(db, text="LO W")) == ["k1"]
        assert page_keys(db, text="%_") == ["k4"]  # no wildcards: the characters themselves
        assert page_keys(db, text="100_") == []
        assert db.find_records(RecordQuery(text="absent"))[1] == 0

    @pytest.mark.parametrize("order_by", RECORD_ORDERS)
    def test_every_order_sorts_missing_values_as_the_smallest(
        self, db: TaskDB, order_by: str
    ) -> None:
        for key, fields in zip(("k1", "k2", "k3"), ASCENDING[order_by], strict=True):
            db.save_record(record(key, **fields))
        if order_by == "hits":
            db.add_counts({"pkg.fn": FunctionCounts(hits=5)}, {"k2": 1, "k3": 4})
        assert page_keys(db, order_by=order_by, descending=False) == ["k1", "k2", "k3"]
        assert page_keys(db, order_by=order_by) == ["k3", "k2", "k1"]

    def test_a_bad_query_is_refused_naming_the_field(self, db: TaskDB) -> None:
        with pytest.raises(ValueError, match="order_by='name'"):
            db.find_records(RecordQuery(order_by="name"))
        with pytest.raises(ValueError, match="limit"):
            db.find_records(RecordQuery(limit=-1))
        with pytest.raises(TypeError, match="offset"):
            db.find_records(RecordQuery(offset="10"))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="func_name"):
            db.find_records(RecordQuery(func_name=3))  # type: ignore[arg-type]

    # -- add_counts and get_stats ----------------------------------------------------------

    def test_no_records_no_counts_no_stats(self, db: TaskDB) -> None:
        assert list(db.get_stats()) == []

    def test_counts_add_up_per_function_and_per_record(self, db: TaskDB) -> None:
        db.save_record(record("k1", duration=2.0, cost=10.0))
        db.save_record(record("k2", duration=0.5))
        db.add_counts({"pkg.fn": FunctionCounts(3, 2, 1)}, {"k1": 2, "k2": 1})
        db.add_counts({"pkg.fn": FunctionCounts(1, 0, 0)}, {"k1": 1})
        stats = stats_of(db)["pkg.fn"]
        assert set(stats) == STATS_FIELDS
        assert (stats["records"], stats["hits"], stats["misses"], stats["failures"]) == (2, 4, 2, 1)
        assert stats["time_saved"] == pytest.approx(2.0 * 3 + 0.5 * 1)
        assert stats["tokens_saved"] == pytest.approx(10.0 * 3)
        rows = {row["cache_key"]: row for row in db.find_records(RecordQuery())[0]}
        assert (rows["k1"]["hits"], rows["k2"]["hits"]) == (3, 1)
        assert (db.get("k1") or {}).get("hits") == 3  # `beautyspot show` reads them here

    def test_sizes_are_summed_by_placement(self, db: TaskDB) -> None:
        db.save_record(record("i1", result_data=b"abc", size=3))
        db.save("i2", "pkg.fn", "in", None, "inline", None, None, b"12345")  # size unknown
        db.save_record(
            record("b1", result_type="blob", result_data=None, result_value="l/b1", size=1000)
        )
        stats = stats_of(db)["pkg.fn"]
        assert (stats["records"], stats["bytes_inline"], stats["bytes_blob"]) == (3, 8, 1000)

    def test_stats_cover_functions_with_records_or_counts(self, db: TaskDB) -> None:
        db.save_record(record("k1", "pkg.stored"))
        db.add_counts({"pkg.counted": FunctionCounts(0, 0, 2)}, {})
        stats = stats_of(db)
        assert set(stats) == {"pkg.stored", "pkg.counted"}
        assert (stats["pkg.stored"]["records"], stats["pkg.stored"]["hits"]) == (1, 0)
        assert (stats["pkg.counted"]["records"], stats["pkg.counted"]["failures"]) == (0, 2)
        assert stats["pkg.counted"]["time_saved"] == 0.0

    def test_kept_failures_count_when_more_than_counted(self, db: TaskDB) -> None:
        for n in range(3):
            db.record_failure(FailureRecord(f"k{n}", "pkg.old", "fn()", "E", "m", "tb", 1.0))
        try:
            db.get_failures(1)
        except NotSupportedError:
            pytest.skip(f"{type(db).__name__} keeps no failures")
        db.add_counts({"pkg.old": FunctionCounts(0, 0, 1)}, {})
        assert stats_of(db)["pkg.old"]["failures"] == 3

    def test_hits_of_a_missing_record_do_not_make_one(self, db: TaskDB) -> None:
        db.add_counts({"pkg.fn": FunctionCounts(hits=2)}, {"gone": 2})
        assert db.get("gone") is None
        assert db.find_records(RecordQuery()) == ([], 0)
        assert stats_of(db)["pkg.fn"]["hits"] == 2

    def test_counts_added_from_threads_all_land(self, db: TaskDB) -> None:
        db.save_record(record("k1", duration=1.0))

        def add(_: int) -> None:
            for _ in range(10):
                db.add_counts({"pkg.fn": FunctionCounts(2, 1, 0)}, {"k1": 2})

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(add, range(8)))
        stats = stats_of(db)["pkg.fn"]
        assert (stats["hits"], stats["misses"]) == (160, 80)
        assert stats["time_saved"] == pytest.approx(160.0)

    def test_counts_added_from_processes_add_up(self, db: TaskDB) -> None:
        db.save_record(record("k1", cost=1.5))
        shipped = _shippable(db)
        with _processes() as pool:
            pids = set(pool.map(_add_counts_in_another_process, [shipped] * 2, [5, 5]))
        assert os.getpid() not in pids
        stats = stats_of(db)["pkg.fn"]
        assert (stats["hits"], stats["misses"], stats["failures"]) == (20, 10, 10)
        assert stats["tokens_saved"] == pytest.approx(1.5 * 20)


def core_key(seed: str) -> str:
    """A key shaped like the core's: hex digits, ``-`` and ``.``."""
    return hashlib.sha256(seed.encode()).hexdigest() + "-1.bin"


class StorageContract:
    """What caching needs from any blob store. Requires a ``storage`` fixture (fresh, empty)."""

    @pytest.mark.parametrize(
        "data", [bytes(range(256)), b"", os.urandom(1 << 20)], ids=["all-bytes", "empty", "1MiB"]
    )
    def test_save_then_load_gives_the_same_bytes(
        self, storage: BlobStorageBase, data: bytes
    ) -> None:
        location = storage.save(core_key("a"), data)
        assert isinstance(location, str)
        assert storage.load(location) == data

    def test_saving_a_key_again_overwrites_it(self, storage: BlobStorageBase) -> None:
        storage.save(core_key("a"), b"old")
        location = storage.save(core_key("a"), b"new")
        assert storage.load(location) == b"new"

    def test_keys_are_independent(self, storage: BlobStorageBase) -> None:
        first = storage.save(core_key("a"), b"one")
        second = storage.save(core_key("b"), b"two")
        assert (storage.load(first), storage.load(second)) == (b"one", b"two")

    def test_concurrent_saves_of_one_key_never_mix(self, storage: BlobStorageBase) -> None:
        payloads = [bytes([i]) * 300_000 for i in range(4)]
        key = core_key("shared")
        with ThreadPoolExecutor(max_workers=4) as pool:
            locations = set(pool.map(lambda data: storage.save(key, data), payloads))
        assert len(locations) == 1
        assert storage.load(locations.pop()) in payloads


class FullStorageContract(StorageContract):
    """The required contract plus ``delete``, ``iter_locations`` and ``stat``."""

    def test_stat_gives_size_and_modification_time(self, storage: BlobStorageBase) -> None:
        before = time.time()
        location = storage.save(core_key("a"), b"12345")
        stat = storage.stat(location)
        assert stat.size == 5
        assert before - 2 <= stat.modified_at <= time.time() + 2
        storage.delete(location)
        with pytest.raises(FileNotFoundError):
            storage.stat(location)

    def test_deleted_blob_is_missing(self, storage: BlobStorageBase) -> None:
        location = storage.save(core_key("a"), b"data")
        storage.delete(location)
        with pytest.raises(OSError):
            storage.load(location)

    def test_deleting_a_missing_blob_is_fine(self, storage: BlobStorageBase) -> None:
        location = storage.save(core_key("a"), b"data")
        storage.delete(location)
        storage.delete(location)
        assert list(storage.iter_locations()) == []

    def test_iter_locations_lists_saved_blobs(self, storage: BlobStorageBase) -> None:
        assert list(storage.iter_locations()) == []
        saved = {storage.save(core_key(seed), seed.encode()) for seed in "abc"}
        assert set(storage.iter_locations()) == saved
        storage.delete(saved.pop())
        assert set(storage.iter_locations()) == saved
