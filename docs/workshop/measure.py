"""Build every workshop step and write its measured size and build times into README.md.

    python docs/workshop/measure.py        (make workshop)

For each step's Dockerfile (step 13 is Dockerfile.slim itself): image size, cold build time
(--no-cache), and rebuild time after one app file changes. Each step is built as its page builds
it, from a clone of the repository, so steps 1 and 2 use their own Dockerfile.dockerignore. The
table between the MEASURED markers in README.md is replaced, with the date and which base images
were offline stand-ins. Steps whose base image cannot be had are listed as not measured.
"""

import json
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.docs.test_workshop import pages, workspace  # noqa: E402
from tests.helpers.engine import STANDIN_LABEL, docker, present_or_pulled  # noqa: E402
from tests.helpers.repo import with_code_change  # noqa: E402

PAGE = Path(__file__).with_name("README.md")


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
    table = "\n".join([stamp, "", *rows])
    page = PAGE.read_text()
    PAGE.write_text(re.sub(r"(<!-- MEASURED -->\n).*?(\n<!-- /MEASURED -->)", rf"\g<1>{table}\g<2>", page, flags=re.S))
    print(f"written to {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
