"""Both images side by side: size, layers, waste, build and rebuild time, start, stop, memory, redirects/s.

    python bench/compare_images.py [--output docs/image-comparison.md]

Builds each image that can be built here (the Alpine one needs python:3.13-alpine, local or
pullable), measures it, prints a table and writes it, with the date and the machine, to a docs
page. Numbers compare the two images in one run on one machine; they are never asserted in tests.
"""

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402
from bench.redirects import Load, wrk  # noqa: E402 - the redirect benchmark's load generator, reused
from tests.helpers.dockerfiles import BASES, IMAGES, mutate  # noqa: E402 - the tests' helpers, reused
from tests.helpers.engine import (  # noqa: E402
    HARDENED,
    MIGRATE,
    STANDIN_LABEL,
    base_available,
    build,
    docker,
    running,
    wait_for_health_status,
)
from tests.helpers.layers import is_account_file  # noqa: E402
from tests.helpers.platforms import PLATFORMS, emulated_base, native_platform, standin_for  # noqa: E402
from tests.helpers.repo import tool, with_code_change, working_copy  # noqa: E402
from tests.helpers.server import free_port  # noqa: E402
from tests.images.test_practices import MUTANTS  # noqa: E402 - the same edits the structure tests must catch

MB = 1_000_000


def timed(*args: str, stdin: str | None = None) -> float:
    start = time.monotonic()
    docker(*args, stdin=stdin)
    return time.monotonic() - start


def build_seconds(flavour: str, tag: str, context: Path, *, cache: bool) -> float:
    flags = [] if cache else ["--no-cache"]
    return timed("buildx", "build", "--load", "-q", *flags, "-f", str(ROOT / IMAGES[flavour]), "-t", tag, str(context))


def layer_count(image: str) -> int:
    return int(docker("image", "inspect", "-f", "{{len .RootFS.Layers}}", image))


def wasted_bytes_in_our_layers(image: str, base_layers: int) -> dict[bool, list[tuple[str, int]]]:
    """Files our layers hold again that an earlier layer already had (dive's definition of waste),
    split into the account files (True) and everything else (False)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "dive.json"
        subprocess.run([tool("dive"), image, "--json", str(report)], capture_output=True, check=True, timeout=300)
        layers = json.loads(report.read_text())["layer"]
    seen: set[str] = set()
    wasted: dict[bool, list[tuple[str, int]]] = {True: [], False: []}
    for layer in layers:
        for entry in layer["fileList"]:
            if entry["isDir"]:
                continue
            if layer["index"] >= base_layers and entry["path"] in seen:
                wasted[is_account_file(entry["path"])].append((entry["path"], entry["size"]))
            seen.add(entry["path"])
    return wasted


def describe_waste(files: list[tuple[str, int]]) -> str:
    names = ", ".join(sorted({path for path, _ in files})) or "none"
    return f"{sum(size for _, size in files):,} B ({names})"


def docker_time(stamp: str) -> float:
    """Seconds since the epoch of one of Docker's RFC 3339 timestamps (nanoseconds cut to micro)."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]}+00:00").timestamp()


STARTS = 5  # start times vary by a few hundred ms from run to run here: report the median and range


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s (median of {len(values)}; {min(values):.2f}-{max(values):.2f})"


STARTUP_SECONDS = 60


def start_and_stop(image: str) -> dict[str, Any]:
    port = free_port()
    name = f"shortener-compare-{port}"
    volume = f"{name}-data"
    # The migrate step first, as compose runs it before the app: the start measured is the app's own.
    docker("run", "--rm", *HARDENED, "-v", f"{volume}:/data", image, *MIGRATE)
    start = time.time()
    docker("run", "-d", "--name", name, *HARDENED, "-v", f"{volume}:/data", "-p", f"127.0.0.1:{port}:8000", image)
    try:
        while True:
            if time.time() - start > STARTUP_SECONDS:
                logs = docker("logs", name, check=False)[-2000:]
                raise TimeoutError(f"{image} did not answer /health within {STARTUP_SECONDS} s:\n{logs}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.02)
        answering = time.time() - start
        wait_for_health_status(name)
        # When Docker's first passing probe ended, from its own health log.
        log = json.loads(docker("inspect", "-f", "{{json .State.Health.Log}}", name))
        healthy = min(docker_time(probe["End"]) for probe in log if probe["ExitCode"] == 0) - start
        time.sleep(3)
        memory = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", name).split("/")[0].strip()
        stop = timed("stop", name)
        exit_code = int(docker("inspect", "-f", "{{.State.ExitCode}}", name))
    finally:
        docker("rm", "-f", "-v", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)
    return {"answering": answering, "healthy": healthy, "memory": memory, "stop": stop, "exit": exit_code}


THROUGHPUT_ROUNDS = 3  # wrk against each image in turn (slim, alpine, slim, ...), so drift hits both
THROUGHPUT_SECONDS = 5
THROUGHPUT_CONNECTIONS = 32


def redirect_throughput(tags: dict[str, str]) -> dict[str, list[Load]]:
    """Redirects/s of each image's hardened container, all running at once, loaded by wrk in turn."""
    loads: dict[str, list[Load]] = {flavour: [] for flavour in tags}
    with contextlib.ExitStack() as stack:
        links = {}
        for flavour, tag in tags.items():
            container = stack.enter_context(running(tag))
            created = httpx.post(f"{container.url}/url", json={"target_url": "https://example.com/"}, timeout=10).json()
            links[flavour] = f"{container.url}/{created['key']}"
            wrk(links[flavour], 1, THROUGHPUT_CONNECTIONS)  # warm-up, not counted
        for _ in range(THROUGHPUT_ROUNDS):
            for flavour, link in links.items():
                loads[flavour].append(wrk(link, THROUGHPUT_SECONDS, THROUGHPUT_CONNECTIONS))
    return loads


def describe_loads(loads: list[Load], against: list[Load] | None) -> str:
    rps = statistics.median(load.rps for load in loads)
    p99 = statistics.median(load.p99_ms for load in loads)
    errors = sum(load.errors for load in loads)
    ratio = f", {rps / statistics.median(load.rps for load in against):.2f} of slim's" if against else ""
    return f"{rps:,.0f}/s (median of {len(loads)}{ratio}), p99 {p99:.1f} ms, {errors} errors"


def python_of(base: str) -> str:
    """The base's CPython: version, C library, and the compiler it was built with."""
    return docker("run", "--rm", "--network", "none", "--entrypoint", "python", base, "-c",
                  "import platform, sys; print(sys.version.split()[0], '/', platform.libc_ver()[0] or 'musl', '/',"
                  " platform.python_compiler())").strip()  # fmt: skip


# Variants of the same Dockerfile, measured for their size only: what a choice costs or saves.
VARIANTS = {
    "our layers, --build-arg WITH_POSTGRES=1": {"args": {"WITH_POSTGRES": "1"}},
    "our layers, built in one stage (binutils kept)": {"edits": MUTANTS["multi-stage build"][0]},
    "our layers, debug symbols kept": {"edits": MUTANTS["debug symbols stripped"][0]},
    "our layers, nothing byte-compiled at build": {"edits": MUTANTS["bytecode compiled at build"][0]},
}


def our_layers_of_variant(
    flavour: str, tag: str, base_size: int, *, args: dict[str, str] | None = None, edits: dict[str, str] | None = None
) -> str:
    # The edits are written for Dockerfile.slim; the other file differs only in its base's tag.
    edits = {old.replace(BASES["slim"], BASES[flavour]): new for old, new in (edits or {}).items()}
    text = mutate(IMAGES[flavour], edits, "VARIANTS in bench/compare_images.py")
    build(None, f"{tag}-variant", text=text, args=args)
    try:
        size = int(docker("image", "inspect", "-f", "{{.Size}}", f"{tag}-variant"))
    finally:
        docker("image", "rm", f"{tag}-variant", check=False)
    return f"{(size - base_size) / MB:.1f} MB"


def measure(flavour: str) -> dict[str, object]:
    tag = f"shortener-compare:{flavour}"
    base = BASES[flavour]
    cold = build_seconds(flavour, tag, ROOT, cache=False)
    with tempfile.TemporaryDirectory() as tmp:
        context = with_code_change(working_copy(Path(tmp) / "repo", {}), Path(tmp) / "context")
        rebuild = build_seconds(flavour, f"{tag}-edited", context, cache=True)
    docker("image", "rm", f"{tag}-edited", check=False)
    size = int(docker("image", "inspect", "-f", "{{.Size}}", tag))
    base_size = int(docker("image", "inspect", "-f", "{{.Size}}", base))
    base_layers = layer_count(base)
    wasted = wasted_bytes_in_our_layers(tag, base_layers)
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", base)) or {}
    runs = [start_and_stop(tag) for _ in range(STARTS)]
    variants = {name: our_layers_of_variant(flavour, tag, base_size, **variant) for name, variant in VARIANTS.items()}
    return {
        "image": f"{IMAGES[flavour]} on {base}" + (" (stand-in)" if STANDIN_LABEL in labels else ""),
        "the base's Python (version / C library / compiler)": python_of(base),
        "total size": f"{size / MB:.1f} MB",
        "base size": f"{base_size / MB:.1f} MB",
        "our layers": f"{(size - base_size) / MB:.1f} MB",
        "layers (ours)": f"{layer_count(tag)} ({layer_count(tag) - base_layers})",
        "wasted in our layers: account files": describe_waste(wasted[True]),
        "wasted in our layers: anything else": describe_waste(wasted[False]),
        **variants,
        "cold build": f"{cold:.1f} s",
        "rebuild after a code change": f"{rebuild:.1f} s ({rebuild / cold:.0%} of cold)",
        "start to answering /health": spread([run["answering"] for run in runs]),
        "start to Docker 'healthy'": spread([run["healthy"] for run in runs]),
        "docker stop": f"{spread([run['stop'] for run in runs])}, exit codes {sorted({run['exit'] for run in runs})}",
        "idle memory": str(runs[-1]["memory"]),
    }


def sizes_per_platform() -> list[str]:
    """Each image's size on each platform it promises, or why it was not measured here."""
    rows = ["| image | platform | base | total size | base size | our layers |", "|---|---|---|---|---|---|"]
    for flavour, target in ((flavour, target) for flavour in IMAGES for target in PLATFORMS):
        native = target == native_platform()
        reason, contexts = (base_available(flavour), {}) if native else emulated_base(flavour, target)
        if reason:
            rows.append(f"| {IMAGES[flavour]} | {target} | {BASES[flavour]} | not measured here: {reason} | | |")
            continue
        base = standin_for(flavour, target) if contexts else BASES[flavour]
        tag = f"shortener-compare:{flavour}-{target.removeprefix('linux/')}"
        print(f"building {IMAGES[flavour]} for {target} ...", flush=True)
        build(IMAGES[flavour], tag, platform=target, contexts=contexts)
        try:
            size = int(docker("image", "inspect", "-f", "{{.Size}}", tag))
        finally:
            docker("image", "rm", tag, check=False)
        base_size = int(docker("image", "inspect", "-f", "{{.Size}}", base))
        labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", base)) or {}
        kind = "stand-in" if STANDIN_LABEL in labels else "official"
        cross = "FROM --platform=$BUILDPLATFORM" in (ROOT / IMAGES[flavour]).read_text()
        how = "native" if native else "cross-built" if cross else "QEMU"
        rows.append(f"| {IMAGES[flavour]} | {target} ({how}) | {base} ({kind}) | {size / MB:.1f} MB | "
                    f"{base_size / MB:.1f} MB | {(size - base_size) / MB:.1f} MB |")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "image-comparison.md")
    args = parser.parse_args()
    columns: dict[str, dict[str, object]] = {}
    notes = []
    for flavour in IMAGES:
        reason = base_available(flavour)
        if reason:
            notes.append(f"- `{IMAGES[flavour]}` was not measured: {reason}.")
            continue
        print(f"measuring {IMAGES[flavour]} ...", flush=True)
        columns[flavour] = measure(flavour)
    if columns:
        print("loading each image's redirects side by side ...", flush=True)
        loads = redirect_throughput({flavour: f"shortener-compare:{flavour}" for flavour in columns})
        for flavour in columns:
            against = loads["slim"] if flavour != "slim" and "slim" in loads else None
            columns[flavour]["redirects, wrk 32 connections"] = describe_loads(loads[flavour], against)
    for flavour in columns:
        labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", BASES[flavour])) or {}
        if STANDIN_LABEL in labels:
            standin = labels[STANDIN_LABEL]
            notes.append(f"- `{BASES[flavour]}` is an offline stand-in here, not the official image: {standin}.")
    rows = list(next(iter(columns.values())).keys()) if columns else []
    table = ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    table += [f"| {row} | " + " | ".join(str(columns[f][row]) for f in columns) + " |" for row in rows]
    engine = docker("version", "--format", "{{.Server.Version}}").strip()
    page = [
        "# The two images, measured side by side",
        "",
        f"Generated by `make compare` (bench/compare_images.py) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"on {machine.describe()}, Docker engine {engine}.",
        "",
        *table,
        "",
        "How each number is taken: sizes from `docker image inspect` (uncompressed); our layers = total minus "
        "the base; waste = bytes our layers hold again of files an earlier layer already had (from `dive`), "
        "the account files that adding a user rewrites apart from anything else; variants = the same "
        "Dockerfile with one choice undone (the edits tests/images/test_practices.py makes), size only; cold build "
        "with `--no-cache` (it downloads the wheels again); rebuild after appending one comment line to "
        "`shortener_app/routes.py`; start = `docker run -d` of the hardened container, on a volume the "
        "migrate step has just prepared, until `/health` answers "
        "200 on 127.0.0.1, and until the end of Docker's first passing HEALTHCHECK probe (from its health "
        "log), five fresh containers one after another; idle memory from `docker stats` 3 s after the last start; "
        "redirects = wrk, one thread, 32 connections, "
        f"{THROUGHPUT_SECONDS} s, against one link of each image's hardened container (its access log on, as shipped), "
        f"both containers up at once and loaded in turn, {THROUGHPUT_ROUNDS} rounds; the stand-ins' notes below say "
        "how each base differs from the official one, which is what numbers measured on a stand-in can and cannot say.",
        "",
        *notes,
        "",
        "## Size per platform",
        "",
        "The same Dockerfiles built for each platform they promise; for a platform other than the engine's own, "
        "cross-built (the build stage on the engine's platform) or under QEMU (Dockerfile.alpine's build "
        "stage), on stand-in bases where no registry answers (.ci/make-standin-base and "
        ".ci/make-standin-alpine --platform). Sizes are uncompressed, from `docker image inspect`.",
        "",
        *sizes_per_platform(),
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(page) + "\n")
    print("\n".join(table))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
