"""The data's way out: docs/scaling.md's recipe moves a SQLite database's links to PostgreSQL.

The recipe is read from the page and run as written, on links the app made on SQLite, against a real
PostgreSQL server: the page and the test cannot drift apart. Only what needs compose is stood in for:
the image's Python is this venv's Python (same code, the database's path instead of /data), the
postgres service's psql is this machine's psql on the test server, and `up` is the app started on it.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from shortener_app import keygen, schema
from shortener_app.config import Settings
from shortener_app.main import create_app
from tests.conftest import BASE_URL, postgres_database
from tests.helpers.repo import ROOT
from tests.helpers.required import unavailable

SCALING = ROOT / "docs" / "scaling.md"
LINKS = 20
# What the page runs through compose, and what stands in for it here.
STOP_THE_APP = "docker compose stop app"
START_THE_APP = "docker compose up --wait"
IMAGE_PYTHON = "docker run --rm -v shortener_data:/data shortener:slim python "
SERVICE_PSQL = "docker compose exec -T postgres psql -U shortener -d shortener "
# A session whose zone is not UTC, as a server may be set: the recipe must not depend on it.
NOT_UTC = "America/New_York"
TARGET = "https://example.com/own"


def recipe() -> list[str]:
    """The commands of docs/scaling.md's block that loads links with `\\copy`, continuation lines joined."""
    blocks = re.findall(r"^```sh\n(.*?)^```", SCALING.read_text(), re.MULTILINE | re.DOTALL)
    found = [block for block in blocks if "\\copy short_urls" in block]
    assert len(found) == 1, "docs/scaling.md has no one sh block that loads short_urls with \\copy"
    return [line.strip() for line in found[0].replace("\\\n", " ").splitlines() if line.strip()]


def without_the_sequence_step(commands: list[str]) -> list[str]:
    """The recipe as it was before: the same load, and the id sequence left at 1."""
    changed = [re.sub(r'\s+-c "SELECT setval\([^"]*"', "", command) for command in commands]
    assert changed != commands, "the recipe has no setval step to leave out"
    return changed


def run_the_recipe(commands: list[str], sqlite_file: Path, postgres_url: str, folder: Path) -> None:
    """Each command as written, but for the compose parts (module docstring); an unknown step fails."""
    libpq = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    env = {**os.environ, "PGTZ": NOT_UTC}
    for command in commands:
        if command in (STOP_THE_APP, START_THE_APP):
            continue  # the test's app on SQLite is stopped already; it starts the app on PostgreSQL itself
        if command.startswith(IMAGE_PYTHON):
            command = shlex.quote(sys.executable) + " " + command.removeprefix(IMAGE_PYTHON)
            command = command.replace("/data/shortener.db", str(sqlite_file))
        elif command.startswith(SERVICE_PSQL):
            command = f"psql {shlex.quote(libpq)} " + command.removeprefix(SERVICE_PSQL)
        elif not command.startswith("sqlite3 "):
            pytest.fail(f"docs/scaling.md's recipe has a step this test does not know how to run: {command}")
        result = subprocess.run(["sh", "-ec", command], cwd=folder, env=env, capture_output=True, text=True,
                                timeout=60, check=False)  # fmt: skip
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"


def app(db_url: str) -> TestClient:
    return TestClient(create_app(Settings(db_url=db_url, base_url=BASE_URL, env_name="test")), follow_redirects=False)


@pytest.fixture
def links_on_sqlite(tmp_path: Path) -> tuple[Path, list[dict]]:
    """A SQLite database with LINKS links the app made (clicked, one deactivated, one expiring), the app stopped."""
    for tool in ("sqlite3", "psql"):
        if shutil.which(tool) is None:
            unavailable(f"the recipe needs {tool}: apt-get install sqlite3 postgresql-client", "REQUIRE_POSTGRES")
    database = tmp_path / "data" / "shortener.db"
    db_url = f"sqlite:///{database}"
    schema.upgrade(db_url)
    with app(db_url) as client:
        links = []
        for number in range(LINKS):
            extra = {"expires_at": "2099-01-01T00:00:00Z"} if number == 1 else {}
            response = client.post("/url", json={"target_url": f'https://example.com/{number}?a=1,b="2"', **extra})
            assert response.status_code == 201, response.text
            links.append(response.json())
        for number in range(3):
            assert client.get(f"/{links[2]['key']}").status_code == 307, number
        links[3] = client.delete(links[3]["admin_url"].removeprefix(BASE_URL)).json()
        # The admin view writes the buffered clicks first: these are what the database holds.
        links = [client.get(link["admin_url"].removeprefix(BASE_URL)).json() for link in links]
    assert links[2]["clicks"] == 3 and links[3]["is_active"] is False
    return database, links


@pytest.fixture
def postgres_at_head() -> Iterator[str]:
    """An empty PostgreSQL database the migrate step brought to head, as compose's `up` leaves it."""
    with postgres_database() as url:
        schema.upgrade(url)
        yield url


def test_the_scaling_recipe_moves_sqlite_links_to_postgresql_and_the_app_creates_links(
    links_on_sqlite: tuple[Path, list[dict]], postgres_at_head: str, tmp_path: Path
) -> None:
    database, links = links_on_sqlite
    run_the_recipe(recipe(), database, postgres_at_head, tmp_path)
    with app(postgres_at_head) as client:
        # Every link moved as it was: the same answer from its admin secret, times included.
        moved = [client.get(link["admin_url"].removeprefix(BASE_URL)).json() for link in links]
        assert moved == links
        assert client.get(f"/{links[0]['key']}").status_code == 307
        assert client.get(f"/{links[3]['key']}").status_code == 404, "a deactivated link stays deactivated"
        # New links, after the moved ones: the id sequence was carried past them.
        random_key = client.post("/url", json={"target_url": "https://example.com/new"})
        assert random_key.status_code == 201, random_key.text
        custom_key = client.post("/url", json={"target_url": TARGET, "key": "moved-then-mine"})
        assert custom_key.status_code == 201, custom_key.text
        # A moved link's key (a deactivated one's too) is still taken.
        for link in (links[0], links[3]):
            taken = client.post("/url", json={"target_url": "https://example.com/again", "key": link["key"]})
            assert taken.status_code == 409 and taken.json() == {"detail": f"the key {link['key']!r} is taken"}


def test_without_the_sequence_step_creation_fails_as_json_and_never_as_a_false_409(
    links_on_sqlite: tuple[Path, list[dict]], postgres_at_head: str, tmp_path: Path
) -> None:
    """The recipe as it was (no setval): each new link's id is a moved link's. That conflict is not the
    key's, so it is neither a retry with another key nor "taken": the database's fault, the JSON 503."""
    database, _ = links_on_sqlite
    run_the_recipe(without_the_sequence_step(recipe()), database, postgres_at_head, tmp_path)
    with app(postgres_at_head) as client:
        for request in ({"target_url": "https://example.com/new"}, {"target_url": TARGET, "key": "free-key"}):
            response = client.post("/url", json=request)
            assert response.status_code == 503, f"{request}: {response.status_code} {response.text}"
            assert response.headers["content-type"] == "application/json" and "Retry-After" in response.headers


def test_no_free_random_key_is_answered_in_json(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key drawn taken: a JSON answer that says what the client can do, not a plain-text 500."""
    first = client.post("/url", json={"target_url": "https://example.com/first"}).json()
    monkeypatch.setattr(keygen, "random_key", lambda _length: first["key"])
    response = client.post("/url", json={"target_url": "https://example.com/second"})
    assert response.status_code == 500 and response.headers["content-type"] == "application/json", response.text
    assert "a key of your own" in response.json()["detail"]
