"""Integrity tags of stored bytes: ``"<algorithm>:<hex digest>"``, checked on every hit.

The algorithm is chosen by threat (DESIGN.md §2):

- Inline results and local blobs live beside their records (local blob files and folders are
  owner-only), so whoever can change the bytes can change the record too. Their tag guards
  against corruption and truncation only, and a fast 128-bit non-cryptographic hash does that:
  ``xxh3-128``.
- Remote blobs (S3, fsspec, a user's storage) may be writable by someone who cannot write the
  records. Their tag must make forged bytes fail, so it is cryptographic: ``sha256``.

Tags carry their algorithm, so a record keeps verifying after the choice changes: records
written before the ``xxh3-128`` tags existed (all ``sha256``) still verify.
"""

from __future__ import annotations

from hashlib import sha256

# ~0.6 ms to import, and every process that calls a marked function needs it on its first
# hit or store: imported here rather than on first use, so a missing install fails loudly.
from xxhash import xxh3_128_hexdigest

__all__ = ["checksum_of", "matches"]

_SHA256 = "sha256:"
_XXH3_128 = "xxh3-128:"


def checksum_of(data: bytes | bytearray | memoryview, *, cryptographic: bool) -> str:
    """The integrity tag of ``data``: ``sha256`` if ``cryptographic``, else ``xxh3-128``.

    Pass ``cryptographic=True`` when the bytes may be written by someone who cannot write the
    record holding the tag (remote blobs), ``False`` when they live beside it (inline results,
    local blobs).

    >>> checksum_of(b"abc", cryptographic=False)
    'xxh3-128:06b05ab6733a618578af5f94892f3950'
    >>> checksum_of(b"abc", cryptographic=True)[:23]
    'sha256:ba7816bf8f01cfea'
    """
    if cryptographic:
        return _SHA256 + sha256(data).hexdigest()
    return _XXH3_128 + xxh3_128_hexdigest(data)


def matches(
    checksum: str, data: bytes | bytearray | memoryview, *, cryptographic: bool = False
) -> bool:
    """Whether ``checksum`` is the tag of ``data``, under whichever known algorithm it names.

    A tag that is not a str, names an unknown algorithm or is malformed does not match: the
    caller treats the record as damaged. With ``cryptographic=True`` only a ``sha256`` tag can
    match: bytes that others may write are never trusted on a hash whose collisions can be
    constructed (say, a record written while its storage declared itself local).

    >>> tag = checksum_of(b"payload", cryptographic=False)
    >>> matches(tag, b"payload"), matches(tag, b"paylaod"), matches(tag, b"payloa")
    (True, False, False)
    >>> matches(checksum_of(b"payload", cryptographic=True), b"payload")
    True
    >>> matches(tag, b"payload", cryptographic=True)
    False
    >>> matches("md5:321c3cf486ed509164edec1e1981fec8", b"payload"), matches("", b"payload")
    (False, False)
    """
    # Two prefix checks, no parsing or table lookup: a 10-byte inline hit pays for this.
    if not isinstance(checksum, str):
        return False
    if not cryptographic and checksum.startswith(_XXH3_128):
        return checksum == _XXH3_128 + xxh3_128_hexdigest(data)
    if checksum.startswith(_SHA256):
        return checksum == _SHA256 + sha256(data).hexdigest()
    return False
