"""The Knative Service against the rules Knative Serving's admission webhook enforces (v1.23,
default feature flags), which the CRD schema does not express, and the settings this project
chose on top of them."""

from __future__ import annotations

import math
import re

import pytest

from tests.deploy.manifests import AUTOSCALING, ROOT, Manifest, container, pod_template_spec

# Keys the webhook accepts (its field masks); anything else is rejected.
POD_SPEC_FIELDS = {
    "serviceAccountName", "containers", "volumes", "imagePullSecrets", "enableServiceLinks",
    "automountServiceAccountToken", "containerConcurrency", "timeoutSeconds",
    "responseStartTimeoutSeconds", "idleTimeoutSeconds",
}  # fmt: skip
CONTAINER_FIELDS = {
    "name", "args", "command", "env", "workingDir", "envFrom", "image", "imagePullPolicy",
    "livenessProbe", "ports", "readinessProbe", "resources", "securityContext", "startupProbe",
    "terminationMessagePath", "terminationMessagePolicy", "volumeMounts",
}  # fmt: skip
SECURITY_CONTEXT_FIELDS = {
    "capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "runAsNonRoot",
    "allowPrivilegeEscalation", "seccompProfile", "privileged",
}  # fmt: skip
PROBE_FIELDS = {
    "httpGet", "tcpSocket", "exec", "grpc", "initialDelaySeconds", "timeoutSeconds",
    "periodSeconds", "successThreshold", "failureThreshold", "terminationGracePeriodSeconds",
}  # fmt: skip
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
# queue-proxy and profiling ports.
RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
KNOWN_AUTOSCALING_KEYS = {
    "class", "min-scale", "max-scale", "initial-scale", "scale-down-delay", "metric", "target",
    "scale-to-zero-pod-retention-period", "metric-aggregation-algorithm", "window",
    "target-utilization-percentage", "target-burst-capacity", "panic-window-percentage",
    "panic-threshold-percentage", "activation-scale",
}  # fmt: skip
# The queue-proxy waits this long for in-flight requests before a pod stops.
QUEUE_PROXY_DRAIN_SECONDS = 30


@pytest.fixture
def template_annotations(knative_service: Manifest) -> dict[str, str]:
    found: dict[str, str] = knative_service["spec"]["template"]["metadata"]["annotations"]
    return found


def int32_at_least_zero(text: str) -> int:
    assert re.fullmatch(r"\d+", text), f"{text!r} is not a whole number"
    value = int(text)
    assert value <= 2**31 - 1
    return value


def test_autoscaling_annotations_only_on_the_revision_template(knative_service: Manifest) -> None:
    on_service = knative_service["metadata"].get("annotations", {})
    assert [key for key in on_service if key.startswith(AUTOSCALING)] == []


def test_autoscaling_annotations_are_known_keys_with_string_values(
    template_annotations: dict[str, str],
) -> None:
    scaling = {
        key.removeprefix(AUTOSCALING): value
        for key, value in template_annotations.items()
        if key.startswith(AUTOSCALING)
    }
    assert set(scaling) <= KNOWN_AUTOSCALING_KEYS
    assert all(isinstance(value, str) for value in scaling.values())


def test_scale_bounds(template_annotations: dict[str, str]) -> None:
    low = int32_at_least_zero(template_annotations[AUTOSCALING + "min-scale"])
    high = int32_at_least_zero(template_annotations[AUTOSCALING + "max-scale"])
    assert low == 0, "the function scales to zero"
    assert high >= 1 and high >= low


def test_metric_target_and_utilization(template_annotations: dict[str, str]) -> None:
    assert template_annotations[AUTOSCALING + "metric"] == "concurrency"
    assert template_annotations.get(AUTOSCALING + "class", "kpa.autoscaling.knative.dev") == (
        "kpa.autoscaling.knative.dev"
    )
    target = float(template_annotations[AUTOSCALING + "target"])
    assert math.isfinite(target) and target >= 0.01
    utilization = float(template_annotations[AUTOSCALING + "target-utilization-percentage"])
    assert 1 <= utilization <= 100


def test_target_is_the_littles_law_product_written_beside_it(
    template_annotations: dict[str, str],
) -> None:
    """The comment's inputs (capacity and latency) give the target, so updating them shows."""
    text = (ROOT / "k8s" / "knative-service.yaml").read_text()
    capacity = re.search(r"capacity-rps:\s*([\d.]+)", text)
    latency = re.search(r"latency-seconds:\s*([\d.]+)", text)
    assert capacity and latency, "the target's reasoning is missing from knative-service.yaml"
    product = float(capacity.group(1)) * float(latency.group(1))
    assert float(template_annotations[AUTOSCALING + "target"]) == pytest.approx(product)


def test_container_concurrency_and_timeout(
    knative_service: Manifest, template_annotations: dict[str, str]
) -> None:
    spec = pod_template_spec(knative_service)
    concurrency = spec["containerConcurrency"]
    assert isinstance(concurrency, int) and 0 <= concurrency <= 1000
    target = float(template_annotations[AUTOSCALING + "target"])
    assert concurrency == 0 or concurrency >= target, "a hard limit under the target caps it"
    timeout = spec["timeoutSeconds"]
    assert isinstance(timeout, int) and 0 < timeout <= 600
    # It is also the pod's termination grace period, which must outlast the queue-proxy's drain.
    assert timeout > QUEUE_PROXY_DRAIN_SECONDS


def test_only_fields_the_webhook_allows(knative_service: Manifest) -> None:
    spec = pod_template_spec(knative_service)
    assert set(spec) <= POD_SPEC_FIELDS
    assert spec.get("automountServiceAccountToken", False) is False  # only false is allowed
    user = container(knative_service)
    assert set(user) <= CONTAINER_FIELDS
    assert set(user["securityContext"]) <= SECURITY_CONTEXT_FIELDS
    assert set(user["securityContext"].get("capabilities", {})) <= {"drop"}
    assert user.get("name") != "queue-proxy"
    for probe in ("readinessProbe", "livenessProbe"):
        assert set(user[probe]) <= PROBE_FIELDS
        assert set(user[probe]["httpGet"]) <= {"host", "path", "scheme", "httpHeaders", "port"}


def test_environment_avoids_reserved_names(knative_service: Manifest) -> None:
    names = {variable["name"] for variable in container(knative_service).get("env", [])}
    assert names & RESERVED_ENV == set()


def test_one_http_port_knative_accepts(knative_service: Manifest) -> None:
    (port,) = container(knative_service)["ports"]
    assert port.get("name", "") in {"", "h2c", "http1"}
    assert port["containerPort"] not in RESERVED_PORTS
    assert port.get("protocol", "TCP") == "TCP"


def test_probes_target_the_container_port_and_follow_the_period_rules(
    knative_service: Manifest,
) -> None:
    user = container(knative_service)
    port_name = user["ports"][0].get("name", "")
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = user[probe_name]
        port = probe["httpGet"].get("port")
        assert port is None or port in (port_name, user["ports"][0]["containerPort"])
    readiness = user["readinessProbe"]
    if readiness.get("periodSeconds", 0) == 0:
        # Knative's aggressive start-up probing forbids these two.
        assert "failureThreshold" not in readiness and "timeoutSeconds" not in readiness
    else:
        assert readiness.get("timeoutSeconds", 1) >= 1 and readiness.get("failureThreshold", 3) >= 1
    liveness = user["livenessProbe"]
    assert liveness.get("timeoutSeconds", 1) >= 1 and liveness.get("periodSeconds", 10) >= 1


def test_probes_never_hit_the_counting_root(knative_service: Manifest) -> None:
    user = container(knative_service)
    assert user["livenessProbe"]["httpGet"]["path"] == "/health/liveness"
    assert user["readinessProbe"]["httpGet"]["path"] == "/health/readiness"


def test_image_is_a_dev_local_tag_used_without_a_registry(knative_service: Manifest) -> None:
    user = container(knative_service)
    assert re.fullmatch(r"dev\.local/[a-z0-9-]+:[\w][\w.-]{0,127}", user["image"])
    # A pull would fail: the image exists only inside the minikube node.
    assert user["imagePullPolicy"] == "IfNotPresent"


def test_resources_requests_and_limits(knative_service: Manifest) -> None:
    resources = container(knative_service)["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


@pytest.mark.parametrize("workload", ["knative_service", "redis_statefulset"])
def test_restricted_security_context(workload: str, request: pytest.FixtureRequest) -> None:
    """Pod Security Standards "restricted": every field, on the container or inherited."""
    manifest: Manifest = request.getfixturevalue(workload)
    pod = pod_template_spec(manifest).get("securityContext", {})
    own = container(manifest)["securityContext"]

    def effective(field: str) -> object:
        return own.get(field, pod.get(field))

    assert effective("runAsNonRoot") is True
    assert effective("runAsUser") not in (None, 0)
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"] == {"drop": ["ALL"]}
    assert own["readOnlyRootFilesystem"] is True
    assert effective("seccompProfile") == {"type": "RuntimeDefault"}
    assert pod_template_spec(manifest)["automountServiceAccountToken"] is False
