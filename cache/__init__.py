"""The result cache: the same photo never runs the model twice.

Two levels under keys made from a hash of the input bytes: the model's mask (for the photo and
the model) and the finished result (for the photo, the model and the output options). Values
are framed with a checksum, so a corrupted or truncated value reads as a miss. Stored in Redis
when configured (shared by replicas, with a TTL), else in an in-process LRU bounded in bytes.
The cache never causes an error: a store that fails or is slow is skipped for a while.

Imports nothing from the rest of the project: keys are built from strings the caller gives.
"""

from cache.keys import CacheKeys, input_digest
from cache.store import CacheStore, Lookup, MemoryStore, RedisStore, open_store

__all__ = [
    "CacheKeys",
    "CacheStore",
    "Lookup",
    "MemoryStore",
    "RedisStore",
    "input_digest",
    "open_store",
]
