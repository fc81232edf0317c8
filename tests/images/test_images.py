"""The built images, run as a user would run them: hardened, published on 127.0.0.1 only."""

import json
import os
import re
import shlex
import stat
import time
import uuid

import httpx
import pytest

from tests.helpers.dockerfiles import BASES, IMAGES
from tests.helpers.engine import Container, build, docker, running, wait_for_health_status
from tests.helpers.layers import is_account_file, layers
from tests.helpers.platforms import PlatformImage
from tests.helpers.repo import ROOT
from tests.helpers.required import POSTGRES_HINT, unavailable
from tests.helpers.server import free_port, wait_until_healthy
from tests.helpers.structure import structure_test
from tests.helpers.workshop import commands_on

pytestmark = pytest.mark.docker


# What the images promise on every platform (linux/amd64 and linux/arm64, the one that is not the
# engine's own under QEMU): the contract, the hardened API, health, and a clean stop. Emulation is
# slow (about 20 s from start to answering), so these allow it more time; nothing else changes.
STARTUP_SECONDS = {False: 30, True: 180}
# The probe itself is a Python start: under QEMU that alone takes 3 to 6 s (measured), past the
# image's 3 s --timeout, which is meant for real hardware (proven by the native run). Emulated runs
# give the same probe more time to answer; its command, interval and verdict are the image's own.
HEALTH_TIMEOUT = {False: (), True: ("--health-timeout", "30s")}
# `docker stop`'s default: how long Docker waits after SIGTERM before it sends SIGKILL.
STOP_TIMEOUT = 10


def test_structure_tests_pass(platform_image: PlatformImage) -> None:
    result = structure_test(platform_image.tag, platform_image.flavour, platform_image.platform)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_whole_api_works_in_a_hardened_container(platform_image: PlatformImage) -> None:
    with (
        running(platform_image.tag, seconds=STARTUP_SECONDS[platform_image.emulated]) as container,
        httpx.Client(base_url=container.url, timeout=30) as client,
    ):
        assert client.get("/health").json() == {"status": "ok", "database": "ok", "clicks_waiting": 0}
        assert "<form" in client.get("/").text
        # What the demo page shows, read from the process: the container, its user, its root, its image.
        about = client.get("/about").json()
        hostname = docker("inspect", "-f", "{{.Config.Hostname}}", container.name).strip()
        assert (about["served_by"], about["user_id"], about["root_read_only"]) == (hostname, 5678, True)
        assert about["image_version"] == "test", "the build's VERSION (tests build with VERSION=test)"
        link = client.post("/url", json={"target_url": "https://example.com/"}).json()
        admin = link["admin_url"].removeprefix("http://localhost:8000")
        assert client.get(f"/{link['key']}").status_code == 307
        assert client.head(f"/{link['key']}").status_code == 307
        assert client.get(admin).json()["clicks"] == 1
        assert client.post("/url", json={"target_url": "https://example.com/", "key": link["key"]}).status_code == 409
        assert client.delete(admin).json()["is_active"] is False
        assert client.get(f"/{link['key']}").status_code == 404
        assert client.post("/url", content=b"x" * 1_000_000).status_code == 413
        # The hardened container wrote nothing outside /data and /tmp.
        assert docker("diff", container.name).strip() == ""


# Step 11 is on Dockerfile.slim's path (Alpine is step 15's): its outputs are the slim image's.
@pytest.mark.parametrize("image", ["slim"], indirect=True)
def test_what_the_workshop_shows_of_the_finished_image_holds_on_every_platform(platform_image: PlatformImage) -> None:
    """Step 11's page shows what a stripped, byte-compiled image prints (uvloop's size, no binutils, the
    bytecode), as checked on linux/amd64; an attendee on Apple silicon runs it on arm64. The reference
    image, which step 11 leads to, prints the same on each platform (under QEMU for the other)."""
    shown = commands_on("11-strip-and-bytecode", "workshop:11")
    assert len(shown) == 3, [command.line for command in shown]
    for command in shown:
        args = command.line.removeprefix("docker run --rm workshop:11 ")
        printed = docker("run", "--rm", "--platform", platform_image.platform, platform_image.tag, *shlex.split(args))
        assert printed.splitlines() == command.shown, f"{platform_image.platform}: {args}"


def test_the_health_check_probes_often_only_while_the_container_starts(image: str) -> None:
    """The image's HEALTHCHECK as Docker stored it (container-structure-test cannot see it)."""
    check = json.loads(docker("image", "inspect", "-f", "{{json .Config.Healthcheck}}", image))
    seconds = {name: check.get(name, 0) / 1e9 for name in ("Interval", "StartInterval", "StartPeriod", "Timeout")}
    assert check["Test"] == ["CMD", "python", "/opt/container/healthcheck.py"]
    assert 0 < seconds["StartInterval"] <= 1, "without --start-interval the first probe waits a whole interval"
    assert seconds["Interval"] >= 10 * seconds["StartInterval"], "a steady probe this often costs CPU for nothing"
    assert seconds["StartPeriod"] >= 10 and seconds["Timeout"] < seconds["Interval"]
    # Unhealthy within about 10 s of /health failing (the probe fails on a 503: test_server.py). Before:
    # every 10 s, 3 in a row, so Docker called the app healthy for up to 30 s while /health said 503.
    assert seconds["Interval"] * check["Retries"] <= 10, "a failing app stays 'healthy' too long"


def test_docker_reports_the_container_healthy(platform_image: PlatformImage) -> None:
    seconds = STARTUP_SECONDS[platform_image.emulated]
    with running(platform_image.tag, seconds=seconds, extra=HEALTH_TIMEOUT[platform_image.emulated]) as container:
        wait_for_health_status(container.name, seconds=seconds)
        assert container.state()["Health"]["FailingStreak"] == 0


def test_a_request_reaches_docker_logs_at_once(image: str) -> None:
    with running(image) as container:
        marker = f"/log-probe-{uuid.uuid4().hex}"
        httpx.get(container.url + marker)
        deadline = time.monotonic() + 1.0
        while marker not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker in container.logs(), "the access log line was held in a buffer"


def python_bytecode_written_as_root(image: str, *env: str) -> str:
    """What `docker diff` shows after root imports a module that has no bytecode yet.

    Every module the image ships is compiled at build time, so the probe is a new one, in /tmp: a
    module added at run time, or one whose source changed, is what Python would write bytecode for.
    """
    name = f"shortener-pyc-{uuid.uuid4().hex[:8]}"
    docker("run", "--name", name, "-u", "0", *env, "--entrypoint", "sh", image, "-c",
           "echo 'x = 1' > /tmp/fresh.py && cd /tmp && python -c 'import fresh'")  # fmt: skip
    try:
        return docker("diff", name)
    finally:
        docker("rm", "-v", name, check=False)


def test_our_layers_carry_no_second_copy_of_a_base_file_but_the_account_files(image: str) -> None:
    """docs/numbers.md: no waste but the account files. A file of the base that our layers write again
    (re-dated, re-owned, rewritten) ships twice, once in the base's layer and once in ours."""
    flavour = image.rsplit(":", 1)[1]
    base_count = len(layers(BASES[flavour]))
    image_layers = layers(image)
    in_base = {path for layer in image_layers[:base_count] for path, entry in layer.entries.items()
               if not stat.S_ISDIR(entry[0])}  # fmt: skip
    again = sorted({path for layer in image_layers[base_count:] for path, entry in layer.entries.items()
                    if path in in_base and not stat.S_ISDIR(entry[0]) and not is_account_file(path)})  # fmt: skip
    assert not again, f"our layers write {len(again)} files of the base again: {again[:20]}"


def test_python_writes_no_bytecode_at_run_time_even_as_root(image: str) -> None:
    # As root the code would be writable, so only PYTHONDONTWRITEBYTECODE stops .pyc files.
    changed = python_bytecode_written_as_root(image)
    assert "/tmp/fresh.py" in changed and ".pyc" not in changed, changed


def test_urls_and_acknowledged_clicks_survive_restart_and_kill(image: str) -> None:
    volume = f"shortener-test-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", volume)
    try:
        with running(image, volume=volume) as first, httpx.Client(base_url=first.url) as client:
            links = [client.post("/url", json={"target_url": f"https://example.com/{i}"}).json() for i in range(5)]
            for i, link in enumerate(links):
                for _ in range(i):
                    client.get(f"/{link['key']}")
            # Reading the admin page writes buffered clicks: from here on they are acknowledged.
            admins = [link["admin_url"].removeprefix("http://localhost:8000") for link in links]
            seen = [client.get(admin).json()["clicks"] for admin in admins]
            assert seen == [0, 1, 2, 3, 4]
            docker("kill", first.name)  # SIGKILL: no shutdown hook runs
        with running(image, volume=volume) as second, httpx.Client(base_url=second.url) as client:
            assert [client.get(admin).json()["clicks"] for admin in admins] == seen
            assert all(client.get(f"/{link['key']}").status_code == 307 for link in links)
            docker("stop", second.name)
        with running(image, volume=volume) as third, httpx.Client(base_url=third.url) as client:
            assert [client.get(admin).json()["clicks"] for admin in admins] == [1, 2, 3, 4, 5]
    finally:
        docker("volume", "rm", "-f", volume, check=False)


@pytest.mark.parametrize("image", ["slim"], indirect=True)
def test_the_image_alone_runs_with_the_commands_docs_app_md_gives(image: str) -> None:
    """docs/app.md's `docker run` of the image alone, read from its code block and run as written on a
    fresh volume (the image's tag, the volume, the name and the host port swapped for the test's own):
    the migrate step on the named volume, then the server on it, answers /health and creates a link.
    The trap it guards: `docker run --rm IMAGE python -m shortener_app.migrate` without the volume
    migrates an anonymous one that --rm deletes, and the server then exits 3."""
    section = (ROOT / "docs" / "app.md").read_text().split("\n## Running the image alone\n", 1)
    assert len(section) == 2, "docs/app.md has no section '## Running the image alone'"
    block = re.search(r"^```sh\n(.*?)^```", section[1], re.MULTILINE | re.DOTALL)
    assert block, "no sh block under '## Running the image alone' in docs/app.md"
    commands = [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]
    assert commands and all(command[0] == "docker" for command in commands), commands
    port, suffix = free_port(), uuid.uuid4().hex[:8]
    volume, name = f"shortener-test-alone-{suffix}", f"shortener-test-alone-{suffix}"
    swapped = {"shortener:slim": image, "shortener": name, "127.0.0.1:8000:8000": f"127.0.0.1:{port}:8000"}

    def ours(word: str) -> str:
        return swapped.get(word) or re.sub(r"^shortener-data(?=:|$)", volume, word)

    try:
        for command in commands:
            docker(*(ours(word) for word in command[1:]), timeout=120)
        server = Container(name, f"http://127.0.0.1:{port}")
        try:
            wait_until_healthy(server.url, seconds=30)
        except TimeoutError as error:
            exit_code = server.state()["ExitCode"]
            raise AssertionError(f"{error} (exit code {exit_code}); its log:\n{server.logs()[-2000:]}") from None
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/health").json()["database"] == "ok"
            created = client.post("/url", json={"target_url": "https://example.com/alone"})
            assert created.status_code == 201, created.text
    finally:
        docker("rm", "-f", "-v", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)


def test_docker_stop_is_quick_and_clean(platform_image: PlatformImage) -> None:
    with running(platform_image.tag, seconds=STARTUP_SECONDS[platform_image.emulated]) as container:
        httpx.get(container.url + "/health", timeout=30)
        exit_code, took = container.stop()
    assert exit_code == 0, (
        f"exit code {exit_code} after {took:.1f} s: the process did not exit on SIGTERM, so Docker killed it"
    )
    # Exit code 0 already rules out Docker's SIGKILL; and Docker did not wait out its 10 s stop timeout
    # (how long the stop takes under that is the machine's load, not the image's: never asserted).
    assert took < STOP_TIMEOUT, f"docker stop took {took:.1f} s: SIGTERM did not reach uvicorn, Docker waited it out"


def test_docker_stop_exits_0_when_the_server_is_not_pid_1(image: str) -> None:
    """Behind an init (`docker run --init`, compose `init: true`) the server does not get PID 1's pass.

    uvicorn raises SIGTERM again after its graceful shutdown; as PID 1 the kernel drops it, elsewhere
    it kills the process (exit 143). The same happens under QEMU, where the emulator is PID 1.
    """
    with running(image, extra=("--init",)) as container:
        exit_code, _ = container.stop()
    assert exit_code == 0, f"exit code {exit_code} after a clean shutdown behind an init"


def test_an_image_built_with_postgres_reaches_a_real_postgresql(image: str) -> None:
    """The opt-in driver: --build-arg WITH_POSTGRES=1 adds psycopg, and the app's engine uses it."""
    server = os.environ.get("TEST_POSTGRES_URL") or unavailable(POSTGRES_HINT, "REQUIRE_POSTGRES")
    flavour = image.rsplit(":", 1)[1]
    tag = f"shortener-test:{flavour}-postgres"
    build(IMAGES[flavour], tag, args={"WITH_POSTGRES": "1"})
    probe = (
        "import sys, psycopg; from shortener_app.database import make_engine\n"
        "with make_engine(sys.argv[1]).connect() as connection:\n"
        "    print(psycopg.pq.__impl__, connection.exec_driver_sql('select 6 * 7').scalar())"
    )
    try:
        # Host networking, so the container reaches the test server on 127.0.0.1; it listens on nothing.
        answer = docker("run", "--rm", "--network", "host", "--entrypoint", "python", tag, "-c", probe, server)
    finally:
        docker("image", "rm", "-f", tag, check=False)
    assert answer.split() == ["binary", "42"]
