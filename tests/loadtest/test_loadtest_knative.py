"""The Knative state on API objects shaped as Knative Serving serves them, and the real client's
lists and watches against a stand-in API server over real HTTP."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from loadtest.errors import KubernetesError
from loadtest.knative import (
    KnativeCache,
    KnativeState,
    count_pods,
    current_revision,
    pod_autoscaler_scale,
    target_per_pod,
)
from loadtest.kube_source import connect, explain_api_error
from loadtest.watcher import KnativeWatcher
from tests.loadtest.kube_stub import ClusterState, StubKubeApi, fixture, serve

NAMESPACE = "default"
SERVICE = "resources"
REVISION = "resources-00001"


def pods() -> list[dict[str, Any]]:
    return list(fixture("pods-scaling.json")["items"])


def scaling_cluster(sks: str = "serverlessservice-proxy.json") -> ClusterState:
    state = ClusterState().with_pods(pods())
    state.put(fixture("service-ready.json"), "services")
    state.put(fixture("revision-ready.json"), "revisions")
    state.put(fixture("podautoscaler-scaling.json"), "podautoscalers")
    return state.put(fixture(sks), "serverlessservices")


def cache_of(state: ClusterState) -> KnativeCache:
    cache = KnativeCache(SERVICE)
    for kind in ("services", "revisions", "podautoscalers", "serverlessservices", "pods"):
        cache.replace(
            kind, [obj for (plural, _, _), obj in state.objects.items() if plural == kind]
        )
    return cache


def other_revision_pod() -> dict[str, Any]:
    pod = copy.deepcopy(pods()[0])
    pod["metadata"]["name"] = "resources-00002-deployment-5c6d7e8f9-q1w2e"
    pod["metadata"]["labels"]["serving.knative.dev/revision"] = "resources-00002"
    return pod


def test_state_of_the_current_revision() -> None:
    state = scaling_cluster().with_pods([other_revision_pod()])
    read = cache_of(state).state()
    assert read == KnativeState(
        revision=REVISION,
        desired_scale=3,
        actual_scale=1,
        pods_ready=1,
        pods_pending=2,
        pods_terminating=1,
        sks_mode="Proxy",
        activator_endpoints=True,
        target_per_pod=70 * 0.7,
        pods_scheduled=3,
    )
    assert read.activator_in_path is True
    assert read.pods_up == 3


def test_the_activator_is_read_from_the_condition_not_the_mode() -> None:
    # Serve asked for, yet Knative keeps the activator in the path: the condition says so.
    forced = cache_of(scaling_cluster("serverlessservice-serve.json")).state()
    assert forced.sks_mode == "Serve"
    assert forced.activator_in_path is True
    direct = cache_of(scaling_cluster("serverlessservice-direct.json")).state()
    assert direct.sks_mode == "Serve"
    assert direct.activator_in_path is False
    # Without the condition (an older Knative), the mode is all there is.
    sks = fixture("serverlessservice-serve.json")
    sks["status"]["conditions"] = []
    state = scaling_cluster().put(sks, "serverlessservices")
    assert cache_of(state).state().activator_in_path is False


def test_revision_replicas_stand_in_when_the_autoscaler_has_no_status() -> None:
    state = scaling_cluster().put(fixture("podautoscaler-new.json"), "podautoscalers")
    read = cache_of(state).state()
    assert (read.desired_scale, read.actual_scale) == (4, 2)
    # The autoscaler's own figures win when it has them.
    assert cache_of(scaling_cluster()).state().desired_scale == 3


def test_target_line_per_pod() -> None:
    revision = fixture("revision-ready.json")
    assert target_per_pod(None, revision) == pytest.approx(7.0)
    revision["spec"]["containerConcurrency"] = 5
    assert target_per_pod(None, revision) == pytest.approx(3.5)
    del revision["metadata"]["annotations"]
    assert target_per_pod(None, revision) == pytest.approx(3.5)
    revision["spec"]["containerConcurrency"] = 0
    assert target_per_pod(None, revision) == pytest.approx(70.0)
    revision["metadata"]["annotations"] = {"autoscaling.knative.dev/metric": "rps"}
    assert target_per_pod(None, revision) is None


def test_desired_scale_minus_one_before_metrics_is_unknown() -> None:
    assert pod_autoscaler_scale(fixture("podautoscaler-no-metrics.json")) == (None, 0)
    assert pod_autoscaler_scale(fixture("podautoscaler-new.json")) == (None, None)
    assert pod_autoscaler_scale(None) == (None, None)


def test_watch_events_move_the_state() -> None:
    cache = KnativeCache(SERVICE)
    assert cache.replace("services", [fixture("service-new.json")]) == KnativeState()
    cache.apply("services", "MODIFIED", fixture("service-ready.json"))
    cache.apply("podautoscalers", "ADDED", fixture("podautoscaler-no-metrics.json"))
    first = cache.state()
    assert first.revision == REVISION and first.desired_scale is None and first.pods_up == 0
    for pod in pods():
        cache.apply("pods", "ADDED", pod)
    assert cache.state().pods_ready == 1
    ready = pods()[0]
    cache.apply("pods", "DELETED", ready)
    assert cache.state().pods_ready == 0


def test_traffic_split_and_fallbacks() -> None:
    assert current_revision(fixture("service-split.json")) == "resources-00001"
    service = fixture("service-ready.json")
    del service["status"]["traffic"]
    assert current_revision(service) == REVISION
    service["status"] = {"latestCreatedRevisionName": "resources-00002"}
    assert current_revision(service) == "resources-00002"
    assert current_revision(fixture("service-new.json")) is None


def test_pod_counting_follows_knative() -> None:
    # Ready; Pending (creating); Running not ready; Running with deletionTimestamp; Succeeded.
    assert count_pods(pods()) == (1, 2, 1)
    assert count_pods([]) == (0, 0, 0)
    assert count_pods([{"metadata": {}}]) == (0, 0, 0)


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


def test_lists_ask_the_cache_and_select_by_service(kubeconfig: Path, stub_api: StubKubeApi) -> None:
    source, namespace = connect(None)
    watcher = KnativeWatcher(source, namespace, SERVICE)
    read = watcher.check()
    assert (read.revision, read.desired_scale, read.pods_ready, read.pods_pending) == (
        REVISION, 3, 1, 2,
    )  # fmt: skip
    lists = [query for _, query in stub_api.requests]
    assert len(lists) == 5
    assert all(query["resourceVersion"] == "0" for query in lists)
    assert "watch" not in str(lists)
    selectors = sorted(q.get("labelSelector") or q.get("fieldSelector") or "" for q in lists)
    assert selectors == ["metadata.name=resources"] + ["serving.knative.dev/service=resources"] * 4


def test_watches_follow_changes_with_millisecond_stamps(tmp_path: Path, monkeypatch: Any) -> None:
    zero = ClusterState().put(fixture("service-ready.json"), "services")
    zero.put(fixture("podautoscaler-idle.json"), "podautoscalers")
    zero.put(fixture("serverlessservice-proxy.json"), "serverlessservices")
    up = scaling_cluster("serverlessservice-direct.json")
    with serve(StubKubeApi(phases=[(0, zero), (0.3, up)])) as api:
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
        source, namespace = connect(None)
        watcher = KnativeWatcher(source, namespace, SERVICE)
        assert watcher.check().pods_ready == 0
        watcher.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and watcher.last_state != cache_of(up).state():
            time.sleep(0.05)
        watcher.stop()
    assert watcher.last_state is not None
    assert watcher.last_state.pods_ready == 1
    assert watcher.last_state.activator_in_path is False
    watches = [query for _, query in api.requests if query.get("watch")]
    assert {q["resourceVersion"] for q in watches} == {"100"}  # from the list's version
    changes = [event for event in watcher.events if event.event != "LIST"]
    assert {event.kind for event in changes} >= {"pods", "podautoscalers", "serverlessservices"}
    stamps = [event.at for event in watcher.events]
    assert stamps == sorted(stamps)
    assert any(stamp != round(stamp) for stamp in stamps)  # finer than whole seconds
    assert watcher.failures == 0


def test_missing_service_is_a_one_line_error(kubeconfig: Path) -> None:
    source, namespace = connect(None)
    with pytest.raises(KubernetesError) as caught:
        KnativeWatcher(source, namespace, "nope").check()
    message = str(caught.value)
    assert "'nope' not found in namespace 'default'" in message
    assert "kubectl get ksvc -n default" in message
    assert "\n" not in message


def test_forbidden_is_one_line(kubeconfig: Path, stub_api: StubKubeApi) -> None:
    stub_api.denied = {"podautoscalers"}
    source, _ = connect(None)
    with pytest.raises(KubernetesError) as caught:
        KnativeWatcher(source, NAMESPACE, SERVICE).check()
    message = str(caught.value)
    assert message.startswith("access denied (403) to list podautoscalers.autoscaling")
    assert "kubectl auth can-i list podautoscalers.autoscaling.internal.knative.dev -n default" in (
        message
    )
    assert "\n" not in message
    stub_api.denied = {"pods"}
    with pytest.raises(KubernetesError, match=r"access denied \(403\) to list pods"):
        source.list("pods", NAMESPACE, {"label_selector": "serving.knative.dev/service=x"})


def test_without_knative_installed(kubeconfig: Path, stub_api: StubKubeApi) -> None:
    stub_api.serves_knative = False
    source, _ = connect(None)
    with pytest.raises(KubernetesError) as caught:
        source.list("services", NAMESPACE, {})
    assert str(caught.value) == (
        "the cluster does not serve services.serving.knative.dev (404): is Knative Serving "
        "installed? check with `kubectl get crd services.serving.knative.dev`"
    )


def test_unreachable_api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = StubKubeApi(phases=[(0, ClusterState())], url="http://127.0.0.1:9")
    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
    source, _ = connect(None)
    with pytest.raises(KubernetesError) as caught:
        source.list("services", NAMESPACE, {})
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
        (403, "access denied (403) to list services.serving.knative.dev in namespace 'ns'"),
        (404, "does not serve services.serving.knative.dev (404)"),
        (500, "Kubernetes API error 500 Internal Server Error on list services"),
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
        explain_api_error(error, "list", "services.serving.knative.dev", "ns", "https://k8s:6443")
    )
    assert expected in message
    assert "\n" not in message


def test_threads_are_not_left_behind() -> None:
    assert all(thread.daemon for thread in threading.enumerate() if "follow" in thread.name)
