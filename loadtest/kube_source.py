"""The real ``KnativeSource``: the official Kubernetes client with the user's kubeconfig.

Failures become ``KubernetesError`` with one line that says what happened and what to do. The
watches run in threads of the main process, beside the load, which runs on an asyncio loop
(or in other processes).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from loadtest.errors import KubernetesError
from loadtest.knative import ApiObject
from loadtest.pod_stats import QUEUE_METRICS_PATH, QUEUE_METRICS_PORT

DEFAULT_KUBECONFIG = "~/.kube/config"
# Seconds to connect and to read one answer; a poll never hangs the run for longer.
API_TIMEOUT = (3.0, 5.0)


@dataclass(frozen=True)
class CustomResource:
    group: str
    version: str
    plural: str

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"


SERVICES = CustomResource("serving.knative.dev", "v1", "services")
POD_AUTOSCALERS = CustomResource("autoscaling.internal.knative.dev", "v1alpha1", "podautoscalers")
SERVERLESS_SERVICES = CustomResource(
    "networking.internal.knative.dev", "v1alpha1", "serverlessservices"
)
REVISIONS = CustomResource("serving.knative.dev", "v1", "revisions")
RESOURCES = {
    "services": SERVICES,
    "revisions": REVISIONS,
    "podautoscalers": POD_AUTOSCALERS,
    "serverlessservices": SERVERLESS_SERVICES,
}
POD_PROXY = "pods/proxy"
# A watch asks the server to end it after this long; it is then opened again.
WATCH_SECONDS = 300


class WatchExpired(Exception):
    """410 Gone: the resourceVersion is too old to watch from; list again."""


def explain_config_error(error: ConfigException, context: str | None) -> KubernetesError:
    text = str(error)
    if "No configuration found" in text:
        return KubernetesError(
            "no kubeconfig found (KUBECONFIG or ~/.kube/config): start the cluster "
            "(`make cluster-up` or `minikube start`) or point KUBECONFIG at its config"
        )
    if context and "contexts list" in text:
        return KubernetesError(
            f"kube context {context!r} is not in the kubeconfig: "
            "list them with `kubectl config get-contexts`"
        )
    return KubernetesError(f"cannot use the kubeconfig: {text.splitlines()[0]}")


def explain_api_error(
    error: Exception, verb: str, resource: str, namespace: str, server: str
) -> KubernetesError:
    """One line for a failed API call: ``verb`` (get/list) on ``resource`` in ``namespace``."""
    if isinstance(error, ApiException):
        if error.status == 401:
            return KubernetesError(
                f"the Kubernetes API at {server} rejected the credentials (401): "
                "log in again or refresh the kubeconfig"
            )
        if error.status == 403:
            return KubernetesError(
                f"access denied (403) to {verb} {resource} in namespace {namespace!r}: grant it "
                f"to your user, check with `kubectl auth can-i {verb} {resource} -n {namespace}`"
            )
        if error.status == 404:
            return KubernetesError(
                f"the cluster does not serve {resource} (404): is Knative Serving installed? "
                f"check with `kubectl get crd {resource}`"
            )
        reason = (error.reason or "").strip()
        return KubernetesError(
            f"Kubernetes API error {error.status} {reason} on {verb} {resource} "
            f"in namespace {namespace!r}"
        )
    if isinstance(error, urllib3.exceptions.HTTPError):
        cause = getattr(error, "reason", None) or error
        detail = str(cause).split(": ")[-1].rstrip(")\"'")
        return KubernetesError(
            f"cannot reach the Kubernetes API server at {server} ({detail}): "
            "is the cluster running? check with `minikube status` or `kubectl cluster-info`"
        )
    return KubernetesError(f"Kubernetes API call failed ({type(error).__name__}: {error})")


class KubernetesSource:
    """Lists (``resourceVersion=0``: served from the API server's cache, not a read from etcd)
    and watches of the objects of one Knative service, as API JSON."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.server = str(api_client.configuration.host)
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def _call(self, kind: str, namespace: str, selector: dict[str, Any]) -> Any:
        """The list function of ``kind`` with its fixed arguments, for a list or a watch."""
        if kind == "pods":
            return functools.partial(self.core.list_namespaced_pod, namespace, **selector)
        resource = RESOURCES[kind]
        return functools.partial(
            self.custom.list_namespaced_custom_object,
            resource.group,
            resource.version,
            namespace,
            resource.plural,
            **selector,
        )

    def _resource_name(self, kind: str) -> str:
        return "pods" if kind == "pods" else RESOURCES[kind].name

    def list(
        self, kind: str, namespace: str, selector: dict[str, Any]
    ) -> tuple[list[ApiObject], str]:
        """(items, the list's resourceVersion) of ``kind`` matching ``selector``."""
        try:
            response: Any = self._call(kind, namespace, selector)(
                resource_version="0", _preload_content=False, _request_timeout=API_TIMEOUT
            )
            body = json.loads(response.data)
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            raise explain_api_error(
                error, "list", self._resource_name(kind), namespace, self.server
            ) from None
        items: list[ApiObject] = body.get("items") or []
        return items, str((body.get("metadata") or {}).get("resourceVersion") or "")

    def watch(
        self,
        kind: str,
        namespace: str,
        selector: dict[str, Any],
        resource_version: str,
        stopper: Callable[[watch.Watch], None],
    ) -> Iterator[tuple[str, ApiObject]]:
        """(event type, object) from ``resource_version`` on, until the server ends the watch."""
        watcher = watch.Watch()
        stopper(watcher)
        try:
            for event in watcher.stream(
                self._call(kind, namespace, selector),
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _request_timeout=(API_TIMEOUT[0], WATCH_SECONDS + 30),
            ):
                raw = event.get("raw_object") or event.get("object")
                yield str(event.get("type")), raw if isinstance(raw, dict) else {}
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            if isinstance(error, ApiException) and error.status == 410:
                raise WatchExpired() from None  # the watcher lists again
            raise explain_api_error(
                error, "watch", self._resource_name(kind), namespace, self.server
            ) from None

    def pod_stat(self, namespace: str, pod: str) -> bytes:
        """The queue-proxy's stat of ``pod``, read through the API server's pod proxy."""
        try:
            response: Any = self.core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod}:{QUEUE_METRICS_PORT}",
                namespace,
                QUEUE_METRICS_PATH,
                _preload_content=False,
                _request_timeout=API_TIMEOUT,
            )
        except ApiException as error:
            if error.status in (401, 403):
                raise explain_api_error(error, "get", POD_PROXY, namespace, self.server) from None
            # 404 or 503: the pod left, or its queue-proxy does not answer yet.
            raise KubernetesError(
                f"no queue-proxy stat from pod {pod} ({error.status} {error.reason})"
            ) from None
        except urllib3.exceptions.HTTPError as error:
            raise explain_api_error(error, "get", POD_PROXY, namespace, self.server) from None
        data: bytes = response.data
        return data


def kubeconfig_path() -> str:
    """KUBECONFIG (one path or several joined by ':') as it is now, else ~/.kube/config."""
    return os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def connect(context: str | None) -> tuple[KubernetesSource, str]:
    """A source for ``context`` (None: the current one) and that context's default namespace."""
    # The client reads KUBECONFIG once, when it is imported; read it at each call instead.
    path = kubeconfig_path()
    try:
        api_client = config.new_client_from_config(config_file=path, context=context)
        contexts, active = config.list_kube_config_contexts(config_file=path)
    except ConfigException as error:
        raise explain_config_error(error, context) from None
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
    return KubernetesSource(api_client), str(namespace)
