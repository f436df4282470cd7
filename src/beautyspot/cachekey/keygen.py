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
        """Key by path, size and modification time: cheap, and changes when the file does.

        A missing file gets a key of its own, so the function still runs and decides.

        >>> KeyGen.from_path_stat("no/such/file.csv")
        'missing:no/such/file.csv'
        """
        name = os.fspath(path)
        try:
            stat = os.stat(name)
        except (FileNotFoundError, NotADirectoryError):
            return f"missing:{name}"
        return f"stat:{stat.st_size}:{stat.st_mtime_ns}:{name}"

    @staticmethod
    def from_file_content(path: str | os.PathLike[str]) -> str:
        """Key by a digest of the file's bytes: same content, same key, wherever the file is.

        >>> KeyGen.from_file_content("no/such/file.csv")
        'missing:no/such/file.csv'
        """
        name = os.fspath(path)
        digest = hashlib.blake2b(digest_size=DIGEST_SIZE, person=_FILE_PERSON)
        try:
            with open(name, "rb") as file:
                while chunk := file.read(_CHUNK_SIZE):
                    digest.update(chunk)
        except (FileNotFoundError, NotADirectoryError):
            return f"missing:{name}"
        return digest.hexdigest()
