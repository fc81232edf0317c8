"""The container's health probe: exits 0 when GET /health answers 200, with the standard library only.

    python /opt/container/healthcheck.py [seconds to wait for the port to open; default 2]

Docker runs it inside the container, so the image needs no curl or wget. While the server is still
starting, nothing listens on its port yet: the probe then keeps knocking for a while, so Docker sees
the container healthy the moment the server answers rather than one probe interval later. Any
answer other than 200, or no answer within the timeout, fails at once. An app whose endpoint is
elsewhere changes PATH; one on another port changes PORT (and EXPOSE and the CMD with it).
"""

import http.client
import sys
import time

HOST, PORT, PATH = "127.0.0.1", 8000, "/health"
WAIT_SECONDS = 2.0
TIMEOUT_SECONDS = 2.0


def probe(host: str = HOST, port: int = PORT, wait: float = WAIT_SECONDS) -> bool:
    """True when GET PATH answers 200; waits up to `wait` seconds for the port to open."""
    deadline = time.monotonic() + wait
    while True:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("GET", PATH)
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
