"""deploy/kubernetes: the kustomize base, rendered by `kubectl kustomize`, against the image's facts.

No cluster runs here: these tests check what can be checked without one. The base renders; the
pods run as the image's user with the image's hardening; the probes ask the image's health path
on its port; the Service, PodDisruptionBudget and NetworkPolicy select the pods; the front door is
the compose stack's nginx with container/proxy/'s very files, the only way to the app, and nginx
loads that config; and checkov (a well-kept scanner, run offline) finds nothing that is not
skipped with a reason in the manifest.
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
    """The base as `kubectl kustomize` renders it: the app's objects by kind, the front door's (labelled
    app.kubernetes.io/name: front-door) as front-door/<kind>; each appears once."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        unavailable("kubectl is not installed (Debian: apt-get install kubernetes-client)", "REQUIRE_KUBECTL")
    result = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize failed: {result.stderr}"
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def key(doc: dict) -> str:
        door = doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "front-door"
        return f"front-door/{doc['kind']}" if door else doc["kind"]

    keys = [key(doc) for doc in documents]
    assert len(keys) == len(set(keys)), f"one object of each kind for the app and for the door expected: {keys}"
    return {key(doc): doc for doc in documents}


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
    assert sorted(rendered) == ["ConfigMap", "Deployment", "Job", "Namespace", "NetworkPolicy", "PodDisruptionBudget",
                                "Secret", "Service", "front-door/ConfigMap", "front-door/Deployment",
                                "front-door/Ingress", "front-door/NetworkPolicy", "front-door/Service"]  # fmt: skip
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
    (allowed,) = policy["ingress"]
    assert [port_number(container, p["port"]) for p in allowed["ports"]] == [image_facts()["port"]]
    door = rendered["front-door/Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert [peer["podSelector"]["matchLabels"].items() <= door.items() for peer in allowed["from"]] == [True], (
        "the app's port admits more than the front door's pods: a client could go around its limits"
    )


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


def test_the_front_door_is_the_compose_proxy_with_its_own_files_and_the_only_way_in(rendered: dict[str, dict]) -> None:
    """Before: ingress-nginx annotations (a retired controller's; ignored by any other) stood in for the proxy,
    and its headers and admin no-store needed an edit of the controller's cluster-wide ConfigMap."""
    config = rendered["front-door/ConfigMap"]["data"]
    # Compose's files, but for where the app is: a Service's address, kept-alive (upstream-kubernetes.conf).
    shipped = {name: PROXY / ("upstream-kubernetes.conf" if name == "upstream.conf" else name) for name in config}
    assert config == {name: path.read_text() for name, path in shipped.items()}, "the cluster would run other files"
    assert set(config) == {
        "nginx.conf",
        "http.conf",
        "upstream.conf",
        "server.conf",
        "app-routes.conf",
        "security-headers.conf",
    }
    door = rendered["front-door/Deployment"]["spec"]["template"]["spec"]
    (nginx,) = door["containers"]
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["proxy"]
    assert (nginx["image"], nginx["command"]) == (compose["image"], compose["command"]), (
        "not compose's front door (Dependabot bumps the two nginx tags in two pull requests: merge them together)"
    )
    volumes = {volume["name"]: volume for volume in door["volumes"]}
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in nginx["volumeMounts"]}
    assert mounts["/etc/nginx/proxy"]["configMap"]["name"] == rendered["front-door/ConfigMap"]["metadata"]["name"]
    # The same bound on RAM for nginx's buffers as compose's tmpfs.
    size = next(entry for entry in compose["tmpfs"] if entry.startswith("/tmp:")).split("size=")[1]
    assert mounts["/tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": size.replace("m", "Mi")}
    hardening = nginx["securityContext"]
    assert (hardening["runAsUser"], hardening["readOnlyRootFilesystem"], hardening["capabilities"]) == (
        int(compose["user"].split(":")[0]), True, {"drop": ["ALL"]})  # fmt: skip
    # upstream.conf's app:8000 is the app's Service.
    upstream = re.search(r"server (\S+):(\d+);", config["upstream.conf"]).groups()
    service = rendered["Service"]
    assert (service["metadata"]["name"], str(service["spec"]["ports"][0]["port"])) == upstream
    # The way in from outside is the door's Service, with nothing of one controller's.
    ingress = rendered["front-door/Ingress"]
    (rule,) = ingress["spec"]["rules"]
    backends = {path["backend"]["service"]["name"] for path in rule["http"]["paths"]}
    assert backends == {rendered["front-door/Service"]["metadata"]["name"]}
    annotated = [doc["metadata"]["name"] for doc in rendered.values()
                 if any("ingress.kubernetes.io" in key for key in doc["metadata"].get("annotations", {}))]  # fmt: skip
    assert annotated == [] and "ingressClassName" not in ingress["spec"], annotated


@pytest.mark.docker
def test_nginx_loads_the_front_door_config_the_base_renders(
    docker_engine: None, rendered: dict[str, dict], tmp_path: Path
) -> None:
    """The ConfigMap's files, mounted as the Deployment mounts them, with the Deployment's user and a
    read-only root: `nginx -t` accepts them (the app's Service name stands in as 127.0.0.1)."""
    for name, text in rendered["front-door/ConfigMap"]["data"].items():
        (tmp_path / name).write_text(text)
    tmp_path.chmod(0o755)
    (nginx,) = rendered["front-door/Deployment"]["spec"]["template"]["spec"]["containers"]
    user = nginx["securityContext"]["runAsUser"]

    def nginx_test() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--user", f"{user}:{user}", "--add-host",
             "app:127.0.0.1", "-v", f"{tmp_path}:/etc/nginx/proxy:ro", nginx["image"], "nginx", "-t", "-c",
             "/etc/nginx/proxy/nginx.conf"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    result = nginx_test()
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr[-2000:]
    # An overlay's real-ip.conf (docs/scaling.md: the client's address behind an Ingress controller)
    # is read from the same folder: a wrong one is refused, so a right one is in force.
    (tmp_path / "real-ip.conf").write_text("set_real_ip_from 10.0.0.0/8;\nreal_ip_header X-Forwarded-For;\n")
    assert nginx_test().returncode == 0
    (tmp_path / "real-ip.conf").write_text("set_real_ip_from not-an-address;\n")
    assert "real-ip.conf" in nginx_test().stderr, "real-ip.conf is not read"
