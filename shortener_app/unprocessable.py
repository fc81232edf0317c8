"""The 422 answer: FastAPI's shape, echoing the input, made safe for JSON whatever the input was.

FastAPI's own handler echoes each error's `input`, and its JSON encoder fails on what some inputs
hold: a float that is not finite (NaN, infinity), a string with a lone surrogate, bytes that are
not UTF-8 (a body sent as text/plain). Each of those was a plain-text 500 and a traceback. The echo
stays (clients and FastAPI's schema expect it), with those values spelt as text: `NaN`,
`Infinity`, `-Infinity`, `\\ud800`, `\\xff`.
"""

import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def json_safe(value: Any) -> Any:
    """`value` with every float, string and bytes in it made something strict JSON can carry."""
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE.get(value, "NaN")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {json_safe(str(name)): json_safe(member) for name, member in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


async def unprocessable(_request: Request, error: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": jsonable_encoder(json_safe(error.errors()))}, status.HTTP_422_UNPROCESSABLE_CONTENT)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, unprocessable)  # type: ignore[arg-type]
