"""The application: `uvicorn shortener_app.main:app`."""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import make_url
from starlette.datastructures import State
from starlette.types import ASGIApp

from . import apidocs, datadir, deadline, errors, logs, schema, unprocessable
from .config import Settings, get_settings
from .fastpath import CachedRedirects
from .headers import ResponseHeaders
from .limits import BodySizeLimit
from .routes import router
from .runtime import Runtime
from .startup import StartupCheck

logger = logging.getLogger(__name__)


class ShortenerApp(FastAPI):
    """FastAPI, with the response headers (headers.py) outermost: outside Starlette's error middleware,
    whose plain 500 no middleware added with `add_middleware` ever sees."""

    def build_middleware_stack(self) -> ASGIApp:
        return ResponseHeaders(super().build_middleware_stack())


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing touches the database until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = settings or get_settings()
        logs.configure(current.log_level)
        runtime = Runtime.open(current, unreachable=getattr(app.state, "unreachable", None))
        logger.info(
            "starting env=%s db=%s base_url=%s",
            current.env_name,
            make_url(current.db_url).render_as_string(hide_password=True),
            current.base_url,
        )
        async with runtime.running():
            app.state.runtime = runtime
            yield

    app = ShortenerApp(
        title="URL shortener",
        summary="A small, production-minded URL shortener: the sample app of a container template.",
        version="2.0.0",
        lifespan=lifespan,
        # Served by apidocs from a pinned package, not FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
        # Starlette would answer /docs/ or /admin/<secret>/ with a redirect to http://<Host header>/...,
        # sending the secret wherever a request says it is addressed. A path with a slash too many is a 404.
        redirect_slashes=False,
    )
    max_body = (settings or get_settings()).max_body_bytes
    app.add_middleware(BodySizeLimit, max_bytes=max_body)
    app.add_middleware(CachedRedirects)
    # Outside the cached redirects: a request the front door has given up on counts no click.
    deadline.install(app, (settings or get_settings()).request_timeout_seconds)
    # Outermost: an unusable data directory, or a schema not at head, stops the start with what to
    # do, not a traceback; and before anything serves, so a process never half-starts.
    app.add_middleware(StartupCheck, check=lambda: startup_problem(settings or get_settings(), app.state))
    # Before the router: its /{key} would otherwise take /docs and /redoc.
    apidocs.install(app)
    app.include_router(router)
    errors.install(app)
    unprocessable.install(app)
    return app


def startup_problem(settings: Settings, state: State) -> str | None:
    # The schema is the migrate step's (python -m shortener_app.migrate): a serving process only reads
    # its revision, so any number of workers and replicas can start at once. Where the orchestrator
    # starts the migrate job beside the new replicas (a Swarm stack deploy), SCHEMA_WAIT_SECONDS lets
    # them wait for it, before anything serves, instead of failing the rolling update.
    # A database server that cannot be reached is no reason not to start (state.unreachable says why):
    # the process serves what needs no database, and checks the schema once the server answers
    # (Runtime.running). An orchestrator restarting it would only add back-off to the outage.
    if problem := datadir.problem(settings.db_url):
        return problem
    deadline = time.monotonic() + settings.schema_wait_seconds
    problem = _schema_problem(settings, state)
    if problem is not None and settings.schema_wait_seconds:
        logs.configure(settings.log_level)  # before the lifespan does: this line comes first
        logger.info("waiting up to %g s for the migrate step to bring the schema to head", settings.schema_wait_seconds)
    while problem is not None and time.monotonic() < deadline:
        time.sleep(1)
        problem = _schema_problem(settings, state)
    return problem


def _schema_problem(settings: Settings, state: State) -> str | None:
    state.unreachable = None
    try:
        return schema.problem(settings.db_url)
    except schema.Unreachable as error:
        state.unreachable = str(error)
        return None


app = create_app()
