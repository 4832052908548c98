"""The cluster-local overlay on the real Knative: the Service it renders gets no public route,
only the cluster-local name, served by Traefik's private entry point."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from localcluster import addons, layout
from tests.localcluster.live import kube

ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "localcluster-overlay"
SERVICE = "kv-store"
VISIBILITY = "networking.knative.dev/visibility"


def rendered_service() -> dict[str, Any]:
    """The Knative Service of `kubectl kustomize overlays/cluster-local`, in this test's namespace
    and with the image built here (the one change a deploy makes to it)."""
    documents = yaml.safe_load_all(
        addons.kubectl("kustomize", str(ROOT / "overlays" / "cluster-local")).stdout
    )
    (service,) = [
        d for d in documents if d and d["kind"] == "Service" and "serving" in d["apiVersion"]
    ]
    service["metadata"]["namespace"] = NAMESPACE
    service["spec"]["template"]["spec"]["containers"][0]["image"] = kube.FUNCTION_IMAGE
    return dict(service)


def secret(name: str, data: dict[str, str]) -> str:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    document = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": encoded,
    }
    return str(yaml.safe_dump(document))


@pytest.fixture(scope="module")
def cluster_local_service(running_cluster: None) -> Iterator[dict[str, Any]]:
    addons.kubectl("create", "namespace", NAMESPACE)
    try:
        # The Secrets the Service reads; its readiness answers without Redis, so none runs here.
        addons.apply(secret("kv-store-redis", {"url": "redis://redis.invalid:6379/0"}))
        addons.apply(secret("kv-store-tokens", {"write-token": "w" * 32, "read-token": "r" * 32}))
        addons.apply(yaml.safe_dump(rendered_service()))
        ready, _ = kube.wait(
            "the cluster-local Service Ready",
            lambda: kube.ready_service(SERVICE, NAMESPACE),
            timeout=180,
        )
        yield ready
    finally:
        addons.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_the_overlay_renders_the_visibility_label() -> None:
    assert rendered_service()["metadata"]["labels"][VISIBILITY] == "cluster-local"


def test_only_the_cluster_local_name_is_served(cluster_local_service: dict[str, Any]) -> None:
    private_host = f"{SERVICE}.{NAMESPACE}.svc.cluster.local"
    assert cluster_local_service["status"]["url"] == f"http://{private_host}"
    private = httpx.get(
        f"http://{layout.NODE_IP}:{layout.PRIVATE_INGRESS_PORT}/health/readiness",
        headers={"Host": private_host},
        timeout=120,
    )
    assert private.status_code == 200
    public = kube.through_route(f"{SERVICE}.{NAMESPACE}.{layout.DOMAIN}", "/health/readiness")
    assert public.status_code == 404  # Traefik has no public rule for it
    # Nor does the private name reach it through the public entry point.
    assert kube.through_route(private_host, "/health/readiness").status_code == 404
