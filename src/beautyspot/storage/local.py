"""LocalStorage: blobs as owner-only files in a local folder, written atomically."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.storage.base import (
    BLOB_NAME,
    BlobStat,
    BlobStorageBase,
    checked_location,
)

__all__ = ["LocalStorage", "make_private_dirs"]

# Letters, digits, "-", "." and "_", no leading dot (so never "." or ".." and never a temp
# file's name), short enough to leave room for the temp suffix within a 255-byte file name.
_TEMP_SUFFIX = ".tmp"


class LocalStorage(BlobStorageBase):
    """Blob storage in a folder: ``root/<key[:2]>/<key>``, files 0600, folders 0700.

    Locations are relative POSIX paths (``"ab/abcdef"``), so the folder can move. Folders are
    created on first save. Thread- and process-safe: each save writes a private temp file and
    renames it over the final name. The folder's own real path is resolved once, when it first
    exists; a location that passes through a symlink is refused unless it stays in the folder.

    >>> import tempfile
    >>> storage = LocalStorage(tempfile.mkdtemp())
    >>> location = storage.save("abcdef", b"payload")
    >>> location
    'ab/abcdef'
    >>> storage.load(location)
    b'payload'
    """

    SCHEMES = ("file",)
    #: The files are owner-only and sit beside the records: a checksum guards against
    #: corruption and truncation, not against a writer of the folder.
    writable_apart_from_records = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a folder path (str or os.PathLike), not {root!r}")
        self.root = Path(root).absolute()
        self._real_root: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles by configuration: its folder."""
        return (type(self), (str(self.root),))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @classmethod
    def from_url(cls, url: str, *, namespace: str | None = None) -> LocalStorage:
        """Build from ``file:///absolute/folder`` (percent-escapes decoded). A folder is its
        own namespace: ``namespace`` is accepted and unused.

        >>> LocalStorage.from_url("file:///tmp/my%20blobs").root.as_posix()
        '/tmp/my blobs'
        """
        parts = urlsplit(url)
        if parts.scheme not in cls.SCHEMES or parts.netloc not in ("", "localhost"):
            raise ConfigurationError(
                f"storage URL {url!r} is not a local folder URL: write file:///absolute/folder"
            )
        if not parts.path.startswith("/") or parts.query or parts.fragment:
            raise ConfigurationError(
                f"storage URL {url!r} must be file:///absolute/folder, with no query or fragment"
            )
        return cls(unquote(parts.path))

    def save(self, key: str, data: bytes) -> str:
        """Write ``data`` under ``key`` atomically and return its relative location.

        >>> import tempfile
        >>> LocalStorage(tempfile.mkdtemp()).save("../x", b"")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        beautyspot.errors.StorageError: blob key '../x' is not allowed: ...
        """
        location = checked_location(key, data)
        try:
            self._write(key, data)
        except OSError as error:
            raise StorageError(f"cannot save blob {key!r} under {self.root}: {error}") from error
        return location

    def load(self, location: str) -> bytes:
        """The bytes at ``location``; ``FileNotFoundError`` when there are none.

        >>> import tempfile
        >>> LocalStorage(tempfile.mkdtemp()).load("/etc/passwd")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        beautyspot.errors.StorageError: blob location '/etc/passwd' is refused: ...
        """
        with open(self._resolve(location), "rb") as file:
            return file.read()

    def delete(self, location: str) -> None:
        """Remove the blob at ``location``; a missing one is not an error.

        >>> import tempfile
        >>> storage = LocalStorage(tempfile.mkdtemp())
        >>> storage.delete(storage.save("abc", b"x"))
        >>> list(storage.iter_locations())
        []
        """
        self._resolve(location)
        # Unlink the name itself: if it is a symlink, the link goes, not what it points to.
        _remove_if_present(self.root / location)

    def iter_locations(self) -> Iterator[str]:
        """Every saved blob's location; temp files and foreign files are left out.

        Only names this class could have written are listed, so a garbage collector that
        deletes unreferenced locations never touches a user's own files in the folder.

        >>> import tempfile
        >>> storage = LocalStorage(tempfile.mkdtemp())
        >>> _ = storage.save("abc", b"x"), storage.save("xyz", b"y")
        >>> sorted(storage.iter_locations())
        ['ab/abc', 'xy/xyz']
        """
        for folder in _subfolders(self.root):
            for entry in _scandir(folder.path):
                if _is_blob(entry, folder.name):
                    yield f"{folder.name}/{entry.name}"

    def stat(self, location: str) -> BlobStat:
        """Size and last modification time of the blob at ``location``.

        >>> import tempfile
        >>> storage = LocalStorage(tempfile.mkdtemp())
        >>> storage.stat(storage.save("abc", b"four")).size
        4
        """
        info = os.stat(self._resolve(location))
        return BlobStat(size=info.st_size, modified_at=info.st_mtime)

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Delete temp files left by interrupted saves, last modified ``older_than`` seconds
        ago or more; return how many were removed. Keep ``older_than`` well above the time
        one save takes, or a save in progress loses its temp file.

        >>> import tempfile
        >>> LocalStorage(tempfile.mkdtemp()).remove_stale_temp_files(older_than=3600)
        0
        """
        if isinstance(older_than, bool) or not isinstance(older_than, (int, float)):
            raise TypeError(f"older_than must be a number of seconds, not {older_than!r}")
        cutoff = time.time() - older_than
        removed = 0
        for folder in _subfolders(self.root):
            for entry in _scandir(folder.path):
                if _is_temp_name(entry.name) and _modified_before(entry, cutoff):
                    removed += _remove_if_present(entry.path)
        return removed

    def _write(self, key: str, data: bytes) -> None:
        folder = self.root / key[:2]
        fd, temp = _make_temp_file(folder, key)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            # No fsync: the core verifies a checksum on load, so a file torn by a power cut
            # reads as a miss and is recomputed, never as a wrong result.
            os.replace(temp, folder / key)
        except BaseException:
            _remove_if_present(temp)
            raise

    def _resolve(self, location: str) -> str:
        """The real path of ``location``, refused unless it stays inside the root."""
        if not isinstance(location, str):
            raise TypeError(f"location must be a str returned by save(), not {location!r}")
        if "\\" in location or not all(BLOB_NAME.fullmatch(part) for part in location.split("/")):
            raise StorageError(
                f"blob location {location!r} is refused: it must be a relative path made of "
                "letters, digits, '-', '.' and '_' (no '..', no absolute path, no backslash), "
                "as returned by save()"
            )
        real_root = self._resolved_root()
        path = os.path.join(real_root, location)
        if not _crosses_a_symlink(real_root, location):
            return path  # no symlink, no "..": the path stays where it is, inside the root
        real = os.path.realpath(path)
        if os.path.commonpath([real_root, real]) != real_root:
            raise StorageError(
                f"blob location {location!r} is refused: it resolves to {real}, "
                f"outside the storage folder {real_root} (a symlink points out of it)"
            )
        return real

    def _resolved_root(self) -> str:
        """The root's real path, resolved once the folder exists (the first save makes it)."""
        # Resolving it on every load cost more than reading a small blob.
        if self._real_root is None:
            real_root = os.path.realpath(self.root)
            if not os.path.isdir(real_root):
                return real_root
            self._real_root = real_root
        return self._real_root


def make_private_dirs(path: Path) -> None:
    """Create the folder ``path`` and any missing parents, each owner-only (0700).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a" / "b"
    >>> make_private_dirs(target)
    >>> oct(target.parent.stat().st_mode & 0o777)
    '0o700'
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    except FileNotFoundError:
        if path.parent == path:
            raise
        make_private_dirs(path.parent)
        make_private_dirs(path)


def _make_temp_file(folder: Path, key: str) -> tuple[int, str]:
    """An open owner-only temp file next to the final name; folders are made on demand."""
    import tempfile  # here, not at the top: with shutil, it is 2 ms of `import beautyspot`

    make = functools.partial(tempfile.mkstemp, prefix=f".{key}.", suffix=_TEMP_SUFFIX, dir=folder)
    try:
        return make()
    except FileNotFoundError:
        make_private_dirs(folder)
        return make()


def _crosses_a_symlink(real_root: str, location: str) -> bool:
    """Whether a part of ``location`` under ``real_root`` is a symlink (a missing part is not:
    nothing beyond it can be opened)."""
    path = real_root
    for part in location.split("/"):
        path = os.path.join(path, part)
        if os.path.islink(path):
            return True
    return False


def _is_blob(entry: os.DirEntry[str], folder_name: str) -> bool:
    """Whether ``entry`` is a file save() could have written in the fan-out ``folder_name``."""
    name = entry.name
    return (
        name[:2] == folder_name
        and BLOB_NAME.fullmatch(name) is not None
        and entry.is_file(follow_symlinks=False)
    )


def _is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX)


def _modified_before(entry: os.DirEntry[str], cutoff: float) -> bool:
    try:
        return entry.stat(follow_symlinks=False).st_mtime <= cutoff
    except FileNotFoundError:  # a save finished meanwhile
        return False


def _subfolders(root: Path) -> Iterator[os.DirEntry[str]]:
    for entry in _scandir(root):
        is_fan_out_name = len(entry.name) <= 2 and BLOB_NAME.fullmatch(entry.name)
        if is_fan_out_name and entry.is_dir(follow_symlinks=False):
            yield entry


def _scandir(path: str | Path) -> list[os.DirEntry[str]]:
    """Entries of ``path``, or none when the folder does not exist (yet)."""
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def _remove_if_present(path: str | Path) -> int:
    """Unlink ``path``; 1 if it was removed, 0 if it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return 1
