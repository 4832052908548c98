"""Reads the deployment files as their tools do: k8s/ through kustomize, func.yaml, Dockerfile."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from kubernetes.utils.quantity import parse_quantity

from scripts.serve import ROOT

# Reference schemas kept beside the repository (a copy of knative/func's and Knative Serving's).
SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"

KNATIVE_API_VERSION = "serving.knative.dev/v1"
AUTOSCALING = "autoscaling.knative.dev/"

Manifest = dict[str, Any]


def render_kustomization(directory: Path) -> list[Manifest]:
    """The objects `kubectl apply -k directory` would send, rendered by kubectl's kustomize."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise FileNotFoundError("kubectl is not installed")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if rendered.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{rendered.stderr}")
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def find(manifests: Sequence[Manifest], api_version: str, kind: str) -> list[Manifest]:
    return [m for m in manifests if m["apiVersion"] == api_version and m["kind"] == kind]


def the_one(manifests: Sequence[Manifest], api_version: str, kind: str) -> Manifest:
    found = find(manifests, api_version, kind)
    assert len(found) == 1, f"expected one {api_version} {kind}, found {len(found)}"
    return found[0]


def pod_template_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Manifest) -> Manifest:
    containers = pod_template_spec(workload)["containers"]
    assert len(containers) == 1, "one container per pod"
    result: Manifest = containers[0]
    return result


def env_secret_refs(container_spec: Manifest) -> dict[str, tuple[str, str]]:
    """Environment variables read from Secrets: name -> (secret name, key)."""
    refs: dict[str, tuple[str, str]] = {}
    for variable in container_spec.get("env", []):
        secret = variable.get("valueFrom", {}).get("secretKeyRef")
        if secret:
            refs[variable["name"]] = (secret["name"], secret["key"])
    return refs


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity as a number, so that "1" and "1000m" compare equal."""
    return Decimal(parse_quantity(value))


def load_func_yaml() -> Manifest:
    """func.yaml as func reads it; `created` back to the string func's schema expects."""
    config: Manifest = yaml.safe_load((ROOT / "func.yaml").read_text())
    created = config.get("created")
    if created is not None and not isinstance(created, str):
        config["created"] = created.isoformat().replace("+00:00", "Z")
    return config


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) pair of a YAML tree, lists indexed as [i]."""
    yield path, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


@dataclass
class Dockerfile:
    """The instructions of a Dockerfile that decide how the container starts."""

    base_image: str = ""
    user: str = ""
    workdir: str = ""
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    exec_form: dict[str, bool] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)

    @property
    def start_command(self) -> list[str]:
        return [*self.entrypoint, *self.cmd]


def _instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, arguments = logical.partition(" ")
        yield keyword.upper(), arguments.strip()
        logical = ""


def _command(arguments: str) -> tuple[list[str], bool]:
    """CMD/ENTRYPOINT arguments: exec form (a JSON array) or shell form (run by /bin/sh -c)."""
    if arguments.startswith("["):
        return [str(part) for part in json.loads(arguments)], True
    return ["/bin/sh", "-c", arguments], False


def parse_dockerfile(path: Path) -> Dockerfile:
    parsed = Dockerfile()
    build_args: dict[str, str] = {}
    for keyword, arguments in _instructions(path.read_text()):
        if keyword == "ARG":
            name, _, default = arguments.partition("=")
            build_args[name] = default
        elif keyword == "FROM":
            # The image a build without --build-arg uses: ${NAME} replaced by the ARG's default.
            image = arguments.split()[0]
            for name, default in build_args.items():
                image = image.replace(f"${{{name}}}", default).replace(f"${name}", default)
            parsed.base_image = image
        elif keyword == "USER":
            parsed.user = arguments
        elif keyword == "WORKDIR":
            parsed.workdir = arguments
        elif keyword == "RUN":
            parsed.runs.append(arguments)
        elif keyword == "ENV":
            words = shlex.split(arguments)
            if len(words) >= 2 and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
                parsed.env[words[0]] = " ".join(words[1:])
            else:
                for word in words:
                    name, _, value = word.partition("=")
                    parsed.env[name] = value
        elif keyword in ("CMD", "ENTRYPOINT"):
            command, exec_form = _command(arguments)
            parsed.exec_form[keyword] = exec_form
            if keyword == "CMD":
                parsed.cmd = command
            else:
                parsed.entrypoint = command
    return parsed
