"""deploy/kubernetes: the kustomize base, rendered by `kubectl kustomize`, against the image's facts.

No cluster runs here: these tests check what can be checked without one. The base renders; the
pods run as the image's user with the image's hardening; the probes ask the image's health path
on its port; the Service, PodDisruptionBudget and NetworkPolicy select the pods; and checkov (a
well-kept scanner, run offline) finds nothing that is not skipped with a reason in the manifest.
"""

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.assets import asset
from tests.helpers.repo import ROOT
from tests.helpers.required import unavailable
from tests.helpers.scanners import checkov

BASE = ROOT / "deploy" / "kubernetes"

healthcheck = asset("healthcheck")


def image_facts() -> dict[str, Any]:
    """User, group, port and health probe of both images, read from the Dockerfiles (which must agree)."""
    facts = []
    for dockerfile in ("Dockerfile.slim", "Dockerfile.alpine"):
        text = (ROOT / dockerfile).read_text()
        user, group = re.search(r"^USER (\d+):(\d+)$", text, re.M).groups()
        start_period = re.search(r"^HEALTHCHECK .*--start-period=(\d+)s", text, re.M).group(1)
        facts.append({"uid": int(user), "gid": int(group), "port": int(re.search(r"^EXPOSE (\d+)$", text, re.M)[1]),
                      "start_period": int(start_period)})  # fmt: skip
    assert facts[0] == facts[1], f"the two Dockerfiles disagree: {facts}"
    assert facts[0]["port"] == healthcheck.PORT, "the image's health probe asks another port than it exposes"
    return {**facts[0], "health_path": healthcheck.PATH}


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict]:
    """The base as `kubectl kustomize` renders it, by kind (each kind appears once)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        unavailable("kubectl is not installed (Debian: apt-get install kubernetes-client)", "REQUIRE_KUBECTL")
    result = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize failed: {result.stderr}"
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = [doc["kind"] for doc in documents if doc["kind"] != "Ingress"]
    assert len(kinds) == len(set(kinds)), f"one object of each kind but Ingress expected: {kinds}"
    # Ingresses by name: an annotation holds for a whole Ingress, so each rate has its own.
    return {doc["kind"] if doc["kind"] != "Ingress" else f"Ingress/{doc['metadata']['name']}": doc for doc in documents}


def pod_spec(rendered: dict[str, dict]) -> dict:
    return rendered["Deployment"]["spec"]["template"]["spec"]


def app_container(rendered: dict[str, dict]) -> dict:
    (container,) = pod_spec(rendered)["containers"]
    return container


def port_number(container: dict, port: int | str) -> int:
    """A port as a probe or Service names it, resolved through the container's named ports."""
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def test_the_base_renders_a_deployment_service_settings_secret_budget_and_policy(rendered: dict[str, dict]) -> None:
    assert sorted(rendered) == ["ConfigMap", "Deployment", "Ingress/shortener", "Ingress/shortener-create", "Job",
                                "Namespace", "NetworkPolicy", "PodDisruptionBudget", "Secret", "Service"]  # fmt: skip
    namespace = rendered["Namespace"]["metadata"]["name"]
    assert all(doc["metadata"].get("namespace") == namespace for kind, doc in rendered.items() if kind != "Namespace")
    assert rendered["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert rendered["Deployment"]["spec"]["replicas"] >= 2, "one replica is not 'beyond one machine'"


def test_the_pods_run_as_the_image_user_with_nothing_writable_but_tmp(rendered: dict[str, dict]) -> None:
    facts = image_facts()
    pod, container = pod_spec(rendered), app_container(rendered)
    for context in (pod["securityContext"], container["securityContext"]):
        assert context["runAsNonRoot"] is True
        assert (context["runAsUser"], context["runAsGroup"]) == (facts["uid"], facts["gid"]), "not the image's user"
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    hardening = container["securityContext"]
    assert hardening["readOnlyRootFilesystem"] is True
    assert hardening["allowPrivilegeEscalation"] is False
    assert hardening["capabilities"] == {"drop": ["ALL"]}, "a capability is kept or added"
    assert pod["automountServiceAccountToken"] is False
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}
    assert list(mounts) == ["/tmp"], f"writable places besides /tmp: {list(mounts)}"
    assert "emptyDir" in mounts["/tmp"]


def test_the_probes_ask_the_image_health_path_on_its_port_and_startup_gets_the_start_period(
    rendered: dict[str, dict],
) -> None:
    facts = image_facts()
    container = app_container(rendered)
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("http", facts["port"])]
    probes = {name: container[name] for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    for name, probe in probes.items():
        assert probe["httpGet"]["path"] == facts["health_path"], f"{name} asks another path"
        assert port_number(container, probe["httpGet"]["port"]) == facts["port"], f"{name} asks another port"
    startup = probes["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= facts["start_period"], (
        "the startup probe gives up before the image's own HEALTHCHECK start period"
    )
    window = {name: p["periodSeconds"] * p["failureThreshold"] for name, p in probes.items()}
    assert window["livenessProbe"] > window["readinessProbe"], (
        "/health asks the database too: a restart must come well after the pod leaves the Service"
    )


def test_the_service_budget_and_policy_select_the_pods_and_their_port(rendered: dict[str, dict]) -> None:
    deployment, container = rendered["Deployment"], app_container(rendered)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = rendered["Service"]["spec"]
    assert service["selector"].items() <= labels.items(), "the Service selects no pod"
    assert port_number(container, service["ports"][0]["targetPort"]) == image_facts()["port"]
    budget = rendered["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items(), "the budget protects no pod"
    assert budget["maxUnavailable"] < deployment["spec"]["replicas"], "a drain could take every replica"
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0, "a rollout would lower capacity"
    policy = rendered["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert [port_number(container, p["port"]) for p in policy["ingress"][0]["ports"]] == [image_facts()["port"]]


def test_the_migrate_job_runs_the_migrate_command_from_the_app_image_with_its_settings_and_hardening(
    rendered: dict[str, dict],
) -> None:
    job = rendered["Job"]["spec"]["template"]["spec"]
    (migrate,), app = job["containers"], app_container(rendered)
    assert migrate["command"] == ["python", "-m", "shortener_app.migrate"]
    assert migrate["image"] == app["image"], "the migrate step must run the image the pods run"
    assert (migrate["envFrom"], migrate["env"]) == (app["envFrom"], app["env"]), "another database or settings"
    assert (
        migrate["securityContext"] == app["securityContext"]
        and job["securityContext"] == pod_spec(rendered)["securityContext"]
    )
    assert job["restartPolicy"] == "Never" and rendered["Job"]["spec"]["backoffLimit"] > 0
    # The Service, budget and policy must not count the migrate pod as a replica.
    serving = rendered["Deployment"]["spec"]["selector"]["matchLabels"]
    assert not serving.items() <= rendered["Job"]["spec"]["template"]["metadata"]["labels"].items()


def test_db_url_is_a_postgresql_url_from_the_rendered_secret_and_resources_are_bounded(
    rendered: dict[str, dict],
) -> None:
    container = app_container(rendered)
    (db_url,) = [item for item in container["env"] if item["name"] == "DB_URL"]
    reference = db_url["valueFrom"]["secretKeyRef"]
    secret = rendered["Secret"]
    assert reference["name"] == secret["metadata"]["name"], "DB_URL names a Secret the base does not render"
    value = base64.b64decode(secret["data"][reference["key"]]).decode()
    assert value.startswith("postgresql+psycopg://"), "replicas must share PostgreSQL, not one SQLite file each"
    (settings,) = container["envFrom"]
    assert settings["configMapRef"]["name"] == rendered["ConfigMap"]["metadata"]["name"]
    resources = container["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys() and {"cpu", "memory"} <= resources["limits"].keys()


def weakened(rendered: dict[str, dict]) -> list[dict]:
    """The rendered base with the container's hardening and probes taken out."""
    documents = json.loads(json.dumps(list(rendered.values())))
    deployment = next(doc for doc in documents if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for key in ("securityContext", "livenessProbe", "readinessProbe"):
        del container[key]
    return documents


def test_checkov_finds_nothing_that_is_not_skipped_with_a_reason(rendered: dict[str, dict], tmp_path: Path) -> None:
    scanned = tmp_path / "scanned"
    scanned.mkdir()
    (scanned / "base.yaml").write_text(yaml.safe_dump_all(rendered.values()))
    (scanned / "weakened.yaml").write_text(yaml.safe_dump_all(weakened(rendered)))
    # --skip-download: no policy or version download from checkov's vendor; everything runs offline.
    result = subprocess.run([checkov(), "--skip-download", "--framework", "kubernetes", "--output", "json",
                             "--compact", "--directory", str(scanned)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode in (0, 1), f"checkov did not run:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    checks = report["results"] if isinstance(report, dict) else report[0]["results"]

    def of(name: str, outcome: str) -> list[dict]:
        return [check for check in checks[outcome] if check["file_path"].endswith(name)]

    failed = [(check["check_id"], check["check_name"]) for check in of("base.yaml", "failed_checks")]
    assert failed == [], f"checkov findings on the base, neither fixed nor skipped with a reason: {failed}"
    skipped = {check["check_id"]: check["check_result"].get("suppress_comment") or ""
               for check in of("base.yaml", "skipped_checks")}  # fmt: skip
    assert all(len(reason) > 20 for reason in skipped.values()), f"a skip without a reason: {skipped}"
    assert len(of("base.yaml", "passed_checks")) > 40, "checkov ran almost no check on the base"
    caught = {check["check_id"] for check in of("weakened.yaml", "failed_checks")}
    # The same scanner, on the base without its hardening, must see what went missing.
    assert {"CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28", "CKV_K8S_8", "CKV_K8S_9"} <= caught, sorted(caught)


PROXY = ROOT / "container" / "proxy"


def proxy_limits() -> dict[str, str]:
    """The compose proxy's limits, read from its config: what the Ingresses must set too."""
    http, server = (PROXY / "http.conf").read_text(), (PROXY / "server.conf").read_text()

    def one(pattern: str, text: str) -> str:
        (found,) = re.findall(pattern, text)
        return found

    rates = dict(re.findall(r"limit_req_zone \S+ zone=(\w+):\S+ rate=(\d+)r/s;", http))
    bursts = dict(re.findall(r"limit_req zone=(\w+) burst=(\d+)", server))
    return {
        "body": one(r"client_max_body_size (\S+);", http),
        "connections": one(r"(\d+)", " ".join(set(re.findall(r"limit_conn per_client (\d+);", server)))),
        "lookup_rate": rates["lookup"], "lookup_burst": bursts["lookup"],
        "create_rate": rates["create"], "create_burst": bursts["create"],
        "connect": one(r"proxy_connect_timeout (\d+)s;", http),
        "send": one(r"proxy_send_timeout (\d+)s;", http),
        "read": one(r"proxy_read_timeout (\d+)s;", http),
    }  # fmt: skip


def test_the_ingresses_set_the_limits_of_the_compose_proxy(rendered: dict[str, dict]) -> None:
    """The same front door on Kubernetes: ingress-nginx's annotations, held to container/proxy/'s values."""
    limits = proxy_limits()
    prefix = "nginx.ingress.kubernetes.io/"
    for name, (rate, burst) in {"shortener": ("lookup_rate", "lookup_burst"),
                                "shortener-create": ("create_rate", "create_burst")}.items():  # fmt: skip
        ingress = rendered[f"Ingress/{name}"]
        notes = {key.removeprefix(prefix): value for key, value in ingress["metadata"]["annotations"].items()}
        assert notes["proxy-body-size"] == notes["client-body-buffer-size"] == limits["body"], name
        assert notes["proxy-request-buffering"] == "on", name
        assert notes["limit-connections"] == limits["connections"], name
        assert notes["limit-rps"] == limits[rate], name
        assert int(notes["limit-rps"]) * int(notes["limit-burst-multiplier"]) == int(limits[burst]), name
        assert (notes["proxy-connect-timeout"], notes["proxy-send-timeout"], notes["proxy-read-timeout"]) == (
            limits["connect"], limits["send"], limits["read"]), name  # fmt: skip
        assert not any("snippet" in key for key in notes), f"{name}: snippets are off in ingress-nginx by default"
        (rule,) = ingress["spec"]["rules"]
        backends = {path["backend"]["service"]["name"] for path in rule["http"]["paths"]}
        assert backends == {rendered["Service"]["metadata"]["name"]} and ingress["spec"]["tls"], name
    (create,) = rendered["Ingress/shortener-create"]["spec"]["rules"][0]["http"]["paths"]
    assert (create["path"], create["pathType"]) == ("/url", "Exact")
