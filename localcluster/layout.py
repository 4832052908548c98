"""Where the local cluster keeps things, and the fixed names and addresses it uses."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
GOMOD = PACKAGE / "gomod"
MANIFESTS = PACKAGE / "manifests"

NAME = "knative-local"  # network namespace, kube context, cgroup and node name
NODE_IP = "10.250.0.2"  # the node's end of the veth pair, inside the namespace
HOST_IP = "10.250.0.1"  # the host's end; the only way in from outside
VETH_PREFIX = 30
HOST_VETH = "knl-host"
NODE_VETH = "knl-node"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DNS = "10.96.0.10"
DOMAIN = "knative.test"  # config-domain: routes are <service>.<namespace>.knative.test
INGRESS_PORT = 80  # Traefik's public entry point, on the node's address
PRIVATE_INGRESS_PORT = 8081  # its private one, for cluster-local routes (manifests/traefik.yaml)
REGISTRY_PORT = 5000  # distribution's registry, on the node's address
API_PORT = 6443
PAUSE_IMAGE = "dev.local/pause:3.10"
IMAGE_REGISTRY = "dev.local"  # Knative never resolves tags of dev.local images: no registry needed


@dataclass(frozen=True)
class Pin:
    name: str
    module: str
    version: str
    packages: tuple[str, ...]
    tags: tuple[str, ...] = ()
    cgo: bool = False
    release: str = ""

    def programs(self) -> dict[str, str]:
        """Binary name -> Go package; `pkg=name` in versions.toml names a binary explicitly."""
        out = {}
        for entry in self.packages:
            package, _, binary = entry.partition("=")
            out[binary or package.rsplit("/", 1)[-1]] = package
        return out


@cache
def pins() -> dict[str, Pin]:
    data = tomllib.loads((PACKAGE / "versions.toml").read_text())
    return {
        name: Pin(
            name=name,
            module=entry["module"],
            version=entry["version"],
            packages=tuple(entry["packages"]),
            tags=tuple(entry.get("tags", ())),
            cgo=bool(entry.get("cgo", False)),
            release=entry.get("release", ""),
        )
        for name, entry in data.items()
        if "module" in entry
    }


def debian_packages() -> list[str]:
    return list(tomllib.loads((PACKAGE / "versions.toml").read_text())["debian"]["packages"])


def cache_dir() -> Path:
    """Built programs and images, kept across `down`, keyed by version (like kind's node images)."""
    base = os.environ.get("LOCALCLUSTER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), NAME
    )
    return Path(base)


def state_dir() -> Path:
    """The running cluster's data, certificates, logs and pid files; `down` removes it."""
    base = os.environ.get("LOCALCLUSTER_STATE") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), NAME
    )
    return Path(base)


def bin_dir(pin: Pin) -> Path:
    return cache_dir() / "bin" / f"{pin.name}-{pin.version}"


def program(component: str, binary: str | None = None) -> Path:
    pin = pins()[component]
    return bin_dir(pin) / (binary or next(iter(pin.programs())))


def image_name(component: str, binary: str) -> str:
    return f"{IMAGE_REGISTRY}/{component}/{binary}:{pins()[component].version}"


def log_dir() -> Path:
    return state_dir() / "logs"


def kubeconfig() -> Path:
    """The cluster's own admin kubeconfig; `up` also merges it into the user's as context NAME."""
    return state_dir() / "pki" / "super-admin.conf"
