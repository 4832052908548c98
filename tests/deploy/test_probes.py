"""The probe paths of k8s/ and func.yaml answer 200 from the running function without touching
data: probing a pod every few seconds must never count as a hit or write to Redis."""

from __future__ import annotations

import uuid

import httpx
import redis

from tests.conftest import StartFunction
from tests.deploy.manifests import Manifest, container
from tests.support.local_redis import RedisServer

JSON = {"Accept": "application/json"}
PROBES_PER_PATH = 5


def test_probe_paths_answer_200_and_leave_the_counter_alone(
    start_function: StartFunction,
    redis_server: RedisServer,
    knative_service: Manifest,
    func_config: Manifest,
) -> None:
    user = container(knative_service)
    paths = {
        user["livenessProbe"]["httpGet"]["path"],
        user["readinessProbe"]["httpGet"]["path"],
        *func_config["deploy"]["healthEndpoints"].values(),
    }
    assert "/" not in paths
    # A key prefix of its own: the counter starts at zero and only this test touches it.
    prefix = f"kv:probe-check-{uuid.uuid4().hex}:"  # under the Redis user's key pattern kv:*
    running = start_function(env={"KEY_PREFIX": prefix})
    with httpx.Client(base_url=running.url, timeout=10) as http:
        assert http.get("/", headers=JSON).json() == {"count": 1}
        for path in sorted(paths):
            for _ in range(PROBES_PER_PATH):
                answer = http.get(path)
                assert answer.status_code == 200, path
                assert answer.json() == {"status": "ok"}
        assert http.get("/", headers=JSON).json() == {"count": 2}
    with redis.Redis.from_url(redis_server.url) as client:
        assert sorted(client.scan_iter(match=f"{prefix}*")) == [f"{prefix}count".encode()]
        assert client.get(f"{prefix}count") == b"2"
