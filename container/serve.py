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
"""

import signal
import sys
from types import FrameType

import uvicorn.main


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, exit_cleanly)
    uvicorn.main.main(args=sys.argv[1:], prog_name="serve.py")


if __name__ == "__main__":
    main()
