"""The redirect hot path, served before the framework when the link is already in the cache.

GET or HEAD /{key} for a key in the redirect cache needs no routing, no dependency and no
validation: the answer is the cached target. This middleware sends exactly what the `follow`
route would (the same RedirectResponse) and counts the click the same way; every other request,
and every cache miss, goes on to FastAPI, whose `follow` route looks the key up and fills the cache.
"""

from starlette import status
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .runtime import Runtime
from .validation import is_valid_key

# A browser that caches a redirect follows it without asking us: a click nobody counts.
NO_CACHE = {"Cache-Control": "no-store, max-age=0"}


def redirect(runtime: Runtime, key: str, target: str, method: str) -> RedirectResponse:
    """The answer to GET/HEAD /{key}, for the route and this middleware alike; GET counts a click."""
    if method == "GET":
        runtime.clicks.add(key)
    return RedirectResponse(target, status.HTTP_307_TEMPORARY_REDIRECT, headers=NO_CACHE)


class CachedRedirects:
    """ASGI middleware: answers GET/HEAD /{key} from the redirect cache, passes on everything else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
            # Behind a proxy prefix (uvicorn --root-path) the path starts with that prefix.
            key = scope["path"].removeprefix(scope.get("root_path", ""))[1:]
            if runtime is not None and is_valid_key(key):
                target = runtime.cache.get(key)
                if target is not None:
                    await redirect(runtime, key, target, scope["method"])(scope, receive, send)
                    return
        await self.app(scope, receive, send)
