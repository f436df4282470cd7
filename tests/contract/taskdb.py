"""The TaskDB contract suite: subclass it with a ``taskdb`` fixture yielding a fresh backend.

``TaskDBContract`` covers the four required methods (a user's minimal backend passes it);
``FullTaskDBContract`` adds the optional methods: ``lookup``, ``save_record``, ``delete``,
failures, and what garbage collection needs (``iter_blob_locations``, ``delete_expired``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import pytest

from beautyspot.db.base import FailureRecord, HitRow, TaskDB, TaskRecord

__all__ = ["FullTaskDBContract", "LeaseTaskDBContract", "TaskDBContract"]

ALL_BYTES = bytes(range(256))


def save_inline(db: TaskDB, key: str, data: bytes = b"\x81\xa1a\x01") -> None:
    """Save an inline record for ``key`` through the required 8-argument ``save``."""
    db.save(key, "pkg.module.fn", f"input-{key}", "v1", "inline", "application/json", None, data)


def history_keys(db: TaskDB, limit: int = 1000) -> list[str]:
    return [record["cache_key"] for record in db.get_history(limit)]


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
