"""Nothing is half done: a request whose answer says it failed wrote nothing, and a click is counted
only for a redirect that was sent. A silent database fails fast, with a JSON 503.

Real uvicorn with the image's flags; the faults are real: a PostgreSQL server of the test's own
frozen with SIGSTOP (what `docker pause` does), and the app's own process frozen the same way while
requests wait in its accept queue, stamped with X-Request-Start as the front door stamps them.
REQUEST_TIMEOUT_SECONDS is 3 here (10 in the image) to keep the test short.

Before the fix, with PostgreSQL frozen every create and every uncached redirect hung until the thaw,
then the creates committed (links whose clients were refused) and the redirects counted clicks; the
frozen app, thawed, carried out every queued request the front door had already answered 504.
"""

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers.faults import OwnPostgres, note
from tests.helpers.server import Server, image_server_flags, uvicorn_server, wait_until_healthy
from tests.server.test_faults_health import env_for

TIMEOUT = 3
# The answer comes at the deadline; this bounds "within a few seconds" on a loaded machine.
ANSWER_BOUND_SECONDS = TIMEOUT + 4
IN_FLIGHT = 5


def stamp() -> dict[str, str]:
    """The header the front door adds (container/proxy/http.conf): when it received the request."""
    return {"X-Request-Start": f"t={time.time():.3f}"}


async def _in_flight(url: str, creates: list[str], redirects: list[str]) -> list[tuple[float, httpx.Response]]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def timed(request: httpx.Request) -> tuple[float, httpx.Response]:
            started = time.monotonic()
            response = await client.send(request)
            return time.monotonic() - started, response

        body = {"target_url": "https://example.com/"}
        requests = [client.build_request("POST", "/url", json={**body, "key": key}, headers=stamp()) for key in creates]
        requests += [client.build_request("GET", f"/{key}", headers=stamp()) for key in redirects]
        return await asyncio.gather(*(timed(request) for request in requests))


def clicks(server: Server, secret: str) -> int:
    return int(httpx.get(f"{server.url}/admin/{secret}", timeout=10).json()["clicks"])


def assert_refused_in_time(answers: list[tuple[float, httpx.Response]], bound: float) -> None:
    for took, response in answers:
        assert response.status_code == 503, f"{response.request.method} {response.request.url}: {response.text}"
        assert response.headers["content-type"] == "application/json" and response.headers["retry-after"]
        assert took < bound, f"{response.request.url} answered after {took:.1f} s"


def test_a_frozen_postgresql_gets_json_503s_in_seconds_and_no_write_lands_after_the_thaw(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    with (
        OwnPostgres() as postgres,
        uvicorn_server(
            env_for(postgres.url, REQUEST_TIMEOUT_SECONDS=str(TIMEOUT)), tmp_path / "server.log", *image_server_flags()
        ) as server,  # fmt: skip
    ):
        cached = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/cached"}).json()
        uncached = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/uncached"}).json()
        assert httpx.get(f"{server.url}/{cached['key']}").status_code == 307  # now in the redirect cache
        keys = [f"frozen-db-{n}" for n in range(IN_FLIGHT)]
        postgres.freeze()
        try:
            answers = asyncio.run(_in_flight(server.url, keys, [uncached["key"]] * IN_FLIGHT))
            from_cache = [httpx.get(f"{server.url}/{cached['key']}", timeout=5).status_code for _ in range(IN_FLIGHT)]
        finally:
            postgres.thaw()
        wait_until_healthy(server.url, 15)
        created = {key: httpx.get(f"{server.url}/{key}").status_code for key in keys}
        counted = clicks(server, uncached["admin_url"].rsplit("/", 1)[1])
        retried = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/", "key": keys[0]})
    note(f"frozen PostgreSQL: {len(answers)} answers, slowest {max(took for took, _ in answers):.2f} s")
    assert_refused_in_time(answers, ANSWER_BOUND_SECONDS)
    assert from_cache == [307] * IN_FLIGHT, "cached redirects go on while the database is frozen"
    assert set(created.values()) == {404}, f"links whose clients were told 503, after the thaw: {created}"
    # The uncached link's only GETs were the refused ones (and the admin reads, which count none).
    assert counted == 0, f"{counted} clicks counted for redirects never sent"
    assert retried.status_code == 201, "a client's retry of a refused create succeeds"


def test_requests_that_waited_past_their_deadline_in_a_frozen_app_write_nothing_and_count_no_click(
    tmp_path: Path,
) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'links.db'}", REQUEST_TIMEOUT_SECONDS=str(TIMEOUT))
    with uvicorn_server(env, tmp_path / "server.log", *image_server_flags()) as server:
        link = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).json()
        secret = link["admin_url"].rsplit("/", 1)[1]
        assert httpx.get(f"{server.url}/{link['key']}").status_code == 307  # cached: the fast path
        before = clicks(server, secret)
        keys = [f"frozen-app-{n}" for n in range(IN_FLIGHT)]
        server.process.send_signal(signal.SIGSTOP)
        try:
            pending = asyncio.run(_send_then_thaw(server, keys, [link["key"]] * IN_FLIGHT))
        finally:
            server.process.send_signal(signal.SIGCONT)
        created = {key: httpx.get(f"{server.url}/{key}").status_code for key in keys}
        after = clicks(server, secret)
        log = server.output()
    assert_refused_in_time(pending, TIMEOUT + ANSWER_BOUND_SECONDS)
    assert set(created.values()) == {404}, f"links created for requests already past their deadline: {created}"
    assert after == before, f"{after - before} clicks counted for redirects refused as late"
    assert "request refused: it reached the app" in log


async def _send_then_thaw(
    server: Server, creates: list[str], redirects: list[str]
) -> list[tuple[float, httpx.Response]]:
    """Requests sent to the frozen app; it thaws after their deadline has passed."""
    requests = asyncio.ensure_future(_in_flight(server.url, creates, redirects))
    await asyncio.sleep(TIMEOUT + 1)  # the fault's length, not a wait for an event: the app is frozen
    server.process.send_signal(signal.SIGCONT)
    return await requests
