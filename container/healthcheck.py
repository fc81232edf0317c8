"""The container's health probe: exits 0 when GET /health answers 200, with the standard library only.

    python /opt/container/healthcheck.py [seconds to wait for the port to open; default 2]

Docker runs it inside the container, so the image needs no curl or wget. While the server is still
starting, nothing listens on its port yet: the probe then keeps knocking for a while, so Docker sees
the container healthy the moment the server answers rather than one probe interval later. Any
answer other than 200, or no answer within the timeout, fails at once.

Settings, not edits: HEALTH_PATH (default /health) is the path it asks, HEALTH_PORT (default 8000)
the port; an app whose endpoint is elsewhere sets them with ENV in its Dockerfile.
"""

import http.client
import os
import sys
import time

HOST = "127.0.0.1"
# The defaults; HEALTH_PORT and HEALTH_PATH in the environment set others.
PORT, PATH = 8000, "/health"
WAIT_SECONDS = 2.0
TIMEOUT_SECONDS = 2.0


def probe(host: str = HOST, port: int | None = None, wait: float = WAIT_SECONDS, path: str | None = None) -> bool:
    """True when GET `path` (HEALTH_PATH) answers 200 on `port` (HEALTH_PORT); waits up to `wait`
    seconds for the port to open."""
    port = port or int(os.environ.get("HEALTH_PORT", PORT))
    path = path or os.environ.get("HEALTH_PATH", PATH)
    deadline = time.monotonic() + wait
    while True:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == 200
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()


if __name__ == "__main__":
    sys.exit(0 if probe(wait=float(sys.argv[1]) if len(sys.argv) > 1 else WAIT_SECONDS) else 1)
