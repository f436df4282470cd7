"""Results to bytes and back, exactly: msgpack plus type tags, never pickle (DESIGN.md §4).

``loads(dumps(x))`` returns a value of the same type and value as ``x`` all the way down, or
``dumps`` refuses with a :class:`~beautyspot.errors.SerializationError` naming the type, where it
sits in the result and how to register it. ``loads`` raises only ``SerializationError``, whatever
the bytes.

Wire format, version 1::

    byte 0     format version (0x01)
    bytes 1..  one msgpack object

msgpack itself carries None, bool, int in [-2**63, 2**64), float, str, bytes and the exact
``list`` and ``dict`` types (keys of any storable type, order kept). Every other value is a
*tagged array*: a msgpack array whose first item is an empty extension value, followed by the
fields that rebuild it, ``[ExtType(tag, b""), field, ...]``. Fields are stored values themselves,
so tags nest freely and ``loads`` never parses a payload twice. An extension value appears nowhere
but at the head of a tagged array. beautyspot owns all 128 extension codes:

    ===  ====================================  ===============================================
    tag  value                                 fields
    ===  ====================================  ===============================================
    0    a type registered with ``register``   user code (0..127), what its encoder returned
    1-3  tuple, set, frozenset                 the items
    4    bytearray                             bytes
    5    int outside msgpack's 64-bit range    two's-complement big-endian bytes
    6    decimal.Decimal                       str(value) (exact digits, exponent, NaN payload)
    7    uuid.UUID                             16 bytes, is_safe
    8    datetime.datetime                     y, m, d, H, M, S, us, fold, tzinfo or None
                                               [, utcoffset, dst, tzname: see pytz below]
    9    datetime.date                         y, m, d
    10   datetime.time                         H, M, S, us, fold, tzinfo or None
    11   datetime.timedelta                    days, seconds, microseconds
    12   datetime.timezone                     offset[, name]
    13   zoneinfo.ZoneInfo                     key
    14   pytz time zone                        zone name, or minutes of a pytz.FixedOffset
    32   numpy.ndarray                         dtype, shape, Fortran order?, raw bytes
    33   numpy scalar                          dtype, raw bytes (str_: UTF-32 of its value)
    48   pandas ExtensionArray                 kind, kind-specific fields
    49   pandas Index (Datetime, Categorical)  array, name, freq
    50   pandas RangeIndex                     start, stop, step, name
    51   pandas MultiIndex                     levels, codes, names, sortorder
    52   pandas Series                         array, index, name, attrs, allows duplicates
    53   pandas DataFrame                      column arrays, index, columns, attrs, allows dup.
    54   pd.NA, pd.NaT, Timestamp, Timedelta   kind, numpy datetime64/timedelta64, tzinfo
                                               [, 1 for a Timestamp with fold=1]
    ===  ====================================  ===============================================

A pytz zone has one tzinfo object per offset it ever used, and a localized datetime carries the
one of its offset. A datetime whose tzinfo is such an object is tag 8 with its zone in place of
the tzinfo, followed by the offset, DST and abbreviation it had: it is rebuilt from that instant
in the zone, and checked to give the same wall time and the same three. ``dumps`` refuses pytz
values that this does not rebuild exactly (a localized datetime moved by arithmetic without
``zone.normalize()``, or such an offset object on its own).

A numpy dtype is its ``str`` (``"<f8"``, ``"<M8[ns]"``), a ``[dtype, shape]`` pair for a
sub-array, or a dict of names, formats, offsets, itemsize, titles and alignment for a structured
dtype. A dtype with metadata anywhere inside it is always refused: numpy compares and hashes
dtypes without their metadata, so it would be easy to drop unnoticed. Only a scalar's dtype may
have zero size (``np.str_("")``): an array's stored bytes must bound how many items it has.

A dataclass registered with ``register_dataclass`` is, inside tag 0, ``{field: value}``, or
``[fields, other __dict__ entries, other set slots]`` when the instance holds more than its
fields; it is rebuilt without calling ``__init__``.

User codes sit inside tag 0, so they never collide with the library's tags and the library can
add tags without touching anyone's data.

numpy and pandas are optional and never imported here: a value is recognised by its type's
module, and decoding imports them only when the stored value holds their data.
"""

from __future__ import annotations

from beautyspot.serializer.core import Serializer
from beautyspot.serializer.tags import FORMAT_VERSION

__all__ = ["FORMAT_VERSION", "Serializer"]
