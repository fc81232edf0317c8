"""The small parts whose failure modes the API tests cannot reach."""

import asyncio
from collections.abc import Mapping

import pytest

from shortener_app import cache as cache_module
from shortener_app.cache import TargetCache
from shortener_app.clicks import ClickBuffer
from shortener_app.logs import RedactAdminSecrets


def test_a_batch_that_fails_to_write_is_kept_for_the_next_flush() -> None:
    written: list[dict[str, int]] = []
    failures = [RuntimeError("database is locked")]

    def write(batch: Mapping[str, int]) -> None:
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

    def write(batch: Mapping[str, int]) -> None:
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


def test_cache_forgets_after_its_ttl_and_evicts_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    cache = TargetCache(size=2, ttl=5)
    cache.put("a", "https://a.example/")
    cache.put("b", "https://b.example/")
    assert cache.get("a") == "https://a.example/"  # now "b" is the least recently used
    cache.put("c", "https://c.example/")
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    now[0] += 5
    assert cache.get("a") is None, "a deactivated link could outlive the TTL on another replica"


def test_a_cache_of_size_zero_holds_nothing() -> None:
    cache = TargetCache(size=0, ttl=5)
    cache.put("a", "https://a.example/")
    assert cache.get("a") is None


def test_redaction_covers_messages_as_well_as_arguments() -> None:
    import logging

    record = logging.LogRecord("x", logging.INFO, "f", 1, "GET /admin/s3cr3t?q=1 done", None, None)
    RedactAdminSecrets().filter(record)
    assert record.getMessage() == "GET /admin/<redacted>?q=1 done"
