"""Request bodies read as I-JSON (RFC 7493): JSON that every parser reads the same way.

Python's `json` also takes what RFC 8259 does not call JSON, or leaves open: `NaN`, `Infinity`,
`-Infinity`, numbers no double can hold (`1e400` becomes infinity), strings with lone surrogates or
noncharacters (`"\\ud800"`: no UTF-8 can carry them back), and an object naming a member twice
(last wins in Python and JavaScript, first wins elsewhere: a body two parsers read differently).
Each is refused here as a JSON syntax error, so FastAPI answers it as it answers any other one: 422
`json_invalid`, with `loc` pointing at (the first place that text appears in) the body.
"""

import json
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# Unicode's noncharacters: U+FDD0..U+FDEF, and the last two code points of every plane.
_NONCHARACTERS = frozenset(range(0xFDD0, 0xFDF0)) | {plane + last for plane in range(0, 0x110000, 0x10000)
                                                     for last in (0xFFFE, 0xFFFF)}  # fmt: skip


class _Refused(ValueError):
    def __init__(self, message: str, *spellings: str) -> None:
        super().__init__(message)
        self.spellings = spellings  # how it may be written in the body: where to point


def _where(text: str, spellings: tuple[str, ...]) -> int:
    """The first place one of `spellings` appears in `text` (any case), else its start."""
    found = (re.search(re.escape(spelling), text, re.IGNORECASE) for spelling in spellings)
    return min((match.start() for match in found if match), default=0)


def loads(body: bytes) -> Any:
    """The value of an I-JSON body; json.JSONDecodeError for anything else that decodes as text.

    A body that is not text in its encoding (UTF-8, or UTF-16/32 by their BOM-less patterns)
    raises UnicodeDecodeError, as json.loads does: FastAPI answers it 400.
    """
    text = body.decode(json.detect_encoding(body))  # strict: raw surrogate bytes are not UTF-8
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int,
                           object_pairs_hook=_members)  # fmt: skip
        _check_strings(value)
    except _Refused as refused:
        raise json.JSONDecodeError(str(refused), text, _where(text, refused.spellings)) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    return value


def _constant(name: str) -> float:
    raise _Refused(f"{name} is not a JSON number", name)


def _float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise _Refused(f"{literal} is beyond the range of a double", literal)
    return number


def _int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError:  # more digits than Python converts (4,300 by default)
        raise _Refused(f"an integer of {len(literal)} digits is too long", literal[:20]) from None


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            quoted = json.dumps(name)
            raise _Refused(f"the member {quoted} appears more than once", quoted)
        members[name] = value
    return members


def _check_strings(value: Any) -> None:
    if isinstance(value, str):
        for char in value:
            code = ord(char)
            if 0xD800 <= code <= 0xDFFF:
                escape = f"\\u{code:04x}"
                raise _Refused(f"a string holds a lone surrogate ({escape}), which is not Unicode text", escape)
            if code in _NONCHARACTERS:
                raise _Refused(f"a string holds the noncharacter U+{code:04X}", f"\\u{code:04x}", char)
    elif isinstance(value, dict):
        for name, member in value.items():
            _check_strings(name)
            _check_strings(member)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


class IJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class IJsonRoute(APIRoute):
    """A route whose JSON body is read by `loads`: FastAPI's documented way to change how a request is read."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def read_as_ijson(request: Request) -> Response:
            return await handler(IJsonRequest(request.scope, request.receive))

        return read_as_ijson
