"""Redirect throughput of the app, through the front door and straight, against the framework ceiling.

    python bench/redirects.py [--seconds 10] [--rounds 2] [--connections 32] [--server-flags "..."]
                              [--output docs/redirects-benchmark.md]

Both servers run under uvicorn with the same flags, one worker, on 127.0.0.1; the front door is
nginx (Debian's package, as a plain process) with container/proxy/'s config in front of the app,
its per-client rates raised, since wrk is one client. wrk loads them in turn (app, front door,
ceiling, app, ...). Prints redirects/s, p50/p99 latency, the front-door/app and app/ceiling
ratios, the app's peak RSS, and the clicks the app recorded against the redirects it served; with
--output (as `make bench` gives it) it also writes them, with the date and the machine, to a docs
page. Numbers are for comparing in one run on one machine, never for asserting in a test.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402
from tests.helpers.server import free_port  # noqa: E402 - the tests' helper, reused

SERVER_FLAGS = "--loop uvloop --http httptools --no-access-log --log-level warning --workers 1"


@dataclass
class Load:
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


def start(app: str, flags: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *flags.split()]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/x", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{app} did not start")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int, connections: int) -> Load:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(errors_match.group(1)) if errors_match else 0
    errors += sum(map(int, socket_errors.groups())) if socket_errors else 0
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return Load(requests, errors, rps, _ms(latency["50"]), _ms(latency["99"]))


# The front door's two ways to find the app, each measured: compose's (the name looked up per request,
# so each request opens a connection) and Kubernetes' (a Service's address, with kept-alive connections).
UPSTREAMS = {"front door": "upstream.conf", "door, keepalive": "upstream-kubernetes.conf"}


def start_front_door(workdir: Path, app_url: str, upstream: str) -> tuple[subprocess.Popen | None, str]:
    """nginx with the front door's config and `upstream` (a file of container/proxy/), in front of the
    app at `app_url`; (None, why) without nginx."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        return None, "nginx is not installed (Debian: apt-get install nginx): the front-door rows are left out"
    folder = workdir / upstream.removesuffix(".conf")
    folder.mkdir()
    for conf in ("http.conf", "server.conf", "app-routes.conf", "security-headers.conf"):
        text = (ROOT / "container" / "proxy" / conf).read_text()
        # One wrk is one client: the per-client rates would measure the limit, not the hop.
        text = re.sub(r"rate=\d+r/s", "rate=1000000r/s", text)
        (folder / conf).write_text(re.sub(r"limit_conn per_client \d+;", "limit_conn per_client 60000;", text))
    # The shipped file, with the app's address for the name "app:8000".
    text = (ROOT / "container" / "proxy" / upstream).read_text()
    (folder / "upstream.conf").write_text(text.replace("app:8000", app_url.removeprefix("http://")))
    port = free_port()
    main_conf = (ROOT / "container" / "proxy" / "nginx.conf").read_text()
    main_conf = main_conf.replace("pid /tmp/nginx.pid;", f"pid {folder}/nginx.pid;")
    main_conf = main_conf.replace("listen 8080 default_server;", f"listen 127.0.0.1:{port} default_server;")
    (folder / "nginx.conf").write_text(main_conf)
    log = (folder / "nginx.log").open("w")
    process = subprocess.Popen([nginx, "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
                               stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the front door (nginx) did not start:\n{(folder / 'nginx.log').read_text()[-2000:]}")


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-flags", default=SERVER_FLAGS)
    parser.add_argument("--output", type=Path, help="also write the results, dated, to this Markdown page")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="shortener-bench-"))
    app_env = {"DB_URL": f"sqlite:///{workdir}/bench.db", "BASE_URL": "http://short.test", "LOG_LEVEL": "WARNING"}
    # The schema first, as every deployment does (the app refuses to start without it).
    subprocess.run([sys.executable, "-m", "shortener_app.migrate"], cwd=ROOT, env={**os.environ, **app_env},
                   check=True)  # fmt: skip
    app, app_url = start("shortener_app.main:app", args.server_flags, app_env)
    ceiling, ceiling_url = start("bench.ceiling:app", args.server_flags, {})
    doors: list[subprocess.Popen] = []
    try:
        targets = {"app": app_url}
        for name, upstream in UPSTREAMS.items():
            door, door_url = start_front_door(workdir, app_url, upstream)
            if door is None:
                print(door_url, flush=True)
                break
            doors.append(door)
            targets[name] = door_url
        targets["ceiling"] = ceiling_url
        link = httpx.post(f"{app_url}/url", json={"target_url": "https://example.com/"}).json()
        results: dict[str, list[Load]] = {name: [] for name in targets}
        for round_ in range(1, args.rounds + 1):
            for name, url in ((name, f"{base}/{link['key']}") for name, base in targets.items()):
                load = wrk(url, args.seconds, args.connections)
                results[name].append(load)
                print(
                    f"round {round_} {name:10} {load.rps:9.0f} redirects/s  p50 {load.p50_ms:6.2f} ms  "
                    f"p99 {load.p99_ms:6.2f} ms  errors {load.errors}",
                    flush=True,
                )
        # Redirects through the front door reach the app too, and count a click there.
        served = sum(load.requests - load.errors for name in ("app", *UPSTREAMS) for load in results.get(name, []))
        secret_path = link["admin_url"].removeprefix("http://short.test")
        recorded = httpx.get(f"{app_url}{secret_path}").json()["clicks"]
        rss = peak_rss_mib(app.pid)
    finally:
        for process in (app, ceiling, *doors):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    app_rps = statistics.median(load.rps for load in results["app"])
    ceiling_rps = statistics.median(load.rps for load in results["ceiling"])
    load_line = f"wrk, 1 thread, {args.connections} connections, {args.seconds} s, {args.rounds} rounds each"
    # wrk stops counting at its deadline; requests then in flight (at most one per connection)
    # reached the app and were counted there, so recorded may exceed served by that much.
    in_flight = recorded - served
    counted = sum(1 for name in results if name != "ceiling")
    verdict = "none lost" if 0 <= in_flight <= args.connections * args.rounds * counted else "MISMATCH"
    clicks = f"{recorded} recorded / {served} 3xx counted by wrk ({verdict}; {in_flight} in flight)"
    print()
    print(f"server flags      {args.server_flags}")
    print(f"load              {load_line}")
    for name, loads in results.items():
        print(f"{name:17} {summary(loads)}")
    print(f"ratio app/ceiling {app_rps / ceiling_rps:.2f}")
    door = [front_door_line(results, name, app_rps) for name in UPSTREAMS]
    print(*door, sep="\n")
    print(f"app peak RSS      {rss:.1f} MiB")
    print(f"clicks            {clicks}")
    if args.output:
        page = [
            "# Redirects per second: the app, through the front door and straight, against the framework ceiling",
            "",
            f"Generated by bench/redirects.py (`make bench`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"on {machine.describe()}, Python {sys.version.split()[0]}.",
            "",
            f"Both servers run under uvicorn `{args.server_flags}` on 127.0.0.1, the app on a fresh SQLite "
            "file; the ceiling is a FastAPI route returning a constant `RedirectResponse` on the same server "
            "(bench/ceiling.py). The front door is nginx with container/proxy/'s config (its per-client rates "
            "raised: wrk is one client) in front of the same app, finding it as compose does (upstream.conf: "
            "the name looked up per request, a connection per request) and as Kubernetes does "
            f"(upstream-kubernetes.conf: kept-alive connections to a Service). Load: {load_line}, in turn. "
            "One run on one machine: "
            "compare the two rows with each other, not with another machine's numbers.",
            "",
            "| | redirects/s (median) | p50 (median) | p99 (worst round) |",
            "|---|---|---|---|",
            *(table_row(name, loads) for name, loads in results.items()),
            "",
            f"- ratio app/ceiling: {app_rps / ceiling_rps:.2f}",
            *(f"- {line}" for line in door),
            f"- app peak RSS: {rss:.1f} MiB",
            f"- clicks: {clicks}",
            "- every round:",
            *(
                f"  - round {index + 1} {name}: {load.rps:.0f} redirects/s, p50 {load.p50_ms:.2f} ms, "
                f"p99 {load.p99_ms:.2f} ms, errors {load.errors}"
                for index in range(args.rounds)
                for name, loads in results.items()
                for load in [loads[index]]
            ),
        ]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(page) + "\n")
        print(f"\nwritten to {args.output}")


def front_door_line(results: dict[str, list[Load]], name: str, app_rps: float) -> str:
    """What the hop through the front door costs; the goal is at most 20% of the app's throughput."""
    if name not in results:
        return f"{name}: not measured (no nginx here)"
    door_rps = statistics.median(load.rps for load in results[name])
    door_p99 = max(load.p99_ms for load in results[name])
    app_p99 = max(load.p99_ms for load in results["app"])
    return (f"ratio {name}/app {door_rps / app_rps:.2f} (the hop costs {1 - door_rps / app_rps:.0%} of "
            f"throughput; goal at most 20%), p99 {door_p99:.2f} ms against {app_p99:.2f} ms")  # fmt: skip


def table_row(name: str, loads: list[Load]) -> str:
    rps = statistics.median(load.rps for load in loads)
    p50 = statistics.median(load.p50_ms for load in loads)
    p99 = max(load.p99_ms for load in loads)
    return f"| {name} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms |"


def summary(loads: list[Load]) -> str:
    rps = statistics.median(load.rps for load in loads)
    p50 = statistics.median(load.p50_ms for load in loads)
    p99 = max(load.p99_ms for load in loads)
    return f"{rps:.0f} redirects/s (median), p50 {p50:.2f} ms, p99 {p99:.2f} ms (worst round)"


if __name__ == "__main__":
    main()
