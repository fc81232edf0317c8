"""What the running service holds between requests, and the dependencies that hand it out."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import crud
from .cache import TargetCache
from .clicks import ClickBuffer
from .config import Settings
from .database import Base, make_engine, make_session_factory
from .models import ShortURL


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cache: TargetCache
    clicks: ClickBuffer = field(init=False)

    def __post_init__(self) -> None:
        self.clicks = ClickBuffer(self._write_clicks)

    @classmethod
    def open(cls, settings: Settings) -> "Runtime":
        engine = make_engine(settings.db_url)
        Base.metadata.create_all(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            cache=TargetCache(settings.cache_size, settings.cache_ttl_seconds),
        )

    def _write_clicks(self, counts: Mapping[str, int]) -> None:
        with self.sessions() as session:
            crud.add_clicks(session, counts)

    # What the async routes run in a worker thread, each in a session of its own.
    def active_target(self, key: str) -> str | None:
        with self.sessions() as session:
            return crud.active_target(session, key)

    def link_by_secret(self, secret: str) -> ShortURL | None:
        with self.sessions() as session:
            return crud.by_secret(session, secret)

    def deactivate(self, secret: str) -> ShortURL | None:
        with self.sessions() as session:
            return crud.deactivate(session, secret)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Runtime"]:
        """Flush clicks on a timer while the app serves; flush the rest and close on the way out."""
        flusher = asyncio.create_task(self.clicks.flush_every(self.settings.click_flush_seconds))
        try:
            yield self
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await self.clicks.flush()
            self.engine.dispose()


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
