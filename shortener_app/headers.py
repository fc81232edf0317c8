"""The headers the app puts on its answers itself, so a container with no proxy in front sends them too.

Every answer, whoever made it (a route, the cached-redirect fast path, an error handler, Starlette's
own 500), carries the proxy's security headers with the same values (container/proxy/security-headers.conf;
tests/app/test_headers.py holds the two together), and Strict-Transport-Security when the request came
over HTTPS: uvicorn sets the scheme from X-Forwarded-Proto when it trusts the proxy that sent it. A header
an answer sets itself is kept, never sent twice. An answer under /admin/ and the answer to POST /url
carry an admin secret's power (the admin URL, or what it shows and does): `Cache-Control: no-store`,
in place of any other, so neither a browser nor a shared cache keeps one.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# Over HTTPS only, as the proxy sends it: a browser ignores it over plain HTTP (RFC 6797).
HSTS = {"Strict-Transport-Security": "max-age=63072000"}
NO_STORE = "no-store"


def _holds_admin_power(scope: Scope) -> bool:
    # Behind a proxy prefix (uvicorn --root-path) the path starts with that prefix.
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    return path.startswith("/admin/") or (path == "/url" and scope["method"] == "POST")


class ResponseHeaders:
    """ASGI middleware: adds the headers above to every HTTP answer's start; passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = SECURITY | HSTS if scope["scheme"] == "https" else SECURITY
        no_store = _holds_admin_power(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # optional in ASGI
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    headers.setdefault(name, value)
                if no_store:
                    headers["Cache-Control"] = NO_STORE
            await send(message)

        await self.app(scope, receive, send_with_headers)
