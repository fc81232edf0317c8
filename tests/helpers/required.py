"""Required or skipped: a test that needs a tool skips and says how to get it, unless its REQUIRE_ flag is set."""

import os
from typing import NoReturn

import pytest


def required(flag: str) -> bool:
    return os.environ.get(flag, "") not in ("", "0")


POSTGRES_HINT = (
    "no PostgreSQL server: apt-get install postgresql (Debian/Ubuntu; `make test` then starts a throwaway "
    "server with tests/with-test-postgres), or set TEST_POSTGRES_URL=postgresql+psycopg://user@127.0.0.1:port/db"
)

# How to get what each REQUIRE_... flag stands for, added to a skip whose reason does not say how
# (does not mention an install already).
HOW_TO_GET = {
    "REQUIRE_DOCKER": "install Docker Engine 25+ with buildx and compose (Docker Desktop; "
    "on Debian 12, .ci/install-docker-tools)",
    "REQUIRE_POSTGRES": "apt-get install postgresql (tests/with-test-postgres starts a throwaway server)",
    "REQUIRE_BROWSER": "apt-get install chromium, or set CHROMIUM_PATH",
    "REQUIRE_NODE": "install Node.js 18+ with npm (apt-get install nodejs npm), then run make test again",
    "REQUIRE_ACME": "apt-get install pebble certbot (Let's Encrypt's test ACME server and the ACME client)",
    "REQUIRE_AUDIT": "run it where pip-audit's advisory data (PyPI's) answers, as on GitHub's runners",
    "REQUIRE_ALPINE_ARM64": "serve python:3.13-alpine for both platforms: .ci/make-standin-alpine --platform "
    "linux/arm64, then .ci/standin-registry (or a registry that serves the official image, as on GitHub's runners)",
}


def unavailable(reason: str, flag: str) -> NoReturn:
    """Skip, saying why and how to get what is missing; fail instead when `flag` (e.g. REQUIRE_DOCKER=1) is set."""
    how = HOW_TO_GET.get(flag)
    if how and "install" not in reason:
        reason = f"{reason}; to run it: {how}"
    if required(flag):
        pytest.fail(f"{reason} (and {flag}=1 says it must run)")
    pytest.skip(f"{reason} ({flag}=1 makes this a failure)")
