"""k8s/ renders, and every object it renders is valid for the API server that will receive it."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from cloudcoil.models.knative_serving.serving.v1 import Service as CloudcoilKnativeService

from tests.deploy.manifests import (
    KNATIVE_API_VERSION,
    ROOT,
    Manifest,
    container,
    render_kustomization,
    walk,
)

# The Kubernetes version scripts/cluster-up.sh starts minikube with (checked below); its schemas
# ship with kubernetes-validate 1.37.0, which covers 1.25 to 1.37.
KUBERNETES_VERSION = "1.34.0"


def test_kustomization_renders_the_function_and_redis(rendered: list[Manifest]) -> None:
    kinds = sorted((m["apiVersion"], m["kind"], m["metadata"]["name"]) for m in rendered)
    assert kinds == [
        ("apps/v1", "StatefulSet", "redis"),
        ("networking.k8s.io/v1", "NetworkPolicy", "redis-from-function-only"),
        (KNATIVE_API_VERSION, "Service", "kv-store"),
        ("v1", "Service", "redis"),
        ("v1", "Service", "redis-headless"),
    ]


def test_redis_renders_alone_for_deployments_where_func_makes_the_service(
    rendered: list[Manifest],
) -> None:
    alone = render_kustomization(ROOT / "k8s" / "redis")
    core = copy.deepcopy([m for m in rendered if m["apiVersion"] != KNATIVE_API_VERSION])
    for manifest in core:  # the parent kustomization adds this label
        del manifest["metadata"]["labels"]["app.kubernetes.io/part-of"]
    assert sorted(alone, key=repr) == sorted(core, key=repr)


def test_no_object_carries_a_namespace_so_apply_n_chooses_it(rendered: list[Manifest]) -> None:
    assert [m["metadata"]["name"] for m in rendered if "namespace" in m["metadata"]] == []


def test_core_objects_are_valid_for_kubernetes(rendered: list[Manifest]) -> None:
    core = [m for m in rendered if m["apiVersion"] != KNATIVE_API_VERSION]
    assert len(core) == 4
    errors = []
    for manifest in core:
        try:
            # strict: unknown fields are errors, as with `kubectl apply`'s default validation.
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {error.message}")
    assert errors == []


def strict_openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's structural schema as JSON Schema that rejects unknown fields.

    The API server prunes or (with kubectl's strict field validation) rejects fields its
    schema does not declare, except under x-kubernetes-preserve-unknown-fields.
    """
    result = copy.deepcopy(schema)

    def tighten(node: dict[str, Any]) -> None:
        properties = node.get("properties")
        if isinstance(properties, dict):
            for child in properties.values():
                tighten(child)
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                tighten(node[key])
        for key in ("anyOf", "oneOf", "allOf"):
            for child in node.get(key, []):
                tighten(child)

    tighten(result)
    return result


def knative_service_schema(shared_schema: Path) -> dict[str, Any]:
    crd = yaml.safe_load((shared_schema / "knative-service-crd.yaml").read_text())
    assert crd["spec"]["names"]["kind"] == "Service"
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return strict_openapi_schema(v1["schema"]["openAPIV3Schema"])


def test_knative_service_is_valid_for_the_knative_service_crd(
    knative_service: Manifest, shared_schema: Path
) -> None:
    validator = jsonschema.Draft7Validator(knative_service_schema(shared_schema))
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(knative_service)
    ]
    assert errors == []


def test_the_crd_check_rejects_an_unknown_field(
    knative_service: Manifest, shared_schema: Path
) -> None:
    broken = copy.deepcopy(knative_service)
    broken["spec"]["template"]["spec"]["containers"][0]["healthCheck"] = "/"
    assert not jsonschema.Draft7Validator(knative_service_schema(shared_schema)).is_valid(broken)


# The generated 1.17 models apply their quantity pattern to the integer branch of int-or-string
# and raise TypeError for a whole number of CPUs such as "1"; "1000m" is the same quantity.
def _cpu_in_millis(manifest: Manifest) -> Manifest:
    copied = copy.deepcopy(manifest)
    resources = container(copied)["resources"]
    for kind in ("requests", "limits"):
        cpu = resources.get(kind, {}).get("cpu")
        if cpu is not None and re.fullmatch(r"\d+", str(cpu)):
            resources[kind]["cpu"] = f"{int(cpu) * 1000}m"
    return copied


def test_knative_service_round_trips_through_the_knative_serving_models(
    knative_service: Manifest,
) -> None:
    """A second, independent reading: the pydantic models generated from Knative's CRDs."""
    manifest = _cpu_in_millis(knative_service)
    model = CloudcoilKnativeService.model_validate(manifest)
    dumped = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    # Fields the models do not know are dropped silently; every field must survive.
    dropped = {p for p, _ in walk(manifest)} - {p for p, _ in walk(dumped)}
    assert dropped == set()
