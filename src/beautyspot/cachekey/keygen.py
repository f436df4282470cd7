"""Ready-made ``input_key_fn=`` functions for a call whose one argument is a file path."""

from __future__ import annotations

import hashlib
import os

from beautyspot.cachekey.plan import DIGEST_SIZE

__all__ = ["KeyGen"]

_FILE_PERSON = b"beautyspot.file"
_CHUNK_SIZE = 1 << 20


class KeyGen:
    """Ready-made ``input_key_fn=`` functions for a call whose one argument is a file path."""

    @staticmethod
    def from_path_stat(path: str | os.PathLike[str]) -> str:
        """Key by the file's resolved path, size and modification time: cheap, and changes when
        the file does, in most cases.

        The path is resolved first (:func:`os.path.realpath`: made absolute, symbolic links
        followed), so ``data.txt`` in two working folders is two files, and two names of one
        file are one. Size and time cannot see an edit that keeps both (a same-size rewrite
        within the clock's resolution, or a copy that restores the time): when that matters,
        use :meth:`from_file_content`.

        A missing file gets a key of its own, so the function still runs and decides.

        >>> KeyGen.from_path_stat("no/such/file.csv") == "missing:" + os.path.realpath(
        ...     "no/such/file.csv"
        ... )
        True
        """
        name = os.path.realpath(path)
        try:
            stat = os.stat(name)
        except (FileNotFoundError, NotADirectoryError):
            return f"missing:{name}"
        return f"stat:{stat.st_size}:{stat.st_mtime_ns}:{name}"

    @staticmethod
    def from_file_content(path: str | os.PathLike[str]) -> str:
        """Key by a digest of the file's bytes: the exact choice. Any edit changes the key,
        whatever it does to size and time, and equal content gets one key wherever the file is;
        the price is reading the whole file on every call.

        A missing file gets a key of its own, with its resolved path (as
        :meth:`from_path_stat` gives it).

        >>> KeyGen.from_file_content("no/such/file.csv") == KeyGen.from_path_stat(
        ...     "no/such/file.csv"
        ... )
        True
        """
        name = os.path.realpath(path)
        digest = hashlib.blake2b(digest_size=DIGEST_SIZE, person=_FILE_PERSON)
        try:
            with open(name, "rb") as file:
                while chunk := file.read(_CHUNK_SIZE):
                    digest.update(chunk)
        except (FileNotFoundError, NotADirectoryError):
            return f"missing:{name}"
        return digest.hexdigest()
