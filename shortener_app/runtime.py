"""What the running service holds between requests, and the dependencies that hand it out."""

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from . import crud, database, schema
from .cache import TargetCache
from .clicks import ClickBuffer
from .config import Settings
from .database import make_engine, make_session_factory
from .deadline import refuse_to_commit_late
from .health import HealthProbe
from .models import ShortURL

logger = logging.getLogger(__name__)

# A click write waits at most this long for another writer's lock, then fails and is retried:
# a background write never holds a thread for SQLite's whole 5 s busy timeout, and at stop
# every attempt ends in a known outcome.
CLICK_WRITE_LOCK_WAIT_SECONDS = 1.0
# How often a process that started without its database asks again for the schema's revision.
SCHEMA_RECHECK_SECONDS = 1.0


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cache: TargetCache
    # Why the schema is unchecked: the database could not be reached at start. Until it is checked,
    # every database route answers a JSON 503 (errors.py).
    unreachable: str | None = None
    clicks: ClickBuffer = field(init=False)
    health: HealthProbe = field(init=False)

    def __post_init__(self) -> None:
        self.clicks = ClickBuffer(self._write_clicks)
        self.health = HealthProbe(self.settings.db_url)

    @classmethod
    def open(cls, settings: Settings, unreachable: str | None = None) -> "Runtime":
        # No create_all: the migrate step made the schema, and the start-up check saw it at head.
        engine = make_engine(settings.db_url, wait=settings.request_timeout_seconds)
        sessions = make_session_factory(engine)
        # A request's answer must be able to say whether it committed: no COMMIT is sent close to its
        # deadline. The last event before it comes after the flush, which may have waited on a frozen
        # server; raising there rolls the session back.
        event.listen(sessions, "after_flush_postexec", refuse_to_commit_late)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            cache=TargetCache(settings.cache_size, settings.cache_ttl_seconds),
            unreachable=unreachable,
        )

    def _write_clicks(self, counts: Mapping[str, int], lock_wait: float | None) -> None:
        with self.engine.connect() as connection:
            try:
                with connection.begin():
                    database.wait_for_locks_at_most(connection, lock_wait)
                    crud.add_clicks(connection, counts)
            finally:
                if lock_wait is not None and connection.dialect.name == "sqlite":
                    database.wait_for_locks_at_most(connection, None)  # the pooled connection's default again

    def _session(self) -> Session:
        if self.unreachable is not None:
            raise schema.Unreachable(self.unreachable)
        return self.sessions()

    async def _check_schema_once_reachable(self) -> None:
        """For a process that started without its database: serve it once its schema is at head, and
        stop, as a start would have refused, when it is not."""
        logger.warning("the database cannot be reached (%s): serving what needs none until it answers",
                       self.unreachable)  # fmt: skip
        # As at start, SCHEMA_WAIT_SECONDS gives a migrate job started beside this process time to run.
        waiting_until = time.monotonic() + self.settings.schema_wait_seconds
        while self.unreachable is not None:
            await asyncio.sleep(SCHEMA_RECHECK_SECONDS)
            try:
                problem = await asyncio.to_thread(schema.problem, self.settings.db_url)
            except schema.Unreachable:
                continue
            if problem is not None and time.monotonic() < waiting_until:
                continue
            if problem is not None:
                logger.error("%s Stopping.", problem)
                signal.raise_signal(signal.SIGTERM)  # uvicorn's own graceful stop
                return
            self.unreachable = None
            logger.info("the database answers and its schema is at head: serving it")

    # What the async routes run in a worker thread, each in a session of its own.
    def active_link(self, key: str) -> tuple[str, datetime | None] | None:
        with self._session() as session:
            return crud.active_link(session, key)

    def create(self, target_url: str, key: str | None, expires_at: datetime | None) -> tuple[ShortURL, str]:
        with self._session() as session:
            return crud.create(session, target_url, key, self.settings.key_length, expires_at)

    def link_by_secret(self, secret: str) -> ShortURL | None:
        with self._session() as session:
            return crud.by_secret(session, secret)

    def deactivate(self, secret: str) -> ShortURL | None:
        with self._session() as session:
            return crud.deactivate(session, secret)

    def set_expiry(self, secret: str, expires_at: datetime | None) -> ShortURL | None:
        with self._session() as session:
            return crud.set_expiry(session, secret, expires_at)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Runtime"]:
        """Flush clicks on a timer while the app serves; flush the rest and close on the way out."""
        tasks = [
            asyncio.create_task(
                self.clicks.flush_every(self.settings.click_flush_seconds, CLICK_WRITE_LOCK_WAIT_SECONDS)
            )
        ]
        if self.unreachable is not None:
            tasks.append(asyncio.create_task(self._check_schema_once_reachable()))
        try:
            yield self
        finally:
            # Cancelling the timer never cancels a write already handed to a thread (ClickBuffer).
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            waiting = self.clicks.pending
            lost = await self.clicks.drain(self.settings.click_stop_seconds, CLICK_WRITE_LOCK_WAIT_SECONDS)
            if not lost:
                logger.info("stopped; all %d buffered clicks written", waiting)
            self.health.close()
            self.engine.dispose()


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain function in the thread pool, which requests stuck behind a
    # database lock can fill, and /health must answer even then.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
