"""Waiting on an event rather than sleeping a fixed time: poll, with a bound, and say what never came."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def settled(read: Callable[[], T], done: Callable[[T], bool], seconds: float, every: float = 0.2) -> T:
    """Reads until `done` holds for what was read, for at most `seconds`; returns the last reading
    either way, so that the caller's own assertion shows the numbers."""
    deadline = time.monotonic() + seconds
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(every)
        value = read()
    return value


def until(check: Callable[[], bool], seconds: float, what: str, every: float = 0.2) -> None:
    """Until `check()` is true; fails with `what` if it is not within `seconds`."""
    assert settled(check, bool, seconds, every), what
