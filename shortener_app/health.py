"""The health check: whether the database reads and takes writes right now, answered within a second.

A probe runs in a thread of its own, on a connection of its own: neither a full thread pool nor a
pool of connections held by requests stuck behind a lock can delay it. A database that does not
answer in time is reported as such, and the probe still running is reused by the next check rather
than joined by another one. For SQLite the file must still be the one the service opened: a
deleted file keeps taking writes through the open handle, and every one of them is lost.
"""

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Literal

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from . import crud
from .database import make_probe_engine, sqlite_file

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 0.9

DatabaseState = Literal["ok", "failing", "timeout", "missing", "unchecked"]


class HealthProbe:
    def __init__(self, db_url: str) -> None:
        self._engine = make_probe_engine(db_url, HEALTH_TIMEOUT_SECONDS)
        self._sessions = sessionmaker(self._engine)
        self._file = sqlite_file(db_url)
        self._identity = self._file_identity()
        self._running: asyncio.Future[DatabaseState] | None = None

    async def check(self) -> DatabaseState:
        if self._running is None or self._running.done():
            self._running = _in_daemon_thread(self._probe)
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), HEALTH_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning("health check: the database did not answer within %.1f s", HEALTH_TIMEOUT_SECONDS)
            return "timeout"

    def close(self) -> None:
        self._engine.dispose()

    def _file_identity(self) -> tuple[int, int] | None:
        if self._file is None:
            return None
        try:
            found = self._file.stat()
        except FileNotFoundError:
            return None
        return found.st_dev, found.st_ino

    def _probe(self) -> DatabaseState:
        try:
            if self._file is not None and self._file_identity() != self._identity:
                logger.error("health check: the database file %s is gone or was replaced", self._file)
                return "missing"
            with self._sessions() as session:
                crud.read_and_write(session)
        except IntegrityError:
            pass  # another replica wrote the first heartbeat at the same moment: writes work
        except (SQLAlchemyError, OSError) as error:
            logger.warning("health check: the database failed: %s", getattr(error, "orig", None) or error)
            return "failing"
        return "ok"


def _in_daemon_thread(work: Callable[[], DatabaseState]) -> "asyncio.Future[DatabaseState]":
    """Run `work` in a new daemon thread: one the database hangs cannot keep the process from exiting."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[DatabaseState] = loop.create_future()

    def settle(state: DatabaseState | None, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(state)  # type: ignore[arg-type]

    def run() -> None:
        state, error = None, None
        try:
            state = work()
        except BaseException as raised:  # noqa: BLE001 - handed to the awaiting coroutine
            error = raised
        with contextlib.suppress(RuntimeError):  # the loop closed while the database hung
            loop.call_soon_threadsafe(settle, state, error)

    threading.Thread(target=run, name="health-probe", daemon=True).start()
    return future
