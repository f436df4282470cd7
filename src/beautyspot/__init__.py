"""beautyspot: one decorator for heavy, slow or paid batch work.

>>> import tempfile, beautyspot as bs
>>> spot = bs.Spot("example", db=tempfile.mkdtemp() + "/example.db")
>>> @spot.mark(version="v1")
... def shout(text):
...     return text.upper() + "!"
>>> shout("hello")
'HELLO!'
"""

from beautyspot.cachekey import KeyGen
from beautyspot.db import TaskDB
from beautyspot.errors import (
    BeautyspotError,
    BeautyspotWarning,
    CacheKeyError,
    ConfigurationError,
    NotSupportedError,
    SerializationError,
    StorageError,
)
from beautyspot.explain import Explanation
from beautyspot.limiter import Limiter
from beautyspot.maintenance import GCReport
from beautyspot.memory import MemoryCache
from beautyspot.serializer import Serializer
from beautyspot.spot import MarkedFunction, Project, Spot
from beautyspot.storage import BlobStorageBase

__version__ = "0.2.0"

__all__ = [
    "BeautyspotError",
    "BeautyspotWarning",
    "BlobStorageBase",
    "CacheKeyError",
    "ConfigurationError",
    "Explanation",
    "GCReport",
    "KeyGen",
    "Limiter",
    "MarkedFunction",
    "MemoryCache",
    "NotSupportedError",
    "Project",
    "SerializationError",
    "Serializer",
    "Spot",
    "StorageError",
    "TaskDB",
    "__version__",
]
