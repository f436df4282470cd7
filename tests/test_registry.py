"""Backends by URL: every ``scheme://`` string is a URL; a URL's password is never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

import beautyspot as bs
from beautyspot._registry import backend_from_url, redacted, scheme_of


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://root@127.0.0.1:3306/test",
        "no-such.scheme://host/x",
        "x-y://host",
    ],
)
def test_any_scheme_is_a_url_never_a_local_path(workdir: Path, url: str) -> None:
    with pytest.raises(bs.ConfigurationError, match="unknown URL scheme"):
        bs.Spot("s", db=url)
    assert list(workdir.iterdir()) == []  # no folder named after the scheme, no file


def test_an_unknown_scheme_lists_the_known_ones(workdir: Path) -> None:
    with pytest.raises(bs.ConfigurationError, match=r"sqlite://") as caught:
        bs.Spot("s", db="mongodb://h/db")
    assert "'mongodb'" in str(caught.value)
    with pytest.raises(bs.ConfigurationError, match=r"file://"):
        bs.Spot("s", storage="ftp://h/blobs")


SECRET = "pa55-w0rd%21"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@cache:6379/0", "redis://:***@cache:6379/0"),
        (f"postgresql://app:{SECRET}@db:5432/c", "postgresql://app:***@db:5432/c"),
        ("sqlite:///plain.db", "sqlite:///plain.db"),
        (f"s3://key:{SECRET}@bucket/prefix", "s3://key:***@bucket/prefix"),
        (f"redis://u:{SECRET}@h:notaport/0", "redis://u:***@h:notaport/0"),
        (f"redis://u:{SECRET}@[::1/0", "redis://<unparsable address>"),
    ],
)
def test_redacted_hides_the_password(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert "pa55" not in redacted(url)


def test_errors_never_show_a_password(workdir: Path) -> None:
    for spec in (f"mongodb://u:{SECRET}@h/db", f"x+y://u:{SECRET}@h/db"):
        with pytest.raises(bs.ConfigurationError) as caught:
            bs.Spot("s", db=spec)
        assert "pa55" not in str(caught.value) and "***" in str(caught.value)


def test_a_missing_library_names_the_extra_to_install() -> None:
    backends = {"fake": ("no_such_library_for_beautyspot.backend:Fake", "fake")}
    with pytest.raises(ImportError):  # our own module missing: a bug, not an install
        backend_from_url("fake://h", {"fake": ("beautyspot.no_such_module:X", "fake")}, "db")
    with pytest.raises(bs.ConfigurationError, match=r'pip install "beautyspot\[fake\]"') as caught:
        backend_from_url(f"fake://u:{SECRET}@h", backends, "db")
    assert "pa55" not in str(caught.value)


def test_scheme_of() -> None:
    assert scheme_of("C:\\data\\x.db") is None
    assert scheme_of("relative/path.db") is None
    assert scheme_of("S3://Bucket/p") == "s3"
