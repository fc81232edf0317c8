"""The server entry: uvicorn's own command line, exiting 0 when SIGTERM stops it cleanly.

    python /opt/container/serve.py --host 0.0.0.0 --port 8000 [any uvicorn option]

The app is uvicorn's own setting, UVICORN_APP (`package.module:app`); an app factory adds
UVICORN_FACTORY=true. Every other option may come from the command line or a UVICORN_* variable.

Why not plain `uvicorn`: on SIGTERM uvicorn drains the requests in flight, runs the lifespan
shutdown, and then raises SIGTERM once more with the handler that was there before it started. With
Python's default that is death by SIGTERM: exit code 143 after a clean shutdown. As PID 1 the kernel
drops that second signal, so plain `uvicorn` exits 0 only by the accident of being PID 1; behind an
init (`docker run --init`, compose `init: true`) it exits 143, and so it does under QEMU, where the
emulator is PID 1. Here SIGTERM means "stop cleanly and exit 0", before uvicorn takes the signal
over (nothing to drain yet) and after it hands it back (drained).

And uvicorn's own refusals in JSON, `{"detail": ...}` as FastAPI's and the proxy's are: a request it
cannot parse (400: a control byte in a header, a raw non-ASCII path, which a proxy may pass on) and
one over `--limit-concurrency` (503) never reach the app, and uvicorn answers them in text/plain with
no setting to change it. Its two protocol classes' 400 writer and its 503 app are replaced here; the
test of each (tests/server/test_hostile_input.py) fails if an uvicorn release renames what is replaced.
"""

import importlib
import json
import signal
import sys
from types import FrameType
from typing import Any

import uvicorn.main

JSON = b"application/json"


def json_detail(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


def send_400_response(self: Any, msg: str) -> None:
    """uvicorn's 400 for what its parser refuses, in JSON: the same bytes whichever protocol parsed."""
    body = json_detail("invalid HTTP request")
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
    head += [b"content-type: " + JSON + b"\r\n", b"content-length: %d\r\n" % len(body), b"connection: close\r\n"]
    self.transport.write(b"".join(head) + b"\r\n" + body)
    self.transport.close()


async def service_unavailable(scope: Any, receive: Any, send: Any) -> None:
    """uvicorn's answer past --limit-concurrency, in JSON."""
    body = json_detail("the server is at its limit of connections: try again shortly")
    headers = [(b"content-type", JSON), (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# uvicorn's HTTP protocols; httptools is optional (uvicorn[standard] has it), h11 always there.
PROTOCOLS = {
    "uvicorn.protocols.http.h11_impl": "H11Protocol",
    "uvicorn.protocols.http.httptools_impl": "HttpToolsProtocol",
}


def json_refusals() -> None:
    for name, protocol_name in PROTOCOLS.items():
        try:
            module = importlib.import_module(name)
        except ImportError:  # httptools not installed: uvicorn cannot use that protocol either
            continue
        protocol = getattr(module, protocol_name)
        if not callable(getattr(protocol, "send_400_response", None)) or not hasattr(module, "service_unavailable"):
            raise RuntimeError(f"uvicorn changed {name}: container/serve.py's JSON refusals need a look")
        protocol.send_400_response = send_400_response
        module.service_unavailable = service_unavailable


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, exit_cleanly)
    json_refusals()
    uvicorn.main.main(args=sys.argv[1:], prog_name="serve.py")


if __name__ == "__main__":
    main()
