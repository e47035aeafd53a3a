"""The result cache: the same photo never runs the model twice.

Two levels under keys made from a hash of the input bytes: the model's mask (for the photo and
the model) and the finished result (for the photo, the model and the output options). Values
are framed with a checksum, so a corrupted or truncated value reads as a miss. Stored in Redis
when configured (shared by replicas, with a TTL, never pushing rate-limit budgets out), else in
an in-process LRU bounded in bytes. The cache never causes an error: a store that fails or is
slow is skipped for a while.

Imports nothing from the rest of the project but `redisroles`: keys are built from strings
the caller gives.
"""

from cache.keys import CacheKeys, input_digest
from cache.redis_store import RedisStore
from cache.store import CacheStore, Lookup, MemoryStore

__all__ = [
    "CacheKeys",
    "CacheStore",
    "Lookup",
    "MemoryStore",
    "RedisStore",
    "input_digest",
]
