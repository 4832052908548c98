"""Proof that the local cluster is Knative: the project's function as a Knative Service, through
Traefik, down to zero pods and back through the activator, all read from the Kubernetes API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from localcluster import addons, build, layout
from tests.localcluster.live import kube

NAMESPACE = "localcluster-smoke"
SERVICE = "smoke"
HOST = f"{SERVICE}.{NAMESPACE}.{layout.DOMAIN}"


def service_manifest() -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {
                            "autoscaling.knative.dev/min-scale": "0",
                            # The shortest stable window Knative accepts, so that the scale-down
                            # decision comes seconds after the last request.
                            "autoscaling.knative.dev/window": "6s",
                        }
                    },
                    "spec": {
                        "containers": [
                            {
                                "image": kube.FUNCTION_IMAGE,
                                "readinessProbe": {"httpGet": {"path": "/health/readiness"}},
                                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                            }
                        ]
                    },
                }
            },
        }
    )


@pytest.fixture(scope="module")
def knative_service(running_cluster: None) -> Iterator[dict[str, Any]]:
    addons.kubectl("create", "namespace", NAMESPACE)
    try:
        addons.apply(service_manifest())
        ready, _ = kube.wait(
            "the Knative Service Ready", lambda: kube.ready_service(SERVICE, NAMESPACE), timeout=180
        )
        yield ready
    finally:
        addons.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_the_api_server_is_the_pinned_kubernetes(running_cluster: None) -> None:
    version = addons.kubectl("version", "-o", "json").stdout
    assert (
        yaml.safe_load(version)["serverVersion"]["gitVersion"]
        == layout.pins()["kubernetes"].version
    )


def test_knative_runs_the_images_built_here(running_cluster: None) -> None:
    for name in addons.KNATIVE_DEPLOYMENTS:
        deployment = kube.get("deployment", name, "-n", "knative-serving")
        images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
        assert images == {layout.image_name("knative", name)}
        assert kube.condition(deployment, "Available") == "True"
    assert set(build.IMAGES["knative"]) >= set(addons.KNATIVE_DEPLOYMENTS)


def test_the_function_answers_through_traefik(knative_service: dict[str, Any]) -> None:
    assert knative_service["status"]["url"] == f"http://{HOST}"
    answer = kube.through_route(HOST, "/health/readiness")
    assert answer.status_code == 200
    ingress = kube.get("kingress", SERVICE, "-n", NAMESPACE)
    assert ingress["metadata"]["annotations"]["networking.knative.dev/ingress.class"] == (
        "traefik.ingress.networking.knative.dev"
    )
    assert kube.condition(ingress, "Ready") == "True"


def test_it_scales_to_zero_and_back_through_the_activator(knative_service: dict[str, Any]) -> None:
    revision = knative_service["status"]["latestReadyRevisionName"]
    assert kube.through_route(HOST, "/health/readiness").status_code == 200
    _, to_zero = kube.wait(
        "zero pods after idling",
        lambda: kube.pods(NAMESPACE, SERVICE) == [],
        timeout=240,
        interval=1,
    )
    sks = kube.get("sks", revision, "-n", NAMESPACE)
    assert sks["spec"]["mode"] == "Proxy"  # requests now go to the activator
    pa = kube.get("kpa", revision, "-n", NAMESPACE)
    assert pa["status"].get("desiredScale", 0) == 0 and pa["status"].get("actualScale", 0) == 0

    answer = kube.through_route(HOST, "/health/readiness", timeout=120)
    assert answer.status_code == 200
    assert kube.pods(NAMESPACE, SERVICE), "the request was answered, so a pod must exist"
    print(
        f"\nscaled to zero {to_zero:.0f}s after the last request;"
        f" cold start {answer.elapsed.total_seconds():.2f}s"
    )
