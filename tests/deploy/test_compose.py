"""compose.yaml: valid, safe by default, keeping its data across down/up until `down -v`, and upgrading
the data release 1.0.0 wrote by `docker compose up` of the new code."""

import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.engine import base_available, docker, present_or_pulled
from tests.helpers.faults import note
from tests.helpers.release import assert_served_as_before, export_release_1, fill
from tests.helpers.repo import ROOT, working_copy
from tests.helpers.required import unavailable
from tests.helpers.server import free_port

pytestmark = pytest.mark.docker


# The oldest Compose the compose files work with: compose.tls.yaml's `!override` came in 2.24.4
# (docs/compose.md; the workshop's pre-flight asks for the same).
COMPOSE_MINIMUM = (2, 24, 4)


def require_compose() -> None:
    if shutil.which("docker") is None:
        unavailable("docker compose is not installed (.ci/install-docker-tools)", "REQUIRE_DOCKER")
    version = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False)
    if version.returncode:
        unavailable("docker compose is not installed (.ci/install-docker-tools)", "REQUIRE_DOCKER")
    have = tuple(int(re.match(r"\d*", part)[0] or 0) for part in version.stdout.strip().lstrip("v").split(".")[:3])
    if have < COMPOSE_MINIMUM:
        unavailable(f"Docker Compose {version.stdout.strip()} is older than {'.'.join(map(str, COMPOSE_MINIMUM))}, "
                    "the oldest these compose files work with (docs/compose.md)", "REQUIRE_DOCKER")  # fmt: skip


def compose(*args: str, env: dict[str, str] | None = None, project: str | None = None, cwd: Path = ROOT) -> str:
    command = ["docker", "compose", *(["-p", project] if project else []), *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.parametrize("profile", [[], ["--profile", "postgres"]], ids=["default", "postgres"])
def test_compose_config_is_valid(profile: list[str]) -> None:
    require_compose()
    compose(*profile, "config", "--quiet")


def test_only_the_proxy_is_published_loopback_only_and_the_app_is_hardened() -> None:
    require_compose()
    import json

    services = json.loads(compose("config", "--format", "json"))["services"]
    app, proxy = services["app"], services["proxy"]
    assert "ports" not in app, "the app is published: clients could go around the proxy"
    assert [(p["host_ip"], p["target"]) for p in proxy["ports"]] == [("127.0.0.1", 8080)]
    assert app["read_only"] is True and app["cap_drop"] == ["ALL"]
    assert app["security_opt"] == ["no-new-privileges:true"] and app["tmpfs"] == ["/tmp:size=16m"]
    assert app["restart"] == "unless-stopped"
    grace = int(app["stop_grace_period"].rstrip("s"))
    assert grace > 5, "the stop grace period must outlast uvicorn's 5 s graceful shutdown"


def tmpfs_sizes(compose_file: Path) -> dict[str, list[str | int | None]]:
    """Each service's tmpfs mounts and their sizes (None: no size, so bounded only by the host's RAM)."""
    import yaml

    class ComposeLoader(yaml.SafeLoader):
        """Compose's merge tags (!override, !reset) read as the value they tag."""

    def untagged(loader: yaml.SafeLoader, node: yaml.Node) -> object:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    for tag in ("!override", "!reset"):
        ComposeLoader.add_constructor(tag, untagged)
    sizes: dict[str, list[str | int | None]] = {}
    document = yaml.load(compose_file.read_text(), ComposeLoader)  # noqa: S506 - a SafeLoader, two tags added
    for name, service in (document.get("services") or {}).items():
        found: list[str | int | None] = []
        for entry in service.get("tmpfs") or []:  # short syntax: "/tmp:size=64m"
            options = entry.partition(":")[2].split(",")
            found.append(next((option.removeprefix("size=") for option in options if "size=" in option), None))
        for mount in service.get("volumes") or []:  # long syntax: type tmpfs, tmpfs.size
            if isinstance(mount, dict) and mount.get("type") == "tmpfs":
                found.append((mount.get("tmpfs") or {}).get("size"))
        if found:
            sizes[name] = found
    return sizes


def test_every_tmpfs_of_every_compose_and_stack_file_has_a_size() -> None:
    """A tmpfs is RAM: without a size, 100 slow readers of a large file through the proxy put 142 MB
    into its /tmp (the hostile run). The demo's, the TLS profile's and the Swarm stack's files."""
    files = [ROOT / "compose.yaml", ROOT / "compose.tls.yaml", ROOT / "deploy" / "swarm" / "compose.yaml"]
    sizes = {str(path.relative_to(ROOT)): tmpfs_sizes(path) for path in files}
    assert sizes["compose.yaml"].keys() >= {"app", "proxy"} and sizes["deploy/swarm/compose.yaml"].keys() >= {
        "app", "lb"}, sizes  # fmt: skip
    unbounded = {file: service for file, found in sizes.items() for service, mounts in found.items() if None in mounts}
    assert unbounded == {}, f"tmpfs with no size: {unbounded}"


def test_the_env_command_makes_a_password_once_and_keeps_it_when_run_again(tmp_path: Path) -> None:
    """The command postgres.env.example gives, run twice as a user would: the second run must not
    replace the password the pgdata volume was made with. Before: it wrote a new one every time."""
    (line,) = [line for line in (ROOT / "postgres.env.example").read_text().splitlines() if "> .env" in line]
    shutil.copy(ROOT / "postgres.env.example", tmp_path / "postgres.env.example")
    passwords = []
    for _ in range(2):
        subprocess.run(["sh", "-c", line.lstrip("# ")], cwd=tmp_path, check=True)
        passwords.append(re.search(r"^POSTGRES_PASSWORD=(.*)$", (tmp_path / ".env").read_text(), re.MULTILINE)[1])
    assert re.fullmatch(r"[0-9a-f]{32}", passwords[0]), passwords
    assert passwords[1] == passwords[0], "running the command again replaced the password"


def test_postgres_env_example_switches_the_app_to_postgres(tmp_path: Path) -> None:
    require_compose()
    env_file = tmp_path / "postgres.env"
    env_file.write_text(
        (ROOT / "postgres.env.example").read_text().replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=pw1\n")
    )
    rendered = compose("--env-file", str(env_file), "config")
    assert "DB_URL: postgresql+psycopg://shortener:pw1@postgres:5432/shortener" in rendered
    assert "image: postgres:17-trixie" in rendered, "the postgres profile was not switched on"
    assert 'WITH_POSTGRES: "1"' in rendered, "the app image would be built without PostgreSQL's driver"
    assert "pw1" not in (ROOT / "compose.yaml").read_text()


@pytest.fixture
def stack(docker_engine: None) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A project name and port no user's own stack uses; torn down with its volumes afterwards."""
    require_compose()
    if reason := base_available("slim"):
        pytest.skip(reason)
    project = f"shortener-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**__import__("os").environ, "PORT": str(port)}
    env.pop("COMPOSE_PROFILES", None)
    env.pop("WITH_POSTGRES", None)
    try:
        yield project, f"http://127.0.0.1:{port}", env
    finally:
        subprocess.run(["docker", "compose", "-p", project, "down", "-v", "--remove-orphans"], cwd=ROOT,
                       capture_output=True, env=env, check=False)  # fmt: skip


def test_the_default_stack_comes_up_healthy_and_keeps_its_data(stack: tuple[str, str, dict[str, str]]) -> None:
    project, url, env = stack
    compose("up", "-d", "--build", "--wait", env=env, project=project)
    container = compose("ps", "-q", "app", env=env, project=project).strip()
    assert docker("exec", container, "id", "-u").strip() == "5678"
    assert docker("inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", container).strip() == "true"
    with httpx.Client(base_url=url) as client:
        link = client.post("/url", json={"target_url": "https://example.com/kept"}).json()
        assert link["url"].startswith(url.replace("127.0.0.1", "localhost"))
        assert client.get(f"/{link['key']}").status_code == 307
        admin = link["admin_url"].split(str(env["PORT"]), 1)[1]
        assert client.get(admin).json()["clicks"] == 1

    compose("down", env=env, project=project)
    compose("up", "-d", "--wait", env=env, project=project)
    with httpx.Client(base_url=url) as client:
        assert client.get(admin).json()["clicks"] == 1, "the data did not survive down + up"

    compose("down", "-v", env=env, project=project)
    assert project not in docker("volume", "ls", "-q"), "down -v left the volume"
    compose("up", "-d", "--wait", env=env, project=project)
    with httpx.Client(base_url=url) as client:
        assert client.get(admin).status_code == 404, "down -v did not remove the data"


def test_the_demo_page_works_through_the_compose_stack(stack: tuple[str, str, dict[str, str]], tmp_path: Path) -> None:
    from tests.helpers.browser import chromium_path, serve_target, shorten_and_follow

    project, url, env = stack
    executable = chromium_path()
    compose("up", "-d", "--build", "--wait", env=env, project=project)
    with serve_target(tmp_path) as target_site:
        seen = shorten_and_follow(f"{url}/", f"{target_site}/landing.html", executable)
    assert seen["landed"] == "Landed"
    # compose builds without a VERSION argument: the Dockerfile's default.
    assert seen["image_version"] == "dev"


POSTGRES_IMAGE = "postgres:17-trixie"


@pytest.fixture
def postgres_demo(tmp_path: Path, docker_engine: None) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """A copy of the repository with the README's `.env` (postgres.env.example and a password).

    The copy gets a compose.override.yaml (compose reads it by itself) that only renames the app's
    image, so the build never replaces anyone's shortener:slim; the port is a free one.
    """
    require_compose()
    if reason := base_available("slim"):
        pytest.skip(reason)
    if not present_or_pulled(POSTGRES_IMAGE):
        unavailable(f"{POSTGRES_IMAGE} is not local and no registry answers: .ci/make-standin-postgres "
                    "builds a stand-in from Debian's postgresql-17", "REQUIRE_DOCKER")  # fmt: skip
    unique = uuid.uuid4().hex[:8]
    project, image, port = f"shortener-test-pg-{unique}", f"shortener-test-pg-{unique}:slim", free_port()
    # The migrate step runs the app's image: renamed alike.
    override = f"services:\n  app:\n    image: {image}\n  migrate:\n    image: {image}\n"
    repo = working_copy(tmp_path / "repo", {"compose.override.yaml": override})
    password = uuid.uuid4().hex
    shutil.copy(repo / "postgres.env.example", repo / ".env")
    dot_env = repo / ".env"
    dot_env.write_text(dot_env.read_text().replace("POSTGRES_PASSWORD=\n", f"POSTGRES_PASSWORD={password}\n"))
    env = {name: value for name, value in os.environ.items()
           if name not in ("COMPOSE_PROFILES", "WITH_POSTGRES", "POSTGRES_PASSWORD", "SHORTENER_DB_URL")}  # fmt: skip
    env |= {"PORT": str(port), "COMPOSE_PROJECT_NAME": project}
    try:
        yield repo, f"http://127.0.0.1:{port}", env
    finally:
        subprocess.run(["docker", "compose", "down", "-v", "--remove-orphans"], cwd=repo, capture_output=True,
                       env=env, check=False)  # fmt: skip
        docker("image", "rm", image, check=False)


def test_the_postgres_profile_from_the_env_example_runs_the_app_on_postgres_and_keeps_its_data(
    postgres_demo: tuple[Path, str, dict[str, str]],
) -> None:
    repo, url, env = postgres_demo
    compose("up", "-d", "--build", "--wait", env=env, cwd=repo)
    services = compose("ps", "--format", "{{.Service}}", env=env, cwd=repo).split()
    assert sorted(services) == ["app", "postgres", "proxy"], (
        f"the postgres profile did not start every service: {services}"
    )
    with httpx.Client(base_url=url) as client:
        assert client.get("/health").json() == {"status": "ok", "database": "ok", "clicks_waiting": 0}
        link = client.post("/url", json={"target_url": "https://example.com/pg"}).json()
        assert client.get(f"/{link['key']}").status_code == 307
        admin = "/admin/" + link["admin_url"].rsplit("/admin/", 1)[1]
        assert client.get(admin).json()["clicks"] == 1
    stored = compose("exec", "-T", "postgres", "psql", "-U", "shortener", "-d", "shortener", "-tAc",
                     "SELECT key || ' ' || clicks FROM short_urls", env=env, cwd=repo)  # fmt: skip
    assert stored.split() == [link["key"], "1"], f"the link is not in PostgreSQL: {stored!r}"
    postgres = compose("ps", "-q", "postgres", env=env, cwd=repo).strip()
    assert docker("exec", postgres, "ps", "-o", "user=", "-p", "1").strip() == "postgres", "the server runs as root"
    assert docker("exec", postgres, "id", "-u", "postgres").strip() == "999"

    compose("down", env=env, cwd=repo)
    compose("up", "-d", "--wait", env=env, cwd=repo)
    with httpx.Client(base_url=url) as client:
        assert client.get(admin).json()["clicks"] == 1, "the data in PostgreSQL did not survive down + up"
        assert client.get(f"/{link['key']}").status_code == 307


def test_a_paused_postgresql_gets_json_503s_within_the_request_timeout_and_no_late_write(
    postgres_demo: tuple[Path, str, dict[str, str]],
) -> None:
    """`docker pause` on the postgres service of the demo stack, through the front door: creates (custom
    keys) and an uncached redirect get the app's JSON 503 within REQUEST_TIMEOUT_SECONDS (10 s), long
    before the door's 30 s; a cached redirect goes on; after `docker unpause`, no link exists whose
    client got the 503. Before: every one hung until the door's 504 at 30 s, and then committed."""
    repo, url, env = postgres_demo
    compose("up", "-d", "--build", "--wait", env=env, cwd=repo)
    with httpx.Client(base_url=url, timeout=10) as client:
        cached = client.post("/url", json={"target_url": "https://example.com/cached"}).json()["key"]
        uncached = client.post("/url", json={"target_url": "https://example.com/uncached"}).json()["key"]
        assert client.get(f"/{cached}").status_code == 307  # now in the app's cache
    keys = [f"paused-db-{n}" for n in range(3)]
    requests = [("POST", "/url", {"target_url": "https://example.com/", "key": key}) for key in keys]
    requests += [("GET", f"/{uncached}", None)]
    answers: list[tuple[float, httpx.Response]] = []

    def ask(method: str, path: str, body: dict | None) -> None:
        started = time.monotonic()
        answer = httpx.request(method, f"{url}{path}", json=body, timeout=45)
        answers.append((time.monotonic() - started, answer))

    postgres = compose("ps", "-q", "postgres", env=env, cwd=repo).strip()
    docker("pause", postgres)
    try:
        threads = [threading.Thread(target=ask, args=request) for request in requests]
        for thread in threads:
            thread.start()
        from_cache = httpx.get(f"{url}/{cached}", timeout=10).status_code
        for thread in threads:
            thread.join(50)
    finally:
        docker("unpause", postgres)
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=url, timeout=10) as client:
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "/health not 200 after the unpause"
            time.sleep(0.2)
        created = {key: client.get(f"/{key}").status_code for key in keys}
    slowest = max(took for took, _ in answers)
    note(f"paused PostgreSQL: {sorted(a.status_code for _, a in answers)}, slowest {slowest:.1f} s")
    assert len(answers) == len(requests)
    for _took, answer in answers:
        assert answer.status_code == 503 and answer.headers["retry-after"], answer.text
        assert answer.json()["detail"], answer.text
    assert slowest < 25, f"an answer took {slowest:.1f} s: the door's 30 s, not the app's 10 s"
    assert from_cache == 307, "a cached redirect needs no database"
    assert set(created.values()) == {404}, f"links whose clients got a 503 exist after the unpause: {created}"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_docker_compose_up_of_the_new_code_upgrades_the_data_release_1_wrote_with_nothing_lost(
    database: str, tmp_path: Path, docker_engine: None
) -> None:
    """A user of release 1.0.0 pulls the new code and runs `docker compose up --build` on the same
    project: the migrate step upgrades their volume (SQLite's file, or PostgreSQL's) before the app
    serves, and every key, target, admin secret, click count and state is as it was."""
    require_compose()
    if reason := base_available("slim"):
        pytest.skip(reason)
    if database == "postgres" and not present_or_pulled(POSTGRES_IMAGE):
        unavailable(f"{POSTGRES_IMAGE} is not here: .ci/make-standin-postgres builds it", "REQUIRE_DOCKER")
    unique = uuid.uuid4().hex[:8]
    image = f"shortener-test-up-{unique}"
    old = export_release_1(tmp_path / "release-1")
    new = working_copy(tmp_path / "new", {})
    # Only the images are renamed (so no user's shortener:slim is replaced); the project, and so its
    # volumes, are the same for both.
    (old / "compose.override.yaml").write_text(f"services:\n  app:\n    image: {image}:release-1\n")
    (new / "compose.override.yaml").write_text(
        f"services:\n  app:\n    image: {image}:new\n  migrate:\n    image: {image}:new\n"
    )
    if database == "postgres":
        password = uuid.uuid4().hex
        for tree in (old, new):
            example = (tree / "postgres.env.example").read_text()
            (tree / ".env").write_text(example.replace("POSTGRES_PASSWORD=\n", f"POSTGRES_PASSWORD={password}\n"))
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if name not in ("COMPOSE_PROFILES", "WITH_POSTGRES", "POSTGRES_PASSWORD", "SHORTENER_DB_URL")}  # fmt: skip
    env |= {"PORT": str(port), "COMPOSE_PROJECT_NAME": f"shortener-test-up-{unique}"}
    url = f"http://127.0.0.1:{port}"
    try:
        compose("up", "-d", "--build", "--wait", env=env, cwd=old)
        links = fill(url)
        compose("down", env=env, cwd=old)

        compose("up", "-d", "--build", "--wait", env=env, cwd=new)
        migrated = compose("logs", "--no-log-prefix", "migrate", env=env, cwd=new)
        assert "(head)" in migrated, f"the migrate step did not run: {migrated!r}"
        assert_served_as_before(url, links)
    finally:
        subprocess.run(["docker", "compose", "down", "-v", "--remove-orphans"], cwd=new, capture_output=True,
                       env=env, check=False)  # fmt: skip
        docker("image", "rm", f"{image}:release-1", f"{image}:new", check=False)
