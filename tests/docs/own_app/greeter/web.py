"""A Starlette service, nothing like the shortener: no FastAPI, no SQLAlchemy, no database.

It answers /health and greets guests, writing each name to a file in its data folder, so an image
built from it shows that the one writable place, /data, works when everything else is read-only.
"""

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

DATA = Path(os.environ.get("GREETER_DATA", "data"))


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def greet(request: Request) -> PlainTextResponse:
    """POST /hello/{name}: greets, and says how many guests came before."""
    name = request.path_params["name"]
    guests = DATA / "guests.txt"
    before = len(guests.read_text().splitlines()) if guests.exists() else 0
    with guests.open("a") as book:
        book.write(name + "\n")
    return PlainTextResponse(f"Hello, {name}! {before} guests before you.")


def create_app() -> Starlette:
    """An app factory: uvicorn calls it (UVICORN_FACTORY=true) rather than importing a ready app."""
    return Starlette(routes=[Route("/health", health), Route("/hello/{name}", greet, methods=["POST"])])
