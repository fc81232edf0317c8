"""uvicorn's httptools protocol, with the limits it lacks: `uvicorn --http shortener_app.protocol:LimitedHttpTools`.

httptools sets no bound on a request's head, and joining the pieces of a long header costs time
quadratic in its size: one 64 MiB header held the event loop for seconds and, in a small
container, got the server OOM-killed. A connection that never sends anything is never closed:
enough of them exhaust the open files. This subclass adds, per connection:

- a cap on the request line plus headers (MAX_HEADER_BYTES): bytes beyond it never reach the
  parser; the client gets `431` and the connection is closed;
- a deadline for a complete request line plus headers (HEADER_TIMEOUT_SECONDS), from the
  connection's first moment or from a keep-alive request's first byte; then it is closed;
- a bound on open connections (MAX_CONNECTIONS, kept below the open-files limit): a connection
  over it is closed at once, so the ones already open, and the database, keep their files.
Bodies are bounded by the app (limits.BodySizeLimit); idle keep-alive connections by uvicorn.
"""

import asyncio
import json
import logging
import resource
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .config import get_settings

logger = logging.getLogger(__name__)

# Open files left for the database, its journal, the log and the health probe's connections.
FILES_KEPT_FREE = 64


@dataclass(frozen=True)
class Limits:
    max_head_bytes: int
    head_timeout: float
    max_connections: int


@cache
def limits() -> Limits:
    """The limits of this process, from the settings, read once."""
    settings = get_settings()
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    max_connections = settings.max_connections
    if soft != resource.RLIM_INFINITY:
        max_connections = max(1, min(max_connections, soft - FILES_KEPT_FREE))
    return Limits(settings.max_header_bytes, settings.header_timeout_seconds, max_connections)


def _too_large_response(max_bytes: int) -> bytes:
    body = json.dumps({"detail": f"request line and headers larger than {max_bytes} bytes"}).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class LimitedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol with a cap and a deadline on each request's head, and a bound on connections."""

    _last_refusal_logged = 0.0

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits()
        # Bytes of the current request's head received so far; None while its body is read.
        self._head_bytes: int | None = 0
        self._heads_done = 0
        # When the current head began (None: no head under way). One timer per connection checks it,
        # so a keep-alive request costs a clock read, not a timer of its own.
        self._head_started: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self._log_refusal()
            transport.close()
            return
        self._head_started = self.loop.time()
        self._head_timer = self.loop.call_later(self._limits.head_timeout, self._check_head_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is None:  # a body: limits.BodySizeLimit bounds it
            super().data_received(data)
            return
        if self._head_started is None:  # the first byte of a keep-alive connection's next request
            self._head_started = self.loop.time()
        room = self._limits.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Only what fits reaches the parser. If the head ends within it, the rest is a body or
        # the next request, and is read as such; if not, the head is too large.
        heads_done = self._heads_done
        self._head_bytes += room
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._heads_done > heads_done:
            self.data_received(data[room:])
        else:
            self._refuse(_too_large_response(self._limits.max_head_bytes))

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._head_started = None
        self._heads_done += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_bytes = 0
        super().on_message_complete()

    def _check_head_deadline(self) -> None:
        """Runs every HEADER_TIMEOUT_SECONDS at most: closes the connection once a head is overdue."""
        self._head_timer = None
        if self.transport.is_closing():
            return
        wait = self._limits.head_timeout
        # A pipelined head waiting behind a response still being sent is judged once that ends.
        if self._head_started is not None and (self.cycle is None or self.cycle.response_complete):
            waited = self.loop.time() - self._head_started
            if waited >= wait:
                self._refuse(b"")
                return
            wait -= waited
        self._head_timer = self.loop.call_later(wait, self._check_head_deadline)

    def _refuse(self, response: bytes) -> None:
        """Close the connection; with `response` first, unless another response is being sent on it."""
        if response and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(response)
        self.transport.close()

    def _log_refusal(self) -> None:
        now = time.monotonic()
        if now - LimitedHttpTools._last_refusal_logged >= 1.0:  # at most one line a second
            LimitedHttpTools._last_refusal_logged = now
            logger.warning("refusing connections: %d open, the limit is %d", len(self.connections) - 1,
                           self._limits.max_connections)  # fmt: skip
