"""The BlobStorageBase contract suite: subclass it with a ``storage`` fixture yielding a fresh,
empty backend.

``BlobStorageContract`` covers ``save`` and ``load`` (a user's minimal backend passes it);
``FullBlobStorageContract`` adds ``delete`` and ``iter_locations``.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from beautyspot.storage.base import BlobStorageBase

__all__ = ["BlobStorageContract", "FullBlobStorageContract"]


def core_key(seed: str) -> str:
    """A key shaped like the core's: hex digits, ``-`` and ``.``."""
    return hashlib.sha256(seed.encode()).hexdigest() + "-1.bin"


class BlobStorageContract:
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


class FullBlobStorageContract(BlobStorageContract):
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
