"""S3Storage against a real S3-speaking HTTP server (moto in server mode, tests/moto_server.py).

boto3 finds the server only through ``AWS_ENDPOINT_URL_S3``, as it finds MinIO for a user.
"""

from __future__ import annotations

import os
import pickle
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests import moto_server
from tests.moto_server import SECRET_ACCESS_KEY, S3Env

import beautyspot as bs
from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.integrity import checksum_of
from beautyspot.storage import storage_from
from beautyspot.storage.s3 import S3Storage
from beautyspot.testing import FullStorageContract, core_key

moto_s3, s3_env = moto_server.moto_s3, moto_server.s3_env  # the fixtures

PREFIX = "cache/v1"


@pytest.fixture
def storage(s3_env: S3Env) -> S3Storage:
    return S3Storage(s3_env.bucket, PREFIX)


class TestS3StorageContract(FullStorageContract):
    """The contract, on a fresh bucket per test (the ``storage`` fixture above)."""


def requests_sent(storage: S3Storage) -> list[str]:
    """A live list of the object keys (or bucket paths) ``storage``'s client sends requests
    for, as seen on the wire."""
    sent: list[str] = []

    def record(request: Any, **_: Any) -> None:
        sent.append(request.url)

    storage._s3().meta.events.register("before-send.s3", record)
    return sent


# -- layout and listing -----------------------------------------------------------------------


def test_blobs_go_under_the_prefix_at_a_relative_location(storage, s3_env) -> None:
    location = storage.save("3fa9c1-1.bin", b"data")
    assert location == "3f/3fa9c1-1.bin"
    assert s3_env.object_keys() == [f"{PREFIX}/3f/3fa9c1-1.bin"]
    body = s3_env.client.get_object(Bucket=s3_env.bucket, Key=f"{PREFIX}/{location}")["Body"]
    assert body.read() == b"data"


def test_a_bucket_root_works_too(s3_env) -> None:
    storage = S3Storage(s3_env.bucket)
    location = storage.save("abc", b"data")
    assert s3_env.object_keys() == ["ab/abc"]
    assert storage.load(location) == b"data"
    assert list(storage.iter_locations()) == ["ab/abc"]


def test_listing_leaves_out_foreign_objects_and_other_prefixes(storage, s3_env) -> None:
    saved = storage.save("abc", b"mine")
    for key in (f"{PREFIX}/notes.txt", f"{PREFIX}/ab/", f"{PREFIX}/xy/abc", f"{PREFIX}2/ab/abc",
                "cache/ab/abc", f"{PREFIX}/ab/.abc.tmp"):  # fmt: skip
        s3_env.client.put_object(Bucket=s3_env.bucket, Key=key, Body=b"theirs")
    assert list(storage.iter_locations()) == [saved]


def test_listing_pages_through_many_objects(storage, monkeypatch) -> None:
    monkeypatch.setattr("beautyspot.storage.s3._PAGE_SIZE", 2)  # 1000 in real life
    saved = {storage.save(core_key(str(i)), b"x") for i in range(5)}
    sent = requests_sent(storage)
    assert set(storage.iter_locations()) == saved
    assert len(sent) == 3


# -- keys and locations cannot leave the prefix ---------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["../x", ".hidden", "", "a/b", "a\\b", "x" * 201, "with space", "é", "..", 123, None],
)
def test_bad_keys_are_refused_before_any_request(storage, s3_env, key) -> None:
    sent = requests_sent(storage)
    with pytest.raises(StorageError, match=re.escape(f"blob key {key!r} is not allowed")):
        storage.save(key, b"data")
    assert sent == [] and s3_env.object_keys() == []


@pytest.mark.parametrize(
    "location",
    ["../other/x", "/etc/passwd", "ab/../../x", "ab/cd/abc", "ab\\abc", "", "..", "xy/abc",
     f"{PREFIX}/ab/abc", "ab/.abc.tmp", "s3://other-bucket/ab/abc", "ab/abc/"],
)  # fmt: skip
def test_locations_outside_the_prefix_are_refused_before_any_request(storage, location) -> None:
    sent = requests_sent(storage)
    for action in (storage.load, storage.delete, storage.stat):
        with pytest.raises(StorageError, match="is refused"):
            action(location)
    assert sent == []


def test_a_record_pointing_out_of_the_prefix_is_a_miss_never_a_read(s3_env, workdir) -> None:
    spot = bs.Spot("escape", storage=f"s3://{s3_env.bucket}/{PREFIX}", save_blob=True)
    work = marked(spot)
    work(1)
    planted = spot.serializer.dumps("planted outside the prefix")
    s3_env.client.put_object(Bucket=s3_env.bucket, Key="other/x", Body=planted)
    s3_env.client.put_object(Bucket=s3_env.bucket, Key="cache/other/x", Body=planted)
    plant_record(spot, work.cache_key(1), "../other/x", planted)
    sent = requests_sent(spot.storage)
    CALLS.clear()
    with pytest.warns(bs.BeautyspotWarning, match="refused"):
        assert work(1) == "result 1"
    assert CALLS == [1]
    assert not any("other" in url for url in sent)  # the planted objects were never asked for
    spot.close()


# -- end to end through a Spot ------------------------------------------------------------------

CALLS: list[Any] = []


def marked(spot: bs.Spot) -> Any:
    """The same function (same identity) marked on ``spot``; its calls land in ``CALLS``."""

    @spot.mark
    def work(x: int) -> str:
        CALLS.append(x)
        return f"result {x}"

    return work


def plant_record(spot: bs.Spot, cache_key: str, location: str, data: bytes) -> None:
    """Point ``cache_key``'s record at ``location``, with a valid sha256 tag of ``data``."""
    with sqlite3.connect(spot.db.path) as conn:
        conn.execute(
            "UPDATE tasks SET result_type = 'blob', result_value = ?, result_data = NULL, "
            "checksum = ? WHERE cache_key = ?",
            (location, checksum_of(data, cryptographic=True), cache_key),
        )
    conn.close()


@pytest.fixture
def spot_on_s3(s3_env: S3Env, workdir: Path) -> Iterator[bs.Spot]:
    CALLS.clear()
    spot = bs.Spot("s", storage=f"s3://{s3_env.bucket}/{PREFIX}", save_blob=True)
    yield spot
    spot.close()


def test_results_are_blobs_in_the_bucket_and_a_second_spot_hits(spot_on_s3, s3_env) -> None:
    assert isinstance(spot_on_s3.storage, S3Storage)
    work = marked(spot_on_s3)
    assert [work(1), work(2)] == ["result 1", "result 2"]
    record = spot_on_s3.db.get(work.cache_key(1))
    assert record["result_type"] == "blob"
    assert record["checksum"].startswith("sha256:")  # a bucket is writable apart from records
    assert f"{PREFIX}/{record['result_value']}" in s3_env.object_keys(PREFIX)
    assert len(s3_env.object_keys(PREFIX)) == 2

    again = bs.Spot("s", storage=f"s3://{s3_env.bucket}/{PREFIX}", save_blob=True)
    assert [marked(again)(1), marked(again)(2)] == ["result 1", "result 2"]
    assert CALLS == [1, 2]  # both served from the bucket
    again.close()


def test_a_tampered_object_is_a_miss_with_a_warning(spot_on_s3, s3_env) -> None:
    work = marked(spot_on_s3)
    work(1)
    location = spot_on_s3.db.get(work.cache_key(1))["result_value"]
    forged = spot_on_s3.serializer.dumps("forged result")
    s3_env.client.put_object(Bucket=s3_env.bucket, Key=f"{PREFIX}/{location}", Body=forged)
    with pytest.warns(bs.BeautyspotWarning, match="checksum"):
        assert work(1) == "result 1"
    assert CALLS == [1, 1]
    assert work(1) == "result 1" and CALLS == [1, 1]  # the recomputed blob replaced it


def test_a_deleted_object_is_a_miss_with_a_warning(spot_on_s3, s3_env) -> None:
    work = marked(spot_on_s3)
    work(1)
    for key in s3_env.object_keys():
        s3_env.client.delete_object(Bucket=s3_env.bucket, Key=key)
    with pytest.warns(bs.BeautyspotWarning, match="cannot be read"):
        assert work(1) == "result 1"
    assert CALLS == [1, 1]


def test_garbage_collection_removes_orphans_in_the_bucket(spot_on_s3, s3_env) -> None:
    work = marked(spot_on_s3)
    work(1)
    orphan = spot_on_s3.storage.save(core_key("orphan"), b"no record")
    report = spot_on_s3.gc(older_than=0)
    assert report.orphan_blobs == 1
    assert orphan not in set(spot_on_s3.storage.iter_locations())
    assert work(1) == "result 1" and CALLS == [1]


# -- large blobs, errors, configuration ------------------------------------------------------


def test_a_blob_above_the_multipart_threshold_is_uploaded_in_parts(s3_env) -> None:
    storage = S3Storage(
        s3_env.bucket, PREFIX, multipart_threshold=1 << 20, multipart_chunksize=5 << 20
    )
    data = os.urandom(11 << 20)  # S3 parts are >= 5 MiB (but the last): 5 + 5 + 1
    location = storage.save(core_key("big"), data)
    head = s3_env.client.head_object(Bucket=s3_env.bucket, Key=f"{PREFIX}/{location}")
    assert head["ETag"].strip('"').endswith("-3")  # the ETag of a 3-part upload
    assert storage.load(location) == data
    small = storage.save(core_key("small"), b"x" * 1000)
    head = s3_env.client.head_object(Bucket=s3_env.bucket, Key=f"{PREFIX}/{small}")
    assert "-" not in head["ETag"]


def test_stale_multipart_uploads_under_the_prefix_are_aborted(storage, s3_env) -> None:
    client, bucket = s3_env.client, s3_env.bucket
    mine = client.create_multipart_upload(Bucket=bucket, Key=f"{PREFIX}/ab/abc")["UploadId"]
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/ab/abc")
    moto_dates_every_upload = 1289422113.0  # "Initiated": 2010-11-10T20:48:33Z, always
    assert storage.remove_stale_temp_files(time.time() - moto_dates_every_upload + 60) == 0
    assert storage.remove_stale_temp_files(older_than=0) == 1
    left = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [upload["Key"] for upload in left] == ["elsewhere/ab/abc"]
    assert mine not in [upload["UploadId"] for upload in left]


def test_a_missing_object_is_file_not_found(storage) -> None:
    with pytest.raises(FileNotFoundError, match=f"s3://.*/{PREFIX}/ab/abc"):
        storage.load("ab/abc")
    with pytest.raises(FileNotFoundError):
        storage.stat("ab/abc")
    storage.delete("ab/abc")  # not an error


def test_a_missing_bucket_is_a_storage_error_naming_it(s3_env) -> None:
    storage = S3Storage("no-such-bucket-here", PREFIX)
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
        storage.save("abc", b"data")
    with pytest.raises(OSError):  # the core's "cannot be read": a miss
        storage.load("ab/abc")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_endpoint_is_a_storage_error_naming_it(s3_env, monkeypatch) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    storage = S3Storage(s3_env.bucket, PREFIX, max_attempts=2, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(StorageError, match=re.escape(f"S3 endpoint {endpoint} cannot be")) as e:
        storage.save("abc", b"data")
    with pytest.raises(StorageError, match=re.escape(endpoint)):
        storage.load("ab/abc")
    assert time.monotonic() - started < 10
    assert SECRET_ACCESS_KEY not in str(e.value)


def test_a_malformed_endpoint_is_a_storage_error(s3_env, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "not a url")
    with pytest.raises(StorageError, match="AWS_ENDPOINT_URL_S3"):
        S3Storage(s3_env.bucket, PREFIX).load("ab/abc")  # an OSError: the core's miss


def test_retries_and_timeouts_are_configured_on_the_client(storage, s3_env) -> None:
    config = storage._s3().meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}  # first included
    assert (config.connect_timeout, config.read_timeout) == (10.0, 60.0)
    assert storage._s3().meta.endpoint_url == s3_env.endpoint  # from AWS_ENDPOINT_URL_S3
    adaptive = S3Storage(s3_env.bucket, retry_mode="adaptive", max_attempts=3)
    assert adaptive._s3().meta.config.retries == {"mode": "adaptive", "total_max_attempts": 3}


def test_the_client_is_made_once_for_all_threads(s3_env) -> None:
    storage = S3Storage(s3_env.bucket, PREFIX)
    assert storage._client is None  # nothing is opened before the first use
    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = set(map(id, pool.map(lambda _: storage._s3(), range(16))))
    assert len(clients) == 1


def test_it_pickles_by_configuration(storage) -> None:
    location = storage.save("abc", b"data")  # the client exists now: it must not travel
    custom = S3Storage(storage.bucket, "p", multipart_threshold=5 << 20, max_attempts=2)
    copy = pickle.loads(pickle.dumps(storage))
    assert (copy.bucket, copy.prefix, copy._client) == (storage.bucket, PREFIX, None)
    assert copy.load(location) == b"data"
    assert pickle.loads(pickle.dumps(custom))._config == custom._config


# -- URLs and the registry ---------------------------------------------------------------------


def test_the_registry_builds_it_from_an_s3_url() -> None:
    storage = storage_from("s3://my-bucket/a/b%20c/", namespace="spot")
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("my-bucket", "a/b c")
    assert repr(storage) == "S3Storage('s3://my-bucket/a/b c')"
    assert storage_from("S3://my-bucket").prefix == ""


SECRET = "pa55-w0rd"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"s3://AKIA:{SECRET}@bucket/p", "must not carry credentials"),
        ("s3://bucket:9000/p", "must not carry credentials or a port"),
        ("s3://bucket/p?region=eu-west-1", "no query"),
        ("s3:///p", "not an S3 bucket name"),
        ("s3://bucket/a/../b", "must not be empty, '.' or '..'"),
        ("s3://bucket/a//b", "must not be empty"),
    ],
)
def test_bad_urls_are_refused_without_showing_secrets(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        storage_from(url)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("multipart_threshold", 0),
        ("max_attempts", True),
        ("connect_timeout", -1),
        ("retry_mode", "legacy"),
    ],
)
def test_bad_options_are_configuration_errors(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=option):
        S3Storage("bucket", **{option: value})
    with pytest.raises(TypeError):
        S3Storage("bucket", no_such_option=1)  # type: ignore[call-arg]
