"""Choose a backend class by URL scheme, importing its module only when first used."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from beautyspot.errors import ConfigurationError


def scheme_of(url: str) -> str | None:
    """The lower-cased scheme of ``url``, or None for a plain path.

    >>> scheme_of("redis://127.0.0.1:6379/0"), scheme_of("./results.db")
    ('redis', None)
    """
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep and scheme.isidentifier() else None


def backend_from_url(url: str, backends: Mapping[str, str], what: str) -> Any:
    """Build the backend registered for ``url``'s scheme through its ``from_url`` classmethod.

    ``backends`` maps a scheme to ``"module:Class"``; the module is imported here, so a backend's
    library (redis, psycopg, boto3) is loaded only by the user who asks for it.
    """
    scheme = scheme_of(url)
    target = backends.get(scheme or "")
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(backends))
        raise ConfigurationError(
            f"{what}={url!r}: unknown URL scheme {scheme!r}; use one of {known}, "
            "a file path, or pass an instance"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{what}={url!r} needs an optional dependency that is not installed ({exc.name}): "
            f"pip install 'beautyspot[{scheme}]'"
        ) from exc
    return getattr(module, class_name).from_url(url)
