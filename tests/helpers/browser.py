"""A real browser (Debian's Chromium, driven by Playwright): the demo page used as a person would."""

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .repo import ROOT
from .required import unavailable
from .server import free_port

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Locator, Page, Route

CHROMIUM_FLAGS = [
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No network but loopback here: keep Chromium from calling home.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(path).exists():
        unavailable(
            f"no Chromium at {path} (Debian: apt-get install chromium; or set CHROMIUM_PATH)", "REQUIRE_BROWSER"
        )
    return path


@contextmanager
def serve_target(folder: Path) -> Iterator[str]:
    """A page on loopback for the short link to lead to."""
    (folder / "landing.html").write_text("<title>Landed</title><h1>You followed the short link</h1>")
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(SimpleHTTPRequestHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


# The Content-Security-Policy the front door sends (container/proxy/), read from its config: the
# pages must work under it, with no inline script, whether or not a proxy is in front.
CSP = re.search(
    r'add_header Content-Security-Policy "([^"]+)" always;',
    (ROOT / "container" / "proxy" / "security-headers.conf").read_text(),
)[1]  # type: ignore[index]


def enforce_csp(page: "Page", origin: str, violations: list[str]) -> None:
    """Every answer from `origin` carries CSP, as the proxy adds it; what the browser refuses is collected."""

    def with_policy(route: "Route") -> None:
        answer = route.fetch(max_redirects=0)
        route.fulfill(response=answer, headers={**answer.headers, "content-security-policy": CSP})

    def refused(message: "ConsoleMessage") -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.route(f"{origin}/**", with_policy)
    page.on("console", refused)


def refused_then_shortened(page: "Page", field: "Locator", refused: str, accepted: str, reason: str) -> None:
    """Submit the form with `refused` in `field`: the page shows the server's reason. Then with
    `accepted`: the short link shows, and the error is gone."""
    from playwright.sync_api import expect

    field.fill(refused)
    page.get_by_role("button", name="Shorten").click()
    expect(page.locator("#error")).to_have_text(reason)
    field.fill(accepted)
    page.get_by_role("button", name="Shorten").click()
    expect(page.locator("#short-link")).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()


def shorten_and_follow(page_url: str, target: str, executable: str, *, csp: bool = False) -> dict[str, str]:
    """Drive the page as a person would (under the CSP, if asked); return what they saw."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            violations: list[str] = []
            if csp:
                enforce_csp(page, page_url.rstrip("/"), violations)
            page.goto(page_url)
            # Which process answered, read from the process itself.
            expect(page.locator("#served-by")).to_be_visible()
            served_by = page.locator("#served-by").inner_text()
            # The image's version, where the process has one (IMAGE_VERSION, set in the image only).
            image = page.locator("#image-version").inner_text() if page.locator("#image").is_visible() else ""
            url_field = page.get_by_label("URL to shorten")
            refused_then_shortened(page, url_field, "ftp://files.example.com/", target,
                                   "only http and https URLs can be shortened")  # fmt: skip
            short = page.locator("#short-link")
            seen = {"short": short.inner_text(), "admin": page.locator("#admin-link").inner_text()}
            short.click()
            page.wait_for_url(target)
            seen["landed"] = page.title()
            seen["served_by"] = served_by
            seen["image_version"] = image
            # The admin link, opened in the browser: a page, with the click counted and a way to deactivate.
            page.goto(page_url.rstrip("/") + urlsplit(seen["admin"]).path)
            expect(page.locator("#clicks")).to_have_text("1")
            expect(page.locator("#state")).to_have_text("active")
            page.get_by_role("button", name="Deactivate this link").click()
            expect(page.locator("#state")).to_have_text("deactivated")
            expect(page.get_by_role("button", name="Deactivate this link")).to_be_hidden()
            seen["admin_page"] = f"{page.title()}: {page.locator('#state').inner_text()}"
            seen["csp_violations"] = "\n".join(violations)
            return seen
        finally:
            browser.close()


def rendered_under_the_csp(url: str, executable: str, selector: str) -> tuple[int, list[str]]:
    """Open an API docs page (Swagger UI, ReDoc) under the CSP; how many `selector` elements it
    renders from /openapi.json (one per operation), and each thing the browser refused."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            violations: list[str] = []
            enforce_csp(page, url.rsplit("/", 1)[0], violations)
            page.goto(url)
            rendered = page.locator(selector)
            rendered.first.wait_for(timeout=15_000)
            page.wait_for_load_state("networkidle")
            return rendered.count(), violations
        finally:
            browser.close()


def shorten_with_an_expiry(page_url: str, target: str, executable: str, local_time: str, timezone: str) -> dict:
    """Fill the page's expiry field in the visitor's time zone: first a past time (refused), then
    `local_time`; return what the page and the admin page showed, and what the API stored."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(timezone_id=timezone).new_page()
            violations: list[str] = []
            enforce_csp(page, page_url.rstrip("/"), violations)
            page.goto(page_url)
            page.get_by_label("URL to shorten").fill(target)
            refused_then_shortened(page, page.get_by_label("expires at"), "2001-02-03T04:05", local_time,
                                   "expires_at must be in the future")  # fmt: skip
            seen = {"shown": page.locator("#expires-at").inner_text()}
            admin = urlsplit(page.locator("#admin-link").inner_text()).path
            seen["stored"] = page.request.get(page_url.rstrip("/") + admin).json()["expires_at"]
            page.goto(page_url.rstrip("/") + admin)
            expect(page.locator("#state")).to_have_text("active")
            seen["admin_page"] = page.locator("#expires").inner_text()
            seen["csp_violations"] = "\n".join(violations)
            return seen
        finally:
            browser.close()
