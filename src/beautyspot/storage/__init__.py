"""Blob storage for large results: the BlobStorageBase contract, a local folder by default."""

from __future__ import annotations

import os
from pathlib import Path

from beautyspot._registry import backend_from_url, scheme_of
from beautyspot.errors import ConfigurationError
from beautyspot.storage.base import BlobStorageBase
from beautyspot.storage.local import LocalStorage

__all__ = ["BlobStorageBase", "LocalStorage", "storage_from"]

#: URL scheme -> "module:Class"; a new backend is one file plus one line here.
BACKENDS = {
    "file": "beautyspot.storage.local:LocalStorage",
}


def storage_from(spec: BlobStorageBase | str | os.PathLike[str]) -> BlobStorageBase:
    """A blob storage from an instance, a folder path or a URL (``file:///data/blobs``, ...)."""
    if isinstance(spec, BlobStorageBase):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if scheme_of(text) is None:
            return LocalStorage(Path(text))
        return backend_from_url(text, BACKENDS, "storage")
    raise ConfigurationError(
        f"storage={spec!r}: expected a BlobStorageBase instance, a folder path or a URL, "
        f"not {type(spec).__name__}"
    )
