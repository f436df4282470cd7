"""Choose a backend class by URL scheme, importing its module only when first used."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from beautyspot.errors import ConfigurationError

B = TypeVar("B")


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


def backend_from(
    spec: B | str | os.PathLike[str],
    *,
    contract: type[B],
    from_path: Callable[[Path], B],
    backends: Mapping[str, str],
    what: str,
) -> B:
    """A backend from an instance of ``contract``, a plain path, or a URL naming its scheme."""
    if isinstance(spec, contract):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if scheme_of(text) is None:
            return from_path(Path(text))
        return backend_from_url(text, backends, what)  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"{what}={spec!r}: expected a {contract.__name__} instance, a path or a URL, "
        f"not {type(spec).__name__}"
    )
