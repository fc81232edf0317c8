"""What the running service holds between requests, and the dependencies that hand it out."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import crud, database
from .cache import TargetCache
from .clicks import ClickBuffer
from .config import Settings
from .database import make_engine, make_session_factory
from .health import HealthProbe
from .models import ShortURL

logger = logging.getLogger(__name__)

# A click write waits at most this long for another writer's lock, then fails and is retried:
# a background write never holds a thread for SQLite's whole 5 s busy timeout, and at stop
# every attempt ends in a known outcome.
CLICK_WRITE_LOCK_WAIT_SECONDS = 1.0


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cache: TargetCache
    clicks: ClickBuffer = field(init=False)
    health: HealthProbe = field(init=False)

    def __post_init__(self) -> None:
        self.clicks = ClickBuffer(self._write_clicks)
        self.health = HealthProbe(self.settings.db_url)

    @classmethod
    def open(cls, settings: Settings) -> "Runtime":
        # No create_all: the migrate step made the schema, and the start-up check saw it at head.
        engine = make_engine(settings.db_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            cache=TargetCache(settings.cache_size, settings.cache_ttl_seconds),
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

    # What the async routes run in a worker thread, each in a session of its own.
    def active_link(self, key: str) -> tuple[str, datetime | None] | None:
        with self.sessions() as session:
            return crud.active_link(session, key)

    def link_by_secret(self, secret: str) -> ShortURL | None:
        with self.sessions() as session:
            return crud.by_secret(session, secret)

    def deactivate(self, secret: str) -> ShortURL | None:
        with self.sessions() as session:
            return crud.deactivate(session, secret)

    def set_expiry(self, secret: str, expires_at: datetime | None) -> ShortURL | None:
        with self.sessions() as session:
            return crud.set_expiry(session, secret, expires_at)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Runtime"]:
        """Flush clicks on a timer while the app serves; flush the rest and close on the way out."""
        flusher = asyncio.create_task(
            self.clicks.flush_every(self.settings.click_flush_seconds, CLICK_WRITE_LOCK_WAIT_SECONDS)
        )
        try:
            yield self
        finally:
            # Cancelling the timer never cancels a write already handed to a thread (ClickBuffer).
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
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


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
