"""A small stand-in for the Kubernetes API server: real HTTP, Knative objects from fixtures.

It answers the four reads the load test makes (Knative Service, PodAutoscaler,
ServerlessService, pods by label) the way the API server does, including its error bodies:
a Status with details for a missing object, a plain "404 page not found" for an API the cluster
does not serve, and a Forbidden Status for resources listed in ``denied``. ``phases`` lets the
state change from poll to poll: each read of the Knative Service starts a new poll, so phase
(n, state) holds from the n-th poll on (0 is the check before the run), whatever the timing.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"

ROUTES = {
    ("serving.knative.dev", "services"): "services",
    ("autoscaling.internal.knative.dev", "podautoscalers"): "podautoscalers",
    ("networking.internal.knative.dev", "serverlessservices"): "serverlessservices",
}
CUSTOM_PATH = re.compile(r"^/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)/([^/]+)$")
PODS_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


@dataclass
class ClusterState:
    """Objects by (plural, namespace, name); pods as one list."""

    objects: dict[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    pods: list[Mapping[str, Any]] = field(default_factory=list)

    def put(self, obj: Mapping[str, Any], plural: str) -> ClusterState:
        meta = obj["metadata"]
        self.objects[(plural, meta.get("namespace", "default"), meta["name"])] = obj
        return self


def status_body(code: int, reason: str, message: str, details: dict[str, str]) -> bytes:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }
    return json.dumps(body).encode()


@dataclass
class StubKubeApi:
    phases: list[tuple[int, ClusterState]]
    denied: set[str] = field(default_factory=set)
    serves_knative: bool = True
    polls: int = 0
    url: str = ""

    def state_now(self) -> ClusterState:
        current = self.phases[0][1]
        for first_poll, state in self.phases:
            if self.polls - 1 >= first_poll:
                current = state
        return current

    def answer(self, path: str, query: str) -> tuple[int, str, bytes]:
        if "/services/" in path:
            self.polls += 1
        state = self.state_now()
        pods = PODS_PATH.match(path)
        if pods:
            namespace = pods.group(1)
            if "pods" in self.denied:
                message = (
                    f'pods is forbidden: User "dev" cannot list resource "pods" in API group "" '
                    f'in the namespace "{namespace}"'
                )
                return (
                    403,
                    "application/json",
                    status_body(403, "Forbidden", message, {"kind": "pods"}),
                )
            selector = parse_qs(query).get("labelSelector", [""])[0]
            key, _, value = selector.partition("=")
            items = [
                pod
                for pod in state.pods
                if pod["metadata"].get("namespace") == namespace
                and (not key or pod["metadata"].get("labels", {}).get(key) == value)
            ]
            body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
            return 200, "application/json", json.dumps(body).encode()
        custom = CUSTOM_PATH.match(path)
        plural = ROUTES.get((custom.group(1), custom.group(4))) if custom else None
        if custom is None or plural is None or not self.serves_knative:
            return 404, "text/plain; charset=utf-8", b"404 page not found\n"
        group, _, namespace, _, name = custom.groups()
        details = {"name": name, "group": group, "kind": plural}
        if plural in self.denied:
            message = (
                f'{plural}.{group} "{name}" is forbidden: User "dev" cannot get resource '
                f'"{plural}" in API group "{group}" in the namespace "{namespace}"'
            )
            return 403, "application/json", status_body(403, "Forbidden", message, details)
        found = state.objects.get((plural, namespace, name))
        if found is None:
            message = f'{plural}.{group} "{name}" not found'
            return 404, "application/json", status_body(404, "NotFound", message, details)
        return 200, "application/json", json.dumps(found).encode()

    def kubeconfig(self, directory: Path, context: str = "stub") -> Path:
        path = directory / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: stub\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: dev\n  user:\n    token: stub-token\n"
            f"contexts:\n- name: {context}\n  context:\n    cluster: stub\n    user: dev\n"
            "    namespace: default\n"
            f"current-context: {context}\n"
        )
        return path


@contextmanager
def serve(api: StubKubeApi) -> Iterator[StubKubeApi]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, content_type, body = api.answer(parts.path, parts.query)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
