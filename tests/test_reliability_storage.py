"""Storage boundaries and garbage collection: nothing escapes the folder, nothing in use is lost.

Covered elsewhere and not repeated here: LocalStorage refusing ``..``, absolute and symlinked
locations and owner-only modes (test_storage_local.py), SQLite files owner-only
(test_db_sqlite.py), a corrupted or missing blob and a tampered inline value read as misses
(test_spot.py).
"""

from __future__ import annotations

import math
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs
from beautyspot.db.base import TaskDB
from beautyspot.integrity import checksum_of
from beautyspot.maintenance import GCReport, collect_garbage
from beautyspot.storage.base import BlobStorageBase
from beautyspot.storage.local import LocalStorage

AN_HOUR_AGO = time.time() - 3600


def age(*paths: Path, when: float = AN_HOUR_AGO) -> None:
    for path in paths:
        os.utime(path, (when, when), follow_symlinks=False)


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


class Calls:
    """A marked function's body calls, to tell a hit from a recomputation."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __beautyspot_key__(self) -> None:
        return None  # a side channel of the test: results never depend on it

    def __call__(self, value: Any) -> Any:
        self.seen.append(value)
        return value


@pytest.fixture
def blob_spot(workdir: Path) -> Iterator[bs.Spot]:
    created = bs.Spot("gc", save_blob=True)
    yield created
    created.close()


def blob_path(spot: bs.Spot, marked: Any, *args: Any) -> Path:
    location = spot.db.get(marked.cache_key(*args))["result_value"]
    return Path(spot.storage.root) / location


# -- garbage collection -----------------------------------------------------------------------


def test_gc_removes_old_orphans_and_temp_files_and_keeps_blobs_in_use(blob_spot: bs.Spot):
    calls = Calls()

    @blob_spot.mark
    def f(x):
        return calls({"x": x, "pad": "p" * 1000})

    f(1), f(2)
    root = Path(blob_spot.storage.root)
    orphan = root / blob_spot.storage.save("0badc0de-orphan", b"no record points here")
    temp = root / "0b" / ".0badc0de.k3j2.tmp"
    temp.write_bytes(b"half a blob")
    age(orphan, temp, blob_path(blob_spot, f, 1), blob_path(blob_spot, f, 2))

    report = blob_spot.gc()

    assert report == GCReport(orphan_blobs=1, temp_files=1, bytes_freed=21)
    assert not orphan.exists() and not temp.exists()
    assert f(1)["x"] == 1 and f(2)["x"] == 2
    assert len(calls.seen) == 2  # both results still served from their (old) blobs
    assert blob_spot.gc() == GCReport()


def test_gc_keeps_fresh_orphans_because_a_save_may_be_in_flight(blob_spot: bs.Spot):
    root = Path(blob_spot.storage.root)
    in_flight = root / blob_spot.storage.save("0fee1-in-flight", b"record not written yet")
    assert blob_spot.gc().orphan_blobs == 0
    assert in_flight.exists()
    assert blob_spot.gc(older_than=0).orphan_blobs == 1
    assert not in_flight.exists()


def test_gc_deletes_expired_records_and_their_blobs_in_one_pass(blob_spot: bs.Spot):
    calls = Calls()

    @blob_spot.mark(retention="1d")
    def f(x):
        return calls(x)

    f(1), f(2)
    expired_blob = blob_path(blob_spot, f, 1)
    age(expired_blob, blob_path(blob_spot, f, 2))
    with sqlite3.connect(blob_spot.db.path) as conn:
        conn.execute("UPDATE tasks SET expires_at = 1 WHERE cache_key = ?", (f.cache_key(1),))
    conn.close()

    report = blob_spot.gc()

    assert (report.expired_records, report.orphan_blobs) == (1, 1)
    assert not expired_blob.exists()
    assert f(2) == 2 and calls.seen == [1, 2]  # the live record and its blob are untouched
    assert f(1) == 1 and calls.seen == [1, 2, 1]  # the expired one is recomputed


def test_gc_rechecks_a_blobs_age_right_before_deleting_it(
    blob_spot: bs.Spot, monkeypatch: pytest.MonkeyPatch
):
    storage = blob_spot.storage
    location = storage.save("0ddba11-same-content", b"v1")
    age(Path(storage.root) / location)
    listed = storage.iter_locations

    def listing_then_a_writer_saves_the_same_blob_again() -> Iterator[str]:
        found = list(listed())
        storage.save("0ddba11-same-content", b"v1")  # e.g. the result recomputed after expiry
        return iter(found)

    monkeypatch.setattr(storage, "iter_locations", listing_then_a_writer_saves_the_same_blob_again)
    assert blob_spot.gc().orphan_blobs == 0
    assert storage.load(location) == b"v1"


def test_gc_never_touches_foreign_files_or_what_symlinks_point_to(
    blob_spot: bs.Spot, tmp_path: Path
):
    root = Path(blob_spot.storage.root)
    blob_spot.storage.save("ab01", b"blob")  # makes the folder; an orphan, removed below
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "zzvaluable").write_bytes(b"keep me")
    (outside / "secret").write_bytes(b"keep me too")
    (root / "notes.txt").write_bytes(b"the user's own file")
    (root / "mine").mkdir()
    (root / "mine" / "mi-data").write_bytes(b"x")
    (root / "ab" / "ab-link").symlink_to(outside / "secret")
    (root / "zz").symlink_to(outside, target_is_directory=True)
    age(*root.rglob("*"))

    report = blob_spot.gc(older_than=0)

    assert report.orphan_blobs == 1
    assert files_under(outside) == ["secret", "zzvaluable"]
    assert (outside / "secret").read_bytes() == b"keep me too"
    assert files_under(root) == ["ab/ab-link", "mine/mi-data", "notes.txt"]
    assert (root / "zz").is_symlink()


class FourMethodDB(TaskDB):
    """Only what the contract requires."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def init_schema(self) -> None:
        pass

    def get(self, cache_key: str) -> dict[str, Any] | None:
        return self.rows.get(cache_key)

    def save(self, cache_key, func_name, input_id, version, result_type, content_type,
             result_value=None, result_data=None):  # fmt: skip
        self.rows[cache_key] = {"result_type": result_type, "result_value": result_value,
                                "result_data": result_data}  # fmt: skip

    def get_history(self, limit: int = 1000) -> list[dict[str, Any]]:
        return list(self.rows.values())[:limit]

    def iter_blob_locations(self) -> Iterator[str]:
        return (row["result_value"] for row in self.rows.values() if row["result_type"] == "blob")


class ListingOnlyStorage(LocalStorage):
    """Lists blobs but cannot tell their age."""

    stat = BlobStorageBase.stat


def test_gc_explains_what_a_backend_lacks(tmp_path: Path):
    storage = LocalStorage(tmp_path / "blobs")
    storage.save("ab01", b"x")
    with pytest.raises(bs.NotSupportedError, match=r"which blobs are in use.*iter_blob_locations"):
        collect_garbage(TaskDB(), storage)
    with pytest.raises(bs.NotSupportedError, match=r"list blobs.*iter_locations\(\)"):
        collect_garbage(FourMethodDB(), BlobStorageBase())
    with pytest.raises(bs.NotSupportedError, match=r"still being saved.*stat\(location\)"):
        collect_garbage(FourMethodDB(), ListingOnlyStorage(tmp_path / "blobs"))
    assert storage.load("ab/ab01") == b"x"


def test_gc_works_on_a_db_without_expiry_and_a_store_without_temp_files(tmp_path: Path):
    db, storage = FourMethodDB(), LocalStorage(tmp_path / "blobs")
    spot = bs.Spot("custom", db=db, storage=storage, save_blob=True)

    @spot.mark
    def f(x):
        return x

    f(1)
    storage.save("0rphan", b"1234")
    assert collect_garbage(db, storage, older_than=0) == GCReport(orphan_blobs=1, bytes_freed=4)
    assert list(storage.iter_locations()) == [db.get(f.cache_key(1))["result_value"]]


@pytest.mark.parametrize(
    ("older_than", "error"),
    [(-1, bs.ConfigurationError), (math.nan, bs.ConfigurationError), (math.inf,
     bs.ConfigurationError), ("1h", TypeError), (True, TypeError), (None, TypeError)],
)  # fmt: skip
def test_gc_refuses_a_bad_older_than_by_name(blob_spot: bs.Spot, older_than, error):
    with pytest.raises(error, match="older_than"):
        blob_spot.gc(older_than=older_than)


def test_gc_of_a_spot_that_never_saved_a_blob_removes_nothing(workdir: Path):
    spot = bs.Spot("empty")
    assert spot.gc(older_than=0) == GCReport()
    assert not (workdir / "empty_blobs").exists()  # gc creates nothing
    spot.close()


# -- boundaries, end to end --------------------------------------------------------------------


def plant_record(spot: bs.Spot, cache_key: str, location: str, data: bytes) -> None:
    """Point ``cache_key``'s record at ``location``, with a checksum matching ``data``."""
    with sqlite3.connect(spot.db.path) as conn:
        conn.execute(
            "UPDATE tasks SET result_type = 'blob', result_value = ?, result_data = NULL, "
            "checksum = ? WHERE cache_key = ?",
            (location, checksum_of(data, cryptographic=False), cache_key),
        )
    conn.close()


@pytest.mark.parametrize("where", ["dot-dot", "absolute", "deep dot-dot", "symlink in folder"])
def test_a_record_pointing_out_of_the_folder_is_a_miss_never_a_read(
    blob_spot: bs.Spot, tmp_path: Path, where: str
):
    planted = blob_spot.serializer.dumps("from outside the storage folder")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(planted)
    root = Path(blob_spot.storage.root)
    calls = Calls()

    @blob_spot.mark
    def f(x):
        return calls(x)

    f(1)
    location = {
        "dot-dot": "../secret.bin",
        "absolute": str(secret),
        "deep dot-dot": "ab/../../secret.bin",
        "symlink in folder": "se/secret",
    }[where]
    if where == "symlink in folder":
        (root / "se").mkdir()
        (root / "se" / "secret").symlink_to(secret)
    plant_record(blob_spot, f.cache_key(1), location, planted)

    with pytest.warns(bs.BeautyspotWarning, match="refused"):
        assert f(1) == 1
    assert calls.seen == [1, 1]
    assert secret.read_bytes() == planted
    assert f(1) == 1 and calls.seen == [1, 1]  # the recomputed result replaced the record


def test_swapped_blobs_are_caught_by_their_checksums(blob_spot: bs.Spot):
    calls = Calls()

    @blob_spot.mark
    def f(x):
        return calls(f"value {x}")

    f(1), f(2)
    first, second = blob_path(blob_spot, f, 1), blob_path(blob_spot, f, 2)
    data_1, data_2 = first.read_bytes(), second.read_bytes()
    first.write_bytes(data_2)  # each file now holds a valid encoding, of the other result
    second.write_bytes(data_1)
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert (f(1), f(2)) == ("value 1", "value 2")
    assert len(calls.seen) == 4


def test_swapped_inline_values_are_caught_by_their_checksums(spot: bs.Spot):
    calls = Calls()

    @spot.mark
    def f(x):
        return calls(f"value {x}")

    f(1), f(2)
    key_1, key_2 = f.cache_key(1), f.cache_key(2)
    with sqlite3.connect(spot.db.path) as conn:
        data = dict(conn.execute("SELECT cache_key, result_data FROM tasks"))
        for key, other in ((key_1, key_2), (key_2, key_1)):
            conn.execute("UPDATE tasks SET result_data = ? WHERE cache_key = ?", (data[other], key))
    conn.close()
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert (f(1), f(2)) == ("value 1", "value 2")
    assert len(calls.seen) == 4


@pytest.fixture
def no_umask() -> Iterator[None]:
    """umask 0, so the modes seen are the ones beautyspot asks for, not the umask's."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_spots_default_files_and_folders_are_owner_only(workdir: Path, no_umask: None):
    spot = bs.Spot("private", db=workdir / "new" / "private.db", save_blob=True)

    @spot.mark
    def f(x):
        return x

    f(1)
    created = [p for p in (workdir / "new").rglob("*")] + [workdir / "new"]
    modes = {p.relative_to(workdir).as_posix(): stat.S_IMODE(p.lstat().st_mode) for p in created}
    spot.close()
    expected_kinds = {"private.db", "private.db-wal", "private.db-shm", "private_blobs"}
    assert expected_kinds <= {Path(name).name for name in modes}
    loose = {name: oct(mode) for name, mode in modes.items() if mode not in (0o600, 0o700)}
    assert loose == {}
    assert all(mode == 0o700 for name, mode in modes.items() if (workdir / name).is_dir())
