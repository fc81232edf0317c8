"""The TLS override (compose.tls.yaml, container/proxy/nginx-tls.conf) through the real stack.

One compose project, shared by the tests that need it, starts with a throwaway CA's certificate;
the ACME test, last, replaces it with certificates issued and renewed by pebble (Let's Encrypt's
test CA, run here) over HTTP-01 through the proxy's own port 80. Every wait is bounded.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy.test_compose import compose, require_compose
from tests.helpers.engine import base_available, docker
from tests.helpers.faults import note
from tests.helpers.repo import ROOT
from tests.helpers.required import unavailable
from tests.helpers.server import free_port

pytestmark = pytest.mark.docker

HOST = "shortener.test"
FILES = ("-f", "compose.yaml", "-f", "compose.tls.yaml")
ACME_HOW = "apt-get install pebble certbot (Debian 12's pebble ships pebble-challtestsrv too)"


def openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


def sign(folder: Path, name: str, san: str) -> None:
    """`name`.pem and `name`-key.pem in `folder`, signed by the throwaway CA there (ca.pem)."""
    if not (folder / "ca.pem").exists():
        openssl(folder, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
                "2", "-subj", "/CN=front door test CA", "-keyout", "ca-key.pem", "-out", "ca.pem")  # fmt: skip
    openssl(folder, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.csr")  # fmt: skip
    (folder / f"{name}.cnf").write_text(f"subjectAltName = {san}\nextendedKeyUsage = serverAuth\n")
    openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.cnf", "-out", f"{name}.pem")  # fmt: skip


def install_certificate(certs: Path, fullchain: Path, privkey: Path) -> None:
    """As docs/compose.md tells: a copy (not a link), the key readable by nginx's user (UID 101) alone."""
    shutil.copyfile(fullchain, certs / "fullchain.pem")
    shutil.copyfile(privkey, certs / "privkey.pem")
    os.chown(certs / "privkey.pem", 101, 101)
    (certs / "privkey.pem").chmod(0o600)


def make_certificates(folder: Path, host: str) -> Path:
    """A throwaway CA and a server certificate it signs for `host`, in folder/certs as compose.tls.yaml
    expects them (with the ACME webroot, certs/acme); returns the CA's certificate."""
    sign(folder, host, f"DNS:{host}")
    certs = folder / "certs"
    (certs / "acme").mkdir(mode=0o755, parents=True)
    certs.chmod(0o755)
    install_certificate(certs, folder / f"{host}.pem", folder / f"{host}-key.pem")
    folder.chmod(0o755)
    return folder / "ca.pem"


def require_tls_tools() -> None:
    require_compose()
    if reason := base_available("slim"):
        pytest.skip(reason)
    if os.geteuid() != 0 or shutil.which("curl") is None or shutil.which("openssl") is None:
        unavailable("the TLS tests need root (to give the key to UID 101), curl and openssl", "REQUIRE_DOCKER")


def clean_env(**extra: str) -> dict[str, str]:
    names = ("COMPOSE_PROFILES", "WITH_POSTGRES", "COMPOSE_FILE", "TLS_DOMAIN", "TLS_CERTS", "ACME_WEBROOT", "BASE_URL")
    return {name: value for name, value in os.environ.items() if name not in names} | extra


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=30)


def raw_http(port: int, request: bytes) -> bytes:
    """One request on one connection, read until the server closes it (bounded by the socket timeout)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@dataclass
class TlsStack:
    project: str
    http_port: int
    https_port: int
    env: dict[str, str]
    folder: Path
    ca: Path

    @property
    def certs(self) -> Path:
        return self.folder / "certs"

    def compose(self, *args: str) -> str:
        return compose(*FILES, *args, env=self.env, project=self.project)

    def served_certificate(self, cafile: Path) -> dict:
        """The certificate the proxy serves for HOST, verified against `cafile`."""
        context = ssl.create_default_context(cafile=str(cafile))
        with (
            socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            return tls.getpeercert() | {"der": tls.getpeercert(binary_form=True)}


@pytest.fixture(scope="module")
def tls(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsStack]:
    require_tls_tools()
    folder = tmp_path_factory.mktemp("tls")
    ca = make_certificates(folder, HOST)
    project, http_port, https_port = f"shortener-tls-{uuid.uuid4().hex[:8]}", free_port(), free_port()
    env = clean_env(
        HTTP_PORT=str(http_port), HTTPS_PORT=str(https_port), TLS_CERTS=str(folder / "certs"), TLS_DOMAIN=HOST
    )
    stack = TlsStack(project, http_port, https_port, env, folder, ca)
    try:
        stack.compose("up", "-d", "--build", "--wait")
        yield stack
    finally:
        compose(*FILES, "down", "-v", "--remove-orphans", env=env, project=project)


def test_the_tls_profile_serves_https_with_the_mounted_certificate_and_redirects_http(tls: TlsStack) -> None:
    resolve = ("--resolve", f"{HOST}:{tls.https_port}:127.0.0.1")
    base = f"https://{HOST}:{tls.https_port}"
    health = curl("--cacert", str(tls.ca), *resolve, "-D", "-", f"{base}/health")
    created = curl("--cacert", str(tls.ca), *resolve, "-H", "content-type: application/json",
                   "--data", '{"target_url": "https://example.com/tls"}', f"{base}/url")  # fmt: skip
    untrusted = curl(*resolve, f"{base}/health")
    redirect = curl("-D", "-", "-o", "/dev/null", "-H", f"Host: {HOST}", f"http://127.0.0.1:{tls.http_port}/abc?x=1")
    plain_health = curl("-f", f"http://127.0.0.1:{tls.http_port}/health")
    note(f"TLS profile: health {health.stdout.splitlines()[0] if health.stdout else health.stderr!r}; "
         f"untrusted -> {untrusted.returncode}; http -> {redirect.stdout.splitlines()[:1]}")  # fmt: skip
    assert health.returncode == 0 and health.stdout.startswith("HTTP/2 200"), health.stdout + health.stderr
    assert "strict-transport-security: max-age=63072000" in health.stdout.lower()
    assert created.returncode == 0 and json.loads(created.stdout)["url"].startswith(f"https://{HOST}/")
    assert untrusted.returncode == 60, "a client without the CA trusted the certificate"
    assert redirect.stdout.startswith("HTTP/1.1 301"), redirect.stdout
    assert f"location: https://{HOST}/abc?x=1" in redirect.stdout.lower()
    assert plain_health.returncode == 0, "local probes ask /health over plain HTTP"


def test_the_http_port_never_redirects_to_a_host_the_client_chose(tls: TlsStack) -> None:
    """Before: `Host: evil.example` got `301 Location: https://evil.example/abc` (a cacheable redirect
    anywhere), and plain HTTP to the HTTPS port nginx's HTML page."""
    port = tls.http_port
    asked = {
        "Host: evil.example": b"GET /abc HTTP/1.1\r\nHost: evil.example\r\n",
        "absolute URI to evil.example": f"GET http://evil.example/abc HTTP/1.1\r\nHost: {HOST}\r\n".encode(),
        "no Host (HTTP/1.0)": b"GET /abc HTTP/1.0\r\n",
    }
    answers = {name: raw_http(port, head + b"Connection: close\r\n\r\n") for name, head in asked.items()}
    own = raw_http(port, f"GET /abc HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
    garbage = raw_http(port, b"NOT HTTP AT ALL\r\n\r\n")
    no_token = raw_http(port, f"GET /.well-known/acme-challenge/none HTTP/1.1\r\nHost: {HOST}\r\n"
                              "Connection: close\r\n\r\n".encode())  # fmt: skip
    plain_to_tls = raw_http(tls.https_port, f"GET /abc HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    lines = {name: answer.partition(b"\r\n")[0] for name, answer in answers.items()}
    lines |= {"own name": own.partition(b"\r\n")[0], "plain HTTP to 443": plain_to_tls.partition(b"\r\n")[0]}
    note(f"TLS override, status lines: {lines}")
    for name, answer in answers.items():
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"evil.example" not in head.lower(), f"{name}: {head!r}"
        assert head.startswith(b"HTTP/1.1 421 "), f"{name}: {head!r}"
        assert json.loads(body) == {"detail": "unknown host"}, f"{name}: {body!r}"
        assert b"\r\nContent-Type: application/json" in head and b"\r\nX-Frame-Options: DENY" in head, name
    assert own.startswith(b"HTTP/1.1 301 ") and f"\r\nLocation: https://{HOST}/abc\r\n".encode() in own, own[:300]
    for name, answer, status in (("garbage", garbage, 400), ("a missing challenge token", no_token, 404),
                                 ("plain HTTP to the HTTPS port", plain_to_tls, 400)):  # fmt: skip
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), f"{name}: {head!r}"
        assert b"\r\nContent-Type: application/json" in head and "detail" in json.loads(body), f"{name}: {answer!r}"
        assert b"\r\nLocation:" not in head, f"{name}: {head!r}"


def test_without_the_certificates_folder_compose_refuses_and_names_it(docker_engine: None, tmp_path: Path) -> None:
    """Before: compose created an empty root-owned folder and nginx, finding no certificate, restarted forever."""
    require_tls_tools()
    missing = tmp_path / "no-such-certs"
    project = f"shortener-tls-missing-{uuid.uuid4().hex[:8]}"
    env = clean_env(HTTP_PORT=str(free_port()), HTTPS_PORT=str(free_port()), TLS_CERTS=str(missing), TLS_DOMAIN=HOST)
    command = ["docker", "compose", "-p", project, *FILES, "up", "-d", "--build", "--wait", "--wait-timeout", "60"]
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        proxies = compose(*FILES, "ps", "-a", "--format", "{{.State}}", "proxy", env=env, project=project).split()
    finally:
        compose(*FILES, "down", "-v", "--remove-orphans", env=env, project=project)
    error = (result.stdout + result.stderr).strip().splitlines()[-1:]
    note(f"TLS override without its certificates folder: exit {result.returncode}, {error}; proxy states {proxies}")
    assert not missing.exists(), "compose created the missing folder (an empty, root-owned one)"
    assert result.returncode != 0 and str(missing) in result.stderr, result.stderr[-1000:]
    assert "running" not in proxies and "restarting" not in proxies, proxies


def start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def wait_for(what: str, check, seconds: float, processes: list[subprocess.Popen], logs: list[Path]) -> None:
    """Until check() is true, at most `seconds`; fails at once if one of `processes` exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            break
        try:
            if check():
                return
        except (OSError, httpx.HTTPError, ssl.SSLError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {seconds} s\n" + "\n".join(log.read_text()[-1500:] for log in logs))


def test_a_certificate_issued_and_renewed_over_acme_http_01_is_served_without_a_restart(
    tls: TlsStack, tmp_path: Path
) -> None:
    """pebble validates HTTP-01 by fetching the token from the proxy's published port 80 (its DNS,
    pebble-challtestsrv, answers 127.0.0.1 for every name); certbot --webroot writes the token into
    the mounted webroot. Its deploy hook installs the certificate and reloads nginx (SIGHUP), as
    docs/compose.md tells. Before: port 80 redirected the challenge to HTTPS, so validation failed."""
    if shutil.which("pebble") is None or shutil.which("pebble-challtestsrv") is None or shutil.which("certbot") is None:
        unavailable(f"the ACME test needs pebble, pebble-challtestsrv and certbot: {ACME_HOW}", "REQUIRE_ACME")
    acme, dns, challtest, tls_alpn = free_port(), free_port(), free_port(), free_port()
    sign(tmp_path, "pebble", "IP:127.0.0.1")  # pebble's own HTTPS listener, trusted by certbot below
    (tmp_path / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{acme}", "managementListenAddress": f"127.0.0.1:{free_port()}",
        "certificate": str(tmp_path / "pebble.pem"), "privateKey": str(tmp_path / "pebble-key.pem"),
        "httpPort": tls.http_port, "tlsPort": tls_alpn, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))  # fmt: skip
    management = json.loads((tmp_path / "pebble.json").read_text())["pebble"]["managementListenAddress"]
    # Validation for real: no always-valid shortcut; no reused authorization, so the renewal is
    # validated again; no injected bad nonces (certbot would retry, noise only); no random 0-15 s
    # sleep before validating (the fetch still happens).
    pebble_env = {name: value for name, value in os.environ.items() if not name.startswith("PEBBLE_")}
    pebble_env |= {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0", "PEBBLE_WFE_NONCEREJECT": "0"}
    logs = [tmp_path / "challtestsrv.log", tmp_path / "pebble.log"]
    # DNS only: every name is 127.0.0.1, where the proxy's port 80 is published (its own challenge servers off).
    challtestsrv = ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                    "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                    "-management", f"127.0.0.1:{challtest}"]  # fmt: skip
    pebble = ["pebble", "-config", str(tmp_path / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"]
    processes = [start(challtestsrv, logs[0], pebble_env), start(pebble, logs[1], pebble_env)]
    certbot_dirs = [f"--{kind}-dir={tmp_path / 'certbot' / kind}" for kind in ("config", "work", "logs")]
    certs = tls.certs
    # The hook of docs/compose.md, with this test's folders and project.
    hook = (f'install -m 644 "$RENEWED_LINEAGE/fullchain.pem" {certs}/fullchain.pem'
            f' && install -o 101 -g 101 -m 600 "$RENEWED_LINEAGE/privkey.pem" {certs}/privkey.pem'
            f" && cd {ROOT} && docker compose -p {tls.project} {' '.join(FILES)} kill -s HUP proxy")  # fmt: skip
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    certbot_env = tls.env | {"REQUESTS_CA_BUNDLE": str(tmp_path / "ca.pem")}
    proxy = compose(*FILES, "ps", "-q", "proxy", env=tls.env, project=tls.project).strip()
    started_before = docker("inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", proxy).strip()

    def certbot(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["certbot", *args, *certbot_dirs, "--non-interactive"], env=certbot_env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    def lineage_cert() -> bytes:
        pem = (tmp_path / "certbot" / "config" / "live" / HOST / "cert.pem").read_text()
        return ssl.PEM_cert_to_DER_cert(pem)

    def serves(der: bytes) -> bool:
        return tls.served_certificate(pebble_root)["der"] == der

    try:
        directory = f"https://127.0.0.1:{acme}/dir"
        wait_for("pebble's directory", lambda: httpx.get(directory, verify=trust, timeout=2).status_code == 200,
                 30, processes, logs)  # fmt: skip
        wait_for("pebble-challtestsrv", lambda: socket.create_connection(("127.0.0.1", challtest), 1).close() is None,
                 30, processes, logs)  # fmt: skip
        issued = certbot("certonly", "--server", directory, "--agree-tos",
                         "--register-unsafely-without-email", "--webroot", "-w", str(tls.certs / "acme"),
                         "-d", HOST, "--deploy-hook", hook)  # fmt: skip
        assert issued.returncode == 0, issued.stdout[-2000:] + issued.stderr[-3000:]
        # pebble's issuing root, new each run: what the served chain must verify against.
        pebble_root = tmp_path / "pebble-root.pem"
        pebble_root.write_text(httpx.get(f"https://{management}/roots/0", verify=trust, timeout=10).text)
        first = lineage_cert()
        wait_for("the issued certificate served after the hook's reload", lambda: serves(first), 20, processes, logs)
        served_first = tls.served_certificate(pebble_root)
        # Without a terminal, certbot renew first sleeps a random 0-8 minutes (to spread a CA's load).
        renewed = certbot("renew", "--force-renewal", "--no-random-sleep-on-renew")
        assert renewed.returncode == 0, renewed.stdout[-2000:] + renewed.stderr[-3000:]
        second = lineage_cert()
        wait_for("the renewed certificate served after the hook's reload", lambda: serves(second), 20, processes, logs)
        served_second = tls.served_certificate(pebble_root)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    started_after = docker("inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", proxy).strip()
    fetched = [line for line in tls.compose("logs", "--no-log-prefix", "proxy").splitlines()
               if "GET /.well-known/acme-challenge/" in line and '" 200 ' in line]  # fmt: skip
    issuer = dict(pair[0] for pair in served_first["issuer"])
    note(f"ACME through the proxy: issued serial {served_first['serialNumber']} by {issuer.get('commonName')!r}, "
         f"renewed serial {served_second['serialNumber']}; challenge fetches through nginx {len(fetched)}; "
         f"proxy started {started_before} -> {started_after}")  # fmt: skip
    assert issuer.get("commonName", "").startswith("Pebble Intermediate CA"), served_first["issuer"]
    assert served_second["serialNumber"] != served_first["serialNumber"]
    assert started_after == started_before, "the proxy restarted to take the new certificate"
    assert len(fetched) >= 2, "pebble did not fetch the tokens through nginx at issuance and renewal"
