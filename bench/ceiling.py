"""The framework ceiling: the fastest a FastAPI redirect can be on this server, with no work at all."""

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

app = FastAPI()
TARGET = "https://example.com/"


@app.get("/{key}")
async def follow(key: str) -> RedirectResponse:
    return RedirectResponse(TARGET, status_code=307, headers={"Cache-Control": "no-store, max-age=0"})
