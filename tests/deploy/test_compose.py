"""docker-compose.yml runs the same image and the same Redis as the cluster, with persistence."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.manifests import ROOT, Dockerfile, Manifest, container


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_function_is_built_from_the_dockerfile_and_published_on_8080(
    compose: dict[str, Any], dockerfile: Dockerfile
) -> None:
    function = compose["services"]["function"]
    assert function["build"] == "."
    (published,) = function["ports"]
    assert published.endswith(f":{dockerfile.env['PORT']}")
    assert published.startswith("127.0.0.1:${FUNCTION_PORT:-8080}:")
    assert function["read_only"] is True
    assert function["cap_drop"] == ["ALL"]


def test_function_reaches_the_redis_service(compose: dict[str, Any]) -> None:
    function = compose["services"]["function"]
    assert function["environment"]["REDIS_URL"] == (
        "redis://kv-function:${REDIS_FUNCTION_PASSWORD:-}@redis:6379/0"
    )
    assert function["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "redis" in compose["services"]


def test_redis_is_the_clusters_redis_with_an_append_only_volume(
    compose: dict[str, Any], redis_statefulset: Manifest
) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"] == container(redis_statefulset)["image"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--requirepass") + 1] == "${REDIS_PASSWORD:-}"
    (volume,) = redis["volumes"]
    name, _, mount = volume.partition(":")
    assert mount == "/data" and name in compose["volumes"]
