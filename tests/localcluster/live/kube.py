"""Reading the local cluster's API for the live tests: an error is an error, never an empty list."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from localcluster import addons, layout

T = TypeVar("T")
ROUTE = f"http://{layout.NODE_IP}:{layout.INGRESS_PORT}"
FUNCTION_IMAGE = os.environ.get("LOCALCLUSTER_FUNCTION_IMAGE", "dev.local/kv-store:local")


def get(*args: str) -> Any:
    """`kubectl get ... -o json`; a failed call raises with kubectl's own message."""
    done = addons.kubectl("get", *args, "-o", "json", check=False)
    if done.returncode != 0:
        raise AssertionError(f"kubectl get {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def pods(namespace: str, service: str) -> list[dict[str, Any]]:
    """The service's pods that are not on their way out."""
    items = get("pods", "-n", namespace, "-l", f"serving.knative.dev/service={service}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def condition(obj: dict[str, Any], kind: str) -> str:
    for item in obj.get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return str(item["status"])
    return "Unknown"


def ready_service(name: str, namespace: str) -> dict[str, Any] | None:
    """The Knative Service once its Ready condition is True, else None (for ``wait``)."""
    service: dict[str, Any] = get("ksvc", name, "-n", namespace)
    return service if condition(service, "Ready") == "True" else None


def wait(
    what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5
) -> tuple[T, float]:
    """Poll until probe returns a value; the value and the seconds it took."""
    started = time.monotonic()
    while True:
        value = probe()
        if value is not None and value is not False:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def through_route(host: str, path: str = "/", timeout: float = 60) -> httpx.Response:
    """A request through Traefik on the node's address, with the route's Host header."""
    return httpx.get(f"{ROUTE}{path}", headers={"Host": host}, timeout=timeout)
