"""Release 1.0.0, the last release before migrations, as its users run it: its code and files taken
from git, and the links a user of it has made. The upgrade tests start from it (tests/server/test_upgrade.py
with processes, tests/deploy with compose and Swarm)."""

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import httpx
import pytest

from .repo import ROOT

# The last commit before migrations: release 1.0.0's models, made with create_all at every start.
RELEASE_1 = "201f55583b66fe0d0e02e38af8f533ca0113c6a4"


def export_release_1(folder: Path, *paths: str) -> Path:
    """Release 1.0.0's tracked files (all, or only `paths`) written into `folder`; skips in a shallow clone."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", RELEASE_1, *paths], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        pytest.skip(f"release 1.0.0 ({RELEASE_1[:7]}) is not in this clone's history (a shallow clone?)")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def admin_path(link: dict) -> str:
    """The admin link's path, whatever BASE_URL the service was given."""
    return "/" + link["admin_url"].split("/", 3)[3]


def fill(url: str) -> list[dict]:
    """Links of every kind, through the API: random and custom keys, clicks, deactivated links."""
    links = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for number in range(8):
            body = {"target_url": f"https://example.com/page/{number}"}
            if number % 3 == 0:
                body["key"] = f"custom-{number}"
            link = client.post("/url", json=body).json()
            for _ in range(number):
                assert client.get(f"/{link['key']}").status_code == 307
            if number in (2, 5):
                assert client.delete(admin_path(link)).json()["is_active"] is False
            links.append(link)
    return links


def assert_served_as_before(url: str, links: list[dict]) -> None:
    """Every key, target, admin secret, click count and state of `fill`'s links, as they were."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for number, link in enumerate(links):
            info = client.get(admin_path(link)).json()
            assert (info["key"], info["clicks"], info["is_active"]) == (link["key"], number, number not in (2, 5))
            assert info["target_url"] == link["target_url"]
            answer = client.get(f"/{link['key']}")
            if number in (2, 5):
                assert answer.status_code == 404
            else:
                assert (answer.status_code, answer.headers["location"]) == (307, link["target_url"])
