"""Cache keys and ETags, identical on every replica for the same input and options."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

KEY_PREFIX = "bg_remover:cache:v2"  # v1 keys had no hash tag
# hashlib releases the GIL on large buffers; above this the digest runs in a thread.
LARGE_INPUT_BYTES = 1 << 20


def input_digest(data: bytes) -> str:
    """SHA-256 of the input: a fraction of decoding the same bytes (docs/operations.md,
    "Result cache")."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CacheKeys:
    """The keys of one request: `model_id` names the model and its file, `output_id` every
    option and encoder setting that changes the output bytes, `namespace` whose cache it is
    (empty: one cache shared by every client).

    Both keys carry one hash tag (`{…}`, from the namespace, the photo and the model), so on a
    Redis Cluster they live in one slot and one command can read or write both."""

    digest: str
    model_id: str
    output_id: str
    namespace: str = ""

    @property
    def tag(self) -> str:
        return "{" + _hash(*self._scoped(self.model_id, self.digest))[:32] + "}"

    @property
    def mask(self) -> str:
        return f"{KEY_PREFIX}:{self.tag}:mask"

    @property
    def result(self) -> str:
        return f"{KEY_PREFIX}:{self.tag}:result:{self.result_id}"

    @property
    def result_id(self) -> str:
        return _hash(*self._scoped(self.model_id, self.output_id, self.digest))

    def _scoped(self, *parts: str) -> tuple[str, ...]:
        return (self.namespace, *parts) if self.namespace else parts

    def etag(self, representation: str) -> str:
        """A strong ETag for one representation of the result (the image, or a JSON body
        that also depends on `representation`'s extra fields)."""
        return f'"{_hash(self.result_id, representation)[:32]}"'


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
