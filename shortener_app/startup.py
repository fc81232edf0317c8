"""A check that stops the start with a short message, before the app's lifespan runs.

An exception in the lifespan reaches the log as a traceback: Starlette reports the failure to the
server with the whole traceback as its message, and uvicorn logs it. For a cause the operator has to
fix (a data directory the app cannot write), this reports the failure itself, with the check's
words only; uvicorn then logs them, says "Application startup failed. Exiting." and exits 3.
"""

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StartupRefused(RuntimeError):
    """The start was refused; the message has been reported to the server already."""


class StartupCheck:
    """Runs `check` when the server starts the app; a message back means: refuse to start, saying it."""

    def __init__(self, app: ASGIApp, check: Callable[[], str | None]) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        startup = await receive()
        problem = self._problem() if startup["type"] == "lifespan.startup" else None
        if problem is not None:
            await send({"type": "lifespan.startup.failed", "message": problem})
            # Raised after the report, as Starlette does: uvicorn ignores it, a test client sees it.
            raise StartupRefused(problem)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return startup
            return await receive()

        await self.app(scope, replay, send)

    def _problem(self) -> str | None:
        # A check that fails (a database driver missing from the image, say) refuses the start too,
        # in one line. Raised through, it would end the lifespan before startup completes, which
        # uvicorn's default (lifespan "auto") takes for an app without one: it would serve anyway.
        try:
            return self.check()
        except Exception as error:  # noqa: BLE001 - any failure of the check is a reason not to start
            return f"the startup check failed: {type(error).__name__}: {error}"
