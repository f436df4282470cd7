"""Function identity: everything that decides a function's result and is not an argument.

- A function is named by its module and qualified name. The module comes from the function's
  own globals (``__spec__``, then ``__file__``), never from ``sys.modules['__main__']``, so
  ``python script.py``, ``python -m pkg.script``, ``import script`` and multiprocessing's spawn
  and forkserver workers (which run the script as ``__mp_main__``) agree.
- Code that Python gives no stable name (a lambda, a function defined inside another one, any
  function of a ``__main__`` without a file: ``python -c``, the REPL, notebooks, ``python app/``
  and zipapps) is also identified by a fingerprint of its code: bytecode, constants and names,
  recursively through nested code. Fingerprints are stable across processes and machines for
  one Python minor version; another minor version compiles other bytecode, so such functions
  recompute once after an upgrade.
- A closure adds the values of its free variables, keyed by the argument rules (functions,
  classes and modules among them by their own identity); a bound method adds its receiver.
- Every function also has a code fingerprint that records keep, so a hit computed by other
  code can warn, and ``version="auto"`` can put it into the key.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import types
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, NamedTuple

from beautyspot.cachekey.core import (
    Unkeyable,
    Walk,
    encode,
    encode_at,
    encode_bytes,
    encode_object,
    encode_str,
    length,
)
from beautyspot.errors import CacheKeyError, ConfigurationError

__all__ = [
    "FunctionIdentity",
    "code_fingerprint",
    "encode_function",
    "function_id",
    "identify",
    "qualified_name",
    "stable_module_name",
]

_CODE_PERSON = b"beautyspot.code"
_STATE_PERSON = b"beautyspot.fn"
#: Hex digits of the code fingerprint kept in records and shown in warnings.
FINGERPRINT_HEX = 16

# A process started by multiprocessing's "spawn" (or "forkserver") runs the parent's script
# again as __mp_main__: its functions must keep the keys they have in the parent.
_MAIN_NAMES = ("__main__", "__mp_main__")


# -- names ------------------------------------------------------------------------------------


def stable_module_name(declared: str, module_globals: dict[str, Any] | None) -> str | None:
    """The importable name of the module whose globals are ``module_globals``, or None when it
    has none (``python -c``, the REPL, notebooks, a folder or zipapp run as ``__main__``).

    >>> stable_module_name("json", None)
    'json'
    >>> stable_module_name("__main__", {"__spec__": None}) is None
    True
    """
    if declared not in _MAIN_NAMES:
        return declared
    module_globals = module_globals or {}
    spec = module_globals.get("__spec__")
    name = getattr(spec, "name", None)
    if name and name not in _MAIN_NAMES:  # python -m pkg.mod
        return str(name)
    path = module_globals.get("__file__")
    if not path or spec is not None:  # a folder or zipapp has a spec named __main__
        return None
    return _module_name_of_file(str(path))


@functools.lru_cache(maxsize=64)
def _module_name_of_file(path: str) -> str | None:
    file = Path(path).resolve()
    if file.suffix != ".py" or file.stem == "__main__":
        return None
    return _dotted_name(file, tuple(sys.path))


@functools.lru_cache(maxsize=64)
def _dotted_name(file: Path, search_path: tuple[str, ...]) -> str:
    parts = [file.stem]
    folder = file.parent
    while (folder / "__init__.py").is_file():  # regular packages
        parts.append(folder.name)
        folder = folder.parent
    # Namespace packages have no __init__.py: a search-path entry above the folder names them,
    # as it would for `import ns.inner.mod`. The nearest such entry gives the shortest name.
    entries = {Path(entry or ".").resolve() for entry in search_path}
    for ancestor in folder.parents if folder != folder.parent else ():
        if ancestor in entries:
            between = folder.relative_to(ancestor).parts
            if all(part.isidentifier() for part in between):
                parts.extend(reversed(between))
            break
    return ".".join(reversed(parts))


def _globals_of(obj: Any) -> dict[str, Any] | None:
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    return getattr(module, "__dict__", None)


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of a class or function, its module named as it would be imported;
    ``__main__.<qualname>`` when that module has no stable name."""
    declared = obj.__module__
    module_globals = getattr(obj, "__globals__", None)
    if module_globals is None and declared in _MAIN_NAMES:
        module_globals = _globals_of(obj)
    module = stable_module_name(declared, module_globals) or "__main__"
    return f"{module}.{obj.__qualname__}"


def function_id(func: Callable[..., Any]) -> str:
    """The readable name of ``func`` (``module.qualname``): what records and stats show.

    >>> import json
    >>> function_id(json.dumps)
    'json.dumps'
    """
    target = func.__func__ if isinstance(func, types.MethodType) else func
    if not hasattr(target, "__qualname__") or not hasattr(target, "__module__"):
        raise ConfigurationError(
            f"cannot name {func!r}: it has no __module__/__qualname__; "
            "mark a function defined with def"
        )
    return qualified_name(target)


def _has_stable_name(func: types.FunctionType) -> bool:
    # co_qualname (3.11+) is the code's own name: functools.wraps copies __qualname__ only.
    qualname = getattr(func.__code__, "co_qualname", func.__qualname__)
    if "<locals>" in qualname or "<lambda>" in qualname:
        return False
    return stable_module_name(func.__module__, func.__globals__) is not None


# -- code fingerprints ----------------------------------------------------------------------


def code_fingerprint(code: types.CodeType) -> bytes:
    """A digest of what ``code`` does: bytecode, constants (nested code recursively), names and
    argument layout; not its file or line numbers, so moving a function keeps it.

    >>> f = lambda x: x + 1
    >>> g = lambda x: x + 1
    >>> code_fingerprint(f.__code__) == code_fingerprint(g.__code__)
    True
    >>> code_fingerprint(f.__code__) == code_fingerprint((lambda x: x * 2).__code__)
    False
    """
    return _fingerprint(code)


@functools.lru_cache(maxsize=4096)
def _fingerprint(code: types.CodeType) -> bytes:
    digest = hashlib.blake2b(digest_size=16, person=_CODE_PERSON)
    layout = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
    names = (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)
    digest.update(encode((layout, names), Walk()))
    digest.update(encode_bytes(code.co_code))
    digest.update(length(len(code.co_consts)))
    for constant in code.co_consts:
        digest.update(_constant(constant))
    return digest.digest()


def _constant(value: Any) -> bytes:
    if isinstance(value, types.CodeType):
        return encode_object("code", _fingerprint(value))
    if value is Ellipsis:
        return encode_object("Ellipsis")
    if isinstance(value, tuple):  # may hold code objects or Ellipsis
        return encode_object("const-tuple", length(len(value)), *map(_constant, value))
    if isinstance(value, slice):  # a constant from Python 3.14
        return encode_object("slice", *map(_constant, (value.start, value.stop, value.step)))
    return encode(value, Walk())  # the compiler's literals: numbers, str, bytes, frozenset


def _code_of(func: Any) -> types.CodeType | None:
    return getattr(func, "__code__", None)


# -- identity of a function value --------------------------------------------------------------


def encode_function(value: Any, walk: Walk) -> bytes | None:
    """A shape rule: functions, methods, partials and modules keyed by their identity."""
    # By exact type, not isinstance: that asks the object for __class__, which a proxy or a
    # test double may answer falsely or by raising.
    cls = type(value)
    if cls not in _FUNCTION_TYPES:
        return None
    if cls is types.FunctionType:
        return _encode_python_function(value, walk, with_defaults=True)
    if cls is types.MethodType:
        function = encode(value.__func__, walk)
        return encode_object("method", function, encode_at(value.__self__, ".__self__", walk))
    if cls is types.BuiltinFunctionType:
        receiver = value.__self__
        name = encode_str(f"{getattr(value, '__module__', None)}.{value.__qualname__}")
        if receiver is None or isinstance(receiver, types.ModuleType):
            return encode_object("builtin", name)
        return encode_object("builtin-method", name, encode_at(receiver, ".__self__", walk))
    if cls is functools.partial:
        return encode_object(
            "functools.partial",
            encode_at(value.func, ".func", walk),
            encode_at(value.args, ".args", walk),
            encode_at(value.keywords, ".keywords", walk),
        )
    if cls is staticmethod or cls is classmethod:
        return encode_object(cls.__name__, encode_at(value.__func__, ".__func__", walk))
    name = stable_module_name(value.__name__, vars(value))  # a module
    if name is None:
        raise Unkeyable("is a __main__ module with no importable name")
    return encode_object("module", encode_str(name))


_FUNCTION_TYPES = frozenset(
    {
        types.FunctionType,
        types.MethodType,
        types.BuiltinFunctionType,
        functools.partial,
        staticmethod,
        classmethod,
        types.ModuleType,
    }
)


def _encode_python_function(func: types.FunctionType, walk: Walk, *, with_defaults: bool) -> bytes:
    key = id(func)
    if key in walk.active:  # a function reached again through its own closure or class
        return encode_object("function-again", encode_str(func.__qualname__))
    walk.active.add(key)
    try:
        parts = [encode_str(qualified_name(func))]
        if not _has_stable_name(func):
            parts.append(_fingerprint(func.__code__))
        parts.append(_closure(func, walk, ignore=()))
        if with_defaults:
            parts.append(encode_at(func.__defaults__, ".__defaults__", walk))
            parts.append(encode_at(func.__kwdefaults__, ".__kwdefaults__", walk))
        return encode_object("function", *parts)
    finally:
        walk.active.discard(key)


def _closure(func: types.FunctionType, walk: Walk, ignore: Collection[str]) -> bytes:
    cells = func.__closure__ or ()
    entries = [encode_str(name) + _cell(cell, name, walk)
               for name, cell in zip(func.__code__.co_freevars, cells, strict=True)
               if name not in ignore]  # fmt: skip
    return length(len(entries)) + b"".join(entries)


def _cell(cell: types.CellType, name: str, walk: Walk) -> bytes:
    try:
        content = cell.cell_contents
    except ValueError:  # not bound yet: a function that refers to its own (decorated) name
        return encode_object("empty-cell")
    try:
        return encode(content, walk)
    except Unkeyable as exc:
        exc.where.append(f".{name}")
        raise


# -- identity of a marked function ------------------------------------------------------------


class FunctionIdentity(NamedTuple):
    """What names one marked function in keys and records.

    ``name`` is readable (``module.qualname``) and is what records store; ``fingerprint`` is the
    code's digest (hex), kept in every record; ``key`` is what enters the cache key.
    """

    name: str
    fingerprint: str
    key: str


def identify(
    func: Callable[..., Any],
    *,
    version_auto: bool = False,
    ignore: Collection[str] = (),
    registered: Any = None,
) -> FunctionIdentity:
    """The identity of ``func`` as it stands now (closure values and receiver included).

    A wrapper that sets ``__beautyspot_transparent__ = True`` declares that it never changes
    results (a limiter's pacing): the function it wraps (``__wrapped__``) is identified instead.

    :param version_auto: put the code fingerprint into the key even for a named function.
    :param ignore: free-variable names left out (the result must not depend on them).
    :raises CacheKeyError: a closure value or receiver cannot be keyed; names it.

    >>> import json
    >>> identify(json.dumps).key
    'json.dumps'
    """
    while getattr(func, "__beautyspot_transparent__", False):  # e.g. a limiter's pacing
        func = func.__wrapped__
    name = function_id(func)
    function = func.__func__ if isinstance(func, types.MethodType) else func
    code = _code_of(function)
    fingerprint = _fingerprint(code).hex()[:FINGERPRINT_HEX] if code is not None else ""
    state: list[bytes] = []
    walk = Walk(registered)
    try:
        if isinstance(func, types.MethodType):
            try:
                state.append(encode_object("receiver", encode(func.__self__, walk)))
            except Unkeyable as exc:
                raise _receiver_error(name, exc) from None
        if isinstance(function, types.FunctionType):
            if not _has_stable_name(function):
                state.append(_fingerprint(function.__code__))
            if function.__closure__:
                state.append(_closure(function, walk, ignore))
        elif not isinstance(func, types.MethodType):
            # a callable object, a partial, a builtin: keyed whole by the argument rules
            state.append(encode_at(func, "", walk))
    except Unkeyable as exc:
        raise _state_error(name, exc) from None
    except RecursionError:
        raise CacheKeyError(f"{name}: its closure is nested too deeply to key") from None
    key = name
    if state:
        digest = hashlib.blake2b(b"".join(state), digest_size=16, person=_STATE_PERSON)
        key = f"{name}#{digest.hexdigest()}"
    if version_auto:
        key = f"{key}@{fingerprint}"
    return FunctionIdentity(name, fingerprint, key)


def _state_error(name: str, exc: Unkeyable) -> CacheKeyError:
    variable = exc.where[-1].lstrip(".") if exc.where else ""  # the outermost: what was captured
    where = f" (at {exc.path.lstrip('.')})" if len(exc.where) > 1 else ""
    return CacheKeyError(
        f"{name}: the closure variable {variable!r}{where} {exc.reason}. The result must not "
        f"depend on it: leave it out with ignore=({variable!r},), or pass it as an argument"
    )


def _receiver_error(name: str, exc: Unkeyable) -> CacheKeyError:
    # Never "ignore the receiver": every instance would then share one instance's results.
    where = f" (at self{exc.path})" if exc.where else ""
    return CacheKeyError(
        f"{name}: its receiver{where} {exc.reason}; give its class a __beautyspot_key__(self) "
        "method that returns what its results depend on, or mark the plain function and pass "
        "what it needs as arguments"
    )
