"""Function identity: what names a marked function in its keys."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beautyspot.errors import ConfigurationError

__all__ = ["function_id", "qualified_name"]


def function_id(func: Callable[..., Any]) -> str:
    """``module.qualname`` of the undecorated ``func``; a script and its import agree.

    >>> import json
    >>> function_id(json.dumps)
    'json.dumps'
    """
    target = inspect.unwrap(func)
    if not hasattr(target, "__qualname__") or not hasattr(target, "__module__"):
        raise ConfigurationError(
            f"cannot name {func!r}: it has no __module__/__qualname__; "
            "mark a function defined with def"
        )
    return qualified_name(target)


def qualified_name(obj: Any) -> str:
    module = obj.__module__
    if module in _MAIN_NAMES:
        module = _main_module_name()
    return f"{module}.{obj.__qualname__}"


# A process started by multiprocessing's "spawn" (or "forkserver") runs the parent's script
# again as __mp_main__: its functions must keep the keys they have in the parent.
_MAIN_NAMES = ("__main__", "__mp_main__")


def _main_module_name() -> str:
    """The name ``__main__`` would have if it were imported instead of run."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m pkg.mod
        return spec.name
    path = getattr(main, "__file__", None)
    return _module_name_of_file(path) if path else "__main__"  # REPL, -c, notebooks


@functools.lru_cache(maxsize=8)
def _module_name_of_file(path: str) -> str:
    file = Path(path).resolve()
    parts = [file.stem]
    folder = file.parent
    while (folder / "__init__.py").is_file():
        parts.append(folder.name)
        folder = folder.parent
    return ".".join(reversed(parts))
