"""`python -m shortener_app [uvicorn options]`: uvicorn's own command line for this app, exiting 0 on SIGTERM.

uvicorn catches SIGTERM, drains the requests in flight, runs the lifespan shutdown (which writes the
buffered clicks), and then raises SIGTERM once more with the handler that was there before it
started, so that "the expected behaviour" follows. With Python's default that is death by
SIGTERM: exit code 143 after a complete, clean shutdown. As PID 1 in a container the kernel drops
that second signal, so a plain `uvicorn` CMD exits 0 only by accident of being PID 1; behind an
init (`docker run --init`, compose `init: true`) it exits 143, and under QEMU (an arm64 image on an
amd64 host) the emulator itself is PID 1 and plays the signal's default action on its own.

Here the expected behaviour is said out loud: SIGTERM means "stop cleanly and exit 0", both before
uvicorn takes the signal over (nothing to drain yet) and after it hands it back (drained).
"""

import signal
import sys
from types import FrameType

import uvicorn.main

# The ASGI app of the package this file is in: copied into another package whose app is
# `main:app` (docs/own-app.md), it serves that one with no edit.
APP = f"{__package__}.main:app"


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, exit_cleanly)
    uvicorn.main.main(args=[APP, *sys.argv[1:]], prog_name=f"python -m {__package__}")


if __name__ == "__main__":
    main()
