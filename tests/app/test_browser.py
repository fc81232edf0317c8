"""The demo page in a real browser: shorten a URL, see the links, follow the short one."""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import api_docs_operations, chromium_path, serve_target, shorten_and_follow
from tests.helpers.server import free_port, uvicorn_server

pytestmark = pytest.mark.browser


@pytest.fixture
def target_site(tmp_path: Path) -> Iterator[str]:
    with serve_target(tmp_path) as url:
        yield url


def test_the_demo_page_shortens_a_url_and_the_link_leads_to_it(tmp_path: Path, target_site: str) -> None:
    executable = chromium_path()
    port = free_port()
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db", "BASE_URL": f"http://localhost:{port}"}
    with uvicorn_server(env, tmp_path / "server.log", port=port) as server:
        seen = shorten_and_follow(f"{server.url}/", f"{target_site}/landing.html", executable, csp=True)
    assert seen["csp_violations"] == "", seen["csp_violations"]
    assert seen["short"].startswith(f"http://localhost:{port}/")
    assert "/admin/" in seen["admin"]
    assert seen["landed"] == "Landed"
    assert seen["served_by"] == socket.gethostname()
    assert seen["admin_page"] == "Your short link: deactivated"


def test_the_api_docs_render_every_operation_offline_under_the_csp(tmp_path: Path) -> None:
    """Swagger UI from the app itself, not a CDN (none is reachable here), started by a script file."""
    executable = chromium_path()
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db"}
    with uvicorn_server(env, tmp_path / "server.log") as server:
        operations, violations = api_docs_operations(f"{server.url}/docs", executable)
    assert violations == "", violations
    assert operations >= 5, f"Swagger UI rendered {operations} operations"
