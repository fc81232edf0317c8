"""Clicks are counted in memory and added to the database in batches."""

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)


class ClickBuffer:
    """Counts clicks per key on the event loop and hands them to `write` in one batch.

    Only the event loop touches `_pending`, so counting needs no lock; the lock keeps
    two flushes (the timer's and an admin read's) from writing the same batch twice.
    A batch that fails to write is put back and tried again at the next flush.
    """

    def __init__(self, write: Callable[[Mapping[str, int]], None]) -> None:
        self._write = write
        self._pending: Counter[str] = Counter()
        self._lock = asyncio.Lock()

    def add(self, key: str) -> None:
        self._pending[key] += 1

    @property
    def pending(self) -> int:
        return self._pending.total()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, Counter()
            try:
                await run_in_threadpool(self._write, batch)
            except BaseException:
                self._pending.update(batch)
                raise

    async def flush_every(self, seconds: float) -> None:
        """Run until cancelled; a failed write is logged and retried at the next tick."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.flush()
            except Exception:
                logger.exception("writing %d buffered clicks failed; will retry", self.pending)
