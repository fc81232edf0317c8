"""A cap on request body size, enforced before the body is read into memory.

FastAPI's own `max_body_size` (Starlette's RequestBodyLimitMiddleware) answers a too-large declared
Content-Length with a plain-text 413; this one answers JSON like every other error.
"""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Answers 413 when a body is larger than `max_bytes`, whether or not it declares its length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        too_large = HTTPException(413, f"request body larger than {self.max_bytes} bytes")
        declared = dict(scope["headers"]).get(b"content-length")
        received = 0

        async def checked_receive() -> Message:
            nonlocal received
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        # The HTTPException is raised inside the app, whose exception handler turns it into JSON.
        await self.app(scope, checked_receive, send)
