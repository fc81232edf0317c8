"""Every request has a deadline, and work whose answer nobody will read is not done.

The front door stamps each request with the time it received it (`X-Request-Start: t=<seconds>`,
the header Heroku's router sets and New Relic reads), so time spent queued before the app (the app
frozen, a full accept queue) counts too. A request already past its deadline when it reaches the app
is answered 503 before anything runs: no link is created, no click counted. Database work runs in a
worker thread the request stops waiting for at the deadline (answering a JSON 503); that thread
refuses to commit from COMMIT_MARGIN_SECONDS before the deadline, so a database that stalls and
recovers later cannot finish a write whose client was told it failed. Only a COMMIT that has been
sent and takes longer than that margin to come back is left to the database (docs/faults.md).

Without the header (a client straight to the app, a test) the deadline counts from arrival. A stamp
in the future is read as now: a client cannot buy itself more time.
"""

import contextvars
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import anyio
from fastapi import FastAPI, Request
from starlette import status
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import RETRY_AFTER

T = TypeVar("T")
logger = logging.getLogger(__name__)

HEADER = b"x-request-start"
# A commit must begin at least this long before the request's deadline.
COMMIT_MARGIN_SECONDS = 1.0
TOO_LATE = "this request waited too long to be served and was not carried out; try again"

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


class Late(Exception):
    """The request's deadline passed before its work was done; nothing was written."""


def received_at(stamp: bytes | None, now: float) -> float:
    """When the front door received the request (Unix seconds), from `t=<seconds>` or `<seconds>`; seconds,
    milliseconds or microseconds, told apart by size as New Relic does. Missing, unreadable or in the future: now."""
    if not stamp:
        return now
    try:
        value = float(stamp.decode("latin-1").strip().removeprefix("t="))
    except ValueError:
        return now
    for scale in (1e6, 1e3):
        if value > now * scale / 10:
            value /= scale
            break
    return min(value, now)


def remaining() -> float | None:
    """Seconds left before this request's deadline; None outside a request."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def refuse_to_commit_late(*_args: object) -> None:
    """A session's hook just before its COMMIT: raise Late, so the session rolls back, if the request's
    answer could no longer say it committed."""
    left = remaining()
    if left is not None and left < COMMIT_MARGIN_SECONDS:
        raise Late


async def in_thread(function: Callable[..., T], *args: object) -> T:
    """Run `function(*args)` in a worker thread, waiting for it until the request's deadline at most.

    At the deadline the thread is left to finish on its own (a thread cannot be stopped), and Late is
    raised here; the thread's commit hook refuses to commit by then.
    """
    left = remaining()
    call = partial(function, *args)
    if left is None:
        return await anyio.to_thread.run_sync(call)
    try:
        with anyio.fail_after(max(left, 0)):
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    except TimeoutError:
        raise Late from None


def too_late() -> JSONResponse:
    return JSONResponse({"detail": TOO_LATE}, status.HTTP_503_SERVICE_UNAVAILABLE, headers=RETRY_AFTER)


class Deadlines:
    """ASGI middleware: sets each request's deadline, and answers 503 to a request already past it."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = time.time()
        left = received_at(dict(scope["headers"]).get(HEADER), now) + self.seconds - now
        if left <= 0:
            logger.warning("%s request refused: it reached the app %.1f s after the front door", scope["method"],
                           self.seconds - left)  # fmt: skip
            await too_late()(scope, receive, send)
            return
        token = _deadline.set(time.monotonic() + left)
        try:
            await self.app(scope, receive, send)
        finally:
            _deadline.reset(token)


async def _late(_request: Request, _error: Exception) -> JSONResponse:
    return too_late()


def install(app: FastAPI, seconds: float) -> None:
    app.add_exception_handler(Late, _late)
    app.add_middleware(Deadlines, seconds=seconds)
