"""Build every workshop step and write its measured size and build times into README.md.

    python docs/workshop/measure.py        (make workshop)

For each step: image size, cold build time (--no-cache), and rebuild time after one app file
changes. The table between the MEASURED markers in README.md is replaced, with the date.
Steps whose base image cannot be had (python:3.13 offline) are listed as not measured.
"""

import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.docker_support import docker, present_or_pulled  # noqa: E402
from tests.support import with_code_change  # noqa: E402
from tests.test_workshop import STEPS, workspace  # noqa: E402

PAGE = Path(__file__).with_name("README.md")


def build_seconds(step: str, context: Path, tag: str, *, cache: bool) -> float:
    start = time.monotonic()
    docker("buildx", "build", "--load", "-q", *([] if cache else ["--no-cache"]), "-t", tag,
           "-f", str(STEPS / step / "Dockerfile"), str(context))  # fmt: skip
    return time.monotonic() - start


def main() -> None:
    rows = ["| step | image size | cold build | rebuild after a code change |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        naive = workspace(root / "naive", dockerignore=False)
        ignored = workspace(root / "ignored", dockerignore=True)
        for step_dir in sorted(STEPS.iterdir()):
            step = step_dir.name
            base = (step_dir / "Dockerfile").read_text().split("FROM ", 1)[1].split()[0]
            if not present_or_pulled(base):
                rows.append(f"| {step} | not measured: {base} is not available here | | |")
                continue
            context = naive if step < "3" else ignored
            tag = f"shortener-workshop:{step}"
            cold = build_seconds(step, context, tag, cache=False)
            edited = with_code_change(context, root / f"edited-{step}")
            rebuild = build_seconds(step, edited, f"{tag}-edited", cache=True)
            size = int(docker("image", "inspect", "-f", "{{.Size}}", tag)) / 1e6
            docker("image", "rm", "-f", f"{tag}-edited", check=False)
            rows.append(f"| {step} | {size:.1f} MB | {cold:.1f} s | {rebuild:.1f} s |")
            print(rows[-1], flush=True)
    labels = docker("image", "inspect", "-f", "{{json .Config.Labels}}", "python:3.13-slim")
    base_note = "a stand-in built by scripts/make-standin-base" if "standin" in labels else "the official image"
    stamp = (f"Measured {datetime.now(UTC):%Y-%m-%d} by `make workshop` (docs/workshop/measure.py); "
             f"`python:3.13-slim` was {base_note}.")  # fmt: skip
    table = "\n".join([stamp, "", *rows])
    page = PAGE.read_text()
    PAGE.write_text(re.sub(r"(<!-- MEASURED -->\n).*?(\n<!-- /MEASURED -->)", rf"\g<1>{table}\g<2>", page, flags=re.S))
    print(f"written to {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
