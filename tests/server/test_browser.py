"""The demo page in a real browser: shorten a URL, see the links, follow the short one, set an expiry."""

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers.browser import (
    chromium_path,
    rendered_under_the_csp,
    serve_target,
    shorten_and_follow,
    shorten_with_an_expiry,
)
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
    assert seen["image_version"] == "", "no image, no image version"
    assert seen["admin_page"] == "Your short link: deactivated"


def test_the_demo_pages_expiry_is_the_visitors_local_time_stored_in_utc_and_shown_on_the_admin_page(
    tmp_path: Path, target_site: str
) -> None:
    """datetime-local has no offset: the page sends the visitor's local time as UTC. In Paris in
    June (UTC+2), 12:30 is 10:30 UTC; a past time is refused with the API's own words."""
    executable = chromium_path()
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db"}
    with uvicorn_server(env, tmp_path / "server.log") as server:
        seen = shorten_with_an_expiry(f"{server.url}/", f"{target_site}/landing.html", executable,
                                      "2099-06-01T12:30", "Europe/Paris")  # fmt: skip
    assert seen["csp_violations"] == "", seen["csp_violations"]
    assert datetime.fromisoformat(seen["stored"]) == datetime(2099, 6, 1, 10, 30, tzinfo=UTC)
    assert "2099" in seen["shown"] and "12:30" in seen["shown"], seen
    assert seen["admin_page"] == seen["shown"], "the admin page shows the expiry as the demo page did"


def test_the_api_docs_render_every_operation_offline_under_the_csp(tmp_path: Path) -> None:
    """Swagger UI from the app itself, not a CDN (none is reachable here), started by a script file."""
    executable = chromium_path()
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db"}
    with uvicorn_server(env, tmp_path / "server.log") as server:
        operations, violations = rendered_under_the_csp(f"{server.url}/docs", executable, ".opblock")
    assert violations == [], violations
    assert operations >= 5, f"Swagger UI rendered {operations} operations"


# ReDoc's menu always shows Redocly's logo from their CDN; the CSP refuses it (no third-party requests
# from these pages) and ReDoc then hides it. That refusal is the policy working, and the only one allowed.
REDOCLY_LOGO = "cdn.redoc.ly/redoc/logo-mini.svg"


def test_redoc_renders_every_operation_offline_under_the_csp_and_is_refused_only_the_cdn_logo(tmp_path: Path) -> None:
    """Before: ReDoc's search ran in a worker made from a blob: URL, which `script-src 'self'` refuses."""
    executable = chromium_path()
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db"}
    with uvicorn_server(env, tmp_path / "server.log") as server:
        operations, violations = rendered_under_the_csp(
            f"{server.url}/redoc", executable, "[data-section-id^='operation/']"
        )
    assert [v for v in violations if REDOCLY_LOGO not in v] == [], violations
    assert operations >= 5, f"ReDoc rendered {operations} operations"
