"""Redis in k8s/: persistent, password-protected from the shared Secret, reachable only by the
function's pods, under the name and port the function's REDIS_URL uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    Manifest,
    container,
    env_secret_refs,
    pod_template_spec,
    quantity,
)
from tests.support.local_redis import RedisServer

REDIS_PORT = 6379


def redis_args(statefulset: Manifest) -> dict[str, str]:
    """redis-server's `--option value...` arguments as a mapping (several values: space-joined)."""
    redis = container(statefulset)
    assert redis["command"] == ["redis-server"]
    args = redis["args"]
    assert args and args[0].startswith("--")
    options: dict[str, list[str]] = {}
    for arg in args:
        if arg.startswith("--"):
            options[arg.removeprefix("--")] = values = []
        else:
            values.append(arg)
    assert all(options.values()), "an option without a value"
    return {option: " ".join(values) for option, values in options.items()}


def test_redis_is_redis_7_at_an_exact_tag(redis_statefulset: Manifest) -> None:
    image = container(redis_statefulset)["image"]
    repository, _, tag = image.partition(":")
    assert repository == "redis"
    major, minor, patch = tag.split("-")[0].split(".")
    assert major == "7" and minor.isdigit() and patch.isdigit()


def test_service_selects_the_redis_pods_on_6379(
    redis_service: Manifest, redis_statefulset: Manifest
) -> None:
    assert redis_service["metadata"]["name"] == "redis"
    assert redis_service["spec"].get("type", "ClusterIP") == "ClusterIP"
    pod_labels = redis_statefulset["spec"]["template"]["metadata"]["labels"]
    selector = redis_service["spec"]["selector"]
    assert selector and selector.items() <= pod_labels.items()
    assert redis_statefulset["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (port,) = redis_service["spec"]["ports"]
    assert port["port"] == REDIS_PORT
    named = {p["name"]: p["containerPort"] for p in container(redis_statefulset)["ports"]}
    assert named.get(port["targetPort"], port["targetPort"]) == REDIS_PORT


def test_statefulset_is_governed_by_a_headless_service(
    redis_headless_service: Manifest, redis_statefulset: Manifest
) -> None:
    assert redis_headless_service["spec"]["clusterIP"] == "None"
    pod_labels = redis_statefulset["spec"]["template"]["metadata"]["labels"]
    assert redis_headless_service["spec"]["selector"].items() <= pod_labels.items()


def test_append_only_file_on_a_persistent_volume(redis_statefulset: Manifest) -> None:
    args = redis_args(redis_statefulset)
    assert args["appendonly"] == "yes"
    (claim,) = redis_statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container(redis_statefulset)["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == args["dir"]
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) > 0


def test_maxmemory_stays_under_the_memory_limit(redis_statefulset: Manifest) -> None:
    args = redis_args(redis_statefulset)
    limit = quantity(container(redis_statefulset)["resources"]["limits"]["memory"])
    maxmemory = quantity(args["maxmemory"].removesuffix("mb") + "Mi")
    assert maxmemory < limit
    assert args["maxmemory-policy"] == "noeviction", "stored resources are never evicted"


def test_password_and_redis_url_come_from_one_secret(
    redis_statefulset: Manifest, knative_service: Manifest
) -> None:
    redis_env = env_secret_refs(container(redis_statefulset))
    function_env = env_secret_refs(container(knative_service))
    secret, key = redis_env["REDIS_PASSWORD"]
    assert key == "password"
    assert function_env["REDIS_URL"] == (secret, "url")
    # The probes' redis-cli authenticates from the same key.
    assert redis_env["REDISCLI_AUTH"] == (secret, "password")
    assert redis_args(redis_statefulset)["requirepass"] == "$(REDIS_PASSWORD)"


def test_no_password_is_committed(rendered: list[Manifest]) -> None:
    assert [m for m in rendered if m["kind"] == "Secret"] == []


def probe_commands(statefulset: Manifest) -> dict[str, list[str]]:
    redis_container = container(statefulset)
    return {name: redis_container[name]["exec"]["command"] for name in PROBES}


PROBES = ("readinessProbe", "livenessProbe")


def run_probe(command: list[str], password: str, port: int, tmp_path: Path) -> int:
    """The probe's command as the kubelet runs it in the Redis container, unchanged: its
    environment holds REDISCLI_AUTH from the Secret. In the pod, redis-cli reaches Redis on its
    default port; here a `redis-cli` first on PATH adds `-p` for the test server's port."""
    redis_cli = shutil.which("redis-cli")
    if redis_cli is None:
        pytest.skip("redis-cli is not installed (Debian package redis-tools, with redis-server)")
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir(exist_ok=True)
    shim = shim_dir / "redis-cli"
    shim.write_text(f'#!/bin/sh\nexec "{redis_cli}" -p {port} "$@"\n')
    shim.chmod(0o755)
    env = {"PATH": f"{shim_dir}:/usr/bin:/bin", "REDISCLI_AUTH": password}
    return subprocess.run(command, env=env, capture_output=True, timeout=10).returncode


@pytest.mark.parametrize("probe", PROBES)
def test_probe_passes_on_a_redis_that_answers_with_the_right_password(
    redis_statefulset: Manifest, tmp_path: Path, probe: str
) -> None:
    password = "probe secret with spaces"
    command = probe_commands(redis_statefulset)[probe]
    with RedisServer(tmp_path / "redis", password=password) as server:
        assert run_probe(command, password, server.port, tmp_path) == 0


@pytest.mark.parametrize("probe", PROBES)
def test_probe_fails_on_a_wrong_password_and_on_no_redis(
    redis_statefulset: Manifest, tmp_path: Path, probe: str
) -> None:
    """redis-cli exits 0 on NOAUTH/WRONGPASS: a probe that trusts its exit code always passes."""
    command = probe_commands(redis_statefulset)[probe]
    with RedisServer(tmp_path / "redis", password="the right one") as server:
        assert run_probe(command, "a wrong one", server.port, tmp_path) != 0
    assert run_probe(command, "the right one", server.port, tmp_path) != 0, "no Redis listening"


def test_redis_pod_can_write_its_volume_as_non_root(redis_statefulset: Manifest) -> None:
    pod = pod_template_spec(redis_statefulset)["securityContext"]
    assert pod["runAsUser"] != 0 and pod["fsGroup"] == pod["runAsGroup"]
    assert set(container(redis_statefulset)["resources"]) == {"requests", "limits"}


def test_network_policy_admits_only_the_function_on_6379(
    network_policy: Manifest, redis_statefulset: Manifest, knative_service: Manifest
) -> None:
    spec = network_policy["spec"]
    pod_labels = redis_statefulset["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}, "no namespaceSelector or ipBlock widens it"
    assert source["podSelector"] == {
        "matchLabels": {"serving.knative.dev/service": knative_service["metadata"]["name"]}
    }
    assert rule["ports"] == [{"protocol": "TCP", "port": REDIS_PORT}]
