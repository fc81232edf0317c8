"""The small parts whose failure modes the API tests cannot reach."""

import asyncio
import threading
from collections.abc import Mapping

import pytest

from shortener_app import cache as cache_module
from shortener_app.cache import TargetCache
from shortener_app.clicks import ClickBuffer
from shortener_app.logs import RedactAdminSecrets


def test_a_batch_that_fails_to_write_is_kept_for_the_next_flush() -> None:
    written: list[dict[str, int]] = []
    failures = [RuntimeError("database is locked")]

    def write(batch: Mapping[str, int], _lock_wait: float | None) -> None:
        if failures:
            raise failures.pop()
        written.append(dict(batch))

    async def scenario() -> None:
        clicks = ClickBuffer(write)
        clicks.add("a")
        clicks.add("a")
        with pytest.raises(RuntimeError):
            await clicks.flush()
        clicks.add("b")
        assert clicks.pending == 3
        await clicks.flush()
        assert clicks.pending == 0

    asyncio.run(scenario())
    assert written == [{"a": 2, "b": 1}]


def test_the_flush_timer_survives_a_failed_write() -> None:
    calls: list[int] = []

    def write(batch: Mapping[str, int], _lock_wait: float | None) -> None:
        calls.append(sum(batch.values()))
        if len(calls) == 1:
            raise OSError("disk full")

    async def scenario() -> None:
        clicks = ClickBuffer(write)
        timer = asyncio.create_task(clicks.flush_every(0.01))
        clicks.add("a")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(calls) >= 2:
                break
        timer.cancel()

    asyncio.run(scenario())
    assert calls[:2] == [1, 1], "the failed click was not written at the next tick"


class SlowDatabase:
    """A click writer whose writes block in their thread until released, then commit or fail."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)  # one per write, in order; None commits
        self.release = threading.Event()
        self.started = threading.Event()
        self.committed = 0

    def write(self, batch: Mapping[str, int], _lock_wait: float | None = None) -> None:
        self.started.set()
        self.release.wait(5)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.committed += sum(batch.values())


async def _cancel_a_flush_mid_write(clicks: ClickBuffer, database: SlowDatabase) -> None:
    """As at stop: the flush timer is cancelled while its write runs in a thread, which goes on."""
    flushing = asyncio.create_task(clicks.flush())
    await asyncio.to_thread(database.started.wait, 5)
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    database.release.set()


def test_a_write_still_running_when_its_flush_is_cancelled_is_counted_once() -> None:
    database = SlowDatabase(None)

    async def scenario() -> int:
        clicks = ClickBuffer(database.write)
        for _ in range(500):
            clicks.add("a")
        await _cancel_a_flush_mid_write(clicks, database)
        clicks.add("a")
        await clicks.flush()  # as the final flush at stop does
        return clicks.pending

    assert asyncio.run(scenario()) == 0
    assert database.committed == 501, "the cancelled batch was written twice (or not at all)"


def test_a_write_that_fails_after_its_flush_is_cancelled_is_written_at_stop() -> None:
    database = SlowDatabase(OSError("database or disk is full"), None)

    async def scenario() -> int:
        clicks = ClickBuffer(database.write)
        for _ in range(500):
            clicks.add("a")
        await _cancel_a_flush_mid_write(clicks, database)
        return await clicks.drain(within=5, attempt_timeout=1)

    assert asyncio.run(scenario()) == 0
    assert database.committed == 500


def test_a_failing_final_write_is_retried_until_it_succeeds() -> None:
    failures = [OSError("database is locked")] * 3
    written: list[int] = []

    def write(batch: Mapping[str, int], _lock_wait: float | None) -> None:
        if failures:
            raise failures.pop()
        written.append(sum(batch.values()))

    async def scenario() -> int:
        clicks = ClickBuffer(write)
        for _ in range(7):
            clicks.add("k")
        return await clicks.drain(within=5, attempt_timeout=1)

    assert asyncio.run(scenario()) == 0
    assert written == [7]


def test_clicks_that_cannot_be_written_at_stop_are_logged_as_lost_with_their_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def write(_batch: Mapping[str, int], _lock_wait: float | None) -> None:
        raise OSError("database or disk is full")

    async def scenario() -> int:
        clicks = ClickBuffer(write)
        for key in ("a", "b", "b"):
            clicks.add(key)
        return await clicks.drain(within=0.6, attempt_timeout=0.1)

    assert asyncio.run(scenario()) == 3
    assert "LOST 3 clicks at stop" in caplog.text


def test_cache_forgets_after_its_ttl_and_evicts_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    cache = TargetCache(size=2, ttl=5)
    cache.put("a", "https://a.example/", since=cache.generation())
    cache.put("b", "https://b.example/", since=cache.generation())
    assert cache.get("a") == "https://a.example/"  # now "b" is the least recently used
    cache.put("c", "https://c.example/", since=cache.generation())
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    now[0] += 5
    assert cache.get("a") is None, "a deactivated link could outlive the TTL on another replica"


def test_a_cache_of_size_zero_holds_nothing() -> None:
    cache = TargetCache(size=0, ttl=5)
    cache.put("a", "https://a.example/", since=cache.generation())
    assert cache.get("a") is None


def test_a_link_read_before_it_was_discarded_is_not_put_back_in_the_cache() -> None:
    cache = TargetCache(size=10, ttl=30)
    since = cache.generation()  # a redirect that missed takes it, then reads the link in a worker thread
    cache.discard("a")  # meanwhile the link is deactivated, and dropped from the cache
    cache.put("a", "https://a.example/", since=since)  # the read comes back with the link still active
    assert cache.get("a") is None, "the deactivated link would redirect again for the whole TTL"
    cache.put("a", "https://a.example/", since=cache.generation())  # a read that began after the discard
    assert cache.get("a") == "https://a.example/"


def test_redaction_covers_messages_as_well_as_arguments() -> None:
    import logging

    record = logging.LogRecord("x", logging.INFO, "f", 1, "GET /admin/s3cr3t?q=1 done", None, None)
    RedactAdminSecrets().filter(record)
    assert record.getMessage() == "GET /admin/<redacted>?q=1 done"
