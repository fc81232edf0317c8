"""A data directory the app cannot use stops the start with one short message that says what to do.

Before, a bind mount owned by root (what `docker run -v ./data:/data` creates when ./data does not
exist) gave 133 lines of traceback and exit 3, with neither the path nor the fix in it; a
world-writable database file in a root-owned directory was reported as "attempt to write a
readonly database" (SQLite must create the -wal and -shm files beside it).
"""

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.dockerfiles import IMAGES
from tests.helpers.engine import HARDENED, base_available, build
from tests.helpers.faults import note
from tests.helpers.repo import ROOT
from tests.helpers.server import SERVE, free_port, image_env, image_server_flags, uvicorn_server

APP_UID = 5678  # the image's USER
MAX_LINES = 15
CASES = ["a directory the app user cannot write", "a world-writable database file in a directory it cannot write"]


def unusable_data_directory(folder: Path, case: str, owner: int = 0) -> Path:
    """`folder` as a directory the app user cannot create files in: `owner`'s, mode 755."""
    folder.mkdir(exist_ok=True)
    if case == CASES[1]:
        with sqlite3.connect(folder / "shortener.db") as connection:
            connection.execute("CREATE TABLE kept (x)")
        connection.close()
        (folder / "shortener.db").chmod(0o666)
    if os.getuid() == 0:
        os.chown(folder, owner, owner)
        folder.chmod(0o755)
    else:  # not root: the folder is ours, and only 555 keeps its owner out
        folder.chmod(0o555)
    return folder


def assert_one_short_message(output: str, exit_code: int, path: str, ids: tuple[int, int], case: str) -> None:
    lines = output.strip().splitlines()
    note(f"{case}: exit {exit_code}, {len(lines)} lines of output")
    assert exit_code != 0, output
    assert "Traceback" not in output, output
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines:\n{output}"
    uid, gid = ids
    assert path in output and f"user {uid} " in output, output
    assert f"chown {uid}:{gid}" in output and "named volume" in output, output
    if case == CASES[1]:
        assert "-wal" in output and "readonly database" not in output, output


# Root ignores permissions, so a root test run starts the app as root without the capabilities
# that let it (CAP_DAC_OVERRIDE and friends), in a directory that belongs to nobody (65534).
NOBODY = 65534
WITHOUT_ROOTS_PRIVILEGES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@pytest.mark.parametrize("case", CASES)
def test_a_data_directory_the_app_cannot_write_stops_the_start_with_one_short_message(
    tmp_path: Path, case: str
) -> None:
    folder = unusable_data_directory(tmp_path / "data", case, owner=NOBODY)
    prefix = WITHOUT_ROOTS_PRIVILEGES if os.getuid() == 0 else []
    if prefix and shutil.which(prefix[0]) is None:
        pytest.skip("setpriv (util-linux) is needed to run the app as root without its privileges")
    command = [*prefix, sys.executable, str(SERVE), "--host", "127.0.0.1", "--port", str(free_port()),
               *image_server_flags()]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **image_env(), "DB_URL": f"sqlite:///{folder}/shortener.db"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ids = (os.getuid(), os.getgid())
    assert_one_short_message(result.stdout + result.stderr, result.returncode, str(folder), ids, case)
    folder.chmod(0o755)


def test_a_data_path_through_a_file_stops_the_start_with_one_short_message(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the data directory should be")
    env = {"DB_URL": f"sqlite:///{tmp_path}/data/shortener.db"}
    server = uvicorn_server(env, tmp_path / "server.log", migrate=False)
    with pytest.raises(RuntimeError, match="exited with 3"), server:
        pass
    output = (tmp_path / "server.log").read_text()
    lines = output.strip().splitlines()
    assert "Traceback" not in output and len(lines) <= MAX_LINES, output
    assert f"{tmp_path}/data" in output and "not a directory" in output, output


@pytest.mark.docker
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("flavour", list(IMAGES))
def test_a_bind_mount_owned_by_root_stops_the_image_with_one_short_message(
    docker_engine: None, tmp_path: Path, flavour: str, case: str
) -> None:
    reason = base_available(flavour)
    if reason:
        pytest.skip(reason)
    # A tag of its own: a CI run on the same engine may be using shortener-test:<flavour>.
    tag = f"shortener-data-dir-test:{flavour}"
    build(IMAGES[flavour], tag)
    folder = unusable_data_directory(tmp_path / "data", case)  # root's, as `docker run -v ./data:/data` makes it
    result = subprocess.run(
        ["docker", "run", "--rm", *HARDENED, "-v", f"{folder}:/data", tag],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert_one_short_message(result.stdout + result.stderr, result.returncode, "/data", (APP_UID, APP_UID), case)


def test_a_startup_check_that_fails_refuses_the_start_in_one_line() -> None:
    """A check that raises (e.g. the PostgreSQL driver missing from an image built without it) must
    refuse the start, not end the lifespan: uvicorn would take that for an app without one and serve."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from shortener_app.startup import StartupCheck, StartupRefused

    def missing_driver() -> str | None:
        raise ModuleNotFoundError("No module named 'psycopg'")

    refused = r"^the startup check failed: ModuleNotFoundError: No module named 'psycopg'$"
    with pytest.raises(StartupRefused, match=refused), TestClient(StartupCheck(FastAPI(), check=missing_driver)):
        pass
