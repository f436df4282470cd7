"""S3Storage: blobs as objects under one prefix of an S3 bucket, through boto3 alone.

Endpoint, region and credentials come from the standard AWS configuration, which boto3 reads
itself: ``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``) for an S3-compatible service such as
MinIO, ``AWS_REGION``, ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, roles, ``~/.aws/config``. Nothing
secret is taken from the URL or shown in a message.
"""

from __future__ import annotations

import errno
import functools
import io
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from beautyspot._registry import redacted
from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.storage.base import (
    BlobStat,
    BlobStorageBase,
    check_location,
    checked_location,
    is_fan_out_location,
)

__all__ = ["S3Storage"]

_MIB = 1 << 20
# Legacy bucket names may hold capitals and "_"; anything else is refused before a request.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,254}")
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset(
    {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
)
_RETRY_MODES = ("standard", "adaptive")
_PAGE_SIZE = 1000  # keys per listing request, S3's maximum


class S3Storage(BlobStorageBase):
    """Blob storage in an S3 bucket: ``s3://bucket/prefix/<key[:2]>/<key>``.

    Locations are relative to the prefix (``"ab/abcdef"``), as with
    :class:`~beautyspot.storage.LocalStorage`; a location that is not of that shape is refused
    before any request, so no record can make a load reach outside the prefix.

    A save is one ``PutObject``, or a multipart upload above ``multipart_threshold`` bytes; S3
    makes either visible only once complete, so a crash never leaves a partial object (an
    interrupted multipart upload is invisible; :meth:`remove_stale_temp_files` aborts it).
    Throttling, 5xx answers and dropped connections are retried by botocore (``retry_mode``,
    ``max_attempts``). The client is made on first use and shared by all threads. The bucket
    may be writable by others than the TaskDB's writers, so blobs get sha256 checksums.

    :param bucket: the bucket's name.
    :param prefix: the folder-like prefix under which blobs go ("" for the bucket's root).
    :param multipart_threshold: bytes above which a blob is uploaded in parts.
    :param multipart_chunksize: bytes per part (S3 makes every part but the last >= 5 MiB).
    :param max_attempts: attempts per request, the first included.
    :param retry_mode: botocore's ``"standard"`` or ``"adaptive"`` (client-side rate limiting
        on top of the standard retries).
    :param connect_timeout: seconds to open a connection.
    :param read_timeout: seconds to wait for a response's bytes.
    :param max_pool_connections: connections kept open, shared by threads.
    :param endpoint_url: an S3-compatible endpoint; None reads the AWS configuration
        (``AWS_ENDPOINT_URL_S3``...).
    :param region_name: None reads the AWS configuration.

    >>> S3Storage("my-bucket", "cache/v1")
    S3Storage('s3://my-bucket/cache/v1')
    >>> S3Storage.from_url("s3://my-bucket/cache/v1").prefix
    'cache/v1'
    """

    SCHEMES = ("s3",)
    #: A bucket is often shared more widely than the TaskDB: blobs get sha256 checksums.
    writable_apart_from_records = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        multipart_threshold: int = 8 * _MIB,
        multipart_chunksize: int = 8 * _MIB,
        max_attempts: int = 5,
        retry_mode: str = "standard",
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_pool_connections: int = 32,
        endpoint_url: str | None = None,
        region_name: str | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise ConfigurationError(
                f"bucket={bucket!r} is not an S3 bucket name: 3-255 letters, digits, '.', '-' "
                "or '_'"
            )
        for name, value in (
            ("multipart_threshold", multipart_threshold),
            ("multipart_chunksize", multipart_chunksize),
            ("max_attempts", max_attempts),
            ("max_pool_connections", max_pool_connections),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name}={value!r}: give a whole number, 1 or more")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(f"{name}={value!r}: give a number of seconds above 0")
        if retry_mode not in _RETRY_MODES:
            raise ConfigurationError(f"retry_mode={retry_mode!r}: use 'standard' or 'adaptive'")
        self.bucket = bucket
        self.prefix = _check_prefix(prefix)
        # Everything the storage is made of: it pickles as these, never as a client.
        self._config: dict[str, Any] = {
            "bucket": bucket,
            "prefix": self.prefix,
            "multipart_threshold": multipart_threshold,
            "multipart_chunksize": multipart_chunksize,
            "max_attempts": max_attempts,
            "retry_mode": retry_mode,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": max_pool_connections,
            "endpoint_url": endpoint_url,
            "region_name": region_name,
        }
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunksize
        )
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, namespace: str | None = None) -> S3Storage:
        """Build from ``s3://bucket/prefix`` (percent-escapes decoded). The prefix is the
        storage's own namespace, as a folder is: ``namespace`` is accepted and unused. Options
        other than the place are constructor arguments; credentials never go in the URL.

        >>> S3Storage.from_url("s3://key:secret@bucket/p")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        beautyspot.errors.ConfigurationError: storage URL 's3://key:***@bucket/p' ...
        """
        shown = redacted(url)
        parts = urlsplit(url)
        if parts.scheme.lower() not in cls.SCHEMES:
            raise ConfigurationError(f"storage URL {shown!r} is not an s3://bucket/prefix URL")
        if "@" in parts.netloc or ":" in parts.netloc:
            raise ConfigurationError(
                f"storage URL {shown!r} must not carry credentials or a port: write "
                "s3://bucket/prefix and configure access the AWS way (AWS_PROFILE, "
                "AWS_ACCESS_KEY_ID, a role; AWS_ENDPOINT_URL_S3 for another endpoint)"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError(
                f"storage URL {shown!r} must be s3://bucket/prefix with no query or fragment; "
                "pass options to S3Storage(bucket, prefix, ...) instead"
            )
        return cls(parts.netloc, unquote(parts.path))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (functools.partial(type(self), **self._config), ())

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    # -- the contract ------------------------------------------------------------------------

    def save(self, key: str, data: bytes) -> str:
        """Upload ``data`` under ``key`` and return its location relative to the prefix."""
        location = checked_location(key, data)
        object_key = self._object_key(location)
        try:
            client = self._s3()
            if len(data) < self._transfer.multipart_threshold:
                client.put_object(Bucket=self.bucket, Key=object_key, Body=bytes(data))
            else:
                client.upload_fileobj(
                    io.BytesIO(data), self.bucket, object_key, Config=self._transfer
                )
        except (BotoCoreError, ClientError) as error:
            raise self._failure("save blob to", object_key, error) from error
        return location

    def load(self, location: str) -> bytes:
        """The bytes at ``location``; ``FileNotFoundError`` when there are none.

        >>> S3Storage("my-bucket", "p").load("../other/x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        beautyspot.errors.StorageError: blob location '../other/x' is refused: ...
        """
        object_key = self._object_key(check_location(location, "the prefix"))
        try:
            response = self._s3().get_object(Bucket=self.bucket, Key=object_key)
            with response["Body"] as body:
                return body.read()  # type: ignore[no-any-return]
        except (BotoCoreError, ClientError) as error:
            raise self._failure("load blob from", object_key, error) from error

    def delete(self, location: str) -> None:
        """Remove the object at ``location``; a missing one is not an error."""
        object_key = self._object_key(check_location(location, "the prefix"))
        try:
            self._s3().delete_object(Bucket=self.bucket, Key=object_key)
        except (BotoCoreError, ClientError) as error:
            failure = self._failure("delete blob", object_key, error)
            if not isinstance(failure, FileNotFoundError):
                raise failure from error

    def iter_locations(self) -> Iterator[str]:
        """Every saved blob's location under the prefix; objects of other shapes (a user's own
        files, folder markers) are left out, so garbage collection never deletes them."""
        start = self._object_key("")
        try:
            pages = self._s3().get_paginator("list_objects_v2")
            listing = pages.paginate(
                Bucket=self.bucket, Prefix=start, PaginationConfig={"PageSize": _PAGE_SIZE}
            )
            for page in listing:
                for item in page.get("Contents", ()):
                    location = item["Key"][len(start) :]
                    if is_fan_out_location(location):
                        yield location
        except (BotoCoreError, ClientError) as error:
            raise self._failure("list blobs under", start, error) from error

    def stat(self, location: str) -> BlobStat:
        """Size and last modification time of the object at ``location``."""
        object_key = self._object_key(check_location(location, "the prefix"))
        try:
            head = self._s3().head_object(Bucket=self.bucket, Key=object_key)
        except (BotoCoreError, ClientError) as error:
            raise self._failure("stat blob", object_key, error) from error
        return BlobStat(size=head["ContentLength"], modified_at=head["LastModified"].timestamp())

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Abort multipart uploads of blobs under the prefix that were started ``older_than``
        seconds ago or more (left by interrupted saves, they are invisible but billed);
        return how many were aborted."""
        if isinstance(older_than, bool) or not isinstance(older_than, (int, float)):
            raise TypeError(f"older_than must be a number of seconds, not {older_than!r}")
        cutoff = time.time() - older_than
        start = self._object_key("")
        aborted = 0
        try:
            client = self._s3()
            pages = client.get_paginator("list_multipart_uploads")
            for page in pages.paginate(Bucket=self.bucket, Prefix=start):
                for upload in page.get("Uploads", ()):
                    stale = upload["Initiated"].timestamp() <= cutoff
                    if stale and is_fan_out_location(upload["Key"][len(start) :]):
                        client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (BotoCoreError, ClientError) as error:
            raise self._failure("abort stale uploads under", start, error) from error
        return aborted

    # -- helpers -----------------------------------------------------------------------------

    def _object_key(self, location: str) -> str:
        return f"{self.prefix}/{location}" if self.prefix else location

    def _s3(self) -> Any:
        """The boto3 client, made on first use (a client is thread-safe; a Session is not)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._new_client()
                client = self._client
        return client

    def _new_client(self) -> Any:
        config = self._config
        try:
            session = boto3.session.Session(region_name=config["region_name"])
            return self._client_of(session)
        except ValueError as error:  # botocore's word for a malformed endpoint or region
            raise StorageError(
                f"cannot make an S3 client for {self.url}: {error}; check endpoint_url, "
                "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and the region"
            ) from error

    def _client_of(self, session: Any) -> Any:
        config = self._config
        return session.client(
            "s3",
            endpoint_url=config["endpoint_url"],
            config=Config(
                retries={
                    "mode": config["retry_mode"],
                    "total_max_attempts": config["max_attempts"],  # the first one included
                },
                connect_timeout=config["connect_timeout"],
                read_timeout=config["read_timeout"],
                max_pool_connections=config["max_pool_connections"],
            ),
        )

    def _endpoint(self) -> str:
        client = self._client
        endpoint = client.meta.endpoint_url if client is not None else self._config["endpoint_url"]
        return redacted(endpoint) if endpoint else "the AWS default endpoint"

    def _failure(self, action: str, object_key: str, error: Exception) -> OSError:
        """The OSError to raise for a boto3 ``error``: FileNotFoundError for a missing object,
        otherwise a StorageError saying what failed, where, and what to check."""
        where = f"s3://{self.bucket}/{object_key}"
        if isinstance(error, ClientError):
            details = error.response.get("Error", {})
            code = str(details.get("Code", "unknown"))
            if code in _MISSING:
                return FileNotFoundError(errno.ENOENT, f"no blob at {where}")
            if code == "NoSuchBucket":
                return StorageError(
                    f"cannot {action} {where}: bucket {self.bucket!r} does not exist at "
                    f"{self._endpoint()}"
                )
            if code in _DENIED:
                return StorageError(
                    f"cannot {action} {where}: access denied ({code}); check the AWS "
                    "credentials in use and the bucket's policy"
                )
            return StorageError(
                f"cannot {action} {where}: {code}: {details.get('Message', 'no message')}"
            )
        if isinstance(error, NoCredentialsError):
            return StorageError(
                f"cannot {action} {where}: no AWS credentials found; set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role"
            )
        if isinstance(error, (EndpointUnreachable, HTTPClientError)):
            return StorageError(
                f"cannot {action} {where}: the S3 endpoint {self._endpoint()} cannot be "
                f"reached or dropped the connection ({type(error).__name__}); check "
                "AWS_ENDPOINT_URL_S3 and the network (retried up to max_attempts times)"
            )
        return StorageError(f"cannot {action} {where}: {error}")


def _check_prefix(prefix: str) -> str:
    """``prefix`` without surrounding slashes; refused if a segment is empty, "." or ".."."""
    if not isinstance(prefix, str):
        raise ConfigurationError(f"prefix={prefix!r}: give a str such as 'cache/v1'")
    stripped = prefix.strip("/")
    if stripped and any(part in ("", ".", "..") for part in stripped.split("/")):
        raise ConfigurationError(f"prefix={prefix!r}: its segments must not be empty, '.' or '..'")
    return stripped
