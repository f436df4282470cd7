"""Integrity tags: the fast tag for bytes beside their records, sha256 for remote blobs."""

from __future__ import annotations

import hashlib
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

import beautyspot as bs
from beautyspot.integrity import checksum_of, matches
from beautyspot.storage import BlobStorageBase, LocalStorage

PAYLOADS = [b"", b"x", b"x" * 10, bytes(range(256)) * 4, b"\x00" * 4097]


def sha256_tag(data: bytes) -> str:
    """A tag as records written before the fast tags hold it."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def xxh3_tag(data: bytes) -> str:
    """The fast tag, computed independently: streamed in chunks, formatted from the integer."""
    state = xxhash.xxh3_128()
    for start in range(0, len(data), 7):
        state.update(data[start : start + 7])
    return f"xxh3-128:{state.intdigest():032x}"


def flipped(data: bytes, bit: int) -> bytes:
    damaged = bytearray(data)
    damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


# -- tags -------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", PAYLOADS, ids=len)
def test_the_fast_tag_is_xxh3_128_of_the_bytes(data: bytes):
    assert checksum_of(data, cryptographic=False) == xxh3_tag(data)


def test_the_fast_tag_matches_the_published_xxh3_128_vector():
    # XXH3_128 of empty input, seed 0, as xxHash's own sanity tests and `xxh128sum` give it.
    assert checksum_of(b"", cryptographic=False) == "xxh3-128:99aa06d3014798d86001c324468d497f"


@pytest.mark.parametrize("data", PAYLOADS, ids=len)
def test_cryptographic_tags_are_always_sha256(data: bytes):
    tag = checksum_of(data, cryptographic=True)
    assert tag == sha256_tag(data)
    streamed = hashlib.sha256()
    for byte in data:
        streamed.update(bytes([byte]))
    assert tag == "sha256:" + streamed.hexdigest()
    assert checksum_of(b"abc", cryptographic=True) == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize("cryptographic", [False, True])
def test_every_bytes_like_type_gets_the_same_tag(cryptographic: bool):
    data = b"some encoded result"
    expected = checksum_of(data, cryptographic=cryptographic)
    for view in (bytearray(data), memoryview(data), memoryview(b"--" + data)[2:]):
        assert checksum_of(view, cryptographic=cryptographic) == expected
        assert matches(expected, view)


# -- verification -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", PAYLOADS, ids=len)
def test_new_tags_verify(data: bytes):
    assert matches(checksum_of(data, cryptographic=False), data)
    assert matches(checksum_of(data, cryptographic=True), data)
    assert matches(checksum_of(data, cryptographic=True), data, cryptographic=True)


@pytest.mark.parametrize("data", PAYLOADS, ids=len)
def test_tags_of_records_written_before_still_verify(data: bytes):
    assert matches(sha256_tag(data), data)


@pytest.mark.parametrize("algorithm", ["xxh3-128", "sha256"])
@pytest.mark.parametrize("bit", [0, 7, 8 * 512 + 3, 8 * 1024 - 1])
def test_one_flipped_bit_fails(algorithm: str, bit: int):
    data = bytes(range(256)) * 4
    tag = checksum_of(data, cryptographic=algorithm == "sha256")
    assert tag.startswith(algorithm + ":")
    assert not matches(tag, flipped(data, bit))


@pytest.mark.parametrize("cryptographic", [False, True])
@pytest.mark.parametrize("kept", [0, 1, 1023])
def test_truncated_or_extended_bytes_fail(cryptographic: bool, kept: int):
    data = bytes(range(256)) * 4
    tag = checksum_of(data, cryptographic=cryptographic)
    assert not matches(tag, data[:kept])
    assert not matches(tag, data + b"\x00")


@given(st.binary(max_size=300), st.integers(min_value=0))
def test_any_single_bit_flip_fails(data: bytes, bit: int):
    if not data:
        return
    damaged = flipped(data, bit % (8 * len(data)))
    assert not matches(checksum_of(data, cryptographic=False), damaged)
    assert not matches(checksum_of(data, cryptographic=True), damaged)


def test_a_fast_tag_is_refused_where_a_cryptographic_one_is_required():
    data = b"a remote blob"
    assert not matches(checksum_of(data, cryptographic=False), data, cryptographic=True)
    assert matches(sha256_tag(data), data, cryptographic=True)


DATA = b"stored bytes"
XXH3_HEX = xxhash.xxh3_128_hexdigest(DATA)
SHA_HEX = hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize(
    "tag",
    [
        "",
        ":",
        "sha256:",
        "xxh3-128:",
        SHA_HEX,  # no algorithm
        XXH3_HEX,
        "md5:" + hashlib.md5(DATA).hexdigest(),  # an unknown algorithm
        "xxh3-64:" + xxhash.xxh3_64_hexdigest(DATA),
        "xxh3-128:" + SHA_HEX,  # a digest under the wrong name
        "sha256:" + XXH3_HEX,
        "SHA256:" + SHA_HEX,  # the name is exact
        "XXH3-128:" + XXH3_HEX,
        "sha256:" + SHA_HEX.upper(),  # tags are written in lowercase hex
        "sha256:" + SHA_HEX[:-1],  # truncated
        "xxh3-128:" + XXH3_HEX[1:],
        "sha256:" + SHA_HEX + "0",  # extended
        "xxh3-128:" + XXH3_HEX + "\n",
        " sha256:" + SHA_HEX,
        "sha256: " + SHA_HEX,
        "sha256:" + SHA_HEX + "\x00",
        "xxh3-128:" + XXH3_HEX[:16],  # a blob name's part of the digest is not a tag
        "sha256:sha256:" + SHA_HEX,
        "\udcff" * 71,
    ],
)
def test_unknown_or_malformed_tags_are_false(tag: str):
    assert matches(tag, DATA) is False
    assert matches(tag, DATA, cryptographic=True) is False


@pytest.mark.parametrize("tag", [None, 0, b"sha256:" + SHA_HEX.encode(), [SHA_HEX], object()])
def test_a_tag_that_is_not_a_str_is_false(tag: Any):
    assert matches(tag, DATA) is False


@given(st.text(max_size=80) | st.sampled_from(["sha256:", "xxh3-128:"]).map(lambda p: p + "0" * 64))
def test_no_str_raises_and_only_the_true_tags_match(tag: str):
    result = matches(tag, DATA)
    assert result is (tag in (sha256_tag(DATA), xxh3_tag(DATA)))


# -- storage declares its threat ----------------------------------------------------------------


class MemoryStorage(BlobStorageBase):
    """A user's storage with only the two required methods: remote, as far as beautyspot knows."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def save(self, key: str, data: bytes) -> str:
        self.objects[key] = bytes(data)
        return key

    def load(self, location: str) -> bytes:
        try:
            return self.objects[location]
        except KeyError:
            raise FileNotFoundError(location) from None


def test_a_users_storage_is_assumed_writable_apart_from_the_records():
    assert BlobStorageBase.writable_apart_from_records is True
    assert MemoryStorage().writable_apart_from_records is True
    assert LocalStorage("blobs").writable_apart_from_records is False


# -- through a Spot ---------------------------------------------------------------------------


class Calls:
    """Records executions of the functions under test (not part of their keys)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __beautyspot_key__(self) -> None:
        return None

    def __call__(self, value: Any) -> Any:
        self.seen.append(value)
        return value


@pytest.fixture
def remote_spot(workdir: Path) -> Iterator[bs.Spot]:
    created = bs.Spot("remote", storage=MemoryStorage())
    yield created
    created.close()


def stored_bytes(spot: bs.Spot, record: dict[str, Any]) -> bytes:
    if record["result_type"] == "blob":
        return spot.storage.load(record["result_value"])
    return record["result_data"]


def set_checksum(spot: bs.Spot, cache_key: str, checksum: str) -> None:
    with sqlite3.connect(spot.db.path) as conn:
        conn.execute("UPDATE tasks SET checksum = ? WHERE cache_key = ?", (checksum, cache_key))
    conn.close()


def without_warnings(call: Any, *args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call(*args)


def test_an_inline_record_gets_the_fast_tag_and_damage_is_a_miss(spot: bs.Spot):
    calls = Calls()

    @spot.mark(save_blob=False)
    def f(x):
        return calls(f"right {x}")

    without_warnings(f, 1)
    record = spot.db.get(f.cache_key(1))
    assert record["checksum"] == xxh3_tag(record["result_data"])
    damaged = record["result_data"].replace(b"right", b"wrong")
    with sqlite3.connect(spot.db.path) as conn:
        conn.execute("UPDATE tasks SET result_data = ?", (damaged,))
    conn.close()
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert f(1) == "right 1"
    assert without_warnings(f, 1) == "right 1"
    assert calls.seen == ["right 1", "right 1"]


@pytest.mark.parametrize("damage", ["flipped bit", "truncated"])
def test_a_local_blob_gets_the_fast_tag_and_damage_is_a_miss(spot: bs.Spot, damage: str):
    calls = Calls()

    @spot.mark(save_blob=True)
    def f(x):
        return calls(f"precious {x}")

    without_warnings(f, 1)  # the blob's name, made from the tag, is a valid blob key
    record = spot.db.get(f.cache_key(1))
    assert record["result_type"] == "blob"
    assert record["checksum"] == xxh3_tag(stored_bytes(spot, record))
    path = Path(spot.storage.root) / record["result_value"]
    data = path.read_bytes()
    path.write_bytes(flipped(data, 8 * len(data) - 1) if damage == "flipped bit" else data[:-1])
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert f(1) == "precious 1"
    assert without_warnings(f, 1) == "precious 1"
    assert calls.seen == ["precious 1", "precious 1"]


def test_inline_records_get_the_fast_tag_whatever_the_storage(remote_spot: bs.Spot):
    @remote_spot.mark(save_blob=False)
    def f(x):
        return x

    without_warnings(f, 1)
    record = remote_spot.db.get(f.cache_key(1))
    assert record["checksum"] == xxh3_tag(record["result_data"])


def test_a_remote_blob_keeps_sha256_and_damage_is_a_miss(remote_spot: bs.Spot):
    calls = Calls()

    @remote_spot.mark(save_blob=True)
    def f(x):
        return calls(f"precious {x}")

    without_warnings(f, 1)
    record = remote_spot.db.get(f.cache_key(1))
    assert record["result_type"] == "blob"
    assert record["checksum"] == sha256_tag(stored_bytes(remote_spot, record))
    objects = remote_spot.storage.objects
    objects[record["result_value"]] = objects[record["result_value"]][:-1]
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert f(1) == "precious 1"
    assert calls.seen == ["precious 1", "precious 1"]


def test_a_remote_blob_is_not_trusted_on_a_fast_tag(remote_spot: bs.Spot):
    """Bytes a bucket writer forged, with a record tagged by a non-cryptographic hash of them
    (as if written while the storage declared itself local), are a miss."""
    calls = Calls()

    @remote_spot.mark(save_blob=True)
    def f(x):
        return calls(f"genuine {x}")

    f(1)
    record = remote_spot.db.get(f.cache_key(1))
    forged = remote_spot.serializer.dumps("forged 1")
    remote_spot.storage.objects[record["result_value"]] = forged
    set_checksum(remote_spot, f.cache_key(1), xxh3_tag(forged))
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert f(1) == "genuine 1"
    assert calls.seen == ["genuine 1", "genuine 1"]


@pytest.mark.parametrize("save_blob", [False, True], ids=["inline", "local blob"])
def test_records_tagged_with_sha256_before_still_hit(spot: bs.Spot, save_blob: bool):
    calls = Calls()

    @spot.mark(save_blob=save_blob)
    def f(x):
        return calls(f"kept {x}")

    f(1)
    record = spot.db.get(f.cache_key(1))
    set_checksum(spot, f.cache_key(1), sha256_tag(stored_bytes(spot, record)))
    assert without_warnings(f, 1) == "kept 1"
    assert calls.seen == ["kept 1"]
