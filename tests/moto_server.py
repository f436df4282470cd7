"""A real S3-speaking HTTP server for the tests: moto in server mode, on a free local port.

Bind the fixtures in a test module (``moto_s3, s3_env = moto_server.moto_s3,
moto_server.s3_env``). boto3 is pointed at the server only through ``AWS_ENDPOINT_URL_S3``, as
a user points it at MinIO, so the code under test takes the same path it takes in production.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["MotoS3", "S3Env", "moto_s3", "s3_env", "start_moto_server"]

#: Settings that could point boto3 elsewhere or carry real credentials: cleared in tests.
_AWS_SETTINGS = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


def start_moto_server() -> tuple[Any, str]:
    """A started ``ThreadedMotoServer`` on 127.0.0.1 and a free port, and its endpoint URL."""
    from moto.server import ThreadedMotoServer  # here: moto takes a second to import

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


class MotoS3:
    """One moto S3 server for the session: its endpoint and a raw boto3 client of the tests'
    own (given the endpoint explicitly; the code under test finds it in the environment)."""

    def __init__(self) -> None:
        import boto3

        self.server, self.endpoint = start_moto_server()
        session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )
        self.client = session.client("s3", endpoint_url=self.endpoint)


#: The dummy credentials the tests run with; no message may ever show the secret.
ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION = "testing-key-id", "testing-secret", "us-east-1"


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """The moto S3 server shared by the session."""
    moto = MotoS3()
    yield moto
    moto.server.stop()


class S3Env:
    """The environment one test runs in: the endpoint, a fresh bucket, a raw boto3 client."""

    def __init__(self, endpoint: str, bucket: str, client: Any) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.client = client

    def object_keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under ``prefix``, sorted."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


@pytest.fixture
def s3_env(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> S3Env:
    """Dummy credentials, a region, ``AWS_ENDPOINT_URL_S3`` at the moto server, no AWS config
    files, and a new empty bucket for this test."""
    for name in _AWS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    missing = str(tmp_path / "no-aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", missing)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3.endpoint)
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    moto_s3.client.create_bucket(Bucket=bucket)
    return S3Env(moto_s3.endpoint, bucket, moto_s3.client)
