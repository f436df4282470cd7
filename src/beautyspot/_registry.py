"""Choose a backend class by URL scheme, importing its module only when first used."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from beautyspot.errors import ConfigurationError

B = TypeVar("B")


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(url: str) -> str | None:
    """The lower-cased scheme of ``url`` (RFC 3986: ``postgresql+psycopg`` is one), or None
    for a plain path.

    >>> scheme_of("redis://127.0.0.1:6379/0"), scheme_of("./results.db")
    ('redis', None)
    >>> scheme_of("postgresql+psycopg://app@db/cache")
    'postgresql+psycopg'
    """
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else None


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``: the only form of a URL that errors,
    warnings, reprs and logs may show.

    >>> redacted("redis://:s3cret@cache:6379/0")
    'redis://:***@cache:6379/0'
    >>> redacted("postgresql://app:p%40ss@db/cache?sslmode=require")
    'postgresql://app:***@db/cache?sslmode=require'
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a malformed port or netloc: show nothing of the authority
        scheme = scheme_of(url)
        return f"{scheme}://<unparsable address>" if scheme else "<unparsable address>"
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def backend_from_url(
    url: str, backends: Mapping[str, tuple[str, str]], what: str, namespace: str | None = None
) -> Any:
    """Build the backend registered for ``url``'s scheme through its ``from_url`` classmethod.

    ``namespace`` (the Spot's name) is passed on as ``from_url(url, namespace=...)``: a shared
    server keeps each Spot's records apart by it; a file or folder is its own namespace.

    ``backends`` maps a scheme to ``("module:Class", extra)``; the module is imported here, so
    a backend's library (redis, psycopg, boto3) is loaded only by the user who asks for it, and
    a missing one is named with the ``pip install "beautyspot[extra]"`` that brings it.
    """
    scheme = scheme_of(url)
    entry = backends.get(scheme or "")
    if entry is None:
        known = ", ".join(f"{s}://" for s in sorted(backends))
        raise ConfigurationError(
            f"{what}={redacted(url)!r}: unknown URL scheme {scheme!r}; use one of {known}, "
            "a file path, or pass an instance"
        )
    target, extra = entry
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is None or exc.name == "beautyspot" or exc.name.startswith("beautyspot."):
            raise  # our own module is broken: not something an install fixes
        raise ConfigurationError(
            f"{what}={redacted(url)!r} needs {exc.name}, which is not installed: "
            f'pip install "beautyspot[{extra}]"'
        ) from exc
    return getattr(module, class_name).from_url(url, namespace=namespace)


def backend_from(
    spec: B | str | os.PathLike[str],
    *,
    contract: type[B],
    from_path: Callable[[Path], B],
    backends: Mapping[str, tuple[str, str]],
    what: str,
    namespace: str | None = None,
) -> B:
    """A backend from an instance of ``contract``, a plain path, or a URL naming its scheme."""
    if isinstance(spec, contract):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if scheme_of(text) is None:
            return from_path(Path(text))
        return backend_from_url(text, backends, what, namespace)  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"{what}={spec!r}: expected a {contract.__name__} instance, a path or a URL, "
        f"not {type(spec).__name__}"
    )
