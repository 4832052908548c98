"""The real ``KnativeSource``: the official Kubernetes client with the user's kubeconfig.

Failures become ``KubernetesError`` with one line that says what happened and what to do. Under
Locust the client's sockets are gevent's (the standard library is patched before it is imported),
so a poll in a greenlet waits without blocking the load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from loadtest.errors import KubernetesError
from loadtest.knative import ApiObject

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


def _is_missing_object(error: ApiException) -> bool:
    """True for "this object does not exist"; False for "this API does not exist here".

    A missing object comes back as a Status with the object's name in details; an API the
    cluster does not serve (Knative not installed) comes back as a plain "404 page not found".
    """
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return False
    details = body.get("details") if isinstance(body, dict) else None
    return bool(body.get("kind") == "Status" and isinstance(details, dict) and details.get("name"))


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
    """``KnativeSource`` over the Kubernetes REST API."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.server = str(api_client.configuration.host)
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def _get(self, resource: CustomResource, namespace: str, name: str) -> ApiObject | None:
        try:
            found: Any = self.custom.get_namespaced_custom_object(
                resource.group,
                resource.version,
                namespace,
                resource.plural,
                name,
                _request_timeout=API_TIMEOUT,
            )
        except ApiException as error:
            if error.status == 404 and _is_missing_object(error):
                return None
            raise explain_api_error(error, "get", resource.name, namespace, self.server) from None
        except urllib3.exceptions.HTTPError as error:
            raise explain_api_error(error, "get", resource.name, namespace, self.server) from None
        return found if isinstance(found, dict) else None

    def get_service(self, namespace: str, name: str) -> ApiObject | None:
        return self._get(SERVICES, namespace, name)

    def get_pod_autoscaler(self, namespace: str, name: str) -> ApiObject | None:
        return self._get(POD_AUTOSCALERS, namespace, name)

    def get_serverless_service(self, namespace: str, name: str) -> ApiObject | None:
        return self._get(SERVERLESS_SERVICES, namespace, name)

    def list_pods(self, namespace: str, label_selector: str) -> Sequence[ApiObject]:
        try:
            # Raw JSON keeps the API's own field names (the same shapes as the custom objects).
            response: Any = self.core.list_namespaced_pod(
                namespace,
                label_selector=label_selector,
                _preload_content=False,
                _request_timeout=API_TIMEOUT,
            )
            items: list[ApiObject] = json.loads(response.data).get("items") or []
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            raise explain_api_error(error, "list", "pods", namespace, self.server) from None
        return items


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
