"""Build every workshop step and write its measured size and build times, and what a laptop downloads
in the room, into README.md.

    python docs/workshop/measure.py        (make workshop; Linux, with a Docker engine)

For each step's Dockerfile (step 13 is Dockerfile.slim itself): image size, cold build time
(--no-cache), and rebuild time after one app file changes. Each step is built as its page builds
it, from a clone of the repository, so steps 1 and 2 use their own Dockerfile.dockerignore.

Then the room: in a fresh clone whose app code carries a line of its own (so no cache this machine
kept from earlier runs matches what depends on the code, as on a new laptop), docs/workshop/prefetch
runs as the day before, then every page's commands in order, as attendees type them. What the
machine receives on its network interfaces (/proc/net/dev, loopback and Docker's bridges left out)
while each page runs is what that step downloads. Run it on an otherwise quiet machine.

The block between the MEASURED markers in README.md is replaced, with the date and which base
images were offline stand-ins. Steps whose base image cannot be had are listed as not measured.
"""

import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.docs.test_workshop import (  # noqa: E402
    PAGE_NAMES,
    STEPS,
    pages,
    port_8000,
    remove_what_the_pages_made,
    run_page,
    workspace,
)
from tests.helpers.engine import STANDIN_LABEL, docker, present_or_pulled  # noqa: E402
from tests.helpers.repo import with_code_change  # noqa: E402

PAGE = Path(__file__).with_name("README.md")
# The facilitator's plan makes the last step an exercise for at home: its downloads are not the room's.
TAKE_HOME = {"15-slim-or-alpine"}
ROOM_INTRO = (
    "What a laptop downloads, after `docs/workshop/prefetch` ran the day before: every page's commands in "
    "order, from a clone of its own, counted on the network interfaces (target for the room: at most 50 MB)."
)


def build_seconds(dockerfile: Path, context: Path, tag: str, *, cache: bool) -> float:
    start = time.monotonic()
    docker("buildx", "build", "--load", "-q", *([] if cache else ["--no-cache"]), "-t", tag,
           "-f", str(dockerfile), str(context))  # fmt: skip
    return time.monotonic() - start


def base_of(dockerfile: Path) -> str:
    text = dockerfile.read_text()
    return re.search(r"^FROM (\S+)", text, re.M).group(1)  # type: ignore[union-attr]


def describe(base: str) -> str:
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", base)) or {}
    kind = f"a stand-in ({labels[STANDIN_LABEL]})" if STANDIN_LABEL in labels else "the official image"
    return f"`{base}` was {kind}"


def received_bytes() -> int:
    """Bytes received on this machine's network interfaces: not loopback, not Docker's own bridges."""
    total = 0
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, counters = line.split(":", 1)
        if not name.strip().startswith(("lo", "docker", "br-", "veth", "ifb")):
            total += int(counters.split()[0])
    return total


def room_download() -> list[str]:
    """Per step, what a laptop downloads in the room after docs/workshop/prefetch ran the day before."""
    rows = ["| step | downloaded |", "|---|---|"]
    room = at_home = 0
    with tempfile.TemporaryDirectory() as tmp:
        clone = workspace(Path(tmp) / "shortener")
        with (clone / "shortener_app" / "__init__.py").open("a") as init:
            init.write(f"# this clone's own: {uuid.uuid4()}\n")
        git = ["git", "-c", "user.name=workshop", "-c", "user.email=workshop@example.invalid"]
        subprocess.run([*git, "commit", "-q", "-am", "this clone's own"], cwd=clone, check=True)
        try:
            subprocess.run(["docs/workshop/prefetch"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
            for name in PAGE_NAMES:
                text = (STEPS / name / "README.md").read_text()
                before = received_bytes()
                with port_8000("docker compose" in text):
                    skipped = run_page(name, text, clone)
                step = received_bytes() - before
                if name in TAKE_HOME:
                    at_home += step
                else:
                    room += step
                note = f" (not run here: the blocks needing {', '.join(sorted(set(skipped)))})" if skipped else ""
                where = " (at home)" if name in TAKE_HOME else ""
                rows.append(f"| {name}{where} | {step / 1e6:.1f} MB{note} |")
                print(rows[-1], flush=True)
        finally:
            remove_what_the_pages_made(clone)
    rows.append(f"| in the room: steps 1 to {len(PAGE_NAMES) - len(TAKE_HOME)} | {room / 1e6:.1f} MB |")
    rows.append(f"| with the take-home step | {(room + at_home) / 1e6:.1f} MB |")
    print("\n".join(rows[-2:]), flush=True)
    return rows


def main() -> None:
    rows = ["| step | image size | cold build | rebuild after a code change |", "|---|---|---|---|"]
    bases: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        clone = workspace(Path(tmp) / "shortener")
        edited = with_code_change(clone, Path(tmp) / "edited")
        for name, (_, after) in pages.CHANGES.items():
            if not after.endswith("Dockerfile") and after != "Dockerfile.slim":
                continue
            base = base_of(ROOT / after)
            if not present_or_pulled(base):
                hint = " (.ci/make-standin-full builds a stand-in)" if base == "python:3.13" else ""
                rows.append(f"| {name} | not measured: {base} is not available here{hint} | | |")
                continue
            bases.add(base)
            tag = f"workshop-measure:{name}"
            cold = build_seconds(clone / after, clone, tag, cache=False)
            rebuild = build_seconds(edited / after, edited, f"{tag}-edited", cache=True)
            size = int(docker("image", "inspect", "-f", "{{.Size}}", tag)) / 1e6
            docker("image", "rm", "-f", f"{tag}-edited", check=False)
            rows.append(f"| {name} | {size:.1f} MB | {cold:.1f} s | {rebuild:.1f} s |")
            print(rows[-1], flush=True)
    stamp = (f"Measured {datetime.now(UTC):%Y-%m-%d} by `make workshop` (docs/workshop/measure.py); "
             + "; ".join(describe(base) for base in sorted(bases)) + ".")  # fmt: skip
    room = room_download()
    table = "\n".join([stamp, "", *rows, "", ROOM_INTRO, "", *room])
    page = PAGE.read_text()
    PAGE.write_text(re.sub(r"(<!-- MEASURED -->\n).*?(\n<!-- /MEASURED -->)", rf"\g<1>{table}\g<2>", page, flags=re.S))
    print(f"written to {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
