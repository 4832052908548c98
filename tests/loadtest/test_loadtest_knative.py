"""The Knative-state reader on API objects shaped as Knative Serving serves them."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from loadtest.errors import KubernetesError
from loadtest.knative import (
    KnativeReader,
    KnativeState,
    count_pods,
    current_revision,
    pod_autoscaler_scale,
)
from loadtest.kube_source import connect, explain_api_error
from tests.loadtest.kube_stub import ClusterState, StubKubeApi, fixture, serve

NAMESPACE = "default"
SERVICE = "resources"
REVISION = "resources-00001"


class ObjectSource:
    """A ``KnativeSource`` holding API objects in memory, selecting pods by label like the API."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.selectors: list[str] = []

    def _get(self, plural: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.state.objects.get((plural, namespace, name))

    def get_service(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._get("services", namespace, name)

    def get_pod_autoscaler(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._get("podautoscalers", namespace, name)

    def get_serverless_service(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._get("serverlessservices", namespace, name)

    def list_pods(self, namespace: str, label_selector: str) -> Sequence[Mapping[str, Any]]:
        self.selectors.append(label_selector)
        key, _, value = label_selector.partition("=")
        return [
            pod
            for pod in self.state.pods
            if pod["metadata"]["namespace"] == namespace
            and pod["metadata"]["labels"].get(key) == value
        ]


def scaling_cluster() -> ClusterState:
    state = ClusterState(pods=list(fixture("pods-scaling.json")["items"]))
    state.put(fixture("service-ready.json"), "services")
    state.put(fixture("podautoscaler-scaling.json"), "podautoscalers")
    state.put(fixture("serverlessservice-proxy.json"), "serverlessservices")
    return state


def other_revision_pod() -> dict[str, Any]:
    pod = copy.deepcopy(fixture("pods-scaling.json")["items"][0])
    pod["metadata"]["name"] = "resources-00002-deployment-5c6d7e8f9-q1w2e"
    pod["metadata"]["labels"]["serving.knative.dev/revision"] = "resources-00002"
    return pod


def test_reads_scale_pods_and_activator_of_the_current_revision() -> None:
    state = scaling_cluster()
    state.pods.append(other_revision_pod())
    source = ObjectSource(state)

    read = KnativeReader(source, NAMESPACE, SERVICE).read()

    assert read == KnativeState(
        revision=REVISION,
        desired_scale=3,
        actual_scale=1,
        pods_ready=1,
        pods_pending=2,
        pods_terminating=1,
        sks_mode="Proxy",
    )
    assert read.activator_in_path is True
    assert read.pods_up == 3
    assert source.selectors == [f"serving.knative.dev/revision={REVISION}"]


def test_serve_mode_means_the_activator_is_out_of_the_path() -> None:
    state = scaling_cluster().put(fixture("serverlessservice-serve.json"), "serverlessservices")
    read = KnativeReader(ObjectSource(state), NAMESPACE, SERVICE).read()
    assert read.sks_mode == "Serve"
    assert read.activator_in_path is False


def test_desired_scale_minus_one_before_metrics_is_unknown() -> None:
    assert pod_autoscaler_scale(fixture("podautoscaler-no-metrics.json")) == (None, 0)


def test_status_without_scales_and_missing_autoscaler_are_unknown() -> None:
    assert pod_autoscaler_scale(fixture("podautoscaler-new.json")) == (None, None)
    assert pod_autoscaler_scale(None) == (None, None)


def test_scaled_to_zero() -> None:
    state = scaling_cluster().put(fixture("podautoscaler-idle.json"), "podautoscalers")
    state.pods.clear()
    read = KnativeReader(ObjectSource(state), NAMESPACE, SERVICE).read()
    assert (read.desired_scale, read.actual_scale, read.pods_up) == (0, 0, 0)
    assert read.activator_in_path is True


def test_no_serverless_service_yet() -> None:
    state = scaling_cluster()
    del state.objects[("serverlessservices", NAMESPACE, REVISION)]
    read = KnativeReader(ObjectSource(state), NAMESPACE, SERVICE).read()
    assert read.sks_mode is None
    assert read.activator_in_path is None
    assert read.desired_scale == 3


def test_objects_that_appear_during_the_run() -> None:
    state = ClusterState().put(fixture("service-new.json"), "services")
    reader = KnativeReader(ObjectSource(state), NAMESPACE, SERVICE)
    assert reader.read() == KnativeState()

    # The revision is named, its autoscaler exists without metrics, no SKS and no pods yet.
    state.put(fixture("service-ready.json"), "services")
    state.put(fixture("podautoscaler-no-metrics.json"), "podautoscalers")
    first = reader.read()
    assert first.revision == REVISION
    assert (first.desired_scale, first.actual_scale, first.pods_up, first.sks_mode) == (
        None,
        0,
        0,
        None,
    )

    scaled = scaling_cluster()
    state.objects.update(scaled.objects)
    state.pods.extend(scaled.pods)
    assert reader.read().pods_ready == 1


def test_traffic_split_follows_the_largest_share() -> None:
    assert current_revision(fixture("service-split.json")) == "resources-00001"


def test_revision_falls_back_to_latest_ready_then_latest_created() -> None:
    service = fixture("service-ready.json")
    del service["status"]["traffic"]
    assert current_revision(service) == REVISION
    service["status"] = {"latestCreatedRevisionName": "resources-00002"}
    assert current_revision(service) == "resources-00002"
    assert current_revision(fixture("service-new.json")) is None


def test_pod_counting_follows_knative() -> None:
    pods = fixture("pods-scaling.json")["items"]
    # Ready; Pending (creating); Running not ready; Running with deletionTimestamp; Succeeded.
    assert count_pods(pods) == (1, 2, 1)
    assert count_pods([]) == (0, 0, 0)
    assert count_pods([{"metadata": {}}]) == (0, 0, 0)


def test_missing_service_is_a_one_line_error() -> None:
    reader = KnativeReader(ObjectSource(ClusterState()), NAMESPACE, "nope")
    with pytest.raises(KubernetesError) as caught:
        reader.check()
    message = str(caught.value)
    assert "'nope' not found in namespace 'default'" in message
    assert "kubectl get ksvc -n default" in message
    assert "\n" not in message


# The real source: the official client over real HTTP to a stand-in API server.


@pytest.fixture
def stub_api() -> Iterator[StubKubeApi]:
    with serve(StubKubeApi(phases=[(0, scaling_cluster())])) as api:
        yield api


@pytest.fixture
def kubeconfig(stub_api: StubKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = stub_api.kubeconfig(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def test_kubernetes_source_reads_the_same_state(kubeconfig: Path) -> None:
    source, namespace = connect(None)
    assert namespace == "default"
    read = KnativeReader(source, namespace, SERVICE).read()
    assert (read.revision, read.desired_scale, read.pods_ready, read.pods_pending) == (
        REVISION,
        3,
        1,
        2,
    )
    assert read.sks_mode == "Proxy"


def test_kubernetes_source_missing_object_is_none(kubeconfig: Path) -> None:
    source, _ = connect("stub")
    assert source.get_pod_autoscaler(NAMESPACE, "resources-99999") is None
    assert source.get_service("elsewhere", SERVICE) is None


def test_kubernetes_source_forbidden_is_one_line(kubeconfig: Path, stub_api: StubKubeApi) -> None:
    stub_api.denied = {"podautoscalers"}
    source, _ = connect(None)
    with pytest.raises(KubernetesError) as caught:
        KnativeReader(source, NAMESPACE, SERVICE).read()
    message = str(caught.value)
    assert message.startswith("access denied (403) to get podautoscalers.autoscaling")
    assert "kubectl auth can-i get podautoscalers.autoscaling.internal.knative.dev -n default" in (
        message
    )
    assert "\n" not in message

    stub_api.denied = {"pods"}
    with pytest.raises(KubernetesError, match=r"access denied \(403\) to list pods"):
        source.list_pods(NAMESPACE, "serving.knative.dev/revision=x")


def test_kubernetes_source_without_knative_installed(
    kubeconfig: Path, stub_api: StubKubeApi
) -> None:
    stub_api.serves_knative = False
    source, _ = connect(None)
    with pytest.raises(KubernetesError) as caught:
        source.get_service(NAMESPACE, SERVICE)
    assert str(caught.value) == (
        "the cluster does not serve services.serving.knative.dev (404): is Knative Serving "
        "installed? check with `kubectl get crd services.serving.knative.dev`"
    )


def test_unreachable_api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = StubKubeApi(phases=[(0, ClusterState())], url="http://127.0.0.1:9")
    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
    source, _ = connect(None)
    with pytest.raises(KubernetesError) as caught:
        source.get_service(NAMESPACE, SERVICE)
    message = str(caught.value)
    assert message.startswith("cannot reach the Kubernetes API server at http://127.0.0.1:9")
    assert "minikube status" in message
    assert "\n" not in message


def test_no_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(KubernetesError, match=r"^no kubeconfig found .*minikube start"):
        connect(None)


def test_unknown_context(kubeconfig: Path) -> None:
    with pytest.raises(KubernetesError) as caught:
        connect("production")
    assert str(caught.value) == (
        "kube context 'production' is not in the kubeconfig: "
        "list them with `kubectl config get-contexts`"
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "rejected the credentials (401): log in again"),
        (403, "access denied (403) to get services.serving.knative.dev in namespace 'ns'"),
        (404, "does not serve services.serving.knative.dev (404)"),
        (500, "Kubernetes API error 500 Internal Server Error on get services"),
    ],
)
def test_api_errors_map_to_one_line(status: int, expected: str) -> None:
    reasons = {
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        500: "Internal Server Error",
    }
    error = ApiException(status=status, reason=reasons[status])
    message = str(
        explain_api_error(error, "get", "services.serving.knative.dev", "ns", "https://k8s:6443")
    )
    assert expected in message
    assert "\n" not in message
