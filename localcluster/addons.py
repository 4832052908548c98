"""What runs on the node: CoreDNS, Knative Serving from its module's manifests, Traefik.

Knative's manifests are read from the Go modules that the binaries were built from (config/core
of knative.dev/serving, config/ of knative.dev/networking and knative.dev/caching), so the two
can never disagree. The only
changes made to them: `ko://` image references become the images made here, and the ConfigMaps
named in manifests/knative-config.yaml take their data from that file.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from localcluster import build, layout
from localcluster.progress import ClusterError, step

KNATIVE_DEPLOYMENTS = ["activator", "autoscaler", "controller", "webhook"]


def kubectl(
    *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [
        str(layout.program("kubernetes", "kubectl")),
        f"--kubeconfig={layout.kubeconfig()}",
        *args,
    ]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done


def module_dir(module: str) -> Path:
    """Where the go command unpacked a module that the knative wrapper requires."""
    done = subprocess.run(
        ["go", "list", "-m", "-json", module],
        cwd=layout.GOMOD / "knative",
        env=build.go_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ClusterError(f"go list -m {module}: {done.stderr.strip()}")
    directory = json.loads(done.stdout).get("Dir")
    if not directory:  # listed but not yet downloaded
        subprocess.run(
            ["go", "mod", "download", module],
            cwd=layout.GOMOD / "knative",
            env=build.go_env(),
            check=True,
        )
        return module_dir(module)
    return Path(directory)


def _documents(folder: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _local_images(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _local_images(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_local_images(v) for v in node]
    if isinstance(node, str) and node.startswith("ko://knative.dev/serving/cmd/"):
        return layout.image_name("knative", node.rsplit("/", 1)[-1])
    return node


def knative_documents() -> list[dict[str, Any]]:
    overrides = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((layout.MANIFESTS / "knative-config.yaml").read_text())
    }
    # The release's CRDs come from three modules: caching (Image), networking, serving.
    docs = _documents(module_dir("knative.dev/caching") / "config")
    docs += _documents(module_dir("knative.dev/networking") / "config")
    docs += _documents(module_dir("knative.dev/serving") / "config" / "core")
    rendered = []
    for doc in docs:
        doc = _local_images(doc)
        name = doc.get("metadata", {}).get("name")
        if doc.get("kind") == "ConfigMap" and name in overrides:
            doc["data"] = {**doc.get("data", {}), **overrides.pop(name)["data"]}
            doc["data"].pop("_example", None)
        rendered.append(doc)
    if overrides:
        raise ClusterError(
            f"knative-config.yaml names ConfigMaps Knative does not have: {sorted(overrides)}"
        )
    # Namespaces first: kubectl applies a stream in order.
    return sorted(rendered, key=lambda d: d.get("kind") != "Namespace")


def _local_manifest(name: str) -> str:
    """Our own manifests, with the images made here named by version."""
    text = (layout.MANIFESTS / name).read_text()
    for component, binaries in build.IMAGES.items():
        for binary in binaries:
            text = text.replace(
                f"@image:{component}/{binary}@", layout.image_name(component, binary)
            )
    return text.replace("@cluster-dns@", layout.CLUSTER_DNS).replace("@domain@", layout.DOMAIN)


def apply(text: str, timeout: float = 180) -> None:
    """Server-side apply; retried while Knative's own webhook, just applied, is not serving yet."""
    deadline = time.monotonic() + timeout
    while True:
        done = kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=text, check=False
        )
        if done.returncode == 0:
            return
        if "failed calling webhook" not in done.stderr or time.monotonic() > deadline:
            raise ClusterError(f"kubectl apply: {done.stderr.strip()}")
        time.sleep(2)


def wait_node_ready(timeout: float = 180) -> None:
    from localcluster import processes

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive("kubelet")
        done = kubectl(
            "get",
            "node",
            layout.NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False,
        )
        if done.stdout.strip() == "True":
            return
        time.sleep(1)
    raise ClusterError(
        f"node {layout.NAME} not Ready after {timeout:.0f}s", layout.log_dir() / "kubelet.log"
    )


def wait_available(namespace: str, deployments: list[str], timeout: float = 300) -> None:
    from localcluster import processes

    deadline = time.monotonic() + timeout
    pending = list(deployments)
    while pending and time.monotonic() < deadline:
        for component in ("kubelet", "containerd", "kube-apiserver"):
            processes.check_alive(component)
        for name in list(pending):
            done = kubectl(
                "get",
                "deployment",
                name,
                "-n",
                namespace,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Available')].status}",
                check=False,
            )
            if done.stdout.strip() == "True":
                pending.remove(name)
        time.sleep(1)
    if pending:
        pods = kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
        events = kubectl(
            "get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False
        ).stdout
        tail = "\n".join(events.splitlines()[-10:])
        raise ClusterError(
            f"{namespace}: {', '.join(pending)} not Available after {timeout:.0f}s\n{pods}\n{tail}"
        )


def install() -> None:
    with step("node Ready"):
        wait_node_ready()
        apply(_local_manifest("node-access.yaml"))
    with step("CoreDNS (cluster.local only, no forwarding)"):
        apply(_local_manifest("coredns.yaml"))
        wait_available("kube-system", ["coredns"])
    with step(f"Knative Serving {layout.pins()['knative'].release}"):
        docs = knative_documents()
        crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
        apply(yaml.safe_dump_all(crds))
        kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            *[f"crd/{d['metadata']['name']}" for d in crds],
        )
        apply(yaml.safe_dump_all([d for d in docs if d.get("kind") != "CustomResourceDefinition"]))
    with step("Traefik's Knative provider as the ingress"):
        apply(_local_manifest("traefik.yaml"))
    with step("Knative and Traefik Deployments Available"):
        wait_available("knative-serving", KNATIVE_DEPLOYMENTS)
        wait_available("traefik", ["traefik"])
