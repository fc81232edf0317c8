"""Which bytecode to compile at build time: the rules side by side, on Dockerfile.slim, in one run.

    python bench/bytecode.py [--output docs/bytecode-benchmark.md]

Each rule is the Dockerfile with its bytecode step replaced (the rule it has now is the first).
For each: our layers' size, the time from `docker run` to /health answering 200 (hardened, as the
image runs), and the import of the app and its server inside the image, taken in turns so that
the machine's load falls on every rule alike. Numbers are reported, never asserted in tests.
"""

import argparse
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402
from bench.compare_images import MB, start_and_stop  # noqa: E402
from tests.helpers.dockerfiles import BASES, IMAGES, mutate  # noqa: E402 - the tests' Dockerfile edits
from tests.helpers.engine import base_available, build, docker  # noqa: E402

DOCKERFILE = (ROOT / IMAGES["slim"]).read_text()
# The build stage's compile steps (the venv, then the base's standard library into /bytecode, which the
# image lays over its base), and the app's, which also dates what the stage hands on.
STEP = DOCKERFILE[DOCKERFILE.index("RUN --mount=type=bind,from=base") :].split("\n\n", 1)[0]
APP_STEP = DOCKERFILE[DOCKERFILE.index("RUN python -m compileall -q --invalidation") :].split("\n\n", 1)[0] + "\n"
# The list this repository kept by hand until 2026-11-29: what this app's server imports at start.
IMPORT_LIST = (
    'RUN env -u PYTHONDONTWRITEBYTECODE python -c "import fastapi, pydantic.functional_serializers, pydantic.v1, '
    "pydantic_settings, sqlite3, validators, sqlalchemy.orm, sqlalchemy.dialects.sqlite.pysqlite, "
    "sqlalchemy.dialects.postgresql.psycopg, uvicorn.main, uvicorn.loops.uvloop, "
    'uvicorn.protocols.http.httptools_impl, uvicorn.lifespan.on, uvicorn.protocols.websockets.auto, http.client"'
)
# Start the server at build time, probe it, stop it: whatever it imported is written. It has to know
# how to start this app, where it may write while it builds, and that its schema comes first.
WARM_UP = (
    "RUN env -u PYTHONDONTWRITEBYTECODE DB_URL=sqlite:////tmp/warm-up.db sh -c 'python -m shortener_app.migrate; "
    "python /opt/container/serve.py --log-level warning & python /opt/container/healthcheck.py; kill $!; wait'\n"
)
# What the image does instead; a rule that compiles at run of the image goes in its last stage, before USER.
NO_STEP = "RUN mkdir -p /bytecode"
DATE_ONLY = "RUN find /opt /app /bytecode -exec touch -h -d @0 {} +\n"
IN_IMAGE = "USER 5678:5678"
RULES = {
    "the standard library and the whole venv (the rule now)": {},
    "the modules this app's server imports, listed by hand (the rule until 2026-11-29)": {
        STEP: NO_STEP,
        IN_IMAGE: IMPORT_LIST + "\n" + IN_IMAGE,
    },
    "the whole venv only (what pip does by default, or uv's --compile-bytecode)": {
        STEP: "RUN python -m compileall -q -j 0 /opt/venv && mkdir -p /bytecode"
    },
    "whatever the server imports when started at build time": {
        STEP: NO_STEP,
        APP_STEP: DATE_ONLY,
        IN_IMAGE: WARM_UP + IN_IMAGE,
    },
    "nothing (the base ships no .pyc)": {STEP: NO_STEP, APP_STEP: DATE_ONLY},
}
IMPORTS = (
    "import time; t = time.perf_counter(); import shortener_app.main, uvicorn, uvloop, httptools; "
    "print(time.perf_counter() - t)"
)
RUNS = 5


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "bytecode-benchmark.md")
    args = parser.parse_args()
    if reason := base_available("slim"):
        sys.exit(f"cannot measure: {reason}")
    base = int(docker("image", "inspect", "-f", "{{.Size}}", BASES["slim"]))
    tags = {rule: f"shortener-bytecode:{number}" for number, rule in enumerate(RULES)}
    sizes = {}
    for rule, edits in RULES.items():
        print(f"building: {rule} ...", flush=True)
        build(None, tags[rule], text=mutate(IMAGES["slim"], edits, f"RULES[{rule!r}] in bench/bytecode.py"))
        sizes[rule] = int(docker("image", "inspect", "-f", "{{.Size}}", tags[rule])) - base
    starts: dict[str, list[float]] = {rule: [] for rule in RULES}
    imports: dict[str, list[float]] = {rule: [] for rule in RULES}
    try:
        for run in range(RUNS):
            print(f"run {run + 1} of {RUNS} ...", flush=True)
            for rule in RULES:
                starts[rule].append(start_and_stop(tags[rule])["answering"])
                imports[rule].append(float(docker("run", "--rm", tags[rule], "python", "-c", IMPORTS)))
    finally:
        docker("image", "rm", *tags.values(), check=False)
    now = next(iter(RULES))
    table = [
        "| compiled at build time | our layers | start to answering /health | vs the rule now | import as built |",
        "|---|---|---|---|---|",
    ]
    for rule in RULES:
        ratio = statistics.median(starts[rule]) / statistics.median(starts[now])
        table.append(
            f"| {rule} | {sizes[rule] / MB:.1f} MB | {spread(starts[rule])} | {ratio:.2f}x | {spread(imports[rule])} |"
        )
    page = [
        "# Which bytecode the image compiles at build time",
        "",
        f"Generated by `make bench-bytecode` (bench/bytecode.py) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"on {machine.describe()}, from Dockerfile.slim on {BASES['slim']}, each rule its own image.",
        "",
        *table,
        "",
        f"Medians of {RUNS}, with the fastest and slowest; the rules took turns, one start each. Our layers: "
        "the image minus the base (`docker image inspect`). Start: `docker run -d` of the hardened container "
        "until `/health` answers 200 on 127.0.0.1. Import: `import shortener_app.main, uvicorn, uvloop, "
        "httptools` in a fresh container. The app itself is compiled in every rule but the last.",
    ]
    args.output.write_text("\n".join(page) + "\n")
    print("\n".join(table))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
