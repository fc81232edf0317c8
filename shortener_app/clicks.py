"""Clicks are counted in memory and added to the database in batches."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)

# How long a failed write at stop waits before it tries again.
STOP_RETRY_PAUSE_SECONDS = 0.25
# While click writes keep failing, how often the log says so again.
REPEAT_LOG_SECONDS = 60.0

Write = Callable[[Mapping[str, int], float | None], None]


class ClickBuffer:
    """Counts clicks per key on the event loop and hands them to `write` in one batch.

    Only the event loop touches `_pending`, so counting needs no lock; the lock keeps two
    flushes (the timer's and an admin read's) from writing at once. A batch is handed to a
    worker thread, which no cancellation can stop: so whoever cancels a flush, the batch's fate
    is decided by the write alone. It leaves the buffer when handed over, and comes back only
    if the write fails; a cancelled flush never puts back a batch the thread then commits.
    """

    def __init__(self, write: Write) -> None:
        self._write = write
        self._pending: Counter[str] = Counter()
        self._lock = asyncio.Lock()
        self._writing: asyncio.Future[None] | None = None
        self._in_flight = 0

    def add(self, key: str) -> None:
        self._pending[key] += 1

    @property
    def pending(self) -> int:
        """Clicks counted but not yet known to be in the database: buffered, or in a write."""
        return self._pending.total() + self._in_flight

    async def flush(self, timeout: float | None = None) -> None:
        """Write what is buffered; raises what the write raised. `timeout` bounds the write's
        waiting on database locks (see `Runtime.write_clicks`)."""
        async with self._lock:
            if self._writing is not None:
                # A write whose flush was cancelled is still running: its outcome comes first.
                await asyncio.wait([self._writing])
            if not self._pending:
                return
            batch, self._pending = self._pending, Counter()
            self._in_flight = batch.total()
            writing = asyncio.ensure_future(run_in_threadpool(self._write, batch, timeout))
            writing.add_done_callback(lambda done: self._settle(done, batch))
            self._writing = writing
            await asyncio.shield(writing)

    def _settle(self, done: asyncio.Future[None], batch: Counter[str]) -> None:
        """Runs on the loop when a write ends, however its flush ended."""
        self._writing = None
        self._in_flight = 0
        if done.cancelled() or done.exception() is not None:
            self._pending.update(batch)

    async def flush_every(self, seconds: float, attempt_timeout: float | None = None) -> None:
        """Run until cancelled; a failed write is retried at the next tick.

        An outage is logged once when it starts (with its cause), once a minute while it lasts, and
        once when it ends, each with a count: not a traceback a second."""
        failures, since, said = 0, 0.0, 0.0
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.flush(attempt_timeout)
            except Exception as error:  # noqa: BLE001 - any database failure: retry at the next tick
                now = time.monotonic()
                if not failures:
                    since = said = now
                    logger.error("writing buffered clicks failed (%s); retrying every %g s", _cause(error), seconds)
                elif now - said >= REPEAT_LOG_SECONDS:
                    said = now
                    logger.error("writing buffered clicks still fails after %d attempts in %.0f s (%s); %d waiting",
                                 failures + 1, now - since, _cause(error), self.pending)  # fmt: skip
                failures += 1
            else:
                if failures:
                    logger.warning("buffered clicks written again, after %d failed attempts in %.0f s",
                                   failures, time.monotonic() - since)  # fmt: skip
                failures = 0

    async def drain(self, within: float, attempt_timeout: float) -> int:
        """At stop: write everything, trying again until `within` seconds have passed.

        Returns how many clicks could not be written (0 when all were). Each attempt waits at
        most `attempt_timeout` for database locks, so a lock held past the stop window ends in
        a known failure. A write the database never answers (a frozen server) is abandoned at
        the deadline; its clicks are counted as lost, though the server may still commit them.
        """
        deadline = time.monotonic() + within
        attempts = 0
        while True:
            attempts += 1
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(asyncio.shield(self.flush(min(attempt_timeout, max(remaining, 0.1)))), remaining)
            except TimeoutError:
                unanswered = self._in_flight
                lost = self.pending
                logger.error(
                    "LOST %d clicks at stop: the database did not answer within %.1f s "
                    "(%d of them in a write it never acknowledged, which it may still commit)",
                    lost,
                    within,
                    unanswered,
                )
                return lost
            except Exception as error:  # noqa: BLE001 - any database failure: retry until the deadline
                if time.monotonic() + STOP_RETRY_PAUSE_SECONDS >= deadline:
                    lost = self.pending
                    logger.error(
                        "LOST %d clicks at stop: %d attempts in %.1f s failed, the last with %s",
                        lost,
                        attempts,
                        within,
                        error,
                    )
                    return lost
                logger.warning("writing %d clicks at stop failed (%s); trying again", self.pending, error)
                await asyncio.sleep(STOP_RETRY_PAUSE_SECONDS)
            else:
                return 0


def _cause(error: Exception) -> str:
    """The driver's first line, without the statement and parameters SQLAlchemy adds."""
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]
