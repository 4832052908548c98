from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    KNATIVE_API_VERSION,
    ROOT,
    SHARED_SCHEMAS,
    Dockerfile,
    Manifest,
    find,
    load_func_yaml,
    parse_dockerfile,
    render_kustomization,
    the_one,
)


@pytest.fixture(scope="session")
def rendered() -> list[Manifest]:
    """What `kubectl apply -k k8s/` applies."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: it renders k8s/ (kubectl kustomize)")
    return render_kustomization(ROOT / "k8s")


@pytest.fixture(scope="session")
def knative_service(rendered: list[Manifest]) -> Manifest:
    return the_one(rendered, KNATIVE_API_VERSION, "Service")


@pytest.fixture(scope="session")
def redis_statefulset(rendered: list[Manifest]) -> Manifest:
    return the_one(rendered, "apps/v1", "StatefulSet")


@pytest.fixture(scope="session")
def redis_service(rendered: list[Manifest]) -> Manifest:
    """The ClusterIP Service the function connects to (redis:6379)."""
    (found,) = [m for m in find(rendered, "v1", "Service") if m["metadata"]["name"] == "redis"]
    return found


@pytest.fixture(scope="session")
def redis_headless_service(rendered: list[Manifest], redis_statefulset: Manifest) -> Manifest:
    """The StatefulSet's governing Service, named by its serviceName."""
    name = redis_statefulset["spec"]["serviceName"]
    (found,) = [m for m in find(rendered, "v1", "Service") if m["metadata"]["name"] == name]
    return found


@pytest.fixture(scope="session")
def network_policy(rendered: list[Manifest]) -> Manifest:
    return the_one(rendered, "networking.k8s.io/v1", "NetworkPolicy")


@pytest.fixture(scope="session")
def func_config() -> Manifest:
    return load_func_yaml()


@pytest.fixture(scope="session")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(ROOT / "Dockerfile")


@pytest.fixture(scope="session")
def shared_schema() -> Path:
    """The folder of reference schemas beside the repository, or a skip that says it is absent."""
    if not SHARED_SCHEMAS.is_dir():
        pytest.skip(
            f"reference schemas not found at {SHARED_SCHEMAS} (the folder beside the repository); "
            "the offline checks that need them are skipped"
        )
    return SHARED_SCHEMAS
