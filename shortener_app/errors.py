"""A database that cannot serve is answered like every other error: JSON, and a hint to retry."""

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from . import schema

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}
DATABASE_UNAVAILABLE = "the database cannot serve this request right now; try again later"


async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    # The error goes to the log, never to the client (it may name tables, hosts or files); the
    # route's template, not the path, so no admin secret is logged.
    route = getattr(request.scope.get("route"), "path", "?")
    logger.error("%s %s: database error: %s", request.method, route, _cause(error))
    return JSONResponse({"detail": DATABASE_UNAVAILABLE}, status.HTTP_503_SERVICE_UNAVAILABLE, headers=RETRY_AFTER)


def _cause(error: Exception) -> object:
    """The driver's own message, without the statement and its parameters SQLAlchemy adds."""
    return getattr(error, "orig", None) or error


def install(app: FastAPI) -> None:
    app.add_exception_handler(SQLAlchemyError, database_unavailable)
    # A process that started without its database, and has not reached it since (runtime.py).
    app.add_exception_handler(schema.Unreachable, database_unavailable)
