"""Keys of user-level objects: the key protocol, registered types, classes, enum members and
instances of classes defined in Python (dataclasses, namedtuples and pydantic models among them).

The rules, in the order they apply (after the builtins of :data:`.core.ENCODERS`):

1. **Key protocol.** A class that defines ``__beautyspot_key__(self)`` chooses its instances'
   key: the class's identity plus the key of what the method returns. It comes before every
   other rule. ``__beautyspot_key__ = None`` in a class body refuses its instances.
2. **Registered types.** An instance of a class registered with ``register_type`` (that exact
   class) is keyed by the class's identity, its code and the key of what its encoder returns.
3. **Test doubles** (``unittest.mock``) are refused: they answer every attribute and have no
   value of their own.
4. **Classes** (and every object's type identity): a class that its module gives back by its
   qualified name is keyed by that name. Any other class (defined inside a function, made by
   ``type()``, or in a ``__main__`` without an importable name) is keyed by its contents:
   qualified name, module, its bases' identities, and its own attributes (functions by their
   identity; a dataclass's fields; an Enum's members' names and values; a namedtuple's
   ``_fields`` and ``_field_defaults``), or refused. A class reached again inside its own
   contents is a back-reference.
5. **Enum members**: their class's identity, name and value.
6. **Objects are keyed by all of their state, or refused**: class identity, then the builtin
   content of a subclass of a builtin (read with the builtin's own methods), the namedtuple
   field names, every ``__dict__`` entry (sorted by name) and every ``__slots__`` slot along
   the MRO. A slot or dataclass field without a value is an error, not skipped. Only classes
   whose whole state Python shows qualify: a class whose MRO holds a type written in C with
   fields of its own (a lock, a socket, a connection) is refused. Pydantic models are keyed
   this way too (their ``__dict__`` plus ``__pydantic_private__``, ``__pydantic_extra__`` and
   ``__pydantic_fields_set__``), never by ``model_dump()``, which may drop or round values.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import sys
import threading
import types
import weakref
from typing import Any, NamedTuple

from beautyspot.cachekey.core import (
    ENCODERS,
    NONE,
    Unkeyable,
    Walk,
    encode,
    encode_at,
    encode_bool,
    encode_int,
    encode_object,
    encode_str,
    length,
)
from beautyspot.cachekey.describe import (
    BUILTIN_BASES,
    advice,
    describe,
    hidden_state,
    is_c_type,
    is_test_double,
    own_slots,
    type_name,
)
from beautyspot.cachekey.identity import stable_module_name

__all__ = [
    "KEY_METHOD",
    "encode_class",
    "encode_declared",
    "encode_instance",
    "encode_type",
    "importable_name",
]

#: The key protocol: ``def __beautyspot_key__(self)`` returns a keyable value.
KEY_METHOD = "__beautyspot_key__"

_ABSENT = object()
_DESCRIPTORS = (types.GetSetDescriptorType, types.MemberDescriptorType)


# The key protocol, registered types, test doubles ---------------------------------------------


def encode_declared(value: Any, walk: Walk) -> bytes | None:
    """A shape rule for what a class declares about its instances' keys.

    ``__beautyspot_key__(self)`` returns what identifies the object; the key is the class's
    identity plus the key of that value:

    >>> from beautyspot.cachekey import canonical_bytes
    >>> class Client:
    ...     def __init__(self, url, session):
    ...         self.url, self.session = url, session  # a session holds sockets and locks
    ...     def __beautyspot_key__(self):
    ...         return self.url
    >>> key = canonical_bytes(Client("https://a", session=object()))
    >>> key == canonical_bytes(Client("https://a", session=None))
    True
    >>> key == canonical_bytes(Client("https://b", session=None))
    False
    """
    cls = type(value)
    method = _class_attribute(cls, KEY_METHOD)
    if method is not _ABSENT:
        return _encode_by_protocol(value, method, walk)
    if walk.registered:
        registered = walk.registered.get(cls)
        if registered is not None:
            return _encode_registered(value, registered, walk)
    if is_test_double(cls):
        raise Unkeyable(describe(value))
    return None


def _class_attribute(cls: type, name: str) -> Any:
    """``name`` as the class defines it (no metaclass, no descriptor call), or ``_ABSENT``."""
    for klass in cls.__mro__:
        namespace = vars(klass)
        if name in namespace:
            return namespace[name]
    return _ABSENT


def _encode_by_protocol(value: Any, method: Any, walk: Walk) -> bytes:
    cls = type(value)
    if method is None:
        raise Unkeyable(
            f"is a {type_name(cls)}, whose class sets {KEY_METHOD} = None: it has no key"
        )
    try:
        bind = getattr(type(method), "__get__", None)
        key = (bind(method, value, cls) if bind is not None else method)()
    except Exception as exc:
        raise Unkeyable(
            f"is a {type_name(cls)} whose {KEY_METHOD}() raised {_exception(exc)}"
        ) from None
    return _encode_derived(value, "keyed", key, f".{KEY_METHOD}()", walk)


def _encode_registered(value: Any, registered: Any, walk: Walk) -> bytes:
    cls = type(value)
    code, encoder = registered
    try:
        encoded = encoder(value)
    except Exception as exc:
        raise Unkeyable(
            f"is a {type_name(cls)} whose register_type encoder raised {_exception(exc)}"
        ) from None
    return _encode_derived(value, "registered", encoded, ".<encoded>", walk, encode_int(code))


def _encode_derived(
    value: Any, kind: str, derived: Any, segment: str, walk: Walk, *extra: bytes
) -> bytes:
    """``value`` keyed by its class and a value derived from it, which must not contain it."""
    marker = id(value)
    if marker in walk.active:
        raise Unkeyable("contains itself (a reference cycle)")
    walk.active.add(marker)
    try:
        cls_bytes = encode_type(type(value), walk)
        return encode_object(kind, cls_bytes, *extra, encode_at(derived, segment, walk))
    finally:
        walk.active.discard(marker)


def _exception(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Classes --------------------------------------------------------------------------------------


def encode_class(value: Any, walk: Walk) -> bytes | None:
    """A shape rule: a class, by its importable name or else by its contents."""
    if not issubclass(type(value), type):
        return None
    return encode_type(value, walk)


def encode_type(cls: type, walk: Walk) -> bytes:
    """The identity of a class, as it enters every key of its instances."""
    known = _named.get(cls)
    if known is not None:
        module, parts, encoded = known
        if module is None or _look_up(module, parts) is cls:  # still the class of that name
            return encoded
    found = _find_name(cls)
    if found is None:
        return _encode_class_contents(cls, walk)
    module, parts, name = found
    encoded = encode_object("type", encode_str(name))
    _named[cls] = (module, parts, encoded)
    return encoded


# class -> (its module, or None for a type written in C; its qualname's parts; its encoding).
_named: weakref.WeakKeyDictionary[type, tuple[Any, tuple[str, ...], bytes]] = (
    weakref.WeakKeyDictionary()
)


def importable_name(cls: type) -> str | None:
    """``module.qualname`` if that names ``cls`` in any process; None if it names no class, or
    another one (a class made inside a function or by ``type()``, a class replaced since, or
    one in a ``__main__`` that cannot be imported by name).

    Types written in C are named by where they are defined, importable or not: no code can make
    two of them under one name.

    >>> import collections
    >>> importable_name(collections.OrderedDict)
    'collections.OrderedDict'
    >>> importable_name(type("Made", (), {})) is None
    True
    """
    found = _find_name(cls)
    return None if found is None else found[2]


def _find_name(cls: type) -> tuple[Any, tuple[str, ...], str] | None:
    try:
        module_name, qualname = cls.__module__, cls.__qualname__
        if not (isinstance(module_name, str) and isinstance(qualname, str)):
            return None
        parts = tuple(qualname.split("."))
        if is_c_type(cls):
            return None, parts, f"{module_name}.{qualname}"
        module = sys.modules.get(module_name)
        if module is None or _look_up(module, parts) is not cls:
            return None
        stable = stable_module_name(module_name, vars(module))
    except Exception:  # a module or class whose namespace cannot be read
        return None
    return None if stable is None else (module, parts, f"{stable}.{qualname}")


def _look_up(module: Any, parts: tuple[str, ...]) -> Any:
    """What ``module.<parts>`` is, read from namespaces (no ``__getattr__`` runs)."""
    target = module
    try:
        for part in parts:
            target = vars(target).get(part, _ABSENT)
            if target is _ABSENT:
                break
    except TypeError:  # no namespace to read
        return _ABSENT
    return target


# The classes whose contents are being encoded, per thread and walk: a class met again while
# its contents are encoded (its methods refer to it, an Enum's members are its instances) is
# encoded as how many classes up that stack it is.
_in_progress = threading.local()


def _class_stacks() -> dict[int, list[type]]:
    stacks = getattr(_in_progress, "stacks", None)
    if stacks is None:
        stacks = _in_progress.stacks = {}
    return stacks


def _encode_class_contents(cls: type, walk: Walk) -> bytes:
    stacks = _class_stacks()
    stack = stacks.setdefault(id(walk), [])
    for depth, entry in enumerate(reversed(stack)):
        if entry is cls:
            return encode_object("type-again", encode_int(depth))
    stack.append(cls)
    # The contents are a context of their own: an object being encoded when its class came up
    # (an instance kept in a class attribute, an Enum member) is met again inside them without
    # a cycle of values; a cycle through the class is the back-reference above.
    outer, walk.active = walk.active, set()
    try:
        return _class_contents(cls, walk)
    except Unkeyable as exc:
        raise Unkeyable(
            f"is the class {type_name(cls)}, which its module does not give back by that name "
            f"(made inside a function or by type()?) and so is keyed by its contents: "
            f"{cls.__name__}{exc.path} {exc.reason}; define the class at module level"
        ) from None
    finally:
        walk.active = outer
        stack.pop()
        if not stack:
            del stacks[id(walk)]


def _class_contents(cls: type, walk: Walk) -> bytes:
    head = [
        encode_str(str(cls.__qualname__)),
        encode_at(cls.__module__, ".__module__", walk),
        _bases(cls, walk),
    ]
    namespace = vars(cls)
    generic = namespace.get("__pydantic_generic_metadata__")
    if isinstance(generic, dict) and generic.get("origin") is not None:
        # A parametrized pydantic model (Model[int]) is made on demand from these two.
        origin = encode_at(generic["origin"], ".__pydantic_generic_metadata__['origin']", walk)
        arguments = encode_at(generic.get("args"), ".__pydantic_generic_metadata__['args']", walk)
        return encode_object("pydantic.generic", *head, origin, arguments)
    if issubclass(cls, enum.Enum):
        return encode_object("enum.class", *head, _enum_members(cls, walk))
    return encode_object("class", *head, _class_attributes(cls, namespace, walk))


def _bases(cls: type, walk: Walk) -> bytes:
    bases = cls.__bases__
    parts = [length(len(bases))]
    for index, base in enumerate(bases):
        try:
            parts.append(encode_type(base, walk))
        except Unkeyable as exc:
            exc.where.append(f".__bases__[{index}]")
            raise
    return b"".join(parts)


def _enum_members(cls: type[enum.Enum], walk: Walk) -> bytes:
    members = list(cls.__members__.items())  # definition order, aliases included
    entries = [length(len(members))]
    for name, member in members:
        entries.append(encode_str(name) + encode_at(member._value_, f".{name}", walk))
    return b"".join(entries)


def _class_attributes(cls: type, namespace: Any, walk: Walk) -> bytes:
    skipped = _derived_attributes(cls, namespace)
    entries = []
    for name, attribute in list(namespace.items()):
        if name in skipped:
            continue
        segment = f".{name}" if isinstance(name, str) else "[<attribute>]"
        if name == "__dataclass_fields__" and isinstance(attribute, dict):
            encoded = _dataclass_fields(attribute, walk)
        else:
            encoded = _class_attribute_value(attribute, segment, walk)
        entries.append(encode_at(name, "[<attribute>]", walk) + encoded)
    entries.sort()
    return length(len(entries)) + b"".join(entries)


def _derived_attributes(cls: type, namespace: Any) -> set[Any]:
    """Entries of a class's namespace that Python or the standard library derive from the rest
    (descriptors of its ``__dict__``, ``__weakref__`` and slots, ABC caches, namedtuple field
    accessors): keying them would add nothing, and most of them are C objects."""
    skipped: set[Any] = {"_abc_impl"}
    for name in ("__dict__", "__weakref__", *(_mangle(cls, slot) for slot in own_slots(cls))):
        attribute = namespace.get(name)
        if isinstance(attribute, _DESCRIPTORS) and attribute.__objclass__ is cls:
            skipped.add(name)
    fields = namespace.get("_fields")
    if issubclass(cls, tuple) and isinstance(fields, tuple):
        skipped.update(field for field in fields if isinstance(field, str))
    return skipped


def _class_attribute_value(attribute: Any, segment: str, walk: Walk) -> bytes:
    if type(attribute) is property:
        accessors = (attribute.fget, attribute.fset, attribute.fdel)
        return encode_object("property", encode_at(accessors, segment, walk))
    if type(attribute) is functools.cached_property:
        return encode_object(
            "functools.cached_property", encode_at(attribute.func, f"{segment}.func", walk)
        )
    return encode_at(attribute, segment, walk)


def _dataclass_fields(fields: dict[str, Any], walk: Walk) -> bytes:
    entries = [length(len(fields))]
    for name, field in fields.items():  # definition order: it is __init__'s argument order
        described = (
            field.name,
            field.type,
            field.default,
            field.default_factory,
            field.init,
            field.repr,
            field.hash,
            field.compare,
            dict(field.metadata),
            getattr(field, "kw_only", None),
            getattr(getattr(field, "_field_type", None), "name", None),  # field, ClassVar, InitVar
        )
        entries.append(encode_at(described, f".__dataclass_fields__[{name!r}]", walk))
    return b"".join(entries)


def _mangle(cls: type, name: str) -> str:
    """The attribute name Python stores a ``__private`` slot of ``cls`` under."""
    if not name.startswith("__") or name.endswith("__"):
        return name
    owner = cls.__name__.lstrip("_")
    return f"_{owner}{name}" if owner else name


# Generic aliases -----------------------------------------------------------------------------


def _encode_generic_alias(value: types.GenericAlias, walk: Walk) -> bytes:
    # list[int], dict[str, X], *tuple[int, ...]: what makes one is its origin and arguments.
    return encode_object(
        "types.GenericAlias",
        encode_at(value.__origin__, ".__origin__", walk),
        encode_at(value.__args__, ".__args__", walk),
        encode_bool(bool(getattr(value, "__unpacked__", False))),
    )


def _encode_union_type(value: types.UnionType, walk: Walk) -> bytes:
    # In written order: int | str == str | int, but what tries members in order (pydantic's
    # left-to-right unions) may tell them apart.
    return encode_object("types.UnionType", encode_at(value.__args__, ".__args__", walk))


ENCODERS.update({types.GenericAlias: _encode_generic_alias, types.UnionType: _encode_union_type})


# Instances ------------------------------------------------------------------------------------


def encode_instance(value: Any, walk: Walk) -> bytes | None:
    """A shape rule, tried last: enum members, then any object whose whole state Python shows,
    keyed by all of it. None (refused, with :func:`.describe`'s reason) for any other."""
    cls = type(value)
    if issubclass(cls, enum.Enum):
        return _encode_enum_member(value, walk)
    layout = _layout(cls)
    if layout is None:
        return None
    return _encode_state(value, layout, walk)


def _encode_enum_member(value: enum.Enum, walk: Walk) -> bytes:
    try:
        name, member_value = value._name_, value._value_
    except Exception:  # an Enum subclass that broke its own members
        raise Unkeyable(describe(value)) from None
    return encode_object(
        "enum.member",
        encode_type(type(value), walk),
        encode_at(name, ".name", walk),
        encode_at(member_value, ".value", walk),
    )


class _Layout(NamedTuple):
    """Where the state of a class's instances lives, worked out once per class."""

    content: Any  # reads the builtin content of a subclass of a builtin, or None
    fields: Any  # a namedtuple's _fields, _ABSENT for others
    dict_descriptor: Any  # the __dict__ descriptor, or None
    slots: tuple[tuple[str, Any], ...]  # (attribute name, member descriptor) along the MRO
    required: tuple[str, ...]  # dataclass fields that must hold a value


# Each reads a subclass instance's content through the builtin type, whatever the subclass
# overrides, and returns an instance of exactly that builtin.
_CONTENT_READERS: dict[type, Any] = {
    int: int.__int__,
    float: float.__float__,
    complex: lambda value: complex(complex.real.__get__(value), complex.imag.__get__(value)),
    str: str.__str__,
    bytes: lambda value: bytes.__getitem__(value, slice(None)),
    bytearray: bytearray.copy,
    list: list.copy,
    tuple: lambda value: tuple.__getitem__(value, slice(None)),
    dict: dict.copy,
    set: set.copy,
    frozenset: frozenset.copy,
}

# class -> (its __mro__ when worked out, its layout or None): a class's layout never changes,
# but its bases can be reassigned.
_layouts: weakref.WeakKeyDictionary[type, tuple[tuple[type, ...], _Layout | None]] = (
    weakref.WeakKeyDictionary()
)


def _layout(cls: type) -> _Layout | None:
    known = _layouts.get(cls)  # every class takes weak references
    if known is not None and known[0] is cls.__mro__:
        return known[1]
    layout = _find_layout(cls)
    _layouts[cls] = (cls.__mro__, layout)
    return layout


def _find_layout(cls: type) -> _Layout | None:
    """The layout of a class whose instances' whole state is visible, else None."""
    if cls is object or hidden_state(cls) is not None:
        return None
    mro = cls.__mro__
    builtin = next((klass for klass in mro if klass in BUILTIN_BASES), None)
    content = _CONTENT_READERS[builtin] if builtin is not None else None
    fields = _class_attribute(cls, "_fields") if builtin is tuple else _ABSENT
    dict_descriptor = None
    if cls.__dictoffset__:
        dict_descriptor = _class_attribute(cls, "__dict__")
        if not isinstance(dict_descriptor, _DESCRIPTORS):
            return None  # the class replaced __dict__: the real one cannot be found
    slots = []
    for klass in mro:
        for slot in own_slots(klass):
            name = _mangle(klass, slot)
            descriptor = vars(klass).get(name)
            if type(descriptor) is not types.MemberDescriptorType:
                return None  # a slot hidden behind another attribute
            slots.append((name, descriptor))
    return _Layout(content, fields, dict_descriptor, tuple(slots), _required(cls, slots))


def _required(cls: type, slots: list[tuple[str, Any]]) -> tuple[str, ...]:
    """The dataclass fields an instance's ``__dict__`` must hold (a slot is checked anyway)."""
    if _class_attribute(cls, "__dataclass_fields__") is _ABSENT:
        return ()
    try:
        names = [field.name for field in dataclasses.fields(cls)]
    except TypeError:
        return ()
    in_slots = {name for name, _ in slots}
    return tuple(
        name
        for name in names
        if name not in in_slots and not _is_data_descriptor(_class_attribute(cls, name))
    )


def _is_data_descriptor(attribute: Any) -> bool:
    kind = type(attribute)
    return hasattr(kind, "__set__") or hasattr(kind, "__delete__")


def _encode_state(value: Any, layout: _Layout, walk: Walk) -> bytes:
    marker = id(value)
    if marker in walk.active:
        raise Unkeyable("contains itself (a reference cycle)")
    walk.active.add(marker)
    try:
        cls = type(value)
        cls_bytes = encode_type(cls, walk)
        try:
            content = NONE if layout.content is None else encode(layout.content(value), walk)
            fields = (
                NONE if layout.fields is _ABSENT else encode_at(layout.fields, "._fields", walk)
            )
            attributes = _attributes(value, cls, layout, walk)
            slots = _slots(value, cls, layout, walk)
        except Unkeyable as exc:
            if KEY_METHOD not in exc.reason:  # the innermost object of the user's own class
                exc.reason += advice(cls)
            raise
        return encode_object("object", cls_bytes, content, fields, attributes, slots)
    finally:
        walk.active.discard(marker)


def _attributes(value: Any, cls: type, layout: _Layout, walk: Walk) -> bytes:
    if layout.dict_descriptor is None:
        return length(0)
    namespace = layout.dict_descriptor.__get__(value, cls)
    if type(namespace) is not dict:
        raise Unkeyable(f"is a {type_name(cls)} whose __dict__ is not a dict")
    for name in layout.required:
        if name not in namespace:
            raise Unkeyable(
                f"is a {type_name(cls)} whose dataclass field {name!r} has no value (a "
                "field(init=False) never set); an object is keyed by all of its state"
            )
    entries = []
    for name, item in list(namespace.items()):
        if isinstance(name, str):
            entries.append(encode_str(name) + encode_at(item, f".{name}", walk))
        else:  # put there through __dict__ itself
            key = encode_at(name, ".__dict__[<key>]", walk)
            entries.append(key + encode_at(item, f".__dict__[{name!r}]", walk))
    entries.sort()  # by name (each entry starts with it): assignment order does not matter
    return length(len(entries)) + b"".join(entries)


def _slots(value: Any, cls: type, layout: _Layout, walk: Walk) -> bytes:
    parts = [length(len(layout.slots))]
    for name, descriptor in layout.slots:
        try:
            item = descriptor.__get__(value, cls)
        except AttributeError:
            raise Unkeyable(
                f"is a {type_name(cls)} whose slot {name!r} has no value; an object is keyed by "
                "all of its state"
            ) from None
        parts.append(encode_str(name) + encode_at(item, f".{name}", walk))
    return b"".join(parts)
