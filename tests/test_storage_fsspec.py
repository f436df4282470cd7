"""FsspecStorage: the contract on memory:// and on a local folder, key rules, the registry."""

from __future__ import annotations

import importlib
import os
import pickle
import re
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

import beautyspot as bs
from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.integrity import checksum_of
from beautyspot.storage import LocalStorage, storage_from
from beautyspot.storage.fsspec import FsspecStorage
from beautyspot.testing import FullStorageContract


@pytest.fixture
def memory_url() -> Iterator[str]:
    """A fresh folder of fsspec's process-wide memory filesystem, removed afterwards."""
    url = f"memory://beautyspot-test-{uuid.uuid4().hex}"
    yield url
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root):
        fs.rm(root, recursive=True)


class TestMemoryContract(FullStorageContract):
    @pytest.fixture
    def storage(self, memory_url: str) -> FsspecStorage:
        return FsspecStorage(memory_url)


class TestLocalFolderContract(FullStorageContract):
    """fsspec's local filesystem: saves go through a temp file and a move."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> FsspecStorage:
        storage = FsspecStorage(f"file://{tmp_path}/blobs")
        assert not storage.atomic_put
        return storage


class TestMemoryThroughTempFilesContract(FullStorageContract):
    @pytest.fixture
    def storage(self, memory_url: str) -> FsspecStorage:
        return FsspecStorage(memory_url, atomic_put=False)


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


# -- layout ----------------------------------------------------------------------------------


def test_blobs_go_to_fan_out_folders_at_relative_locations(tmp_path: Path) -> None:
    storage = FsspecStorage(f"file://{tmp_path}/blobs")
    location = storage.save("3fa9c1-1.bin", b"data")
    assert location == "3f/3fa9c1-1.bin"
    assert files_under(tmp_path) == ["blobs/3f/3fa9c1-1.bin"]  # no temp file left behind
    assert FsspecStorage(f"file://{tmp_path}/blobs").load(location) == b"data"


def test_memory_saves_are_single_writes(memory_url: str) -> None:
    storage = FsspecStorage(memory_url)
    assert storage.atomic_put
    location = storage.save("abc", b"data")
    fs, root = fsspec.core.url_to_fs(memory_url)
    assert fs.find(root) == [f"{root}/{location}"]
    assert fs.cat_file(f"{root}/{location}") == b"data"


def test_listing_leaves_out_foreign_and_temp_files(tmp_path: Path) -> None:
    storage = FsspecStorage(f"file://{tmp_path}")
    saved = storage.save("abc", b"mine")
    for name in ("notes.txt", "xy/abc", "ab/.abc.0123.tmp", "ab/cd/abcd", "abc/abc"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"theirs")
    assert list(storage.iter_locations()) == [saved]


def test_a_listing_of_a_folder_not_made_yet_is_empty(tmp_path: Path, memory_url: str) -> None:
    assert list(FsspecStorage(f"file://{tmp_path}/not-yet").iter_locations()) == []
    assert list(FsspecStorage(memory_url).iter_locations()) == []
    assert FsspecStorage(memory_url).remove_stale_temp_files(older_than=0) == 0


def test_stat_reads_the_age_each_filesystem_reports(tmp_path: Path, memory_url: str) -> None:
    local = FsspecStorage(f"file://{tmp_path}")
    location = local.save("abc", b"four")
    os.utime(tmp_path / location, (1_000_000_000, 1_000_000_000))
    assert local.stat(location) == (4, 1_000_000_000.0)
    memory = FsspecStorage(memory_url)
    assert abs(memory.stat(memory.save("abc", b"x")).modified_at - time.time()) < 60


# -- atomic saves -------------------------------------------------------------------------------


def test_a_failed_move_leaves_no_temp_file_and_no_blob(tmp_path, monkeypatch) -> None:
    storage = FsspecStorage(f"file://{tmp_path}")

    def failing_move(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("denied")

    monkeypatch.setattr(storage._filesystem(), "mv", failing_move)
    with pytest.raises(StorageError, match=r"cannot save blob 'abc' to .*PermissionError: denied"):
        storage.save("abc", b"data")
    assert files_under(tmp_path) == []


def test_a_filesystem_that_cannot_move_over_a_name_still_overwrites(tmp_path, monkeypatch):
    """SMB and HDFS refuse to rename onto an existing file: the old blob goes first."""
    storage = FsspecStorage(f"file://{tmp_path}")
    fs = storage._filesystem()
    real_move = fs.mv

    def refusing_move(source: str, target: str, **kwargs: Any) -> None:
        if os.path.exists(target):
            raise FileExistsError(target)
        real_move(source, target, **kwargs)

    monkeypatch.setattr(fs, "mv", refusing_move)
    storage.save("abc", b"old")
    location = storage.save("abc", b"new")
    assert storage.load(location) == b"new"
    assert files_under(tmp_path) == ["ab/abc"]


def test_stale_temp_files_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    storage = FsspecStorage(f"file://{tmp_path}")
    kept = storage.save("abc", b"blob")
    (tmp_path / "ab" / ".abc.0ld.tmp").write_bytes(b"interrupted")
    (tmp_path / "ab" / ".abc.fre5h.tmp").write_bytes(b"in flight")
    (tmp_path / "ab" / "foreign.tmp").write_bytes(b"a user's own")
    os.utime(tmp_path / "ab" / ".abc.0ld.tmp", (time.time() - 7200,) * 2)
    assert storage.remove_stale_temp_files(older_than=3600) == 1
    assert files_under(tmp_path) == ["ab/.abc.fre5h.tmp", "ab/abc", "ab/foreign.tmp"]
    assert storage.load(kept) == b"blob"


# -- keys and locations cannot leave the folder ------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["../x", ".hidden", "", "a/b", "a\\b", "x" * 201, "with space", "é", "..", 123, None],
)
def test_bad_keys_are_refused_before_anything_is_written(tmp_path, key) -> None:
    storage = FsspecStorage(f"file://{tmp_path}/blobs")
    with pytest.raises(StorageError, match=re.escape(f"blob key {key!r} is not allowed")):
        storage.save(key, b"data")
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "location",
    ["../secret.bin", "/etc/passwd", "ab/../../secret.bin", "ab/cd/abc", "ab\\abc", "", "..",
     "xy/abc", "ab/.abc.tmp", "memory://other/ab/abc", "ab/abc/"],
)  # fmt: skip
def test_locations_outside_the_folder_are_refused(memory_url, location) -> None:
    storage = FsspecStorage(memory_url)
    fs, root = fsspec.core.url_to_fs(memory_url)
    fs.pipe_file(f"{root}/ab/.abc.tmp", b"temp")
    for action in (storage.load, storage.delete, storage.stat):
        with pytest.raises(StorageError, match="is refused"):
            action(location)
    assert fs.exists(f"{root}/ab/.abc.tmp")  # delete touched nothing


# -- end to end through a Spot ------------------------------------------------------------------

CALLS: list[Any] = []


def marked(spot: bs.Spot) -> Any:
    @spot.mark
    def work(x: int) -> str:
        CALLS.append(x)
        return f"result {x}"

    return work


@pytest.fixture
def spot_in_memory(memory_url: str, workdir: Path) -> Iterator[bs.Spot]:
    CALLS.clear()
    spot = bs.Spot("m", storage=memory_url, save_blob=True)
    yield spot
    spot.close()


def test_results_are_blobs_and_a_second_spot_hits(spot_in_memory, memory_url) -> None:
    assert isinstance(spot_in_memory.storage, FsspecStorage)
    work = marked(spot_in_memory)
    assert [work(1), work(2)] == ["result 1", "result 2"]
    record = spot_in_memory.db.get(work.cache_key(1))
    assert record["result_type"] == "blob" and record["checksum"].startswith("sha256:")
    assert len(list(spot_in_memory.storage.iter_locations())) == 2
    again = bs.Spot("m", storage=memory_url, save_blob=True)
    assert [marked(again)(1), marked(again)(2)] == ["result 1", "result 2"]
    assert CALLS == [1, 2]
    again.close()


def test_tampered_bytes_are_a_miss_with_a_warning(spot_in_memory, memory_url) -> None:
    work = marked(spot_in_memory)
    work(1)
    location = spot_in_memory.db.get(work.cache_key(1))["result_value"]
    fs, root = fsspec.core.url_to_fs(memory_url)
    fs.pipe_file(f"{root}/{location}", spot_in_memory.serializer.dumps("forged"))
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert work(1) == "result 1"
    assert CALLS == [1, 1]


def test_a_record_pointing_out_of_the_folder_is_a_miss(spot_in_memory, memory_url) -> None:
    work = marked(spot_in_memory)
    work(1)
    planted = spot_in_memory.serializer.dumps("planted")
    fs, root = fsspec.core.url_to_fs(memory_url)
    fs.pipe_file(f"{root}-other/x", planted)
    try:
        with sqlite3.connect(spot_in_memory.db.path) as conn:
            conn.execute(
                "UPDATE tasks SET result_value = ?, checksum = ? WHERE cache_key = ?",
                (f"../{root.rpartition('/')[2]}-other/x", checksum_of(planted, cryptographic=True),
                 work.cache_key(1)),
            )  # fmt: skip
        conn.close()
        with pytest.warns(bs.BeautyspotWarning, match="refused"):
            assert work(1) == "result 1"
        assert CALLS == [1, 1]
    finally:
        fs.rm(f"{root}-other", recursive=True)


# -- URLs, the registry, pickling -------------------------------------------------------------


def test_the_registry_builds_it_for_memory_urls_and_keeps_file_urls_local(tmp_path) -> None:
    storage = storage_from("memory://registry-test/blobs", namespace="spot")
    assert isinstance(storage, FsspecStorage)
    assert storage.root == "/registry-test/blobs"
    assert repr(storage) == "FsspecStorage('memory://registry-test/blobs')"
    assert isinstance(storage_from(f"file://{tmp_path}"), LocalStorage)


def imported_filesystems() -> dict[str, Any]:
    """fsspec's cache of the filesystem classes it has imported, by protocol."""
    return importlib.import_module("fsspec.registry")._registry  # type: ignore[no-any-return]


@pytest.fixture
def without_gcsfs(monkeypatch: pytest.MonkeyPatch) -> None:
    """gcsfs uninstalled, as far as this process can tell (whether or not it is installed)."""
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    for protocol in ("gs", "gcs"):
        monkeypatch.delitem(imported_filesystems(), protocol, raising=False)


@pytest.mark.parametrize("url", ["gs://bucket/prefix", "gcs://bucket/prefix"])
def test_gcs_without_gcsfs_names_the_extra(without_gcsfs, workdir, url) -> None:
    with pytest.raises(ConfigurationError, match=re.escape('pip install "beautyspot[gcs]"')):
        bs.Spot("s", storage=url)
    with pytest.raises(ConfigurationError, match="gcsfs"):
        FsspecStorage(url)


def test_a_missing_library_is_named_without_secrets(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "paramiko", None)
    monkeypatch.delitem(sys.modules, "fsspec.implementations.sftp", raising=False)
    monkeypatch.delitem(imported_filesystems(), "sftp", raising=False)
    with pytest.raises(ConfigurationError, match="paramiko") as caught:
        storage_from("sftp://user:pa55w0rd@host/blobs")
    assert "pa55w0rd" not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory://", "names no folder"),
        ("no-such-protocol://x/y", "fsspec does not know this protocol"),
        ("relative/path", "give an fsspec URL"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FsspecStorage(url)


def test_bad_options_are_errors(memory_url: str) -> None:
    with pytest.raises(ConfigurationError, match="atomic_put"):
        FsspecStorage(memory_url, atomic_put="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FsspecStorage(memory_url, no_such_option=1)  # type: ignore[call-arg]


def test_it_pickles_by_configuration(memory_url: str, tmp_path: Path) -> None:
    storage = FsspecStorage(memory_url)
    location = storage.save("abc", b"data")  # the filesystem is open: it must not travel
    copy = pickle.loads(pickle.dumps(storage))
    assert (copy.url, copy.root, copy._fs) == (storage.url, storage.root, None)
    assert copy.load(location) == b"data"
    local = FsspecStorage(f"file://{tmp_path}", storage_options={"auto_mkdir": True})
    local_copy = pickle.loads(pickle.dumps(local))
    assert local_copy._config == local._config and not local_copy.atomic_put
    assert local_copy.load(local.save("abc", b"x")) == b"x"
