"""Schema-driven fuzzing: schemathesis sends what the OpenAPI schema allows, and much it does not.

It runs the schemathesis CLI (its pytest plugin does not load under pytest 9) against a real
uvicorn on loopback, bounded in examples per operation, and follows no redirect: the targets it
shortens point anywhere. Every response must be a non-5xx with a status code, content type,
headers and body that the schema documents.
"""

import subprocess
from pathlib import Path

from tests.helpers.repo import ROOT, tool
from tests.helpers.server import uvicorn_server

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def test_no_input_makes_the_api_fail_or_contradict_its_schema(tmp_path: Path) -> None:
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db", "BASE_URL": "http://short.test", "LOG_LEVEL": "WARNING"}
    with uvicorn_server(env, tmp_path / "server.log", "--no-access-log") as server:
        result = subprocess.run(
            [tool("schemathesis"), "run", f"{server.url}/openapi.json", "--checks", CHECKS,
             "--phases", "examples,coverage,fuzzing", "--max-examples", "80", "--max-redirects", "0",
             "--request-timeout", "10", "--seed", "1", "--workers", "1", "--no-color"],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        server.stop()
        log = server.output()
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert "Traceback" not in log, f"the server logged an exception:\n{log[-4000:]}"
