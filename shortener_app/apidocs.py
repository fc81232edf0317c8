"""The API docs, /docs (Swagger UI) and /redoc, served by the app itself: no CDN, no inline script.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, on a floating major version with no
integrity check, and start Swagger UI with an inline script. Here the assets come from a pinned,
hash-locked package (fastapi-offline, which vendors both), Swagger UI starts from a file of ours
(static/docs.js) and ReDoc from attributes (static/redoc.html, its search off: it needs a blob:
worker), so the pages work without internet and under a CSP of `script-src 'self'`.
"""

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from .paths import STATIC

# Where the vendored Swagger UI and ReDoc are served from.
ASSETS_URL = "/static/vendor"
ASSETS = files("fastapi_offline") / "static"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return HTMLResponse((STATIC / "docs.html").read_text())


@router.get("/redoc")
def redoc() -> HTMLResponse:
    # A page of ours rather than FastAPI's get_redoc_html, which cannot pass ReDoc's options.
    return HTMLResponse((STATIC / "redoc.html").read_text())


def install(app: FastAPI) -> None:
    """The pages, the vendored assets and our own static files; FastAPI's CDN pages off (docs_url=None)."""
    app.include_router(router)
    # Mounted before /static, so /static/vendor is not looked up in our own folder.
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="vendor")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
