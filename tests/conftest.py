"""Fixtures: a throwaway database per test (SQLite, and PostgreSQL when a server is given)."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shortener_app import schema
from shortener_app.config import Settings
from shortener_app.main import create_app
from tests.helpers.required import POSTGRES_HINT, unavailable

if TYPE_CHECKING:
    from tests.helpers.platforms import PlatformImage

BASE_URL = "http://short.test"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new database on the server at TEST_POSTGRES_URL (skips without one), dropped afterwards."""
    server = os.environ.get("TEST_POSTGRES_URL")
    if not server:
        unavailable(POSTGRES_HINT, "REQUIRE_POSTGRES")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - any failure to reach the server means "not here"
        admin.dispose()
        unavailable(f"PostgreSQL at TEST_POSTGRES_URL did not answer: {error}", "REQUIRE_POSTGRES")
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database nobody else uses, without a schema, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/shortener.db"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A database nobody else uses, brought to head by the migrate step, as every deployment does first."""
    schema.upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(db_url=db_url, base_url=BASE_URL, env_name="test")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app started through its lifespan, as uvicorn would start it."""
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def docker_engine() -> None:
    from tests.helpers.engine import require_engine

    require_engine()


_built: dict[str, str] = {}
_failed: dict[str, str] = {}


@pytest.fixture(scope="session", params=["slim", "alpine"])
def image(request: pytest.FixtureRequest, docker_engine: None) -> str:
    """Each image, built once per session from its Dockerfile, tagged shortener-test:<flavour>."""
    from tests.helpers.dockerfiles import IMAGES
    from tests.helpers.engine import base_available, build

    flavour = request.param
    if flavour not in _built:
        reason = base_available(flavour)
        if reason:
            pytest.skip(reason)
        build(IMAGES[flavour], f"shortener-test:{flavour}")
        _built[flavour] = f"shortener-test:{flavour}"
    return _built[flavour]


@pytest.fixture(scope="session", params=["linux/amd64", "linux/arm64"])
def platform_image(request: pytest.FixtureRequest, image: str) -> "PlatformImage":
    """Each image on each platform the images promise: the engine's own, and the other under QEMU."""
    from tests.helpers.dockerfiles import IMAGES
    from tests.helpers.engine import build
    from tests.helpers.platforms import PlatformImage, emulated_base, native_platform

    flavour, platform = image.rsplit(":", 1)[1], request.param
    if platform == native_platform():
        return PlatformImage(image, flavour, platform, emulated=False)
    tag = f"{image}-{platform.removeprefix('linux/')}"
    if tag in _failed:
        pytest.fail(f"the {platform} build failed for an earlier test: {_failed[tag]}")
    if tag not in _built:
        reason, contexts = emulated_base(flavour, platform)
        if reason:
            # Offline, only slim has a stand-in for the other platform; Alpine's is the official image's.
            unavailable(reason, "REQUIRE_EMULATION" if flavour == "slim" else "REQUIRE_ALPINE_ARM64")
        try:
            # Under QEMU a build with no cache (a new base) took over 10 min on 2 cores.
            build(IMAGES[flavour], tag, platform=platform, contexts=contexts, timeout=2400)
        except Exception as error:
            _failed[tag] = str(error)[:2000]
            raise
        _built[tag] = tag
    return PlatformImage(tag, flavour, platform, emulated=True)


# How test files share out among the workers (`make test`: --dist loadfile, each file run whole on
# one worker, in order, so its tests share its stacks, images and swarm). The files go out in the
# order of their first test, so the image tests' linux/arm64 half (QEMU) is moved to the front: the
# longest file by far then starts first, instead of last (the arm64 slim structure checks alone took
# 23 min beside three cold workers). (--dist loadgroup, to give that half a worker of its own, sent
# every test out alone with pytest-xdist 3.8 here, marked or not: measured, so not used.)
EMULATED = "linux/arm64"


# Within the file, the arm64 Alpine tests go last: .ci/run builds their stand-in while the tests run.
def _order(item: pytest.Item) -> int:
    if f"[{EMULATED}-alpine]" in item.nodeid:
        return 2
    return 0 if f"[{EMULATED}-" in item.nodeid else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_order)  # stable: every other order stays


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which base images the image tests build on: the official ones, or offline stand-ins."""
    import shutil
    import subprocess

    from tests.helpers.dockerfiles import BASES
    from tests.helpers.engine import describe_base
    from tests.helpers.platforms import PLATFORMS, standin_for

    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        return ["base images: no Docker engine answers"]
    lines = []
    for flavour, base in BASES.items():
        for platform in PLATFORMS:
            standin = standin_for(flavour, platform)
            if subprocess.run(["docker", "image", "inspect", standin], capture_output=True).returncode == 0:
                lines.append(f"base image for {platform}: {standin} (STAND-IN, used through a build context)")
        present = subprocess.run(["docker", "image", "inspect", base], capture_output=True, check=False).returncode == 0
        lines.append(
            f"base image: {describe_base(flavour) if present else base + ': not here (pulled if a registry answers)'}"
        )
    return lines


# What `make test` says at its start: each folder it runs, how many tests, and how long they took the
# last time they ran on this machine (pytest's cache; a run with `-p no:cacheprovider` keeps none).
_GROUP_SECONDS = "shortener/seconds-per-folder"
_group_seconds: dict[str, float] = {}


def _group(nodeid: str) -> str:
    return "/".join(nodeid.split("/")[:2]) if nodeid.startswith("tests/") else nodeid.split("::")[0]


def _say_groups(config: pytest.Config, nodeids: list[str]) -> None:
    from collections import Counter

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    cache = getattr(config, "cache", None)
    last = cache.get(_GROUP_SECONDS, {}) if cache else {}
    for group, count in sorted(Counter(_group(nodeid) for nodeid in nodeids).items()):
        seconds = last.get(group)
        took = "not run here before" if seconds is None else f"{seconds / 60:.1f} min of test time the last run here"
        reporter.write_line(f"{group}: {count} tests, {took}")


def pytest_collection_finish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput") and session.config.pluginmanager.get_plugin("dsession") is None:
        _say_groups(session.config, [item.nodeid for item in session.items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    config = node.config  # type: ignore[attr-defined]
    if not getattr(config, "_shortener_groups_said", False):
        config._shortener_groups_said = True
        _say_groups(config, ids)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _group_seconds[_group(report.nodeid)] = _group_seconds.get(_group(report.nodeid), 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """At the end, each folder's test time (summed over workers: it is the time the start will quote)."""
    if not hasattr(terminalreporter.config, "workerinput") and _group_seconds:
        terminalreporter.section("test time per folder")
        for group, seconds in sorted(_group_seconds.items()):
            terminalreporter.write_line(f"{group}: {seconds:,.0f} s ({seconds / 60:.1f} min)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    cache = getattr(session.config, "cache", None)
    if cache and not hasattr(session.config, "workerinput") and _group_seconds:
        cache.set(_GROUP_SECONDS, {group: round(s) for group, s in _group_seconds.items()})
