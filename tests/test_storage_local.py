"""LocalStorage: layout, owner-only modes, atomic writes, and no way out of the folder."""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.storage.local import LocalStorage


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def storage(root: Path) -> LocalStorage:
    return LocalStorage(root)


def all_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def no_umask() -> Iterator[None]:
    """umask 0, so the modes seen are the ones the code asks for, not the umask's."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_blob_goes_to_a_fan_out_folder_under_a_relative_location(storage, root) -> None:
    location = storage.save("3fa9c1-1.bin", b"data")
    assert location == "3f/3fa9c1-1.bin"
    assert (root / "3f" / "3fa9c1-1.bin").read_bytes() == b"data"
    assert all_files(root) == ["3f/3fa9c1-1.bin"]


def test_locations_survive_moving_the_folder(storage, root, tmp_path) -> None:
    location = storage.save("abc", b"data")
    root.rename(tmp_path / "moved")
    assert LocalStorage(tmp_path / "moved").load(location) == b"data"


def test_files_and_folders_are_owner_only(tmp_path: Path, no_umask: None) -> None:
    root = tmp_path / "deep" / "blobs"
    location = LocalStorage(root).save("abc", b"data")
    assert [mode(root.parent), mode(root), mode(root / "ab"), mode(root / location)] == [
        0o700,
        0o700,
        0o700,
        0o600,
    ]


@pytest.mark.parametrize(
    "key",
    ["../x", ".hidden", "", "a/b", "a\\b", "x" * 201, "with space", "é", "C:x", "..", 123, None],
)
def test_bad_keys_are_refused_by_name(storage, root, key) -> None:
    with pytest.raises(StorageError, match=re.escape(f"blob key {key!r} is not allowed")):
        storage.save(key, b"data")
    assert not root.exists()


def test_unwritable_root_is_a_storage_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"not a folder")
    with pytest.raises(StorageError, match=f"cannot save blob 'abc' under {tmp_path / 'file'}"):
        LocalStorage(tmp_path / "file").save("abc", b"data")


def test_data_must_be_bytes(storage) -> None:
    with pytest.raises(TypeError, match="data must be bytes, not str"):
        storage.save("abc", "text")


@pytest.mark.parametrize(
    "location",
    ["../x", "/etc/passwd", "ab/../../x", "ab/./abc", "ab\\abc", "", "ab//abc", "ab/.abc.tmp"],
)
def test_paths_outside_the_layout_are_refused(storage, tmp_path, location) -> None:
    (tmp_path / "x").write_bytes(b"secret")
    storage.save("abc", b"data")
    with pytest.raises(StorageError, match="is refused"):
        storage.load(location)
    with pytest.raises(StorageError, match="is refused"):
        storage.delete(location)
    assert (tmp_path / "x").read_bytes() == b"secret"


def test_symlinks_pointing_outside_the_folder_are_refused(storage, root, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evfile").write_bytes(b"secret")
    storage.save("abc", b"data")
    (root / "ab" / "abevil").symlink_to(outside / "evfile")
    (root / "ev").symlink_to(outside, target_is_directory=True)
    for location in ("ab/abevil", "ev/evfile"):
        with pytest.raises(StorageError, match="outside the storage folder"):
            storage.load(location)
        with pytest.raises(StorageError, match="outside the storage folder"):
            storage.delete(location)
    assert (outside / "evfile").read_bytes() == b"secret"


def test_symlinks_inside_the_folder_are_followed(storage, root, tmp_path) -> None:
    storage.save("abc", b"data")
    (root / "ab" / "ablink").symlink_to(root / "ab" / "abc")
    assert storage.load("ab/ablink") == b"data"
    storage.delete("ab/ablink")  # removes the link, not the blob it points to
    assert storage.load("ab/abc") == b"data"
    (tmp_path / "alias").symlink_to(root, target_is_directory=True)
    assert LocalStorage(tmp_path / "alias").load("ab/abc") == b"data"


def test_symlinks_planted_after_first_use_are_refused(storage, root, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evfile").write_bytes(b"secret")
    assert storage.load(storage.save("abc", b"data")) == b"data"
    (root / "ab" / "abevil").symlink_to(outside / "evfile")
    (root / "ev").symlink_to(outside, target_is_directory=True)
    (root / "ab" / "abc").unlink()
    (root / "ab" / "abc").symlink_to(outside / "evfile")
    for location in ("ab/abevil", "ev/evfile", "ab/abc"):
        with pytest.raises(StorageError, match="outside the storage folder"):
            storage.load(location)
        with pytest.raises(StorageError, match="outside the storage folder"):
            storage.stat(location)


def test_a_root_that_appears_later_is_resolved_when_it_exists(tmp_path: Path) -> None:
    real, alias = tmp_path / "real", tmp_path / "alias"
    storage = LocalStorage(alias)
    with pytest.raises(FileNotFoundError):
        storage.load("ab/abc")
    real.mkdir()
    alias.symlink_to(real, target_is_directory=True)
    location = storage.save("abc", b"data")
    assert storage.load(location) == b"data"
    assert (real / location).read_bytes() == b"data"
    (real / "ab" / "ablink").symlink_to(real / "ab" / "abc")
    assert storage.load("ab/ablink") == b"data"  # inside the real folder, so followed


def test_loads_without_symlinks_resolve_no_path(storage, monkeypatch) -> None:
    # realpath walks every folder from "/" down: once per load cost more than the read itself.
    location = storage.save("abc", b"data")
    storage.load(location)
    calls = []
    real_realpath = os.path.realpath
    monkeypatch.setattr(
        os.path, "realpath", lambda *a, **k: calls.append(a) or real_realpath(*a, **k)
    )
    for _ in range(3):
        assert storage.load(location) == b"data"
        assert storage.stat(location).size == 4
    assert calls == []


def test_missing_blob_is_file_not_found(storage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.load("ab/abc")
    storage.save("abc", b"data")
    with pytest.raises(FileNotFoundError):
        storage.load("ab/abd")


def test_save_leaves_no_temp_files(storage, root) -> None:
    for i in range(5):
        storage.save("abc", bytes([i]) * 1000)
    assert all_files(root) == ["ab/abc"]


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_leaves_the_old_blob_and_no_partial_file(
    storage, root, monkeypatch, interruption
) -> None:
    storage.save("abc", b"old")

    def interrupted(source: str, target: str) -> None:
        assert Path(source).read_bytes() == b"new" * 1000  # the data was written...
        raise interruption  # ...and the rename never happened

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(type(interruption)):
        storage.save("abc", b"new" * 1000)
    with pytest.raises(type(interruption)):
        storage.save("xyz", b"new" * 1000)
    monkeypatch.undo()
    assert all_files(root) == ["ab/abc"]
    assert storage.load("ab/abc") == b"old"


def test_iter_locations_skips_temp_and_foreign_files(storage, root) -> None:
    saved = {storage.save("abc", b"1"), storage.save("a", b"2")}
    (root / "ab" / ".abc.k2j3h4.tmp").write_bytes(b"partial")
    (root / "notes.txt").write_bytes(b"user's own file")
    (root / "ab" / "README").write_bytes(b"not a blob name for this folder")
    (root / "own-folder").mkdir()
    (root / "own-folder" / "ow-data").write_bytes(b"x")
    (root / "zz").mkdir()
    (root / "zz" / "zzlink").symlink_to(root / "ab" / "abc")
    assert set(storage.iter_locations()) == saved


def test_iter_locations_of_a_missing_folder_is_empty(storage) -> None:
    assert list(storage.iter_locations()) == []


def test_remove_stale_temp_files_removes_only_old_temp_files(storage, root) -> None:
    storage.save("abc", b"blob")
    stale, fresh = root / "ab" / ".abc.aaaa.tmp", root / "ab" / ".abc.bbbb.tmp"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"a save in progress")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    assert storage.remove_stale_temp_files(older_than=600) == 1
    assert all_files(root) == ["ab/.abc.bbbb.tmp", "ab/abc"]
    assert storage.remove_stale_temp_files(older_than=600) == 0


def test_from_url_takes_an_absolute_folder(tmp_path: Path) -> None:
    storage = LocalStorage.from_url(f"file://{tmp_path}/my%20blobs")
    assert storage.root == tmp_path / "my blobs"
    assert storage.load(storage.save("abc", b"x")) == b"x"


@pytest.mark.parametrize(
    "url", ["file://server/share", "s3://bucket/x", "file:///x?y=1", "file://", "file:rel"]
)
def test_from_url_refuses_other_urls(url: str) -> None:
    with pytest.raises(ConfigurationError, match="file:///absolute/folder"):
        LocalStorage.from_url(url)


def test_root_must_be_a_path() -> None:
    with pytest.raises(TypeError, match="root must be a folder path"):
        LocalStorage(42)  # type: ignore[arg-type]
