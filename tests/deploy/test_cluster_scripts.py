"""scripts/cluster-up.sh and cluster-down.sh run end to end against STAND-IN `minikube`,
`kubectl` and `func` executables (tests/deploy/standins.py), not the real tools: no cluster
exists here. The stand-ins record every call and reproduce the upstream behaviours the scripts
must handle: a failed `minikube image build` that exits 0, minikube's build context without the
Dockerfile added back, func's new revision on every deploy and its files in the function's
folder, Knative's default-domain Job (waits while there is no IP, is not rerun when re-applied,
leaves an existing domain alone), Kourier without `minikube tunnel`, Knative's choice among
several catch-all domains, a client-side apply that keeps annotations, the host's CPU count and
the API server's Kubernetes version. `kubectl apply -k` is rendered by the real `kubectl
kustomize`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from tests.deploy.manifests import ROOT, Manifest, container, quantity
from tests.deploy.test_manifest_schemas import KUBERNETES_VERSION
from tests.support.local_redis import FUNCTION_USER, RedisServer

BASH = shutil.which("bash") or "/bin/bash"
TUNNEL_IP = "10.98.12.34"
# What cluster-up.sh reads from the repository.
PROJECT_FILES = [
    "scripts", "k8s", "function", "func.yaml", "Dockerfile", ".dockerignore",
    "requirements.txt", "requirements-function.txt", "constraints.txt", "pyproject.toml",
]  # fmt: skip


@dataclass
class Cluster:
    """A copy of the project beside stand-in tools and the model they share."""

    root: Path
    bin_dir: Path
    state_path: Path
    record_path: Path

    def state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.state_path.read_text())
        return loaded

    def set(self, **values: Any) -> None:
        state = self.state() if self.state_path.exists() else {}
        state.update(values)
        self.state_path.write_text(json.dumps(state))

    def calls(self, tool: str) -> list[list[str]]:
        if not self.record_path.exists():
            return []
        entries = [json.loads(line) for line in self.record_path.read_text().splitlines()]
        return [entry["args"] for entry in entries if entry["tool"] == tool]

    def run(self, script: str = "cluster-up.sh", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BASH, str(self.root / "scripts" / script)],
            env={
                "PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin",
                "HOME": str(self.root.parent),
                "STANDIN_STATE": str(self.state_path),
                "STANDIN_RECORD": str(self.record_path),
                "STANDIN_REAL_KUBECTL": REAL_KUBECTL,
                "PYTHONPATH": str(ROOT),
                "POLL_SECONDS": "1",
                "TUNNEL_WAIT_SECONDS": "2",
                "DOMAIN_JOB_WAIT_SECONDS": "10",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )


REAL_KUBECTL = shutil.which("kubectl") or ""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    if not REAL_KUBECTL:
        pytest.skip("kubectl is not installed: the stand-in renders k8s/ with kubectl kustomize")
    root = tmp_path / "project"
    root.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    (root / ".gitignore").write_text("/.kustomize-*/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    bin_dir = tmp_path / "standin-bin"
    bin_dir.mkdir()
    # The host's CPU count, as cluster-up reads it (getconf), is the test's to choose.
    getconf = bin_dir / "getconf"
    getconf.write_text('#!/bin/sh\necho "${STANDIN_HOST_CPUS:-8}"\n')
    getconf.chmod(0o755)
    for tool in ("minikube", "kubectl", "func"):
        program = bin_dir / tool
        program.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -S -m tests.deploy.standins {tool} "$@"\n'
        )
        program.chmod(0o755)
    return Cluster(root, bin_dir, tmp_path / "state.json", tmp_path / "calls.jsonl")


def domain_keys(cluster: Cluster) -> list[str]:
    return sorted(key for key in cluster.state()["domain"] if key != "_example")


def test_first_run_builds_deploys_and_prints_the_sslip_url(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    result = cluster.run(DEPLOY_WITH="kubectl")
    assert result.returncode == 0, result.stdout + result.stderr
    state = cluster.state()
    (built,) = state["images"]
    assert built.startswith("dev.local/kv-store:src-")
    assert domain_keys(cluster) == [f"{TUNNEL_IP}.sslip.io"]
    assert f"http://kv-store.kv-store.{TUNNEL_IP}.sslip.io/testurl" in result.stdout


def test_image_override_retags_the_rendered_service(cluster: Cluster) -> None:
    """The throwaway overlay, rendered by the real kustomize, carries the tag just built."""
    cluster.set(tunnel_ip=TUNNEL_IP)
    result = cluster.run(DEPLOY_WITH="kubectl")
    assert result.returncode == 0, result.stderr
    state = cluster.state()
    (built,) = state["images"]
    applied = [image for images in state["applied_images"] for image in images]
    assert built in applied
    assert "dev.local/kv-store:1.0.0" not in applied
    assert not list(cluster.root.glob(".kustomize-*")), "the overlay is removed afterwards"


def test_a_failed_build_stops_before_anything_is_deployed(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP, build_fails=True)
    result = cluster.run(DEPLOY_WITH="kubectl")
    assert result.returncode == 1
    assert "was not built" in result.stderr
    assert "process did not complete successfully" in result.stderr, "the build's own output"
    assert cluster.calls("func") == []
    applied = [image for images in cluster.state()["applied_images"] for image in images]
    assert applied and not [image for image in applied if image.startswith("dev.local/")]


def test_a_context_without_the_dockerfile_fails_the_build(cluster: Cluster) -> None:
    """minikube does not add the Dockerfile back: .dockerignore must let it through."""
    ignore = cluster.root / ".dockerignore"
    ignore.write_text(ignore.read_text().replace("!Dockerfile\n", ""))
    cluster.set(tunnel_ip=TUNNEL_IP)
    result = cluster.run(DEPLOY_WITH="kubectl")
    assert result.returncode == 1
    assert "Dockerfile: not found in the build context" in result.stderr


def test_func_rerun_with_nothing_changed_makes_no_new_revision(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    first = cluster.run(DEPLOY_WITH="func")
    assert first.returncode == 0, first.stdout + first.stderr
    second = cluster.run(DEPLOY_WITH="func")
    assert second.returncode == 0, second.stderr
    assert "func not run, no new revision" in second.stdout
    assert cluster.state()["revisions"] == 1
    assert len(cluster.calls("func")) == 1
    # A changed func.yaml is deployed again.
    func_yaml = cluster.root / "func.yaml"
    func_yaml.write_text(func_yaml.read_text().replace("target: 10", "target: 12"))
    third = cluster.run(DEPLOY_WITH="func")
    assert third.returncode == 0, third.stderr
    assert cluster.state()["revisions"] == 2


def test_func_leaves_the_tree_as_it_is_and_sees_only_this_profile(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    committed = (cluster.root / "func.yaml").read_text()
    result = cluster.run(DEPLOY_WITH="func")
    assert result.returncode == 0, result.stderr
    assert not (cluster.root / ".func").exists()
    assert (cluster.root / ".gitignore").read_text() == "/.kustomize-*/\n"
    assert (cluster.root / "func.yaml").read_text() == committed
    records = [json.loads(line) for line in cluster.record_path.read_text().splitlines()]
    (deploy,) = [entry for entry in records if entry["tool"] == "func"]
    assert deploy["KUBECONFIG"] and not deploy["KUBECONFIG"].startswith(str(cluster.root))
    assert deploy["args"][deploy["args"].index("--image") + 1] == cluster.state()["images"][0]


def test_kubectl_rerun_with_nothing_changed_makes_no_new_revision(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    assert cluster.run(DEPLOY_WITH="kubectl").returncode == 0
    assert cluster.run(DEPLOY_WITH="kubectl").returncode == 0
    assert cluster.state()["revisions"] == 1


@pytest.mark.parametrize("first", ["sslip", "host-header"])
def test_each_domain_mode_leaves_exactly_its_own_domain(cluster: Cluster, first: str) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    expected = {"sslip": [f"{TUNNEL_IP}.sslip.io"], "host-header": ["example.com"]}
    second = "host-header" if first == "sslip" else "sslip"
    for mode in (first, second, first):
        result = cluster.run(DEPLOY_WITH="kubectl", DOMAIN_MODE=mode)
        assert result.returncode == 0, result.stdout + result.stderr
        assert domain_keys(cluster) == expected[mode], mode


def test_host_header_mode_uses_the_minikube_ip_and_kouriers_node_port(cluster: Cluster) -> None:
    result = cluster.run(DEPLOY_WITH="kubectl", DOMAIN_MODE="host-header")
    assert result.returncode == 0, result.stderr
    assert "curl -s -H 'Host: kv-store.kv-store.example.com'" in result.stdout
    assert "http://192.168.49.2:31080/testurl" in result.stdout


def test_a_failed_domain_job_stops_at_once_with_its_log(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP, job_fails=True)
    result = cluster.run(DEPLOY_WITH="kubectl", DOMAIN_JOB_WAIT_SECONDS="300")
    assert result.returncode == 1
    assert "the default-domain Job failed" in result.stderr
    assert "Error finding gateway address" in result.stderr


def test_a_rerun_after_a_failed_job_recreates_it(cluster: Cluster) -> None:
    # The first run's Job failed (no tunnel then); re-applying the same Job would not rerun it.
    cluster.set(tunnel_ip=TUNNEL_IP, job="Failed", job_runs=1)
    result = cluster.run(DEPLOY_WITH="kubectl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cluster.state()["job_runs"] == 2
    assert domain_keys(cluster) == [f"{TUNNEL_IP}.sslip.io"]


def test_without_a_tunnel_it_says_what_to_do_and_keeps_the_rest(cluster: Cluster) -> None:
    result = cluster.run(DEPLOY_WITH="kubectl")
    assert result.returncode == 0, result.stderr
    assert "minikube tunnel -p kv-store" in result.stdout
    assert "DOMAIN_MODE=host-header make cluster-up" in result.stdout
    assert cluster.state()["job_runs"] == 0, "the Job would wait for an IP that never comes"
    # Then the tunnel starts and the rerun sets the domain.
    cluster.set(tunnel_ip=TUNNEL_IP)
    rerun = cluster.run(DEPLOY_WITH="kubectl")
    assert rerun.returncode == 0, rerun.stderr
    assert domain_keys(cluster) == [f"{TUNNEL_IP}.sslip.io"]


def test_a_redis_password_with_spaces_reaches_redis_and_the_url(
    cluster: Cluster, tmp_path: Path
) -> None:
    password = "correct horse: battery @ staple/100%"
    cluster.set(tunnel_ip=TUNNEL_IP)
    result = cluster.run(DEPLOY_WITH="kubectl", REDIS_PASSWORD=password)
    assert result.returncode == 0, result.stderr
    secrets = cluster.state()["secrets"]
    secret = secrets["kv-store-redis"]
    assert secret["password"] == password
    url = urlsplit(secret["url"])
    assert (url.hostname, url.port, url.path) == ("redis", 6379, "/0")
    # The function connects as its own least-privilege user, with a password of its own.
    assert url.username == FUNCTION_USER and url.password == secret["function-password"]
    assert len(secret["function-password"]) == 48 and secret["function-password"] != password
    assert len(secrets["kv-store-tokens"]["write-token"]) == 64
    # A real Redis started as the StatefulSet starts it (administrator password, the function's
    # user and rules) accepts the Secret's URL, and the administrator's password too.
    server = RedisServer(tmp_path / "redis", password=password)
    server.function_password = secret["function-password"]
    with server:
        local_url = secret["url"].replace("@redis:6379", f"@127.0.0.1:{server.port}")
        with redis.Redis.from_url(local_url) as client:
            assert client.execute_command("INCR", "kv:count") == 1
        with redis.Redis(port=server.port, password=password) as admin:
            assert admin.ping() is True


# CPU requests on the minikube node besides the function's pods, in millicores: kubeadm's control
# plane (etcd 100, kube-apiserver 250, controller-manager 200, scheduler 100, CoreDNS 100),
# Calico's node agent (250: minikube pkg/minikube/cni/calico.yaml), Knative Serving (activator
# 300, autoscaler, controller, webhook 100 each: config/core/deployments/), Kourier (controller
# 200, gateway 200: net-kourier config/).
PLATFORM_CPU_MILLICORES = 750 + 250 + 600 + 400
# Knative's queue-proxy sidecar in every function pod (config-deployment queue-sidecar-cpu-request).
QUEUE_PROXY_CPU_MILLICORES = 25


def test_max_scale_pods_fit_on_the_node_cluster_up_starts(
    cluster: Cluster, knative_service: Manifest, redis_statefulset: Manifest
) -> None:
    """Pods beyond what the node's CPU can schedule would stay Pending under max-scale."""
    cluster.set(tunnel_ip=TUNNEL_IP)
    assert cluster.run(DEPLOY_WITH="kubectl").returncode == 0
    (start,) = [call for call in cluster.calls("minikube") if call[:1] == ["start"]]
    node = int(start[start.index("--cpus") + 1]) * 1000
    template = knative_service["spec"]["template"]
    max_scale = int(template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"])
    per_pod = int(quantity(container(knative_service)["resources"]["requests"]["cpu"]) * 1000)
    redis_cpu = int(quantity(container(redis_statefulset)["resources"]["requests"]["cpu"]) * 1000)
    free = node - PLATFORM_CPU_MILLICORES - redis_cpu
    assert max_scale * (per_pod + QUEUE_PROXY_CPU_MILLICORES) <= free


def test_cluster_down_deletes_the_profile_cluster_up_made(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    assert cluster.run(DEPLOY_WITH="kubectl").returncode == 0
    result = cluster.run("cluster-down.sh")
    assert result.returncode == 0, result.stderr
    assert cluster.calls("minikube")[-1] == ["delete", "-p", "kv-store"]
    again = cluster.run("cluster-down.sh")
    assert "does not exist: nothing to remove" in again.stdout


def test_minikube_runs_the_kubernetes_version_the_schemas_are_checked_against(
    cluster: Cluster,
) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    assert cluster.run(DEPLOY_WITH="kubectl").returncode == 0
    (start,) = [call for call in cluster.calls("minikube") if call[:1] == ["start"]]
    assert start[start.index("--kubernetes-version") + 1] == f"v{KUBERNETES_VERSION}"


def test_func_deploys_func_yamls_service_into_its_namespace(
    cluster: Cluster, func_config: Manifest
) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    assert cluster.run(DEPLOY_WITH="func").returncode == 0
    (deploy,) = cluster.calls("func")
    assert deploy[deploy.index("--namespace") + 1] == func_config["namespace"]
    image = deploy[deploy.index("--image") + 1]
    assert image.rsplit(":", 1)[0] == func_config["image"].rsplit(":", 1)[0]
    annotated = [call for call in cluster.calls("kubectl") if "annotate" in call]
    assert annotated and annotated[0][annotated[0].index("ksvc") + 1] == func_config["name"]


def test_the_node_gets_four_cpus_or_all_the_host_has(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP)
    result = cluster.run(DEPLOY_WITH="kubectl", STANDIN_HOST_CPUS="3")
    assert result.returncode == 0, result.stdout + result.stderr
    (start,) = [call for call in cluster.calls("minikube") if call[:1] == ["start"]]
    assert start[start.index("--cpus") + 1] == "3"
    assert "room for 7 function pods" in result.stdout and "stay Pending" in result.stdout


def test_a_two_cpu_host_is_refused_before_minikube_starts(cluster: Cluster) -> None:
    result = cluster.run(DEPLOY_WITH="kubectl", STANDIN_HOST_CPUS="2")
    assert result.returncode == 1
    assert not [call for call in cluster.calls("minikube") if call[:1] == ["start"]]
    assert result.stderr.startswith("error: a node of 2 CPU(s) (this host has 2) cannot schedule")
    assert "3 CPUs or more" in result.stderr


def test_an_old_kubernetes_stops_before_knative_is_installed(cluster: Cluster) -> None:
    cluster.set(running=True, profiles=["kv-store"], kubernetes_version="v1.33.4")
    result = cluster.run(DEPLOY_WITH="kubectl")
    assert result.returncode == 1
    assert "runs Kubernetes v1.33.4; Knative Serving knative-v1.23.0 needs v1.34.0" in result.stderr
    assert not [call for call in cluster.calls("kubectl") if call[:1] == ["--context"] and
                "apply" in call]  # fmt: skip


def test_a_newer_kubernetes_is_accepted(cluster: Cluster) -> None:
    cluster.set(tunnel_ip=TUNNEL_IP, running=True, profiles=["kv-store"],
                kubernetes_version="v1.35.1")  # fmt: skip
    result = cluster.run(DEPLOY_WITH="kubectl")
    assert result.returncode == 0, result.stderr
    assert "Kubernetes v1.35.1" in result.stdout


def test_func_after_kubectl_deploys_again_from_an_unchanged_tree(cluster: Cluster) -> None:
    """func, then kubectl, then func: the last func deploy must run, or the live Service stays
    the one from k8s/ (a client-side apply keeps the marker annotation func's run left)."""
    cluster.set(tunnel_ip=TUNNEL_IP)
    for deploy_with in ("func", "kubectl", "func"):
        result = cluster.run(DEPLOY_WITH=deploy_with)
        assert result.returncode == 0, result.stdout + result.stderr
    assert len(cluster.calls("func")) == 2
    assert "func not run" not in result.stdout


def test_a_tunnel_lost_before_the_domain_job_ends_in_the_scripts_own_timeout(
    cluster: Cluster,
) -> None:
    """Upstream's Job waits for the gateway's address rather than fail, so the script's wait is
    what ends it, with where to read the Job's log."""
    cluster.set(tunnel_ip=TUNNEL_IP, tunnel_lost=True)
    result = cluster.run(DEPLOY_WITH="kubectl", DOMAIN_JOB_WAIT_SECONDS="3")
    assert result.returncode == 1
    assert "the default-domain Job is still running after" in result.stderr
    assert "logs job/default-domain" in result.stderr
    assert cluster.state()["job"] == "Running"
