"""A small in-memory map from key to target, so most redirects need no database query."""

import time
from collections import OrderedDict
from datetime import UTC, datetime


class TargetCache:
    """Least-recently-used, with a time to live.

    Used only from the event loop (never from a worker thread), so it needs no lock.
    Deactivating a link removes it here at once; another replica of the service
    notices within `ttl` seconds, which bounds how long a deactivated link still works there.

    A redirect that misses fills the cache from a read made in a worker thread, and a deactivation
    may commit and `discard()` the key while that read is on its way back: stored then, the link
    would come back for the whole TTL. So a fill takes a `generation()` before it reads and hands it
    to `put()`, and every `discard()` starts a new generation: a `put()` from an older one stores
    nothing (that one answer, read while the link was active, still redirects). The generation is
    one for all keys, so a discard also keeps the fills then in flight for other keys out; each of
    those links is read again on its next redirect, which is all it costs.
    """

    def __init__(self, size: int, ttl: float) -> None:
        self._size = size
        self._ttl = ttl
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._generation = 0

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

    def generation(self) -> int:
        """Take it before reading a link from the database; `put()` the result with it."""
        return self._generation

    def put(self, key: str, target: str, expires_at: datetime | None = None, *, since: int) -> None:
        """Keep `target` for the TTL, and never past the link's own expiry (then the route answers 410);
        nothing if a `discard()` came after `since`, the `generation()` taken before the read."""
        if since != self._generation:
            return
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
        """Forget `key` now, and refuse every fill read before this moment (see the class)."""
        self._entries.pop(key, None)
        self._generation += 1
