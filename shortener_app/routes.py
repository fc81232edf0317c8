"""The HTTP endpoints. Each one is thin: validate, call crud, shape the answer."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from . import crud
from .about import about
from .deadline import Late, in_thread, remaining
from .errors import RETRY_AFTER
from .fastpath import redirect
from .ijson import IJsonRoute
from .models import ShortURL
from .paths import STATIC
from .runtime import Runtime, RuntimeDep
from .schemas import About, Health, LinkUpdate, Problem, URLCreate, URLInfo
from .validation import InvalidInput, check_not_self, is_valid_key

DEMO_PAGE = STATIC / "index.html"
# The admin link opened in a browser: a page that reads the link's JSON and can deactivate it.
ADMIN_PAGE = STATIC / "admin.html"

# Bodies are read as I-JSON: NaN, 1e400, lone surrogates and repeated members are syntax errors (ijson.py).
router = APIRouter(route_class=IJsonRoute)


def _info(runtime: Runtime, row: ShortURL, secret: str) -> URLInfo:
    base = str(runtime.settings.base_url).rstrip("/")
    return URLInfo(
        key=row.key,
        target_url=row.target_url,
        url=f"{base}/{row.key}",
        admin_url=f"{base}/admin/{secret}",
        clicks=row.clicks,
        is_active=row.is_active,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _not_found(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail)


UNKNOWN_ADMIN_LINK = "no link with this admin secret"
UNKNOWN_KEY = "no active link with this key"
EXPIRED = "this link has expired"


@router.get("/", include_in_schema=False)
def demo_page() -> FileResponse:
    return FileResponse(DEMO_PAGE, media_type="text/html")


# Every route that touches the database may answer this (see errors.py).
UNAVAILABLE: dict[int | str, dict] = {503: {"model": Problem, "description": "The database cannot serve; retry later."}}


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot read or write; `database` says why."}},
    summary="Whether the service can serve: its database reads and takes writes",
)
async def health(runtime: RuntimeDep) -> Health | JSONResponse:
    # Started without its database: unhealthy until the schema is checked, whatever the probe says.
    database = await runtime.health.check()
    if database == "ok" and runtime.unreachable is not None:
        database = "unchecked"
    ok = database == "ok"
    body = Health(status="ok" if ok else "unavailable", database=database, clicks_waiting=runtime.clicks.pending)
    if ok:
        return body
    return JSONResponse(body.model_dump(), status.HTTP_503_SERVICE_UNAVAILABLE, headers=RETRY_AFTER)


@router.post(
    "/url",
    status_code=status.HTTP_201_CREATED,
    response_model=URLInfo,
    responses={400: {"model": Problem}, 409: {"model": Problem}, 413: {"model": Problem}, **UNAVAILABLE},
    summary="Shorten a URL",
)
async def create_url(request_body: Annotated[URLCreate, Body()], runtime: RuntimeDep) -> URLInfo:
    target, key = request_body.target_url, request_body.key
    try:
        check_not_self(target, runtime.settings.base_url)
    except InvalidInput as error:
        # Shaped like FastAPI's own validation errors, so every 422 reads the same.
        issue = {"type": "value_error", "loc": ("body", "target_url"), "msg": str(error), "input": target}
        raise RequestValidationError([issue]) from None
    try:
        row, secret = await in_thread(runtime.create, target, key, request_body.expires_at)
    except crud.KeyTaken:
        raise HTTPException(status.HTTP_409_CONFLICT, f"the key {key!r} is taken") from None
    except crud.NoFreeKey as error:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(error)) from None
    return _info(runtime, row, secret)


@router.get(
    "/admin/{secret}",
    response_model=URLInfo,
    responses={404: {"model": Problem}, **UNAVAILABLE},
    summary="A link's details and click count",
)
async def link_info(secret: str, request: Request, runtime: RuntimeDep) -> URLInfo | FileResponse:
    # A browser asks for a page first (Accept: text/html, ...); the page holds no data and asks for
    # the JSON itself. Every other client gets the JSON. The answer depends on Accept: Vary says so.
    if _wants_html(request):
        return FileResponse(ADMIN_PAGE, media_type="text/html", headers={"Vary": "Accept"})
    # The secret first: a request that holds none writes nothing. Then buffered clicks, read again,
    # so the count shown is exact and already durable.
    row = await in_thread(runtime.link_by_secret, secret)
    if row is not None and runtime.clicks.pending:
        try:
            async with asyncio.timeout(remaining()):
                await runtime.clicks.flush()
        except TimeoutError:
            raise Late from None
        row = await in_thread(runtime.link_by_secret, secret)
    if row is None:
        raise _not_found(UNKNOWN_ADMIN_LINK)
    return _info(runtime, row, secret)


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return accept.startswith("text/html") or accept.startswith("application/xhtml+xml")


@router.get("/about", response_model=About, summary="Which process answered, and what it runs as; no settings")
def about_this_process(request: Request) -> About:
    return about(request.app.version)


@router.delete(
    "/admin/{secret}",
    response_model=URLInfo,
    responses={404: {"model": Problem}, **UNAVAILABLE},
    summary="Deactivate a link; its key is never handed out again",
)
async def deactivate(secret: str, runtime: RuntimeDep) -> URLInfo:
    row = await in_thread(runtime.deactivate, secret)
    if row is None:
        raise _not_found(UNKNOWN_ADMIN_LINK)
    # Back on the event loop, the only place the cache is touched: no lock needed.
    runtime.cache.discard(row.key)
    return _info(runtime, row, secret)


@router.patch(
    "/admin/{secret}",
    response_model=URLInfo,
    responses={400: {"model": Problem}, 404: {"model": Problem}, 413: {"model": Problem}, **UNAVAILABLE},
    summary="Set or clear a link's expiry",
)
async def update(secret: str, request_body: Annotated[LinkUpdate, Body()], runtime: RuntimeDep) -> URLInfo:
    row = await in_thread(runtime.set_expiry, secret, request_body.expires_at)
    if row is None:
        raise _not_found(UNKNOWN_ADMIN_LINK)
    # As for deactivation: this replica at once, the others within the cache TTL.
    runtime.cache.discard(row.key)
    return _info(runtime, row, secret)


_REDIRECT = {
    "status_code": status.HTTP_307_TEMPORARY_REDIRECT,
    "response_class": RedirectResponse,
    "responses": {
        404: {"model": Problem},
        410: {"model": Problem, "description": "The link has expired."},
        **UNAVAILABLE,
    },
}


@router.get("/{key}", operation_id="follow", summary="Follow a short link; counts a click", **_REDIRECT)
@router.head("/{key}", operation_id="peek", summary="Where a short link goes; not counted", **_REDIRECT)
async def follow(key: str, request: Request, runtime: RuntimeDep) -> RedirectResponse:
    # Only cache misses get here: links in the cache are answered by fastpath.CachedRedirects,
    # before the framework. This looks the key up, fills the cache, and answers the same way.
    if not is_valid_key(key):
        raise _not_found(UNKNOWN_KEY)
    # Taken before the read: a deactivation that commits while it runs keeps this answer out of the cache.
    generation = runtime.cache.generation()
    found = await in_thread(runtime.active_link, key)
    if found is None:
        raise _not_found(UNKNOWN_KEY)
    target, expires_at = found
    if crud.expired(expires_at):
        raise HTTPException(status.HTTP_410_GONE, EXPIRED)
    runtime.cache.put(key, target, expires_at, since=generation)
    return redirect(runtime, key, target, request.method)
