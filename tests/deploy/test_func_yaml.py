"""func.yaml is valid for func and describes the same Knative Service as k8s/."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import jsonschema

from tests.deploy.manifests import AUTOSCALING, Manifest, container, env_secret_refs, quantity

# func's pattern for an environment value taken from one key of a Secret.
SECRET_KEY_REFERENCE = re.compile(r"^{{\s*secret:((?:\w|['-]\w)+):([-._a-zA-Z0-9]+)\s*}}$")


def func_scale_annotations(scale: Manifest) -> dict[str, str]:
    """The revision annotations func's Knative deployer writes for deploy.options.scale."""
    formats = {
        "min": ("min-scale", "%d"),
        "max": ("max-scale", "%d"),
        "metric": ("metric", "%s"),
        "target": ("target", "%f"),
        "utilization": ("target-utilization-percentage", "%f"),
    }
    return {
        AUTOSCALING + key: template % scale[option]
        for option, (key, template) in formats.items()
        if option in scale
    }


def test_func_yaml_is_valid_for_funcs_schema(func_config: Manifest, shared_schema: Path) -> None:
    schema = json.loads((shared_schema / "func_yaml-schema.json").read_text())
    validator = jsonschema.Draft4Validator(schema)
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(func_config)
    ]
    assert errors == []


def test_func_yaml_header(func_config: Manifest) -> None:
    assert func_config["specVersion"] == "0.36.0"
    assert func_config["runtime"] == "python"
    # The schema only names the format; func parses it as an RFC 3339 time.
    datetime.fromisoformat(func_config["created"])


def test_scale_options_equal_the_knative_service_annotations(
    func_config: Manifest, knative_service: Manifest
) -> None:
    from_func = func_scale_annotations(func_config["deploy"]["options"]["scale"])
    written = knative_service["spec"]["template"]["metadata"]["annotations"]
    ours = {key: value for key, value in written.items() if key.startswith(AUTOSCALING)}
    assert set(from_func) == set(ours)
    for key, value in from_func.items():
        if key.endswith("metric"):
            assert value == ours[key]
        else:  # func writes "10.000000" where the manifest says "10"
            assert float(value) == float(ours[key]), key


def test_resources_and_concurrency_equal_the_knative_service(
    func_config: Manifest, knative_service: Manifest
) -> None:
    options = func_config["deploy"]["options"]["resources"]
    manifest = container(knative_service)["resources"]
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            assert quantity(options[kind][resource]) == quantity(manifest[kind][resource])
    assert (
        options["limits"]["concurrency"]
        == knative_service["spec"]["template"]["spec"]["containerConcurrency"]
    )


def test_health_endpoints_equal_the_probes(
    func_config: Manifest, knative_service: Manifest
) -> None:
    user = container(knative_service)
    assert func_config["deploy"]["healthEndpoints"] == {
        "liveness": user["livenessProbe"]["httpGet"]["path"],
        "readiness": user["readinessProbe"]["httpGet"]["path"],
    }


def test_name_image_and_namespace_agree(func_config: Manifest, knative_service: Manifest) -> None:
    assert func_config["name"] == knative_service["metadata"]["name"]
    assert func_config["image"] == container(knative_service)["image"]
    # cluster-up.sh deploys into func.yaml's namespace: test_cluster_scripts.py.


def test_redis_url_comes_from_the_same_secret_key(
    func_config: Manifest, knative_service: Manifest
) -> None:
    (variable,) = [e for e in func_config["run"]["envs"] if e["name"] == "REDIS_URL"]
    reference = SECRET_KEY_REFERENCE.match(variable["value"])
    assert reference, f"{variable['value']!r} is not a {{{{ secret:NAME:KEY }}}} reference"
    assert reference.groups() == env_secret_refs(container(knative_service))["REDIS_URL"]


def test_no_autoscaling_annotations_in_deploy_annotations(func_config: Manifest) -> None:
    # func copies deploy.annotations onto the Service's own metadata too, where Knative's
    # webhook rejects autoscaling keys: scaling goes through deploy.options.scale only.
    annotations = func_config["deploy"].get("annotations", {})
    assert [key for key in annotations if key.startswith(AUTOSCALING)] == []
