"""FsspecStorage: blobs in any filesystem fsspec reaches (``gs://``, ``az://``, ``memory://``...)."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import fsspec

from beautyspot._registry import redacted, scheme_of
from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.storage.base import (
    BlobStat,
    BlobStorageBase,
    check_location,
    checked_location,
    is_fan_out_location,
)

__all__ = ["FsspecStorage"]

#: Protocols whose single write is atomic (an object store publishes an object only once it is
#: complete; the memory filesystem stores a finished buffer). Others write a temp file, then
#: move it over the final name.
ATOMIC_PUT_PROTOCOLS = frozenset(
    {"memory", "gs", "gcs", "s3", "s3a", "az", "abfs", "abfss", "oci", "oss"}
)
_TEMP_SUFFIX = ".tmp"


class FsspecStorage(BlobStorageBase):
    """Blob storage in an fsspec filesystem: ``<url>/<key[:2]>/<key>``.

    Locations are relative to the URL's folder (``"ab/abcdef"``), and a location of any other
    shape is refused before the filesystem is touched, so no record can make a load reach
    outside it. A save is atomic: a single write on object stores (``ATOMIC_PUT_PROTOCOLS``),
    elsewhere a temp file moved over the final name (pass ``atomic_put`` to choose). The
    filesystem is opened on first use; the blobs get sha256 checksums, as remote blobs do.

    :param url: where blobs go, e.g. ``gs://bucket/prefix``, ``memory://cache``,
        ``file:///data/blobs``.
    :param storage_options: passed to the fsspec filesystem (credentials, project...).
    :param atomic_put: True if one write is atomic on this filesystem; None decides by
        protocol.

    >>> storage = FsspecStorage("memory://doctest-blobs")
    >>> location = storage.save("abcdef", b"payload")
    >>> location, storage.load(location)
    ('ab/abcdef', b'payload')
    >>> storage.delete(location)
    """

    def __init__(
        self,
        url: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        atomic_put: bool | None = None,
    ) -> None:
        if not isinstance(url, str) or scheme_of(url) is None:
            raise ConfigurationError(
                f"url={url!r}: give an fsspec URL such as gs://bucket/prefix or memory://name"
            )
        if atomic_put not in (None, True, False):
            raise ConfigurationError(f"atomic_put={atomic_put!r}: use None, True or False")
        self.url = url
        protocol = scheme_of(url) or ""
        try:
            fs_class = fsspec.get_filesystem_class(protocol)
        except ImportError as error:
            raise _missing_library(url, protocol, error) from error
        except ValueError as error:  # fsspec has never heard of this protocol
            raise ConfigurationError(
                f"storage URL {redacted(url)!r}: {error}; fsspec does not know this protocol"
            ) from error
        self.root = fs_class._strip_protocol(url).rstrip("/")
        if not self.root:
            raise ConfigurationError(
                f"storage URL {redacted(url)!r} names no folder: write memory://name, "
                "gs://bucket/prefix..."
            )
        self.atomic_put = protocol in ATOMIC_PUT_PROTOCOLS if atomic_put is None else atomic_put
        self._config: dict[str, Any] = {
            "url": url,
            "storage_options": dict(storage_options or {}),
            "atomic_put": atomic_put,
        }
        self._fs: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, namespace: str | None = None) -> FsspecStorage:
        """Build from any fsspec URL. The URL's folder is the storage's own namespace, as a
        local folder is: ``namespace`` is accepted and unused.

        >>> FsspecStorage.from_url("memory://my-blobs", namespace="spot").root
        '/my-blobs'
        """
        return cls(url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redacted(self.url)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        config = dict(self._config)
        return (functools.partial(type(self), config.pop("url"), **config), ())

    # -- the contract ------------------------------------------------------------------------

    def save(self, key: str, data: bytes) -> str:
        """Write ``data`` under ``key`` atomically and return its relative location."""
        location = checked_location(key, data)
        path = self._path(location)
        try:
            if self.atomic_put:
                self._filesystem().pipe_file(path, bytes(data))
            else:
                self._write_then_move(key, path, bytes(data))
        except Exception as error:
            raise StorageError(
                f"cannot save blob {key!r} to {redacted(self.url)}: {_describe(error)}"
            ) from error
        return location

    def load(self, location: str) -> bytes:
        """The bytes at ``location``; ``FileNotFoundError`` when there are none.

        >>> FsspecStorage("memory://doctest-blobs").load("../x/secret")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        beautyspot.errors.StorageError: blob location '../x/secret' is refused: ...
        """
        path = self._path(check_location(location, "the storage's folder"))
        try:
            return bytes(self._filesystem().cat_file(path))
        except FileNotFoundError:
            raise
        except Exception as error:
            raise StorageError(
                f"cannot load blob {location!r} from {redacted(self.url)}: {_describe(error)}"
            ) from error

    def delete(self, location: str) -> None:
        """Remove the blob at ``location``; a missing one is not an error."""
        path = self._path(check_location(location, "the storage's folder"))
        try:
            self._filesystem().rm_file(path)
        except FileNotFoundError:
            pass
        except Exception as error:
            raise StorageError(
                f"cannot delete blob {location!r} from {redacted(self.url)}: {_describe(error)}"
            ) from error

    def iter_locations(self) -> Iterator[str]:
        """Every saved blob's location; temp files and foreign files are left out, so garbage
        collection never deletes a user's own files."""
        for location, _ in self._listing():
            if is_fan_out_location(location):
                yield location

    def stat(self, location: str) -> BlobStat:
        """Size and last modification time of the blob at ``location``."""
        path = self._path(check_location(location, "the storage's folder"))
        try:
            fs = self._filesystem()
            info = fs.info(path)
        except FileNotFoundError:
            raise
        except Exception as error:
            raise StorageError(
                f"cannot stat blob {location!r} in {redacted(self.url)}: {_describe(error)}"
            ) from error
        return BlobStat(size=int(info["size"]), modified_at=_modified_at(fs, path, info))

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Delete temp files left by interrupted saves, last modified ``older_than`` seconds
        ago or more; return how many were removed."""
        if isinstance(older_than, bool) or not isinstance(older_than, (int, float)):
            raise TypeError(f"older_than must be a number of seconds, not {older_than!r}")
        cutoff = time.time() - older_than
        removed = 0
        for location, info in self._listing():
            fs, path = self._filesystem(), self._path(location)
            if _is_temp_location(location) and _modified_at(fs, path, info) <= cutoff:
                try:
                    fs.rm_file(path)
                except FileNotFoundError:  # its save finished meanwhile
                    continue
                removed += 1
        return removed

    # -- helpers -----------------------------------------------------------------------------

    def _path(self, location: str) -> str:
        return f"{self.root}/{location}"

    def _filesystem(self) -> Any:
        """The fsspec filesystem, opened on first use and shared by all threads."""
        fs = self._fs
        if fs is None:
            with self._lock:
                if self._fs is None:
                    options = self._config["storage_options"]
                    self._fs, _ = fsspec.core.url_to_fs(self.url, **options)
                fs = self._fs
        return fs

    def _write_then_move(self, key: str, path: str, data: bytes) -> None:
        fs = self._filesystem()
        folder = path.rpartition("/")[0]
        temp = f"{folder}/.{key}.{uuid.uuid4().hex}{_TEMP_SUFFIX}"
        try:
            try:
                fs.pipe_file(temp, data)
            except FileNotFoundError:  # the fan-out folder does not exist yet
                fs.makedirs(folder, exist_ok=True)
                fs.pipe_file(temp, data)
            try:
                fs.mv(temp, path)
            except OSError:
                # Some filesystems (SMB, HDFS) refuse to move over an existing name: remove
                # it first. A reader in between sees no blob (a miss), never a partial one.
                if not fs.exists(path):
                    raise
                fs.rm_file(path)
                fs.mv(temp, path)
        except BaseException:
            with contextlib.suppress(Exception):  # never written, or moved: gc takes leftovers
                fs.rm_file(temp)
            raise

    def _listing(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(location, info) of every file under the root, locations relative to it."""
        start = self.root.lstrip("/") + "/"  # fsspec may list paths with or without a "/"
        try:
            found = self._filesystem().find(self.root, detail=True)
        except FileNotFoundError:
            return
        except Exception as error:
            raise StorageError(
                f"cannot list blobs in {redacted(self.url)}: {_describe(error)}"
            ) from error
        for path, info in found.items():
            name = path.lstrip("/")
            if name.startswith(start):
                yield name[len(start) :], info


def _is_temp_location(location: str) -> bool:
    head, slash, name = location.partition("/")
    return (
        bool(slash)
        and "/" not in name
        and name.startswith(f".{head}")
        and name.endswith(_TEMP_SUFFIX)
    )


def _modified_at(fs: Any, path: str, info: Mapping[str, Any]) -> float:
    """Unix seconds of the last change to ``path``, from whatever its filesystem reports."""
    for field in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    try:
        return float(fs.modified(path).timestamp())
    except NotImplementedError:
        # No age known: call it new, so garbage collection keeps it rather than risk
        # deleting a save in flight.
        return time.time()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _missing_library(url: str, protocol: str, error: ImportError) -> ConfigurationError:
    """The error for a protocol whose fsspec implementation is not installed, naming the
    extra that brings it when beautyspot declares one."""
    from beautyspot.storage import BACKENDS  # the registry says which extra serves a scheme

    extra = BACKENDS.get(protocol, ("", ""))[1]
    fix = (
        f'pip install "beautyspot[{extra}]"'
        if extra and extra != "fsspec"
        else "install the package it names"
    )
    return ConfigurationError(
        f"storage={redacted(url)!r} needs a library that is not installed ({error}): {fix}"
    )
