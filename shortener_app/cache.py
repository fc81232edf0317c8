"""A small in-memory map from key to target, so most redirects need no database query."""

import time
from collections import OrderedDict
from datetime import UTC, datetime


class TargetCache:
    """Least-recently-used, with a time to live.

    Used only from the event loop (never from a worker thread), so it needs no lock.
    Deactivating a link removes it here at once; another replica of the service
    notices within `ttl` seconds, which bounds how long a deactivated link still works there.
    """

    def __init__(self, size: int, ttl: float) -> None:
        self._size = size
        self._ttl = ttl
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        target, expires = entry
        if time.monotonic() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return target

    def put(self, key: str, target: str, expires_at: datetime | None = None) -> None:
        """Keep `target` for the TTL, and never past the link's own expiry (then the route answers 410)."""
        ttl = self._ttl
        if expires_at is not None:
            ttl = min(ttl, (expires_at - datetime.now(UTC)).total_seconds())
        if self._size == 0 or ttl <= 0:
            return
        self._entries[key] = (target, time.monotonic() + ttl)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)
