"""Blob storage for large results: the BlobStorageBase contract, a local folder by default."""

from __future__ import annotations

import os

from beautyspot._registry import backend_from
from beautyspot.storage.base import BlobStat, BlobStorageBase
from beautyspot.storage.local import LocalStorage

__all__ = ["BlobStat", "BlobStorageBase", "LocalStorage", "storage_from"]

#: URL scheme -> ("module:Class", the extra that installs its library); a new backend is one
#: file plus one line here.
BACKENDS = {
    "file": ("beautyspot.storage.local:LocalStorage", ""),
    "s3": ("beautyspot.storage.s3:S3Storage", "s3"),
    # Everything else fsspec reaches and can write to (not http, zip, github...: read-only).
    "memory": ("beautyspot.storage.fsspec:FsspecStorage", "fsspec"),
    "gs": ("beautyspot.storage.fsspec:FsspecStorage", "gcs"),
    "gcs": ("beautyspot.storage.fsspec:FsspecStorage", "gcs"),
    "az": ("beautyspot.storage.fsspec:FsspecStorage", "fsspec"),
    "abfs": ("beautyspot.storage.fsspec:FsspecStorage", "fsspec"),
    "abfss": ("beautyspot.storage.fsspec:FsspecStorage", "fsspec"),
    "hdfs": ("beautyspot.storage.fsspec:FsspecStorage", "fsspec"),
    "webhdfs": ("beautyspot.storage.fsspec:FsspecStorage", "fsspec"),
    "sftp": ("beautyspot.storage.fsspec:FsspecStorage", "fsspec"),
    "smb": ("beautyspot.storage.fsspec:FsspecStorage", "fsspec"),
}


def storage_from(
    spec: BlobStorageBase | str | os.PathLike[str], namespace: str | None = None
) -> BlobStorageBase:
    """A blob storage from an instance, a folder path or a URL (``file:///data/blobs``, ...);
    ``namespace`` (the Spot's name) is passed to ``from_url``."""
    return backend_from(
        spec, contract=BlobStorageBase, from_path=LocalStorage, backends=BACKENDS,
        what="storage", namespace=namespace,
    )  # fmt: skip
